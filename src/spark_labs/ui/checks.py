"""What lab 06's checkpoints say about a learner's answers: right, or which known mistake it is.

Each checker runs the learner's functions on made-up Ollama data (the learner's ``read_ndjson`` on streams
with blank keep-alive lines, an error line and a line after ``done``; ``decode_tok_s`` and ``server_ttft_s``
on final objects with and without ``prompt_eval_count``), catches what they raise (a naive ``json.loads`` on a
blank line is a failed answer, not a crashed checkpoint) and names the mistake the answers show. The
render-lag prediction is compared with the lag the lab measured in Chromium, within a stated tolerance.
``NotImplementedError`` passes through: the exercise is not done, which the notebook reports itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import numbers
import re
import statistics
from collections.abc import Callable

# ---------- 06.1: the NDJSON reader ----------


def _chunk(text: str) -> dict:
    return {"model": "tiny", "message": {"role": "assistant", "content": text}, "done": False}


PIECES = [_chunk("The"), _chunk(" GPU")]
FINAL = {**_chunk(""), "done": True, "eval_count": 2, "eval_duration": 100_000_000}
AFTER_DONE = _chunk(" (sent after done)")
SERVER_ERROR = "out of memory"
# Blank keep-alive lines between objects, and one object after the final one (a reader stops at done).
KEEP_ALIVE_STREAM = [json.dumps(PIECES[0]), "", json.dumps(PIECES[1]), "", json.dumps(FINAL), json.dumps(AFTER_DONE)]
ERROR_STREAM = [json.dumps(PIECES[0]), "", json.dumps({"error": SERVER_ERROR})]


def _learner_exception(exc: Exception) -> tuple[str, str]:
    """(type name, message) of the learner's exception. Across the grader's wall a non-builtin one (json's
    JSONDecodeError) arrives as ``LearnerRaised``, whose message says "<function> raised <Name>: <message>"."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    found = re.match(r"\S+ raised (\w+): ?(.*)", text) if type(exc).__name__ == "LearnerRaised" else None
    return (found.group(1), found.group(2)) if found else (type(exc).__name__, text)


def _read(read_ndjson: Callable, lines: list[str]) -> tuple[list, Exception | None]:
    """What the reader yielded from ``lines`` and the exception it ended with (None: it ended normally)."""
    items = []
    try:
        for item in read_ndjson(lines):
            items.append(item)
            if len(items) > 20:
                break
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exception of the learner's is part of the answer
        return items, exc
    return items, None


def reader_mistakes(read_ndjson: Callable) -> list[str]:
    """Checkpoint 06.1: what is wrong with the learner's ``read_ndjson`` ([] when it is right)."""
    items, raised = _read(read_ndjson, KEEP_ALIVE_STREAM)
    if raised is not None:
        name, said = _learner_exception(raised)
        if name == "JSONDecodeError":
            return ["read_ndjson parsed a blank line (JSONDecodeError): a stream may carry blank keep-alive lines "
                    "between objects; skip them and parse the others"]
        return [f"read_ndjson raised {name} ({said}) on a stream of two pieces and a final object with blank "
                "keep-alive lines between them"]
    if any(isinstance(item, (str, bytes)) for item in items):
        return ["read_ndjson yields the lines' text: parse each line and yield the object"]
    if items == [*PIECES, FINAL, AFTER_DONE]:
        return ['read_ndjson keeps reading after the object with "done": true: the answer is over there, and a '
                "server may keep the connection open"]
    if items in ([*PIECES], [*PIECES, AFTER_DONE]):
        return ['read_ndjson drops the final object ("done": true): it carries the server\'s counts and timings '
                "(06.2 reads them), so yield it, then stop"]
    if items != [*PIECES, FINAL]:
        return [f"read_ndjson yielded {len(items)} objects from a stream of two pieces and a final object: "
                f"{items!r}"]
    items, raised = _read(read_ndjson, ERROR_STREAM)
    if raised is None:
        if {"error": SERVER_ERROR} in items:
            return ['read_ndjson yields the {"error": …} line as an event: raise a RuntimeError carrying the '
                    "server's text (after 200 OK that line is the only way a server can say it failed)"]
        return ['read_ndjson skips the {"error": …} line silently: raise a RuntimeError carrying the server\'s '
                "text"]
    name, said = _learner_exception(raised)
    if name != "RuntimeError":
        return [f'read_ndjson raised {name} ({said}) on an {{"error": …}} line: raise a RuntimeError carrying the '
                "server's text"]
    if SERVER_ERROR not in said:
        return [f"the RuntimeError does not carry the server's text ({SERVER_ERROR!r}): put the error line's value "
                "in its message"]
    if items != PIECES[:1]:
        return [f"before the error line read_ndjson yielded {items!r}: yield each object as its line arrives, so "
                "the pieces before a failure still reach the caller"]
    return []


