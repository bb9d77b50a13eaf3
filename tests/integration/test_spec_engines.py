"""Speculative decoding (lab 04): the Leviathan et al. formulas, acceptance accounting, prompt-lookup drafts,
and the real verification loop on the exported HF copy of the embedded model."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

# --- theory -------------------------------------------------------------------------------------------


# --- accounting and drafts --------------------------------------------------------------------------


# --- the real verification loop on the embedded model --------------------------------------------------

MAX_NEW = 24


@pytest.fixture(scope="module")
def spec_model():
    from spark_labs.speculative.runner import SpecModel

    return SpecModel()


@pytest.fixture(scope="module")
def code_prompt(spec_model):
    from spark_labs.speculative.workloads import workload_prompt

    return spec_model.encode_chat(workload_prompt("code-edit"))


def test_baseline_loop_equals_transformers_greedy_generate(spec_model, code_prompt):
    """Our k=0 loop is plain greedy decoding: it must match transformers' own generate() token for token."""
    import torch

    ours = spec_model.generate(code_prompt, MAX_NEW)
    with torch.inference_mode():
        theirs = spec_model.model.generate(torch.tensor([code_prompt]), max_new_tokens=MAX_NEW, do_sample=False)
    assert ours.tokens == theirs[0, len(code_prompt):].tolist()
    assert ours.acceptance.drafted == 0 and ours.acceptance.tokens_per_step == 1.0


@pytest.mark.parametrize("k", [1, 4, 8])
def test_prompt_lookup_is_lossless_and_counts_acceptance(spec_model, code_prompt, k):
    from spark_labs.speculative.runner import check_lossless

    base = spec_model.generate(code_prompt, MAX_NEW)
    spec = spec_model.generate(code_prompt, MAX_NEW, k=k)
    check_lossless(base.tokens, spec.tokens)
    acc = spec.acceptance
    assert acc.tokens == len(spec.tokens) - 1  # every token after the prefill's came from a counted step
    assert acc.accepted > 0, "the code-edit prompt copies its code: prompt lookup must get some drafts accepted"
    assert acc.steps < len(base.tokens) - 1  # fewer target passes than the baseline


def test_oracle_and_wrong_drafts_bound_alpha(spec_model, code_prompt):
    """Fake drafters, on purpose: one proposes the baseline's own continuation (alpha must be 1, k+1 tokens a
    step), one proposes a token the model never picks here (alpha must be 0, output still identical)."""
    base = spec_model.generate(code_prompt, MAX_NEW)
    future = list(code_prompt) + base.tokens

    def oracle(sequence, k):
        return future[len(sequence):len(sequence) + k]

    def wrong(sequence, k):
        return [spec_model.tokenizer.eos_token_id + 1] * k  # a special token that never follows here

    right = spec_model.generate(code_prompt, MAX_NEW, k=3, drafter=oracle)
    assert right.tokens == base.tokens and right.acceptance.alpha == 1.0
    assert right.acceptance.steps == math.ceil((MAX_NEW - 1) / 4)
    bad = spec_model.generate(code_prompt, MAX_NEW, k=3, drafter=wrong)
    assert bad.tokens == base.tokens and bad.acceptance.alpha == 0.0 and bad.acceptance.tokens_per_step == 1.0


def test_early_exit_draft_shares_weights_and_with_every_layer_is_the_target(spec_model, code_prompt):
    """The truncated-layer draft is a view of the target: same tensors, fewer layers. Keeping all 30 layers it
    must predict exactly what the target does (alpha 1, k+1 tokens a step); with fewer it stays lossless."""
    from spark_labs.speculative.early_exit import EarlyExitDraft

    total = spec_model.model.config.num_hidden_layers
    full = EarlyExitDraft(spec_model, total)
    assert full.model.lm_head.weight.data_ptr() == spec_model.model.lm_head.weight.data_ptr()
    base = spec_model.generate(code_prompt, MAX_NEW)
    right = spec_model.generate(code_prompt, MAX_NEW, k=3, drafter=full)
    assert right.tokens == base.tokens and right.acceptance.alpha == 1.0
    assert right.acceptance.steps == math.ceil((MAX_NEW - 1) / 4)
    short = EarlyExitDraft(spec_model, 8)
    assert short.name == f"early exit 8/{total}" and spec_model.model.config.num_hidden_layers == total
    cheap = spec_model.generate(code_prompt, MAX_NEW, k=2, drafter=short)
    assert cheap.tokens == base.tokens
    assert cheap.acceptance.drafted > 0 and cheap.draft_seconds > 0
    # The draft's cache follows the target's: a second generation from the same drafter gives the same counts.
    again = spec_model.generate(code_prompt, MAX_NEW, k=2, drafter=short)
    assert (again.acceptance.accepted, again.acceptance.steps) == (cheap.acceptance.accepted, cheap.acceptance.steps)


