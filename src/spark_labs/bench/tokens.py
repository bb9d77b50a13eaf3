"""The client-side token count: our own tokenizer run once over each whole response after the run.

Counting after the run keeps tokenization out of the timed path. The count is kept beside the
server's usage record (never replacing it), so a disagreement shows up as a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from .records import RequestRecord


def load_tokenizer(model=None):
    """The tokenizer for ``model`` (a ModelRef, HF id or local path; default: the profile's model),
    from local files only. Returns None, with a warning, when it is not available offline."""
    from transformers import AutoTokenizer

    from ..profiles import get_profile

    model = model if model is not None else get_profile().model_for(None)
    path = model if isinstance(model, str) else (model.hf_path() if model.embedded else model.hf_id)
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        warnings.warn(f"no tokenizer for {path} offline ({exc}); client token counts will be missing",
                      stacklevel=2)
        return None


def count_tokens(records: Iterable[RequestRecord], tokenizer, chat: bool = True) -> None:
    """Fill ``output_tokens.client`` (special tokens off, whole text at once) and ``prompt_tokens.client``
    (for chat: the prompt inside the model's chat template, as the server will see it)."""
    if tokenizer is None:
        return
    for record in records:
        text = record.text
        record.output_tokens.client = len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
        record.prompt_tokens.client = prompt_length(tokenizer, record.prompt_text, chat)


def prompt_length(tokenizer, prompt: str, chat: bool = True) -> int:
    if chat and getattr(tokenizer, "chat_template", None):
        encoded = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                tokenize=True, return_dict=True)
        return len(encoded["input_ids"])
    return len(tokenizer(prompt)["input_ids"])