# ---------- 06.2: speed and TTFT from the server's fields ----------

# An Ollama final object with every count, and one as the gateway sends it for llama.cpp: no prompt_eval_count.
FINALS = [{"done": True, "eval_count": 50, "eval_duration": 2_000_000_000, "load_duration": 10_000_000,
           "prompt_eval_count": 12, "prompt_eval_duration": 40_000_000, "total_duration": 2_060_000_000},
          {"done": True, "eval_count": 120, "eval_duration": 4_000_000_000, "load_duration": 250_000_000,
           "prompt_eval_duration": 500_000_000, "total_duration": 4_800_000_000}]


def _tok_s(f: dict) -> float:
    return f["eval_count"] / (f["eval_duration"] / 1e9)


def _ttft_s(f: dict) -> float:
    return (f["load_duration"] + f["prompt_eval_duration"]) / 1e9


DECODE_MISTAKES: list[tuple[Callable[[dict], float], str]] = [
    (lambda f: f["eval_count"] / f["eval_duration"],
     "that is tokens per nanosecond: Ollama's durations are nanoseconds, so turn eval_duration into seconds first"),
    (lambda f: f["eval_count"] / (f["eval_duration"] / 1e6),
     "that is tokens per millisecond: the durations are nanoseconds, 10⁹ of them to a second"),
    (lambda f: f["eval_duration"] / 1e9 / f["eval_count"],
     "that is seconds per token, upside down: the speed is tokens per second"),
    (lambda f: f["eval_count"] / (f["total_duration"] / 1e9),
     "it divides by total_duration, which includes loading and reading the prompt: decode speed counts only the "
     "time spent generating"),
]
TTFT_MISTAKES: list[tuple[Callable[[dict], float], str]] = [
    (lambda f: (f["load_duration"] + f["prompt_eval_duration"]) / 1e6,
     "that is milliseconds: the time to first token is asked in seconds"),
    (lambda f: f["load_duration"] + f["prompt_eval_duration"],
     "that is nanoseconds, as the server sends them: the time to first token is asked in seconds"),
    (lambda f: f["prompt_eval_duration"] / 1e9,
     "it leaves out load_duration: the server's time to first token starts when the request arrives, so the wait "
     "before reading the prompt counts too"),
    (lambda f: f["total_duration"] / 1e9,
     "total_duration includes generating the whole answer: the time to first token ends where generation starts"),
    (lambda f: f["eval_duration"] / 1e9 / f["eval_count"],
     "that is the time per generated token, not the time to the first one"),
]


def _close(x: float, y: float) -> bool:
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)


