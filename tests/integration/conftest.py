"""The integration tier: real engines on the embedded model, the gateway on a port, Chromium, CLI subprocesses,
mkdocs. Every test here is marked ``integration``.

Engines are started once per test session (they take seconds to minutes on CPU) and stopped at the end; every
test that needs one asks for the fixture instead of launching its own. The same goes for the calibration server
(the harness's fixed-TTFT/TPOT stand-in): one per timing, shared by every module that asks for that timing."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker("integration")


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


@pytest.fixture(scope="session")
def calibration_servers():
    """``start(ttft_ms, tpot_ms)``: the calibration server with that timing, started on first use and shared."""
    from spark_labs.bench.selfcheck import CalibrationServer

    servers: dict[tuple[float, float], CalibrationServer] = {}
    with contextlib.ExitStack() as stack:
        def start(ttft_ms: float, tpot_ms: float) -> CalibrationServer:
            key = (float(ttft_ms), float(tpot_ms))
            if key not in servers:
                servers[key] = stack.enter_context(CalibrationServer(*key))
            return servers[key]

        yield start


@pytest.fixture(scope="module")
def calibration(request, calibration_servers):
    """The calibration server with the asking module's ``CALIBRATION_MS = (ttft_ms, tpot_ms)``."""
    return calibration_servers(*request.module.CALIBRATION_MS)
