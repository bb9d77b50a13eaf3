"""Several generations in one fixed-shape decode step: rows ("slots") of one static KV cache.

:class:`~spark_labs.variants.compiled.StaticCacheDecoder` serves one generation at a time. A server that
must answer several clients at once needs the step to carry one token per client: on a GPU a decode step
streams the weights once whatever the batch, so four rows cost about what one does (memory-bound), which is
what continuous batching engines (vLLM, SGLang, TensorRT-LLM) exploit.

The cache holds ``slots`` rows of ``max_cache_len`` positions. Each row belongs to one request at a time and
has its own length: a request is prefilled alone (eager, any prompt length; its keys and values are copied
into its row), then joins the batch, whose step feeds every row one token at that row's own position and
masks each row's attention to the positions that row has written. Rows with no request still run (the shape
is fixed) and their output is ignored. The step is compiled and, on CUDA, recorded once as a CUDA graph, the
same way as the batch-1 decoder (:func:`~spark_labs.variants.compiled.compile_step`,
:func:`~spark_labs.variants.compiled.record_graph`): nothing falls back to eager when more requests arrive.

Which request sits in which row, and when, is the scheduler's business (``spark_labs.serve.slots``); this
class only computes. Call it from one thread.
"""

from __future__ import annotations

import functools
import time

from .compiled import _HostCopy, check_cache_fits, choose_rows, compile_step, dtype_name, record_graph


