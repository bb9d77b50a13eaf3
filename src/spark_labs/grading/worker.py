"""The grading kernel's run: ``python -m spark_labs.grading.worker < job.json``, one JSON result on stdout.

The grader starts this in a new session, in a folder of its own, outside the submission's wall. It runs
the graded notebook (:mod:`.assemble`) in a fresh kernel, the *grading kernel*, where the reference's own
cells run; each learner cell runs ``__spark_labs_judge__.run(k)`` in its place (:mod:`.judge`), which runs
the learner's code in the learner's kernel behind the wall. Here:

* this process becomes a child subreaper (Linux), so processes the reference starts and abandons (an
  engine) are re-parented here and stopped when the notebook ends;
* each cell's output is counted as it arrives; past the cap the rest is dropped, the kernel is interrupted
  (the cell stops with KeyboardInterrupt) and the cell is marked, so runaway output cannot grow memory;
* after the last cell the judge stops the learner's kernel and reports what its side left running.
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
from nbclient.util import run_sync

from .assemble import GRADER_KEY  # the one place that marks a cell as the learner's

START_JUDGE = ("from spark_labs.grading.judge import Judge as _Judge\n"
               "__spark_labs_judge__ = _Judge.from_environment(globals())\n"
               "del _Judge")
CLOSE_JUDGE = "__spark_labs_judge__.close()"
STOP_GRACE_S = 5.0
CAPPED_KEY = "spark_labs_grader_output_capped"


class GuardedClient(NotebookClient):
    """nbclient's executor with the output cap; a learner cell runs the judge's bridge in its place."""

    def __init__(self, notebook, *, output_limit: int, **kwargs):
        super().__init__(notebook, **kwargs)
        self.output_limit = output_limit
        self.capped: list[int] = []
        self._sizes: dict[int, int] = {}
        self.judge_started = False
        self.learner_report: dict = {}

    async def _silently(self, code: str, expression: str | None = None) -> str | None:
        msg_id = self.kc.execute(code, silent=True, store_history=False,
                                 user_expressions={"r": expression} if expression else {})
        reply = await self.async_wait_for_reply(msg_id)
        result = (reply or {}).get("content", {}).get("user_expressions", {}).get("r", {})
        return result.get("data", {}).get("text/plain") if result.get("status") == "ok" else None

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if not self.judge_started:
            self.judge_started = True
            await self._silently(START_JUDGE)
        slot = cell.get("metadata", {}).get(GRADER_KEY, {}).get("slot")
        if slot is None or cell.cell_type != "code":
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        shown = cell.source
        cell.source = f"__spark_labs_judge__.run({int(slot)})"
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            cell.source = shown

    execute_cell = run_sync(async_execute_cell)  # as for execute below: bind the override, not nbclient's own

    def run_silently(self, code: str) -> None:
        """Run ``code`` in the grading kernel without output or an execution count."""
        run_sync(self._silently)(code)

    async def close_judge(self) -> None:
        import ast

        text = await self._silently("", CLOSE_JUDGE) if self.judge_started else None
        with contextlib.suppress(ValueError, SyntaxError, TypeError):
            self.learner_report = json.loads(ast.literal_eval(text)) if text else {}

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


def become_subreaper() -> None:
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


class JudgedClient(GuardedClient):
    """Closes the judge (and with it the learner's kernel) while the grading kernel is still up."""

    async def async_execute(self, reset_kc: bool = False, **kwargs):
        try:
            return await super().async_execute(reset_kc, cleanup_kc=False, **kwargs)
        finally:
            if self.kc is not None:
                try:
                    await self.close_judge()
                except Exception as exc:  # noqa: BLE001 - reported; the grader still stops what is left
                    print(f"[grader] could not close the learner's kernel: {type(exc).__name__}: {exc}",
                          file=sys.stderr)
            await self._async_cleanup_kernel()

    execute = run_sync(async_execute)  # nbclient binds execute to its own async_execute, not to an override


def run(job: dict) -> dict:
    become_subreaper()
    notebook = nbformat.from_dict(job["notebook"])
    client = JudgedClient(
        notebook, output_limit=int(job["output_limit"]),
        timeout=job["cell_timeout"], interrupt_on_timeout=True, allow_errors=True, kernel_name=job["kernel"],
        skip_cells_with_tag="", record_timing=False, resources={"metadata": {"path": os.getcwd()}})
    result = {"kernel_error": None}
    try:
        client.execute(stdout=subprocess.DEVNULL)
    except Exception as exc:  # noqa: BLE001 - the kernel would not start, or died: the grader reports which
        result["kernel_error"] = f"{type(exc).__name__}: {exc}"
    capped_slots = set(client.learner_report.get("capped_slots", []))
    capped = client.capped + [i for i, cell in enumerate(notebook.cells)
                              if cell.get("metadata", {}).get(GRADER_KEY, {}).get("slot") in capped_slots]
    result.update(notebook=notebook, cells_executed=client.code_cells_executed, capped=sorted(set(capped)),
                  leftover=stop_descendants(), learner=client.learner_report,
                  peak_rss_kb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return result


def main() -> int:
    job = json.load(sys.stdin)
    result = run(job)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
