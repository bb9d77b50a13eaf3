"""Build learner notebooks from reference solutions.

In a solution's code cell, the exercise sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION``.
The learner's copy keeps the ``# HINT:`` lines of that block and gets a ``raise NotImplementedError``
naming the exercise instead of the code — or, where a block has ``# STUB:`` lines, those lines
uncommented (a generator must stay a generator, so its stub yields the exercise's message instead).
A markdown cell tagged ``answer`` (metadata ``spark_labs.answer: "NN.x"``) holds a model answer in the
solution; the learner's copy holds a placeholder to write over. Outputs and execution counts are stripped,
metadata is reduced to what Jupyter needs, and the JSON is written deterministically, so building twice
gives identical bytes and ``labs check`` can tell a stale labs/ from a fresh one.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION(?:\s+(?P<name>.+))?$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
HINT = re.compile(r"^\s*# HINT:")
STUB = re.compile(r"^(\s*)# STUB: ?(.*)$")
KEEP_CELL_METADATA = ("tags",)
ANSWER_TAG = "answer"  # a markdown cell the learner writes (an explanation, a prediction in words)


def answer_placeholder(answer_id: str) -> str:
    """What a written-answer cell holds in the learner's copy (the solution holds a model answer)."""
    return (f"✍️ **Your answer ({answer_id})**: double-click this cell, write your answer in place of this "
            f"line, then press Shift+Enter. Do it before you open *Compare with ours* below.")


def answer_id(cell) -> str | None:
    """The id of a written-answer cell (``NN.x``), or None for any other cell."""
    if cell.get("cell_type") != "markdown" or ANSWER_TAG not in cell.get("metadata", {}).get("tags", []):
        return None
    return cell.get("metadata", {}).get("spark_labs", {}).get("answer")


class SolutionMarkerError(ValueError):
    pass


def strip_solution(source: str, exercise: str) -> str:
    """Replace each marked block of ``source`` with its hints and its stub (a NotImplementedError unless the
    block gives ``# STUB:`` lines)."""
    out: list[str] = []
    inside = False
    indent = ""
    name = exercise
    stub: list[str] = []
    for number, line in enumerate(source.splitlines(), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise SolutionMarkerError(f"{exercise}: nested BEGIN SOLUTION at line {number}")
            inside, indent, name, stub = True, begin.group(1), begin.group("name") or exercise, []
            continue
        if END.match(line):
            if not inside:
                raise SolutionMarkerError(f"{exercise}: END SOLUTION without BEGIN at line {number}")
            out.extend(stub or [f'{indent}raise NotImplementedError("{name}: replace this line with your code")'])
            inside = False
            continue
        if inside and (stub_line := STUB.match(line)):
            stub.append(stub_line.group(1) + stub_line.group(2))
            continue
        if not inside or HINT.match(line):
            out.append(line)
    if inside:
        raise SolutionMarkerError(f"{exercise}: BEGIN SOLUTION is never closed")
    return "\n".join(out)


def build_notebook(solution: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(solution, as_version=4)
    lab_id = solution.stem.split("_", 1)[0]
    exercise_number = 0
    for cell in notebook.cells:
        written = answer_id(cell)
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}
        cell.pop("id", None)
        if written:
            cell.source = answer_placeholder(written)
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        if "# BEGIN SOLUTION" in cell.source:
            exercise_number += 1
            cell.source = strip_solution(cell.source, f"Exercise {lab_id}.{exercise_number}")
    notebook.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}}
    notebook.nbformat_minor = 4  # cell ids removed: keep the schema version that has none
    return notebook


def render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook) + "\n"


def build_all(solutions: Path, labs: Path) -> list[Path]:
    labs.mkdir(parents=True, exist_ok=True)
    written = []
    for solution in sorted(solutions.glob("*.ipynb")):
        target = labs / solution.name
        target.write_text(render(build_notebook(solution)), encoding="utf-8")
        written.append(target)
    return written


def stale_labs(solutions: Path, labs: Path) -> list[str]:
    """Names of labs/ notebooks that are missing or differ from a fresh build."""
    problems = []
    for solution in sorted(solutions.glob("*.ipynb")):
        target = labs / solution.name
        expected = render(build_notebook(solution))
        if not target.exists() or target.read_text(encoding="utf-8") != expected:
            problems.append(solution.name)
    return problems
