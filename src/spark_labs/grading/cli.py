"""``spark-labs grade SUBMISSIONS... --lab NN --out gradebook.csv [--html gradebook.html]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .grade import expected_checkpoints, grade_submissions, write_gradebook


def _collect(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark-labs grade", description=__doc__)
    parser.add_argument("submissions", nargs="+", type=Path, help="notebooks or folders of notebooks")
    parser.add_argument("--lab", required=True, help="lab number, e.g. 00")
    parser.add_argument("--out", type=Path, default=Path("gradebook.csv"))
    parser.add_argument("--html", type=Path, help="also write an HTML gradebook")
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    parser.add_argument("--profile", choices=["tiny", "spark"], help="profile to re-execute in")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per notebook")
    parser.add_argument("--cell-timeout", type=float, default=300)
    args = parser.parse_args(argv)

    references = sorted(args.solutions.glob(f"{args.lab}_*.ipynb"))
    if not references:
        parser.error(f"no reference solution {args.solutions}/{args.lab}_*.ipynb to read checkpoints from")
    checkpoints = expected_checkpoints(references[0])
    submissions = _collect(args.submissions)
    console = Console()
    with Progress(console=console) as progress:
        task = progress.add_task(f"grading lab {args.lab}", total=len(submissions))
        rows = grade_submissions(submissions, checkpoints, args.workers, args.timeout, args.cell_timeout,
                                 args.profile, on_done=lambda row: progress.advance(task))
    write_gradebook(rows, checkpoints, args.out, args.html)
    table = Table(title=f"lab {args.lab} gradebook → {args.out}")
    for column in ("submission", "status", "checkpoints", "mismatches", "errors", "s"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.submission, r.status, f"{r.checkpoints_passed}/{len(checkpoints)}", str(r.mismatches),
                      str(r.errors), f"{r.seconds:.0f}")
    console.print(table)
    return 0
