"""Speculative decoding: the textbook model (theory), drafts (prompt lookup), the greedy verify rule (verify),
a verification loop that counts acceptance per step (runner, accounting), and the baseline-vs-speculative table
(bench)."""

from .accounting import Acceptance
from .checks import crossover_mistakes, formula_mistakes, mechanism_mistakes, prediction_mistakes
from .comparison import Draft, check_parted_only_at_near_ties, format_table, measure_workload, to_frame
from .drafts import prompt_lookup_draft
from .early_exit import EarlyExitDraft
from .lookup_server import run_lookup_sweep
from .runner import SpecModel
from .server_counters import server_acceptance_by_workload
from .spark import SETUPS, run_spark_setup, spark_setups
from .theory import alpha_from_tokens_per_step, expected_speedup, expected_tokens_per_step
from .under_load import crossover, run_sweep, speedup_figure
from .verify import StepError, greedy_verify

__all__ = ["SETUPS", "Acceptance", "Draft", "EarlyExitDraft", "SpecModel", "StepError", "alpha_from_tokens_per_step",
           "check_parted_only_at_near_ties", "crossover", "crossover_mistakes", "expected_speedup",
           "expected_tokens_per_step", "format_table", "formula_mistakes", "greedy_verify", "measure_workload",
           "mechanism_mistakes", "prediction_mistakes", "prompt_lookup_draft", "run_lookup_sweep", "run_spark_setup",
           "run_sweep", "server_acceptance_by_workload", "spark_setups", "speedup_figure", "to_frame"]
