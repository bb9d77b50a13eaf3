"""Grade notebooks by re-executing them under nbval.

nbval re-runs every cell in a fresh kernel and compares each output with the one saved in the
submission. So a checkpoint line counts only if re-execution printed the same line: a hand-edited
"✅ passed" that the code no longer produces shows up as an output mismatch, an unfinished exercise as an
execution error, and a notebook that hangs is killed at its timeout (with its kernel) without stopping
the others.
"""

from __future__ import annotations

import csv
import html
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import nbformat

CHECKPOINT_LINE = re.compile(r"^(✅|❌) Checkpoint (\d+\.\d+) (passed|failed)")
from ..notebooks.skip import SKIP_MARK as SKIP_LINE
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class GradeRow:
    submission: str
    status: str  # passed | failed | error | timeout
    checkpoints: dict[str, str] = field(default_factory=dict)  # id → passed/failed/mismatch/error/not run
    cells_failed: int = 0
    mismatches: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    detail: str = ""

    @property
    def checkpoints_passed(self) -> int:
        return sum(v == "passed" for v in self.checkpoints.values())


def sanitize_file() -> Path:
    return Path(str(resources.files("spark_labs") / "data" / "nbval_sanitize.cfg"))


def expected_checkpoints(reference: Path) -> list[str]:
    """Checkpoint ids a lab has, read from its reference solution's recorded outputs."""
    found = []
    for _, text in _cell_texts(nbformat.read(reference, as_version=4)):
        for line in text.splitlines():
            match = CHECKPOINT_LINE.match(line)
            if match and match.group(2) not in found:
                found.append(match.group(2))
    return found


def _cell_texts(notebook) -> Iterable[tuple[int, str]]:
    """(code-cell index as nbval numbers it, text of its stream/plain outputs)."""
    index = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output:
                parts.append(str(output["data"].get("text/plain", "")))
        yield index, "".join(parts)
        index += 1


def _kill_tree(pid: int) -> None:
    """Kill pytest and every descendant: jupyter_client starts kernels in their own session, so
    killing pytest's process group alone would leave the hung kernel running."""
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)


def _run_nbval(notebook: Path, timeout: float, cell_timeout: float, env: dict) -> tuple[str, dict[int, str], str]:
    """Run nbval; return (outcome, {cell index: failure kind}, log tail)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", str(notebook),
                   "--nbval-sanitize-with", str(sanitize_file()), f"--nbval-cell-timeout={cell_timeout:.0f}",
                   f"--junitxml={report}", "-o", "junit_family=xunit2", "--rootdir", tmp]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                   cwd=notebook.parent, start_new_session=True)
        try:
            log, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(process.pid)
            process.communicate()
            return "timeout", {}, f"killed after {timeout:.0f} s"
        failures: dict[int, str] = {}
        if report.exists():
            for case in ET.parse(report).getroot().iter("testcase"):
                problem = case.find("failure")
                if problem is None:
                    problem = case.find("error")
                match = re.search(r"Cell (\d+)", case.get("name", ""))
                if problem is None or not match:
                    continue
                message = (problem.get("message") or "") + (problem.text or "")
                if "Timeout" in message or "timed out" in message.lower() or "KeyboardInterrupt" in message:
                    kind = "timeout"
                elif "outputs differ" in message or "Unexpected output" in message or "Missing output" in message:
                    kind = "mismatch"
                else:
                    kind = "error"
                failures[int(match.group(1))] = kind
        outcome = "ok" if process.returncode == 0 else "failed"
        return outcome, failures, ANSI.sub("", "\n".join(log.splitlines()[-5:]))


def grade_notebook(notebook: Path, checkpoints: list[str], timeout: float = 600, cell_timeout: float = 300,
                   profile: str | None = None) -> GradeRow:
    start = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if profile:
        env["SPARK_LABS_PROFILE"] = profile
    try:
        submitted = nbformat.read(notebook, as_version=4)
    except Exception as exc:  # not a notebook at all
        return GradeRow(notebook.stem, "error", {c: "not run" for c in checkpoints}, detail=f"unreadable: {exc}")
    outcome, failures, log = _run_nbval(notebook, timeout, cell_timeout, env)
    row = GradeRow(notebook.stem, "passed", {c: "not run" for c in checkpoints}, seconds=time.monotonic() - start)
    for index, text in _cell_texts(submitted):
        row.skipped += text.count(SKIP_LINE)
        for line in text.splitlines():
            match = CHECKPOINT_LINE.match(line)
            if match:
                # A saved line counts only if re-execution reproduced the cell's output.
                row.checkpoints[match.group(2)] = failures.get(index, match.group(3))
    for cell, kind in failures.items():
        row.cells_failed += 1
        row.mismatches += kind == "mismatch"
        row.errors += kind in ("error", "timeout")
    if outcome == "timeout":
        # Nothing was verified: saved lines from a run that cannot be reproduced do not count.
        row.checkpoints = {c: "timeout" for c in checkpoints}
        row.status, row.detail = "timeout", log
    elif row.errors:
        row.status, row.detail = "error", log
    elif row.mismatches or row.checkpoints_passed < len(checkpoints):
        row.status, row.detail = "failed", log
    return row


def grade_submissions(submissions: list[Path], checkpoints: list[str], workers: int = 2, timeout: float = 600,
                      cell_timeout: float = 300, profile: str | None = None,
                      on_done: Callable[[GradeRow], None] | None = None) -> list[GradeRow]:
    rows: list[GradeRow] = []

    def one(path: Path) -> GradeRow:
        row = grade_notebook(path, checkpoints, timeout, cell_timeout, profile)
        if on_done:
            on_done(row)
        return row

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, submissions))
    return rows


def write_gradebook(rows: list[GradeRow], checkpoints: list[str], csv_path: Path, html_path: Path | None = None) -> None:
    header = ["submission", "status", "checkpoints_passed", *[f"checkpoint_{c}" for c in checkpoints],
              "cells_failed", "mismatches", "errors", "skipped", "seconds", "detail"]
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for r in rows:
            writer.writerow([r.submission, r.status, f"{r.checkpoints_passed}/{len(checkpoints)}",
                             *[r.checkpoints.get(c, "not run") for c in checkpoints], r.cells_failed, r.mismatches,
                             r.errors, r.skipped, f"{r.seconds:.1f}", r.detail.replace("\n", " | ")])
    if html_path:
        colour = {"passed": "#d4f7d4", "failed": "#ffe3b3", "error": "#ffc9c9", "timeout": "#e0d4ff"}
        body = "".join(
            f"<tr style='background:{colour.get(r.status, '#fff')}'><td>{html.escape(r.submission)}</td>"
            f"<td>{r.status}</td><td>{r.checkpoints_passed}/{len(checkpoints)}</td>"
            + "".join(f"<td>{r.checkpoints.get(c, 'not run')}</td>" for c in checkpoints)
            + f"<td>{r.mismatches}</td><td>{r.errors}</td><td>{r.seconds:.1f}</td>"
            f"<td><pre>{html.escape(r.detail)}</pre></td></tr>" for r in rows)
        heads = "".join(f"<th>{h}</th>" for h in ["submission", "status", "checkpoints",
                                                 *[f"{c}" for c in checkpoints], "mismatches", "errors", "s",
                                                 "detail"])
        html_path.write_text(f"<!doctype html><meta charset='utf-8'><title>Gradebook</title>"
                             f"<table border=1 cellpadding=4><tr>{heads}</tr>{body}</table>", encoding="utf-8")
