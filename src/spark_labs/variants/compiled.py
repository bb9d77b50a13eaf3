"""The "engine build" of a transformers model: a fixed-shape decode step over a static KV cache, compiled once.

Eager ``generate`` re-dispatches hundreds of small kernels per token from Python and grows its KV cache as it
goes; on a GPU the launch overhead, not memory bandwidth, then sets the speed (about 5 % of the bandwidth
roofline for an 8B model at batch 1). Fixing the shapes ahead of time -- a :class:`~transformers.StaticCache`
of ``max_cache_len`` slots, one token in, one token out -- lets ``torch.compile`` fuse the step, and on CUDA
record it once as a CUDA graph that is replayed per token (what ``mode="reduce-overhead"`` stands for; the
decoder records that graph itself, over input buffers it owns, so that what the graph reads is plain to see).
That is what an engine build (TensorRT-LLM, vLLM's CUDA graphs) buys, and what it costs: compile time before
the first token, and a context length fixed at build time.

Only the one-token decode step is compiled. Prefill runs eagerly: prompts differ in length, and a compiled
prefill would recompile for each new length.

The loop never waits for the GPU between tokens. Each next token is chosen on the device (argmax, or sampling)
and fed straight into the next step with the position advanced there too, so the host only queues work; the
tokens come back in chunks, copied asynchronously while the GPU computes the next chunk, and EOS or a stop
request is noticed when its chunk is read (the few steps queued past it are discarded). Reading each token as
it is made (``int(argmax)``) would cost a host round trip per token: the GPU idles while the host reads the token,
decides, and launches the next step. The graph reads its token and position from fixed buffers and writes its
logits to a fixed buffer, so each step copies its inputs in and chooses the next token before the next replay.
"""

from __future__ import annotations

import time
from collections import deque
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
    ``mode`` (a ``torch.compile`` mode) or ``options`` (inductor settings, e.g. ``{"max_autotune": True,
    "freezing": True}``) choose how the step's kernels are built; on CUDA the decoder adds the graph itself.
    ``attention="math"`` traces the decode step's attention as plain matmul + softmax (PyTorch's math SDPA
    backend) for the compiler to fuse, instead of calling a flash kernel built for long queries: a decode
    step has one query per layer, and the fused kernels are shorter (gpt-fast decodes the same way).
    Every generation runs on the decoder's own single thread, whichever thread asks: one cache allows one
    generation at a time, so callers are serialised there.
    """

    # Tokens read back per host round trip on a GPU; one more chunk is queued while a chunk is read. Larger
    # chunks save round trips but discard more steps after an EOS and stream text in bigger bursts.
    read_every = 8

    def __init__(self, model, max_cache_len: int, compile: bool = True, mode: str | None = None,
                 free_memory: float | None = None, options: dict | None = None, attention: str | None = None):
        import torch
        from transformers import StaticCache

        self.model = model
        self.device = next(model.parameters()).device
        check_cache_fits(model.config, max_cache_len, dtype_name(model.dtype), free_memory)
        self.max_cache_len = max_cache_len
        self.cache = StaticCache(config=model.config, max_cache_len=max_cache_len)
        if attention not in (None, "math"):
            raise ValueError(f"attention={attention!r}: None (the model's own SDPA choice) or 'math'")
        self.attention = attention
        self._step, self.cuda_graphs = compile_step(self._decode_step, self.device, compile, mode, options)
        self.compiled = compile
        self._graph = None  # recorded by the first generation, once the cache has its tensors
        if self.cuda_graphs:  # what the graph reads and writes: the same memory at every replay
            self._token = torch.zeros((1, 1), dtype=torch.long, device=self.device)
            self._position = torch.zeros((1,), dtype=torch.long, device=self.device)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="static-cache-decoder")

    # --- the fixed-shape step (what gets compiled)
    def _decode_step(self, token, position):
        import contextlib

        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.MATH]) if self.attention == "math" else contextlib.nullcontext():
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
        """Logits of one decode step. In graph mode they live in the graph's output buffer, which the next
        replay overwrites: use them (choose the token) before the next call."""
        if not self.cuda_graphs:
            return self._step(token, position)
        self._token.copy_(token)  # device to device, queued: nothing waits
        self._position.copy_(position)
        self._graph.replay()
        return self._logits

    def _record(self) -> None:
        """Compile the step, then record it as one CUDA graph over the decoder's input buffers.

        The warm-up calls compile (and autotune) and create library handles outside the recording, on a side
        stream as CUDA asks. They are real steps: they advance the cache (which keeps its own length on the
        device), so the caller resets it afterwards.
        """
        self._graph, self._logits = record_graph(self._step, self._token, self._position)

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

        def take(tokens: list[int]) -> bool:
            """Hand tokens to the caller in order; True once the generation is complete."""
            for token in tokens:
                out.append(token)
                if on_token is not None:
                    on_token(token)
                if len(out) >= max_new_tokens or (token in stops and len(out) >= min_new_tokens):
                    return True
            return should_stop is not None and should_stop()

        # On a CPU every operation has finished when it returns: read each token at once, queue nothing ahead.
        on_gpu = self.device.type == "cuda"
        read_every, chunks_ahead = (self.read_every, 1) if on_gpu else (1, 0)
        with torch.inference_mode():  # the cache's tensors are inference tensors: reset them in the same mode
            ids = torch.tensor([input_ids], device=self.device)
            self.cache.reset()
            if self.cuda_graphs and self._graph is None:
                self._prefill(ids)  # the cache allocates its tensors on first use: the graph must see them
                self._record()
                self.cache.reset()
            token = _choose(self._prefill(ids), temperature, top_p)
            if take(token.tolist()):  # the first token is read at once: it is the time to first token
                return out
            position = torch.tensor([len(input_ids)], device=self.device)
            made, in_flight = [], deque()
            for _ in range(max_new_tokens - 1):  # never more steps than asked for: the cache was sized for them
                token = _choose(self._next_logits(token.view(1, 1), position), temperature, top_p)
                position = position + 1  # on the device: the rotary position (the cache counts its own length)
                made.append(token)
                if len(made) == read_every:
                    in_flight.append(_HostCopy(torch.cat(made)))
                    made = []
                    if len(in_flight) > chunks_ahead and take(in_flight.popleft().tolist()):
                        return out  # steps still queued write only cache positions after this answer
            if made:
                in_flight.append(_HostCopy(torch.cat(made)))
            while in_flight and not take(in_flight.popleft().tolist()):
                pass
            return out

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


def compile_step(step: Callable, device, compile: bool, mode: str | None = None, options: dict | None = None):
    """``(callable, cuda_graphs)``: ``step`` compiled for fixed shapes (or as is with ``compile=False``), and
    whether the caller should record it as a CUDA graph (:func:`record_graph`): compiled and on CUDA.

    CPUs have no graphs to replay: inductor alone fuses. On CUDA the mode's kernel settings are kept and its
    graphs left to the caller (torch.compile takes a mode or options, not both).
    """
    import torch

    if not compile:
        return step, False
    cuda_graphs = device.type == "cuda"
    if cuda_graphs:
        from torch._inductor import list_mode_options

        settings = {**list_mode_options(mode or "reduce-overhead"), **(options or {}), "triton.cudagraphs": False}
    else:
        settings = options
    how = {"options": settings} if settings else {"mode": mode or "default"}
    return torch.compile(step, fullgraph=True, dynamic=False, **how), cuda_graphs


def record_graph(step: Callable, *inputs):
    """``(graph, outputs)``: ``step(*inputs)`` compiled, then recorded as one CUDA graph over those input buffers.

    Replaying the graph reads whatever the buffers hold then and overwrites ``outputs`` in place. The warm-up
    calls compile (and autotune) and create library handles outside the recording, on a side stream as CUDA
    asks. They are real steps: whatever state they advance (a cache), the caller resets afterwards.
    """
    import torch

    device = inputs[0].device
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            step(*inputs)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = step(*inputs)
    return graph, outputs


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


def check_cache_fits(config, max_cache_len: int, dtype: str = "bfloat16", free_memory: float | None = None,
                     batch: int = 1) -> int:
    """Bytes of a static cache of ``batch`` rows of ``max_cache_len`` positions; raises before allocating it
    when it cannot fit in the memory available for models (``free_memory`` in bytes overrides the reading)."""
    from .. import sizing
    from .room import ensure_memory

    if max_cache_len < 1:
        raise ValueError(f"max_cache_len must be at least 1, got {max_cache_len}")
    needed = sizing.kv_cache_bytes(sizing.ModelShape.from_config(config), batch, max_cache_len, dtype)
    rows = f"{batch} rows of " if batch > 1 else ""
    ensure_memory(needed, f"a static KV cache of {rows}{max_cache_len} positions", "Nothing was allocated. Build the "
                  "decoder with a smaller max_cache_len (the longest prompt + new tokens it must serve), or free "
                  "memory first.", free_memory)
    return needed


def dtype_name(dtype) -> str:
    """sizing's name for a torch dtype (torch.bfloat16 -> "bfloat16")."""
    return str(dtype).removeprefix("torch.")


