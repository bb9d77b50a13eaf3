from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_docs_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "index.html").is_file()


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "spark-labs"  # the venv's bin, whether or not it is on PATH
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip()
