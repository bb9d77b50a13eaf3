"""What machine is this? DGX Spark (unified memory), a discrete CUDA GPU, or a CPU box.

Detection reads facts through small reader functions so tests can inject a GB10's readings on a
laptop: ``detect_hardware(readers=HardwareReaders(gpu_names=lambda: ["NVIDIA GB10"], machine=...))``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from .datasheets import HardwareSpec, match_gpu_name


def _torch_gpu_names() -> list[str]:
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken driver must not break a notebook's first cell
        return []


def _torch_integrated() -> bool:
    """CUDA's ``integrated`` device attribute: the GPU shares the host's physical memory."""
    try:
        import torch

        return bool(torch.cuda.is_available() and getattr(torch.cuda.get_device_properties(0), "is_integrated", 0))
    except Exception:
        return False


def _cuda_versions() -> tuple[str | None, str | None]:
    """(CUDA runtime torch was built with, driver version from NVML) where available."""
    runtime = driver = None
    try:
        import torch

        runtime = torch.version.cuda
    except Exception:
        pass
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else driver
    except Exception:
        pass
    return runtime, driver


def _mem_total_bytes() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class HardwareReaders:
    machine: Callable[[], str] = platform.machine
    gpu_names: Callable[[], list[str]] = _torch_gpu_names
    integrated_gpu: Callable[[], bool] = _torch_integrated
    cuda_versions: Callable[[], tuple[str | None, str | None]] = _cuda_versions
    mem_total_bytes: Callable[[], int] = _mem_total_bytes
    cpu_count: Callable[[], int] = lambda: os.cpu_count() or 1
    in_container: Callable[[], bool] = lambda: os.path.exists("/.dockerenv") or "NVIDIA_PYTORCH_VERSION" in os.environ


@dataclass(frozen=True)
class HardwareInfo:
    kind: str  # "dgx-spark", "cuda" (any other CUDA GPU, discrete or integrated), or "cpu"
    arch: str  # "aarch64", "x86_64", ...
    gpu_names: tuple[str, ...]
    unified_memory: bool
    system_memory_bytes: int
    cpu_count: int
    cuda_runtime: str | None = None
    driver: str | None = None
    spec: HardwareSpec | None = None
    ngc_container: bool = False
    advice: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_spark(self) -> bool:
        return self.kind == "dgx-spark"

    def summary(self) -> str:
        gpu = ", ".join(self.gpu_names) or "no CUDA GPU"
        memory = "unified" if self.unified_memory else "separate"
        return f"{self.kind} · {self.arch} · {gpu} · {memory} memory · {self.system_memory_bytes / 2**30:.0f} GiB RAM"


def detect_hardware(readers: HardwareReaders | None = None) -> HardwareInfo:
    r = readers or HardwareReaders()
    arch = r.machine()
    gpus = tuple(r.gpu_names())
    runtime, driver = r.cuda_versions() if gpus else (None, None)
    spec = match_gpu_name(gpus[0]) if gpus else None
    # Unified memory: a GPU the table knows shares LPDDR5x with the CPU (GB10), or the driver calls the
    # device "integrated" (an aarch64 SoC GPU the table does not know yet).
    unified = bool(gpus) and bool((spec and spec.unified_memory) or r.integrated_gpu())
    kind = "dgx-spark" if spec and spec.key == "dgx-spark" else ("cuda" if gpus else "cpu")

    advice: list[str] = []
    if arch == "aarch64":
        advice.append("aarch64: pick arm64 container images; if a vLLM build hangs or crashes while capturing "
                      "CUDA graphs, add --enforce-eager (the original module's Spark default; current NGC images "
                      "run graphs)")
    if unified:
        advice.append("unified memory: nvidia-smi shows no per-process GPU memory here; use "
                      "spark_labs.hardware.memory.memory_snapshot() and leave headroom for the OS (e.g. "
                      "vLLM --gpu-memory-utilization 0.7-0.8)")
        advice.append("use bfloat16 (Blackwell-native), not float16")
    if kind == "cpu":
        advice.append("no CUDA GPU: the tiny profile runs every lab on the CPU with the embedded model")
    return HardwareInfo(
        kind=kind, arch=arch, gpu_names=gpus, unified_memory=unified, system_memory_bytes=r.mem_total_bytes(),
        cpu_count=r.cpu_count(), cuda_runtime=runtime, driver=driver, spec=spec, ngc_container=r.in_container(),
        advice=tuple(advice),
    )
