"""A helper server the benchmarks start themselves (the calibration server, a gateway), in its own process
so its CPU is not the measuring client's event loop."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Self

import httpx

from ..engines.ports import free_port


class LocalServer:
    """``python -m MODULE ARGS --port P`` on a free port; returns once ``ready_path`` answers 200."""

    def __init__(self, name: str, module: str, args: list[str], ready_path: str, timeout: float = 60.0):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", module, *args, "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited at start: {self.process.stderr.read()[-1500:]}")
            try:
                if httpx.get(self.url + ready_path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{name} not ready within {timeout:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
