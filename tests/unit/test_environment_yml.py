"""environment.yml (conda) must list exactly what `make install` installs: the tiny profile + lab + dev + cluster."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MIRRORED_EXTRAS = ("tiny", "lab", "dev", "cluster")  # `spark` is the lab container's extra (docker/Dockerfile)


def _pip_section(root: Path = ROOT) -> list[str]:
    env = yaml.safe_load((root / "environment.yml").read_text())
    sections = [item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item]
    assert len(sections) == 1, "environment.yml needs exactly one `pip:` section"
    return sections[0]


def _pyproject(root: Path = ROOT) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def _check_mirror(root: Path) -> None:
    project = _pyproject(root)
    expected = list(project["dependencies"])
    for extra in MIRRORED_EXTRAS:
        expected += project["optional-dependencies"][extra]
    listed = [req for req in _pip_section(root) if req != "-e ."]
    missing = [req for req in expected if req not in listed]
    stale = [req for req in listed if req not in expected]
    assert not missing and not stale, (
        f"environment.yml drifted from pyproject.toml: missing {missing}, not in pyproject {stale}. "
        "Copy the requirement strings over exactly.")
    assert listed == expected, "same requirements, different order: keep pyproject's order"


def test_pip_section_mirrors_pyproject_in_order():
    _check_mirror(ROOT)


def test_the_package_itself_is_installed_and_python_satisfies_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "-e ." in _pip_section() and "pip" in env["dependencies"]
    python = next(dep for dep in env["dependencies"] if isinstance(dep, str) and dep.startswith("python="))
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", _pyproject()["requires-python"]).groups()
    assert tuple(int(x) for x in python.split("=")[1].split(".")[:2]) >= tuple(int(x) for x in minimum)


def test_the_mirror_check_catches_drift(tmp_path):
    """The check must fail when a pin changes on one side only."""
    original = (ROOT / "environment.yml").read_text()
    drifted = original.replace('"rich>=13.7"', '"rich>=13.0"')
    assert drifted != original
    (tmp_path / "environment.yml").write_text(drifted)
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    try:
        _check_mirror(tmp_path)
    except AssertionError as err:
        assert "rich>=13.7" in str(err) and "rich>=13.0" in str(err)
    else:
        raise AssertionError("drift went unnoticed")