def _formula_mistakes(function: Callable, name: str, right: Callable[[dict], float],
                      mistakes: list[tuple[Callable[[dict], float], str]]) -> str | None:
    answers = []
    for final in FINALS:
        try:
            value = function(final)
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - any exception of the learner's is a failed answer, named
            kind, said = _learner_exception(exc)
            if kind == "KeyError" and "prompt_eval_count" in said:
                return (f"{name} reads prompt_eval_count, which a server leaves out when it made no count (behind "
                        "the gateway it is missing): the durations are all it needs")
            return f"{name} raised {kind} ({said}) on a final object with the fields {sorted(final)}"
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return f"{name} returned {value!r}: it must return a number"
        answers.append(float(value))
    if all(_close(got, right(final)) for got, final in zip(answers, FINALS)):
        return None
    for mistake, says in mistakes:
        if all(_close(got, mistake(final)) for got, final in zip(answers, FINALS)):
            return f"{name}: {says}"
    final = FINALS[0]
    return (f"{name} gives {answers[0]:g} for a final object with {final['eval_count']} tokens generated in "
            f"{final['eval_duration']:,} ns after {final['load_duration']:,} ns loading and "
            f"{final['prompt_eval_duration']:,} ns reading the prompt; the answer there is {right(final):g}")


def speed_mistakes(decode_tok_s: Callable[[dict], float], server_ttft_s: Callable[[dict], float]) -> list[str]:
    """Checkpoint 06.2: what is wrong with the learner's two functions ([] when both are right)."""
    problems = [_formula_mistakes(decode_tok_s, "decode_tok_s", _tok_s, DECODE_MISTAKES),
                _formula_mistakes(server_ttft_s, "server_ttft_s", _ttft_s, TTFT_MISTAKES)]
    return [problem for problem in problems if problem]


# ---------- 06.3: the render lag ----------

FRAME_MS = 1000 / 60  # one frame of a 60 Hz display
# The tolerance: the frame wait is part of the lag the page measures (which adds the page's own work and, on a
# busy machine, waiting for the CPU), so a prediction may sit anywhere below the measured median, but no more
# than one frame above it; and no display waits less than 1 ms for its next frame.
LAG_TOLERANCE_MS = FRAME_MS
LAG_FLOOR_MS = 1.0
LAG_MISTAKES = [
    (FRAME_MS, "that is a whole frame (1000 ÷ 60 ms): a piece arrives at a random moment of a frame, so on "
               "average it waits half of one"),
    (2 * FRAME_MS, "that is two frames: a piece waits at most one frame, half of one on average"),
    (FRAME_MS / 2 / 1000, "that is seconds: the prediction is in milliseconds"),
    (FRAME_MS / 1000, "that is a whole frame in seconds: the prediction is in milliseconds, and a piece waits "
                      "half a frame on average"),
    (FRAME_MS / 2 * 1000, "that is microseconds: the prediction is in milliseconds"),
    (30.0, "60 ÷ 2 halves the frame rate, which is not a time: work out how long one frame lasts first"),
    (60.0, "60 is the display's frames per second, not a time: work out how long one frame lasts first"),
]


def lag_mistakes(predicted, lags_ms: list[float]) -> list[str]:
    """Checkpoint 06.3: what is wrong with the learner's ``predicted_lag_ms`` ([] when it is right), given the
    render lags the page measured (``ttft_render_ms - ttft_api_ms`` of each answer)."""
    if isinstance(predicted, bool) or not isinstance(predicted, numbers.Real) or not math.isfinite(predicted):
        return [f"predicted_lag_ms is {predicted!r}: it must be a number of milliseconds"]
    for value, says in LAG_MISTAKES:
        if math.isclose(predicted, value, rel_tol=0.05):
            return [f"predicted_lag_ms = {predicted:g}: {says}"]
    if predicted <= 0:
        return [f"predicted_lag_ms = {predicted:g}: the page draws a piece only in the next frame, so it waits"]
    if predicted < LAG_FLOOR_MS:
        return [f"predicted_lag_ms = {predicted:g}: less than any display's wait for its next frame — is it in "
                "seconds?"]
    measured = statistics.median(lags_ms)
    if predicted > measured + LAG_TOLERANCE_MS:
        return [f"predicted_lag_ms = {predicted:g} is more than one frame ({FRAME_MS:.1f} ms) above the render lag "
                f"measured in the browser (median {measured:.1f} ms over {len(lags_ms)} answers): the frame wait is "
                "part of that lag, so it cannot be much longer"]
    return []


