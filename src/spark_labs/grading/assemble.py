"""Build the graded notebook: the reference's own cells, with the learner's exercise cells in their places.

The grading kernel runs every cell of the reference (setup, measurements, checkpoint cells) as the course
wrote it. From the submission it takes only what is the learner's:

* each exercise cell, whatever the learner wrote in it (a deleted one runs as the starting stub);
* cells the learner added, which run in the learner's kernel where the learner put them;
* markdown the learner wrote or edited (their notes and written answers), shown as they left it.

Changes the learner made to any other cell carry no weight; the feedback says which cells those were.
Learner cells carry metadata ``spark_labs_grader: {"runs": "learner", "slot": k}``: ``k`` indexes the plan's
slots, which the judge (:mod:`.judge`) runs on the learner's side.

Where each reference cell is in the submission is found by aligning the submission with the learner's
starting notebook (the reference built the way labs/ is built): cells the learner did not touch are the
anchors; between two anchors, the learner's cells are paired with the reference's by place (as many code
cells on both sides) or by likeness.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell

from ..notebooks.checkpoints import CHECKPOINT_ID
from .contract import Contract
from .reference import Reference, checksum

GRADER_KEY = "spark_labs_grader"
_PRINTED_LINE = re.compile(rf"Checkpoint {CHECKPOINT_ID.pattern} (passed|failed)")
SIMILAR_ENOUGH = 0.6   # a changed copy of a reference cell keeps at least this much of its text
_NEW_CELL = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}


@dataclass
class Assembled:
    notebook: nbformat.NotebookNode
    slots: list[dict]                                   # what runs on the learner's side, in order
    checkpoint_cells: dict[str, int]                    # checkpoint id -> index of its cell
    notes: list[str] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)  # written-answer id -> what the learner wrote ("": none)


def _key(cell) -> tuple[str, str]:
    return cell.cell_type, checksum(cell.source)


def _defines(cell, contract: Contract | None) -> bool:
    """A learner cell that defines one of an exercise's outputs, or names the exercise: its copy."""
    if contract is None or contract.exercise is None or cell.cell_type != "code":
        return False
    if f"Exercise {contract.exercise}" in cell.source:
        return True
    names = "|".join(re.escape(name) for name in contract.outputs)
    return bool(names) and re.search(rf"^\s*(?:(?:async\s+)?def\s+|class\s+)?(?:{names})\b\s*[(:=\[]",
                                     cell.source, re.M) is not None


def _likeness(cell, template_cell, contract: Contract | None) -> float:
    if cell.cell_type != template_cell.cell_type:
        return 0.0
    if _defines(cell, contract):
        return 1.0
    matcher = difflib.SequenceMatcher(None, cell.source, template_cell.source, autojunk=False)
    # ratio() is quadratic in the text (a 4 MB cell took 36 s); its cheap upper bounds already rule out a cell
    # that cannot be "mostly the same text".
    for bound in (matcher.real_quick_ratio, matcher.quick_ratio):
        if (upper := bound()) < SIMILAR_ENOUGH:
            return upper
    return matcher.ratio()


def _pair_gap(template_gap: list[int], submission_gap: list[int], reference: Reference, cells) -> dict[int, int]:
    """Reference index -> submission index for the changed cells between two anchors."""
    template = reference.template.cells
    pairs: dict[int, int] = {}
    for kind in ("code", "markdown"):
        ours = [i for i in template_gap if template[i].cell_type == kind]
        theirs = [j for j in submission_gap if cells[j].cell_type == kind]
        if ours and len(ours) == len(theirs):
            pairs.update(zip(ours, theirs))  # as many cells of a kind: each in its place, however rewritten
    taken = set(pairs.values())
    for i in template_gap:
        if i in pairs:
            continue
        contract = reference.contracts.get(i)
        scored = [(_likeness(cells[j], template[i], contract), j) for j in submission_gap if j not in taken]
        best = max(scored, default=(0.0, None))
        if best[1] is not None and best[0] >= SIMILAR_ENOUGH:
            pairs[i] = best[1]
            taken.add(best[1])
    return pairs


