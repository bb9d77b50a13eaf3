"""Hardware detection and memory snapshots, with injected readings for the machines we are not on."""

from __future__ import annotations

import pytest

from spark_labs.errors import InsufficientMemoryError
from spark_labs.hardware import HardwareReaders, detect_hardware
from spark_labs.memory import DROP_CACHES, MemoryReaders, memory_snapshot, require_free_memory

GB = 10**9


def _readers(**overrides):
    base = dict(machine=lambda: "x86_64", gpu_names=lambda: [], cuda_versions=lambda: ("13.0", "580.95"),
                mem_total_bytes=lambda: 24 * 2**30, cpu_count=lambda: 2, in_container=lambda: False)
    base.update(overrides)
    return HardwareReaders(**base)


def test_this_machine_is_detected_as_a_cpu_box():
    info = detect_hardware()
    assert info.kind == "cpu" and not info.gpu_names and not info.unified_memory
    assert info.system_memory_bytes > 0 and info.cpu_count >= 1


def test_dgx_spark_is_recognised_with_arm64_advice():
    info = detect_hardware(_readers(machine=lambda: "aarch64", gpu_names=lambda: ["NVIDIA GB10"]))
    assert info.kind == "dgx-spark" and info.is_spark and info.unified_memory
    assert info.spec.bandwidth_gbs == 273
    assert any("--enforce-eager" in line for line in info.advice)
    assert any("bfloat16" in line for line in info.advice)


def test_discrete_gpu():
    info = detect_hardware(_readers(gpu_names=lambda: ["NVIDIA H100 80GB HBM3"]))
    assert info.kind == "cuda" and not info.unified_memory and info.spec.key == "h100-sxm"
    assert info.driver == "580.95"


def _meminfo(total_gb=128, available_gb=100, cached_gb=40):
    return lambda: {"MemTotal": total_gb * GB, "MemAvailable": available_gb * GB, "Cached": cached_gb * GB}


def test_unified_memory_snapshot_trusts_meminfo_not_the_driver():
    """On GB10 the driver's free figure excludes reclaimable page cache; MemAvailable is what a load gets."""
    readers = MemoryReaders(
        meminfo=_meminfo(available_gb=100), unified=lambda: True, nvml=lambda: None,
        torch_cuda=lambda: {"free": 60 * GB, "total": 128 * GB, "allocated": 2 * GB, "reserved": 3 * GB},
    )
    snap = memory_snapshot(readers)
    assert snap.unified_memory and snap.available_for_models == 100 * GB
    assert snap.torch_allocated == 2 * GB and snap.nvml_used is None
    assert any("nvidia-smi" in note for note in snap.notes)


def test_discrete_gpu_snapshot_uses_device_free_memory():
    readers = MemoryReaders(
        meminfo=_meminfo(total_gb=256, available_gb=200), unified=lambda: False,
        nvml=lambda: {"total": 80 * GB, "used": 30 * GB, "free": 50 * GB},
        torch_cuda=lambda: {"free": 50 * GB, "total": 80 * GB, "allocated": 0, "reserved": 0},
    )
    snap = memory_snapshot(readers)
    assert not snap.unified_memory and snap.available_for_models == 50 * GB and snap.nvml_used == 30 * GB


def test_cpu_snapshot_reads_this_machine():
    snap = memory_snapshot()
    assert snap.gpu_total is None and 0 < snap.system_available <= snap.system_total


def test_guard_passes_and_fails_with_an_actionable_message():
    snap = memory_snapshot(MemoryReaders(meminfo=_meminfo(available_gb=30, cached_gb=60), unified=lambda: True,
                                         nvml=lambda: None, torch_cuda=lambda: {"free": 1, "total": 128 * GB,
                                                                                "allocated": 0, "reserved": 0}))
    assert require_free_memory(20, snapshot=snap) is snap
    with pytest.raises(InsufficientMemoryError) as err:
        require_free_memory(140, what="Llama-3.1-70B bf16", snapshot=snap)
    message = str(err.value)
    assert "needs 140.0 GB" in message and "30.0 GB is available" in message
    assert "Largest processes" in message and DROP_CACHES in message
