"""Device proof for lab 03's compiled decode path (run on the `device` machine; see docs/device-proof.md).

    PYTHONPATH=src python3 scripts/device_proof/device_proof_build.py --runs 10 \
        [--configs reduce-overhead max-autotune+freezing] [--tiny-gguf SmolLM2.gguf] [--tokenizer dir]

On a random-weight Llama-3.1-8B-shaped bf16 model (the vendored config; no download), batch 1:
1. HF eager ``generate``: the baseline.
2. ``StaticCacheDecoder(compile=False)``: the same static-cache loop without compilation.
3. ``StaticCacheDecoder`` compiled with each of ``--configs`` (torch.compile modes or inductor options):
   build (compile) time with an empty inductor cache; then ``--runs`` generations of 128 tokens timed as a
   learner's loop runs them (``decoder.timed``: every token produced and read back on the host), each
   compared with the bandwidth roofline of the detected GPU. Beside them, where the time goes: the compiled
   step alone replayed back to back (CUDA events, no token read), and the kernels of one step by kind
   (torch.profiler), plus the step's logits against the eager step's (a check that the tuning is exact).
4. ``--tiny-gguf``: the embedded SmolLM2-135M (its GGUF, exported to bf16 on the GPU): do the eager loop, HF
   ``generate`` and the compiled loop produce the same greedy tokens, and where not, how close the two
   candidates were (the top-2 logit gap at the first difference).
5. ``--tokenizer``: ``spark_labs.serve``'s transformers backend on CUDA, on a random-weight SmolLM2-shaped model
   saved with the embedded model's real tokenizer: it must pick the compiled decoder and stream text through it.

Prints one JSON document (also $OUT/build_proof.json, rewritten after each section); nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path

import torch
from device_proof_foundation import _llama_config  # same shapes as the foundation proof
from torch._dynamo.utils import counters
from transformers import AutoModelForCausalLM as AutoModel

from spark_labs import sizing
from spark_labs.hardware.detect import detect_hardware
from spark_labs.variants.compiled import StaticCacheDecoder, fresh_compile_cache

PROMPT, NEW = 16, 128
# Keyword arguments of StaticCacheDecoder for each configuration the proof can build.
CONFIGS = {
    "reduce-overhead": {"mode": "reduce-overhead"},  # the library's default on CUDA: inductor + a CUDA graph
    "max-autotune": {"mode": "max-autotune"},  # + autotuned matmuls and coordinate-descent-tuned kernels
    # freezing: weights become constants, so inductor concatenates q/k/v and gate/up into one matmul each
    "reduce-overhead+freezing": {"mode": "reduce-overhead", "options": {"freezing": True}},
    "max-autotune+freezing": {"mode": "max-autotune", "options": {"freezing": True}},
    # + attention as matmul/softmax for inductor to fuse, instead of cuDNN's flash kernel (one query a layer)
    "max-autotune+freezing+math-attention": {"mode": "max-autotune", "options": {"freezing": True},
                                             "attention": "math"},
    "reduce-overhead+math-attention": {"mode": "reduce-overhead", "attention": "math"},
}


def _eager_generate_rate(model, new_tokens: int = 32) -> float:
    ids = torch.randint(0, model.config.vocab_size, (1, PROMPT), device="cuda")
    kwargs = {"do_sample": False, "min_new_tokens": new_tokens, "max_new_tokens": new_tokens, "pad_token_id": 0}
    model.generate(ids, **{**kwargs, "min_new_tokens": 4, "max_new_tokens": 4})
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate(ids, **kwargs)
    torch.cuda.synchronize()
    return new_tokens / (time.perf_counter() - start)


def _spread(values: list[float]) -> dict:
    return {"runs": len(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


def _on_thread(decoder: StaticCacheDecoder, fn):
    """Run ``fn`` where the decoder runs its generations (as a learner's loop would)."""
    return decoder._thread.submit(fn).result()


def _step_inputs(decoder: StaticCacheDecoder):
    """A fresh cache holding a PROMPT-token prefill, and a token and position to step from. Each step
    advances the cache (it keeps its own length on the device): stay within max_cache_len."""
    decoder.cache.reset()
    decoder._prefill(torch.zeros((1, PROMPT), dtype=torch.long, device="cuda"))
    return torch.zeros((1, 1), dtype=torch.long, device="cuda"), torch.tensor([PROMPT], device="cuda")


def _step_ms(decoder: StaticCacheDecoder, steps: int = 100) -> float:
    """The compiled step replayed back to back, nothing read back: the floor the loop can reach."""
    def replay() -> float:
        with torch.inference_mode():
            token, position = _step_inputs(decoder)
            for _ in range(3):
                decoder._next_logits(token, position)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(steps):
                decoder._next_logits(token, position)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / steps

    return _on_thread(decoder, replay)


def _kind(kernel: str) -> str:
    name = kernel.lower()
    if any(part in name for part in ("gemv", "gemm", "nvjet", "cutlass", "xmma", "_mm_", "tem_fused", "mm_")):
        return "matmul"
    if any(part in name for part in ("flash", "attention", "fmha", "sdpa", "softmax")):
        return "attention"
    return "other"


def _kernel_breakdown(decoder: StaticCacheDecoder, steps: int = 5) -> dict:
    """GPU time of one step by kernel kind (matmul, attention, other), from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    def run() -> dict:
        with torch.inference_mode():
            token, position = _step_inputs(decoder)
        with torch.inference_mode(), profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                decoder._next_logits(token, position)
            torch.cuda.synchronize()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        by_kind: dict[str, float] = {}
        top: dict[str, float] = {}
        for event in kernels:
            ms = event.time_range.elapsed_us() / 1e3 / steps
            by_kind[_kind(event.name)] = by_kind.get(_kind(event.name), 0.0) + ms
            top[event.name[:80]] = top.get(event.name[:80], 0.0) + ms
        return {"kernels_per_step": len(kernels) / steps, "ms_per_step_by_kind": by_kind,
                "kernel_ms_per_step": sum(by_kind.values()),
                "top_kernels_ms_per_step": dict(sorted(top.items(), key=lambda kv: -kv[1])[:8])}

    return _on_thread(decoder, run)


def _logits_error(decoder: StaticCacheDecoder, eager: StaticCacheDecoder, prompt: list[int]) -> float:
    """‖compiled − eager‖ / ‖eager‖ of one decode step's logits after the same prefill."""
    def step(which: StaticCacheDecoder):
        def run():
            with torch.inference_mode():
                which.cache.reset()
                logits = which._prefill(torch.tensor([prompt], device="cuda"))
                token = logits.argmax(-1).view(1, 1)
                return which._next_logits(token, torch.tensor([len(prompt)], device="cuda")).clone()
        return _on_thread(which, run)

    ours, reference = step(decoder), step(eager)
    return float((ours - reference).norm() / reference.norm())


def _release(decoder: StaticCacheDecoder) -> None:
    """Drop a decoder's graph and compiled code (and frozen weight copies) before the next build."""
    decoder._thread.shutdown()
    decoder._graph = decoder._step = None
    torch._dynamo.reset()
    torch.cuda.empty_cache()


def _decoder_readings(decoder: StaticCacheDecoder, bound: float, runs: int, prompt: list[int]) -> dict:
    with fresh_compile_cache():  # a first build, not a hit in an earlier run's inductor cache
        build_s = decoder.build()
    timings = [decoder.timed(prompt, NEW) for _ in range(runs)]
    rates = [t.decode_tok_s for t in timings]
    return {"build_s": build_s, "decode_tok_s": rates, "decode": _spread(rates),
            "fraction_of_roofline": {"median": statistics.median(rates) / bound, "min": min(rates) / bound,
                                     "max": max(rates) / bound},
            "prefill_tok_s": _spread([t.prefill_tok_s for t in timings])}


def llama8b(hw, configs: list[str], runs: int, report: dict, layers: int | None = None) -> dict:
    config = _llama_config(sizing.LLAMA_3_1_8B)
    if layers:  # a quick smoke run: its rates are not the 8B model's
        config.num_hidden_layers = layers
    with torch.device("cuda"):
        model = AutoModel.from_config(config, dtype=torch.bfloat16).eval()
    bound = sizing.decode_tokens_per_s_bound(hw.spec, sizing.LLAMA_3_1_8B, batch=1, context=PROMPT + NEW // 2)
    result = report["llama31_8b_bf16_batch1" if not layers else f"smoke_{layers}_layers"] = {
        "roofline_tok_s": bound, "weight_bytes": sizing.weight_bytes(sizing.LLAMA_3_1_8B, "bf16"),
        "prompt_tokens": PROMPT, "new_tokens": NEW, "eager_generate_tok_s": _eager_generate_rate(model)}
    prompt = torch.randint(0, model.config.vocab_size, (PROMPT,), generator=torch.Generator().manual_seed(0)).tolist()
    eager = StaticCacheDecoder(model, max_cache_len=PROMPT + NEW + 16, compile=False)
    result["static_cache_eager"] = _decoder_readings(eager, bound, 1, prompt)
    _write(report)
    for name in configs:
        decoder = None
        try:
            decoder = StaticCacheDecoder(model, max_cache_len=PROMPT + NEW + 16, **CONFIGS[name])
            reading = _decoder_readings(decoder, bound, runs, prompt)
            reading["step_alone_ms"] = _step_ms(decoder)
            reading["step_alone_fraction_of_roofline"] = 1e3 / reading["step_alone_ms"] / bound
            reading["loop_ms_per_token"] = 1e3 / reading["decode"]["median"]
            reading["logits_rel_error_vs_eager"] = _logits_error(decoder, eager, prompt)
            reading["dynamo_graphs_so_far"] = counters["stats"]["unique_graphs"]  # one per build: no recompiles
            try:
                reading["kernels"] = _kernel_breakdown(decoder)
            except Exception:  # noqa: BLE001 - the profile is a diagnosis, not the proof
                reading["kernels"] = {"failed": traceback.format_exc(limit=3)}
        except Exception:  # noqa: BLE001 - one failing configuration must not hide the others
            reading = {"failed": traceback.format_exc()}
            print(reading["failed"], file=sys.stderr, flush=True)
        result[f"compiled {name}"] = reading
        _write(report)
        if decoder is not None:
            _release(decoder)
    del model, eager
    torch.cuda.empty_cache()
    return result


def _first_difference(a: list[int], b: list[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


def tiny_agreement(gguf: Path, workdir: Path, new_tokens: int = 128) -> dict:
    """Greedy tokens of the embedded model, bf16 on the GPU: eager loop vs HF generate vs compiled loop."""
    from transformers import AutoTokenizer

    from spark_labs.models.embedded import export_gguf_to_hf

    start = time.perf_counter()
    export_gguf_to_hf(gguf, workdir)
    export_s = time.perf_counter() - start
    tokenizer = AutoTokenizer.from_pretrained(workdir)
    model = AutoModel.from_pretrained(workdir, dtype=torch.bfloat16).to("cuda").eval()
    questions = ["What is the capital of France?", "Write a haiku about memory bandwidth.",
                 "Explain in one paragraph what a KV cache is.", "List three uses of a GPU."]
    eager = StaticCacheDecoder(model, max_cache_len=256, compile=False)
    compiled = StaticCacheDecoder(model, max_cache_len=256)
    build_s = compiled.build()
    rows = []
    for question in questions:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                            return_dict=True)["input_ids"]
        ids = list(ids)
        forced = {"min_new_tokens": new_tokens}  # no early EOS: compare all new_tokens positions
        ours_eager = eager.generate(ids, new_tokens, **forced)
        ours_compiled = compiled.generate(ids, new_tokens, **forced)
        hf = model.generate(torch.tensor([ids], device="cuda"), max_new_tokens=new_tokens, do_sample=False,
                            pad_token_id=tokenizer.eos_token_id, **forced)[0, len(ids):].tolist()
        # generate masks EOS under min_new_tokens and the decoder does not: they may part where EOS would be
        row = {"question": question, "eager_loop_vs_generate_first_difference": _first_difference(ours_eager, hf),
               "compiled_vs_eager_first_difference": _first_difference(ours_compiled, ours_eager)}
        at = row["compiled_vs_eager_first_difference"]
        if at is not None:  # how close were the two candidates, on the eager model, after the common prefix?
            with torch.inference_mode():
                logits = model(torch.tensor([ids + ours_eager[:at]], device="cuda")).logits[0, -1].float()
            top2 = logits.topk(2).values
            row.update(eager_token=ours_eager[at], compiled_token=ours_compiled[at],
                       top2_gap=float(top2[0] - top2[1]),
                       gap_between_the_two=float(logits[ours_eager[at]] - logits[ours_compiled[at]]),
                       logit_spread=float(logits.std()),
                       eager_text=tokenizer.decode(ours_eager[max(0, at - 4): at + 4]),
                       compiled_text=tokenizer.decode(ours_compiled[max(0, at - 4): at + 4]))
        rows.append(row)
    return {"export_s": export_s, "compiled_build_s": build_s, "new_tokens": new_tokens, "prompts": rows}


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


def _write(report: dict) -> None:
    """The JSON so far, to $OUT: a run cut short by its time limit still returns what it measured."""
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "build_proof.json").write_text(json.dumps(report, indent=1, default=str))


def _summary(report: dict) -> str:
    key = next((k for k, v in report.items() if isinstance(v, dict) and "roofline_tok_s" in v), None)
    if key is None:
        return ""
    result = report[key]
    lines = [f"{key}: roofline {result['roofline_tok_s']:.1f} tok/s"]
    for name, reading in result.items():
        if name.startswith("compiled ") and "decode" in reading:
            d, f = reading["decode"], reading["fraction_of_roofline"]
            lines.append(f"{name:34s} build {reading['build_s']:6.1f} s  loop {d['median']:6.1f} tok/s "
                         f"({d['min']:.1f}-{d['max']:.1f}, {d['runs']} runs) = {f['median']:.1%} "
                         f"({f['min']:.1%}-{f['max']:.1%})  step alone {reading['step_alone_ms']:.2f} ms "
                         f"= {reading['step_alone_fraction_of_roofline']:.1%}")
        elif name.startswith("compiled "):
            lines.append(f"{name}: failed")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", nargs="*", default=["reduce-overhead", "max-autotune"], choices=list(CONFIGS))
    parser.add_argument("--runs", type=int, default=10, help="timed generations per compiled configuration")
    parser.add_argument("--layers", type=int, help="a quick smoke run on this many layers (not the 8B figures)")
    parser.add_argument("--skip-8b", action="store_true", help="only the tiny-model and serving sections")
    parser.add_argument("--tiny-gguf", type=Path, help="the embedded model's GGUF: compiled vs eager tokens")
    parser.add_argument("--tokenizer", type=Path, help="dir with the embedded model's config + tokenizer files")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/build-proof"))
    args = parser.parse_args()
    hw = detect_hardware()
    import transformers

    report = {"torch": torch.__version__, "transformers": transformers.__version__, "gpu": hw.gpu_names,
              "hardware_spec": hw.spec.key if hw.spec else None,
              "read_every": StaticCacheDecoder.read_every}
    if not args.skip_8b:
        llama8b(hw, args.configs, args.runs, report, args.layers)
    sections = [("embedded_model_tokens", args.tiny_gguf,
                 lambda: tiny_agreement(args.tiny_gguf, args.workdir / "tiny")),
                ("serve_transformers_backend", args.tokenizer,
                 lambda: serve_backend(args.tokenizer, args.workdir / "serve"))]
    for key, wanted, section in sections:
        if wanted:
            try:
                report[key] = section()
            except Exception:  # noqa: BLE001 - the proof records the failure with its cause
                report[key] = {"failed": traceback.format_exc()}
            _write(report)
    print(json.dumps(report, indent=1, default=str))
    print(_summary(report))
    sections = [v for v in report.values() if isinstance(v, dict)]
    readings = sections + [r for v in sections for r in v.values() if isinstance(r, dict)]
    return 1 if any("failed" in r for r in readings) else 0  # a failed section or configuration


if __name__ == "__main__":
    sys.exit(main())
