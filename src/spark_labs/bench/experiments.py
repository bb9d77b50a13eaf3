"""Experiments built from the parts: a concurrency sweep, llama-bench-style ``pp``/``tg`` microbenchmarks,
and the whole engine comparison Lab 01 and ``make demo`` run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from .. import sizing
from ..engines.registry import resolve_engine
from ..errors import ProfileError
from .clients import BenchRequest, Target, reset_prefix_cache
from .load import Load, RunResult, run_load
from .metrics import request_metrics
from .prompts import Workload, standard_workloads, synthetic_prompt
from .report import EngineInfo, Report
from .roofline import host_spec
from .tokens import count_tokens, load_tokenizer


def engine_workloads(engine: str, plan) -> tuple[dict[str, Workload], tuple[int, ...], str | None]:
    """The standard workloads and sweep levels for ``engine`` on ``plan``'s profile, plus a note when
    they were scaled down (same prompts and output lengths, fewer requests).

    An engine the registry marks slow on a CPU (``EngineSpec.slow_on_cpu``) gets fewer requests and
    concurrency levels on the tiny profile, so a lab still finishes in minutes; the reason is printed
    and kept in the report."""
    workloads = standard_workloads(plan.sizes)
    levels = tuple(plan.sizes.concurrency)
    slow = resolve_engine(engine).slow_on_cpu
    if plan.profile.name == "tiny" and slow:
        workloads = {name: replace(w, num_requests=2) for name, w in workloads.items()}
        return workloads, levels[:2], f"{engine}: 2 requests per workload, concurrency {levels[:2]} ({slow})"
    return workloads, levels, None


def weight_dtype(engine: str, model) -> str:
    """What a decode step streams (the registry's ``EngineSpec.weight_dtype``)."""
    return resolve_engine(engine).weight_dtype(model)


def new_report(plan, title: str = "engine comparison") -> Report:
    """An empty report that knows the profile, model, hardware and model shape (for the roofline)."""
    try:
        shape = sizing.known_model(plan.model.hf_id)
    except ProfileError:  # an unknown model still gets latency numbers, just no roofline
        shape = None
    return Report(meta={"title": title, "profile": plan.profile.name, "model": plan.model.hf_id,
                        "hardware_spec": host_spec(), "shape": shape,
                        "created": dt.datetime.now().isoformat(timespec="seconds"), "skipped": {}})


def add_engine(report: Report, engine, model) -> Target:
    """Register a running :class:`EngineHandle` in the report and return its benchmark target."""
    report.engines[engine.spec.name] = EngineInfo(engine.spec.name, engine.spec.display_name,
                                                  engine.spec.weight_dtype(model), engine.ready_after_s,
                                                  engine.url)
    return Target.from_engine(engine)


def measure(report: Report, target: Target, workload: Workload, load: Load, tokenizer=None,
            progress=True) -> RunResult:
    """One workload under one load (prefix cache reset first where the engine allows); the run is appended
    to ``report``."""
    report.meta.setdefault("cache_reset", {})[target.name] = reset_prefix_cache(target)
    result = run_load(target, workload.requests(tokenizer, protocol=target.protocol), load, progress=progress)
    count_tokens(result.records, tokenizer, chat=target.protocol.endswith("chat"))
    report.runs.append(result)
    return result


def sweep(report: Report, target: Target, workload: Workload, concurrencies: Sequence[int], tokenizer=None,
          progress=True, ramp_up: float | None = None) -> list[RunResult]:
    """The same workload at rising closed-loop concurrency (each level gets ≥ concurrency × 2 requests);
    ``ramp_up`` as in :class:`Load` (None: the default ramp-up, 0: every stream starts together)."""
    results = []
    for c in concurrencies:
        sized = Workload(workload.name, workload.kind, max(workload.num_requests, 2 * c), workload.max_tokens,
                         workload.prompt_tokens, workload.force_length)
        results.append(measure(report, target, sized, Load("concurrent", c, ramp_up=ramp_up), tokenizer, progress))
    return results


def micro(target: Target, tokenizer, pp: int = 512, tg: int = 128, repeats: int = 3) -> pd.DataFrame:
    """llama-bench's two numbers through any engine's HTTP API: ``pp<N>`` (prompt tok/s from a prompt of
    exactly N tokens and one output token) and ``tg<N>`` (decode tok/s over N forced output tokens)."""
    rows = []
    for test, requests in (
        (f"pp{pp}", [BenchRequest(f"pp-{i}", synthetic_prompt(tokenizer, pp, seed=1000 + i), 1, f"pp{pp}",
                                  force_length=False, prompt_tokens=pp) for i in range(repeats)]),
        (f"tg{tg}", [BenchRequest(f"tg-{i}", synthetic_prompt(tokenizer, 16, seed=2000 + i), tg, f"tg{tg}",
                                  prompt_tokens=16) for i in range(repeats)]),
    ):
        result = run_load(target, requests, Load("sequential"), progress=False, server_metrics=False)
        count_tokens(result.records, tokenizer, chat=target.protocol.endswith("chat"))

        per = [request_metrics(r) for r in result.records if r.ok]
        values = [m.prefill_tok_s for m in per] if test.startswith("pp") else [m.decode_tok_s for m in per]
        values = [v for v in values if v]
        rows.append({"engine": target.name, "test": test, "tok_s_mean": float(np.mean(values)) if values else np.nan,
                     "tok_s_std": float(np.std(values)) if values else np.nan, "repeats": len(values)})
    return pd.DataFrame(rows)


def compare_engines(plan, engines: Sequence[str] | None = None,
                    workloads: Sequence[str] = ("prefill-heavy", "decode-heavy"),
                    sweep_workload: str = "chat", concurrencies: Sequence[int] | None = None,
                    progress=True, log: Callable[[str], None] = print) -> Report:
    """Start each engine in turn on the plan's model, run the same workloads and sweep, stop it.

    An engine that is not installed, or fails to start, is skipped *visibly*: its reason is logged and
    kept in ``report.meta['skipped']``; the comparison goes on with the others.
    """
    from ..engines import launch
    from ..errors import EngineError

    report = new_report(plan)
    tokenizer = load_tokenizer(plan.model)
    for name in engines or plan.engines:
        try:
            # A rich Progress (the CLI) shows the runs; the launcher's own bar is for notebooks.
            engine = launch(name, plan.model, port="auto", lab=plan.lab,
                            extra_args=resolve_engine(name).harness_args(plan.sizes.max_model_len, plan.profile.device),
                            timeout=plan.sizes.timeout_s,
                            progress=progress is True)
        except EngineError as exc:
            report.meta["skipped"][name] = str(exc).splitlines()[0]
            log(f"⏭ {name} skipped: {str(exc).splitlines()[0]}")
            continue
        with engine:
            log(f"{engine.spec.display_name} ready in {engine.ready_after_s:.1f} s at {engine.url}")
            target = add_engine(report, engine, plan.model)
            catalogue, levels, note = engine_workloads(name, plan)
            if note:
                report.meta.setdefault("notes", []).append(note)
                log(note)
            for w in workloads:  # one request at a time: per-request speed, no queueing
                measure(report, target, catalogue[w], Load("concurrent", 1), tokenizer, progress)
            sweep(report, target, catalogue[sweep_workload], concurrencies or levels, tokenizer, progress)
    return report


def __getattr__(name: str):
    # engine_args moved to spark_labs.engines in 0.2; a learner's saved notebook still finds it here until 0.3.
    if name != "engine_args":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import warnings

    from .._moved import MovedModuleWarning
    from ..engines.registry import engine_args

    warnings.warn("spark_labs.bench.experiments.engine_args moved to spark_labs.engines in spark-labs 0.2; import "
                  "it from there (the old name goes away in 0.3)", MovedModuleWarning, stacklevel=2)
    return engine_args
