"""Lab 07's checkpoint against the answers learners type: the reference's passes, each wrong one fails and its
message names the mistake. Lab 07 runs once (a rehearsal: the grader's two kernels, the real split engine), then
every answer goes through the real checkpoint cell."""

from __future__ import annotations

import pytest
from answers_support import assert_fails_naming

# 07.1 is the lab's only exercise and comes first: the split engines measured after it are not needed here
REHEARSE_THROUGH = "07.1"

RIGHT_NODES = """import math
def my_nodes_needed(weights_gb, kv_gb, node_gb, usable):
    return max(1, math.ceil((weights_gb + kv_gb) / (node_gb * usable) - 1e-9))"""
RIGHT_TOKEN = """def my_per_token_ms(weights_gb, bandwidth_gbs, nodes, parallel, layers, hop_ms):
    stream = weights_gb / bandwidth_gbs * 1000
    if parallel == "tensor":
        return stream / nodes + (2 * layers * hop_ms if nodes > 1 else 0.0)
    return stream + (nodes - 1) * hop_ms"""

WRONG_07_1 = {
    "weights only": (RIGHT_NODES.replace("(weights_gb + kv_gb)", "weights_gb") + "\n" + RIGHT_TOKEN,
                     "KV cache needs memory"),
    "the whole node usable": (RIGHT_NODES.replace("(node_gb * usable)", "node_gb") + "\n" + RIGHT_TOKEN, "usable"),
    "rounded to the nearest": (RIGHT_NODES.replace("math.ceil((weights_gb + kv_gb) / (node_gb * usable) - 1e-9)",
                                                   "round((weights_gb + kv_gb) / (node_gb * usable))")
                               + "\n" + RIGHT_TOKEN, "round up"),
    "one all-reduce per layer": (RIGHT_NODES + "\n" + RIGHT_TOKEN.replace("2 * layers", "layers"), "not one"),
    "no bubble": (RIGHT_NODES + "\n" + RIGHT_TOKEN.replace("return stream + (nodes - 1)",
                                                           "return stream / nodes + (nodes - 1)"), "bubble"),
    "seconds": (RIGHT_NODES + "\n" + RIGHT_TOKEN.replace("* 1000", ""), "milliseconds"),
}


def test_the_reference_answers_pass_every_checkpoint(lab):
    failed = {c: lab.outcome(c).problem for c, state in lab.reference_states().items() if state != "passed"}
    assert not failed, failed


def test_the_right_answer_typed_by_hand_passes(lab):
    assert lab.answer("07.1", RIGHT_NODES + "\n" + RIGHT_TOKEN).passed


@pytest.mark.parametrize("mistake", WRONG_07_1)
def test_a_wrong_split_rule_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "07.1", *WRONG_07_1[mistake])
