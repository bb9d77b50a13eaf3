"""A helper server the benchmarks start themselves (the calibration server, a gateway), in its own process
so its CPU is not the measuring client's event loop.

It runs through the engine launcher like any engine: supervised by the reaper (no orphan when Python
dies), output in a log file (no pipe left unread), readiness proven to come from our own process, and
failures raised as :mod:`spark_labs.errors` with the log's last lines.
"""

from __future__ import annotations

import sys
from typing import Self

import psutil

from ...engines.engine_spec import Availability, EngineSpec
from ...engines.launcher import EngineHandle, launch


def helper_spec(name: str, module: str, args: list[str], ready_path: str) -> EngineSpec:
    """An :class:`EngineSpec` for ``python -m MODULE ARGS --port P`` (a server, not a model engine)."""

    def command(model, port, host, extra_args, served_name) -> list[str]:
        return [sys.executable, "-m", module, *args, *extra_args, "--port", str(port)]

    return EngineSpec(name=name.replace(" ", "-"), display_name=name, protocol="openai", default_port=0,
                      ready_path=ready_path, model_format="none", build_local=command,
                      check_available=lambda: Availability(True))


class LocalServer:
    """``python -m MODULE ARGS --port P`` on a free port; returns once ``ready_path`` answers 200."""

    def __init__(self, name: str, module: str, args: list[str], ready_path: str, timeout: float = 60.0):
        self.name = name
        self.handle: EngineHandle = launch(helper_spec(name, module, args, ready_path), model=name, port="auto",
                                           timeout=timeout, progress=False)
        self.port = self.handle.port
        self.url = self.handle.url

    @property
    def pid(self) -> int:
        """The server process itself (the launcher's reaper is its parent)."""
        children = psutil.Process(self.handle.pid).children()
        return children[0].pid if children else self.handle.pid

    def logs(self, lines: int = 40) -> str:
        return self.handle.logs(lines)

    def stop(self) -> None:
        self.handle.stop(grace_s=15.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
