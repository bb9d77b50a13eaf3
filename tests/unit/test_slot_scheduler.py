"""The slot scheduler's books (spark_labs.serve.slots), with a scripted decoder: no model, no threads."""

from __future__ import annotations

import pytest

from spark_labs.serve.slots import SlotRequest, SlotScheduler


class ScriptedDecoder:
    """Row r's request emits its prompt's first id + 1, + 2, ... ; records what the scheduler asked."""

    def __init__(self, slots: int, read_ahead: int = 0, fail_prefill_for: int | None = None):
        self.read_ahead = read_ahead
        self.next = [0] * slots
        self.calls: list[tuple] = []
        self.fail_prefill_for = fail_prefill_for

    def prefill(self, row, input_ids, temperature, top_p):
        if input_ids[0] == self.fail_prefill_for:
            raise RuntimeError("prefill failed")
        self.calls.append(("prefill", row, input_ids[0]))
        self.next[row] = input_ids[0] + 1
        return self.next[row]

    def step(self):
        self.calls.append(("step",))
        for row in range(len(self.next)):
            self.next[row] += 1
        return Tokens(self.next)

    def release(self, row):
        self.calls.append(("release", row))


class Tokens(list):
    """What a real decoder's step returns: the step's tokens, read back with ``tolist()``."""

    def tolist(self):
        return list(self)


class Collect:
    def __init__(self):
        self.tokens: list[int] = []
        self.ended = False
        self.error = None

    def __call__(self, token, error):
        if token is None:
            assert not self.ended, "a request ends once"
            self.ended, self.error = True, error
        else:
            assert not self.ended, "no token after the end"
            self.tokens.append(token)


def request(first: int, max_tokens: int, **kw) -> tuple[SlotRequest, Collect]:
    sink = Collect()
    return SlotRequest([first], max_tokens, sink, **kw), sink


def run_until_idle(scheduler: SlotScheduler, limit: int = 100) -> int:
    steps = 0
    while scheduler._has_work():
        scheduler.run_once()
        steps += 1
        assert steps < limit, "the scheduler never went idle"
    return steps


def test_requests_beyond_the_slots_wait_and_take_a_slot_as_soon_as_one_frees():
    decoder = ScriptedDecoder(2)
    scheduler = SlotScheduler(decoder, 2)
    (a, sa), (b, sb), (c, sc) = request(100, 2), request(200, 5), request(300, 3)
    for r in (a, b, c):
        scheduler.submit(r)
    scheduler.run_once()
    assert ("prefill", 0, 100) in decoder.calls and ("prefill", 1, 200) in decoder.calls
    assert list(scheduler.waiting) == [c]  # two slots, the third waits
    assert sa.tokens == [101, 102] and sa.ended and 0 in scheduler.free  # a is done: its slot is free at once
    scheduler.run_once()
    assert scheduler.rows[0] is c  # admitted into a's slot on the very next iteration, not after b
    run_until_idle(scheduler)
    assert sb.tokens == [201, 202, 203, 204, 205] and sc.tokens == [301, 302, 303]
    assert scheduler.free == [0, 1] and not scheduler.rows
    assert ("release", 0) in decoder.calls and ("release", 1) in decoder.calls


def test_one_step_serves_every_busy_slot():
    decoder = ScriptedDecoder(4)
    scheduler = SlotScheduler(decoder, 4)
    sinks = []
    for first in (10, 20, 30, 40):
        r, sink = request(first, 4)
        scheduler.submit(r)
        sinks.append(sink)
    run_until_idle(scheduler)
    assert decoder.calls.count(("step",)) == 3  # 4 tokens each: 1 from prefill + 3 batched steps, shared
    assert [s.tokens for s in sinks] == [[f + 1, f + 2, f + 3, f + 4] for f in (10, 20, 30, 40)]


def test_eos_ends_a_request_unless_min_tokens_asks_for_more():
    decoder = ScriptedDecoder(2)
    scheduler = SlotScheduler(decoder, 2)
    stops, s_stop = request(0, 10, stop_ids=frozenset({3}))
    ignores, s_ignore = request(0, 5, stop_ids=frozenset({3}), min_tokens=5)
    scheduler.submit(stops)
    scheduler.submit(ignores)
    run_until_idle(scheduler)
    assert s_stop.tokens == [1, 2, 3]  # the stop id is the last token (usage counts it, text skips it)
    assert s_ignore.tokens == [1, 2, 3, 4, 5]


