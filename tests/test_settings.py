"""Settings load from an empty environment and make a fresh clone runnable."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "debug": settings.DEBUG,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "secret": settings.SECRET_KEY,
    "fernet": settings.FIELD_ENCRYPTION_KEYS,
    "broker": settings.CELERY_BROKER_URL,
    "var": str(settings.VAR_DIR),
    "engine_dir": str(settings.ENGINE_DATA_DIR),
}))
"""


def load_settings(env: dict[str, str], cwd: Path) -> dict[str, object]:
    """Import the settings in a fresh interpreter with exactly `env` (plus PATH)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings",
             "PYTHONPATH": str(ROOT), **env},
        cwd=cwd, capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_empty_environment_gives_sqlite_under_var_and_debug_off(tmp_path: Path) -> None:
    loaded = load_settings({}, cwd=tmp_path)
    assert loaded["debug"] is False
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["db_name"] == str(ROOT / "var" / "db.sqlite3")
    assert loaded["broker"] == f"sqlite:///{ROOT / 'var' / 'broker' / 'broker.sqlite3'}"
    assert loaded["engine_dir"] == str(ROOT / "var" / "engine")


def test_keys_are_generated_once_private_and_then_reused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = load_settings({"VAR_DIR": str(var)}, cwd=tmp_path)
    second = load_settings({"VAR_DIR": str(var)}, cwd=tmp_path)

    assert first["secret"] == second["secret"]
    assert first["fernet"] == second["fernet"]
    assert len(str(first["secret"])) >= 50
    for name in ("secret_key", "field_encryption_key"):
        mode = stat.S_IMODE((var / name).stat().st_mode)
        assert mode == 0o600, f"{name} is readable by others: {oct(mode)}"
    assert first["db_name"] == str(var / "db.sqlite3")


def test_environment_overrides_the_defaults(tmp_path: Path) -> None:
    loaded = load_settings(
        {"VAR_DIR": str(tmp_path), "DEBUG": "true", "SECRET_KEY": "x" * 50,
         "DATABASE_URL": "postgres://u@127.0.0.1:5432/studio",
         "REDIS_URL": "redis://127.0.0.1:6379/3"},
        cwd=tmp_path,
    )
    assert loaded["debug"] is True
    assert loaded["secret"] == "x" * 50
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["broker"] == "redis://127.0.0.1:6379/3"
    assert not (tmp_path / "secret_key").exists()
