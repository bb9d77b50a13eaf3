"""What each exercise takes and gives: the contract the judge (:mod:`.judge`) enforces at the wall.

An exercise cell of a reference notebook (one holding ``# BEGIN SOLUTION``) declares in its metadata::

    "spark_labs": {"exercise": "02.1",
                   "inputs": {"lengths": "value", "BATCH": "value"},
                   "outputs": {"wasted_fraction": "function", "waste": "value"}}

* **inputs**: names from earlier cells the learner's cell reads, sent to the learner's kernel by value
  (``endpoint``: an engine handle, of which only its addresses travel);
* **outputs**: names later cells need, sent back as plain data (``value``), called across as functions
  (``function``), kept in the learner's kernel and reached through it (``object``: a running server), or
  rebuilt by the judge from the settings they carry (``quantized_model``);
* ``"replay": false`` when the reference's statements after the learner's part cannot run in the judge
  (they use a class the learner wrote);
* ``"given_answers"``: names of the course's own functions that compute this exercise's answer (the library
  needs them for its checks and later sections). A learner cell that imports one of them from the package, or
  reads it off a package module, fails with a message saying the exercise is theirs to write
  (:func:`library_answers_used`).

A cell whose given code must run next to the learner's objects (it wires them into an app) is declared
``{"learner_side": true, "inputs": ..., "outputs": ...}``: the reference's code runs in the learner's kernel,
and only its imports run on the judge's side too.

The reference cell is split by statement: the top-level statements holding a ``BEGIN/END SOLUTION`` block are
the learner's part; those before it (*setup*) and after it (*after*) are the reference's own code, which
the judge also runs on its side.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from ..notebooks.checkpoints import CHECKPOINT_ID

META_KEY = "spark_labs"
INPUT_KINDS = ("value", "endpoint")
OUTPUT_KINDS = ("value", "function", "object", "quantized_model")
_BEGIN = re.compile(r"^\s*# BEGIN SOLUTION")
_END = re.compile(r"^\s*# END SOLUTION")


class ContractError(ValueError):
    """A reference cell's contract is missing or malformed; the message names the cell and the fix."""


@dataclass(frozen=True)
class Contract:
    index: int                             # the cell's position in the reference notebook
    exercise: str | None                   # "02.1"; None for a learner-side cell
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    setup: str = ""
    after: str = ""
    learner_side: bool = False
    given_answers: tuple[str, ...] = ()

    def slot(self, source: str, kind: str) -> dict:
        """What the judge needs to run this cell with ``source`` on the learner's side."""
        return {"kind": kind, "exercise": self.exercise, "source": source, "inputs": self.inputs,
                "outputs": self.outputs, "setup": self.setup, "after": self.after}


def solution_lines(source: str) -> list[tuple[int, int]]:
    """1-based (first, last) line numbers of each BEGIN..END SOLUTION block."""
    blocks, start = [], None
    for number, line in enumerate(source.splitlines(), 1):
        if _BEGIN.match(line):
            start = number
        elif _END.match(line) and start is not None:
            blocks.append((start, number))
            start = None
    return blocks


