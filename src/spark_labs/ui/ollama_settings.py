"""Lab 06 §5: what ``OLLAMA_NUM_PARALLEL`` does to chat streams that arrive together, measured on Ollama itself.

Ollama reads its settings from the environment of ``ollama serve``: a running server cannot change them. So
each value gets its own ``ollama serve`` (started by the launcher on a free port, with the same model store,
so a model pulled once is served without a download) and the same burst of chat requests, all started at
once. With one slot the streams queue — each waits for those before it, then decodes alone; with as many
slots as streams they start together and share every decode step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from ..bench.clients import BenchRequest, Target
from ..bench.load import Load, run_load
from ..engines import ENGINES
from ..engines import launch as launch_engine

# the registered engine whose server takes its parallelism from the environment (Ollama)
ENGINE = next(spec for spec in ENGINES.values() if spec.parallel_env)
SETTING = ENGINE.parallel_env


def num_parallel_compared(model: str, requests: list[BenchRequest], levels: Sequence[int] = (1, 4),
                          concurrency: int = 4, *, launch: Callable = launch_engine) -> pd.DataFrame:
    """One row per ``OLLAMA_NUM_PARALLEL`` value: ``requests`` sent ``concurrency`` at a time, every stream
    starting together, to an Ollama started with that value (a warm-up request loads the model first)."""
    rows = []
    for level in levels:
        with launch(ENGINE.name, model, port="auto", env={SETTING: str(level)}, progress=False) as engine:
            run = run_load(Target.from_engine(engine, protocol="ollama-chat"), requests,
                           Load("concurrent", concurrency, warmup=1, ramp_up=0), progress=False)
            summary = run.summary
            ttft, decode = summary.distributions.get("ttft"), summary.distributions.get("decode_tok_s")
            rows.append({SETTING: level, "concurrency": concurrency, "requests": summary.completed,
                         "failed": summary.failed, "output tok/s": summary.output_throughput,
                         "decode tok/s per stream p50": decode.p50 if decode else None,
                         "TTFT p50 ms": ttft.p50 * 1e3 if ttft else None,
                         "TTFT max ms": ttft.max * 1e3 if ttft else None})
    return pd.DataFrame(rows)
