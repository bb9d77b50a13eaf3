"""A pytest plugin that ``labs validate`` loads beside nbval: the kernel's output is never dropped.

nbval reads a cell's IOPub messages only after the kernel has replied to it. Meanwhile ZeroMQ queues them, up to
its high-water mark of 1,000 messages a side, and drops the rest silently — the cell's final ``idle`` status
among them. A long cell that prints or redraws progress often (lab 01's engine loop on a GPU, where requests
finish fast) then fails with "Timeout of 5 seconds exceeded waiting for output" although it ran to the end.
With no limit on the client's receiving side, ZeroMQ's I/O thread keeps draining the kernel's queue in the
background, so nothing is dropped; the messages wait in memory until nbval reads them.
"""

from __future__ import annotations

import zmq
from jupyter_client.connect import ConnectionFileMixin

_create_connected_socket = ConnectionFileMixin._create_connected_socket


def _unbounded_iopub(self, channel: str, identity: bytes | None = None):
    if channel == "iopub":
        # a high-water mark applies to connections made after it is set: set it as the context's default for
        # the socket about to be created (0 = no limit), then restore the default for the other channels
        self.context.setsockopt(zmq.RCVHWM, 0)
        try:
            return _create_connected_socket(self, channel, identity)
        finally:
            self.context.sockopts.pop(zmq.RCVHWM, None)
    return _create_connected_socket(self, channel, identity)


def pytest_configure(config) -> None:
    ConnectionFileMixin._create_connected_socket = _unbounded_iopub
