"""How many tokens of KV cache an engine really has: the size we ask for, checked before the start, and
the capacity vLLM itself reports after it.

vLLM cuts its KV space into blocks of ``block_size`` tokens; the number of blocks is what the space holds
after it is divided by the per-block size (layers × KV heads × head dim × 2 × dtype bytes × block size).
It reports that twice: the start-up line ``KV cache size: N tokens`` and the ``vllm:cache_config_info``
gauge on ``/metrics``, whose labels carry ``num_gpu_blocks`` and ``block_size`` (the name says GPU even
on the CPU build). One of those blocks is vLLM's *null block*, a placeholder no request ever holds, so
requests share ``num_blocks - 1`` of them, and ``vllm:kv_cache_usage_perc`` divides by that. We read the
metric and keep the log line as a cross-check, so the learner's prediction is compared with the engine's
own count, not with our arithmetic.

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
from ..hardware.memory import memory_snapshot

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
        """Every block's tokens: what vLLM's start-up line reports."""
        return self.num_blocks * self.block_size

    @property
    def usable_blocks(self) -> int:
        """The blocks requests can hold: vLLM keeps one, the *null block*, as a placeholder (its KV usage
        gauge divides by ``num_blocks - 1`` too)."""
        return self.num_blocks - 1

    @property
    def usable_tokens(self) -> int:
        return self.usable_blocks * self.block_size


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
                    available_bytes: int | None = None, block_size: int = 128) -> tuple[list[str], dict[str, str]]:
    """vLLM flags and environment for a KV space of ``kv_bytes``, refused before the start when it cannot work.

    Two limits, each with its fix: the space must fit in the memory this machine has free (else the
    engine dies half-way through its start, or the machine swaps), and its whole blocks of ``block_size``
    tokens (passed to vLLM with ``--block-size``) must hold at least one request of ``max_model_len`` tokens
    (vLLM refuses to start otherwise, after loading the model).
    """
    if not isinstance(kv_bytes, int) or kv_bytes <= 0:
        raise KVCapacityError(f"kv_bytes={kv_bytes!r}: give the KV space as a positive whole number of bytes, "
                              "e.g. 24 * 1024**2 for 24 MiB")
    available = memory_snapshot().system_available if available_bytes is None else available_bytes
    if kv_bytes > available:
        raise InsufficientMemoryError(
            f"asked for {kv_bytes / MIB:,.0f} MiB of KV cache but this machine has only {available / MIB:,.0f} MiB "
            "free: lower kv_bytes (the tiny model needs a few MiB), or stop other engines and notebooks first")
    if not isinstance(block_size, int) or block_size < 1:
        raise KVCapacityError(f"block_size={block_size!r}: give tokens per block as a whole number ≥ 1 (128 on "
                              "vLLM's CPU build, 16 on its GPU builds)")
    block_bytes = bytes_per_token * block_size
    one_request = -(-max_model_len // block_size) * block_bytes  # whole blocks
    if kv_bytes < one_request:
        raise KVCapacityError(
            f"{kv_bytes / MIB:.2f} MiB of KV holds {kv_bytes // block_bytes * block_size:,} tokens in whole blocks "
            f"of {block_size}, fewer than one request of max_model_len={max_model_len:,} tokens needs "
            f"({one_request / MIB:.2f} MiB): vLLM would refuse to start. Raise kv_bytes or lower max_model_len")
    # --max-model-len is the harness's (engine_args)
    args = ["--kv-cache-memory-bytes", str(kv_bytes), "--block-size", str(block_size)]
    # Unset (None), not emptied: the registry sets VLLM_CPU_KVCACHE_SPACE=1, the variable beats the flag,
    # and vLLM's workers crash on an empty value.
    return args, {"VLLM_CPU_KVCACHE_SPACE": None}


def gpu_kv_space(total_bytes: int, utilization: float, weight_bytes: float, activation_peak_bytes: float,
                 non_torch_bytes: float = 0) -> int:
    """The KV space vLLM takes on a GPU: its share of memory (``--gpu-memory-utilization`` × total) minus
    what is not KV cache — the weights, the activation peak of its profiling forward pass, and memory
    outside PyTorch's allocator (CUDA context, NCCL). Refused when nothing is left for the cache."""
    if not 0 < utilization <= 1:
        raise KVCapacityError(f"utilization={utilization!r}: --gpu-memory-utilization is a fraction in (0, 1]")
    space = int(utilization * total_bytes - weight_bytes - activation_peak_bytes - non_torch_bytes)
    if space <= 0:
        raise KVCapacityError(
            f"{utilization:.0%} of {total_bytes / 2**30:,.1f} GiB leaves no KV cache after {weight_bytes / 2**30:,.1f} "
            f"GiB of weights and a {activation_peak_bytes / 2**30:,.1f} GiB activation peak: raise "
            "--gpu-memory-utilization, lower --max-num-batched-tokens, or serve a smaller or quantized model")
    return space
