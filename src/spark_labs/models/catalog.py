"""The Hugging Face ids spark-labs names, each with its vendored ``config.json``: the allow-list.

The original course module pointed learners at ``Qwen/Qwen3-8B-Instruct``, an id that does not exist on the
Hub (Qwen3 ships one hybrid-thinking ``Qwen/Qwen3-8B``). Nobody noticed because nothing checked. Here every
id the spark profile uses must have an entry in ``data/configs/index.json`` — its config, where it came from,
when it was checked and the parameter count its publisher states — so the check runs offline, in CI.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import ProfileError

_CONFIGS = ("data", "configs")


@dataclass(frozen=True)
class CatalogEntry:
    hf_id: str
    file: str  # the vendored config.json, under data/configs/
    source: str  # URL of the model's own config.json on the Hub
    checked: str  # when and how the vendored copy was compared with it
    published_params: int  # what the model card / safetensors metadata states
    published_params_source: str

    def config(self) -> dict[str, Any]:
        text = resources.files("spark_labs").joinpath(*_CONFIGS, self.file).read_text()
        return json.loads(text)


@cache
def catalog() -> dict[str, CatalogEntry]:
    """Every vendored model, by HF id."""
    index = json.loads(resources.files("spark_labs").joinpath(*_CONFIGS, "index.json").read_text())
    return {hf_id: CatalogEntry(hf_id=hf_id, **entry) for hf_id, entry in index.items() if not hf_id.startswith("_")}


def nearest_id(hf_id: str) -> str | None:
    """The catalog id closest to ``hf_id`` (a typo's likely intent), or None when none is close."""
    near = difflib.get_close_matches(hf_id, catalog(), n=1, cutoff=0.6)
    return near[0] if near else None


def check_model_id(hf_id: str) -> CatalogEntry:
    """The catalog entry of ``hf_id``; a :class:`ProfileError` naming the nearest known id when there is none."""
    entries = catalog()
    if hf_id in entries:
        return entries[hf_id]
    near = nearest_id(hf_id)
    hint = f" Did you mean {near!r}?" if near else ""
    raise ProfileError(
        f"{hf_id!r} is not a model id spark-labs knows.{hint} Known ids (each checked against its config.json on "
        f"the Hub): {', '.join(sorted(entries))}. Check the exact spelling on huggingface.co; to add a model, vendor "
        "its config.json under src/spark_labs/data/configs/ with an index.json entry (source URL, date checked)."
    )


def vendored_config(hf_id: str) -> dict[str, Any]:
    """The vendored ``config.json`` of ``hf_id`` (a known id, see :func:`check_model_id`)."""
    return check_model_id(hf_id).config()