def test_bench_rows_name_their_draft_and_share_one_baseline(spec_model):
    from spark_labs.speculative.comparison import Draft, measure_workload
    from spark_labs.speculative.early_exit import EarlyExitDraft

    early = EarlyExitDraft(spec_model, 24)
    rows = measure_workload(spec_model, "code-edit", max_new_tokens=12,
                            drafts=[Draft("prompt lookup", (2,)), Draft(early.name, (1, 2), early)])
    assert [(r.draft, r.k) for r in rows] == [("-", 0), ("prompt lookup", 2), (early.name, 1), (early.name, 2)]
    assert all(r.identical for r in rows)
    assert rows[2].draft_cost_c > 0.1  # a forward pass through 24 layers and the lm_head is no list scan


# --- the command users type ----------------------------------------------------------------------------


def test_bench_spec_command_prints_the_table():
    out = subprocess.run(
        [sys.executable, "-m", "spark_labs.cli", "bench", "spec", "--workloads", "code-edit", "--k", "4",
         "--max-tokens", "16"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "speed-up" in out.stdout and "formula" in out.stdout
    lines = [line for line in out.stdout.splitlines() if line.startswith("code-edit")]
    assert len(lines) == 2 and lines[1].split()[1:4] == ["prompt", "lookup", "4"] and lines[1].split()[-1] == "yes"


# --- engines: speculative flags from the registry ------------------------------------------------------


def test_llamacpp_prompt_lookup_keeps_greedy_output(llamacpp_engine):
    """llama.cpp with llama-cpp-python's prompt-lookup draft answers exactly what the plain server answers."""
    from openai import OpenAI

    from spark_labs.engines import launch
    from spark_labs.speculative.workloads import workload_prompt

    def answer(handle) -> str:
        client = OpenAI(base_url=handle.base_url, api_key="none")
        reply = client.chat.completions.create(
            model=handle.served_name, messages=[{"role": "user", "content": workload_prompt("code-edit")}],
            max_tokens=48, temperature=0)
        return reply.choices[0].message.content

    from spark_labs.engines.registry import ENGINES

    speculative = launch("llamacpp", port="auto", progress=False,
                         extra_args=ENGINES["llamacpp"].speculative_args("ngram", 4))
    try:
        assert "--draft_model" in speculative.command
        assert answer(speculative) == answer(llamacpp_engine)
    finally:
        speculative.stop()


def test_llamacpp_lookup_sweep_keeps_the_plain_answer_and_gives_the_table():
    """The lab's llama.cpp table on the real engine: plain, prompt lookup at k = 4, plain again (three short
    starts); the answer is the plain server's, and every column is there (timings are not asserted)."""
    from spark_labs import plan
    from spark_labs.speculative.lookup_server import run_lookup_sweep

    table = run_lookup_sweep(plan("04"), ks=(4,), workloads=("code-edit",), max_tokens=16, requests=1,
                             progress=False, log=lambda line: None)
    assert list(table.columns) == ["workload", "k", "requests", "tokens", "plain tok/s", "spec tok/s", "speed-up",
                                   "plain E2E s", "spec E2E s", "E2E speed-up", "same output",
                                   "plain answers agree", "baseline drift", "verify cost"]
    row = table.iloc[0]
    assert (len(table), row.workload, row.k, row.requests) == (1, "code-edit", 4, 1)
    assert row["same output"] == 1.0 and row["plain answers agree"]
    assert row["speed-up"] > 0 and row["E2E speed-up"] > 0 and 1 < row.tokens <= 16 and row["verify cost"] > 0


def test_vllm_ngram_speculation_counts_acceptance_and_keeps_greedy_output(vllm_engine):
    """vLLM's CPU build with --speculative-config ngram: same greedy answer as plain vLLM, and its spec-decode
    counters on /metrics give the run's drafts and per-position acceptance (one extra vLLM start)."""
    import httpx

    from spark_labs.engines import launch
    from spark_labs.engines.registry import ENGINES
    from spark_labs.speculative.server_counters import ServerAcceptance
    from spark_labs.speculative.workloads import workload_prompt

    def answer(handle) -> str:
        reply = httpx.post(f"{handle.base_url}/chat/completions", timeout=300, json={
            "model": handle.served_name, "max_tokens": 48, "temperature": 0,
            "messages": [{"role": "user", "content": workload_prompt("code-edit")}]})
        reply.raise_for_status()
        return reply.json()["choices"][0]["message"]["content"]

    speculative = launch("vllm", port="auto", progress=False, timeout=300, extra_args=[
        "--enforce-eager", "--max-model-len", "2048", *ENGINES["vllm"].speculative_args("ngram", 4)])
    try:
        def scrape() -> ServerAcceptance:
            return ServerAcceptance.parse(httpx.get(speculative.metrics_url, timeout=30).text, speculative.spec)

        before = scrape()
        assert answer(speculative) == answer(vllm_engine)
        run = scrape() - before
        # The concurrency sweep's unit, one level on each side: same answers, counters read per level.
        from spark_labs.bench.clients import Target
        from spark_labs.speculative.under_load import measure_level, speedup_table

        plain = measure_level(Target.from_engine(vllm_engine), "code-edit", 2, 24, 1, progress=False)
        spec = measure_level(Target.from_engine(speculative), "code-edit", 2, 24, 1, ENGINES["vllm"], progress=False)
        table = speedup_table([plain], [spec])
    finally:
        speculative.stop()
    row = table.iloc[0]
    assert (row.concurrency, row.requests, row["same output"]) == (2, 2, 1.0)
    assert row.speedup > 0 and row.alpha > 0 and "ramp-up" in row.regime
    assert run.drafts > 0 and run.draft_tokens == 4 * run.drafts
    assert 0 < run.accepted == sum(run.accepted_per_position)
    assert len(run.accepted_per_position) == 4
    # A token at position i is accepted only if every earlier one was: counts cannot rise with position.
    assert all(a >= b for a, b in zip(run.accepted_per_position, run.accepted_per_position[1:]))
    assert 0 < run.alpha <= 1 and 1 < run.tokens_per_step <= 5


# --- when it stops paying: the concurrency sweep's table -------------------------------------------------


def test_a_spark_setup_is_started_through_the_launcher_and_measured_on_both_sides(vllm_engine):
    """Lab 04 §4's ``run_spark_setup`` on the session's real vLLM CPU server, through a **launch stand-in that
    lends that running engine to both sides** (no GPU, containers or 70B downloads here; the server itself runs
    without speculation, so its counters see no drafts). What the set-up asked the launcher for is recorded;
    every figure in the table is measured."""
    import json

    from spark_labs import plan
    from spark_labs.speculative import SETUPS, run_spark_setup

    class Lent:
        def __init__(self, handle):
            self._handle = handle

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def stop(self):  # the sweep stops each side; the session engine stays for the other tests
            pass

    asked = []

    def lend(engine, model, **options):
        asked.append((engine, model, options))
        return Lent(vllm_engine)

    table = run_spark_setup(plan("04"), "vLLM draft-target", k=4, workloads=("code-edit",), concurrencies=(1,),
                            max_tokens=8, requests_per_stream=1, progress=False, launch=lend, log=lambda _: None)
    setup = SETUPS["vLLM draft-target"]
    (spec_engine, spec_model, spec_options), (plain_engine, plain_model, plain_options) = asked
    assert spec_engine == plain_engine == "vllm" and spec_model == plain_model == setup.target
    assert spec_options["docker"] and plain_options["docker"]
    config = spec_options["extra_args"][spec_options["extra_args"].index("--speculative-config") + 1]
    assert json.loads(config) == {"model": setup.draft, "num_speculative_tokens": 4}
    assert "--speculative-config" not in plain_options["extra_args"]
    row = table.iloc[0]
    assert row["setup"] == "vLLM draft-target" and row["workload"] == "code-edit" and row["concurrency"] == 1
    assert row["speedup"] > 0 and row["same output"] == 1.0  # the same greedy server on both sides
