"""Device proof for lab 02's KV arithmetic (run on the `device` machine; see docs/device-proof.md).

    PYTHONPATH=src python3 scripts/device_proof/device_proof_kv.py --out $OUT/kv.json

1. Bytes per token: for each shape (Llama-3.1-8B, Qwen3-8B, SmolLM2-135M: three different layer / KV-head /
   head-dim mixes) build the model from its shipped config.json in bf16 on the GPU (random weights, no
   download), run one forward pass over N tokens with a transformers DynamicCache and compare the memory the
   filled cache holds (``torch.cuda.memory_allocated`` delta) with ``spark_labs.sizing.kv_bytes_per_token`` × N.
   The weights' delta is compared with ``sizing.weight_bytes`` on the way.
2. Capacity: for Llama-3.1-8B, the KV space vLLM would take at ``--gpu-memory-utilization`` 0.9 and 0.7,
   ``spark_labs.batching.kv_capacity.gpu_kv_space`` (utilization × memory − weights − activation peak −
   memory outside torch), fed the activation peak of a real forward pass over 8,192 tokens (vLLM's default
   token budget on an H100-class GPU), cut into whole blocks of 16 tokens; then the blocks are allocated
   for real and ``torch.cuda.mem_get_info`` shows how much of the GPU is in use. Nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHAPES = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-8B", "HuggingFaceTB/SmolLM2-135M-Instruct")
GIB = 2 ** 30


def build(torch, name: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    from spark_labs.sizing import embedded_config

    config = dict(embedded_config(name))
    config.pop("quantization_config", None)
    hf_config = AutoConfig.for_model(config.pop("model_type"), **config)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(hf_config, dtype=torch.bfloat16).eval()


def cache_row(torch, name: str, tokens: int) -> dict:
    from transformers import DynamicCache

    from spark_labs.sizing import ModelShape, embedded_config, kv_bytes_per_token, weight_bytes

    shape = ModelShape.from_config(embedded_config(name))
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    model = build(torch, name)
    weights = torch.cuda.memory_allocated() - before
    ids = torch.randint(0, shape.vocab_size, (1, tokens), device="cuda")
    filled_from = torch.cuda.memory_allocated()
    with torch.inference_mode():
        out = model(input_ids=ids, past_key_values=DynamicCache(config=model.config), use_cache=True,
                    logits_to_keep=1)
    cache = out.past_key_values
    del out
    torch.cuda.synchronize()
    kv = torch.cuda.memory_allocated() - filled_from
    predicted = kv_bytes_per_token(shape) * tokens
    row = {"model": name, "layers": shape.num_layers, "kv_heads": shape.num_kv_heads, "head_dim": shape.kv_head_dim,
           "tokens": tokens, "kv_bytes_per_token_calc": kv_bytes_per_token(shape), "kv_bytes_measured": kv,
           "kv_bytes_predicted": predicted, "kv_ratio": kv / predicted, "weight_bytes_measured": weights,
           "weight_bytes_calc": weight_bytes(shape), "weight_ratio": weights / weight_bytes(shape)}
    del cache, model, ids
    torch.cuda.empty_cache()
    return row


def capacity_rows(torch, name: str, budget_tokens: int, utilizations, block_size: int = 16) -> list[dict]:
    from spark_labs.batching.kv_capacity import gpu_kv_space
    from spark_labs.sizing import ModelShape, embedded_config, kv_bytes_per_token

    shape = ModelShape.from_config(embedded_config(name))
    torch.cuda.empty_cache()
    free0, total = torch.cuda.mem_get_info()
    non_torch = total - free0 - torch.cuda.memory_reserved()  # CUDA context and anything outside torch
    model = build(torch, name)
    weights = torch.cuda.memory_allocated()
    ids = torch.randint(0, shape.vocab_size, (1, budget_tokens), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        model(input_ids=ids, use_cache=False, logits_to_keep=1)
    torch.cuda.synchronize()
    activation_peak = torch.cuda.max_memory_allocated() - weights
    del ids
    per_token = kv_bytes_per_token(shape)
    rows = []
    for utilization in utilizations:
        torch.cuda.empty_cache()
        space = gpu_kv_space(total, utilization, weights, activation_peak, non_torch)
        blocks = space // (per_token * block_size)
        layer_shape = (2, blocks, block_size, shape.num_kv_heads, shape.kv_head_dim)
        kv = [torch.empty(layer_shape, dtype=torch.bfloat16, device="cuda") for _ in range(shape.num_layers)]
        free, _ = torch.cuda.mem_get_info()
        used = total - free
        rows.append({"model": name, "utilization": utilization, "total_bytes": total, "weights_bytes": weights,
                     "activation_peak_bytes": activation_peak, "budget_tokens": budget_tokens,
                     "non_torch_bytes": non_torch, "kv_space_bytes": space, "blocks": blocks,
                     "block_size": block_size, "kv_tokens": blocks * block_size,
                     "kv_allocated_bytes": sum(t.numel() * t.element_size() for t in kv),
                     "gpu_used_bytes_after_kv": used,
                     "used_plus_activation_peak_fraction": (used + activation_peak) / total})
        del kv
    del model
    torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--budget", type=int, default=8192)
    args = parser.parse_args()

    import torch
    import transformers

    torch.cuda.init()
    torch.empty(1, device="cuda")  # create the context before the first reading
    # cuBLAS takes its workspace from torch's allocator at the first matmul and keeps it: take it now, so the
    # first model's cache reading does not include it (the first run, without this, read +32 MiB there).
    before = torch.cuda.memory_allocated()
    a = torch.ones(64, 64, dtype=torch.bfloat16, device="cuda")
    (a @ a).sum().item()
    del a
    cublas_workspace = torch.cuda.memory_allocated() - before
    print(f"cuBLAS workspace held by torch's allocator after one matmul: {cublas_workspace / 2**20:.2f} MiB")
    caches = [cache_row(torch, name, args.tokens) for name in SHAPES]
    for row in caches:
        print(f"{row['model']:40s} L={row['layers']:2d} kvh={row['kv_heads']} hd={row['head_dim']:3d} "
              f"{row['tokens']} tokens: cache {row['kv_bytes_measured'] / 2**20:9.2f} MiB, calc "
              f"{row['kv_bytes_predicted'] / 2**20:9.2f} MiB (x{row['kv_ratio']:.4f}); "
              f"weights x{row['weight_ratio']:.4f}")
    capacity = capacity_rows(torch, SHAPES[0], args.budget, (0.9, 0.7))
    for row in capacity:
        print(f"util {row['utilization']}: weights {row['weights_bytes'] / GIB:.2f} GiB, activation peak "
              f"{row['activation_peak_bytes'] / GIB:.2f} GiB, outside torch {row['non_torch_bytes'] / GIB:.2f} GiB -> "
              f"KV {row['kv_space_bytes'] / GIB:.2f} GiB = {row['blocks']} blocks = {row['kv_tokens']:,} tokens; "
              f"allocated {row['kv_allocated_bytes'] / GIB:.2f} GiB; GPU in use + activation peak = "
              f"{row['used_plus_activation_peak_fraction']:.4f} of {row['total_bytes'] / GIB:.2f} GiB")
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "transformers": transformers.__version__, "cublas_workspace_bytes": cublas_workspace,
              "cache": caches, "capacity": capacity}
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
