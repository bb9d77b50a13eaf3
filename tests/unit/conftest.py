"""The unit tier: tests that start no process, so they run in parallel (``make test-unit`` = ``-n auto``).

The rule, enforced here for every test in this folder: no subprocess, no fork, no multiprocessing, no kernel,
no engine, no browser — neither directly nor through the code under test. Threads are fine (an in-process
gateway or stub server on 127.0.0.1 port 0 is a unit test); so are small model files read from disk, but not a
model load that takes seconds (that belongs in integration/). A test that needs a process goes to
``tests/integration/`` (engines, gateway subprocess, CLI, Chromium, mkdocs) or ``tests/notebooks/`` (kernels,
nbval, JupyterLab, grading).

The guard is a hook around each test's setup, call and teardown rather than an autouse fixture: module- and
session-scoped fixtures are set up before any function-scoped autouse fixture, and one of them starting a server
would slip past. A process start raises ``ProcessStartInUnitTest``; the attempt is also recorded, so code that
swallows the exception still fails the test. One exemption: the stdlib ``platform`` module asking ``uname -p`` /
``file -b`` what machine this is (vLLM's import does) starts a probe, not anything the test depends on."""

from __future__ import annotations

import _posixsubprocess
import asyncio
import multiprocessing.process
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
platform.uname()  # cached from now on: later platform.processor() calls start no `uname -p`


class ProcessStartInUnitTest(RuntimeError):
    pass


def _exempt() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__") == "platform":
            return True
        frame = frame.f_back
    return False


class _Guard:
    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.saved: list[tuple[object, str, object]] = []

    def _refuse(self, what: str):
        self.attempts.append(what)
        raise ProcessStartInUnitTest(
            f"a unit test started a process ({what}). Unit tests start no process (tests/unit/conftest.py): "
            "move this test to tests/integration/ (engines, gateway subprocess, CLI, browser, mkdocs) or "
            "tests/notebooks/ (kernels, nbval, JupyterLab, grading), or test the function in-process.")

    def _patch(self, owner, name: str, describe) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        guard = self

        def refuse(*args, **kwargs):
            if _exempt():
                return original(*args, **kwargs)
            return guard._refuse(describe(args, kwargs))

        self.saved.append((owner, name, original))
        setattr(owner, name, refuse)

    def install(self) -> None:
        def argv(args, kwargs):
            command = args[0] if args else kwargs.get("args")
            return f"subprocess {command!r}"[:200]

        original_init = subprocess.Popen.__init__
        guard = self

        def popen_init(popen, *args, **kwargs):
            if _exempt():
                return original_init(popen, *args, **kwargs)
            popen._child_created = False  # what Popen.__del__ reads
            return guard._refuse(argv(args, kwargs))

        self.saved.append((subprocess.Popen, "__init__", original_init))
        subprocess.Popen.__init__ = popen_init
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "spawnv", "spawnve", "spawnvp",
                     "spawnvpe"):
            self._patch(os, name, lambda a, k, name=name: f"os.{name}{a[:1]!r}")
        self._patch(_posixsubprocess, "fork_exec", lambda a, k: f"_posixsubprocess.fork_exec {a[:1]!r}")
        for name in ("create_subprocess_exec", "create_subprocess_shell"):
            self._patch(asyncio, name, lambda a, k, name=name: f"asyncio.{name}{a[:1]!r}")
        self._patch(multiprocessing.process.BaseProcess, "start", lambda a, k: "multiprocessing Process.start()")

    def uninstall(self) -> None:
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved.clear()


def _mine(item: pytest.Item) -> bool:
    return item.path.is_relative_to(HERE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _mine(item):
            item.add_marker("unit")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    if not _mine(item):
        yield
        return
    guard = _Guard()
    item.stash[_ATTEMPTS] = guard.attempts
    guard.install()
    try:
        yield
    finally:
        guard.uninstall()


_ATTEMPTS = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    attempts = item.stash.get(_ATTEMPTS, [])
    if attempts and report.passed:
        report.outcome = "failed"
        report.longrepr = (f"a unit test started a process and passed anyway (the exception was swallowed): "
                           f"{attempts}. Unit tests start no process (tests/unit/conftest.py).")
    if attempts and report.failed:
        attempts.clear()  # reported once
