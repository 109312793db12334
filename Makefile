# Segment Studio. `make run` to try it, `make test` to check it. Needs Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STUDIO_HOST ?= 127.0.0.1
STUDIO_PORT ?= 8000
# The built-in engine is served by this same web server; bootstrap points the "Built-in engine"
# connection at it (0.0.0.0 is where to listen, not an address to call).
BUILTIN_ENGINE_URL ?= http://$(if $(filter 0.0.0.0,$(STUDIO_HOST)),127.0.0.1,$(STUDIO_HOST)):$(STUDIO_PORT)
export STUDIO_HOST STUDIO_PORT BUILTIN_ENGINE_URL

.DEFAULT_GOAL := help
.PHONY: help run setup test lint bench demo-passwords clean

help:
	@echo "make run             set up and start Segment Studio (web, worker, beat) with demo data"
	@echo "make test            install the dev tools and run the whole test suite"
	@echo "make lint            ruff and mypy"
	@echo "make bench           benchmarks (slow; not part of make test)"
	@echo "make demo-passwords  print new one-time passwords for the demo users"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Segment Studio needs Python 3.11 or newer; set PYTHON=python3.x"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

# make run is the laptop experience: DEBUG on (so bootstrap creates the demo users) unless set.
run setup demo-passwords: export DEBUG ?= true

setup: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py generate_demo --if-empty --profiles 2000

run: setup
	@echo ""
	@echo "  Segment Studio is starting at http://$(STUDIO_HOST):$(STUDIO_PORT)/"
	@echo "  Sign in with a demo login printed above. Ctrl-C stops web, worker and beat."
	@echo ""
	$(BIN)/honcho -f Procfile start

demo-passwords: $(VENV)/.installed
	$(BIN)/python manage.py bootstrap --reset-demo-passwords

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: $(VENV)/.installed-dev
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
