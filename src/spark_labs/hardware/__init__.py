"""The machine under the course: what it is (DGX Spark, a discrete GPU, a CPU box), its datasheet figures for
rooflines, and memory snapshots that are right on unified memory.

- :mod:`.detect`: which machine this is (``detect_hardware``).
- :mod:`.datasheets`: published bandwidth, memory and dense peak FLOPS per device (``hardware_spec``).
- :mod:`.memory`: what is free for a new model, and a guard that says who holds the rest.
"""

from .datasheets import HARDWARE, HardwareSpec, hardware_spec, match_gpu_name
from .detect import HardwareInfo, HardwareReaders, detect_hardware
from .memory import DROP_CACHES, MemoryReaders, MemorySnapshot, memory_snapshot, require_free_memory

__all__ = ["DROP_CACHES", "HARDWARE", "HardwareInfo", "HardwareReaders", "HardwareSpec", "MemoryReaders",
           "MemorySnapshot", "detect_hardware", "hardware_spec", "match_gpu_name", "memory_snapshot",
           "require_free_memory"]
