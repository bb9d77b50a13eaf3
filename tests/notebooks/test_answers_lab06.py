"""Lab 06's checkpoints against the answers learners type: the reference's pass, each wrong one fails and its
message names the mistake. Lab 06 runs once (a rehearsal: the grader's two kernels, the real engine behind the
gateway's Ollama routes, the chat UI in Chromium), then every answer goes through the real checkpoint cell.

06.1 is the body of ``read_ndjson``, run on the checkpoint's made-up streams (blank keep-alive lines, an error
line, a line after ``done``); 06.2 has two blocks (the bodies of ``decode_tok_s`` and ``server_ttft_s``), run on
made-up final objects and this run's real one; 06.3 sets ``predicted_lag_ms``, compared with the render lag
this run measured in Chromium; 06.5 is the body of ``relay_chat``: the self-check on made-up streams, then the
UI with that relay started again and a long answer stopped in Chromium, the gateway's gauge deciding whether
the engine stopped."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
    wrong_cases,
)


def reader(skip: str = "if not line.strip():\n    continue\n", error: str = "raise RuntimeError(event['error'])",
           stop: str = 'if event.get("done"):\n    return') -> str:
    """A reader as learners write it, with one part swapped."""
    body = f"{skip}event = json.loads(line)\nif \"error\" in event:\n    {error}\nyield event\n{stop}"
    return "for line in lines:\n" + "\n".join("    " + row if row else row for row in body.splitlines())


# The run stops at 06.5's checkpoint: the lab's last cell stops the engine and both chat UIs, which every answer
# to 06.5 needs running (its checkpoint stops a real answer in Chromium).
REHEARSE_THROUGH = "06.5"
RELAY = "{open}async for chunk in upstream.aiter_raw():\n{pad}    {check}\n{pad}    await send(chunk)\n{close}"
# the cells between 06.5's exercise and its checkpoint: your UI started again, the Stop in Chromium, the gauge
AFTER_RELAY = ("relay_mistakes(relay_chat)", "def stop_half_way", "spark_labs_requests_in_flight")


def relay(check: str = "if browser_left.is_set():\n        return", close: str = "finally") -> str:
    """A relay as learners write it: ``close`` "finally" (right), "after" (only after the loop), "never"."""
    if close == "finally":
        return RELAY.format(open="try:\n    ", pad="    ", check=check.replace("\n", "\n    "),
                            close="finally:\n    await upstream.aclose()")
    return RELAY.format(open="", pad="", check=check, close="await upstream.aclose()" if close == "after" else "")


TOK_S = 'return final["eval_count"] / (final["eval_duration"] / 1e9)'
TTFT_S = 'return (final["load_duration"] + final["prompt_eval_duration"]) / 1e9'

RIGHT = {
    "06.1": "for raw in lines:\n    if raw.strip() == \"\":\n        continue\n    obj = json.loads(raw)\n"
            "    if \"error\" in obj:\n        raise RuntimeError(\"server error: \" + str(obj[\"error\"]))\n"
            "    yield obj\n    if obj.get(\"done\") is True:\n        break",
    "06.2": ['return final["eval_count"] * 1e9 / final["eval_duration"]',
             'return (final["load_duration"] + final["prompt_eval_duration"]) * 1e-9'],
    "06.3": "predicted_lag_ms = (1000 / 60) / 2",
    "06.5": relay(check="if browser_left.is_set():\n        break"),
}
WRONG = {
    "06.1": {
        "json.loads on every line": (reader(skip=""), "parsed a blank line"),
        "the error line yielded": (reader(error="pass"), 'yields the {"error": …} line as an event'),
        "reading on after done": (reader(stop=""), 'keeps reading after the object with "done": true'),
        "the final object dropped": (
            reader(stop="").replace("    yield event", '    if event.get("done"):\n        return\n    yield event'),
            'drops the final object ("done": true)'),
        "a ValueError": (reader(error="raise ValueError(event['error'])"), "raised ValueError"),
        "an error without the server's text": (reader(error='raise RuntimeError("the server failed")'),
                                               "does not carry the server's text"),
    },
    "06.2": {
        "tokens per nanosecond": (['return final["eval_count"] / final["eval_duration"]', TTFT_S],
                                  "tokens per nanosecond"),
        "milliseconds for the speed": (['return final["eval_count"] / (final["eval_duration"] / 1e6)', TTFT_S],
                                       "tokens per millisecond"),
        "speed over total_duration": (['return final["eval_count"] / (final["total_duration"] / 1e9)', TTFT_S],
                                      "divides by total_duration"),
        "TTFT in milliseconds": ([TOK_S, 'return (final["load_duration"] + final["prompt_eval_duration"]) / 1e6'],
                                 "server_ttft_s: that is milliseconds"),
        "TTFT without the load": ([TOK_S, 'return final["prompt_eval_duration"] / 1e9'], "leaves out load_duration"),
        "TTFT from total_duration": ([TOK_S, 'return final["total_duration"] / 1e9'],
                                     "total_duration includes generating"),
    },
    "06.3": {
        "a whole frame": ("predicted_lag_ms = 1000 / 60", "that is a whole frame"),
        "seconds": ("predicted_lag_ms = 1 / 60 / 2", "that is seconds"),
        "the frame rate halved": ("predicted_lag_ms = 60 / 2", "halves the frame rate"),
        "two frames": ("predicted_lag_ms = 2 * 1000 / 60", "that is two frames"),
        "microseconds": ("predicted_lag_ms = 1_000_000 / 60 / 2", "that is microseconds"),
        "no wait": ("predicted_lag_ms = 0", "so it waits"),
    },
    "06.5": {
        # the gateway's own gauge, not only the self-check: the engine really went on generating
        "never looks at browser_left": (relay(check="pass"), "the engine kept generating the story"),
        "the course's relay": ("from spark_labs.ui import relay_until_stop\n"
                               "await relay_until_stop(upstream, send, browser_left)",
                               "Exercise 06.5 is yours to write"),
        "stops reading but never closes": (relay(close="never"), "left the connection to the engine open"),
        "closes after the loop, not in a finally": (
            relay(check="if browser_left.is_set():\n        break", close="after"), "a finally block"),
    },
}


def _also(exercise: str) -> tuple[str, ...]:
    return AFTER_RELAY if exercise == "06.5" else ()


@pytest.mark.parametrize("exercise", RIGHT)
def test_the_right_answer_typed_by_hand_passes(lab, exercise):
    outcome = lab.answer(exercise, RIGHT[exercise], also=_also(exercise))
    assert outcome.passed, outcome


@pytest.mark.parametrize(("exercise", "mistake"), wrong_cases(WRONG))
def test_a_wrong_answer_fails_naming_the_mistake(lab, exercise, mistake):
    assert_fails_naming(lab, exercise, *WRONG[exercise][mistake], also=_also(exercise))


def test_every_exercise_has_three_wrong_answers_or_more(lab):
    assert set(WRONG) == {contract.exercise for contract in lab.reference.contracts.values() if contract.exercise}
    assert all(len(mistakes) >= 3 for mistakes in WRONG.values())
