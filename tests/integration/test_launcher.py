"""The launcher's promises, each against a real engine process (llama.cpp on the embedded model)."""

from __future__ import annotations

import dataclasses
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

from spark_labs.engines import ENGINES, EngineHandle, free_port, launch, likely_cause, port_holder, port_is_free
from spark_labs.engines.launcher import new_log_file
from spark_labs.errors import EngineNotInstalledError, EngineStartError, EngineTimeoutError, PortInUseError


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


def test_two_launches_on_one_port_at_the_same_moment_one_runs_and_the_other_names_it():
    """Both see a free port; the loser must not take the winner's answer for its own readiness."""
    import threading

    port = free_port()
    before = _our_llamacpp_processes()
    start = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def one_launch(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = launch("llamacpp", port=port, progress=False, timeout=120)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcomes[i] = exc

    threads = [threading.Thread(target=one_launch, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    handles = [o for o in outcomes if isinstance(o, EngineHandle)]
    try:
        errors = [o for o in outcomes if not isinstance(o, EngineHandle)]
        assert len(handles) == 1 and len(errors) == 1, outcomes
        winner, error = handles[0], errors[0]
        assert isinstance(error, PortInUseError), repr(error)
        serving = winner.group_pids()
        message = str(error)
        assert f"Port {port}" in message and "llama_cpp.server" in message and "port='auto'" in message
        assert any(f"pid {pid} (" in message for pid in serving), (message, serving)
        assert httpx.get(winner.base_url + "/models", timeout=10).status_code == 200
    finally:
        for handle in handles:
            handle.stop()
    assert _our_llamacpp_processes() <= before  # the loser's engine was stopped too


def test_log_files_are_unique_even_within_one_second():
    first, second = new_log_file("llamacpp", 8080), new_log_file("llamacpp", 8080)
    try:
        assert first.name != second.name
        assert os.path.basename(first.name).startswith("llamacpp-8080-")
    finally:
        for file in (first, second):
            file.close()
            os.unlink(file.name)


def _group(pgid: int) -> list[int]:
    return [p.pid for p in psutil.process_iter(["status"])
            if _pgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE]


def test_stop_after_the_reaper_was_killed_frees_the_port():
    handle = launch("llamacpp", port="auto", progress=False)
    engine_pids = handle.group_pids()
    assert engine_pids
    os.kill(handle.pid, signal.SIGKILL)  # the supervisor goes; its process group stays
    handle.process.wait(10)
    handle.stop()
    assert _group(handle.pid) == []
    assert port_is_free(handle.port)


def test_stop_kills_a_server_that_ignores_sigterm_after_its_reaper_died(tmp_path):
    """Stand-in server (a real HTTP server, but not an engine): it ignores SIGTERM, so neither the
    parent-death signal nor a polite stop frees its port; only stop() escalating on the group can."""
    from spark_labs.bench.selfcheck.local_server import helper_spec

    script = tmp_path / "stubborn.py"
    script.write_text(textwrap.dedent("""
        import http.server, signal, sys
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        port = int(sys.argv[sys.argv.index("--port") + 1])
        http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
    """))
    spec = helper_spec("stubborn server", "http.server", [], "/")
    spec = dataclasses.replace(spec, build_local=lambda **kw: [sys.executable, str(script), "--port", str(kw["port"])])
    handle = launch(spec, model="-", port="auto", progress=False, timeout=30)
    os.kill(handle.pid, signal.SIGKILL)
    handle.process.wait(10)
    time.sleep(0.5)
    assert _group(handle.pid), "the server should have survived its reaper (it ignores SIGTERM)"
    handle.stop(grace_s=1.0)
    assert _group(handle.pid) == []
    assert port_is_free(handle.port)


def test_engine_dies_with_its_reaper_even_without_stop():
    """Kill -9 of the reaper, then nobody calls stop() (the notebook is gone too): the kernel's
    parent-death signal still ends the engine."""
    handle = launch("llamacpp", port="auto", progress=False)
    try:
        engine_pids = handle.group_pids()
        os.kill(handle.pid, signal.SIGKILL)
        handle.process.wait(10)
        assert all(_wait_gone(pid, 20) for pid in engine_pids), "engine outlived its reaper"
        assert port_is_free(handle.port)
    finally:
        handle.stop()


def test_a_helper_server_that_fails_to_start_raises_a_launcher_error_with_its_log():
    """bench's helper servers run through the launcher: a failure is an EngineStartError that shows the
    server's own output (read from its log file, no pipe left unread)."""
    from spark_labs.bench.selfcheck.local_server import LocalServer

    with pytest.raises(EngineStartError) as err:
        LocalServer("calibration server", "spark_labs.bench.selfcheck.calibration", ["--no-such-flag"], "/health",
                    timeout=30)
    message = str(err.value)
    assert "calibration server exited with code 2" in message and "unrecognized arguments: --no-such-flag" in message


def test_a_helper_server_is_supervised_like_an_engine():
    from spark_labs.bench.selfcheck.harness_overhead import CalibrationServer

    with CalibrationServer(5, 1) as server:
        assert server.pid in server.handle.group_pids()  # in the reaper's group, so stop() reaches it
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    assert _group(server.handle.pid) == []
