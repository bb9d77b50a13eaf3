"""A pytest plugin that ``labs validate`` loads beside nbval: nbval reads the kernel's output the way a notebook
front end does.

* **Nothing is dropped.** nbval reads a cell's IOPub messages only after the kernel has replied to it. Meanwhile
  ZeroMQ queues them, up to its high-water mark of 1,000 messages a side, and drops the rest silently — the
  cell's final ``idle`` status among them. A long cell that prints or redraws progress often (lab 01's engine
  loop on a GPU, where requests finish fast) then fails with "Timeout of 5 seconds exceeded waiting for output"
  although it ran to the end. With no limit on the client's receiving side, ZeroMQ's I/O thread keeps draining
  the kernel's queue in the background, so nothing is dropped; the messages wait in memory until nbval reads
  them.
* **Display updates are applied.** An output shown under a display id and later updated in place (the course's
  progress bars, :mod:`spark_labs.progress`) is recorded by nbclient, and seen in JupyterLab, in its last state;
  nbval ignores ``update_display_data`` and would compare its first state. Here an update rewrites the output
  nbval already holds for that display id.
"""

from __future__ import annotations

import zmq
from jupyter_client.connect import ConnectionFileMixin
from nbformat.notebooknode import from_dict

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


def apply_display_updates(message: dict, shown: dict[str, list]) -> dict:
    """Track ``message`` if it shows something under a display id, or apply it if it updates one; returns it.

    nbval keeps a display's ``data`` as it finds it in the message when it is a notebook node (it copies a plain
    dict), so a shown display's data becomes a node remembered in ``shown``, and an update rewrites that node."""
    content = message.get("content") or {}
    display_id = (content.get("transient") or {}).get("display_id")
    if display_id is None:
        return message
    if message.get("msg_type") in ("display_data", "execute_result"):
        content["data"] = from_dict(content.get("data", {}))
        shown.setdefault(display_id, []).append(content["data"])
    elif message.get("msg_type") == "update_display_data":
        for data in shown.get(display_id, []):
            data.clear()
            data.update(from_dict(content.get("data", {})))
    return message


def pytest_configure(config) -> None:
    ConnectionFileMixin._create_connected_socket = _unbounded_iopub
    from nbval.kernel import RunningKernel

    get_message = RunningKernel.get_message

    def get_message_with_updates(self, stream, timeout=None):
        message = get_message(self, stream, timeout=timeout)
        if stream == "iopub" and message:
            apply_display_updates(message, self.__dict__.setdefault("_spark_labs_displays", {}))
        return message

    RunningKernel.get_message = get_message_with_updates
