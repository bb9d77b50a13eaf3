r"""Device proof for the foundation's GPU paths (run on the `device` machine; see docs/device-proof.md).

    PYTHONPATH=src python3 scripts/device_proof/device_proof_foundation.py \
        --parts /tmp/sparkproof --sha256 <gguf sha256>

1. ``detect_hardware()`` and ``memory_snapshot()`` on a real CUDA machine (torch, NVML, /proc/meminfo).
2. A randomly initialised model with SmolLM2-135M's and Llama-3.1-8B's shapes in bf16 on the GPU: the
   allocator's growth is compared with ``sizing.weight_bytes``; the 8B-shaped model's HF eager decode rate
   is compared with ``sizing.decode_tokens_per_s_bound`` for the detected GPU.
3. ``require_free_memory`` refusing a load that cannot fit, with its real message.
4. When every part of the embedded GGUF is under ``--parts`` (the 98 MB file travels in two calls):
   ``spark_labs.models.embedded.export_gguf_to_hf`` on the device, bf16 load on CUDA, greedy answer to a factual
   question. Without all parts this step says so and is skipped.

Prints one JSON document (also written to $OUT/proof.json when OUT is set); nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch

from spark_labs import sizing
from spark_labs.errors import InsufficientMemoryError
from spark_labs.hardware.detect import detect_hardware
from spark_labs.hardware.memory import memory_snapshot, require_free_memory

GB = 1e9


def _llama_config(shape: sizing.ModelShape):
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=shape.hidden_size, num_hidden_layers=shape.num_layers,
                       num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_kv_heads,
                       intermediate_size=shape.intermediate_size, vocab_size=shape.vocab_size,
                       tie_word_embeddings=shape.tie_embeddings, head_dim=shape.kv_head_dim)


def _random_model(shape: sizing.ModelShape):
    from transformers import AutoModelForCausalLM

    before = torch.cuda.memory_allocated()
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(_llama_config(shape), dtype=torch.bfloat16).eval()
    torch.cuda.synchronize()
    grown = torch.cuda.memory_allocated() - before
    return model, {"params": sum(p.numel() for p in model.parameters()), "calc_params": sizing.param_count(shape),
                   "allocated_bytes": grown, "calc_weight_bytes": sizing.weight_bytes(shape, "bf16")}


def _decode_rate(model, batch: int, new_tokens: int = 32, prompt: int = 16) -> float:
    ids = torch.randint(0, model.config.vocab_size, (batch, prompt), device="cuda")
    kwargs = {"do_sample": False, "min_new_tokens": new_tokens, "max_new_tokens": new_tokens, "pad_token_id": 0}
    model.generate(ids, **{**kwargs, "min_new_tokens": 4, "max_new_tokens": 4})  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = model.generate(ids, **kwargs)
    torch.cuda.synchronize()
    return batch * (out.shape[1] - prompt) / (time.perf_counter() - start)


def _copy_bandwidth() -> float:
    """Device-to-device copy, bytes read + written per second (what a decode step streams)."""
    src = torch.empty(2 * 2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    rate = 10 * 2 * src.numel() / (time.perf_counter() - start)
    del src, dst
    torch.cuda.empty_cache()
    return rate


def shapes_and_roofline(hw) -> dict:
    small, small_sizes = _random_model(sizing.SMOLLM2_135M)
    del small
    torch.cuda.empty_cache()
    big, big_sizes = _random_model(sizing.LLAMA_3_1_8B)
    after_load = memory_snapshot()
    rates = {}
    for batch in (1, 16):
        measured = _decode_rate(big, batch)
        bound = sizing.decode_tokens_per_s_bound(hw.spec, sizing.LLAMA_3_1_8B, batch=batch, context=48)
        rates[f"batch{batch}"] = {"measured_tok_s": measured, "roofline_tok_s": bound, "fraction": measured / bound}
    del big
    torch.cuda.empty_cache()
    return {"smollm2_135m_random_bf16": small_sizes, "llama31_8b_random_bf16": big_sizes,
            "snapshot_with_8b_loaded": after_load.as_rows(), "hf_eager_decode_vs_roofline": rates,
            "copy_bandwidth_gb_s": _copy_bandwidth() / GB, "table_bandwidth_gb_s": hw.spec.bandwidth_gbs}


def guard_message() -> dict:
    try:
        require_free_memory(200, what="Llama-3.1-70B in bf16 (~141 GB)")
    except InsufficientMemoryError as err:
        return {"raised": True, "message": str(err)}
    return {"raised": False}


def assemble_gguf(parts: Path, sha256: str) -> Path | None:
    chunks = sorted(parts.glob("part*"))
    target = parts / "embedded.gguf"
    if not target.exists():
        with open(target, "wb") as out:
            for chunk in chunks:
                out.write(chunk.read_bytes())
    if hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
        target.unlink()
        return None
    return target


def real_model(gguf: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spark_labs.models.embedded import export_gguf_to_hf

    export = gguf.parent / "hf-export"
    start = time.perf_counter()
    export_gguf_to_hf(gguf, export)
    export_s = time.perf_counter() - start
    files = {p.name: p.stat().st_size for p in export.iterdir()}
    before = torch.cuda.memory_allocated()
    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.bfloat16, device_map="cuda").eval()
    loaded_bytes = torch.cuda.memory_allocated() - before
    tokenizer = AutoTokenizer.from_pretrained(export)
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True).to("cuda")
    start = time.perf_counter()
    out = model.generate(**ids, do_sample=False, max_new_tokens=24)
    torch.cuda.synchronize()
    gen_s = time.perf_counter() - start
    new = out[0, ids["input_ids"].shape[1]:]
    answer = tokenizer.decode(new, skip_special_tokens=True)
    return {"export_seconds": export_s, "export_files": files, "dtype": str(next(model.parameters()).dtype),
            "device": str(next(model.parameters()).device), "cuda_allocated_bytes": loaded_bytes,
            "calc_weight_bytes": sizing.weight_bytes(sizing.SMOLLM2_135M, "bf16"), "answer": answer,
            "mentions_paris": "paris" in answer.lower(), "new_tokens": int(new.numel()),
            "decode_tok_s_hf_eager": new.numel() / gen_s, "snapshot_with_model": memory_snapshot().as_rows()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", type=Path, required=True)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--skip-shapes", action="store_true", help="only the real-model step")
    args = parser.parse_args()

    hw = detect_hardware()
    report = {"python": sys.version.split()[0], "torch": torch.__version__,
              "hardware": {k: v for k, v in dataclasses.asdict(hw).items() if k != "spec"},
              "hardware_spec": hw.spec.key if hw.spec else None, "snapshot_idle": memory_snapshot().as_rows()}
    if not args.skip_shapes:
        report["shapes_and_roofline"] = shapes_and_roofline(hw)
        report["guard"] = guard_message()
    gguf = assemble_gguf(args.parts, args.sha256)
    report["real_model"] = real_model(gguf) if gguf else {
        "skipped": f"embedded GGUF incomplete under {args.parts}: {sorted(p.name for p in args.parts.glob('part*'))}"}
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "proof.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
