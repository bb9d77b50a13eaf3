"""docker/ and environment.yml cannot run here (no Docker engine, no conda): check they parse and point
at things that exist in this package."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import yaml


ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_mirrors_pyproject():
    project = _pyproject()["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    expected = list(project["dependencies"])
    for extra in ("tiny", "lab", "dev"):
        expected += project["optional-dependencies"][extra]
    assert [p for p in pip if p != "-e ."] == expected
    assert "-e ." in pip


def test_dockerfile_uses_the_ngc_base_as_a_build_arg_and_installs_the_package():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTORCH_TAG=25\.11-py3$", text, re.M)
    assert "FROM nvcr.io/nvidia/pytorch:${PYTORCH_TAG}" in text
    assert 'pip install -e ".[spark,lab]"' in text
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {"spark", "lab"} <= set(extras)
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), copied


def test_compose_services_reserve_the_gpu_and_use_real_entry_points():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"lab", "vllm", "ollama", "trtllm"} <= set(services)
    for name in ("lab", "vllm", "ollama", "trtllm"):
        service = services[name]
        assert service["ipc"] == "host"
        device = service["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "hf-cache:/root/.cache/huggingface" in services["vllm"]["volumes"]
    # The lab image's default command and the console script it relies on exist.
    assert services["lab"]["command"][0] == "jupyter"
    assert _pyproject()["project"]["scripts"]["spark-labs"] == "spark_labs.cli:main"
    assert callable(getattr(importlib.import_module("spark_labs.cli"), "main"))
    assert services["vllm"]["command"][:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
