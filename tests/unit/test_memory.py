"""Memory snapshots and the free-memory guard, with injected readings for the machines we are not on."""

from __future__ import annotations

import pytest

from spark_labs.errors import InsufficientMemoryError
from spark_labs.hardware import memory
from spark_labs.hardware.memory import DROP_CACHES, MemoryReaders, memory_snapshot, require_free_memory

GB = 10**9


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


def test_unified_guard_names_the_drop_caches_command_even_with_little_page_cache():
    snap = memory_snapshot(MemoryReaders(meminfo=_meminfo(available_gb=50, cached_gb=2), unified=lambda: True,
                                         nvml=lambda: None, torch_cuda=lambda: {"free": 1, "total": 128 * GB,
                                                                                "allocated": 0, "reserved": 0}))
    with pytest.raises(InsufficientMemoryError) as err:
        require_free_memory(141, what="Llama-3.1-70B bf16", snapshot=snap)
    message = str(err.value)
    assert "(unified memory)" in message and DROP_CACHES in message
    assert "on unified memory this is what holds GPU memory too" in message


def test_discrete_guard_lists_gpu_memory_holders_from_nvml(monkeypatch):
    monkeypatch.setattr(memory, "gpu_memory_users", lambda limit=5: ["pid 4242 30.0 GiB GPU  vllm serve x"])
    snap = memory_snapshot(MemoryReaders(meminfo=_meminfo(total_gb=256, available_gb=200, cached_gb=1),
                                         unified=lambda: False, nvml=lambda: None,
                                         torch_cuda=lambda: {"free": 10 * GB, "total": 80 * GB, "allocated": 0,
                                                             "reserved": 0}))
    with pytest.raises(InsufficientMemoryError) as err:
        require_free_memory(16, what="Llama-3.1-8B bf16", snapshot=snap)
    message = str(err.value)
    assert "only 10.0 GB is available (GPU)" in message
    assert "GPU memory held by (NVML):" in message and "pid 4242" in message
    assert DROP_CACHES not in message  # page cache is small and the GPU has its own memory


def test_guard_lists_engines_this_process_started(monkeypatch):
    from spark_labs.engines import launcher

    class FakeHandle:
        spec = type("S", (), {"display_name": "vLLM"})()
        port, pid = 8000, 1234

    monkeypatch.setattr(launcher, "running_engines", lambda: [FakeHandle()])
    snap = memory_snapshot(MemoryReaders(meminfo=_meminfo(available_gb=1, cached_gb=0), unified=lambda: False,
                                         nvml=lambda: None, torch_cuda=lambda: None))
    with pytest.raises(InsufficientMemoryError) as err:
        require_free_memory(2, snapshot=snap)
    assert "vLLM on port 8000 (pid 1234)" in str(err.value) and "stop_all()" in str(err.value)


def test_meminfo_parser_converts_kib_to_bytes(tmp_path):
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:       131072 kB\nMemAvailable:    65536 kB\nHugePages_Total:       0\n")
    assert memory.read_meminfo(str(path)) == {"MemTotal": 131072 * 1024, "MemAvailable": 65536 * 1024,
                                                "HugePages_Total": 0}
    assert memory.read_meminfo(str(tmp_path / "missing")) == {}


def test_snapshot_renders_as_a_markdown_table():
    snap = memory_snapshot(MemoryReaders(meminfo=_meminfo(), unified=lambda: True, nvml=lambda: None,
                                         torch_cuda=lambda: {"free": 60 * GB, "total": 128 * GB,
                                                             "allocated": 0, "reserved": 0}))
    text = snap._repr_markdown_()
    assert "| memory model | unified (CPU+GPU share one pool) |" in text
    assert "| available for models | 93.13 GiB |" in text  # 100 GB of MemAvailable, in GiB
