"""One launcher for every engine: start, wait until ready, read logs, stop the whole process group.

    with launch("llamacpp") as engine:          # model and port come from the active profile
        print(engine.base_url)                   # http://127.0.0.1:8080/v1

Every failure raises an :class:`~spark_labs.errors.EngineError` subclass whose message says what
happened and what to do: port in use (and by whom), engine not installed (and how to install it),
engine exited during start-up (last log lines and the likely cause), not ready in time (what we waited on).
A Hugging Face model that cannot be loaded here (offline and not cached, gated, no such id) is refused before
the engine starts, with a :class:`~spark_labs.errors.ModelUnavailableError` naming the fix.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from ..errors import EngineError, EngineNotInstalledError, EngineStartError, EngineTimeoutError, PortInUseError
from ..hardware.memory import report_memory_holders
from ..models.availability import locate_model
from ..paths import cache_dir
from ..profiles import LOCAL_MODEL_FIX, ModelRef, Profile, get_profile
from .engine_spec import EngineSpec
from .ports import free_port, group_members, listeners, port_holder, port_is_free
from .profile_args import merge_args, serving_args
from .readiness import NO_DOCKER, docker_installed
from .reaper import kill_group
from .registry import resolve_engine

GPU_MEMORY_ADVICE = "out of GPU memory: lower --max-model-len / --gpu-memory-utilization or use a smaller model"
# Log patterns that explain most start-up failures, checked for every engine.
COMMON_CAUSES: tuple[tuple[str, str], ...] = (
    ("address already in use", "another process took the port while the engine was starting"),
    ("outofmemoryerror", GPU_MEMORY_ADVICE),
    ("cuda out of memory", GPU_MEMORY_ADVICE),
    ("cannot allocate memory", "out of host memory: stop other engines (spark_labs.engines.stop_all())"),
    ("no module named", "a Python package the engine needs is missing: reinstall with `make install`"),
    ("repository not found", "wrong model id, or a gated model without HF_TOKEN set"),
    ("is not a valid model identifier", "wrong model id or path: check the spelling / that the directory exists"),
    ("401", "the model is gated: export HF_TOKEN=... after accepting its licence on huggingface.co"),
    ("cuda graph", ("CUDA-graph capture failed: retry with --enforce-eager (eager=True; CLI --eager), which the "
                    "playbooks do not need on current NGC images")),
    ("unrecognized arguments", "a flag this engine version does not know: check `--help` of the installed version"),
    ("killed", "the kernel's OOM killer stopped the engine: free memory or use a smaller model"),
)

_LIVE_HANDLES: weakref.WeakSet[EngineHandle] = weakref.WeakSet()


class EngineHandle:
    """A running engine. Use as a context manager, or call :meth:`stop` yourself."""

    def __init__(self, spec: EngineSpec, command: list[str], host: str, port: int, log_path: Path,
                 process: subprocess.Popen, served_name: str, model_arg: str | None = None, docker: bool = False):
        self.spec = spec
        self.docker = docker
        self.model_arg = model_arg  # what the engine was given: GGUF file, HF dir or HF id
        self.command = command
        self.host = host
        self.port = port
        self.log_path = log_path
        self.process = process
        self.served_name = served_name
        self.started_at = time.monotonic()
        self.ready_after_s: float | None = None
        self.chat_extras: dict = {}  # body fields every chat request carries (launch sets them from the model)

    # --- addresses ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client wants (``.../v1``); the plain URL for Ollama's protocol."""
        return self.url + "/v1" if self.spec.protocol == "openai" else self.url

    @property
    def metrics_url(self) -> str | None:
        return self.url + self.spec.metrics_path if self.spec.metrics_path else None

    @property
    def pid(self) -> int:
        """The reaper's pid, which is also the process group id of the engine and all its workers."""
        return self.process.pid

    def group_pids(self) -> set[int]:
        """The engine's live processes (the reaper excluded): what serves, e.g. to pin to cores."""
        return group_members(self.pid) - {self.pid}

    # --- lifecycle ---------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 240.0, progress: bool = True) -> float:
        """Poll the ready probe until it answers 200; return seconds since start."""
        probe = self.url + self.spec.ready_path
        deadline = self.started_at + timeout
        last_seen = "no answer yet"
        bar = _progress_bar(f"starting {self.spec.display_name}", timeout) if progress else None
        ready = False
        try:
            with httpx.Client(timeout=2.0) as client:
                while True:
                    if not self.is_running():
                        raise self._start_error()
                    try:
                        response = client.get(probe)
                        last_seen = f"HTTP {response.status_code}"
                        if response.status_code == 200 and self._port_is_ours():
                            break
                    except httpx.HTTPError as exc:
                        last_seen = type(exc).__name__
                    if time.monotonic() > deadline:
                        self.stop()
                        raise EngineTimeoutError(
                            f"{self.spec.display_name} was not ready after {timeout:.0f} s: waited for "
                            f"GET {probe} to answer 200 (last: {last_seen}). The engine was stopped.\n"
                            f"Last log lines ({self.log_path}):\n{self.logs(15)}\n"
                            "Large models take longer: pass a bigger timeout=, and check the log above."
                        )
                    if bar is not None:
                        bar.n = round(time.monotonic() - self.started_at, 1)
                        bar.refresh()
                    time.sleep(0.25)
            if self.spec.after_ready is not None:
                self.spec.after_ready(self)
            ready = True
        finally:
            if bar is not None:
                _close_bar(bar, ready)
        self.ready_after_s = time.monotonic() - self.started_at
        return self.ready_after_s

    def logs(self, lines: int = 40) -> str:
        """The last ``lines`` lines the engine printed (stdout and stderr together)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 10.0) -> int | None:
        """Stop the engine and every process it started; return its exit code.

        The group is signalled whatever happened to the reaper: a killed reaper leaves its group behind
        (the engine keeps the port), and the group keeps the reaper's pid as its id while it has members.
        """
        if self._group_is_ours():
            kill_group(self.pid, grace_s)
        try:
            code = self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            code = None
        _LIVE_HANDLES.discard(self)
        return code

    def __enter__(self) -> EngineHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited({self.process.returncode})"
        return f"<EngineHandle {self.spec.name} {self.url} pid={self.pid} {state}>"

    def _group_is_ours(self) -> bool:
        """Whether process group ``self.pid`` is still this engine's. Linux frees a pid only once no
        process uses it as pid or group id, so while any engine process lives the id cannot be reused;
        once the reaper is reaped, a live process *with* that pid is a newcomer leading a group of its own."""
        if self.process.poll() is None:
            return True
        try:
            os.getpgid(self.pid)
        except ProcessLookupError:
            return True  # nobody has the pid: what is left of the group (if anything) is ours
        return False

    def _port_is_ours(self) -> bool:
        """Whether the server answering on our port belongs to our process group.

        Two launches on one port at the same moment both see a free port; the one whose engine binds
        second would otherwise take the first one's answer for its own readiness. Raises
        :class:`PortInUseError` (after stopping our engine) when another process listens there; False
        while nothing of ours listens yet. A container's port is held by Docker's proxy, not by our group:
        there ``docker run`` itself refuses a port or container name already taken."""
        if self.docker:
            return True
        holders = listeners(self.port)
        group = group_members(self.pid)
        foreign = [description for pid, description in holders.items() if pid not in group]
        if foreign:
            self.stop()
            raise self._port_taken_error(foreign[0])
        return bool(set(holders) & group)

    # --- diagnostics -------------------------------------------------------------------------------
    def _port_taken_error(self, holder: str) -> PortInUseError:
        return PortInUseError(
            f"Port {self.port} was taken by {holder} while {self.spec.display_name} was starting, so "
            f"{self.spec.display_name} was stopped. Launch with port='auto' (or another port), or stop that "
            f"process first.\nLast log lines ({self.log_path}):\n{self.logs(5)}"
        )

    def _start_error(self) -> EngineError:
        if not self.docker and (foreign := [d for pid, d in listeners(self.port).items()
                                            if pid not in group_members(self.pid)]):
            return self._port_taken_error(foreign[0])
        code = self.process.returncode
        tail = self.logs(25)
        cause = likely_cause(tail, self.spec.startup_hints)
        return EngineStartError(
            f"{self.spec.display_name} exited with code {code} while starting.\n"
            f"Likely cause: {cause}\nCommand: {' '.join(self.command)}\n"
            f"Last log lines ({self.log_path}):\n{tail}"
        )


def likely_cause(log_tail: str, engine_hints: Sequence[tuple[str, str]] = ()) -> str:
    lowered = log_tail.lower()
    for needle, cause in (*engine_hints, *COMMON_CAUSES):
        if needle.lower() in lowered:
            return cause
    return "not recognised: read the log lines below"


def _progress_bar(description: str, total: float):
    from ..progress import progress_bar

    return progress_bar(total=round(total), desc=description, unit="s", leave=False,
                bar_format="{desc}: {n:.0f}/{total:.0f} s {bar}")


def _close_bar(bar, complete: bool) -> None:
    """Close a start's progress bar. Its total is the timeout, so a start that succeeds ends below it, which a
    notebook bar shows as a failure (red, and left on screen): a ready engine's bar ends at its own time."""
    if complete:
        bar.total = bar.n
    bar.close()


