"""Checkpoint 07.1: the learner's ``my_nodes_needed`` and ``my_per_token_ms`` against the library's, on points
chosen so each common mistake changes the answer, with a message naming the mistake."""

from __future__ import annotations

import math
from collections.abc import Callable

from .memory import nodes_needed, per_token_ms

# (weights_gb, kv_gb, node_gb, usable): sums that are not whole multiples of a node, and one where the KV cache
# alone tips the count over.
NODE_POINTS = ((141.1, 10.7, 128.0, 0.9), (203.0, 4.0, 128.0, 0.9), (16.1, 4.3, 128.0, 0.9), (110.0, 12.0, 128.0, 0.9),
               (230.0, 0.5, 128.0, 0.9), (60.0, 60.0, 24.0, 0.8))
# (weights_gb, bandwidth_gbs, nodes, parallel, layers, hop_ms)
TOKEN_POINTS = ((141.1, 273.0, 2, "tensor", 80, 0.02), (141.1, 273.0, 2, "pipeline", 80, 0.02),
                (230.0, 273.0, 2, "tensor", 126, 0.05), (230.0, 273.0, 2, "pipeline", 126, 0.05),
                (16.1, 273.0, 1, "tensor", 32, 0.02), (60.0, 100.0, 4, "pipeline", 40, 0.5),
                (60.0, 100.0, 4, "tensor", 40, 0.5))


# Slips a learner makes in my_nodes_needed, each as the function it amounts to and the words that name it. One
# point may fit two slips (where the KV cache and the unusable share both stay under a node), so a slip is named
# only when it reproduces the learner's answer on every point where that answer is wrong.
NODE_SLIPS = (
    (lambda w, kv, node, usable: max(1, math.ceil(w / (node * usable))),
     "the KV cache needs memory too, not only the weights"),
    (lambda w, kv, node, usable: max(1, math.ceil((w + kv) / node)),
     "only {usable:.0%} of each node is usable (the OS, the engine's runtime and activations take the rest)"),
    (lambda w, kv, node, usable: round((w + kv) / (node * usable)),
     "rounded to the nearest; a part of a machine still needs a whole one (round up)"),
    (lambda w, kv, node, usable: int((w + kv) / (node * usable)),
     "rounded down; a part of a machine still needs a whole one (round up)"),
)


def _node_mistakes(fn: Callable) -> list[str]:
    wrong = []
    for point in NODE_POINTS:
        got, want = fn(*point), nodes_needed(*point)
        if isinstance(got, bool) or not isinstance(got, int):
            return [f"my_nodes_needed{point} returned {got!r} ({type(got).__name__}): a count of machines is a "
                    "whole int"]
        if got != want:
            wrong.append((point, got, want))
    if not wrong:
        return []
    point, got, want = wrong[0]
    words = next((words for slip, words in NODE_SLIPS if all(slip(*p) == g for p, g, _ in wrong)), None)
    said = f": {words.format(usable=point[3])}" if words else ""
    return [f"my_nodes_needed{point} = {got}, want {want}{said}"]


def _token_mistake(fn: Callable, point: tuple) -> str | None:
    weights, bw, nodes, parallel, layers, hop = point
    got = fn(*point)
    want = per_token_ms(*point)
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return f"my_per_token_ms{point} returned {got!r}: a number of milliseconds"
    if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
        return None
    stream = weights / bw * 1000
    if parallel == "tensor" and math.isclose(got, stream / nodes, rel_tol=1e-6):
        return (f"my_per_token_ms{point} = {got:.2f}, want {want:.2f}: tensor parallel pays two all-reduces per "
                "layer over the link (after attention and after the MLP)")
    if parallel == "tensor" and math.isclose(got, stream / nodes + layers * hop, rel_tol=1e-6):
        return f"my_per_token_ms{point} = {got:.2f}, want {want:.2f}: two all-reduces per layer, not one"
    if parallel == "pipeline" and math.isclose(got, stream / nodes + (nodes - 1) * hop, rel_tol=1e-6):
        return (f"my_per_token_ms{point} = {got:.2f}, want {want:.2f}: at batch 1 the pipeline's stages run one "
                "after another (the bubble), so a token streams all the weights, not 1/N")
    # the weights' stream left in seconds (GB ÷ GB/s) while the hops are in ms, or the whole answer off by 1000
    stream_s = weights / bw
    mixed = (stream_s / nodes + (2 * layers * hop if nodes > 1 else 0.0) if parallel == "tensor"
             else stream_s + (nodes - 1) * hop)
    if any(math.isclose(got, other, rel_tol=1e-6) for other in (mixed, want / 1000, want * 1000)):
        return f"my_per_token_ms{point} = {got}, want {want:.2f}: milliseconds (GB ÷ GB/s is seconds)"
    return f"my_per_token_ms{point} = {got:.3f}, want {want:.3f}"


def split_mistakes(my_nodes_needed: Callable, my_per_token_ms: Callable) -> list[str]:
    """Every point where the learner's functions differ from the library's, each naming the likely mistake."""
    problems = _node_mistakes(my_nodes_needed)
    problems += [p for p in (_token_mistake(my_per_token_ms, point) for point in TOKEN_POINTS) if p]
    return problems
