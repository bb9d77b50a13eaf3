"""The installed console script reports the package's version (tests/unit/test_version.py checks the rest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import spark_labs


def test_console_script_reports_the_version():
    script = Path(sys.executable).parent / "spark-labs"  # the venv's bin, whether or not it is on PATH
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == spark_labs.__version__
