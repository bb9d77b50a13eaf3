"""The checks behind labs 05 and 06's checkpoints, without a notebook: the right answer passes, each usual
mistake is named (tests/notebooks/test_answers_lab05.py and _lab06.py push the same mistakes through the real
checkpoint cells). Lab 05's pieces run here as the lab's given ``*_trial`` functions run them in the learner's
kernel; lab 06's functions are called on the checks' made-up Ollama data and a recorded set of render lags."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest

from spark_labs.serve import bucket_mistakes, metrics_mistakes, sse_mistakes, try_sse_events
from spark_labs.serve.checks import BUCKET_MISTAKES
from spark_labs.ui import lag_mistakes, reader_mistakes, speed_mistakes

# ---------- 05.1: SSE framing ----------


def sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def chunk(model: str, text: str) -> dict:
    return {"object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


async def right_sse(pieces, model, on_first_piece=None):
    first = True
    async for piece in pieces:
        if first and on_first_piece:
            on_first_piece()
        first = False
        yield sse(chunk(model, piece.text))
    yield "data: [DONE]\n\n"


async def one_newline(pieces, model, on_first_piece=None):
    first = True
    async for piece in pieces:
        if first and on_first_piece:
            on_first_piece()
        first = False
        yield "data: " + json.dumps(chunk(model, piece.text)) + "\n"
    yield "data: [DONE]\n\n"


async def no_done(pieces, model, on_first_piece=None):
    async for event in right_sse(pieces, model, on_first_piece):
        if "[DONE]" not in event:
            yield event


async def done_as_json(pieces, model, on_first_piece=None):
    async for event in no_done(pieces, model, on_first_piece):
        yield event
    yield sse("[DONE]")


async def python_repr(pieces, model, on_first_piece=None):
    async for piece in pieces:
        if on_first_piece:
            on_first_piece()
            on_first_piece = None
        yield f"data: {chunk(model, piece.text)}\n\n"
    yield "data: [DONE]\n\n"


async def buffered(pieces, model, on_first_piece=None):
    texts = [piece.text async for piece in pieces]
    if on_first_piece:
        on_first_piece()
    yield sse(chunk(model, "".join(texts)))
    yield "data: [DONE]\n\n"


async def every_piece_calls(pieces, model, on_first_piece=None):
    async for piece in pieces:
        if on_first_piece:
            on_first_piece()
        yield sse(chunk(model, piece.text))
    yield "data: [DONE]\n\n"


async def never_calls(pieces, model, on_first_piece=None):
    async for piece in pieces:
        yield sse(chunk(model, piece.text))
    yield "data: [DONE]\n\n"


async def always_calls(pieces, model, on_first_piece=None):
    first = True
    async for piece in pieces:
        if first:
            on_first_piece()
        first = False
        yield sse(chunk(model, piece.text))
    yield "data: [DONE]\n\n"


async def message_shape(pieces, model, on_first_piece=None):
    async for event in right_sse(pieces, model, on_first_piece):
        yield event.replace('"delta"', '"message"')


async def yields_dicts(pieces, model, on_first_piece=None):
    async for piece in pieces:
        yield chunk(model, piece.text)
    yield "data: [DONE]\n\n"


async def stub(pieces, model, on_first_piece=None):
    yield sse({"error": {"message": "Exercise 05.1: sse_events is not written yet", "type": "exercise"}})


def trial_of(generator):
    return lambda texts, model, callback=True: try_sse_events(generator, texts, model, callback)


def test_the_right_sse_events_passes_and_streams_piece_by_piece():
    run = try_sse_events(right_sse, ["a", "b"], "m")
    assert run["events"][-1] == "data: [DONE]\n\n" and run["read_at_event"] == [1, 2, 2] and run["read_at_call"] == [1]
    assert sse_mistakes(trial_of(right_sse)) == []


@pytest.mark.parametrize(("generator", "says"), [
    (one_newline, "not separated by a blank line"), (no_done, "does not end with `data: [DONE]`"),
    (done_as_json, "[DONE] is sent as JSON"), (python_repr, "Python's repr"), (buffered, "one chunk holds the whole"),
    (every_piece_calls, "on_first_piece is called 3 times"), (never_calls, "on_first_piece is never called"),
    (always_calls, "on_first_piece when none was given"), (message_shape, "carries `message`"),
    (yields_dicts, "yields dict objects")])
def test_each_sse_mistake_is_named(generator, says):
    problems = sse_mistakes(trial_of(generator))
    assert len(problems) == 1 and says in problems[0], problems


def test_the_sse_stub_is_not_done_rather_than_wrong():
    with pytest.raises(NotImplementedError, match="Exercise 05.1"):
        sse_mistakes(trial_of(stub))


# ---------- 05.2: metrics ----------


def metrics_trial(make):
    """What the lab's metrics_trial does in the learner's kernel, on metrics ``make(registry)`` creates."""
    registry = CollectorRegistry()
    requests_total, ttft_seconds = make(registry)

    def trial(statuses, ttfts_s):
        for status in statuses:
            requests_total.labels(status).inc()
        for seconds in ttfts_s:
            ttft_seconds.observe(seconds)
        return generate_latest(registry).decode()
    return trial


BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def right_metrics(registry, counter=Counter, labels=("status",), histogram=Histogram, name=None, buckets=BUCKETS):
    requests = counter("my_gateway_requests_total", "Requests by HTTP status", list(labels), registry=registry)
    ttft_name = name or "my_gateway_time_to_first_token_seconds"
    if histogram is Summary:
        return requests, Summary(ttft_name, "Time to first token", registry=registry)
    return requests, histogram(ttft_name, "Time to first token", registry=registry, buckets=buckets)


def test_the_right_metrics_pass():
    assert metrics_mistakes(metrics_trial(right_metrics)) == []
    assert metrics_mistakes(metrics_trial(lambda r: right_metrics(r, buckets=Histogram.DEFAULT_BUCKETS))) == []


@pytest.mark.parametrize(("make", "says"), [
    (lambda r: right_metrics(CollectorRegistry()), "your registry exports nothing"),
    (lambda r: right_metrics(r, labels=()), "has no label"),
    (lambda r: right_metrics(r, labels=("code",)), "label is `code`"),
    (lambda r: right_metrics(r, counter=Gauge), "requests_total is a Gauge"),
    (lambda r: right_metrics(r, histogram=Summary), "ttft_seconds is a Summary"),
    (lambda r: right_metrics(r, buckets=tuple(1000 * b for b in BUCKETS)), "buckets are in milliseconds"),
    (lambda r: right_metrics(r, buckets=(1, 5, 10)), "cannot tell 30 ms, 300 ms and 3 s apart"),
    (lambda r: right_metrics(r, name="my_gateway_ttft_seconds"), "no `my_gateway_time_to_first_token_seconds`")])
def test_each_metrics_mistake_is_named(make, says):
    problems = metrics_mistakes(metrics_trial(make))
    assert len(problems) == 1 and says in problems[0], problems


def test_a_histogram_with_labels_is_named_not_a_crash():
    def make(registry):
        requests = Counter("my_gateway_requests_total", "Requests by HTTP status", ["status"], registry=registry)
        return requests, Histogram("my_gateway_time_to_first_token_seconds", "TTFT", ["status"], registry=registry)
    assert "has labels" in metrics_mistakes(metrics_trial(make))[0]


# ---------- 05.3: the token bucket ----------


class RightBucket:
    def __init__(self, rate, burst, now):
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = float(burst), now

    def take(self, now):
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class NeverRefills(RightBucket):
    def take(self, now):
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class NoCap(RightBucket):
    def take(self, now):
        self.tokens += (now - self.updated) * self.rate
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class ChargesRefusals(RightBucket):
    def take(self, now):
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def bucket_trial(cls):
    def trial(rate, burst, start, times):
        bucket = cls(rate, burst, start)
        return [bucket.take(now) for now in times]
    return trial


def test_the_right_bucket_passes():
    assert bucket_mistakes(bucket_trial(RightBucket)) == []


@pytest.mark.parametrize(("cls", "says"), [(NeverRefills, "never refills"), (NoCap, "refills past `burst`"),
                                           (ChargesRefusals, "a refused request takes a token too")])
def test_each_bucket_mistake_written_as_a_learner_would_is_named(cls, says):
    assert says in bucket_mistakes(bucket_trial(cls))[0]


@pytest.mark.parametrize("index", range(len(BUCKET_MISTAKES)))
def test_each_bucket_mistake_is_told_apart_from_the_others(index):
    mistake, says = BUCKET_MISTAKES[index]
    assert bucket_mistakes(lambda *case: mistake(*case)) == [says]


def test_a_bucket_that_raises_or_returns_no_number_is_named():
    assert "take() raised ZeroDivisionError" in bucket_mistakes(lambda rate, burst, start, times: [1 / 0])[0]
    assert "return 0 when a token was taken" in bucket_mistakes(lambda *case: [True] * len(case[3]))[0]
    with pytest.raises(NotImplementedError):
        bucket_mistakes(lambda *case: (_ for _ in ()).throw(NotImplementedError("Exercise 05.3")))


# ---------- 06.1: the NDJSON reader ----------


def right_reader(lines):
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        if "error" in event:
            raise RuntimeError(f"the server failed mid-answer: {event['error']}")
        yield event
        if event.get("done"):
            return


def naive_reader(lines):
    for line in lines:
        event = json.loads(line)
        if "error" in event:
            raise RuntimeError(event["error"])
        yield event
        if event.get("done"):
            return


def yields_errors(lines):
    for line in lines:
        if line.strip():
            event = json.loads(line)
            yield event
            if event.get("done"):
                return


def never_stops(lines):
    for line in lines:
        if line.strip():
            event = json.loads(line)
            if "error" in event:
                raise RuntimeError(event["error"])
            yield event


def wrong_exception(lines):
    for line in lines:
        if line.strip():
            event = json.loads(line)
            if "error" in event:
                raise ValueError(event["error"])
            yield event
            if event.get("done"):
                return


def no_server_text(lines):
    for line in lines:
        if line.strip():
            event = json.loads(line)
            if "error" in event:
                raise RuntimeError("the server failed")
            yield event
            if event.get("done"):
                return


def test_the_right_reader_passes():
    assert reader_mistakes(right_reader) == []


@pytest.mark.parametrize(("reader", "says"), [
    (naive_reader, "parsed a blank line"), (yields_errors, 'yields the {"error": …} line as an event'),
    (never_stops, 'keeps reading after the object with "done": true'), (wrong_exception, "raised ValueError"),
    (no_server_text, "does not carry the server's text")])
def test_each_reader_mistake_is_named_and_none_crashes_the_check(reader, says):
    problems = reader_mistakes(reader)
    assert len(problems) == 1 and says in problems[0], problems


def test_a_json_error_from_across_the_graders_wall_is_named_too():
    """In the grader the learner's JSONDecodeError (not a builtin) arrives as LearnerRaised."""
    from spark_labs.grading.judge import LearnerRaised

    def across(lines):
        yield from []
        raise LearnerRaised("read_ndjson raised JSONDecodeError: Expecting value: line 1 column 1 (char 0) (line 5 "
                            "of your code)")
    assert "parsed a blank line" in reader_mistakes(across)[0]


