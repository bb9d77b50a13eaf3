"""Back-of-the-envelope serving math: weight bytes, KV-cache bytes, and roofline bounds.

Decode is memory-bound: every step reads all weights once plus each sequence's KV cache, so
``tokens/s ≤ batch × bandwidth / (weight_bytes + batch × context × kv_bytes_per_token)``.
Prefill is compute-bound: ``time ≥ 2 × params × prompt_tokens / peak_flops``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ProfileError
from .hardware.datasheets import HardwareSpec

__all__ = ["BITS_PER_WEIGHT", "KNOWN_MODELS", "KV_BYTES", "LLAMA_3_1_70B", "LLAMA_3_1_8B", "ModelShape", "QWEN3_8B",
           "SMOLLM2_135M", "ShapeLike", "as_shape", "bytes_per_weight", "decode_tokens_per_s_bound", "embedded_config",
           "known_model", "kv_bytes_per_token", "kv_cache_bytes", "max_concurrent_sequences", "param_count",
           "prefill_seconds_bound", "roofline", "weight_bytes"]


# Bits per weight including the scales each format stores alongside the 4/8-bit values.
BITS_PER_WEIGHT: dict[str, float] = {
    "float32": 32, "fp32": 32,
    "bfloat16": 16, "bf16": 16, "float16": 16, "fp16": 16,
    "fp8": 8, "int8": 8,
    "nvfp4": 4.5,   # 4-bit values + one FP8 scale per 16 values
    "mxfp4": 4.25,  # 4-bit values + one 8-bit scale per 32 values
    "nf4": 4.5,     # bitsandbytes NF4: 4-bit + fp32 absmax per 64 values (4.127 with double quant)
    "int4": 4.25,   # GPTQ/AWQ, group size 128: 4-bit + fp16 scale + 4-bit zero point per 128 (4.16-4.25)
    "q4_0": 4.5,    # GGUF: 32 weights share one fp16 scale
    "q4_1": 5.0,    # GGUF: fp16 scale + fp16 minimum per 32 weights
    "q8_0": 8.5,    # GGUF: 32 int8 weights + one fp16 scale
    "q4_k_m": 4.85,  # GGUF k-quant mix (llama.cpp's reported average)
}

KV_BYTES = {"bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "fp8": 1, "float32": 4, "fp32": 4}


@dataclass(frozen=True)
class ModelShape:
    """The config fields that size a decoder-only transformer."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool = False
    head_dim: int | None = None

    @property
    def kv_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any, name: str = "") -> ModelShape:
        """From an HF ``config.json`` dict or a ``transformers`` config object."""
        get = config.get if isinstance(config, Mapping) else lambda k, d=None: getattr(config, k, d)
        required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
        missing = [key for key in required if get(key) is None]
        if missing:
            raise ProfileError(f"This config lacks {', '.join(missing)}: the calculators size decoder-only "
                               "transformers (Llama-style config.json); pass such a config or a ModelShape")
        heads = get("num_attention_heads")
        return cls(
            name=name or get("_name_or_path", "") or get("model_type", "model"),
            hidden_size=get("hidden_size"), num_layers=get("num_hidden_layers"), num_heads=heads,
            num_kv_heads=get("num_key_value_heads") or heads, intermediate_size=get("intermediate_size"),
            vocab_size=get("vocab_size"), tie_embeddings=bool(get("tie_word_embeddings", False)),
            head_dim=get("head_dim"),
        )


def _local_config(name: str) -> dict[str, Any] | None:
    """The ``config.json`` of a local model folder (``SPARK_LABS_MODEL=<folder>``, a learner's own model) as a
    dict, or None when ``name`` is no such folder."""
    import json
    from pathlib import Path

    path = Path(name).expanduser() / "config.json"
    return json.loads(path.read_text()) if path.is_file() else None


# config.json of the course's reference models ship inside the package (the allow-list in
# spark_labs.models.catalog, each with its source and the date it was checked), so sizing never needs the network.
def embedded_config(name: str) -> dict[str, Any]:
    """The shipped ``config.json`` of ``name`` (an id of :func:`spark_labs.models.catalog.catalog`) as a dict;
    for a local model folder, the ``config.json`` in it."""
    from .models.catalog import catalog

    if name in catalog():
        return catalog()[name].config()
    if (config := _local_config(name)) is not None:
        return config
    raise ProfileError(f"No embedded config for {name!r}; embedded: {', '.join(catalog())}")


LLAMA_3_1_8B = ModelShape.from_config(embedded_config("meta-llama/Llama-3.1-8B-Instruct"))
SMOLLM2_135M = ModelShape.from_config(embedded_config("HuggingFaceTB/SmolLM2-135M-Instruct"))
LLAMA_3_1_70B = ModelShape.from_config(embedded_config("meta-llama/Llama-3.1-70B-Instruct"))
QWEN3_8B = ModelShape.from_config(embedded_config("Qwen/Qwen3-8B"))
KNOWN_MODELS = {m.name: m for m in (LLAMA_3_1_8B, LLAMA_3_1_70B, QWEN3_8B, SMOLLM2_135M)}

ShapeLike = ModelShape | Mapping[str, Any] | Any  # a shape, a config.json dict or a transformers config


