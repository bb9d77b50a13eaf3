"""The instructor's reference notebook: which cells are locked, and what each checkpoint checks.

The reference (``solutions/NN_*.ipynb`` or an instructor's folder) is the source of truth. A locked cell is
one the learner may not change: every code cell that calls ``checkpoint("NN.M", ...)``, and any cell the
lab tags ``locked``. Nothing here needs extra notebook metadata: checkpoint cells are recognised by the call
they make, and each locked cell is identified by its checkpoint ids (or its position) plus the SHA-256 of
its source, which is how a submission's copy is recognised as intact.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..notebooks.build import answer_id, build_notebook
from ..notebooks.checkpoints import CHECKPOINT_ID, ids_called, parse_line
from .contract import Contract, ContractError, read_contract

LOCKED_TAG = "locked"
EXERCISE_MARK = "# BEGIN SOLUTION"


class ReferenceError(ValueError):
    """The reference notebook cannot be graded against; the message says which cell and what to change."""


def checksum(source: str) -> str:
    """SHA-256 of a cell's source with trailing whitespace ignored (editors add or drop final newlines)."""
    normal = "\n".join(line.rstrip() for line in source.strip().splitlines())
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LockedCell:
    index: int                  # position in the reference notebook
    source: str
    checkpoints: tuple[str, ...]  # ids this cell checks (empty for a cell tagged locked)
    sha256: str

    @property
    def label(self) -> str:
        if self.checkpoints:
            return "checkpoint " + ", ".join(self.checkpoints)
        return f"locked cell {self.index + 1}"


@dataclass(frozen=True)
class Reference:
    path: Path
    lab: str
    notebook: nbformat.NotebookNode
    template: nbformat.NotebookNode   # what learners started from (labs/ is built the same way)
    locked: tuple[LockedCell, ...]
    descriptions: dict[str, str]      # checkpoint id -> what it checks, in notebook order
    contracts: dict[int, Contract]    # cell index -> what runs on the learner's side there (exercises)
    answers: dict[str, str]           # written-answer id ("02.a") -> the reference's model answer

    @property
    def learner_network(self) -> str:
        """"own" (the learner's kernel gets a network of its own, loopback only) or "host" (a lab whose
        exercises serve or call the grading kernel's engines: notebook metadata spark_labs.learner_network)."""
        return self.notebook.metadata.get("spark_labs", {}).get("learner_network", "own")

    @property
    def answer_cells(self) -> dict[int, str]:
        """Cell index -> written-answer id, in notebook order."""
        return {i: answer_id(c) for i, c in enumerate(self.notebook.cells) if answer_id(c)}

    @property
    def checkpoints(self) -> list[str]:
        return list(self.descriptions)


def find_reference(solutions: Path, lab: str) -> Path:
    """``solutions/<lab>_*.ipynb``, or a ReferenceError naming what was looked for and how to fix it."""
    if not CHECKPOINT_ID.fullmatch(f"{lab}.1"):
        raise ReferenceError(f"--lab {lab!r} is not a two-digit lab number such as 00 or 05")
    if not solutions.is_dir():
        raise ReferenceError(f"no reference folder {solutions}/ here (working directory {Path.cwd()}): run from "
                             f"the course checkout or pass --solutions DIR (the instructor's reference notebooks)")
    found = sorted(solutions.glob(f"{lab}_*.ipynb"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} candidates ({', '.join(p.name for p in found)}) for the"
        raise ReferenceError(f"{what} reference notebook {solutions}/{lab}_*.ipynb: keep exactly one per lab")
    return found[0]


def load_reference(path: Path) -> Reference:
    notebook = nbformat.read(path, as_version=4)
    lab = path.stem.split("_", 1)[0]
    locked: list[LockedCell] = []
    owner: dict[str, int] = {}
    contracts: dict[int, Contract] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        try:
            contract = read_contract(cell, index, lab, f"{path.name}, cell {index + 1}")
        except ContractError as exc:
            raise ReferenceError(str(exc)) from None
        if contract is not None:
            contracts[index] = contract
        ids = tuple(ids_called(cell.source))
        tagged = LOCKED_TAG in cell.get("metadata", {}).get("tags", [])
        if not ids and not tagged:
            continue
        where = f"{path.name}, cell {index + 1}"
        for checkpoint_id in ids:
            if not CHECKPOINT_ID.fullmatch(checkpoint_id) or not checkpoint_id.startswith(f"{lab}."):
                raise ReferenceError(f"{where} calls checkpoint({checkpoint_id!r}): ids in lab {lab} are {lab}.M "
                                     f"(exercise {lab}.M is checked by checkpoint {lab}.M)")
            if checkpoint_id in owner:
                raise ReferenceError(f"{where} checks {checkpoint_id} again (cell {owner[checkpoint_id] + 1} "
                                     f"already does): each checkpoint lives in one cell")
            owner[checkpoint_id] = index
        if EXERCISE_MARK in cell.source:
            raise ReferenceError(f"{where} is locked ({'checkpoint ' + ', '.join(ids) if ids else 'tagged'}) but also "
                                 f"holds an exercise ({EXERCISE_MARK}): put the learner's code in its own cell")
        locked.append(LockedCell(index, cell.source, ids, checksum(cell.source)))
    if not owner:
        raise ReferenceError(f"{path} has no checkpoint cell (a code cell calling checkpoint(\"{lab}.1\", ...)): "
                             f"nothing to grade")
    descriptions = {checkpoint_id: _description(notebook, index, checkpoint_id)
                    for checkpoint_id, index in sorted(owner.items(), key=lambda item: (item[1], item[0]))}
    answers = {answer_id(c): c.source.strip() for c in notebook.cells if answer_id(c)}
    return Reference(path, lab, notebook, build_notebook(path), tuple(locked), descriptions, contracts, answers)


def _description(notebook, index: int, checkpoint_id: str) -> str:
    """What a checkpoint checks: the text its passed line printed when the reference was recorded, else the
    pass text in its call (f-string fields shown as written)."""
    cell = notebook.cells[index]
    for output in cell.get("outputs", []):
        for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
            result = parse_line(line)
            if result and result.checkpoint == checkpoint_id and result.passed:
                return result.detail
    return _pass_text_in_call(cell.source, checkpoint_id)


def _pass_text_in_call(source: str, checkpoint_id: str) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "checkpoint" and len(node.args) >= 3
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == checkpoint_id):
            text = node.args[2]
            if isinstance(text, ast.Constant) and isinstance(text.value, str):
                return text.value
            if isinstance(text, ast.JoinedStr):
                return "".join(part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
                               for part in text.values)
    return ""