def align(reference: Reference, cells: list) -> dict[int, int]:
    """Reference cell index -> the submission cell that is its copy (intact or changed)."""
    template = reference.template.cells
    matcher = difflib.SequenceMatcher(None, [_key(c) for c in template], [_key(c) for c in cells], autojunk=False)
    pairs = {block.a + k: block.b + k for block in matcher.get_matching_blocks() for k in range(block.size)}
    anchors = sorted(pairs.items())
    bounds = [(-1, -1), *anchors, (len(template), len(cells))]
    for (a0, b0), (a1, b1) in zip(bounds, bounds[1:]):
        gap_t, gap_s = list(range(a0 + 1, a1)), list(range(b0 + 1, b1))
        if gap_t and gap_s:
            pairs.update(_pair_gap(gap_t, gap_s, reference, cells))
    return pairs


def _order(reference: Reference, pairs: dict[int, int], count: int) -> list[tuple[str, int]]:
    """Every reference cell and every added learner cell, in the order the learner sees them."""
    placed: list[tuple[float, int, str, int]] = []
    position = -1.0
    for i in range(len(reference.template.cells)):
        position = float(pairs[i]) if i in pairs else position + 1e-6  # a deleted cell stays after its neighbour
        placed.append((position, 0, "reference", i))
    added = set(range(count)) - set(pairs.values())
    placed += [(float(j), 1, "added", j) for j in added]
    placed.sort(key=lambda item: (item[0], item[1]))
    return [(kind, index) for _, _, kind, index in placed]


def _cell(cell_type: str, source: str, **grader) -> nbformat.NotebookNode:
    cell = _NEW_CELL.get(cell_type, new_raw_cell)(source=source)
    if grader:
        cell.metadata[GRADER_KEY] = grader
    return cell


def assemble(reference: Reference, submission: nbformat.NotebookNode) -> Assembled:
    cells = submission.cells
    pairs = align(reference, cells)
    out: list = []
    slots: list[dict] = []
    checkpoint_cells: dict[str, int] = {}
    changed: list[str] = []
    notes: list[str] = []
    checks = {locked.index: locked for locked in reference.locked}
    written = {}
    for index, answer in reference.answer_cells.items():
        theirs = cells[pairs[index]] if index in pairs else None
        text = theirs.source.strip() if theirs is not None and theirs.cell_type == "markdown" else ""
        written[answer] = "" if text == reference.template.cells[index].source.strip() else text

    def learner_cell(slot: dict) -> None:
        if _PRINTED_LINE.search(slot["source"]) and slot["kind"] != "learner_side":
            notes.append(f"cell {len(out) + 1} prints a checkpoint line itself: only the checkpoint cell's own "
                         f"output counts")
        out.append(_cell("code", slot["source"], runs="learner", slot=len(slots)))
        slots.append(slot)

    for kind, index in _order(reference, pairs, len(cells)):
        if kind == "added":
            cell = cells[index]
            if cell.cell_type == "code":
                learner_cell({"kind": "added", "source": cell.source})
            else:
                out.append(_cell(cell.cell_type, cell.source, runs="none", added=True))
            continue
        ours = reference.notebook.cells[index]
        theirs = cells[pairs[index]] if index in pairs else None
        contract = reference.contracts.get(index)
        if contract is not None and contract.exercise:
            source = theirs.source if theirs is not None else reference.template.cells[index].source
            learner_cell(contract.slot(source, "exercise"))
            if theirs is None:
                notes.append(f"Exercise {contract.exercise}: its cell was not found in the submission; the "
                             f"starting cell ran in its place")
        elif contract is not None:
            learner_cell(contract.slot(ours.source, "learner_side"))
        elif ours.cell_type == "code":
            for checkpoint_id in checks[index].checkpoints if index in checks else ():
                checkpoint_cells[checkpoint_id] = len(out)
            out.append(_cell("code", ours.source, runs="reference"))
            if theirs is None or checksum(theirs.source) != checksum(ours.source):
                what = checks[index].label if index in checks else "a course cell"
                changed.append(f"cell {len(out)} ({what}, {'deleted' if theirs is None else 'changed'})")
        else:
            shown = theirs if theirs is not None and theirs.cell_type == ours.cell_type else ours
            out.append(_cell(ours.cell_type, shown.source, runs="none"))
    if changed:
        notes.append("cells outside the exercises ran as the course wrote them, not as changed in the "
                     "submission: " + ", ".join(changed))
    given = {name: c.exercise for c in reference.contracts.values() for name in c.given_answers}
    for slot in slots:
        if slot["kind"] != "learner_side":  # the course's own code there may use them
            slot["given_answers"] = given
    notebook = nbformat.v4.new_notebook(cells=out, metadata={
        "kernelspec": reference.notebook.metadata.get("kernelspec", {}), "language_info": {"name": "python"}})
    return Assembled(notebook, slots, checkpoint_cells, notes, written)
