"""``spark-labs grade SUBMISSIONS... --lab NN``: grade learners' notebooks against the reference's checkpoints.

Each submission runs alone: the reference's cells judge in a clean kernel while the learner's code runs behind
a wall; the gradebook (CSV, HTML) and one feedback file per learner are written once every run has ended.
Exit status: 0 when every submission was graded, 1 when a row is an error (the grader could not grade it: the
row says why), 2 for a usage error.

With ``--cluster ADDRESS`` each submission is graded as a task on a Ray cluster (:mod:`.cluster`), on whichever
node has room for ``--task-cpus``, ``--task-gpus`` and ``--memory-limit-gb``; without it, on this machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..cli_types import SECONDS, ArgumentParser, check_model_env, output_dir, output_file, real, save_results, whole
from .grade import GradeRow, grade_submission, grade_submissions
from .gradebook import MARKS, Header, histogram, write_csv, write_feedback, write_html
from .reference import Reference, ReferenceError, find_reference, load_reference
from .sandbox import Limits
from .written import merge_scores, scores_path


def collect(paths: list[Path]) -> list[tuple[str, Path]]:
    """(student, notebook) pairs: a folder gives every notebook under it, named by its path inside the folder
    (``alice`` for ``alice.ipynb``, ``alice/00_prerequisites`` for a folder per learner). A path that does not
    exist, or a folder without notebooks, is kept so that it becomes an error row, never silently dropped."""
    found: list[tuple[str, Path]] = []
    for path in paths:
        notebooks = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts) \
            if path.is_dir() else []
        if notebooks:
            found += [(p.relative_to(path).with_suffix("").as_posix(), p) for p in notebooks]
        else:
            found.append((path.stem if path.suffix == ".ipynb" else str(path), path))
    return found


def default_memory_limit(profile: str | None, workers: int) -> int:
    """Bytes for all of one submission's processes together: this machine's memory shared by the workers.
    None on a GPU profile: on unified memory the GPU's allocations come out of the same pool, and a cap
    sized for the CPU would stop a model load half-way."""
    from ..profiles import resolve_profile_name

    if resolve_profile_name(profile) == "spark":
        return 0
    return psutil.virtual_memory().total // max(1, workers)


def peak_memory_mb() -> tuple[float, float]:
    """(this process, the largest process it waited for: a worker, a kernel or what a kernel started), MB."""
    kib = 1 if sys.platform.startswith("linux") else 1 / 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 1024
    return own, children


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="spark-labs grade", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", nargs="+", type=Path, help="notebooks, or folders of notebooks")
    parser.add_argument("--lab", required=True, help="lab number, e.g. 00")
    parser.add_argument("--solutions", type=Path, default=Path("solutions"),
                        help="folder holding the reference notebook NN_*.ipynb (default: solutions)")
    parser.add_argument("--out", type=output_file, default="gradebook.csv", help="CSV gradebook")
    parser.add_argument("--html", type=output_file, help="also write an HTML gradebook")
    parser.add_argument("--feedback", type=output_dir, help="folder for per-learner feedback (default: feedback/ "
                                                            "next to --out)")
    parser.add_argument("--profile", choices=["tiny", "spark"], help="profile to execute in")
    parser.add_argument("--workers", type=whole(1, 64, "each worker runs a kernel with its share of the memory; "
                                                       "64 at once is already more than a grading machine has cores"),
                        help="submissions run at a time on this machine (default 2; not with --cluster)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="grade on the Ray cluster whose head is at ADDRESS (HOST:PORT as `ray start --head` "
                             "printed, ray://HOST:PORT, or auto): each submission runs on a node with room")
    parser.add_argument("--task-cpus", type=real(0, 256, "no node has more cores than that", low_open=True),
                        help="with --cluster: CPUs each submission reserves on its node, and its kernel's threads "
                             "(default 1)")
    parser.add_argument("--task-gpus", type=real(0, 16, "no node has more GPUs than that"),
                        help="with --cluster: GPUs each submission reserves (default: 1 on spark, 0 on tiny)")
    parser.add_argument("--timeout", type=SECONDS, default=600, help="seconds per notebook")
    parser.add_argument("--cell-timeout", type=SECONDS, default=300, help="seconds per cell")
    parser.add_argument("--output-limit-mb", type=real(0, 1024, "the gradebook keeps it per cell", low_open=True),
                        default=2, help="output kept per cell, MB")
    parser.add_argument("--memory-limit-gb", type=real(0, 2**20, "more than any machine has"),
                        help="memory for all of a submission's processes together, GiB (default: memory / workers; "
                             "none on spark; 0: none)")
    parser.add_argument("--disk-limit-gb", type=real(0, 2**20, "more than any disk holds", low_open=True), default=4,
                        help="what a submission may write (its folder, /tmp, /dev/shm, $HOME), GiB (default 4)")
    parser.add_argument("--uncontained", action="store_true",
                        help="grade without the sandbox (no namespaces, no cgroup): trusted notebooks only, e.g. "
                             "on a machine where you are not root; every row says it ran uncontained")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel to run submissions in")
    return parser


def _print_summary(console: Console, rows: list[GradeRow], reference: Reference, seconds: float,
                   where: str, on_nodes: bool = False) -> None:
    table = Table(title=f"lab {reference.lab}: {len(rows)} submissions")
    for name in ("student", "status", "score", *reference.checkpoints, "s"):
        table.add_column(name)
    for row in rows:
        table.add_row(row.student, row.status, f"{row.passed_count}/{len(reference.checkpoints)}",
                      *(MARKS[row.checkpoints[c].state] for c in reference.checkpoints), f"{row.seconds:.0f}")
    console.print(table)
    bars = histogram(rows, reference)
    most = max(count for _, count in bars) or 1
    for label, count in bars:
        console.print(f"{label:>8} {'█' * round(20 * count / most)} {count}", highlight=False)
    own, largest = peak_memory_mb()
    if on_nodes:  # nothing ran as this process's child: each row brought back its submission's peak from its node
        largest = max((row.peak_rss_mb or 0 for row in rows), default=0)
    console.print(f"graded {len(rows)} submissions in {seconds:.0f} s {where}; peak memory: "
                  f"grader {own:.0f} MB, largest submission process {largest:.0f} MB", highlight=False)
    for row in rows:
        if row.status == "error":
            console.print(f"[red]error[/red] {row.student}: {row.reason}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    check_model_env(parser, args.profile)  # every submission would run with it
    console = Console(stderr=True)
    try:
        reference = load_reference(find_reference(args.solutions, args.lab))
    except ReferenceError as exc:
        console.print(f"spark-labs grade: {exc}", highlight=False)
        return 2
    feedback = args.feedback or _default_feedback(parser, args.out)
    _check_cluster_flags(parser, args)
    workers = args.workers or 2
    memory_gb = args.memory_limit_gb
    limits = Limits(timeout=args.timeout, cell_timeout=args.cell_timeout,
                    output_limit=int(args.output_limit_mb * 1e6), kernel=args.kernel, profile=args.profile,
                    threads=max(1, (os.cpu_count() or 1) // workers),
                    memory_limit=default_memory_limit(args.profile, workers) if memory_gb is None
                    else int(memory_gb * 2**30),
                    disk_limit=int(args.disk_limit_gb * 2**30), contained=not args.uncontained)
    submissions = collect(args.submissions)
    names = [name for name, _ in submissions]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        console.print(f"spark-labs grade: two submissions would share the name {', '.join(twice)}: give each "
                      f"learner one file, or one folder", highlight=False)
        return 2
    where, grade = f"with {workers} workers", grade_submission
    if args.cluster:
        from .cluster import ClusterError

        try:
            limits, grade = _cluster_grader(args, limits)
        except ClusterError as exc:  # no Ray, nothing at the address, no node with room
            console.print(f"spark-labs grade: {exc}", highlight=False, soft_wrap=True)  # one line, any width
            return 2
        # Every submission is handed to Ray at once (a thread each waits for its row): Ray queues them and
        # starts each where its resources are free.
        where, workers = f"on the Ray cluster at {args.cluster}", len(submissions)
    start = time.monotonic()
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"grading lab {reference.lab}", total=len(submissions))
            rows = grade_submissions(submissions, reference, limits, workers,
                                     on_done=lambda row: progress.advance(task), grade=grade)
    finally:
        if args.cluster:
            from .cluster import disconnect

            disconnect()
    # Every worker has ended and its processes are gone: only now is anything written. A place that fails now
    # (disk full, folder gone) gets a fallback folder, named on stderr: nothing graded is lost.
    header = Header.of(reference, args.profile)
    scores: dict = {}  # the instructor's scores of written answers, kept across re-grading
    saved = not reference.answers or save_results(
        scores_path(args.out), lambda path: scores.update(merge_scores(rows, reference, path)), "spark-labs grade")
    saved = save_results(feedback, lambda folder: [write_feedback(row, reference, header, folder, scores)
                                                    for row in rows], "spark-labs grade") and saved
    saved = save_results(args.out, lambda path: write_csv(rows, reference, header, path, scores),
                         "spark-labs grade") and saved
    if args.html:
        saved = save_results(args.html, lambda path: write_html(rows, reference, header, path, feedback, scores),
                             "spark-labs grade") and saved
    _print_summary(console, rows, reference, time.monotonic() - start, where, on_nodes=bool(args.cluster))
    if saved:
        written = ", ".join(str(p) for p in (args.out, args.html, f"{feedback}/",
                                             scores_path(args.out) if reference.answers else None) if p)
        console.print(f"wrote {written}", highlight=False)
    return 1 if not saved or any(row.status == "error" for row in rows) else 0


def _check_cluster_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--cluster and the per-task flags go together; --workers is this machine's, Ray decides how many at once."""
    if args.cluster is None:
        for flag in ("task_cpus", "task_gpus"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag.replace('_', '-')} needs --cluster ADDRESS (on this machine, use --workers)")
        return
    if args.workers is not None:
        parser.error("--workers does not apply with --cluster: Ray runs as many submissions at once as the nodes "
                     "have room for (--task-cpus, --task-gpus, --memory-limit-gb)")
    from .cluster import address

    try:
        args.cluster = address(args.cluster)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"argument --cluster: {exc}")


