"""The "engine build" of a transformers model: a fixed-shape decode step over a static KV cache, compiled once.

Eager ``generate`` re-dispatches hundreds of small kernels per token from Python and grows its KV cache as it
goes; on a GPU the launch overhead, not memory bandwidth, then sets the speed (about 5 % of the bandwidth
roofline for an 8B model at batch 1). Fixing the shapes ahead of time -- a :class:`~transformers.StaticCache`
of ``max_cache_len`` slots, one token in, one token out -- lets ``torch.compile`` fuse the step, and on CUDA
(``mode="reduce-overhead"``) record it once as a CUDA graph that is replayed per token. That is what an
engine build (TensorRT-LLM, vLLM's CUDA graphs) buys, and what it costs: compile time before the first token,
and a context length fixed at build time.

Only the one-token decode step is compiled. Prefill runs eagerly: prompts differ in length, and a compiled
prefill would recompile for each new length. The CUDA-graph replay reuses its output buffers, so the next
token is computed inside the graph and copied out (``clone``) before the next replay overwrites it;
``torch.compiler.cudagraph_mark_step_begin()`` tells the graph tree that a new step starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DecodeTiming:
    """One timed generation: prefill (prompt in, first token out) and the decode steps after it."""

    prompt_tokens: int
    new_tokens: int
    prefill_s: float
    decode_s: float

    @property
    def prefill_tok_s(self) -> float:
        return self.prompt_tokens / self.prefill_s

    @property
    def decode_tok_s(self) -> float:
        # The first new token comes out of prefill; the decode phase produced the other new_tokens - 1.
        return (self.new_tokens - 1) / self.decode_s if self.new_tokens > 1 else float("nan")


class CacheTooShortError(ValueError):
    """A request needs more positions than the static cache was built with."""


class StaticCacheDecoder:
    """Batch-1 generation over a :class:`~transformers.StaticCache`, the decode step optionally compiled.

    ``compile=False`` gives the same loop eagerly: the fair baseline, since only compilation differs.
    Every generation runs on the decoder's own single thread, whichever thread asks: CUDA graphs are
    recorded per thread (a server that generates from a new thread per request would re-record or fail),
    and one cache allows one generation at a time, so callers are serialised there too.
    """

    def __init__(self, model, max_cache_len: int, compile: bool = True, mode: str | None = None,
                 free_memory: float | None = None):
        import torch
        from transformers import StaticCache

        self.model = model
        self.device = next(model.parameters()).device
        check_cache_fits(model.config, max_cache_len, dtype_name(model.dtype), free_memory)
        self.max_cache_len = max_cache_len
        self.cache = StaticCache(config=model.config, max_cache_len=max_cache_len)
        self.cuda_graphs = compile and self.device.type == "cuda"
        if compile:
            # reduce-overhead = inductor + CUDA graphs; CPUs have no graphs to replay, inductor alone fuses.
            mode = mode or ("reduce-overhead" if self.cuda_graphs else "default")
            self._step = torch.compile(self._decode_step, mode=mode, fullgraph=True, dynamic=False)
        else:
            self._step = self._decode_step
        self.compiled = compile
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="static-cache-decoder",
                                          initializer=_give_thread_cuda_graph_state if self.cuda_graphs else None)

    # --- the fixed-shape step (what gets compiled)
    def _decode_step(self, token, position):
        logits = self.model(input_ids=token, position_ids=position.unsqueeze(0), cache_position=position,
                            past_key_values=self.cache, use_cache=True).logits
        return logits[:, -1, :].float()

    def _prefill(self, ids):
        import torch

        position = torch.arange(ids.shape[1], device=self.device)
        logits = self.model(input_ids=ids, position_ids=position.unsqueeze(0), cache_position=position,
                            past_key_values=self.cache, use_cache=True).logits
        return logits[:, -1, :].float()

    def _next_logits(self, token, position):
        import torch

        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        return self._step(token, position).clone()  # the graph's output buffer is reused by the next replay

    # --- public
    def generate(self, input_ids: list[int], max_new_tokens: int, *, eos_token_id: int | set[int] | None = None,
                 min_new_tokens: int = 0, temperature: float = 0.0, top_p: float = 1.0,
                 on_token: Callable[[int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> list[int]:
        """The new token ids. ``on_token`` sees each id as it is made (on the decoder's thread);
        ``should_stop`` ends early."""
        return self._thread.submit(self._generate, input_ids, max_new_tokens, eos_token_id, min_new_tokens,
                                   temperature, top_p, on_token, should_stop).result()

    def _generate(self, input_ids, max_new_tokens, eos_token_id, min_new_tokens, temperature, top_p, on_token,
                  should_stop) -> list[int]:
        import torch

        needed = len(input_ids) + max_new_tokens
        if needed > self.max_cache_len:
            raise CacheTooShortError(
                f"this request needs {needed} cache positions ({len(input_ids)} prompt + {max_new_tokens} new) "
                f"but the decoder was built with max_cache_len={self.max_cache_len}; build it with a larger "
                "max_cache_len or ask for fewer tokens")
        if max_new_tokens < 1:
            return []
        stops = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())
        out: list[int] = []
        with torch.inference_mode():  # the cache's tensors are inference tensors: reset them in the same mode
            self.cache.reset()
            logits = self._prefill(torch.tensor([input_ids], device=self.device))
            position = len(input_ids)
            while True:
                token = _choose(logits, temperature, top_p)
                out.append(token)
                if on_token is not None:
                    on_token(token)
                finished = len(out) >= max_new_tokens or (token in stops and len(out) >= min_new_tokens)
                if finished or (should_stop is not None and should_stop()):
                    return out
                logits = self._next_logits(torch.tensor([[token]], device=self.device),
                                           torch.tensor([position], device=self.device))
                position += 1

    def build(self, prompt_tokens: int = 8, steps: int = 3) -> float:
        """Compile (trace, fuse, record graphs) by running a short generation; its wall seconds.

        This is the build step: paid once, before serving. Eager decoders return the same loop's cost,
        which shows how much of the number is compilation.
        """
        start = time.perf_counter()
        self.generate([1] * prompt_tokens, steps + 1)
        _synchronize(self.device)
        return time.perf_counter() - start

    def timed(self, input_ids: list[int], new_tokens: int) -> DecodeTiming:
        """Prefill and decode times of one greedy generation of exactly ``new_tokens`` tokens."""
        marks: list[float] = []

        def mark(_token: int) -> None:
            if not marks:  # first token: prefill is done once it exists on the host
                _synchronize(self.device)
                marks.append(time.perf_counter())

        _synchronize(self.device)
        start = time.perf_counter()
        self.generate(input_ids, new_tokens, min_new_tokens=new_tokens, on_token=mark)
        _synchronize(self.device)
        end = time.perf_counter()
        return DecodeTiming(len(input_ids), new_tokens, marks[0] - start, end - marks[0])


@contextmanager
def fresh_compile_cache():
    """Point inductor's on-disk cache at a new temporary directory for the duration (removed afterwards),
    so a compile inside is a first build rather than a hit in a cache warmed by an earlier run."""
    import os
    import tempfile

    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="spark-labs-inductor-") as folder:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous


def check_cache_fits(config, max_cache_len: int, dtype: str = "bfloat16", free_memory: float | None = None) -> int:
    """Bytes of a batch-1 static cache of ``max_cache_len`` positions; raises before allocating it when it
    cannot fit in the memory available for models (``free_memory`` in bytes overrides the reading)."""
    from .. import sizing
    from .room import ensure_memory

    if max_cache_len < 1:
        raise ValueError(f"max_cache_len must be at least 1, got {max_cache_len}")
    needed = sizing.kv_cache_bytes(sizing.ModelShape.from_config(config), 1, max_cache_len, dtype)
    ensure_memory(needed, f"a static KV cache of {max_cache_len} positions", "Nothing was allocated. Build the "
                  "decoder with a smaller max_cache_len (the longest prompt + new tokens it must serve), or free "
                  "memory first.", free_memory)
    return needed


def dtype_name(dtype) -> str:
    """sizing's name for a torch dtype (torch.bfloat16 -> "bfloat16")."""
    return str(dtype).removeprefix("torch.")


def _choose(logits, temperature: float, top_p: float) -> int:
    import torch

    if temperature <= 0:
        return int(logits.argmax(-1))
    probs = torch.softmax(logits[0] / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p  # always keeps the most likely token
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1))


def _give_thread_cuda_graph_state() -> None:
    """Let CUDA-graph trees run on this (non-main) thread.

    torch keeps its graph trees in thread-local state that only the thread importing
    ``torch._inductor.cudagraph_trees`` (and autograd's own threads) get; any other thread fails an
    assertion on its first replay. This thread gets its own empty trees: all recording and replay of the
    decoder happen here, so they stay consistent. (Private torch API: skipped if it changes shape.)
    """
    import collections
    import threading

    try:
        from torch._inductor import cudagraph_trees
    except ImportError:
        return
    local = getattr(cudagraph_trees, "local", None)
    if local is not None and not hasattr(local, "tree_manager_containers"):
        local.tree_manager_containers = {}
        local.tree_manager_locks = collections.defaultdict(threading.Lock)


def _synchronize(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def serving_cache_len(config, ceiling: int = 4096) -> int:
    """Cache positions a serving decoder is built with: the model's context, capped so the cache stays small.

    Requests longer than this fall back to eager generate (the caller checks), as an engine built with a
    ``max_seq_len`` would refuse them.
    """
    return min(int(getattr(config, "max_position_embeddings", ceiling) or ceiling), ceiling)
