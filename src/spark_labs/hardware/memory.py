"""Memory snapshots that are right on unified memory, and a guard with an actionable message.

On DGX Spark the GPU allocates from the same LPDDR5x as the CPU: ``nvidia-smi`` lists no per-process
GPU memory, and "free GPU memory" is really "free system memory". So the snapshot reads three sources
side by side — torch's CUDA allocator, NVML where it means something, and ``/proc/meminfo`` — and
the guard checks what is actually available to a new allocation on this kind of machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from ..errors import InsufficientMemoryError

GIB = 2**30
DROP_CACHES = "sudo sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'"


def read_meminfo(path: str = "/proc/meminfo") -> dict[str, int]:
    """``/proc/meminfo`` in bytes (MemTotal, MemAvailable, Cached, ...)."""
    values: dict[str, int] = {}
    try:
        with open(path) as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return values


def read_torch_cuda() -> dict[str, int] | None:
    """torch's view of device 0: free/total from the driver, allocated/reserved by this process."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info()
        return {"free": free, "total": total, "allocated": torch.cuda.memory_allocated(),
                "reserved": torch.cuda.memory_reserved()}
    except Exception:
        return None


def read_nvml() -> dict[str, int] | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {"total": int(info.total), "used": int(info.used), "free": int(info.free)}
    except Exception:  # no NVML, or "Not Supported" on unified memory
        return None


def read_unified() -> bool:
    from .detect import detect_hardware

    return detect_hardware().unified_memory


@dataclass
class MemoryReaders:
    meminfo: Callable[[], dict[str, int]] = read_meminfo
    torch_cuda: Callable[[], dict[str, int] | None] = read_torch_cuda
    nvml: Callable[[], dict[str, int] | None] = read_nvml
    unified: Callable[[], bool] = read_unified


@dataclass(frozen=True)
class MemorySnapshot:
    unified_memory: bool
    system_total: int
    system_available: int
    page_cache: int
    gpu_total: int | None = None
    gpu_free: int | None = None
    torch_allocated: int | None = None
    torch_reserved: int | None = None
    nvml_used: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def available_for_models(self) -> int:
        """Bytes a new model load can count on, the way this machine actually allocates."""
        if self.unified_memory or self.gpu_free is None:
            # Unified: the GPU draws from system memory, so MemAvailable is the truth (the driver's
            # "free" also excludes reclaimable page cache and under-reports).
            return self.system_available
        return self.gpu_free

    def as_rows(self) -> list[tuple[str, str]]:
        def gib(value: int | None) -> str:
            return "n/a" if value is None else f"{value / GIB:.2f} GiB"

        return [
            ("memory model", "unified (CPU+GPU share one pool)" if self.unified_memory else
             ("discrete GPU" if self.gpu_total else "CPU only")),
            ("system total", gib(self.system_total)), ("system available", gib(self.system_available)),
            ("page cache", gib(self.page_cache)), ("GPU total (driver)", gib(self.gpu_total)),
            ("GPU free (driver)", gib(self.gpu_free)), ("torch allocated", gib(self.torch_allocated)),
            ("torch reserved", gib(self.torch_reserved)), ("NVML used", gib(self.nvml_used)),
            ("available for models", gib(self.available_for_models)),
        ]

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| {k} | {v} |" for k, v in self.as_rows())
        return "| | |\n|---|---|\n" + rows


def memory_snapshot(readers: MemoryReaders | None = None) -> MemorySnapshot:
    r = readers or MemoryReaders()
    info = r.meminfo()
    cuda = r.torch_cuda()
    nvml = r.nvml()
    unified = bool(cuda) and r.unified()
    notes = []
    if unified:
        notes.append("nvidia-smi shows no per-process memory on unified memory; numbers come from torch and "
                     "/proc/meminfo")
    if unified and nvml is None:
        notes.append("NVML memory queries are not supported on this unified-memory GPU")
    return MemorySnapshot(
        unified_memory=unified,
        system_total=info.get("MemTotal", 0),
        system_available=info.get("MemAvailable", info.get("MemFree", 0)),
        page_cache=info.get("Cached", 0),
        gpu_total=cuda["total"] if cuda else None,
        gpu_free=cuda["free"] if cuda else None,
        torch_allocated=cuda["allocated"] if cuda else None,
        torch_reserved=cuda["reserved"] if cuda else None,
        nvml_used=nvml["used"] if nvml else None,
        notes=tuple(notes),
    )


