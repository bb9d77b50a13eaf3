"""``python -m spark_labs.grading.cost``: what grading a class costs (``make bench-grading``).

Grades N copies of a lab's reference solution (every learner finished: the most work per submission) with
the real grader and prints the wall time, the grader's peak memory and the largest submission process's,
with the machine's load average, since other work on the machine slows the run down.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from .cli import main as grade
from .cli import peak_memory_mb
from .reference import find_reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_labs.grading.cost", description=__doc__)
    parser.add_argument("--lab", default="00")
    parser.add_argument("--submissions", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    parser.add_argument("--profile", choices=["tiny", "spark"], default="tiny")
    args = parser.parse_args(argv)
    reference = find_reference(args.solutions, args.lab).resolve()
    with tempfile.TemporaryDirectory(prefix="spark-labs-bench-grading-") as folder:
        course = Path(folder)
        (course / "solutions").mkdir()
        shutil.copy(reference, course / "solutions" / reference.name)
        for number in range(args.submissions):
            target = course / "submissions" / f"learner{number:02d}.ipynb"
            target.parent.mkdir(exist_ok=True)
            shutil.copy(reference, target)
        load_before = os.getloadavg()
        start = time.monotonic()
        cwd = Path.cwd()
        os.chdir(course)
        try:
            code = grade(["submissions", "--lab", args.lab, "--profile", args.profile, "--workers",
                          str(args.workers), "--out", "gradebook.csv", "--html", "gradebook.html"])
        finally:
            os.chdir(cwd)
        seconds = time.monotonic() - start
    own, largest = peak_memory_mb()
    print(f"bench grading: {args.submissions} lab-{args.lab} submissions, {args.workers} workers, "
          f"{os.cpu_count()} CPUs: {seconds:.0f} s wall; peak memory: grader {own:.0f} MB, largest submission "
          f"process {largest:.0f} MB; load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