def _cluster_grader(args: argparse.Namespace, limits: Limits):
    """(limits, grade) for --cluster: the submission's kernel threads and memory follow what its task reserves
    on the node. Joins the cluster; raises ClusterError when it cannot take the grading."""
    from ..profiles import resolve_profile_name
    from .cluster import ClusterError, ClusterGrader, TaskResources, check_room, connect, disconnect

    spark = resolve_profile_name(args.profile) == "spark"
    cpus = args.task_cpus or 1.0
    # No --memory-limit-gb: on spark no cap (as on one machine); on tiny each node gives the task its CPUs'
    # share of its own memory, computed there (nodes differ).
    share = args.memory_limit_gb is None and not spark
    limits = replace(limits, threads=max(1, round(cpus)), memory_limit=0 if share else limits.memory_limit)
    resources = TaskResources(cpus=cpus, gpus=(1.0 if spark else 0.0) if args.task_gpus is None else args.task_gpus,
                              memory=limits.memory_limit)
    connect(args.cluster, contained=not args.uncontained)
    try:
        check_room(resources)
    except ClusterError:
        disconnect()
        raise
    return limits, ClusterGrader(resources, share_memory=share)


def _default_feedback(parser: argparse.ArgumentParser, out: Path) -> Path:
    """feedback/ next to --out, checked as a place to write before any grading starts."""
    try:
        return output_dir(str(out.parent / "feedback"))
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--feedback (default: feedback/ next to --out): {exc}")
