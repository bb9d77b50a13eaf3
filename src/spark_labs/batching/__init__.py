"""Lab 02's room: what vLLM's scheduler does with its KV cache, measured from the engine itself.

- ``kv_capacity``: size the KV space before a start (refusing sizes that cannot work) and read the
  capacity vLLM reports after it.
- ``pressure``: fill the cache on purpose and sample the scheduler's gauges while it runs.
- ``prefix``: a shared-prefix workload and the engine's prefix-cache counters.
- ``figures``: the charts of those runs.
"""

from .kv_capacity import KVCapacity, KVCapacityError, kv_space_launch, read_kv_capacity

__all__ = ["KVCapacity", "KVCapacityError", "kv_space_launch", "read_kv_capacity"]