# ---------- 06.2: tok/s and TTFT from the server's fields ----------


def right_tok_s(final):
    return final["eval_count"] / (final["eval_duration"] / 1e9)


def right_ttft_s(final):
    return (final["load_duration"] + final["prompt_eval_duration"]) / 1e9


def test_the_right_formulas_pass():
    assert speed_mistakes(right_tok_s, right_ttft_s) == []


@pytest.mark.parametrize(("tok_s", "ttft_s", "says"), [
    (lambda f: f["eval_count"] / f["eval_duration"], right_ttft_s, "tokens per nanosecond"),
    (lambda f: f["eval_count"] / (f["eval_duration"] / 1e6), right_ttft_s, "tokens per millisecond"),
    (lambda f: f["eval_duration"] / 1e9 / f["eval_count"], right_ttft_s, "seconds per token"),
    (lambda f: f["eval_count"] / (f["total_duration"] / 1e9), right_ttft_s, "divides by total_duration"),
    (right_tok_s, lambda f: (f["load_duration"] + f["prompt_eval_duration"]) / 1e6, "that is milliseconds"),
    (right_tok_s, lambda f: f["prompt_eval_duration"] / 1e9, "leaves out load_duration"),
    (right_tok_s, lambda f: f["total_duration"] / 1e9, "total_duration includes generating"),
    (right_tok_s, lambda f: f["prompt_eval_duration"] / f["prompt_eval_count"] / 1e9, "reads prompt_eval_count")])
