from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from spark_labs import cli


def test_docs_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "index.html").is_file()


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_points_at_a_real_function(name):
    module, function, _ = cli.COMMANDS[name]
    assert callable(getattr(importlib.import_module(module), function))


def test_unknown_command_is_a_usage_error(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "spark-labs"  # the venv's bin, whether or not it is on PATH
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip()
