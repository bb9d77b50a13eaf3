"""Learner submissions of lab 00 made from the real solution, one per way a submission goes wrong."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from spark_labs.notebooks.build import build_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "00_prerequisites.ipynb"


def _code_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code"]


def _checkpoint_cell(notebook, checkpoint_id: str):
    for cell in _code_cells(notebook):
        if f'checkpoint("{checkpoint_id}"' in cell.source:
            return cell
    raise LookupError(checkpoint_id)


def make_submissions(folder: Path) -> dict[str, Path]:
    """correct, undone (exercises left as TODOs, run as a learner would), raises, hangs, faked."""
    folder.mkdir(parents=True, exist_ok=True)
    solution = nbformat.read(SOLUTION, as_version=4)
    made: dict[str, Path] = {}

    def save(name: str, notebook) -> None:
        made[name] = folder / f"{name}.ipynb"
        nbformat.write(notebook, made[name])

    save("correct", solution)

    undone = build_notebook(SOLUTION)
    NotebookClient(undone, timeout=300, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    save("undone", undone)

    raises = copy.deepcopy(solution)
    _checkpoint_cell(raises, "00.3").source = "raise RuntimeError('learner bug')\n" + \
        _checkpoint_cell(raises, "00.3").source
    save("raises", raises)

    hangs = copy.deepcopy(solution)
    _code_cells(hangs)[1].source = "import time\ntime.sleep(3600)"
    save("hangs", hangs)

    # Exercise left undone, then the failing checkpoint's output hand-edited to a pass.
    faked = copy.deepcopy(undone)
    for cell_id in ("00.1", "00.2"):
        cell = _checkpoint_cell(faked, cell_id)
        reference = _checkpoint_cell(solution, cell_id)
        cell.outputs = copy.deepcopy(reference.outputs)
    save("faked", faked)
    return made