def test_each_speed_mistake_is_named(tok_s, ttft_s, says):
    problems = speed_mistakes(tok_s, ttft_s)
    assert len(problems) == 1 and says in problems[0], problems


# ---------- 06.3: the render lag ----------

RECORDED_LAGS_MS = [15.4, 15.8, 36.8]  # solutions/06_web_ui.ipynb's recorded run: headless Chromium, tiny profile


@pytest.mark.parametrize("predicted", [1000 / 60 / 2, 8, 8.3, 1000 // 60 // 2, 5.0])
def test_a_half_frame_prediction_passes_against_the_recorded_lags(predicted):
    assert lag_mistakes(predicted, RECORDED_LAGS_MS) == []


@pytest.mark.parametrize(("predicted", "says"), [
    (1000 / 60, "a whole frame"), (1000 // 60, "a whole frame"), (1 / 60 / 2, "that is seconds"),
    (1 / 60, "a whole frame in seconds"), (1e6 / 60 / 2, "microseconds"), (60 / 2, "halves the frame rate"),
    (2000 / 60, "two frames"), (0, "so it waits"), (0.5, "is it in seconds"), (None, "must be a number"),
    (80.0, "more than one frame (16.7 ms) above the render lag")])
def test_each_lag_mistake_is_named(predicted, says):
    problems = lag_mistakes(predicted, RECORDED_LAGS_MS)
    assert len(problems) == 1 and says in problems[0], problems


def test_the_lag_tolerance_is_one_frame_above_the_measured_median_and_nothing_below():
    assert lag_mistakes(8.3, [120.0, 130.0, 140.0]) == []  # a busy machine: the lag holds more than the frame wait
    assert lag_mistakes(8.3, [0.2, 0.3, 0.4]) == []  # headless Chromium drew at once: still within one frame
    assert lag_mistakes(40.0, [20.0, 22.0, 25.0]) and not lag_mistakes(38.0, [20.0, 22.0, 25.0])


# ---------- 06.5: the relay's stop path, on made-up streams ----------

async def _relay_right(upstream, send, browser_left):
    try:
        async for chunk in upstream.aiter_raw():
            if browser_left.is_set():
                return
            await send(chunk)
    finally:
        await upstream.aclose()


async def _relay_never_looks(upstream, send, browser_left):
    try:
        async for chunk in upstream.aiter_raw():
            await send(chunk)
    finally:
        await upstream.aclose()


async def _relay_never_closes(upstream, send, browser_left):
    async for chunk in upstream.aiter_raw():
        if browser_left.is_set():
            return
        await send(chunk)


async def _relay_closes_after_the_loop(upstream, send, browser_left):
    async for chunk in upstream.aiter_raw():
        if browser_left.is_set():
            break
        await send(chunk)
    await upstream.aclose()


async def _relay_waits_for_the_browser(upstream, send, browser_left):
    async for chunk in upstream.aiter_raw():
        await send(chunk)
    await browser_left.wait()


@pytest.mark.parametrize(("relay", "says"), [
    (_relay_never_looks, "read the engine's whole answer"),
    (_relay_never_closes, "left the connection to the engine open"),
    (_relay_closes_after_the_loop, "a finally block"),
    (_relay_waits_for_the_browser, "still running 5 s after"),
])
def test_a_relay_that_does_not_stop_the_engine_is_named(relay, says):
    from spark_labs.ui import relay_mistakes

    problems = relay_mistakes(relay)
    assert problems and says in problems[0], problems


def test_the_right_relay_and_the_course_relay_pass_the_self_check():
    from spark_labs.ui import relay_mistakes, relay_until_stop

    assert relay_mistakes(_relay_right) == [] and relay_mistakes(relay_until_stop) == []
