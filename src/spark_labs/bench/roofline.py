"""How close each measured number is to what the hardware allows.

Decode is memory-bound: every step reads all weights once plus each running sequence's KV cache, so
``step_time ≥ (weights + batch × context × kv_bytes_per_token) / bandwidth``. Prefill is (mostly)
compute-bound: ``TTFT ≥ 2 × params × prompt_tokens / peak_FLOPs`` — and never less than one read of
the weights. MBU (model bandwidth utilisation) is the bytes a decode step must read over the measured
TPOT, divided by the bandwidth: the share of the roof actually reached.

On a GPU the peaks come from the foundation's hardware table. On a CPU box (the tiny profile) no
table can know the machine, so bandwidth and FLOPs are *measured* here with numpy and labelled so.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import sizing
from ..hardware.datasheets import HardwareSpec


@lru_cache(maxsize=1)
def measured_cpu_spec(size_mb: int = 256) -> HardwareSpec:
    """A HardwareSpec for this CPU from two quick measurements (≈1 s): array copy bandwidth (bytes read
    + written per second, best of 5) and float32 GEMM throughput (best of 3)."""
    src = np.ones(size_mb * 2**20 // 8)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(5))
    bandwidth = 2 * src.nbytes / best
    n = 1024
    a, b = np.random.default_rng(0).random((2, n, n), dtype=np.float32)
    gemm = min(_timed(lambda: a @ b) for _ in range(3))
    flops = 2 * n**3 / gemm
    import psutil

    return HardwareSpec(key="cpu-measured", name=f"this CPU ({os.cpu_count()} cores, measured)",
                        memory_gb=psutil.virtual_memory().total / 1e9, bandwidth_gbs=bandwidth / 1e9,
                        peak_tflops={"bfloat16": flops / 1e12, "float32": flops / 1e12},
                        note="measured by spark-labs: numpy copy bandwidth and fp32 GEMM, not a datasheet peak")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def host_spec() -> HardwareSpec:
    """The datasheet spec of this machine's GPU when we know it, else the measured CPU spec."""
    from ..hardware.detect import detect_hardware

    info = detect_hardware()
    return info.spec if info.spec is not None else measured_cpu_spec()


@dataclass(frozen=True)
class Bounds:
    hardware: str
    weight_dtype: str
    weights_gb: float
    tpot_floor_s: float  # per sequence, at this batch and context
    ttft_floor_s: float
    decode_tok_s_roof: float  # aggregate over the batch
    max_sequences: int  # full-context sequences that fit beside the weights


def bounds(hw: HardwareSpec, shape, weight_dtype: str, batch: int, prompt_tokens: int, output_tokens: int) -> Bounds:
    context = prompt_tokens + output_tokens // 2  # the KV cache a mid-answer step reads
    weights = sizing.weight_bytes(shape, weight_dtype)
    step_bytes = weights + sizing.kv_cache_bytes(shape, batch, context)
    compute = sizing.prefill_seconds_bound(hw, shape, prompt_tokens)
    return Bounds(hardware=hw.name, weight_dtype=weight_dtype, weights_gb=weights / 1e9,
                  tpot_floor_s=step_bytes / hw.bandwidth_bytes_s,
                  ttft_floor_s=max(compute, weights / hw.bandwidth_bytes_s),
                  decode_tok_s_roof=sizing.decode_tokens_per_s_bound(hw, shape, batch, context, weight_dtype),
                  max_sequences=sizing.max_concurrent_sequences(hw.memory_gb * 1e9, shape,
                                                              prompt_tokens + output_tokens, weight_dtype))


def mbu(b: Bounds, measured_tpot_s: float) -> float:
    """Share of memory bandwidth a decode step used: floor step time / measured step time."""
    return b.tpot_floor_s / measured_tpot_s if measured_tpot_s else float("nan")
