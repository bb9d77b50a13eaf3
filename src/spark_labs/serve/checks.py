"""What lab 05's checkpoints say about a learner's gateway pieces: right, or which known mistake it is.

The learner's SSE generator, metrics and token bucket live in the learner's kernel, wired into the learner's
app. Checkpoints used to judge them only through that running app (a streamed answer came through, /metrics
counted something, a burst got two 429s), which let plausible wrong answers pass: metric buckets in
milliseconds, a bucket that refills past its burst, a generator that buffers the whole answer. Each checkpoint
now also calls a small given function next to the learner's code (``sse_trial``, ``metrics_trial``,
``bucket_trial``) that feeds it made-up input and hands back plain data, and the checkers below name the
mistake that data shows. They need neither the engine nor the learner's gateway, so a checkpoint run again
later (a rehearsal) still decides on the learner's current code.

A learner's exception is a failed answer, named, not a crashed checkpoint; ``NotImplementedError`` passes
through: the exercise is not done yet, which the notebook reports itself.
"""

from __future__ import annotations

import ast
import json
import math
import numbers
import re
from collections.abc import Callable

from ..event_loop import run_sync
from .backends import Piece
from .limits import TokenBucket

# ---------- 05.1: Server-Sent Events ----------

SSE_TEXTS = ["The", " GPU", ' said "hi"\n']  # a quote and a newline: only JSON encoding carries them intact
MAX_EVENTS = 100  # a runaway generator stops here
_SSE_FIELD = re.compile(r"^(event|id|retry):")


def try_sse_events(sse_events: Callable, texts: list[str], model: str, callback: bool = True) -> dict:
    """Run a learner's ``sse_events`` on made-up pieces with ``texts``; plain data for :func:`sse_mistakes`:
    ``events`` (text; bytes decoded; None for anything else, whose type is in ``kinds``), ``read_at_event``
    (pieces read when each event came out) and ``read_at_call`` (pieces read at each ``on_first_piece`` call)."""
    read, events, kinds, read_at_event, read_at_call = [0], [], [], [], []

    async def pieces():
        for text in texts:
            read[0] += 1
            yield Piece(text, 1)

    async def collect():
        on_first_piece = (lambda: read_at_call.append(read[0])) if callback else None
        async for event in sse_events(pieces(), model, on_first_piece):
            events.append(event.decode() if isinstance(event, bytes) else event if isinstance(event, str) else None)
            kinds.append(type(event).__name__)
            read_at_event.append(read[0])
            if len(events) >= MAX_EVENTS:
                break

    run_sync(collect)
    return {"events": events, "kinds": kinds, "read_at_event": read_at_event, "read_at_call": read_at_call}