def known_model(name: str) -> ModelShape:
    """The shape of a catalog model, or of a local model folder from its ``config.json``."""
    if name in KNOWN_MODELS:
        return KNOWN_MODELS[name]
    if (config := _local_config(name)) is not None:
        return ModelShape.from_config(config, name=name)
    raise ProfileError(f"No built-in shape for {name!r}: pass its config.json to ModelShape.from_config")


def as_shape(model: ShapeLike) -> ModelShape:
    """Accept a :class:`ModelShape`, an HF ``config.json`` dict, a transformers config or a model."""
    if isinstance(model, ModelShape):
        return model
    return ModelShape.from_config(getattr(model, "config", model))


def param_count(shape: ShapeLike) -> int:
    """Parameters of a Llama-style decoder (attention, gated MLP, RMSNorms, embeddings, output head)."""
    shape = as_shape(shape)
    d, kv = shape.hidden_size, shape.num_kv_heads * shape.kv_head_dim
    q = shape.num_heads * shape.kv_head_dim
    attention = d * q + 2 * d * kv + q * d
    mlp = 3 * d * shape.intermediate_size
    per_layer = attention + mlp + 2 * d
    embeddings = shape.vocab_size * d
    head = 0 if shape.tie_embeddings else shape.vocab_size * d
    return shape.num_layers * per_layer + embeddings + head + d


def bytes_per_weight(dtype: str) -> float:
    key = dtype.lower()
    if key not in BITS_PER_WEIGHT:
        raise ProfileError(f"Unknown weight format {dtype!r}; known: {', '.join(sorted(BITS_PER_WEIGHT))}")
    return BITS_PER_WEIGHT[key] / 8


def weight_bytes(params: int | ShapeLike, dtype: str = "bfloat16") -> float:
    """Bytes of weights in ``dtype``: a parameter count, or anything :func:`as_shape` accepts."""
    count = params if isinstance(params, int) else param_count(params)
    return count * bytes_per_weight(dtype)


def kv_bytes_per_token(shape: ShapeLike, dtype: str = "bfloat16") -> int:
    """K and V for every layer: 2 × layers × kv_heads × head_dim × bytes (128 KiB for Llama-3.1-8B bf16)."""
    shape = as_shape(shape)
    if dtype.lower() not in KV_BYTES:
        raise ProfileError(f"Unknown KV-cache dtype {dtype!r}; known: {', '.join(sorted(KV_BYTES))}")
    return 2 * shape.num_layers * shape.num_kv_heads * shape.kv_head_dim * KV_BYTES[dtype.lower()]


def kv_cache_bytes(shape: ShapeLike, batch: int, context: int, dtype: str = "bfloat16") -> int:
    return batch * context * kv_bytes_per_token(shape, dtype)


def decode_tokens_per_s_bound(hw: HardwareSpec, shape: ShapeLike, batch: int = 1, context: int = 1024,
                              weight_dtype: str = "bfloat16", kv_dtype: str = "bfloat16") -> float:
    """Aggregate decode tok/s upper bound: each step streams the weights once plus every sequence's KV cache
    (``context`` tokens each), so ``B × bandwidth / (weights + B × context × kv_bytes_per_token)``."""
    step_bytes = weight_bytes(shape, weight_dtype) + kv_cache_bytes(shape, batch, context, kv_dtype)
    return batch * hw.bandwidth_bytes_s / step_bytes


def prefill_seconds_bound(hw: HardwareSpec, shape: ShapeLike, prompt_tokens: int,
                          compute_dtype: str = "bfloat16") -> float:
    """TTFT lower bound from FLOPs alone (≈2 FLOPs per parameter per token)."""
    return 2 * param_count(shape) * prompt_tokens / hw.peak_flops(compute_dtype)


def max_concurrent_sequences(memory_bytes: float, shape: ShapeLike, context: int,
                             weight_dtype: str = "bfloat16", kv_dtype: str = "bfloat16",
                             reserve_fraction: float = 0.1) -> int:
    """How many full-context sequences fit beside the weights before requests must queue."""
    free = memory_bytes * (1 - reserve_fraction) - weight_bytes(shape, weight_dtype)
    per_sequence = context * kv_bytes_per_token(shape, kv_dtype)
    return max(0, int(free // per_sequence))


def roofline(hw: HardwareSpec, shape: ShapeLike, batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
             context: int = 1024, weight_dtype: str = "bfloat16", kv_dtype: str = "bfloat16"):
    """Decode bounds per batch size as a DataFrame: what each step reads, aggregate and per-sequence tok/s,
    and whether weights + KV cache fit in ``hw``'s memory at all."""
    import pandas as pd

    weights = weight_bytes(shape, weight_dtype)
    rows = []
    for batch in batches:
        kv = kv_cache_bytes(shape, batch, context, kv_dtype)
        bound = decode_tokens_per_s_bound(hw, shape, batch, context, weight_dtype, kv_dtype)
        rows.append({"batch": batch, "weights_gb": weights / 1e9, "kv_cache_gb": kv / 1e9,
                     "tok_s_bound": bound, "tok_s_per_sequence": bound / batch,
                     "fits_in_memory": weights + kv <= hw.memory_gb * 1e9})
    return pd.DataFrame(rows)