def top_memory_users(limit: int = 5) -> list[str]:
    users = []
    for proc in psutil.process_iter(["pid", "name", "memory_info", "cmdline"]):
        try:
            rss = proc.info["memory_info"].rss
        except (TypeError, psutil.Error):
            continue
        command = " ".join(proc.info["cmdline"] or [])[:80] or proc.info["name"]
        users.append((rss, f"pid {proc.info['pid']} {rss / GIB:.1f} GiB  {command}"))
    return [line for _, line in sorted(users, reverse=True)[:limit]]


def gpu_memory_users(limit: int = 5) -> list[str]:
    """Processes holding GPU memory according to NVML (discrete GPUs; unified memory reports none)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:
        return []
    users = []
    for proc in procs:
        used = getattr(proc, "usedGpuMemory", None) or 0
        try:
            command = " ".join(psutil.Process(proc.pid).cmdline())[:80]
        except psutil.Error:
            command = "?"
        users.append((used, f"pid {proc.pid} {used / GIB:.1f} GiB GPU  {command}"))
    return [line for _, line in sorted(users, reverse=True)[:limit]]


# Who else in this process holds memory: the engine launcher registers a report of the engines it started. A
# base module must not import the launcher (a floor above it), so the launcher reports in instead.
_HOLDER_REPORTS: list[Callable[[], list[str]]] = []


def report_memory_holders(report: Callable[[], list[str]]) -> None:
    """Have :func:`require_free_memory` list ``report()``'s lines (one per holder) when memory is short."""
    if report not in _HOLDER_REPORTS:
        _HOLDER_REPORTS.append(report)


def require_free_memory(gb: float, what: str = "this model", snapshot: MemorySnapshot | None = None) -> MemorySnapshot:
    """Raise :class:`InsufficientMemoryError` unless ``gb`` GB can be allocated; return the snapshot."""
    snap = snapshot or memory_snapshot()
    needed = gb * 1e9
    if snap.available_for_models >= needed:
        return snap
    engines = [line for report in _HOLDER_REPORTS for line in report()]
    lines = [
        f"{what} needs {gb:.1f} GB but only {snap.available_for_models / 1e9:.1f} GB is available "
        f"({'unified memory' if snap.unified_memory else 'GPU' if snap.gpu_free is not None else 'system memory'}).",
    ]
    discrete = snap.gpu_free is not None and not snap.unified_memory
    gpu_users = gpu_memory_users() if discrete else []
    if gpu_users:
        lines += ["GPU memory held by (NVML):", *("  " + u for u in gpu_users)]
    lines += ["Largest processes by resident memory" + (" (on unified memory this is what holds GPU memory too)"
                                                        if snap.unified_memory else "") + ":",
              *("  " + u for u in top_memory_users())]
    if engines:
        lines += ["Engines this notebook started (stop with spark_labs.engines.stop_all()):",
                  *("  " + e for e in engines)]
    lines += ["What to do: stop engines or kernels you no longer need, free tensors (del model; "
              "torch.cuda.empty_cache()), or pick a smaller / quantized model."]
    if snap.unified_memory or snap.page_cache > 0.1 * max(snap.system_total, 1):
        # On unified memory the GPU allocator does not reclaim page cache fast enough for very large loads.
        lines.append(f"{snap.page_cache / 1e9:.0f} GB is page cache (files read earlier, e.g. model weights); "
                     f"before a 70B load on DGX Spark drop it with: {DROP_CACHES}")
    raise InsufficientMemoryError("\n".join(lines))