def launch(
    engine: str | EngineSpec,
    model: ModelRef | str | None = None,
    *,
    port: int | str | None = None,
    host: str = "127.0.0.1",
    profile: str | Profile | None = None,
    lab: str | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    wait: bool = True,
    progress: bool = True,
    docker: bool = False,
) -> EngineHandle:
    """Start ``engine`` on ``model`` (default: the profile's model for ``lab``) and wait until ready.

    ``port``: an int, ``"auto"`` for any free port, or ``None`` for the engine's usual port.
    ``docker``: run the engine's container recipe (spark profile) instead of a local process.
    """
    spec = resolve_engine(engine)

    def prof() -> Profile:  # looked up only when needed: auto-detection may import torch
        return profile if isinstance(profile, Profile) else get_profile(profile)

    if not docker:
        available = spec.availability()
        if not available:
            raise EngineNotInstalledError(
                f"{spec.display_name} is not available here: {available.reason}\n"
                f"How to get it on the '{prof().name}' profile: {available.install_hint}"
            )
    elif not docker_installed():  # before the model check: no download is worth it without Docker
        raise EngineNotInstalledError(f"{spec.display_name} runs as a container on this profile, but {NO_DOCKER}")
    model_ref = model if model is not None else prof().model_for(lab)
    if spec.model_format == "hf" and not getattr(model_ref, "embedded", False):
        # An HF id or folder the engine would otherwise spend a minute failing to fetch (offline, gated, typo):
        # refused now, in seconds, with the fix (ModelUnavailableError).
        locate_model(model_ref if isinstance(model_ref, str) else model_ref.hf_id, local_copy=LOCAL_MODEL_FIX)

    if port in (None, "default"):
        port = spec.default_port
    elif port == "auto":
        port = free_port(host)
    port = int(port)
    if not port_is_free(port, host):
        holder = port_holder(port) or "an unknown process"
        raise PortInUseError(
            f"Port {port} is already in use by {holder}. Stop it (if it is an engine you started: "
            f"handle.stop() or spark_labs.engines.stop_all()), or launch with port='auto' / another port."
        )

    if docker or (isinstance(model_ref, ModelRef) and not model_ref.embedded):
        # A spark-profile model: the profile's flags (context length, memory fraction, reasoning parser),
        # except those the caller sets itself. The embedded model never needs them (and never pays for
        # the profile lookup).
        extra_args = merge_args(serving_args(spec, model_ref, prof(), docker), extra_args)
    if docker:
        command = spec.docker_command(model_ref, port=port, extra_args=extra_args)
        model_arg = model_ref if isinstance(model_ref, str) else model_ref.hf_id
    else:
        model_arg = spec.model_arg(model_ref)
        command = spec.local_command(model_arg, port=port, host=host, extra_args=extra_args,
                                     served_name=getattr(model_ref, "served_name", None))
    served_name = model_ref if isinstance(model_ref, str) else model_ref.served_name
    handle = start_command(spec, command, host=host, port=port, served_name=served_name, model_arg=model_arg,
                           env=env, docker=docker)
    # What chat requests to this model must carry (Qwen3 with thinking off); benchmark targets read it.
    handle.chat_extras = model_ref.chat_extras() if isinstance(model_ref, ModelRef) else {}
    if wait:
        handle.wait_ready(timeout=timeout or prof().sizes.timeout_s, progress=progress)
    return handle


