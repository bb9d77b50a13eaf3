"""The environment table of lab 00: one row per prerequisite, with a status and a fix."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..engines.ports import port_holder, port_is_free
from ..engines.registry import ENGINES
from ..hardware.detect import detect_hardware
from ..hardware.memory import memory_snapshot
from ..paths import cache_dir
from ..profiles import Profile, get_profile

JUPYTER_PORT = 8888
# What the profile's models need, with room for an engine's KV cache and a second copy while loading.
NEEDS_GB = {"tiny": {"memory": 2, "disk": 1}, "spark": {"memory": 40, "disk": 60}}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "fail", or "n/a" (not needed on this profile)
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def icon(self) -> str:
        return {"ok": "✅", "fail": "❌", "n/a": "➖"}[self.status]


def _row(name: str, ok: bool, detail: str, fix: str, required: bool = True) -> Check:
    if ok:
        return Check(name, "ok", detail, "", required)
    return Check(name, "fail" if required else "n/a", detail, fix, required)


def _docker_status() -> tuple[bool, bool, str]:
    """(docker CLI present, engine reachable with the NVIDIA runtime, detail)."""
    if shutil.which("docker") is None:
        return False, False, "docker CLI not found"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return True, False, "docker CLI found, engine not answering"
    if info.returncode != 0:
        return True, False, "docker CLI found, but no Docker engine is running"
    return True, "nvidia" in info.stdout, f"runtimes: {info.stdout.strip()[:80]}"


def lab_ports(profile: Profile) -> dict[int, str]:
    """The ports the labs start servers on: JupyterLab's and the default port of each engine the profile runs."""
    return {JUPYTER_PORT: "JupyterLab", **{ENGINES[name].default_port: ENGINES[name].display_name
                                           for name in profile.engines}}


def environment_checks(profile: Profile | None = None) -> list[Check]:
    prof = profile or get_profile()
    spark = prof.name == "spark"
    hardware = detect_hardware()
    snapshot = memory_snapshot()
    needs = NEEDS_GB[prof.name]
    rows = [
        _row("Python ≥ 3.10", sys.version_info >= (3, 10), platform.python_version(),
             "use the NGC PyTorch container or a Python 3.10+ virtual environment"),
        _row("Architecture", hardware.arch in {"x86_64", "aarch64"},
             f"{hardware.arch}" + (" (DGX Spark is aarch64: pick arm64 images)" if spark else ""),
             "the course supports x86_64 and aarch64 (arm64) machines"),
        _row("NVIDIA GPU + CUDA driver", bool(hardware.gpu_names),
             ", ".join(hardware.gpu_names) + f" · CUDA {hardware.cuda_runtime} · driver {hardware.driver}"
             if hardware.gpu_names else "no CUDA GPU visible to torch",
             "install the NVIDIA driver / run the container with --gpus all; or use SPARK_LABS_PROFILE=tiny",
             required=spark),
        _row("Unified memory (DGX Spark)", hardware.unified_memory,
             "GPU shares system memory" if hardware.unified_memory else "separate or no GPU memory",
             "only DGX Spark-class machines have it; memory numbers then come from /proc/meminfo",
             required=False),
        _row(f"Free memory ≥ {needs['memory']} GB", snapshot.available_for_models >= needs["memory"] * 1e9,
             f"{snapshot.available_for_models / 1e9:.1f} GB available for models",
             "stop other kernels/engines; on Spark drop the page cache before 70B loads "
             "(sudo sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches')"),
        _row(f"Free disk ≥ {needs['disk']} GB", shutil.disk_usage(cache_dir()).free >= needs["disk"] * 1e9,
             f"{shutil.disk_usage(cache_dir()).free / 1e9:.0f} GB free at {cache_dir()}",
             "free space or point SPARK_LABS_CACHE / HF_HOME at a bigger disk"),
    ]
    docker_cli, nvidia_runtime, docker_detail = _docker_status()
    rows.append(_row("Docker + NVIDIA runtime", docker_cli and nvidia_runtime, docker_detail,
                     "install Docker and the NVIDIA Container Toolkit (nvidia-ctk runtime configure)",
                     required=spark))
    for port, owner in sorted(lab_ports(prof).items()):
        free = port_is_free(port)
        holder = "" if free else (port_holder(port) or "an unknown process")
        rows.append(_row(f"Port {port} free ({owner})", free, "free" if free else f"held by {holder}",
                         f"stop the process holding it, or start {owner} on another port",
                         required=spark))
    token = os.environ.get("HF_TOKEN") or (Path.home() / ".cache/huggingface/token").is_file()
    rows.append(_row("Hugging Face token", bool(token), "present" if token else "not set",
                     "export HF_TOKEN=... (gated models such as Llama 3.1 need it)", required=spark))
    ngc = "NVIDIA_PYTORCH_VERSION" in os.environ
    rows.append(_row("NGC PyTorch container", ngc,
                     f"NGC PyTorch {os.environ['NVIDIA_PYTORCH_VERSION']}" if ngc else "not inside an NGC container",
                     "docker run --gpus all --ipc=host -p 8888:8888 nvcr.io/nvidia/pytorch:25.11-py3", required=False))
    return rows


def required_failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == "fail"]


def checks_markdown(checks: list[Check]) -> str:
    lines = ["| | check | detail | fix |", "|---|---|---|---|"]
    lines += [f"| {c.icon} | {c.name} | {c.detail} | {c.fix} |" for c in checks]
    return "\n".join(lines)
