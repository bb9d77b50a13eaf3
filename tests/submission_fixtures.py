"""Lab-00 submissions made from the real reference, one per way a submission can be honest or cheat.

Each is what a learner could hand in: built from the reference solution (``solutions/``) or from the
learner's starting notebook (the reference built the way ``labs/`` is), then edited. Checkpoint ids are
looked up in the reference by what their cells check, never hard-coded, so renumbering does not break them.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from spark_labs.notebooks.build import build_notebook
from spark_labs.notebooks.checkpoints import ids_called

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "00_prerequisites.ipynb"
# A unique word in the command line of the process the "sneaky" submission leaves running.
LEFTOVER_MARK = f"leftover-{uuid.uuid4().hex[:12]}"


def checkpoint_id(needle: str) -> str:
    """The id of the reference's checkpoint cell whose code contains ``needle``."""
    for cell in nbformat.read(SOLUTION, as_version=4).cells:
        if cell.cell_type == "code" and ids_called(cell.source) and needle in cell.source:
            return ids_called(cell.source)[0]
    raise LookupError(f"no checkpoint cell in {SOLUTION.name} contains {needle!r}")


def _checkpoint_cells(notebook):
    return [c for c in notebook.cells if c.cell_type == "code" and ids_called(c.source)]


def _passed_lines(solution) -> dict[str, str]:
    """The passed line each checkpoint printed when the reference was recorded (or the one it would print)."""
    lines = {}
    for cell in _checkpoint_cells(solution):
        cid = ids_called(cell.source)[0]
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        lines[cid] = next((line for line in text.splitlines() if f"Checkpoint {cid} passed" in line),
                          f"✅ Checkpoint {cid} passed: done")
    return lines


def _paste_outputs(target, solution) -> None:
    """Copy the reference's saved outputs and execution counts into the matching cells of ``target``."""
    for mine, theirs in zip(target.cells, solution.cells):
        if mine.cell_type == "code" and theirs.cell_type == "code":
            mine.outputs = copy.deepcopy(theirs.outputs)
            mine.execution_count = theirs.execution_count


def make_submissions(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    solution = nbformat.read(SOLUTION, as_version=4)
    start = build_notebook(SOLUTION)  # what a learner starts from (exercises raise NotImplementedError)
    passed = _passed_lines(solution)
    made: dict[str, Path] = {}

    def save(name: str, notebook) -> None:
        made[name] = folder / f"{name}.ipynb"
        nbformat.write(notebook, made[name])

    save("honest_complete", solution)

    buggy = copy.deepcopy(solution)  # every exercise done, one quiz answer wrong
    answers = next(c for c in buggy.cells if c.cell_type == "code" and '"sse":' in c.source)
    answers.source = answers.source.replace('"sse": 1', '"sse": 0')
    save("honest_buggy", buggy)

    printed = copy.deepcopy(start)  # checkpoint cells replaced by a print of the expected line
    _paste_outputs(printed, solution)
    for cell in _checkpoint_cells(printed):
        cell.source = f"print({passed[ids_called(cell.source)[0]]!r})"
    save("print_instead_of_checkpoint", printed)

    redefined = copy.deepcopy(start)  # checkpoint() redefined right after the setup cell, and a line printed
    first_code = next(i for i, c in enumerate(redefined.cells) if c.cell_type == "code")
    redefined.cells.insert(first_code + 1, new_code_cell(
        "def checkpoint(checkpoint_id, *args, **kwargs):\n"
        "    print(f'✅ Checkpoint {checkpoint_id} passed: all good')\n"
        f"print({next(iter(passed.values()))!r})\n"))
    save("checkpoint_redefined", redefined)

    skipped = copy.deepcopy(start)  # every code cell marked to be skipped, the reference's outputs pasted in
    _paste_outputs(skipped, solution)
    for cell in skipped.cells:
        if cell.cell_type == "code":
            cell.source = "# NBVAL_SKIP\n" + cell.source
            cell.metadata["tags"] = ["nbval-skip", "skip-execution", "raises-exception"]
    save("nbval_skip_markers", skipped)

    reduced = nbformat.v4.new_notebook(cells=[new_code_cell(f"print({line!r})") for line in passed.values()])
    save("only_checkpoint_prints", reduced)

    pasted = copy.deepcopy(start)  # unfinished, with the solution's outputs pasted in
    _paste_outputs(pasted, solution)
    save("solution_outputs_pasted", pasted)

    sneaky = copy.deepcopy(start)  # reaches outside its folder, reserves memory, leaves a process running
    sneaky.cells.append(new_code_cell(
        "import mmap, os, subprocess, sys\n"
        "open('../escaped.txt', 'w').write('written outside the submission folder')\n"
        "print('other submission readable:', os.path.exists('honest_complete.ipynb') "
        "or os.path.exists('../honest_complete.ipynb'))\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{LEFTOVER_MARK}'], "
        "start_new_session=True)\n"
        "reserved = mmap.mmap(-1, int(os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') * 0.75))\n"
        "print('reserved three quarters of the memory')\n"))
    save("sneaky", sneaky)

    runaway = copy.deepcopy(start)  # output that never stops
    runaway.cells.append(new_code_cell("while True:\n    print('spam ' * 40)\n"))
    save("runaway_output", runaway)
    return made


def make_hanging(folder: Path) -> Path:
    """A notebook that starts a helper process and then never finishes."""
    notebook = nbformat.v4.new_notebook(cells=[new_code_cell(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{LEFTOVER_MARK}-hang'])\n"
        "time.sleep(3600)\n")])
    path = folder / "hangs.ipynb"
    nbformat.write(notebook, path)
    return path
