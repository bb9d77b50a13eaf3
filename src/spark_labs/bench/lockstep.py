"""Did the requests of a run arrive in lockstep? Read from the records' send and first-token times only
(never from the load settings), so a saved report can be checked the same way.

Requests sent within half a decode step of each other reach the engine's scheduler in the same step, so
they share a prefill. A closed loop whose streams started together and decode fixed lengths keeps doing
that, cycle after cycle: every TTFT then includes a batched prefill of N (or, on a server that takes one
request at a time, waiting behind N − 1 others). That is one regime; streams that drifted apart are
another. This module says which one the records show.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .records import RequestRecord

# A regime is "lockstep" when most requests arrived together with others and the typical group holds at
# least half of the requests that were in flight at the busiest moment.
MIN_SHARE_TOGETHER = 0.5
MIN_GROUP_OF_STREAMS = 0.5
# Without any decode step to measure (one-token answers), "together" falls back to this share of TTFT.
TTFT_SHARE_WITHOUT_TPOT = 0.1


@dataclass(frozen=True)
class Arrivals:
    groups: list[list[RequestRecord]]  # requests sent together, in send order
    window_s: float  # sends closer than this count as together (half a decode step)
    streams: int  # most requests in flight at once, from the records' send/end times

    @property
    def requests(self) -> int:
        return sum(len(g) for g in self.groups)

    @property
    def group_size(self) -> int:
        """The size of the group a typical request arrived in (median over requests)."""
        return int(statistics.median_low([len(g) for g in self.groups for _ in g]))

    @property
    def share_together(self) -> float:
        return sum(len(g) for g in self.groups if len(g) > 1) / self.requests

    @property
    def first_token_spread_s(self) -> float:
        """Median over groups of two or more: last first token − first first token within the group."""
        spreads = [max(_first_token(r) for r in g) - min(_first_token(r) for r in g)
                   for g in self.groups if len(g) > 1]
        return statistics.median(spreads) / 1e9 if spreads else 0.0

    @property
    def prefill_batch(self) -> int:
        """How many requests of a group got their first token within one window of each other — one prefill
        step (median over groups of two or more; 1 when a server answers them one after another)."""
        sizes = [_most_within(sorted(_first_token(r) for r in g), self.window_s * 1e9)
                 for g in self.groups if len(g) > 1]
        return int(statistics.median_low(sizes)) if sizes else 1

    @property
    def started_together(self) -> bool:
        """The run's first requests were sent as one group holding at least half the streams."""
        first = len(self.groups[0])
        return first >= 2 and first >= MIN_GROUP_OF_STREAMS * self.streams

    @property
    def lockstep(self) -> bool:
        n = self.group_size
        return n >= 2 and n >= MIN_GROUP_OF_STREAMS * self.streams and self.share_together >= MIN_SHARE_TOGETHER

    def row(self) -> dict:
        """Columns for the report's frame (diagnosis lines are built from these)."""
        return {"arrival_group": self.group_size, "arrival_together_share": self.share_together,
                "arrival_window_ms": self.window_s * 1e3, "arrival_streams": self.streams,
                "first_token_spread_ms": self.first_token_spread_s * 1e3, "lockstep": self.lockstep,
                "prefill_batch": self.prefill_batch, "first_group": len(self.groups[0]),
                "first_group_batch": _most_within(sorted(map(_first_token, self.groups[0])), self.window_s * 1e9),
                "started_together": self.started_together}


def _first_token(record: RequestRecord) -> int:
    return record.content_chunks[0].t_ns


def _most_within(times: list[int], width: float) -> int:
    """The most of the sorted ``times`` that fit in any interval ``width`` long."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > width:
            start += 1
        most = max(most, end - start + 1)
    return most


def _most_in_flight(records: list[RequestRecord]) -> int:
    events = sorted([(r.sent_ns, 1) for r in records] + [(r.end_ns, -1) for r in records],
                    key=lambda e: (e[0], e[1]))  # an end before a send at the same instant
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def _window_s(records: list[RequestRecord]) -> float:
    """Half the median decode step (TPOT); without decode steps, a tenth of the median TTFT."""
    tpots, ttfts = [], []
    for r in records:
        chunks = r.content_chunks
        ttfts.append((chunks[0].t_ns - r.sent_ns) / 1e9)
        if len(chunks) > 1:
            tpots.append((chunks[-1].t_ns - chunks[0].t_ns) / 1e9 / (len(chunks) - 1))
    if tpots:
        return statistics.median(tpots) / 2
    return TTFT_SHARE_WITHOUT_TPOT * statistics.median(ttfts)


def arrivals(records: list[RequestRecord]) -> Arrivals | None:
    """Group the successful requests by send time; None when fewer than two have a first token."""
    ok = sorted((r for r in records if r.ok and r.content_chunks), key=lambda r: r.sent_ns)
    if len(ok) < 2:
        return None
    window = _window_s(ok)
    groups = [[ok[0]]]
    for r in ok[1:]:
        if r.sent_ns - groups[-1][-1].sent_ns <= window * 1e9:
            groups[-1].append(r)
        else:
            groups.append([r])
    return Arrivals(groups, window, _most_in_flight(ok))


def lockstep_line(who: str, row) -> str | None:
    """The diagnosis sentence for a frame row carrying :meth:`Arrivals.row` columns (None: not lockstep)."""
    if row.get("lockstep") not in (True,):  # False, or NaN for a run too small to tell
        return _start_only_line(who, row)
    n = int(row["arrival_group"])
    together = (f"requests arrived in lockstep ({n} at a time; {row['arrival_together_share']:.0%} of requests were "
                f"sent within {row['arrival_window_ms']:.1f} ms, half a decode step, of another)")
    batch = int(row.get("prefill_batch", 1))
    if batch > 1:
        return (f"{who}: {together}: TTFT includes a batched prefill of {batch}. Staggered stream starts (ramp-up, "
                "the default) measure the steady state instead.")
    return (f"{who}: {together}, but the server answered them one after another (first tokens "
            f"{row['first_token_spread_ms']:.0f} ms apart): TTFT includes waiting behind up to {n - 1} others "
            "in the server's queue, not a batched prefill.")


def _start_only_line(who: str, row) -> str | None:
    """A lockstep start that did not last (a server answering one request at a time staggers the restarts)."""
    if row.get("started_together") not in (True,):
        return None
    n, batch = int(row["first_group"]), int(row["first_group_batch"])
    served = (f"shared a prefill of {batch}" if batch > 1 else
              "were answered one after another, so their TTFTs include waiting in the server's queue")
    return (f"{who}: the first {n} requests were sent together and {served}; after that the streams drifted "
            "apart, so only the first round measured a lockstep start.")