class BatchedDecoder:
    """One decode step for ``slots`` rows of a static cache; prefill into any free row.

    ``compile=False`` runs the same step eagerly (a CPU, or a baseline); the eager step then attends only
    over the positions in use (rounded up to ``window_step``), which keeps a long cache cheap on a CPU.
    """

    window_step = 64

    def __init__(self, model, slots: int, max_cache_len: int, compile: bool = True, mode: str | None = None,
                 options: dict | None = None, free_memory: float | None = None):
        import torch

        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.model = model
        self.device = next(model.parameters()).device
        check_cache_fits(model.config, max_cache_len, dtype_name(model.dtype), free_memory, batch=slots)
        self.slots, self.max_cache_len, self.compiled = slots, max_cache_len, compile
        # What each step reads and writes: fixed buffers, so that a recorded graph sees new values at each replay.
        self._tokens = torch.zeros((slots, 1), dtype=torch.long, device=self.device)
        self._positions = torch.zeros((slots,), dtype=torch.long, device=self.device)
        self._active = torch.zeros((slots,), dtype=torch.long, device=self.device)
        self._temperature = torch.zeros((slots,), dtype=torch.float32, device=self.device)
        self._top_p = torch.ones((slots,), dtype=torch.float32, device=self.device)
        self._sampling: set[int] = set()  # rows that sample (temperature > 0); greedy rows need no sort
        self._lengths = [0] * slots  # each row's next position, known on the host without asking the device
        self._on = [False] * slots  # rows holding a request, as the host knows them
        self.cache = slot_cache(model.config, slots, max_cache_len, model.dtype, self.device, self._positions)
        self._step, self.cuda_graphs = compile_step(self._decode_step, self.device, compile, mode, options)
        self._graph = None
        self.read_ahead = 1 if self.device.type == "cuda" else 0  # steps queued before a step's tokens are read

    # --- the fixed-shape step (what gets compiled)
    def _decode_step(self, tokens, positions):
        import torch

        window = self.cache.window or self.max_cache_len
        seen = torch.arange(window, device=positions.device)[None, :] <= positions[:, None]
        mask = torch.where(seen, 0.0, torch.finfo(self.model.dtype).min).to(self.model.dtype)[:, None, None, :]
        logits = self.model(input_ids=tokens, position_ids=positions[:, None], attention_mask=mask,
                            past_key_values=self.cache, use_cache=True).logits
        return logits[:, -1, :].float()

    # --- public (all on one thread)
    def warm_up(self, prompt_tokens: int = 8, steps: int = 3) -> float:
        """Compile (and on CUDA record) the step, then run one short generation in row 0; its wall seconds."""
        import torch

        start = time.perf_counter()
        with torch.no_grad():
            if self.cuda_graphs and self._graph is None:
                self._graph, self._logits = record_graph(self._step, self._tokens, self._positions)
            self.prefill(0, [1] * prompt_tokens)
            for _ in range(steps):
                self.step()
            self.release(0)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start

    def prefill(self, row: int, input_ids: list[int], temperature: float = 0.0, top_p: float = 1.0) -> int:
        """Put a new request in ``row``: its prompt through the model alone, its keys and values into the row;
        the first new token (read at once: it is the time to first token). The row then steps with the batch."""
        import torch

        if len(input_ids) + 1 > self.max_cache_len:
            raise ValueError(f"a prompt of {len(input_ids)} tokens does not fit a cache of {self.max_cache_len}")
        with torch.no_grad():
            ids = torch.tensor([input_ids], device=self.device)
            out = self.model(input_ids=ids, use_cache=True)
            self.cache.write_row(row, out.past_key_values)
            first = self._choose(out.logits[:, -1, :].float(), temperature, top_p)
            self._tokens[row, 0] = first[0]
            self._positions[row] = len(input_ids)
            self._active[row] = 1
            self._temperature[row], self._top_p[row] = temperature, top_p
        self._lengths[row], self._on[row] = len(input_ids), True
        (self._sampling.add if temperature > 0 else self._sampling.discard)(row)
        return int(first[0])

    def step(self):
        """One decode step for every row; each row's next token, on its way to the host (``.tolist()`` waits
        for this step only; rows without a request hold meaningless ids). Nothing waits for the device here."""
        import torch

        with torch.no_grad():
            if self._graph is not None:
                self._graph.replay()
                logits = self._logits  # overwritten by the next replay: the tokens are chosen before it
            else:
                if not self.compiled:
                    longest = max(length for length, on in zip(self._lengths, self._on) if on) + 1
                    self.cache.window = min(self.max_cache_len, -(-longest // self.window_step) * self.window_step)
                logits = self._step(self._tokens, self._positions)
            tokens = self._choose_all(logits)
            self._tokens.copy_(tokens[:, None])
            # Rows in use move on; a finished row (still stepping until it is read back) stays inside the cache.
            self._positions.add_(self._active).clamp_(max=self.max_cache_len - 1)
        for row, on in enumerate(self._on):
            if on:
                self._lengths[row] = min(self._lengths[row] + 1, self.max_cache_len - 1)
        return _HostCopy(tokens)

    def release(self, row: int) -> None:
        """The row's request is done: the row idles (its stale keys are never attended: a new request's
        prefill rewrites the positions it will attend)."""
        self._active[row] = 0
        self._lengths[row] = 0
        self._sampling.discard(row)
        self._on[row] = False

    # --- helpers
    def _choose(self, logits, temperature: float, top_p: float):
        import torch

        if temperature <= 0:
            return logits.argmax(-1)
        return choose_rows(logits, torch.tensor([temperature], device=logits.device),
                           torch.tensor([top_p], device=logits.device))

    def _choose_all(self, logits):
        if not self._sampling:
            return logits.argmax(-1)
        return choose_rows(logits, self._temperature, self._top_p)


def slot_cache(config, slots: int, max_cache_len: int, dtype, device, positions):
    """A transformers ``Cache`` whose rows have their own lengths: the decode step writes each row's new key
    and value at that row's position (``positions``, a buffer the decoder owns) and returns the rows whole
    (or their first ``window`` positions), the attention mask hiding what a row has not written."""
    return _slot_cache_class()(config, slots, max_cache_len, dtype, device, positions)


@functools.cache
def _slot_cache_class():
    import torch
    from transformers.cache_utils import Cache, StaticLayer

    from .. import sizing

    class SlotLayer(StaticLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            self.keys[self.rows, :, self.positions] = key_states[:, :, 0]
            self.values[self.rows, :, self.positions] = value_states[:, :, 0]
            window = self.owner.window
            if window is None:
                return self.keys, self.values
            return self.keys[:, :, :window], self.values[:, :, :window]

    class SlotCache(Cache):
        def __init__(self, config, slots, max_cache_len, dtype, device, positions):
            shape = sizing.ModelShape.from_config(config)
            layers = []
            for _ in range(shape.num_layers):
                layer = SlotLayer(max_cache_len)
                empty = torch.zeros((slots, shape.num_kv_heads, 1, shape.kv_head_dim), dtype=dtype, device=device)
                layer.lazy_initialization(empty, empty)  # allocates the rows now, at fixed addresses
                layer.rows, layer.positions, layer.owner = torch.arange(slots, device=device), positions, self
                layers.append(layer)
            super().__init__(layers=layers)
            self.window: int | None = None  # eager steps: attend over the first `window` positions only

        def write_row(self, row: int, prefilled) -> None:
            """Copy a batch-1 prefill cache (any transformers cache with ``layers``) into ``row``."""
            for layer, source in zip(self.layers, prefilled.layers):
                length = source.keys.shape[-2]
                layer.keys[row, :, :length] = source.keys[0]
                layer.values[row, :, :length] = source.values[0]

    return SlotCache
