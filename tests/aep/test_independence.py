"""aep is a pure library: importing it loads no Django and no dashboard or engine module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_aep_imports_no_django() -> None:
    code = ("import sys, aep; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('django', 'engine', 'core', 'connections', 'jobs', 'segments', 'exports', "
            "'config')); print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_source_file_imports_django() -> None:
    for path in (ROOT / "aep").glob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path
