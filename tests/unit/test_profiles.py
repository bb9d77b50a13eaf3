from __future__ import annotations

import pytest

from spark_labs import profiles
from spark_labs.errors import ProfileError


def test_explicit_profiles(monkeypatch):
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    assert profiles.get_profile().name == "spark"
    assert profiles.get_profile("tiny").name == "tiny"  # argument beats the environment


def test_auto_follows_cuda(monkeypatch):
    monkeypatch.setenv("SPARK_LABS_PROFILE", "auto")
    monkeypatch.setattr(profiles, "cuda_usable", lambda: False)
    assert profiles.get_profile().name == "tiny"
    monkeypatch.setattr(profiles, "cuda_usable", lambda: True)
    assert profiles.get_profile().name == "spark"


def test_unknown_profile_says_what_is_allowed():
    with pytest.raises(ProfileError, match="tiny, spark, auto"):
        profiles.get_profile("huge")


def test_tiny_plan_uses_the_embedded_model_and_local_engines():
    lab = profiles.plan("01", "tiny")
    assert lab.model.embedded and lab.model.quantization == "Q4_1"
    assert {"llamacpp", "vllm"} <= set(lab.engines)
    assert "tiny" in lab.summary()


def test_spark_plan_defaults_and_override(monkeypatch):
    monkeypatch.delenv("SPARK_LABS_MODEL", raising=False)
    assert profiles.plan("01", "spark").model.hf_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert profiles.plan("04", "spark").model.hf_id == "Qwen/Qwen3-8B"
    monkeypatch.setenv("SPARK_LABS_MODEL", "Qwen/Qwen3-8B")
    assert profiles.plan("01", "spark").model.hf_id == "Qwen/Qwen3-8B"
    assert profiles.plan("01", "spark").model.dtype == "bfloat16"


def test_spark_model_has_no_local_gguf():
    with pytest.raises(ProfileError, match="GGUF"):
        profiles.plan("01", "spark").model.gguf_path()
