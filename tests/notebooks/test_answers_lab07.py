"""Lab 07's checkpoint against the answers learners type: the reference's passes, each wrong one fails and its
message names the mistake. Lab 07 runs once (a rehearsal: the grader's two kernels, the real split engine), then
every answer goes through the real checkpoint cell."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
)

# 07.1 is the lab's only exercise and comes first: the split engines measured after it are not needed here
REHEARSE_THROUGH = "07.1"

# The exercise cell holds two solution blocks, the bodies of my_nodes_needed and my_per_token_ms: an answer is
# the pair of bodies (Rehearsal.answer puts each in its block).
NODES = "import math\n\nreturn max(1, math.ceil({total} / {usable} - 1e-9))"
TOKEN = ("stream_ms = weights_gb / bandwidth_gbs{unit}\nif parallel == \"tensor\":\n"
         "    return stream_ms / nodes + ({reduces} * layers * hop_ms if nodes > 1 else 0.0)\n"
         "return stream_ms{bubble} + (nodes - 1) * hop_ms")


def answer(total="(weights_gb + kv_gb)", usable="(node_gb * usable)", unit=" * 1000", reduces="2",
           bubble="") -> list[str]:
    return [NODES.format(total=total, usable=usable), TOKEN.format(unit=unit, reduces=reduces, bubble=bubble)]


WRONG_07_1 = {
    "weights only": (answer(total="weights_gb"), "KV cache needs memory"),
    "the whole node usable": (answer(usable="node_gb"), "usable"),
    "rounded to the nearest": ([NODES.replace("math.ceil({total} / {usable} - 1e-9)", "round({total} / {usable})")
                                .format(total="(weights_gb + kv_gb)", usable="(node_gb * usable)"), answer()[1]],
                               "round up"),
    "one all-reduce per layer": (answer(reduces="1"), "not one"),
    "no bubble": (answer(bubble=" / nodes"), "bubble"),
    "seconds": (answer(unit=""), "milliseconds"),
}


def test_the_right_answer_typed_by_hand_passes(lab):
    assert lab.answer("07.1", answer()).passed


@pytest.mark.parametrize("mistake", WRONG_07_1)
def test_a_wrong_split_rule_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "07.1", *WRONG_07_1[mistake])