def _raised(exc: Exception) -> str:
    """The learner's exception as ``Name: message`` (across the grader's wall a non-builtin one arrives as
    ``LearnerRaised`` whose message already says "<function> raised <Name>: ...")."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if type(exc).__name__ == "LearnerRaised":
        return re.sub(r"^\S+ raised ", "", text)
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def _sse_parse(stream: str) -> tuple[list[list[str]], list[str], str | None]:
    """How a client reads ``stream``: the events (each a list of its data lines), data lines after the last
    blank line (never handed over), and the first line that is neither data, another field nor blank."""
    events, data = [], []
    for line in stream.split("\n"):
        if not line:
            if data:
                events.append(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line.startswith(":") and not _SSE_FIELD.match(line):
            return events, data, line
    return events, data, None


def _sse_framing(run: dict) -> tuple[list[str] | None, str | None]:
    """(each event's data, None) when the stream is framed right, else (None, what is wrong)."""
    if None in run["events"]:
        kind = run["kinds"][run["events"].index(None)]
        return None, (f"sse_events yields {kind} objects: an event is text, `data: ` + the chunk as JSON + a blank "
                      "line (the `sse` helper writes exactly that)")
    events, leftover, stray = _sse_parse("".join(run["events"]))
    if stray is not None:
        return None, (f"the stream holds a line that is neither `data: …` nor blank ({stray[:60]!r}): a raw newline "
                      "inside an event breaks it; encode each chunk with json.dumps, which escapes newlines")
    if any(len(data) > 1 for data in events) or len(leftover) > 1:
        return None, ("the events are not separated by a blank line: each event ends with two newlines (`\\n\\n`); "
                      "with one, a client reads the following data lines as part of the same event and its JSON "
                      "breaks")
    if leftover:
        return None, ("the last event has no blank line after it: a client hands an event over only at the blank "
                      f"line, so it never sees {leftover[0][:40]!r}")
    return [data[0] for data in events], None


def _sse_chunks(datas: list[str], texts: list[str]) -> str | None:
    """What is wrong with the events' payloads (None: one chunk per piece with its text, then [DONE])."""
    if not datas or datas[-1] != "[DONE]":
        if '"[DONE]"' in datas:
            return ('[DONE] is sent as JSON ("[DONE]", in quotes): the end marker is the bare text, '
                    '`data: [DONE]`')
        if "[DONE]" in datas:
            return "events come after [DONE]: it must be the last event of the stream"
        return ("the stream does not end with `data: [DONE]`: the OpenAI client waits for it to know the answer "
                "is over")
    contents = []
    for data in datas[:-1]:
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            try:
                ast.literal_eval(data)
            except (ValueError, SyntaxError):
                return f"a chunk is not JSON: {data[:80]!r}"
            return ("a chunk is Python's repr of the dict (single quotes, None), not JSON: encode it with "
                    "json.dumps")
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return f"a chunk has no `choices` list: {data[:80]!r}"
        choice = choices[0]
        if "delta" not in choice:
            if "message" in choice:
                return ("the chunk's choice carries `message`, the shape of a whole (non-streamed) answer: a "
                        "streamed chunk carries `delta`")
            return f"the chunk's choice has no `delta`: {data[:80]!r}"
        if not isinstance(choice["delta"], dict):
            return "`delta` is the text itself: it is an object holding the piece's text under `content`"
        if choice["delta"].get("content"):  # a role-only or closing chunk carries no text, as OpenAI's do
            contents.append(choice["delta"]["content"])
    if contents == texts:
        return None
    if len(texts) > 1 and contents == ["".join(texts)]:
        return ("one chunk holds the whole answer: yield one chunk per piece as it arrives, or the client sees "
                "nothing until the end")
    if len(contents) == len(texts) and contents == ["".join(texts[:i + 1]) for i in range(len(texts))]:
        return "each chunk repeats the answer so far: a chunk's delta carries only the new piece's text"
    return (f"the chunks carry {contents!r} for pieces {texts!r}: one chunk per piece, with that piece's text as "
            "`content`")


def sse_mistakes(trial: Callable[..., dict]) -> list[str]:
    """Checkpoint 05.1: what is wrong with the learner's ``sse_events`` ([] when it is right).
    ``trial(texts, model, callback)`` runs it on made-up pieces (:func:`try_sse_events`, next to the learner's
    code). Raises NotImplementedError while it still yields the starting stub's error event."""
    runs = {}
    for texts, callback in ((SSE_TEXTS, True), ([], True), (SSE_TEXTS[:1], False)):
        try:
            runs[len(texts), callback] = trial(texts, "tiny-model", callback)
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - any exception of the learner's is a failed answer, named
            said = _raised(exc)
            if not callback and "NoneType" in said and "callable" in said:
                return ["sse_events calls on_first_piece when none was given: the argument is optional (None by "
                        "default), so call it only when there is one"]
            if "__aiter__" in said:
                return [f"sse_events raised {said}: it must be an async generator (`async def` with `yield`)"]
            return [f"sse_events raised {said} on {len(texts)} made-up pieces"]
    main = runs[len(SSE_TEXTS), True]
    if any(event and '"type": "exercise"' in event for event in main["events"] if isinstance(event, str)):
        raise NotImplementedError("Exercise 05.1: sse_events still yields the starting stub's error event")
    datas, wrong = _sse_framing(main)
    if wrong:
        return [wrong]
    wrong = _sse_chunks(datas, SSE_TEXTS)
    if wrong:
        return [wrong]
    if main["read_at_event"][0] > 1:
        return [f"sse_events read all {len(SSE_TEXTS)} pieces before yielding its first event: a client sees "
                "nothing until the answer is complete; yield each chunk as its piece arrives"]
    calls = main["read_at_call"]
    if not calls:
        return ["on_first_piece is never called: the app measures the time to first token with it, so 05.2's "
                "TTFT histogram would stay empty"]
    if len(calls) > 1:
        return [f"on_first_piece is called {len(calls)} times for {len(SSE_TEXTS)} pieces: call it once, when the "
                "first piece arrives (each call observes one TTFT)"]
    if calls[0] != 1:
        return ["on_first_piece is called before any piece arrived: it marks the first piece's arrival"
                if calls[0] == 0 else
                f"on_first_piece is called after {calls[0]} pieces were read: call it as the first one arrives"]
    empty = runs[0, True]
    datas, wrong = _sse_framing(empty)
    if wrong or datas != ["[DONE]"]:
        return ["an answer with no pieces must still be a stream that ends with `data: [DONE]` "
                f"(yours yielded {empty['events']!r})"]
    if empty["read_at_call"]:
        return ["on_first_piece is called for an answer with no pieces: call it when a piece arrives"]
    return []


# ---------- 05.2: Prometheus metrics ----------

REQUESTS, TTFT = "my_gateway_requests_total", "my_gateway_time_to_first_token_seconds"
TRIAL_STATUSES = ["200", "200", "429"]
TRIAL_TTFTS_S = [0.03, 0.3, 3.0]  # 30 ms, 300 ms, 3 s: a TTFT histogram's buckets must tell them apart


def _families(text: str) -> dict[str, tuple[str, list]]:
    """Family name -> (type, samples) of a Prometheus exposition, ``_created`` timestamps left out."""
    from prometheus_client.parser import text_string_to_metric_families

    return {family.name: (family.type, [s for s in family.samples if not s.name.endswith("_created")])
            for family in text_string_to_metric_families(text) if not family.name.endswith("_created")}


def _sample(families: dict, name: str, labels: dict | None = None) -> float:
    return sum(s.value for _, samples in families.values() for s in samples
               if s.name == name and (labels is None or s.labels == labels))


def _counting_failed(said: str, metric: str, call: str) -> str:
    if "No label names were set" in said:
        return (f"{metric} has no label: the app calls requests_total.labels(\"200\"), so create the counter with "
                "one label name, `status`")
    if "Incorrect label count" in said:
        return f"{metric} takes another number of labels: the app gives one, the HTTP status, named `status`"
    if "missing label values" in said:
        return (f"{metric} has labels: the app calls ttft_seconds.observe(seconds) with none, so create the "
                "histogram without label names")
    kind = re.search(r"'(\w+)' object has no attribute", said)
    if kind:
        return f"{metric} is a {kind.group(1)}: the app calls {call} on it"
    return f"{call} raised {said}"


def metrics_mistakes(trial: Callable[[list[str], list[float]], str]) -> list[str]:
    """Checkpoint 05.2: what is wrong with the learner's two metrics ([] when they are right).
    ``trial(statuses, ttfts_s)`` counts each status with ``requests_total.labels(status).inc()`` and observes
    each TTFT with ``ttft_seconds.observe(s)``, as the app does, and returns what the learner's registry
    exports then (``metrics_trial``, next to the learner's code; the counts stay in the learner's metrics)."""
    steps = []
    for statuses, ttfts, metric, call in (([], [], "", ""),
                                          (TRIAL_STATUSES, [], "requests_total", 'requests_total.labels("200").inc()'),
                                          ([], TRIAL_TTFTS_S, "ttft_seconds", "ttft_seconds.observe(0.03)")):
        try:
            steps.append(_families(trial(statuses, ttfts)))
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - any exception of the learner's is a failed answer, named
            return [_counting_failed(_raised(exc), metric or "the registry", call or "generate_latest(registry)")]
    before, counted, observed = steps
    if not counted:
        return ["your registry exports nothing: create both metrics with registry=registry; without it they land "
                "in prometheus_client's global registry, which this app's /metrics does not serve"]
    named = {s.name for _, samples in counted.values() for s in samples} | set(counted)
    if REQUESTS not in named:
        others = sorted(name for name, (kind, _) in counted.items() if kind in ("counter", "gauge"))
        return [f"no `{REQUESTS}` series in your registry (it exports {', '.join(others) or 'none'}): the counter's "
                f"name is `{REQUESTS}`"]
    kind = next(kind for name, (kind, samples) in counted.items()
                if name == REQUESTS or any(s.name == REQUESTS for s in samples))
    if kind == "gauge":
        return ["requests_total is a Gauge: a request count only goes up, which is a Counter (Prometheus takes "
                "rate() of counters)"]
    keys = {key for _, samples in counted.values() for s in samples if s.name == REQUESTS for key in s.labels}
    if keys != {"status"}:
        return [f"the counter's label is {', '.join(f'`{k}`' for k in sorted(keys)) or 'missing'}: name it `status`"]
    rose = {status: _sample(counted, REQUESTS, {"status": status}) - _sample(before, REQUESTS, {"status": status})
            for status in set(TRIAL_STATUSES)}
    if rose != {status: float(TRIAL_STATUSES.count(status)) for status in rose}:
        return [f"after 2 answers with status 200 and 1 with 429 the counter rose by {rose}"]
    if TTFT not in observed:
        others = sorted(name for name, (kind, _) in observed.items() if kind in ("histogram", "summary"))
        return [f"no `{TTFT}` metric in your registry (it has {', '.join(others) or 'no histogram'}): the "
                f"histogram's name is `{TTFT}`"]
    kind, samples = observed[TTFT]
    if kind == "summary":
        return ["ttft_seconds is a Summary: it keeps a count and a sum but no buckets, so no TTFT percentile (p50, "
                "p95) can be read from /metrics; make it a Histogram"]
    if kind != "histogram":
        return [f"ttft_seconds is a {kind}: make it a Histogram"]
    added = _sample(observed, f"{TTFT}_count") - _sample(counted, f"{TTFT}_count")
    if added != len(TRIAL_TTFTS_S):
        return [f"{len(TRIAL_TTFTS_S)} TTFT observations raised the histogram's count by {added:g}"]
    bounds = sorted(float(s.labels["le"]) for s in samples
                    if s.name == f"{TTFT}_bucket" and math.isfinite(float(s.labels["le"])))
    if not bounds or min(bounds) >= 5:
        return [f"the buckets are in milliseconds ({', '.join(f'{b:g}' for b in bounds) or 'none'}): the app observes "
                "seconds, so every TTFT falls in the first bucket"]
    landed = {next((b for b in bounds if seconds <= b), math.inf) for seconds in TRIAL_TTFTS_S}
    if len(landed) < len(TRIAL_TTFTS_S):
        return [f"the buckets ({', '.join(f'{b:g}' for b in bounds)} s) cannot tell 30 ms, 300 ms and 3 s apart: "
                "spread them from about 10 ms to 10 s"]
    return []


# ---------- 05.3: the token bucket ----------

# (rate per s, burst, start, the times take() is called at)
BUCKET_CASES = [(2.0, 2, 10.0, [10.0, 10.0, 10.0, 10.25, 10.5, 10.5]),  # admit, refuse, refill part of a token
                (1.0, 3, 0.0, [0.0, 0.0, 0.0, 100.0, 100.0, 100.0, 100.0]),  # a long idle: never more than burst
                (0.5, 1, 0.0, [0.0, 0.0, 1.0, 2.0, 2.0, 3.0])]  # refusals take nothing; the wait shrinks


def _right_bucket(rate: float, burst: int, start: float, times: list[float]) -> list[float]:
    bucket = TokenBucket(rate, burst, start)
    return [bucket.take(now) for now in times]


def _bucket(rate, burst, start, times, *, refill=True, cap=True, move=True, charge_refusal=False,
            admit=lambda tokens: tokens >= 1, gained=lambda seconds, rate: seconds * rate,
            wait=lambda tokens, rate: (1 - tokens) / rate) -> list[float]:
    """A token bucket with one thing done wrong (the keywords), for naming a learner's mistake."""
    tokens, updated, answers = float(burst), start, []
    for now in times:
        if refill:
            tokens += gained(now - (updated if move else start), rate)
            tokens = min(burst, tokens) if cap else tokens
        updated = now
        if admit(tokens):
            tokens -= 1
            answers.append(0.0)
        else:
            answers.append(wait(tokens, rate))
            tokens -= 1 if charge_refusal else 0
    return answers


BUCKET_MISTAKES: list[tuple[Callable[..., list[float]], str]] = [
    (lambda *case: _bucket(*case, refill=False),
     "the bucket never refills: after its burst it refuses for ever; add the tokens `rate` brought in since the "
     "last update"),
    (lambda *case: _bucket(*case, cap=False),
     "the bucket refills past `burst`: after a long idle it admitted more requests in a row than its burst; it "
     "never holds more than burst tokens"),
    (lambda *case: _bucket(*case, move=False),
     "the last update time is not moved to now: the time since the start is added again at every call, so tokens "
     "appear that never arrived"),
    (lambda *case: _bucket(*case, charge_refusal=True),
     "a refused request takes a token too: the bucket goes below zero and each wait grows; a refusal takes "
     "nothing"),
    (lambda *case: _bucket(*case, wait=lambda tokens, rate: 1 / rate),
     "the wait is a whole token's time: part of the next token is already in the bucket, so wait only for the "
     "missing part"),
    (lambda *case: _bucket(*case, wait=lambda tokens, rate: (1 - tokens) / rate * 1000),
     "the wait is in milliseconds: take() returns seconds (the app sends them as Retry-After)"),
    (lambda *case: _bucket(*case, gained=lambda seconds, rate: seconds / rate,
                           wait=lambda tokens, rate: (1 - tokens) * rate),
     "rate is used as seconds per token: it is tokens per second"),
    (lambda *case: _bucket(*case, admit=lambda tokens: tokens > 1),
     "a bucket holding exactly one token refuses it (> 1 where ≥ 1 is meant), and then asks for a wait of 0"),
]


def _close(x: float, y: float) -> bool:
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)


