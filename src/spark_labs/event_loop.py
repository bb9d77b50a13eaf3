"""Run a coroutine to completion from plain code or from a Jupyter cell.

Jupyter already runs an event loop in the kernel's main thread, so ``asyncio.run`` refuses to start a
second one there. Blocking helpers (benchmark runs, cache resets, metric scrapes) go through
:func:`run_sync` instead; it lives on its own so that any module can use it without importing the
load generator (which imports the clients, which would then import it back).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run_sync(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``coro_factory()`` to completion and return its result.

    Without a running loop: ``asyncio.run``. Inside one (a notebook cell): in a fresh thread with its own
    event loop, so the cell simply blocks until the coroutine ends. A factory rather than a coroutine, so
    the coroutine is created in the loop that runs it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()
