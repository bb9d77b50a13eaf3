"""Rehearse the course on a GPU: run the reference notebooks (solutions/NN_*.ipynb) headlessly and count, per lab,
the code cells that ran, skipped visibly (``⏭ Skipped``, the course's ``can_run``), waited on an exercise
(``⏸ finish Exercise …``) or raised an error.

    python3 scripts/device_proof/device_proof_labs.py --labs 00 02 05 06 07 --jobs 5 --out /tmp/reh
    python3 scripts/device_proof/device_proof_labs.py --labs 03 01 04 --jobs 1 --out /tmp/reh

Each lab runs in its own process (nbclient, ``allow_errors=True`` so every failure is seen, a per-cell
timeout) in a working folder of its own; the executed notebook and ``labNN.json`` (per cell: status, seconds,
first error line, the start of its text output) land in ``--out``. The profile and model come from the
environment as a learner's would (``SPARK_LABS_PROFILE``, ``SPARK_LABS_MODEL``). ``--extras`` runs, after a
lab, the few steps of it that need only torch/transformers but sit behind a cell that needs an absent engine
(``EXTRAS`` below); their output is kept apart from the notebook's counts. docs/device-proof.md records a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_MARK, WAIT_MARK = "⏭ Skipped", "⏸ finish"
TEXT_LIMIT = 1500

# Steps of a lab that need only torch/transformers but follow a cell that needs an engine absent here.
EXTRAS = {
    "02": """
from spark_labs import plan
from spark_labs.bench import load_tokenizer
from spark_labs.batching import mixed_lengths, mixed_prompts, run_static_batches
from spark_labs.speculative import SpecModel
lab = plan("02")
tokenizer = load_tokenizer(lab.model)
lengths, prompts = mixed_lengths(16, 8, 64), mixed_prompts(tokenizer, 16)
lm = SpecModel.for_plan(lab)
print("device", lm.model.device, "dtype", lm.model.dtype)
run = run_static_batches(lm, prompts, lengths, 4)
print(f"static batches of 4 over {len(lengths)} requests ({sum(lengths)} tokens) done in {run['end_s'].max():.2f} s")
""",
    "03": """
import pandas as pd
from transformers import AutoTokenizer
from spark_labs.models import prepare_embedded_model
from spark_labs.variants import weight_only_table
pd.set_option("display.width", 200)
tokenizer = AutoTokenizer.from_pretrained(prepare_embedded_model())
print(weight_only_table(prepare_embedded_model(), tokenizer, progress=False).round(2).to_string())
""",
}


def _text(outputs: list) -> str:
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            parts.append(data.get("text/plain", "") if "text/plain" in data else f"<{', '.join(data)}>")
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def _seconds(cell) -> float | None:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(end) - parse(start)).total_seconds(), 2)


def classify(cell) -> str:
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    text = _text(cell.get("outputs", []))
    if errors:
        return "waiting" if errors[0].get("ename") == "ExerciseNotDone" else "error"
    if SKIP_MARK in text:
        return "skipped"
    return "ok"


def _slim(nb) -> None:
    """Drop outputs over 200 kB (plotly's inline JS) so the executed notebooks travel back."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for mime, value in list(out.get("data", {}).items()):
                if len(json.dumps(value)) > 200_000:
                    out["data"][mime] = f"<{mime} dropped: {len(json.dumps(value))} bytes>"


def run_one(lab: str, out: Path, cell_timeout: int) -> dict:
    import nbformat
    from nbclient import NotebookClient

    source = next((ROOT / "solutions").glob(f"{lab}_*.ipynb"))
    work = out / f"work{lab}"
    work.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    started = time.monotonic()
    failure = None
    try:
        client.execute()
    except Exception as exc:  # a dead kernel or a timeout the client could not recover from
        failure = f"{type(exc).__name__}: {str(exc)[:500]}"
    wall = time.monotonic() - started
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        ran = cell.get("execution_count") is not None
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        cells.append({"index": index, "status": classify(cell) if ran else "not run", "seconds": _seconds(cell),
                      "first_line": cell.source.splitlines()[0] if cell.source else "",
                      "error": f"{errors[0].get('ename')}: {str(errors[0].get('evalue'))[:400]}" if errors else None,
                      "text": _text(cell.get("outputs", []))[:TEXT_LIMIT]})
    counts = {s: sum(c["status"] == s for c in cells) for s in ("ok", "skipped", "waiting", "error", "not run")}
    _slim(nb)
    nbformat.write(nb, out / f"{source.stem}.executed.ipynb")
    summary = {"lab": lab, "notebook": source.name, "wall_s": round(wall, 1), "counts": counts, "failure": failure,
               "cells": cells}
    (out / f"lab{lab}.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return summary


def run_extra(lab: str, out: Path, timeout: int) -> None:
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", EXTRAS[lab]], capture_output=True, text=True, timeout=timeout,
                              cwd=out)
        text, rc = done.stdout + done.stderr[-3000:], done.returncode
    except subprocess.TimeoutExpired as exc:
        text, rc = f"timed out after {timeout} s: {exc.stdout or ''}", 124
    (out / f"extra{lab}.txt").write_text(f"rc {rc}, {time.monotonic() - started:.1f} s\n{text}")


def lab_process(lab: str, args) -> None:
    """One lab in its own process, bounded by --lab-timeout."""
    started = time.monotonic()
    command = [sys.executable, __file__, "--one", lab, "--out", str(args.out), "--cell-timeout", str(args.cell_timeout)]
    try:
        subprocess.run(command, timeout=args.lab_timeout, check=False)
    except subprocess.TimeoutExpired:
        (args.out / f"lab{lab}.timeout").write_text(f"stopped after {args.lab_timeout} s")
    print(f"lab {lab}: {time.monotonic() - started:.0f} s", flush=True)
    if args.extras and lab in EXTRAS:
        run_extra(lab, args.out, args.cell_timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", nargs="*", default=[])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=1, help="labs run at once")
    parser.add_argument("--cell-timeout", type=int, default=300)
    parser.add_argument("--lab-timeout", type=int, default=900)
    parser.add_argument("--extras", action="store_true", help="also run EXTRAS for the labs that have them")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:
        summary = run_one(args.one, args.out, args.cell_timeout)
        print(f"lab {args.one}: {summary['counts']} in {summary['wall_s']} s", flush=True)
        return
    print({k: os.environ.get(k) for k in ("SPARK_LABS_PROFILE", "SPARK_LABS_MODEL")}, flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda lab: lab_process(lab, args), args.labs))


if __name__ == "__main__":
    main()
