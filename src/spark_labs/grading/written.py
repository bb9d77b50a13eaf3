"""Written answers: what each learner wrote, beside the reference's answer, and the instructor's score.

A lab's written-answer cells (markdown tagged ``answer``, see :mod:`..notebooks.build`) are read from each
submission, never executed, and collected into a scores file beside the gradebook (``gradebook.csv`` →
``gradebook.written.csv``), one row per learner and answer. The file is the instructor's: they fill
``score`` and ``comment``, in a spreadsheet or an editor. Grading again keeps both: the grader only adds rows
it has not seen and refreshes the learner's text; when a scored answer's text changed since, the row says
``changed_since_scored: yes`` (the score stays until the instructor looks again).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from .grade import GradeRow
from .reference import Reference
from .spreadsheet import FORMULA_START, SafeWriter

COLUMNS = ["student", "answer", "learner_answer", "reference_answer", "score", "comment", "changed_since_scored",
           "answer_sha256"]
NO_ANSWER = "(no answer written)"


def scores_path(gradebook: Path) -> Path:
    return gradebook.with_name(gradebook.stem + ".written.csv")


def _sha(text: str) -> str:
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


def read_scores(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """The scores file as (student, answer id) -> its row; empty when there is none yet."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {(row["student"], row["answer"]): row for row in csv.DictReader(handle)}


def merge_scores(rows: list[GradeRow], reference: Reference, path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Add this run's answers to the scores file at ``path``, keeping every score and comment; return it."""
    known = read_scores(path)
    for row in rows:
        for answer, text in row.written.items():
            shown = text or NO_ANSWER
            old = known.get((row.student, answer), {})
            scored = bool(old.get("score", "").strip())
            changed = scored and old.get("answer_sha256") != _sha(shown)
            known[(row.student, answer)] = {
                "student": row.student, "answer": answer, "learner_answer": shown,
                "reference_answer": reference.answers.get(answer, ""), "score": old.get("score", ""),
                "comment": old.get("comment", ""),
                "changed_since_scored": "yes" if changed or old.get("changed_since_scored") == "yes" else "",
                # Kept as it was when scored, so the change stays visible until the instructor re-scores.
                "answer_sha256": old["answer_sha256"] if scored and old.get("answer_sha256") else _sha(shown)}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = SafeWriter(handle)
        writer.writerow(COLUMNS)
        for entry in sorted(known.values(), key=lambda e: (e["student"], e["answer"])):
            writer.writerow([_unquoted(entry.get(column, "")) for column in COLUMNS])
    return known


def _unquoted(value: str) -> str:
    """A cell as written before, without the quote the formula guard added (it is added again on write)."""
    return value[1:] if value.startswith("'") and value[1:2] and value[1:2] in FORMULA_START else value


def score_label(scores: dict[tuple[str, str], dict[str, str]], student: str, answer: str) -> str:
    entry = scores.get((student, answer), {})
    if entry.get("learner_answer", NO_ANSWER) == NO_ANSWER:
        return "no answer"
    label = entry.get("score", "").strip() or "to score"
    return label + (" (answer changed since scored)" if entry.get("changed_since_scored") == "yes" else "")
