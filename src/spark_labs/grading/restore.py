"""Build the notebook that is actually executed: the learner's cells, with every locked cell restored.

The submission keeps its own cells and order (its answers, any cells the learner added), but:

* each locked cell of the reference (checkpoint cells, cells tagged ``locked``) is put back from the
  reference: an intact copy is recognised by its checksum, a changed copy (same checkpoint id, mostly the
  same text, or the cell in its place between the same untouched cells) is replaced, and a deleted one is
  re-inserted where the reference has it;
* every cell loses its saved outputs, execution counts and metadata, so tags such as ``nbval-skip``,
  ``skip-execution`` or ``raises-exception`` and pasted outputs carry no weight (``# NBVAL_SKIP`` comments
  are only comments to the executor);
* the kernel is the grader's choice, never the submission's metadata.

Where a locked cell goes is found by aligning the submission with the learner's starting notebook (the
reference built the way labs/ is built): cells the learner did not touch are the anchors.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell

from ..notebooks.checkpoints import CHECKPOINT_ID
from .reference import LockedCell, Reference, checksum

GRADER_KEY = "spark_labs_grader"  # cell metadata the grader adds (locked cells), kept in the graded notebook
SIMILAR_ENOUGH = 0.6              # a changed copy of a tagged locked cell keeps at least this much of its text
_PRINTED_LINE = re.compile(rf"Checkpoint {CHECKPOINT_ID.pattern} (passed|failed)")
_NEW_CELL = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}


@dataclass
class Prepared:
    notebook: nbformat.NotebookNode
    checkpoint_cells: dict[str, int]          # checkpoint id -> index of its restored cell
    notes: list[str] = field(default_factory=list)


def _key(cell) -> tuple[str, str]:
    return cell.cell_type, checksum(cell.source)


def _clean(cell):
    """A fresh cell with the submission's source only."""
    make = _NEW_CELL.get(cell.cell_type, new_raw_cell)
    return make(source=cell.source)


def _mentions(cell, locked: LockedCell) -> bool:
    return any(re.search(rf"(checkpoint\(\s*[\"']|Checkpoint ){re.escape(c)}(?!\d)", cell.source)
               for c in locked.checkpoints)


def _similarity(cell, locked: LockedCell) -> float:
    if cell.cell_type != "code":
        return 0.0
    if _mentions(cell, locked):
        return 1.0
    matcher = difflib.SequenceMatcher(None, cell.source, locked.source, autojunk=False)
    # ratio() is quadratic in the text (a 4 MB cell in a checkpoint's place took 36 s); its cheap upper bounds
    # already rule out a cell that cannot be "mostly the same text", whose exact score nobody needs.
    for bound in (matcher.real_quick_ratio, matcher.quick_ratio):
        if (upper := bound()) < SIMILAR_ENOUGH:
            return upper
    return matcher.ratio()


def _same_place(index: int, reference_gap, submission_gap: list[int], template_cells, cells) -> int | None:
    """When the reference and the submission have as many code cells between the same untouched cells,
    the one at the locked cell's place is its changed copy, however much was rewritten."""
    ours = [i for i in reference_gap if template_cells[i].cell_type == "code"]
    theirs = [j for j in submission_gap if cells[j].cell_type == "code"]
    return theirs[ours.index(index)] if len(ours) == len(theirs) else None


def restore_locked(reference: Reference, submission: nbformat.NotebookNode) -> Prepared:
    cells = submission.cells
    matcher = difflib.SequenceMatcher(None, [_key(c) for c in reference.template.cells], [_key(c) for c in cells],
                                      autojunk=False)
    matched = {block.a + k: block.b + k for block in matcher.get_matching_blocks() for k in range(block.size)}

    replaced: dict[int, LockedCell] = {}        # submission index -> locked cell put in its place
    inserted: dict[int, list[LockedCell]] = {}  # submission index it follows (-1: the top) -> locked cells
    for locked in reference.locked:
        if locked.index in matched:
            replaced[matched[locked.index]] = locked  # intact: same checksum
            continue
        # The untouched cells on either side, in the reference (a) and in the submission (b).
        a_before = max((i for i in matched if i < locked.index), default=-1)
        a_after = min((i for i in matched if i > locked.index), default=len(reference.template.cells))
        before = matched.get(a_before, -1)
        after = matched.get(a_after, len(cells))
        gap = [j for j in range(before + 1, after) if j not in replaced]
        best = max(gap, key=lambda j: _similarity(cells[j], locked), default=None)
        if best is None or _similarity(cells[best], locked) < SIMILAR_ENOUGH:
            best = _same_place(locked.index, range(a_before + 1, a_after), gap, reference.template.cells, cells)
        if best is not None:
            replaced[best] = locked
        else:
            inserted.setdefault(before, []).append(locked)

    out: list = []
    checkpoint_cells: dict[str, int] = {}
    notes: list[str] = []

    def put_locked(locked: LockedCell, restored: str) -> None:
        cell = new_code_cell(source=locked.source)
        cell.metadata[GRADER_KEY] = {"locked": locked.label, "sha256": locked.sha256, "restored": restored}
        for checkpoint_id in locked.checkpoints:
            checkpoint_cells[checkpoint_id] = len(out)
        if restored != "intact":
            notes.append(f"{locked.label}: the cell was {restored} in the submission; cell {len(out) + 1} of the "
                         f"graded notebook is the reference's cell")
        out.append(cell)

    for locked in inserted.get(-1, []):
        put_locked(locked, "missing")
    for j, cell in enumerate(cells):
        if j in replaced:
            put_locked(replaced[j], "intact" if checksum(cell.source) == replaced[j].sha256 else "changed")
        else:
            out.append(_clean(cell))
        for locked in inserted.get(j, []):
            put_locked(locked, "missing")

    prepared = nbformat.v4.new_notebook(cells=out, metadata={
        "kernelspec": reference.notebook.metadata.get("kernelspec", {}),
        "language_info": {"name": "python"}})
    for index, cell in enumerate(out):
        if cell.cell_type == "code" and GRADER_KEY not in cell.metadata and _PRINTED_LINE.search(cell.source):
            notes.append(f"cell {index + 1} prints a checkpoint line itself: only the checkpoint cell's own "
                         f"output counts")
    return Prepared(prepared, checkpoint_cells, notes)
