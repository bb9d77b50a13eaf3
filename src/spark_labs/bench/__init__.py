"""The course's measuring instrument: streaming clients, load generation, metrics, cross-checks,
roofline and reports. ``spark-labs bench --help`` for the command line; in a notebook::

    from spark_labs.bench import compare_engines
    report = compare_engines(plan("01"))
    report.summary_table(); report.figures()["Latency vs throughput"]
"""

from .clients import BenchRequest, Target
from .experiments import compare_engines, measure, micro, new_report, sweep
from .load import Load, RunResult, run_load
from .metrics import DEFINITIONS, request_metrics, summarize
from .prompts import Workload, prompt_set, standard_workloads
from .records import Chunk, RequestRecord, TokenCounts
from .report import Report
from .start_regimes import compare_start_regimes

__all__ = [
           "DEFINITIONS",
           "BenchRequest",
           "Chunk",
           "Load",
           "Report",
           "RequestRecord",
           "RunResult",
           "Target",
           "TokenCounts",
           "Workload",
           "compare_engines",
           "compare_start_regimes",
           "measure",
           "micro",
           "new_report",
           "prompt_set",
           "request_metrics",
           "run_load",
           "standard_workloads",
           "summarize",
           "sweep",
]
