"""The slot scheduler: which request decodes in which row of the batched step, and when.

    waiting requests -> a free slot (prefill, first token) -> one batched decode step for all slots in use ->
    each slot's token to its request -> a slot whose request hit EOS, its max_tokens or was cancelled is free

That is continuous batching (lab 02's scheduler loop, here serving real requests): a request joins the batch
as soon as a slot is free and leaves it the step it is done, instead of waiting for the whole batch. The
decoder does the computing (:class:`~spark_labs.variants.batched.BatchedDecoder` in the server; any object
with ``prefill``, ``step``, ``release`` and ``read_ahead`` in the unit tests); this module only keeps the
books, on one thread of its own.

On a GPU the decoder's steps run ahead of the host by ``read_ahead`` steps: a step's tokens are read back
while the next step computes, so the GPU never idles waiting for the host. A request that finished is then
still in the step already queued; that step's token for it is dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# emit(token, None) for each new token, emit(None, None) once the request is complete, emit(None, error) if
# the decoder failed. Called on the scheduler's thread: hand the value over, do nothing slow there.
Emit = Callable[[int | None, BaseException | None], None]


@dataclass(eq=False)
class SlotRequest:
    input_ids: list[int]
    max_tokens: int
    emit: Emit
    temperature: float = 0.0
    top_p: float = 1.0
    stop_ids: frozenset[int] = frozenset()
    min_tokens: int = 0  # stop ids do not end the request before this many tokens (ignore_eos)
    made: int = 0
    done: bool = False
    cancelled: bool = field(default=False, repr=False)

    def finished_by(self, token: int) -> bool:
        return self.made >= self.max_tokens or (token in self.stop_ids and self.made >= self.min_tokens)


class SlotScheduler:
    def __init__(self, decoder, slots: int):
        self.decoder = decoder
        self.slots = slots
        self.free = list(range(slots))
        self.rows: dict[int, SlotRequest] = {}
        self.waiting: deque[SlotRequest] = deque()
        self._pending: deque = deque()  # (rows as they were at that step, that step's tokens) not read yet
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- from any thread
    def submit(self, request: SlotRequest) -> None:
        with self._wake:
            if self._closed:
                raise RuntimeError("the scheduler is closed")
            self.waiting.append(request)
            self._wake.notify()

    def cancel(self, request: SlotRequest) -> None:
        """The client left: the request's slot is freed at the next step (a waiting request never gets one)."""
        request.cancelled = True
        with self._wake:
            self._wake.notify()

    def start(self, before: Callable[[], None] | None = None) -> None:
        """Run the loop on a thread of its own; ``before`` (the decoder's warm-up) runs first on that thread."""
        self._thread = threading.Thread(target=self._run, args=(before,), name="slot-scheduler", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def busy(self) -> int:
        return len(self.rows)

    # --- the loop (the scheduler's thread)
    def _run(self, before: Callable[[], None] | None) -> None:
        if before is not None:
            try:
                before()
            except BaseException as exc:  # noqa: BLE001 - every request is told
                self._fail_all(exc, closing=True)
                return
        while True:
            with self._wake:
                while not self._closed and not self._has_work():
                    self._wake.wait()
                if self._closed:
                    break
            try:
                self.run_once()
            except BaseException as exc:  # noqa: BLE001 - a failed step fails the requests in it, not the server
                self._fail_all(exc)
        self._fail_all(RuntimeError("the server is shutting down"), closing=True)

    def _has_work(self) -> bool:
        return bool(self.waiting or self.rows or self._pending)

    def run_once(self) -> None:
        """Admit what fits, run one batched step, hand out the tokens that are back."""
        self._drop_cancelled()
        self._admit()
        if self.rows:
            self._pending.append((dict(self.rows), self.decoder.step()))
        while self._pending and (len(self._pending) > self.decoder.read_ahead or not self.rows):
            rows, tokens = self._pending.popleft()
            for row, token in enumerate(tokens.tolist()):
                request = rows.get(row)
                if request is not None and not request.done:
                    self._deliver(row, request, token)

    def _admit(self) -> None:
        while self.free and self.waiting:
            with self._wake:
                request = self.waiting.popleft()
            if request.cancelled:
                self._finish(None, request)
                continue
            row = self.free.pop(0)
            self.rows[row] = request
            try:
                token = self.decoder.prefill(row, request.input_ids, request.temperature, request.top_p)
            except BaseException as exc:  # noqa: BLE001 - this request fails, the others go on
                self._finish(row, request, exc)
                continue
            self._deliver(row, request, token)

    def _deliver(self, row: int, request: SlotRequest, token: int) -> None:
        request.made += 1
        _tell(request, token, None)
        if request.finished_by(token) or request.cancelled:
            self._finish(row, request)

    def _drop_cancelled(self) -> None:
        for row, request in list(self.rows.items()):
            if request.cancelled:
                self._finish(row, request)

    def _finish(self, row: int | None, request: SlotRequest, error: BaseException | None = None) -> None:
        request.done = True
        if row is not None and self.rows.get(row) is request:
            del self.rows[row]
            self.decoder.release(row)
            self.free.append(row)
            self.free.sort()
        _tell(request, None, error)

    def _fail_all(self, error: BaseException, closing: bool = False) -> None:
        for row, request in list(self.rows.items()):
            self._finish(row, request, error)
        self._pending.clear()
        with self._wake:
            waiting, self.waiting = list(self.waiting), deque()
            if closing:
                self._closed = True
        for request in waiting:
            self._finish(None, request, error)


def _tell(request: SlotRequest, token: int | None, error: BaseException | None) -> None:
    """Hand a request its token (or its end); a request whose client is gone with its event loop (emit
    raises) is cancelled, and the requests sharing its batch go on."""
    try:
        request.emit(token, error)
    except Exception:  # noqa: BLE001 - whatever the departed client's side raises, the others must not see it
        request.cancelled = True
