"""One submission's execution, in its own process: ``python -m spark_labs.grading.worker < job.json``.

The grader starts this in a new session, inside the submission's private folder, and reads one JSON result
from its stdout. Here:

* the address-space limit (``RLIMIT_AS``) is set before the kernel starts, so the kernel and everything it
  starts inherit it;
* this process becomes a child subreaper (Linux), so processes the notebook starts and abandons are
  re-parented here instead of to init, and are stopped when the notebook ends;
* each cell's output is counted as it arrives; past the cap the rest is dropped, the kernel is interrupted
  (the cell stops with KeyboardInterrupt) and the cell is marked, so runaway output cannot grow memory;
* right before each restored checkpoint cell, ``checkpoint`` is re-imported silently (no output, no execution
  count), so a ``checkpoint`` the learner redefined earlier is not the one that runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys

import nbformat
import psutil
from nbclient import NotebookClient

REBIND = "from spark_labs.notebooks.checkpoints import checkpoint"
STOP_GRACE_S = 5.0
CAPPED_KEY = "spark_labs_grader_output_capped"


class GuardedClient(NotebookClient):
    """nbclient's executor with the output cap and the checkpoint re-import."""

    def __init__(self, notebook, *, rebind_before: set[int], output_limit: int, **kwargs):
        super().__init__(notebook, **kwargs)
        self.rebind_before = rebind_before
        self.output_limit = output_limit
        self.capped: list[int] = []
        self._sizes: dict[int, int] = {}

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell_index in self.rebind_before:
            msg_id = self.kc.execute(REBIND, silent=True, store_history=False)
            await self.async_wait_for_reply(msg_id)
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    def process_message(self, msg, cell, cell_index):
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in (content.get("data") or {}).values())
        if size and msg["msg_type"] != "status":
            total = self._sizes[cell_index] = self._sizes.get(cell_index, 0) + size
            if total > self.output_limit:
                if cell_index not in self.capped:
                    self.capped.append(cell_index)
                    cell.metadata[CAPPED_KEY] = self.output_limit
                    cell.outputs.append(nbformat.v4.new_output(
                        "stream", name="stderr",
                        text=f"\n[grader] output stopped after {self.output_limit:,} bytes; "
                             "the cell was interrupted\n"))
                    # Kept on self: asyncio holds only a weak reference to a task, which could vanish unrun.
                    self._interrupt = asyncio.ensure_future(self.km.interrupt_kernel())
                return None
        return super().process_message(msg, cell, cell_index)


def _become_subreaper() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_CHILD_SUBREAPER = 36
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def stop_descendants() -> list[str]:
    """Terminate, then kill, every process still below this one; return their command lines."""
    left = psutil.Process().children(recursive=True)
    names = []
    for proc in left:
        try:
            names.append(" ".join(proc.cmdline())[:200] or proc.name())
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(left, timeout=STOP_GRACE_S)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=STOP_GRACE_S)
    return names


def run(job: dict) -> dict:
    if job.get("memory_limit"):
        limit = int(job["memory_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _become_subreaper()
    notebook = nbformat.from_dict(job["notebook"])
    client = GuardedClient(
        notebook, rebind_before=set(job["rebind_before"]), output_limit=int(job["output_limit"]),
        timeout=job["cell_timeout"], interrupt_on_timeout=True, allow_errors=True, kernel_name=job["kernel"],
        skip_cells_with_tag="", record_timing=False, resources={"metadata": {"path": os.getcwd()}})
    result = {"kernel_error": None}
    try:
        client.execute(stdout=subprocess.DEVNULL)
    except Exception as exc:  # noqa: BLE001 - the kernel would not start, or died: the grader reports which
        result["kernel_error"] = f"{type(exc).__name__}: {exc}"
    result.update(notebook=notebook, cells_executed=client.code_cells_executed, capped=client.capped,
                  leftover=stop_descendants(),
                  peak_rss_kb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return result


def main() -> int:
    job = json.load(sys.stdin)
    result = run(job)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
