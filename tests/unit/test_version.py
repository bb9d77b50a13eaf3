"""One version, written once: src/spark_labs/__init__.py. pyproject reads it, the installed metadata and
`spark-labs --version` report it, and CHANGELOG.md has an entry for it."""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
from pathlib import Path

import spark_labs
from spark_labs import cli

ROOT = Path(__file__).resolve().parents[2]


def test_installed_metadata_matches():
    installed = importlib.metadata.version("spark-labs")
    assert installed == spark_labs.__version__, (
        f"installed metadata says {installed}, spark_labs.__version__ {spark_labs.__version__}: the install is "
        "stale; run `.venv/bin/pip install -e . --no-deps -q` (make install does when __init__.py changes)")


def test_cli_version(capsys):
    # In-process (unit tests start no process); the console script is the entry point checked below.
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == spark_labs.__version__
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [ep.value for ep in scripts if ep.name == "spark-labs"] == ["spark_labs.cli:main"]


def test_pyproject_reads_the_version_from_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in data["project"] and "version" in data["project"]["dynamic"]
    assert data["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "spark_labs.__version__"}


# Where a version could be written: the repository's own text files, not build outputs, caches or the venv.
_SKIP_DIRS = {".git", ".venv", "build", "dist", "reports", "node_modules", "__pycache__", ".pytest_cache",
              ".ruff_cache"}
_SUFFIXES = (".py", ".toml", ".cfg", ".yml", ".yaml")


def test_version_written_once():
    pattern = re.compile(r"""(__version__|^version)\s*=\s*["']\d""", re.M)
    writers = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder, name)
            if name.endswith(_SUFFIXES) and pattern.search(path.read_text(errors="replace")):
                writers.append(path.relative_to(ROOT).as_posix())
    assert writers == ["src/spark_labs/__init__.py"]


def test_changelog_has_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(spark_labs.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}", text, re.M), (
        f"CHANGELOG.md has no '## [{spark_labs.__version__}] - YYYY-MM-DD' entry: say what this version changed")
