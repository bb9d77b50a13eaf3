"""Lab 02's room: what vLLM's scheduler does with its KV cache, measured from the engine itself.

- ``kv_capacity``: size the KV space before a start (refusing sizes that cannot work) and read the
  capacity vLLM reports after it.
- ``pressure``: fill the cache on purpose and sample the scheduler's gauges while it runs.
- ``prefix``: a shared-prefix workload and the engine's prefix-cache counters.
- ``figures``: the charts of those runs.
- ``checks``: each exercise's rule and the mistakes a checkpoint names when an answer fails.
"""

from .checks import (
                     Verdict,
                     check_bytes_per_token,
                     check_capacity,
                     check_hit_rate,
                     check_onset,
                     check_tradeoff,
                     check_wasted_fraction,
)
from .figures import cliff_figure, knob_figure, live_pressure_chart, timeline_figure
from .knobs import chunked_prefill_table, chunked_tradeoff, knee, run_injection
from .kv_capacity import KVCapacity, KVCapacityError, kv_space_launch, read_kv_capacity
from .prefix import run_prefix_workload, shared_prefix_requests
from .pressure import kv_pressure_sweep, measured_onset
from .schedules import batching_comparison, idle_slot_steps, mixed_lengths, mixed_prompts, static_schedule
from .static import run_static_batches

__all__ = ["KVCapacity", "KVCapacityError", "Verdict", "batching_comparison", "check_bytes_per_token",
           "check_capacity", "check_hit_rate", "check_onset", "check_tradeoff", "check_wasted_fraction",
           "chunked_prefill_table", "chunked_tradeoff", "cliff_figure", "idle_slot_steps", "knee", "knob_figure",
           "kv_pressure_sweep", "kv_space_launch", "live_pressure_chart", "measured_onset", "mixed_lengths",
           "mixed_prompts", "read_kv_capacity", "run_injection", "run_prefix_workload", "run_static_batches",
           "shared_prefix_requests", "static_schedule", "timeline_figure"]