def bucket_mistakes(trial: Callable[[float, int, float, list[float]], list]) -> list[str]:
    """Checkpoint 05.3: what is wrong with the learner's token bucket ([] when it is right).
    ``trial(rate, burst, start, times)`` makes a new ``MyTokenBucket(rate, burst, now=start)`` and returns what
    ``take(t)`` answered at each time (``bucket_trial``, next to the learner's code)."""
    answers = []
    for rate, burst, start, times in BUCKET_CASES:
        where = f"a bucket of rate {rate:g}/s and burst {burst}, full at t = {start:g} s, asked at t = {times}"
        try:
            got = trial(rate, burst, start, times)
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - any exception of the learner's is a failed answer, named
            return [f"take() raised {_raised(exc)} ({where})"]
        bad = next((value for value in got if isinstance(value, bool) or not isinstance(value, numbers.Real)), None)
        if bad is not None or len(got) != len(times):
            return [f"take() returned {got!r} ({where}): return 0 when a token was taken, else the seconds until one "
                    "will be there"]
        answers.append([float(value) for value in got])
    rights = [_right_bucket(*case) for case in BUCKET_CASES]
    if all(_close(g, r) for got, right in zip(answers, rights) for g, r in zip(got, right)):
        return []
    for mistake, says in BUCKET_MISTAKES:
        if all(_close(g, m) for got, case in zip(answers, BUCKET_CASES) for g, m in zip(got, mistake(*case))):
            return [says]
    for (rate, burst, start, times), got, right in zip(BUCKET_CASES, answers, rights):
        step = next((i for i, (g, r) in enumerate(zip(got, right)) if not _close(g, r)), None)
        if step is not None:
            return [f"take() returned {got[step]:g} at t = {times[step]:g} s where a bucket of rate {rate:g}/s and "
                    f"burst {burst}, full at t = {start:g} s and asked at t = {times[:step + 1]}, answers "
                    f"{right[step]:g}"]
    return []