# ---------- 06.5: the relay's stop path ----------

class MadeUpUpstream:
    """Stands in for the engine's streaming response (``httpx.Response``) in the relay's self-check: made-up
    NDJSON chunks from ``aiter_raw()``, a count of the chunks read and whether ``aclose()`` was called. The
    real stop path is proven in Chromium against the gateway, whose own gauge says whether the engine stopped."""

    def __init__(self, n_chunks: int):
        self.chunks = [json.dumps(_chunk(f" piece{i}")).encode() + b"\n" for i in range(n_chunks)]
        self.read = 0
        self.closed = False

    async def aiter_raw(self):
        for chunk in self.chunks:
            if self.closed:
                return
            self.read += 1
            yield chunk
            await asyncio.sleep(0)  # a real stream gives the event loop a turn between chunks

    async def aclose(self) -> None:
        self.closed = True


async def _relay_case(relay: Callable, n_chunks: int, leave_after: int | None, send_fails: bool) -> dict:
    """Run ``relay`` on made-up chunks; the browser leaves (or its send fails) after ``leave_after`` chunks."""
    upstream, left, got = MadeUpUpstream(n_chunks), asyncio.Event(), []

    async def send(chunk: bytes) -> None:
        if leave_after is not None and len(got) >= leave_after:
            if send_fails:
                raise ConnectionResetError("the browser closed the connection")
            return
        got.append(chunk)
        if leave_after is not None and len(got) == leave_after and not send_fails:
            left.set()  # the Stop button: the next chunk has nobody to go to

    raised = None
    try:
        await asyncio.wait_for(relay(upstream, send, left), timeout=5)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - what the learner's relay raised is part of the answer
        raised = exc
    return {"got": got, "chunks": upstream.chunks, "read": upstream.read, "closed": upstream.closed,
            "raised": raised}


def relay_mistakes(relay: Callable) -> list[str]:
    """Checkpoint 06.5's self-check of the learner's ``relay_chat(upstream, send, browser_left)`` on made-up
    streams ([] when it is right): a whole answer relayed (httpx closes a stream read to its end by itself);
    Stop noticed within one chunk and the connection closed; the connection closed when sending to the browser
    fails."""
    from ..event_loop import run_sync

    whole = run_sync(lambda: _relay_case(relay, 5, None, False))
    if isinstance(whole["raised"], asyncio.TimeoutError):
        return ["relay_chat was still running 5 s after a 5-chunk answer had ended: return once the engine's "
                "chunks run out (an answer can end without the browser ever leaving)"]
    if whole["raised"] is not None:
        return [f"relay_chat raised {type(whole['raised']).__name__} ({whole['raised']}) on a 5-chunk answer"]
    if whole["got"] != whole["chunks"]:
        return [f"the browser got {len(whole['got'])} of the answer's 5 chunks"
                + (" in another order" if sorted(whole["got"]) == sorted(whole["chunks"]) else "")
                + ": pass every chunk on, as it comes"]
    stopped = run_sync(lambda: _relay_case(relay, 40, 3, False))
    if stopped["read"] >= 40:
        return ["after the browser left, relay_chat read the engine's whole answer (40 of 40 chunks): the engine "
                "generated every token for nobody — look at browser_left between chunks and stop"]
    if stopped["read"] > 4:
        return [f"relay_chat read {stopped['read'] - 3} chunks after the browser left: stop at the first chunk "
                "after browser_left is set"]
    if not stopped["closed"]:
        return ["relay_chat stopped reading when the browser left but left the connection to the engine open: "
                "whether the engine stops then depends on Python's garbage collector finding the abandoned stream, "
                "not on your code — close it (await upstream.aclose())"]
    failing = run_sync(lambda: _relay_case(relay, 40, 3, True))
    if not failing["closed"]:
        return ["when sending to the browser failed (it closed the connection), the connection to the engine "
                "stayed open: close it whatever way the relay ends (a finally block)"]
    return []

