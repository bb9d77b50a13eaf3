"""How many tokens of KV cache an engine really has: the size we ask for, checked before the start, and
the capacity vLLM itself reports after it.

vLLM cuts its KV space into blocks of ``block_size`` tokens; the number of blocks is what the space holds
after it is divided by the per-block size (layers × KV heads × head dim × 2 × dtype bytes × block size).
It reports that twice: the start-up line ``KV cache size: N tokens`` and the ``vllm:cache_config_info``
gauge on ``/metrics``, whose labels carry ``num_gpu_blocks`` and ``block_size`` (the name says GPU even
on the CPU build). We read the metric and keep the log line as a cross-check, so the learner's
prediction is compared with the engine's own count, not with our arithmetic.

On the CPU build ``VLLM_CPU_KVCACHE_SPACE`` only takes whole GiB — far more than the tiny model needs
to show the cache filling up — so the lab sizes the space in bytes with ``--kv-cache-memory-bytes``,
which the CPU worker honours too, and unsets the variable (it would override the flag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..errors import InsufficientMemoryError, SparkLabsError
from ..memory import memory_snapshot

CACHE_INFO = "vllm:cache_config_info"
_LOG_LINE = re.compile(r"KV cache size: (?P<tokens>[\d,]+) tokens")
MIB = 1024 ** 2


class KVCapacityError(SparkLabsError):
    """A KV-cache size that cannot work; the message names the limit and what to change."""


@dataclass(frozen=True)
class KVCapacity:
    """The engine's own count of its KV cache."""

    num_blocks: int
    block_size: int  # tokens per block
    log_tokens: int | None = None  # what the start-up line said, when it could be read

    @property
    def tokens(self) -> int:
        return self.num_blocks * self.block_size


def parse_cache_info(metrics_text: str) -> KVCapacity:
    """The block count and size from ``vllm:cache_config_info`` in a ``/metrics`` page."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name != CACHE_INFO:
            continue
        for sample in family.samples:
            blocks, size = sample.labels.get("num_gpu_blocks"), sample.labels.get("block_size")
            if blocks not in (None, "None") and size not in (None, "None"):
                return KVCapacity(int(blocks), int(size))
    raise KVCapacityError(f"/metrics has no {CACHE_INFO} with num_gpu_blocks and block_size: is this a vLLM "
                          "server that finished starting? (other engines do not publish it)")


def parse_log_tokens(log_text: str) -> int | None:
    """The token count of vLLM's start-up line ``… KV cache size: 1,808 tokens, …`` (None if absent)."""
    match = _LOG_LINE.search(log_text)
    return int(match.group("tokens").replace(",", "")) if match else None


def read_kv_capacity(engine) -> KVCapacity:
    """Ask a running vLLM (an :class:`~spark_labs.engines.EngineHandle`) how much KV cache it allocated."""
    if not getattr(engine, "metrics_url", None):
        raise KVCapacityError(f"{engine.spec.display_name} publishes no /metrics: KV capacity is read from vLLM")
    capacity = parse_cache_info(httpx.get(engine.metrics_url, timeout=10).text)
    return KVCapacity(capacity.num_blocks, capacity.block_size, parse_log_tokens(engine.logs(400)))


def kv_space_launch(kv_bytes: int, bytes_per_token: int, max_model_len: int,
                    available_bytes: int | None = None) -> tuple[list[str], dict[str, str]]:
    """vLLM flags and environment for a KV space of ``kv_bytes``, refused before the start when it cannot work.

    Two limits, each with its fix: the space must fit in the memory this machine has free (else the
    engine dies half-way through its start, or the machine swaps), and it must hold at least one request
    of ``max_model_len`` tokens (vLLM refuses to start otherwise, after loading the model).
    """
    if not isinstance(kv_bytes, int) or kv_bytes <= 0:
        raise KVCapacityError(f"kv_bytes={kv_bytes!r}: give the KV space as a positive whole number of bytes, "
                              "e.g. 24 * 1024**2 for 24 MiB")
    available = memory_snapshot().system_available if available_bytes is None else available_bytes
    if kv_bytes > available:
        raise InsufficientMemoryError(
            f"asked for {kv_bytes / MIB:,.0f} MiB of KV cache but this machine has only {available / MIB:,.0f} MiB "
            "free: lower kv_bytes (the tiny model needs a few MiB), or stop other engines and notebooks first")
    one_request = bytes_per_token * max_model_len
    if kv_bytes < one_request:
        raise KVCapacityError(
            f"{kv_bytes / MIB:.1f} MiB of KV holds {kv_bytes // bytes_per_token:,} tokens, fewer than one request "
            f"of max_model_len={max_model_len:,} tokens needs ({one_request / MIB:.1f} MiB): vLLM would refuse to "
            "start. Raise kv_bytes or lower max_model_len")
    args = ["--kv-cache-memory-bytes", str(kv_bytes)]  # --max-model-len is the harness's (engine_args)
    # Unset (None), not emptied: the registry sets VLLM_CPU_KVCACHE_SPACE=1, the variable beats the flag,
    # and vLLM's workers crash on an empty value.
    return args, {"VLLM_CPU_KVCACHE_SPACE": None}
