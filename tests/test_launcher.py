"""The launcher's promises, each against a real engine process (llama.cpp on the embedded model)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import psutil
import pytest

from spark_labs.engines import ENGINES, launch, likely_cause, port_holder, port_is_free
from spark_labs.errors import EngineNotInstalledError, EngineStartError, EngineTimeoutError, PortInUseError

pytestmark = pytest.mark.integration


def _wait_gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False


def test_launch_serves_and_stop_removes_the_whole_group():
    handle = launch("llamacpp", port="auto", progress=False)
    try:
        assert handle.ready_after_s is not None and handle.ready_after_s < 60
        models = httpx.get(handle.base_url + "/models", timeout=10).json()
        assert models["data"][0]["id"] == handle.served_name
        group = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == handle.pid]
        assert len(group) >= 2  # reaper + engine
    finally:
        handle.stop()
    assert all(_wait_gone(pid, 5) for pid in group)
    assert port_is_free(handle.port)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_port_in_use_names_the_holder():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert str(os.getpid()) in (port_holder(port) or "")
        with pytest.raises(PortInUseError) as err:
            launch("llamacpp", port=port, progress=False)
    message = str(err.value)
    assert f"Port {port}" in message and f"pid {os.getpid()}" in message and "port='auto'" in message


def test_engine_not_installed_says_how_to_install():
    with pytest.raises(EngineNotInstalledError) as err:
        launch("sglang", port="auto", progress=False)
    assert "tiny" in str(err.value) or "pip install" in str(err.value)


def test_unknown_engine_lists_known_ones():
    with pytest.raises(EngineNotInstalledError, match="llamacpp"):
        launch("not-an-engine")


def test_engine_crash_on_start_shows_log_tail_and_cause(tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    with pytest.raises(EngineStartError) as err:
        launch("llamacpp", str(missing), port="auto", progress=False, timeout=60)
    message = str(err.value)
    assert "exited with code" in message and "Last log lines" in message
    assert str(missing) in message  # the command is shown, so the wrong path is visible


def _our_llamacpp_processes() -> set[int]:
    mine = f"--parent {os.getpid()} "
    return {p.pid for p in psutil.process_iter(["cmdline", "status"])
            if p.info["status"] != psutil.STATUS_ZOMBIE and mine in " ".join(p.info["cmdline"] or []) + " "
            and "llama_cpp.server" in " ".join(p.info["cmdline"] or [])}


def test_not_ready_within_timeout_says_what_it_waited_for():
    before = _our_llamacpp_processes()  # session fixtures may run a llama.cpp of their own
    with pytest.raises(EngineTimeoutError) as err:
        launch("llamacpp", port="auto", progress=False, timeout=0.3)
    message = str(err.value)
    assert "/v1/models" in message and "was stopped" in message
    assert _our_llamacpp_processes() <= before


def test_no_orphan_when_the_parent_is_killed(tmp_path):
    """A kernel killed with SIGKILL cannot run cleanup code: the reaper must stop the engine itself."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from spark_labs.engines import launch
        handle = launch("llamacpp", port="auto", progress=False)
        print(handle.pid, handle.port, flush=True)
        time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        reaper_pid, port = map(int, parent.stdout.readline().split())
        group = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == reaper_pid]
        assert group, "engine group not found"
        assert not port_is_free(port)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert all(_wait_gone(pid) for pid in group), "engine outlived its parent"
    assert port_is_free(port)


def test_likely_cause_recognises_common_failures():
    assert "port" in likely_cause("OSError: [Errno 98] Address already in use")
    assert "GPU memory" in likely_cause("torch.OutOfMemoryError: CUDA out of memory")
    assert "model id" in likely_cause("Repository Not Found for url")
    assert likely_cause("all good") .startswith("not recognised")


def test_every_engine_has_protocol_port_and_probe():
    assert {"vllm", "llamacpp", "transformers"} <= set(ENGINES)
    for spec in ENGINES.values():
        assert spec.protocol in {"openai", "ollama"}
        assert spec.ready_path.startswith("/")
        assert 1024 < spec.default_port < 65536
