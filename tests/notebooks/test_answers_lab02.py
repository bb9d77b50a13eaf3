"""Lab 02's checkpoints against the answers learners type: the reference's pass, each wrong one fails and its
message names the mistake. Lab 02 runs once (a rehearsal: the grader's two kernels, three real vLLM engines,
the real sweeps), then every answer goes through the real checkpoint cell on that run's data."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
    wrong_cases,
)

WASTE = """batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
{body}"""
SCHEDULER = """retire = [row for row, request in running.items() if request["made"] {retire} request["max_tokens"]]
free = [row for row in range(slots) if {free}]
return {{"retire": retire, "admit": [(row, request["id"]) for row, request in zip(free, {waiting})]}}"""
RIGHT = {
    "02.1": WASTE.format(body="held = sum(batch_size * max(batch) for batch in batches)\n"
                              "return 1 - sum(lengths) / held"),
    "02.2": SCHEDULER.format(retire=">=", free="row not in running or row in retire", waiting="waiting"),
    "02.3": 'head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]\n'
            'return 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim * dtype_bytes',
    "02.4": "blocks = kv_bytes // (bytes_per_token * block_size)\nreturn (blocks - 1) * block_size",
    "02.5": "per_request = -(-(prompt_tokens + output_tokens) // block_size)\n"
            "for level in sorted(levels):\n    if level * per_request > num_blocks - 1:\n        return level\n"
            "return None",
    "02.6": "cached = shared_tokens // block_size * block_size\n"
            "return (n_requests - 1) * cached / (n_requests * (shared_tokens + own_tokens))",
    "02.7": 'spike = large["itl_max_during_prefill_ms"] / small["itl_max_during_prefill_ms"]\n'
            'ttft = small["long_ttft_ms"] / large["long_ttft_ms"]\n'
            'return spike, ttft, "small" if spike > 1 else "large"',
}
ONSET = ("per_request = {per}\nfor level in sorted(levels):\n    if level * per_request {op} {space}:\n"
         "        return level\nreturn {none}")
BLOCKS = "-(-(prompt_tokens + output_tokens) // block_size)"
BYTES = 'return {factor}config["num_hidden_layers"] * config["{heads}"] * {head_dim} * dtype_bytes{unit}'
HEAD_DIM = 'config.get("head_dim") or config["hidden_size"] // config["{by}"]'
SPIKE = 'large["itl_max_during_prefill_ms"] / small["itl_max_during_prefill_ms"]'
TTFT = 'small["long_ttft_ms"] / large["long_ttft_ms"]'

WRONG = {
    "02.1": {
        "a partial batch holds only its requests' slots": (
            WASTE.format(body="return 1 - sum(lengths) / sum(len(b) * max(b) for b in batches)"),
            "a partial last batch still holds all its slots"),
        "lengths sorted first": (
            "lengths = sorted(lengths)\n" + RIGHT["02.1"], "requests are batched in arrival order"),
        "a batch lasts its average length": (
            WASTE.format(body="return 1 - sum(lengths) / sum(batch_size * sum(b) / len(b) for b in batches)"),
            "not its average one"),
        "the busy share instead of the idle one": (
            WASTE.format(body="return sum(lengths) / sum(batch_size * max(b) for b in batches)"),
            "the question asks for the idle share"),
        "idle slot-steps counted, not divided": (
            WASTE.format(body="return sum(batch_size * max(b) for b in batches) - sum(lengths)"),
            "that is a count of idle slot-steps"),
        "per-batch shares averaged": (
            WASTE.format(body="return sum(1 - sum(b) / (batch_size * max(b)) for b in batches) / len(batches)"),
            "each batch's idle share averaged"),
    },
    "02.2": {
        "> instead of >=: never retires": (
            SCHEDULER.format(retire=">", free="row not in running or row in retire", waiting="waiting"),
            "have all their tokens (made == max_tokens) but still hold their rows"),
        "retired a token early": (SCHEDULER.format(retire='>= -1 +', free="row not in running or row in retire",
                                                   waiting="waiting"), "lost tokens"),
        "rows freed this call not refilled": (
            SCHEDULER.format(retire=">=", free="row not in running", waiting="waiting"),
            "a row this call retires is free for a waiting request in the same call"),
        "newest first": (SCHEDULER.format(retire=">=", free="row not in running or row in retire",
                                          waiting="waiting[::-1]"), "in arrival order"),
        "static in disguise": (
            'if any(r["made"] < r["max_tokens"] for r in running.values()):\n'
            '    return {"retire": [], "admit": []}\n'
            'return {"retire": list(running), "admit": [(row, r["id"]) for row, r in zip(range(slots), waiting)]}',
            "that is static batching"),
        "one admission per call": (SCHEDULER.format(retire=">=", free="row not in running or row in retire",
                                                     waiting="waiting[:1]"),
                                    "give every free row a waiting request"),
    },
    "02.3": {
        "the course's own function": ("from spark_labs.sizing import kv_bytes_per_token as course\n"
                                      "return course(config)", "Exercise 02.3 is yours to write"),
        "K only": (BYTES.format(factor="", heads="num_key_value_heads",
                                head_dim=f"({HEAD_DIM.format(by='num_attention_heads')})", unit=""),
                   "counts K or V only"),
        "all attention heads": (BYTES.format(factor="2 * ", heads="num_attention_heads",
                                             head_dim=f"({HEAD_DIM.format(by='num_attention_heads')})", unit=""),
                                "only the KV heads"),
        "bits": (BYTES.format(factor="2 * ", heads="num_key_value_heads",
                              head_dim=f"({HEAD_DIM.format(by='num_attention_heads')})", unit=" * 8"),
                 "that is bits, not bytes"),
        "head_dim assumed in every config": (
            BYTES.format(factor="2 * ", heads="num_key_value_heads", head_dim="config['head_dim']", unit=""),
            "which some configs leave out"),
        "head dim from the KV heads": (
            BYTES.format(factor="2 * ", heads="num_key_value_heads",
                         head_dim=f"({HEAD_DIM.format(by='num_key_value_heads')})", unit=""),
            "not by the KV heads"),
    },
    "02.4": {
        "token by token, no null block": ("return kv_bytes // bytes_per_token",
                                          "counts tokens in a partial block and forgets the null block"),
        "token by token": ("return kv_bytes // bytes_per_token - block_size", "vLLM hands out whole blocks only"),
        "the null block forgotten": ("return kv_bytes // (bytes_per_token * block_size) * block_size",
                                     "one of them is the null block"),
        "blocks, not tokens": ("return kv_bytes // (bytes_per_token * block_size) - 1", "that is a number of blocks"),
        "rounded up": ("blocks = -(-kv_bytes // (bytes_per_token * block_size))\nreturn (blocks - 1) * block_size",
                       "round the block count down"),
        "true division": ("return kv_bytes / bytes_per_token", "not a whole number of tokens"),
    },
    "02.5": {
        "the null block counted": (ONSET.format(per=BLOCKS, op=">", space="num_blocks", none="None"),
                                   "counts the null block"),
        "tokens, not whole blocks": (
            ONSET.format(per="prompt_tokens + output_tokens", op=">", space="(num_blocks - 1) * block_size",
                         none="None"), "a request holds whole blocks"),
        "the prompt only": (ONSET.format(per="-(-prompt_tokens // block_size)", op=">", space="num_blocks - 1",
                                         none="None"), "forgets the output"),
        "full counts as too full": (ONSET.format(per=BLOCKS, op=">=", space="num_blocks - 1", none="None"),
                                    "a level that needs exactly the blocks there are still fits"),
        "the last level that fits": (
            f"per_request = {BLOCKS}\nfits = [level for level in levels if level * per_request <= num_blocks - 1]\n"
            "return max(fits) if fits else None", "the last level at which everything still fits"),
        "the largest level when none runs out": (
            ONSET.format(per=BLOCKS, op=">", space="num_blocks - 1", none="max(levels)"), "None, not a level"),
    },
    "02.6": {
        "no block rounding": ("return (n_requests - 1) * shared_tokens / (n_requests * (shared_tokens + own_tokens))",
                              "only whole blocks are cached"),
        "the first request hits too": ("cached = shared_tokens // block_size * block_size\n"
                                       "return cached / (shared_tokens + own_tokens)",
                                       "the first request finds an empty cache"),
        "own tokens not queried": ("cached = shared_tokens // block_size * block_size\n"
                                   "return (n_requests - 1) * cached / (n_requests * shared_tokens)",
                                   "its own question included"),
        "rounded up": ("cached = -(-shared_tokens // block_size) * block_size\n"
                       "return (n_requests - 1) * cached / (n_requests * (shared_tokens + own_tokens))",
                       "rounded the shared prefix up"),
        "a percentage": ("cached = shared_tokens // block_size * block_size\n"
                         "return 100 * (n_requests - 1) * cached / (n_requests * (shared_tokens + own_tokens))",
                         "that is a percentage"),
    },
    "02.7": {
        "spike ratio upside down": (f'spike = {SPIKE}\nreturn 1 / spike, {TTFT}, "small" if spike > 1 else "large"',
                                    "the spike ratio is upside down"),
        "TTFT ratio upside down": (f'spike = {SPIKE}\nreturn spike, 1 / ({TTFT}), "small" if spike > 1 else "large"',
                                   "the TTFT ratio is upside down"),
        "the median gap": ('spike = large["itl_p50_ms"] / small["itl_p50_ms"]\n'
                           f'return spike, {TTFT}, "small" if {SPIKE} > 1 else "large"', "uses the median gap"),
        "the other budget": (f'spike = {SPIKE}\nreturn spike, {TTFT}, "large" if spike > 1 else "small"',
                             "the one under which their worst gap was shorter"),
        "percentages": (f'spike = {SPIKE}\nreturn 100 * spike, 100 * {TTFT}, "small" if spike > 1 else "large"',
                        "those are percentages"),
    },
}


@pytest.mark.parametrize("exercise", RIGHT)
def test_the_right_answer_typed_by_hand_passes(lab, exercise):
    outcome = lab.answer(exercise, RIGHT[exercise])
    assert outcome.passed, outcome


@pytest.mark.parametrize(("exercise", "mistake"), wrong_cases(WRONG))
def test_a_wrong_answer_fails_naming_the_mistake(lab, exercise, mistake):
    assert_fails_naming(lab, exercise, *WRONG[exercise][mistake])


def test_every_exercise_has_three_wrong_answers_or_more(lab):
    assert set(WRONG) == set(lab.reference.checkpoints)
    assert all(len(mistakes) >= 3 for mistakes in WRONG.values())