def split_statements(source: str, where: str) -> tuple[str, str]:
    """(setup, after): the reference's statements before and after the ones holding the learner's part."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ContractError(f"{where}: the exercise cell is not plain Python ({exc.msg}, line {exc.lineno})") \
            from None
    blocks = solution_lines(source)
    lines = source.splitlines()

    def blocks_of(node: ast.stmt) -> list[tuple[int, int]]:
        """Blocks the statement sits in (top-level learner code) or that begin inside it (a function body)."""
        return [(first, last) for first, last in blocks
                if first <= node.lineno <= last or node.lineno <= first <= node.end_lineno]

    def holds_answer(node: ast.stmt) -> bool:
        return bool(blocks_of(node))

    answers = [i for i, node in enumerate(tree.body) if holds_answer(node)]
    if not answers:
        raise ContractError(f"{where}: no statement holds the BEGIN/END SOLUTION block")
    first, last = tree.body[answers[0]], tree.body[answers[-1]]
    start = min([first.lineno, *[d.lineno for d in getattr(first, "decorator_list", [])]])
    setup = "\n".join(lines[:start - 1])
    end = max([last.end_lineno, *[b for _, b in blocks_of(last)]])  # END may sit below a function's last line
    after = "\n".join(lines[end:])
    return setup, after


def imports_of(source: str, where: str) -> str:
    """The top-level import statements of a cell, as source."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ContractError(f"{where}: the cell is not plain Python ({exc.msg}, line {exc.lineno})") from None
    return "\n".join(ast.get_source_segment(source, node) for node in tree.body
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def _kinds(value, allowed: tuple[str, ...], what: str, where: str) -> dict[str, str]:
    if isinstance(value, list):
        value = dict.fromkeys(value, "value")
    if not isinstance(value, dict):
        raise ContractError(f"{where}: {what} must be a dict of name -> kind")
    for name, kind in value.items():
        if not str(name).isidentifier() or kind not in allowed:
            raise ContractError(f"{where}: {what} {name!r}: {kind!r} is not one of {', '.join(allowed)}")
    return dict(value)


def read_contract(cell, index: int, lab: str, where: str) -> Contract | None:
    """The contract of a reference code cell; None for a cell the judge runs itself."""
    declared = cell.get("metadata", {}).get(META_KEY)
    is_exercise = "# BEGIN SOLUTION" in cell.source
    if declared is None:
        if is_exercise:
            raise ContractError(f"{where} holds an exercise but declares no contract: add metadata "
                                f"{META_KEY}.exercise, .inputs and .outputs (see spark_labs.grading.contract)")
        return None
    inputs = _kinds(declared.get("inputs", {}), INPUT_KINDS, "input", where)
    outputs = _kinds(declared.get("outputs", {}), OUTPUT_KINDS, "output", where)
    if declared.get("learner_side"):
        # Its imports run on the judge's side too: later reference cells use what it imported.
        return Contract(index, None, inputs, outputs, setup=imports_of(cell.source, where), learner_side=True)
    exercise = declared.get("exercise")
    if not is_exercise or not isinstance(exercise, str) or not CHECKPOINT_ID.fullmatch(exercise) \
            or not exercise.startswith(f"{lab}."):
        raise ContractError(f"{where}: an exercise contract needs a BEGIN SOLUTION block and an id {lab}.M "
                            f"(found {exercise!r})")
    setup, after = split_statements(cell.source, where)
    if declared.get("replay") is False:
        after = ""
    given = declared.get("given_answers", [])
    if not isinstance(given, list) or not all(isinstance(name, str) and name.isidentifier() for name in given):
        raise ContractError(f"{where}: given_answers must be a list of the package's function names")
    return Contract(index, exercise, inputs, outputs, setup, after, given_answers=tuple(given))


PACKAGE = "spark_labs"


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def library_answers_used(source: str, given: dict[str, str]) -> list[tuple[str, str]]:
    """``(name, exercise)`` for each of the course's own answers (``given``: name -> exercise) that ``source``
    takes from the package: ``from spark_labs… import name`` (any alias), ``module.name`` on a name bound to a
    package module, or a bare ``name`` after a star import from the package that the cell does not define
    itself. A static check: it stops the obvious shortcut, not a learner set on hiding one."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # running the cell reports it
    modules, used, star = set(), set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.asname or alias.name.split(".")[0] for alias in node.names
                           if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
            for alias in node.names:
                if alias.name == "*":
                    star = True
                elif alias.name in given:
                    used.add(alias.name)
                else:
                    modules.add(alias.asname or alias.name)  # a module (or another name, harmless)
    defined = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in given and _root_name(node) in modules:
            used.add(node.attr)
        elif star and isinstance(node, ast.Name) and node.id in given and node.id not in defined:
            used.add(node.id)
    return sorted((name, given[name]) for name in used)
