"""Device proof for lab 03's compiled decode path (run on the `device` machine; see docs/device-proof.md).

    PYTHONPATH=src python3 scripts/device_proof/device_proof_build.py --tokenizer shared-tokenizer-dir

On a random-weight Llama-3.1-8B-shaped bf16 model (the vendored config; no download), batch 1:
1. HF eager ``generate``: the baseline.
2. ``StaticCacheDecoder(compile=False)``: the same static-cache loop without compilation.
3. ``StaticCacheDecoder(compile=True)`` (CUDA graphs via ``mode="reduce-overhead"``): build (compile) time,
   then prefill and decode rates, each compared with the bandwidth roofline of the detected GPU.
4. ``spark_labs.serve``'s transformers backend on CUDA, on a random-weight SmolLM2-shaped model saved with the
   embedded model's real tokenizer (``--tokenizer``): it must pick the compiled decoder and stream text
   through it, with the token count the decoder produced.

Prints one JSON document (also $OUT/build_proof.json when OUT is set); nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import torch
from device_proof_foundation import _llama_config  # same shapes as the foundation proof
from transformers import AutoModelForCausalLM as AutoModel

from spark_labs import sizing
from spark_labs.hardware.detect import detect_hardware
from spark_labs.variants.compiled import StaticCacheDecoder

PROMPT, NEW = 16, 128


def _eager_generate_rate(model, new_tokens: int = 32) -> float:
    ids = torch.randint(0, model.config.vocab_size, (1, PROMPT), device="cuda")
    kwargs = {"do_sample": False, "min_new_tokens": new_tokens, "max_new_tokens": new_tokens, "pad_token_id": 0}
    model.generate(ids, **{**kwargs, "min_new_tokens": 4, "max_new_tokens": 4})
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(ids, **kwargs)
    torch.cuda.synchronize()
    return new_tokens / (time.perf_counter() - start)


def _decoder_readings(model, compile: bool, bound: float, repeats: int = 3) -> dict:
    decoder = StaticCacheDecoder(model, max_cache_len=PROMPT + NEW + 16, compile=compile)
    build_s = decoder.build()
    prompt = torch.randint(0, model.config.vocab_size, (PROMPT,)).tolist()
    runs = [decoder.timed(prompt, NEW) for _ in range(repeats)]
    best = max(runs, key=lambda r: r.decode_tok_s)
    return {"build_s": build_s, "decode_tok_s": [r.decode_tok_s for r in runs],
            "prefill_tok_s": [r.prefill_tok_s for r in runs], "best_fraction_of_roofline": best.decode_tok_s / bound}


def llama8b(hw) -> dict:
    with torch.device("cuda"):
        model = AutoModel.from_config(_llama_config(sizing.LLAMA_3_1_8B), dtype=torch.bfloat16).eval()
    bound = sizing.decode_tokens_per_s_bound(hw.spec, sizing.LLAMA_3_1_8B, batch=1, context=PROMPT + NEW // 2)
    result = {"roofline_tok_s": bound, "eager_generate_tok_s": _eager_generate_rate(model)}
    result["static_cache_eager"] = _decoder_readings(model, compile=False, bound=bound, repeats=1)
    result["static_cache_compiled"] = _decoder_readings(model, compile=True, bound=bound)
    del model
    torch.cuda.empty_cache()
    return result


def serve_backend(tokenizer_dir: Path, workdir: Path) -> dict:
    from transformers import AutoConfig, AutoTokenizer

    from spark_labs.serve.backends import GenerationRequest, Outcome, TransformersBackend

    config = AutoConfig.from_pretrained(tokenizer_dir)
    model = AutoModel.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(workdir)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(workdir)
    backend = TransformersBackend(str(workdir), "random-smollm2")

    async def ask() -> tuple[str, Outcome]:
        outcome, pieces = Outcome(), []
        request = GenerationRequest(kind="chat", model="random-smollm2", max_tokens=24, ignore_eos=True,
                                    messages=[{"role": "user", "content": "Hello"}], temperature=0.0)
        async for piece in backend.stream(request, outcome):
            pieces.append(piece.text)
        return "".join(pieces), outcome

    errors: list[str] = []

    def from_a_new_thread() -> None:  # the gateway generates from a fresh thread per request
        try:
            backend.decoder.generate([1] * 8, 4)
        except Exception:  # noqa: BLE001 - recorded with its traceback
            errors.append(traceback.format_exc())

    worker = threading.Thread(target=from_a_new_thread)
    worker.start()
    worker.join()
    if errors:
        return {"decoder_from_new_thread": errors[0]}
    start = time.perf_counter()
    text, outcome = asyncio.run(ask())
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    asyncio.run(ask())
    second_s = time.perf_counter() - start
    return {"uses_compiled_decoder": backend.decoder is not None and backend.decoder.compiled,
            "decoder_cache_len": backend.decoder.max_cache_len if backend.decoder else None,
            "completion_tokens": outcome.usage.completion_tokens, "text_chars": len(text),
            "first_request_s (includes compile)": first_s, "second_request_s": second_s}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", type=Path, help="dir with the embedded model's config + tokenizer files")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/build-proof"))
    args = parser.parse_args()
    hw = detect_hardware()
    import transformers

    report = {"torch": torch.__version__, "transformers": transformers.__version__, "gpu": hw.gpu_names,
              "hardware_spec": hw.spec.key if hw.spec else None, "llama31_8b_bf16_batch1": llama8b(hw)}
    print(json.dumps(report, indent=1, default=str), flush=True)  # kept even if the serving step fails
    if args.tokenizer:
        try:
            report["serve_transformers_backend"] = serve_backend(args.tokenizer, args.workdir)
        except Exception:  # noqa: BLE001 - the proof records the failure with its cause
            report["serve_transformers_backend"] = {"failed": traceback.format_exc()}
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "build_proof.json").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