def _choose(logits, temperature: float, top_p: float):
    """The next token id as a one-element tensor on the logits' device: picked there, so that nothing waits
    for the host (no boolean indexing either, which would read a count back)."""
    if temperature <= 0:
        return logits.argmax(-1)
    return choose_rows(logits, temperature, top_p)


def choose_rows(logits, temperature, top_p):
    """One sampled token id per row of ``logits`` (rows x vocabulary), on their device. ``temperature`` and
    ``top_p`` are numbers or one value per row (tensors); a row whose temperature is 0 takes its argmax.
    Top-p keeps the most likely tokens whose probabilities sum to ``top_p`` (always at least one)."""
    import torch

    if isinstance(temperature, (int, float)):
        temperature = torch.full((logits.shape[0],), float(temperature), device=logits.device)
    if isinstance(top_p, (int, float)):
        top_p = torch.full((logits.shape[0],), float(top_p), device=logits.device)
    probs = torch.softmax(logits / temperature.clamp(min=1e-6)[:, None], dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p[:, None]  # always keeps the most likely
    probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs * keep)
    sampled = torch.multinomial(probs, 1).view(-1)
    return torch.where(temperature > 0, sampled, logits.argmax(-1))


class _HostCopy:
    """Tokens on their way to the host: the copy is queued behind the steps that made them, and reading
    waits for those steps only, not for the ones queued after."""

    def __init__(self, tokens):
        import torch

        self._event = None
        if tokens.device.type == "cuda":
            tokens = tokens.to("cpu", non_blocking=True)  # into pinned memory, without waiting
            self._event = torch.cuda.Event()
            self._event.record()
        self._tokens = tokens

    def tolist(self) -> list[int]:
        if self._event is not None:
            self._event.synchronize()
        return self._tokens.tolist()


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
