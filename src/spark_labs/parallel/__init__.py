"""One model on more than one machine: how much of it each node holds, what a token costs when tensor or pipeline
parallel splits it, and the measurement that compares a split run with one node (lab 07).

The launcher half (Ray head and workers, the engine's parallel flags) is :mod:`spark_labs.engines.multinode`."""

from .checks import split_mistakes
from .measure import compare_runs, decode_run
from .memory import LLAMA_3_1_405B, SPARK_NODE_GB, memory_plan, nodes_needed, per_token_ms

__all__ = ["LLAMA_3_1_405B", "SPARK_NODE_GB", "compare_runs", "decode_run", "memory_plan", "nodes_needed",
           "per_token_ms", "split_mistakes"]
