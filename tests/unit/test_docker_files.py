"""docker/ cannot run here (no Docker engine): check the files parse, follow the Spark rules, and point at
entry points, modules and files that really exist in this package."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import yaml

from spark_labs import cli
from spark_labs.engines import ENGINES
from spark_labs.engines.profile_args import spark_command

ROOT = Path(__file__).resolve().parents[2]
GPU_SERVICES = ("lab", "vllm", "sglang", "ollama", "trtllm")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _services() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]


def _after_image(command: list[str], image: str) -> list[str]:
    return command[command.index(image) + 1:]


def test_dockerfile_uses_the_ngc_base_as_a_build_arg_and_installs_the_package():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTORCH_TAG=25\.11-py3$", text, re.MULTILINE)
    assert "FROM nvcr.io/nvidia/pytorch:${PYTORCH_TAG}" in text
    assert 'pip install -e ".[spark,lab]"' in text
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {"spark", "lab"} <= set(extras) and any("jupyterlab" in req for req in extras["lab"])
    for copied in re.findall(r"^COPY (\S+)", text, re.MULTILINE):  # paths are relative to the repo root (context ..)
        assert (ROOT / copied).exists(), f"Dockerfile copies {copied}, which the repository lacks"
    assert re.search(r"^ENV SPARK_LABS_PROFILE=spark", text, re.MULTILINE)


def test_compose_gpu_services_reserve_the_gpu_share_ipc_and_the_hf_cache():
    services = _services()
    assert set(GPU_SERVICES) <= set(services)
    for name in GPU_SERVICES:
        service = services[name]
        assert service["ipc"] == "host", name
        device = service["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"], name
    for name in ("lab", "vllm", "trtllm"):
        assert "hf-cache:/root/.cache/huggingface" in services[name]["volumes"]
        assert "HF_TOKEN" in services[name]["environment"]


def test_lab_and_doctor_use_the_package_image_and_real_entry_points():
    services = _services()
    assert _pyproject()["project"]["scripts"]["spark-labs"] == "spark_labs.cli:main"
    for name in ("lab", "doctor"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert services["lab"]["command"][:2] == ["jupyter", "lab"]
    script, subcommand = services["doctor"]["command"]
    assert script == "spark-labs" and subcommand in cli.COMMANDS
    module, function, _ = cli.COMMANDS[subcommand]
    assert callable(getattr(importlib.import_module(module), function))


def test_engine_services_run_what_the_registry_builds():
    """compose and `spark-labs engine command ENGINE --docker` (the spark profile's command) must not drift apart."""
    services = _services()
    for name in ("vllm", "sglang", "trtllm"):
        service, spec = services[name], ENGINES[name]
        assert service["image"] == spec.docker_image
        assert service["ports"] == [f"{spec.default_port}:{spec.default_port}"]
        assert service["command"] == _after_image(spark_command(name), spec.docker_image), name
    assert "--enforce-eager" not in services["vllm"]["command"]  # the playbooks keep CUDA graphs on
    assert services["trtllm"]["ulimits"] == {"memlock": -1, "stack": 67108864}
    assert services["ollama"]["image"] == ENGINES["ollama"].docker_image
    assert services["ollama"]["ports"] == ["11434:11434"]


def test_the_validate_service_runs_the_documented_command_with_the_gpu_and_writes_results_out():
    service = _services()["validate"]
    assert service["command"][:3] == ["spark-labs", "labs", "validate"]
    assert service["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert service["ipc"] == "host" and "../results:/workspace/spark-labs/results" in service["volumes"]
    docs = (ROOT / "docs" / "instructors.md").read_text()
    assert "docker compose -f docker/compose.yaml run --rm validate" in docs
    assert "spark-labs labs validate --out results/validate" in docs
