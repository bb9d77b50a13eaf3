"""Quality of a variant: perplexity on a fixed text, from the engine's own logits.

Perplexity = exp(mean negative log-likelihood of each token given the ones before it). Lower is better;
a quantized variant is judged by how far it moves from the unquantized one on the same text and context.

Both engines are scored the same way: the same passage, the same token ids (llama.cpp's tokenizer and the
HF tokenizer split this passage identically, neither adds a BOS token for SmolLM2; a test checks it), one
window holding the whole passage, and the same arithmetic (:func:`perplexity_from_logits`). Only the
source of the logits differs: llama.cpp for GGUF files (:func:`perplexity`), a transformers forward pass
for in-memory variants (:func:`transformers_perplexity`).
"""

from __future__ import annotations

from pathlib import Path

# A fixed English passage (written for this course). Short, so every variant is scored in seconds on 2 cores.
REFERENCE_TEXT = (
    "The water cycle moves water between the oceans, the air and the land. Heat from the sun evaporates "
    "water from the surface of the sea. The vapour rises, cools and condenses into clouds. When the droplets "
    "in a cloud grow heavy enough, they fall as rain or snow. Some of that water soaks into the ground and "
    "feeds rivers and lakes; rivers carry it back to the sea, and the cycle begins again. Plants take water "
    "from the soil and release it through their leaves, which adds more vapour to the air. Without this "
    "cycle, fresh water would not reach the places where people, animals and plants need it."
)


def perplexity(gguf: Path, text: str = REFERENCE_TEXT, n_ctx: int = 512, threads: int | None = None) -> float:
    """Perplexity of ``gguf`` on ``text`` in one window (the text must fit in ``n_ctx`` tokens)."""
    import numpy as np
    from llama_cpp import Llama

    model = Llama(model_path=str(gguf), n_ctx=n_ctx, logits_all=True, verbose=False, n_threads=threads)
    try:
        tokens = _fits(model.tokenize(text.encode(), add_bos=True), n_ctx)
        model.eval(tokens)
        logits = np.asarray(model.scores[: len(tokens) - 1], dtype=np.float64)
    finally:
        model.close()
    return perplexity_from_logits(logits, tokens)


def transformers_perplexity(model, tokenizer, text: str = REFERENCE_TEXT, n_ctx: int = 512) -> float:
    """Perplexity of a loaded transformers model (any dtype or quantization) on ``text`` in one window."""
    import numpy as np
    import torch

    tokens = _fits(tokenizer(text)["input_ids"], n_ctx)
    with torch.inference_mode():
        logits = model(torch.tensor([tokens], device=model.device)).logits[0, :-1]
    return perplexity_from_logits(np.asarray(logits.double().cpu()), tokens)


def perplexity_from_logits(logits, tokens: list[int]) -> float:
    """exp(mean NLL): row i of ``logits`` (len(tokens) - 1 rows) is the prediction for ``tokens[i + 1]``."""
    import numpy as np

    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[0] != len(tokens) - 1:
        raise ValueError(f"{logits.shape[0]} rows of logits for {len(tokens)} tokens; expected one row per "
                         "predicted token (all but the first)")
    shifted = logits - logits.max(axis=1, keepdims=True)  # log-softmax, then the real token's log-probability
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = -log_probs[np.arange(len(tokens) - 1), tokens[1:]]
    return float(np.exp(nll.mean()))


def _fits(tokens: list[int], n_ctx: int) -> list[int]:
    if len(tokens) > n_ctx:
        raise ValueError(f"the text is {len(tokens)} tokens but the window is {n_ctx}; shorten the text or "
                         "raise n_ctx")
    if len(tokens) < 2:
        raise ValueError("perplexity needs a text of at least two tokens")
    return list(tokens)
