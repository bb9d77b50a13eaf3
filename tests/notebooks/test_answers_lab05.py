"""Lab 05's checkpoints against the answers learners type: the reference's pass, each wrong one fails and its
message names the mistake. Lab 05 runs once (a rehearsal: the grader's two kernels, the real engine, the
learner's gateway, the production gateway), then every answer goes through the real checkpoint cell.

The engine and the learner's gateway are stopped by the time the answers come (the lab stops them), so the
checkpoints judge an answer through the lab's given ``sse_trial``, ``metrics_trial`` and ``bucket_trial``,
which run the learner's current pieces on made-up input in the learner's kernel; what the run measured through
the real gateway (the streamed pieces, /metrics, the burst's statuses) is the reference's. 05.1 is the body of
``sse_events``, 05.2 the two metrics, 05.3 the body of ``MyTokenBucket.take``."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
    wrong_cases,
)

CHUNK = ('{"object": "chat.completion.chunk", "model": model,\n'
         '             "choices": [{"index": 0, "delta": {"content": piece.text}, "finish_reason": None}]}')
CALL = "    if first and on_first_piece:\n        on_first_piece()\n    first = False\n"


def sse_body(emit: str = "yield sse(chunk)", done: str = r'yield "data: [DONE]\n\n"', call: str = CALL,
             chunk: str = CHUNK) -> str:
    """A generator body as learners write it, with one part swapped."""
    return f"first = True\nasync for piece in pieces:\n{call}    chunk = {chunk}\n    {emit}\n{done}"


def bucket_body(refill: str = "self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)",
                move: str = "self.updated = now", admit: str = "self.tokens >= 1",
                wait: str = "(1 - self.tokens) / self.rate") -> str:
    return f"{refill}\n{move}\nif {admit}:\n    self.tokens -= 1\n    return 0.0\nreturn {wait}"


def metrics(counter: str = 'Counter("my_gateway_requests_total", "Requests by status", ["status"], registry=registry)',
            histogram: str = 'Histogram("my_gateway_time_to_first_token_seconds", "Time to first token", '
                             'registry=registry, buckets=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10])') -> str:
    return f"requests_total = {counter}\nttft_seconds = {histogram}"


RIGHT = {
    "05.1": sse_body(call=CALL.replace("if first and on_first_piece:", "if first and on_first_piece is not None:")),
    "05.2": metrics(counter='Counter("my_gateway_requests", "Requests answered", labelnames=["status"], '
                            'registry=registry)'),
    "05.3": "elapsed = now - self.updated\nself.updated = now\n"
            "self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)\n"
            "if self.tokens < 1:\n    return (1 - self.tokens) / self.rate\nself.tokens -= 1\nreturn 0.0",
}
WRONG = {
    "05.1": {
        "one newline after each event": (sse_body(emit=r'yield "data: " + json.dumps(chunk) + "\n"'),
                                         "not separated by a blank line"),
        "no [DONE]": (sse_body(done=""), "does not end with `data: [DONE]`"),
        "[DONE] sent as JSON": (sse_body(done='yield sse("[DONE]")'), "[DONE] is sent as JSON"),
        "Python's repr of the chunk": (sse_body(emit=r'yield f"data: {chunk}\n\n"'), "Python's repr"),
        "the whole answer in one chunk": (
            "texts = [piece.text async for piece in pieces]\nif on_first_piece:\n    on_first_piece()\n"
            'yield sse({"object": "chat.completion.chunk", "model": model,\n'
            '           "choices": [{"index": 0, "delta": {"content": "".join(texts)}, "finish_reason": None}]})\n'
            r'yield "data: [DONE]\n\n"', "one chunk holds the whole answer"),
        "on_first_piece on every piece": (sse_body(call="    if on_first_piece:\n        on_first_piece()\n"),
                                          "on_first_piece is called 3 times"),
        "on_first_piece never called": (sse_body(call=""), "on_first_piece is never called"),
        "on_first_piece called when none was given": (
            sse_body(call=CALL.replace("if first and on_first_piece:", "if first:")),
            "calls on_first_piece when none was given"),
        "message instead of delta": (sse_body(chunk=CHUNK.replace('"delta"', '"message"')), "carries `message`"),
        "the text as the delta": (sse_body(chunk=CHUNK.replace('{"content": piece.text}', "piece.text")),
                                  "`delta` is the text itself"),
    },
    "05.2": {
        "not in the notebook's registry": (
            metrics(counter='Counter("my_gateway_requests_total", "Requests by status", ["status"])',
                    histogram='Histogram("my_gateway_time_to_first_token_seconds", "Time to first token")'),
            "your registry exports nothing"),
        "no status label": (metrics(counter='Counter("my_gateway_requests_total", "Requests", registry=registry)'),
                            "has no label"),
        "buckets in milliseconds": (
            metrics(histogram='Histogram("my_gateway_time_to_first_token_seconds", "TTFT in s", registry=registry, '
                              'buckets=[10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000])'),
            "the buckets are in milliseconds"),
        "a Summary for TTFT": (
            "from prometheus_client import Summary\n"
            + metrics(histogram='Summary("my_gateway_time_to_first_token_seconds", "TTFT", registry=registry)'),
            "ttft_seconds is a Summary"),
        "a Gauge for requests": (
            "from prometheus_client import Gauge\n"
            + metrics(counter='Gauge("my_gateway_requests_total", "Requests", ["status"], registry=registry)'),
            "requests_total is a Gauge"),
        "the histogram named ttft": (
            metrics(histogram='Histogram("my_gateway_ttft_seconds", "TTFT", registry=registry)'),
            "no `my_gateway_time_to_first_token_seconds` metric"),
    },
    "05.3": {
        "never refilled": (bucket_body(refill="", move=""), "the bucket never refills"),
        "refilled without the cap": (bucket_body(refill="self.tokens += (now - self.updated) * self.rate"),
                                     "the bucket refills past `burst`"),
        "last update never moved": (bucket_body(move=""), "the last update time is not moved to now"),
        "a refused request takes a token": (
            "self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)\nself.updated = now\n"
            "self.tokens -= 1\nif self.tokens >= 0:\n    return 0.0\nreturn -self.tokens / self.rate",
            "a refused request takes a token too"),
        "a whole token's wait": (bucket_body(wait="1 / self.rate"), "the wait is a whole token's time"),
        "the wait in milliseconds": (bucket_body(wait="(1 - self.tokens) / self.rate * 1000"),
                                     "the wait is in milliseconds"),
        "> 1 instead of >= 1": (bucket_body(admit="self.tokens > 1"), "refuses it (> 1 where ≥ 1 is meant)"),
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
    assert set(WRONG) == {contract.exercise for contract in lab.reference.contracts.values() if contract.exercise}
    assert all(len(mistakes) >= 3 for mistakes in WRONG.values())
