"""``spark-labs labs build | check | record NOTEBOOK | validate [NOTEBOOK...] | open``.

``validate`` is the instructor's headless check of the course on a machine: every solution notebook executed
under nbval on this machine's profile (on a Spark, inside the course's NGC PyTorch image: ``docker compose
-f docker/compose.yaml run --rm validate``), compared with its recorded outputs, one JUnit XML report per
notebook and a summary written to ``--out``. The recordings carry the profile they were made on (the tiny
one, on a CPU); on another profile the outputs cannot match theirs (another model, other engines, other
timings), so there ``validate`` runs nbval in its lax mode: every cell must run without an error and every
checkpoint must pass, and no output is compared.
"""

from __future__ import annotations

from pathlib import Path

from ..cli_types import ArgumentParser, check_model_env, output_dir
from .build import build_all, stale_labs


def record(solution: Path, timeout: int = 900) -> None:
    """Execute a solution in place so it carries reference outputs for nbval to compare."""
    import nbformat
    from nbclient import NotebookClient

    from ..profiles import get_profile

    notebook = nbformat.read(solution, as_version=4)
    notebook.metadata.pop("widgets", None)  # the last run's widget state; this run stores its own, if any
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(solution.parent)}}).execute()
    notebook.metadata.setdefault("spark_labs", {})["recorded_profile"] = get_profile().name
    nbformat.write(notebook, solution)


def recorded_profile(solution: Path) -> str:
    """The profile a solution's outputs were recorded on (recordings made before it was written: tiny)."""
    import json

    return json.loads(solution.read_text()).get("metadata", {}).get("spark_labs", {}).get("recorded_profile", "tiny")


def sanitize_file() -> Path:
    """nbval's sanitize file (volatile output kept out of comparisons), shipped in the package."""
    from importlib import resources

    return Path(str(resources.files("spark_labs") / "data" / "nbval_sanitize.cfg"))


def nbval_mode(recorded: str, profile: str) -> str:
    """nbval's comparing mode where the recording's profile is this one; its lax mode (cells must run, outputs
    are not compared) where it is not."""
    return "--nbval" if recorded == profile else "--nbval-lax"


def validate(notebooks: list[Path], out: Path, cell_timeout: int = 900) -> int:
    """nbval on each notebook (the command CI and docs/instructors.md use); 0 when every one passed."""
    import subprocess
    import sys
    import time

    from ..profiles import get_profile

    out.mkdir(parents=True, exist_ok=True)
    failed, lines = [], []
    profile = get_profile().name
    for notebook in notebooks:
        report = out.resolve() / f"{notebook.stem}.xml"
        start = time.monotonic()
        recorded = recorded_profile(notebook)
        mode = nbval_mode(recorded, profile)
        print(f"validating {notebook} …" if mode == "--nbval" else
              f"validating {notebook} (recorded on {recorded}, run on {profile}: every cell must run and every "
              "checkpoint pass; outputs are not compared) …", flush=True)
        # nbval_iopub: nbval reads a cell's output only after it ends; without it a cell that prints often loses
        # its end-of-cell message and fails as a timeout (the module says why)
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "spark_labs.notebooks.nbval_iopub", mode,
                               notebook.name, "--nbval-sanitize-with", str(sanitize_file()),
                               f"--nbval-cell-timeout={cell_timeout}", f"--junitxml={report}"],
                              cwd=notebook.parent, capture_output=True, text=True, check=False)
        verdict = ("passed" if done.returncode == 0 else "FAILED") + ("" if mode == "--nbval" else " (lax)")
        lines.append(f"{notebook.name}: {verdict} in {time.monotonic() - start:.0f} s "
                     f"({done.stdout.strip().splitlines()[-1] if done.stdout.strip() else 'no output'})")
        print(lines[-1], flush=True)
        if done.returncode:
            failed.append(notebook.name)
            (out / f"{notebook.stem}.log").write_text(done.stdout + done.stderr)
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/summary.txt and one JUnit XML per notebook"
          + (f"; failed: {', '.join(failed)} (logs beside them)" if failed else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="spark-labs labs", description=__doc__)
    parser.add_argument("action", choices=["build", "check", "record", "validate", "open"])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="record, validate: solution notebooks (default: every one in --solutions)")
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    parser.add_argument("--labs", type=Path, default=Path("labs"))
    parser.add_argument("--out", type=output_dir, default=Path("results/validate"),
                        help="validate: folder for the reports (default results/validate)")
    args = parser.parse_args(argv)
    if args.action == "build":
        for path in build_all(args.solutions, args.labs):
            print(f"wrote {path}")
        return 0
    if args.action == "open":
        from .lab_server import open_lab

        return open_lab(args.labs)
    if args.action == "check":
        stale = stale_labs(args.solutions, args.labs)
        for name in stale:
            print(f"stale: labs/{name} (run `spark-labs labs build`)")
        return 1 if stale else 0
    check_model_env(parser)  # the solutions run on the profile's model
    notebooks = args.notebooks or sorted(args.solutions.glob("*.ipynb"))
    if missing := [str(n) for n in notebooks if not n.is_file()]:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.action == "validate":
        return validate(notebooks, args.out)
    for notebook in notebooks:
        print(f"recording {notebook} …")
        record(notebook)
    return 0
