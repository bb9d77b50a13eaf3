"""GGUF variants of one model, built ahead of time: F16 -> Q8_0 -> Q4_K_M (lab 03, tiny profile).

The F16 file is the embedded Q4_1 GGUF dequantized tensor by tensor with the ``gguf`` library (the same
weights, two bytes each: Q4_1 is where this model's weights come from, so F16 is its best quality here).
The quantized variants are made from that F16 by llama.cpp's own quantizer
(``llama_cpp.llama_model_quantize``), exactly as ``llama-quantize`` would. Each build is timed and sized.

Before anything is written, :func:`check_room` compares what the build will write and hold with the free
disk and memory, and stops with a message that says what to free or which variant to pick instead.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import sizing
from ..errors import InsufficientMemoryError
from .room import ensure_memory

# Variant -> (llama.cpp file type constant name, sizing's weight-format key). F16 is not quantized by llama.cpp.
VARIANTS: dict[str, tuple[str | None, str]] = {
    "F16": (None, "fp16"),
    "Q8_0": ("LLAMA_FTYPE_MOSTLY_Q8_0", "q8_0"),
    "Q4_K_M": ("LLAMA_FTYPE_MOSTLY_Q4_K_M", "q4_k_m"),
}


@dataclass(frozen=True)
class BuiltVariant:
    name: str
    path: Path
    size_bytes: int
    build_s: float  # wall seconds of this variant's own build (the F16 it starts from is built once)
    fallback_tensors: int = 0  # tensors llama.cpp stored in another format than the variant's (its log says why)


def variant_names() -> list[str]:
    return list(VARIANTS)


def predicted_bytes(variant: str, shape: sizing.ShapeLike = sizing.SMOLLM2_135M) -> float:
    """What sizing predicts for the variant's weights (the file adds metadata and the tokenizer)."""
    return sizing.weight_bytes(shape, _check_name(variant)[1])


def check_room(variant: str, out_dir: Path, shape: sizing.ShapeLike = sizing.SMOLLM2_135M,
               free_disk: float | None = None, free_memory: float | None = None) -> None:
    """Raise before building when the variant cannot fit on disk (the file) or in memory (what the build holds).

    The build holds the F16 source and the output at once; the output is at most F16-sized, so both limits
    are checked against two F16 copies. ``free_disk``/``free_memory`` (bytes) override the readings.
    """
    _check_name(variant)
    needed = 2 * sizing.weight_bytes(shape, "fp16")
    out_dir = Path(out_dir)
    existing = next((p for p in (out_dir, *out_dir.parents) if p.exists()), Path("/"))
    disk = shutil.disk_usage(existing).free if free_disk is None else free_disk
    if disk < needed:
        raise InsufficientMemoryError(
            f"building the {variant} GGUF writes up to {needed / 1e9:.2f} GB under {out_dir}, but only "
            f"{disk / 1e9:.2f} GB is free on that disk. Nothing was written. Free space there or pass another "
            "output directory (spark-labs build quantize --out DIR).")
    ensure_memory(needed, f"building the {variant} GGUF", "Nothing was started. Stop engines or kernels you no "
                  "longer need, or build a smaller model.", free_memory)


def build_f16(source: Path, target: Path) -> BuiltVariant:
    """Dequantize every quantized tensor of ``source`` to float16 into ``target`` (F32 tensors stay F32)."""
    import gguf
    import numpy as np

    start = time.perf_counter()
    reader = gguf.GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(target)
    writer = gguf.GGUFWriter(partial, arch=arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":  # the writer adds these itself
            continue
        value = int(gguf.LlamaFileType.MOSTLY_F16) if key == "general.file_type" else field.contents()
        kind = field.types[0]
        writer.add_key_value(key, value, kind, sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY
                             else None)
    for tensor in reader.tensors:
        if tensor.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            data = np.asarray(tensor.data)
        else:
            data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float16)
        writer.add_tensor(tensor.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(target)  # a half-written file never looks like a finished variant
    return BuiltVariant("F16", target, target.stat().st_size, time.perf_counter() - start)


def quantize(f16: Path, target: Path, variant: str, threads: int = 0) -> BuiltVariant:
    """llama.cpp's quantizer from the F16 file to ``variant`` (``threads`` 0: llama.cpp picks)."""
    import llama_cpp

    ftype_name, _ = _check_name(variant)
    if ftype_name is None:
        raise ValueError(f"{variant} is the unquantized source; build it with build_f16")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, ftype_name)
    params.nthread = threads
    partial = _partial(target)
    start = time.perf_counter()
    with _captured_llama_log() as log:
        status = llama_cpp.llama_model_quantize(str(f16).encode(), str(partial).encode(), ctypes.byref(params))
    if status != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"llama.cpp's quantizer failed ({status}) making {variant} from {f16}; the end of its "
                           "log:\n" + "".join(log)[-2000:])
    partial.replace(target)
    fallback = re.search(r"(\d+) of \d+ tensor\(s\) required fallback", "".join(log))
    return BuiltVariant(variant, target, target.stat().st_size, time.perf_counter() - start,
                        int(fallback.group(1)) if fallback else 0)


class _captured_llama_log:
    """Collect llama.cpp's log (one line per tensor while quantizing) instead of printing it; restore after."""

    def __enter__(self) -> list[str]:
        import llama_cpp

        self.lines: list[str] = []

        def collect(level, text, user_data):
            self.lines.append(text.decode("utf-8", "replace"))

        self._callback = llama_cpp.llama_log_callback(collect)  # kept referenced while C may call it
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
        return self.lines

    def __exit__(self, *exc) -> None:
        import llama_cpp
        from llama_cpp import _logger

        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def build_variants(source: Path, out_dir: Path, variants: list[str] | None = None,
                   threads: int = 0) -> list[BuiltVariant]:
    """Build ``variants`` (default all) of ``source`` into ``out_dir``; the room check comes first for all."""
    wanted = variants or variant_names()
    for name in wanted:
        check_room(name, out_dir)
    out_dir = Path(out_dir)
    stem = source.name.split(".")[0]
    f16 = build_f16(source, out_dir / f"{stem}.F16.gguf")
    built = {"F16": f16}
    for name in wanted:
        if name not in built:
            built[name] = quantize(f16.path, out_dir / f"{stem}.{name}.gguf", name, threads)
    return [built[name] for name in wanted]


def _partial(target: Path) -> Path:
    """Where a build writes before the final rename; unique per process, so two builds never share it."""
    return target.with_name(f"{target.name}.{os.getpid()}.partial")


def _check_name(variant: str) -> tuple[str | None, str]:
    if variant not in VARIANTS:
        raise ValueError(f"unknown GGUF variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[variant]