def start_command(spec: EngineSpec, command: list[str], *, host: str, port: int, served_name: str,
                  model_arg: str | None = None, env: Mapping[str, str | None] | None = None,
                  docker: bool = False) -> EngineHandle:
    """Start ``command`` (an engine's, already built) under the reaper, logging to a file of its own; the handle
    is not waited on yet. :func:`launch` and the multi-node path (:mod:`.multinode`) both start engines here."""
    log_file = new_log_file(spec.name, port)
    log_path = Path(log_file.name)
    child_env = {**os.environ, **spec.env, **(env or {})}
    # None unsets a variable the engine's defaults set (vLLM CPU: VLLM_CPU_KVCACHE_SPACE would override
    # --kv-cache-memory-bytes, and an empty value crashes its workers).
    child_env = {key: value for key, value in child_env.items() if value is not None}
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    reaper = [sys.executable, "-m", "spark_labs.engines.reaper", "--parent", str(os.getpid()), "--"]
    try:
        process = subprocess.Popen(
            reaper + command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env, start_new_session=True,
        )
    finally:
        log_file.close()
    handle = EngineHandle(spec, command, host, port, log_path, process, served_name, model_arg, docker=docker)
    _LIVE_HANDLES.add(handle)
    return handle


def new_log_file(engine: str, port: int):
    """A log file of its own for one launch: named engine-port-time for people, plus a random part so two
    launches in the same second (on one port, even) never share a file."""
    return tempfile.NamedTemporaryFile(  # noqa: SIM115 - handed to the child; the caller closes it
        mode="wb", dir=cache_dir("logs"), prefix=f"{engine}-{port}-{time.strftime('%Y%m%d-%H%M%S')}-",
        suffix=".log", delete=False)


def running_engines() -> list[EngineHandle]:
    return [h for h in list(_LIVE_HANDLES) if h.is_running()]


def _engines_holding_memory() -> list[str]:
    return [f"{h.spec.display_name} on port {h.port} (pid {h.pid})" for h in running_engines()]


report_memory_holders(_engines_holding_memory)


def stop_all() -> int:
    """Stop every engine this process started; return how many were running."""
    handles = running_engines()
    for handle in handles:
        handle.stop()
    return len(handles)


atexit.register(stop_all)
