"""``spark-labs labs build | check | record NOTEBOOK | open``."""

from __future__ import annotations

from pathlib import Path

from ..cli_types import ArgumentParser, check_model_env
from .build import build_all, stale_labs


def record(solution: Path, timeout: int = 900) -> None:
    """Execute a solution in place so it carries reference outputs for nbval to compare."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(solution, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(solution.parent)}}).execute()
    nbformat.write(notebook, solution)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="spark-labs labs", description=__doc__)
    parser.add_argument("action", choices=["build", "check", "record", "open"])
    parser.add_argument("notebooks", nargs="*", type=Path, help="record: solution notebooks to execute")
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    parser.add_argument("--labs", type=Path, default=Path("labs"))
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
    for notebook in args.notebooks or sorted(args.solutions.glob("*.ipynb")):
        print(f"recording {notebook} …")
        record(notebook)
    return 0
