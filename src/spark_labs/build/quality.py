"""Quality of a GGUF variant: perplexity on a fixed text, from llama.cpp's own logits.

Perplexity = exp(mean negative log-likelihood of each token given the ones before it). Lower is better;
a quantized variant is judged by how far it moves from the unquantized one on the same text and context.
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
        tokens = model.tokenize(text.encode(), add_bos=True)
        if len(tokens) > n_ctx:
            raise ValueError(f"the text is {len(tokens)} tokens but the window is {n_ctx}; shorten the text or "
                             "raise n_ctx")
        model.eval(tokens)
        logits = np.asarray(model.scores[: len(tokens) - 1], dtype=np.float64)
    finally:
        model.close()
    # Row i holds the prediction for token i + 1: log-softmax, then the log-probability of the real token.
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    nll = -log_probs[np.arange(len(tokens) - 1), tokens[1:]]
    return float(np.exp(nll.mean()))