def test_a_cancelled_request_frees_its_slot_and_a_waiting_one_never_gets_one():
    decoder = ScriptedDecoder(1)
    scheduler = SlotScheduler(decoder, 1)
    (a, sa), (b, sb), (c, sc) = request(100, 50), request(200, 50), request(300, 2)
    for r in (a, b, c):
        scheduler.submit(r)
    scheduler.run_once()
    scheduler.cancel(a)  # client left mid-stream
    scheduler.cancel(b)  # client left while waiting
    scheduler.run_once()
    assert sa.ended and sa.error is None and len(sa.tokens) == 2
    assert sb.ended and sb.tokens == [] and ("prefill", 0, 200) not in decoder.calls
    assert ("prefill", 0, 300) in decoder.calls  # c took a's slot
    run_until_idle(scheduler)
    assert sc.tokens == [301, 302]


def test_tokens_read_a_step_late_reach_the_request_that_was_in_the_slot_then():
    # On a GPU the next step is queued before the last one's tokens are read: a slot handed to a new request
    # meanwhile must not receive the old request's token.
    decoder = ScriptedDecoder(1, read_ahead=1)
    scheduler = SlotScheduler(decoder, 1)
    (a, sa), (b, sb) = request(100, 2), request(500, 3)
    scheduler.submit(a)
    scheduler.submit(b)
    run_until_idle(scheduler)
    assert sa.tokens == [101, 102]
    assert sb.tokens == [501, 502, 503]


def test_a_failed_prefill_fails_that_request_only():
    decoder = ScriptedDecoder(2, fail_prefill_for=666)
    scheduler = SlotScheduler(decoder, 2)
    (bad, sbad), (good, sgood) = request(666, 3), request(10, 3)
    scheduler.submit(bad)
    scheduler.submit(good)
    run_until_idle(scheduler)
    assert sbad.ended and isinstance(sbad.error, RuntimeError) and sbad.tokens == []
    assert sgood.tokens == [11, 12, 13] and sgood.error is None
    assert scheduler.free == [0, 1]


def test_a_failed_step_fails_the_requests_in_it_and_the_loop_goes_on():
    class Broken(ScriptedDecoder):
        def step(self):
            raise RuntimeError("device lost")

    scheduler = SlotScheduler(Broken(2), 2)
    r, sink = request(1, 5)
    scheduler.submit(r)
    with pytest.raises(RuntimeError):
        scheduler.run_once()
    scheduler._fail_all(RuntimeError("device lost"))  # what the loop does with the exception
    assert sink.ended and isinstance(sink.error, RuntimeError) and scheduler.free == [0, 1]


def test_the_thread_warms_up_first_and_serves_requests_submitted_meanwhile():
    import threading

    gate = threading.Event()
    scheduler = SlotScheduler(ScriptedDecoder(2), 2)
    scheduler.start(before=gate.wait)  # warm-up still running
    r, sink = request(7, 3)
    done = threading.Event()
    r.emit = lambda token, error: (sink(token, error), token is None and done.set())
    scheduler.submit(r)
    assert not done.wait(0.2)  # nothing is served before the warm-up ends
    gate.set()
    assert done.wait(5) and sink.tokens == [8, 9, 10]
    scheduler.close()
    with pytest.raises(RuntimeError):
        scheduler.submit(request(1, 1)[0])


def test_a_client_gone_with_its_event_loop_frees_its_slot_and_the_batch_goes_on():
    """Before: the departed client's closed loop raised inside the step and failed every request in the batch."""
    decoder = ScriptedDecoder(2)
    scheduler = SlotScheduler(decoder, 2)

    def gone(token, error):
        raise RuntimeError("Event loop is closed")

    departed = SlotRequest([100], 5, gone)
    staying, sink = request(10, 3)
    scheduler.submit(departed)
    scheduler.submit(staying)
    for _ in range(4):
        scheduler.run_once()
    assert sink.tokens == [11, 12, 13] and sink.ended and sink.error is None
    assert departed.cancelled and scheduler.busy == 0
