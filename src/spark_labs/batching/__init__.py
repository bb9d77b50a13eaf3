"""Lab 02's room: what vLLM's scheduler does with its KV cache, measured from the engine itself.

- ``slot_loop``: a scheduling policy (static batching, or the learner's continuous batching) on a real batched
  decode step of the lab's model, stamped and counted.
- ``kv_capacity``: size the KV space before a start (refusing sizes that cannot work) and read the
  capacity vLLM reports after it.
- ``pressure``: fill the cache on purpose and sample the scheduler's gauges while it runs.
- ``prefix``: a shared-prefix workload and the engine's prefix-cache counters.
- ``on_spark``: §6 on a DGX Spark: vLLM's capacity at two memory fractions, SGLang's radix cache vs vLLM's.
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
                     scheduler_verdict,
)
from .figures import cliff_figure, knob_figure, live_pressure_chart, timeline_figure
from .knobs import chunked_prefill_table, chunked_tradeoff, knee, run_injection
from .kv_capacity import KVCapacity, KVCapacityError, kv_space_launch, read_kv_capacity
from .on_spark import capacity_at_fractions, prefix_caches_compared
from .prefix import run_prefix_workload, shared_prefix_requests
from .pressure import kv_pressure_sweep, measured_onset
from .schedules import (
                     batching_comparison,
                     idle_slot_steps,
                     mixed_lengths,
                     mixed_prompts,
                     policy_comparison,
                     static_schedule,
)
from .slot_loop import PolicyRun, ScheduleError, check_scheduler, run_policy, slot_decoder, static_batching
from .static import run_static_batches

__all__ = ["KVCapacity", "KVCapacityError", "PolicyRun", "ScheduleError", "Verdict", "batching_comparison",
           "capacity_at_fractions", "check_bytes_per_token", "check_capacity", "check_hit_rate", "check_onset",
           "check_scheduler", "check_tradeoff", "check_wasted_fraction", "chunked_prefill_table", "chunked_tradeoff",
           "cliff_figure", "idle_slot_steps", "knee", "knob_figure", "kv_pressure_sweep", "kv_space_launch",
           "live_pressure_chart", "measured_onset", "mixed_lengths", "mixed_prompts", "policy_comparison",
           "prefix_caches_compared", "read_kv_capacity", "run_injection", "run_policy", "run_prefix_workload",
           "run_static_batches", "scheduler_verdict", "shared_prefix_requests", "slot_decoder", "static_batching",
           "static_schedule", "timeline_figure"]
