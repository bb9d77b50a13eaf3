"""Weight-only quantization in PyTorch (lab 03): the exported HF model loaded by transformers in bf16 and in
bitsandbytes NF4, each timed and sized like the GGUF variants.

bitsandbytes quantizes while loading: every ``nn.Linear`` weight becomes 4-bit NF4 codes with one float32
absmax per block of 64 values, and each matmul dequantizes to the compute dtype (bf16) on the fly. The
token embedding is not a Linear and stays bf16 -- for SmolLM2-135M, whose output head shares it, that is a
fifth of the parameters. The "build" is the load itself: reading the checkpoint and quantizing it.

Before loading, :func:`check_room` compares what the load holds with the free memory and stops with a
message that says what to do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .. import sizing
from .room import ensure_memory

# Variant -> sizing's weight-format key. bf16 is the unquantized baseline in the same engine.
WEIGHT_ONLY_VARIANTS: dict[str, str] = {"bf16": "bf16", "NF4": "nf4"}


@dataclass
class LoadedVariant:
    name: str
    model: object  # a transformers model, ready for inference
    load_s: float  # wall seconds to read the checkpoint (and quantize it, for NF4)
    weight_bytes: int  # bytes of weights in memory, quantization statistics included


def check_room(variant: str, shape: sizing.ShapeLike = sizing.SMOLLM2_135M, free_memory: float | None = None) -> None:
    """Raise before loading when the variant cannot fit in memory.

    A quantizing load reads the bf16 checkpoint and holds the result beside it, so it needs the bf16
    weights plus the variant's; ``free_memory`` (bytes) overrides the reading.
    """
    fmt = _check_name(variant)
    needed = sizing.weight_bytes(shape, "bf16") + (sizing.weight_bytes(shape, fmt) if fmt != "bf16" else 0)
    quantized = " (the bf16 checkpoint it is quantized from, plus the result)" if fmt != "bf16" else ""
    ensure_memory(needed, f"loading the {variant} variant", f"Nothing was loaded{quantized}. Stop engines or "
                  "kernels you no longer need, or load a smaller model.", free_memory)


def load_variant(path: str | Path, variant: str, free_memory: float | None = None) -> LoadedVariant:
    """Load ``path`` (an HF folder or id) as ``variant`` on the CPU (or the GPU when there is one), timed;
    the room check sizes the model from its own config first."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    check_room(variant, sizing.ModelShape.from_config(AutoConfig.from_pretrained(str(path))), free_memory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    kwargs: dict = {"dtype": torch.bfloat16, "device_map": device}
    if variant == "NF4":
        hide_known_bitsandbytes_warning()
        kwargs["quantization_config"] = nf4_config()
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs).eval()
    return LoadedVariant(variant, model, time.perf_counter() - start, weight_bytes(model))


def weight_bytes(model) -> int:
    """Bytes of the model's parameters and buffers, plus bitsandbytes' per-block statistics (absmax), which
    ``get_memory_footprint`` leaves out."""
    total = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    for parameter in model.parameters():
        state = getattr(parameter, "quant_state", None)
        while state is not None:  # double quantization nests a second state for the absmax itself
            total += state.absmax.numel() * state.absmax.element_size()
            state = getattr(state, "state2", None) if getattr(state, "nested", False) else None
    return total


def _check_name(variant: str) -> str:
    if variant not in WEIGHT_ONLY_VARIANTS:
        raise ValueError(f"unknown weight-only variant {variant!r}; choose one of {', '.join(WEIGHT_ONLY_VARIANTS)}")
    return WEIGHT_ONLY_VARIANTS[variant]


def nf4_config():
    """bitsandbytes 4-bit NF4 weights with bf16 compute: the one 4-bit set-up of the course (labs 00 and 03)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)


KNOWN_HARMLESS_WARNING = "Failed to load CPU gemm_4bit_forward"


class _DropKnownWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(KNOWN_HARMLESS_WARNING)


def hide_known_bitsandbytes_warning() -> None:
    """Drop one warning bitsandbytes logs on CPUs with AVX512-BF16: it looks for an optional kernel
    package (``kernels``) and, when that is absent, warns before using its own CPU kernel — which is
    correct, so the red box only alarms learners. Every other bitsandbytes message still shows."""
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if not any(isinstance(f, _DropKnownWarning) for f in logger.filters):
        logger.addFilter(_DropKnownWarning())
