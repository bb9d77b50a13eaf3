"""Shared fixtures. Engines are started once per test session (they take seconds to minutes on CPU)
and stopped at the end; every test that needs one asks for the fixture instead of launching its own."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SPARK_LABS_PROFILE", "tiny")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _launch_or_skip(engine: str, **kwargs):
    from spark_labs.engines import launch
    from spark_labs.errors import EngineNotInstalledError

    try:
        return launch(engine, port="auto", progress=False, **kwargs)
    except EngineNotInstalledError as exc:
        pytest.skip(f"{engine} not installed here: {exc}")


@pytest.fixture(scope="session")
def llamacpp_engine():
    """The real llama.cpp server on the embedded GGUF."""
    handle = _launch_or_skip("llamacpp")
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def vllm_engine():
    """The real vLLM CPU server on the exported HF copy of the embedded model (eager mode)."""
    handle = _launch_or_skip("vllm", extra_args=["--enforce-eager", "--max-model-len", "2048"], timeout=300)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def transformers_engine():
    """The in-process transformers backend served by spark-labs' own gateway."""
    handle = _launch_or_skip("transformers", timeout=180)
    yield handle
    handle.stop()
