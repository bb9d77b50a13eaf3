"""The course's measuring instrument: streaming clients, load generation, metrics, cross-checks,
roofline and reports.

Which module does which job:

- drive load: ``clients`` (requests, targets, one streamed request), ``transports`` (httpx / aiohttp, for
  comparison), ``load`` (closed / open loop, ramp-up), ``prompts`` (workloads), ``tokens`` (tokenizer, counts);
- measure: ``records`` (per-request chunks and timestamps), ``metrics`` (definitions, summaries),
  ``server_metrics`` (the engine's Prometheus view), ``lockstep`` (did the streams start together),
  ``start_regimes`` (lockstep vs ramp-up side by side), ``live`` (a server's metrics while something loads it),
  ``roofline`` (bounds, MBU);
- put together and present: ``experiments`` (measure / sweep / micro / compare engines), ``analysis`` (knee,
  diagnosis lines, which engine for which use), ``report`` (runs, tables, HTML / Markdown / JSON), ``figures``,
  ``learner_functions`` and ``checks`` (what the labs and their checkpoints use);
- ``selfcheck/``: the instrument checking itself (calibration server, harness and gateway overhead, accuracy
  against the engine's own numbers);
- ``cli`` (the ``spark-labs bench`` table and the checks all its commands share) and ``commands/`` (one module
  per sub-command, its flags beside its code).

``spark-labs bench --help`` for the command line; in a notebook::

    from spark_labs.bench import compare_engines
    report = compare_engines(plan("01"))
    report.summary_table(); report.figures()["Latency vs throughput"]
"""

from .analysis import claims_vs_measured, find_knee
from .checks import measuring_loop_problems, real_measurement_problems
from .clients import BenchRequest, Target
from .experiments import add_engine, compare_engines, engine_workloads, measure, micro, new_report, sweep
from .figures import timeline
from .learner_functions import knee_problems, mark_knees, sweeps, ttft_tpot_problems, ttft_tpot_table, use_case_problems
from .live import watch_while
from .load import Load, RunResult, run_load
from .metrics import DEFINITIONS, request_metrics, summarize
from .prompts import Workload, prompt_set, standard_workloads
from .records import Chunk, RequestRecord, TokenCounts
from .report import Report
from .roofline import bounds, host_spec
from .server_metrics import Scrape
from .start_regimes import compare_start_regimes
from .tokens import load_tokenizer

__all__ = ["BenchRequest", "Chunk", "DEFINITIONS", "Load", "Report", "RequestRecord", "RunResult", "Scrape",
           "Target", "TokenCounts", "Workload", "add_engine", "bounds", "claims_vs_measured", "compare_engines",
           "compare_start_regimes", "engine_workloads", "find_knee", "host_spec", "knee_problems", "load_tokenizer",
           "mark_knees", "measure", "measuring_loop_problems", "micro", "new_report", "prompt_set",
           "real_measurement_problems", "request_metrics", "run_load", "standard_workloads", "summarize", "sweep",
           "sweeps", "timeline", "ttft_tpot_problems", "ttft_tpot_table", "use_case_problems", "watch_while"]
