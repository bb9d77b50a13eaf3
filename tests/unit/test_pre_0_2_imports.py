"""A learner's notebook saved before the 0.2 layout keeps running: every spark_labs import the 0.1 labs made.

The lines below are the import statements of labs/*.ipynb at 0.1 (before the modules were renamed), copied
as they were; each must still import, and a moved name must say where it went (a FutureWarning).
"""

from __future__ import annotations

import warnings

import pytest

from spark_labs._moved import MovedModuleWarning

IMPORTS_IN_0_1_LABS = [
    'from spark_labs import calc',
    'from spark_labs import plan',
    'from spark_labs.batching import KVCapacityError, kv_space_launch',
    'from spark_labs.batching import read_kv_capacity',
    'from spark_labs.batching.figures import cliff_figure',
    'from spark_labs.batching.figures import knob_figure',
    'from spark_labs.batching.figures import live_pressure_chart',
    'from spark_labs.batching.figures import timeline_figure',
    'from spark_labs.batching.knobs import chunked_prefill_table, run_injection',
    'from spark_labs.batching.knobs import chunked_tradeoff',
    'from spark_labs.batching.knobs import knee',
    'from spark_labs.batching.prefix import run_prefix_workload, shared_prefix_requests',
    'from spark_labs.batching.pressure import kv_pressure_sweep, measured_onset',
    'from spark_labs.batching.schedules import batching_comparison',
    'from spark_labs.batching.schedules import idle_slot_steps, static_schedule',
    'from spark_labs.batching.schedules import mixed_lengths, mixed_prompts',
    'from spark_labs.batching.static import run_static_batches',
    'from spark_labs.bench import Chunk, RequestRecord, TokenCounts, request_metrics',
    'from spark_labs.bench import DEFINITIONS',
    'from spark_labs.bench import Load, Target, Workload, run_load',
    'from spark_labs.bench import Load, measure, micro, new_report, sweep',
    'from spark_labs.bench import Target',
    'from spark_labs.bench import compare_start_regimes',
    'from spark_labs.bench.analysis import claims_vs_measured',
    'from spark_labs.bench.analysis import find_knee',
    'from spark_labs.bench.checks import real_measurement_problems',
    'from spark_labs.bench.clients import BenchRequest',
    'from spark_labs.bench.clients import Target',
    'from spark_labs.bench.experiments import add_engine, engine_args, engine_workloads',
    'from spark_labs.bench.experiments import engine_args',
    'from spark_labs.bench.experiments import micro',
    'from spark_labs.bench.figures import timeline',
    'from spark_labs.bench.learner_parts import mark_knees',
    'from spark_labs.bench.learner_parts import sweeps',
    'from spark_labs.bench.learner_parts import ttft_tpot_table',
    'from spark_labs.bench.live import watch_while',
    'from spark_labs.bench.load import Load, run_load',
    'from spark_labs.bench.roofline import bounds, host_spec',
    'from spark_labs.bench.roofline import host_spec',
    'from spark_labs.bench.server_metrics import Scrape',
    'from spark_labs.bench.tokens import load_tokenizer',
    'from spark_labs.build.figures import compile_figure',
    'from spark_labs.build.figures import variant_figure',
    'from spark_labs.build.gguf_variants import BuiltVariant',
    'from spark_labs.build.gguf_variants import build_variants',
    'from spark_labs.build.measure import decoder_table',
    'from spark_labs.build.measure import pick_variant',
    'from spark_labs.build.measure import variant_table',
    'from spark_labs.build.measure import weight_only_table',
    'from spark_labs.build.trtllm import checkpoints_for, options_path, serve_args, write_extra_options',
    'from spark_labs.cache import cache_dir',
    'from spark_labs.calc import embedded_config',
    'from spark_labs.calc import kv_bytes_per_token as library_bytes_per_token',
    'from spark_labs.checkpoint import checkpoint',
    'from spark_labs.engines import ENGINES, launch',
    'from spark_labs.engines import launch',
    'from spark_labs.engines.profile_args import spark_command',
    'from spark_labs.engines.registry import ENGINES',
    'from spark_labs.errors import EngineError',
    'from spark_labs.errors import InsufficientMemoryError',
    'from spark_labs.models import embedded_gguf_path',
    'from spark_labs.models import prepare_embedded_model',
    'from spark_labs.notebooks import can_run',
    'from spark_labs.notebooks import can_run, require',
    'from spark_labs.notebooks import require',
    'from spark_labs.prereq import Quiz',
    'from spark_labs.prereq import environment_checks, required_failures',
    'from spark_labs.prereq import readiness',
    'from spark_labs.prereq.environment import checks_markdown',
    'from spark_labs.prereq.handson import bf16_footprint, count_4bit_layers',
    'from spark_labs.prereq.handson import hide_known_bitsandbytes_warning',
    'from spark_labs.profiles import get_profile',
    'from spark_labs.serve import GatewaySettings, GenerationRequest, Outcome, ProxyBackend',
    'from spark_labs.serve import start_gateway',
    'from spark_labs.serve.logs import LogCollector',
    'from spark_labs.serve.metrics import GatewayMetrics',
    'from spark_labs.serve.runner import start_app',
    'from spark_labs.spec import expected_speedup, expected_tokens_per_step',
    'from spark_labs.spec.bench import Draft, format_table, measure_workload, to_frame',
    'from spark_labs.spec.early_exit import EarlyExitDraft',
    'from spark_labs.spec.lookup_server import run_lookup_sweep',
    'from spark_labs.spec.runner import SpecModel',
    'from spark_labs.spec.server_counters import server_acceptance_by_workload',
    'from spark_labs.spec.spark import spark_setups',
    'from spark_labs.spec.under_load import crossover',
    'from spark_labs.spec.under_load import run_sweep, speedup_figure',
    'from spark_labs.ui import start_ui',
    'from spark_labs.ui.browser import run_in_browser',
    'from spark_labs.ui.endpoint import chat_endpoint',
]


@pytest.mark.parametrize("statement", IMPORTS_IN_0_1_LABS)
def test_a_0_1_notebook_import_still_works(statement):
    namespace: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(statement, namespace)
    others = [w for w in caught if not issubclass(w.category, MovedModuleWarning)
              and "spark_labs" in str(w.message)]
    assert not others, [str(w.message) for w in others]
