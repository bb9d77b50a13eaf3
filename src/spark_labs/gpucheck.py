"""``python -m spark_labs.gpucheck``: prove the GPU path on this machine in one run.

Detects the hardware, takes memory snapshots, exports the embedded GGUF to bf16 safetensors, loads it
on CUDA in bf16, answers a factual question, and times greedy decode at batch 1 and 8 against the
bandwidth roofline of the detected GPU. Prints everything it measured; claims nothing it did not.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _decode_rate(model, tokenizer, batch: int, new_tokens: int) -> float:
    import torch

    prompt = ["The history of computing began"] * batch
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
              "pad_token_id": tokenizer.eos_token_id}
    model.generate(**inputs, **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(**inputs, **kwargs)
    torch.cuda.synchronize()
    return batch * new_tokens / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_labs.gpucheck", description=__doc__)
    parser.add_argument("--gguf", help="GGUF to export (default: the embedded model)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .hardware.detect import detect_hardware
    from .hardware.memory import memory_snapshot
    from .models.embedded import embedded_gguf_path, export_gguf_to_hf
    from .sizing import SMOLLM2_135M, decode_tokens_per_s_bound, weight_bytes

    hardware = detect_hardware()
    print(f"hardware: {hardware.summary()} · CUDA {hardware.cuda_runtime} · driver {hardware.driver}")
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to prove here (the tiny profile runs on the CPU)")
        return 1
    before = memory_snapshot()
    gguf = Path(args.gguf) if args.gguf else embedded_gguf_path()
    export = Path(tempfile.mkdtemp()) / "export"
    export_gguf_to_hf(gguf, export)

    tokenizer = AutoTokenizer.from_pretrained(export)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(export, dtype=torch.bfloat16).to("cuda").eval()
    loaded = memory_snapshot()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to("cuda")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    with torch.no_grad():
        rates = {batch: _decode_rate(model, tokenizer, batch, 128) for batch in (1, 8)}
    results = {
        "hardware": hardware.summary(), "gpu": hardware.gpu_names, "unified_memory": hardware.unified_memory,
        "param_dtype": str(next(model.parameters()).dtype), "device": str(next(model.parameters()).device),
        "answer": answer, "answer_correct": "Paris" in answer,
        "torch_allocated_after_load_mib": loaded.torch_allocated / 2**20,
        "gpu_free_before_gib": before.gpu_free / 2**30, "gpu_free_after_load_gib": loaded.gpu_free / 2**30,
        "weights_bf16_mib_calculated": weight_bytes(SMOLLM2_135M, "bf16") / 2**20,
        "decode_tok_s": rates,
    }
    if hardware.spec:
        for batch, rate in rates.items():
            bound = decode_tokens_per_s_bound(hardware.spec, SMOLLM2_135M, batch=batch, context=256)
            results[f"roofline_tok_s_batch{batch}"] = bound
            results[f"fraction_of_roofline_batch{batch}"] = rate / bound
    for key, value in results.items():
        print(f"{key}: {value}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    return 0 if results["answer_correct"] and results["param_dtype"] == "torch.bfloat16" else 1


if __name__ == "__main__":
    raise SystemExit(main())
