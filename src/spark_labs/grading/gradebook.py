"""Write what grading found for people: a CSV and an HTML gradebook, and one feedback file per learner.

Every file carries the same header (title, lab, date, course version, legend). Checkpoint columns are named
with what the checkpoint checks; every failure is kept with its own sentence, exception name and the cell
(as numbered in the graded notebook returned to the learner). The HTML adds a pass-rate row and a
histogram of scores.
"""

from __future__ import annotations

import csv
import html
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat

from .. import __version__
from .grade import GradeRow
from .reference import Reference
from .spreadsheet import SafeWriter, spreadsheet_safe
from .written import NO_ANSWER, score_label, scores_path

__all__ = ["Header", "read_gradebook", "spreadsheet_safe", "write_csv", "write_feedback", "write_html"]

LEGEND = {
    "passed": "every checkpoint passed when the grader ran the notebook",
    "failed": "at least one checkpoint did not pass (its sentence, exception and cell are listed)",
    "timeout": "the notebook ran past the time limit and was stopped; nothing counts",
    "error": "the grader could not grade it (the reason is given); the command exits with status 1",
}
CELLS_NOTE = ("cell N is the Nth cell from the top of the graded notebook returned to the learner; In [n] is "
              "the execution count JupyterLab shows beside it")
COLOURS = {"passed": "#d4f7d4", "failed": "#ffe3b3", "timeout": "#e0d4ff", "error": "#ffc9c9"}
MARKS = {"passed": "✅", "failed": "❌", "not run": "–"}


@dataclass(frozen=True)
class Header:
    title: str
    lab: str
    reference: str
    graded_at: str
    version: str
    profile: str

    @classmethod
    def of(cls, reference: Reference, profile: str | None) -> Header:
        return cls(lab_title(reference), reference.lab, str(reference.path),
                   datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), f"spark-labs {__version__}",
                   profile or "as set in the environment")

    def lines(self) -> list[str]:
        return [f"{self.title} · gradebook", f"lab {self.lab} · reference {self.reference}",
                f"graded {self.graded_at} · course version {self.version} · profile {self.profile}",
                "legend: " + "; ".join(f"{status} = {text}" for status, text in LEGEND.items()),
                f"cells: {CELLS_NOTE}"]


def lab_title(reference: Reference) -> str:
    for cell in reference.notebook.cells:
        match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE) if cell.cell_type == "markdown" else None
        if match:
            return match.group(1).strip()
    return f"Lab {reference.lab}"


def column(reference: Reference, checkpoint_id: str) -> str:
    description = reference.descriptions[checkpoint_id]
    return f"{checkpoint_id} · {description}" if description else checkpoint_id


def failures(row: GradeRow) -> list[str]:
    """Each failed checkpoint with its own sentence, exception and cell, then every other cell that raised."""
    lines = []
    for checkpoint_id, outcome in row.checkpoints.items():
        if outcome.state == "failed" and outcome.problem:
            lines.append(f"checkpoint {checkpoint_id} failed at {outcome.problem.sentence()}")
    told = {(o.problem.cell, o.problem.exception) for o in row.checkpoints.values() if o.problem}
    lines += [f"{p.sentence()}" for p in row.problems if (p.cell, p.exception) not in told]
    return lines


def score(row: GradeRow, reference: Reference) -> str:
    return f"{row.passed_count}/{len(reference.checkpoints)}"


def pass_rates(rows: list[GradeRow], reference: Reference) -> dict[str, str]:
    rates = {}
    for checkpoint_id in reference.checkpoints:
        passed = sum(row.checkpoints[checkpoint_id].passed for row in rows)
        rates[checkpoint_id] = f"{passed}/{len(rows)} ({passed / len(rows):.0%})" if rows else "0/0"
    return rates


def histogram(rows: list[GradeRow], reference: Reference) -> list[tuple[str, int]]:
    """(label, number of learners): one bar per score, plus timeouts and errors, which have no score."""
    counts = Counter(row.passed_count for row in rows if row.status in ("passed", "failed"))
    bars = [(f"{k}/{len(reference.checkpoints)}", counts.get(k, 0)) for k in range(len(reference.checkpoints) + 1)]
    for status in ("timeout", "error"):
        bars.append((status, sum(row.status == status for row in rows)))
    return bars


def feedback_name(student: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", student)


def write_csv(rows: list[GradeRow], reference: Reference, header: Header, path: Path,
              scores: dict | None = None) -> None:
    ids, answers = reference.checkpoints, list(reference.answers)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.writelines(f"# {line}\n" for line in header.lines())
        if answers:
            handle.write(f"# written answers: scored in {scores_path(path).name} (your scores survive re-grading)\n")
        writer = SafeWriter(handle)
        writer.writerow(["student", "status", "score", *(column(reference, c) for c in ids),
                         *(f"{a} · written" for a in answers), "failures", "notes", "reason", "seconds",
                         "peak_memory_mb", "submission"])
        for row in rows:
            writer.writerow([row.student, row.status, score(row, reference), *(row.checkpoints[c].state for c in ids),
                             *(score_label(scores or {}, row.student, a) for a in answers),
                             " | ".join(failures(row)), " | ".join(row.notes), row.reason, f"{row.seconds:.1f}",
                             "" if row.peak_rss_mb is None else f"{row.peak_rss_mb:.0f}", row.path])
        rates = pass_rates(rows, reference)
        writer.writerow(["pass rate", "", "", *(rates[c] for c in ids), *([""] * len(answers)), "", "", "", "", "",
                         ""])


def read_gradebook(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(header lines, rows) of a CSV gradebook; the last row is the pass-rate summary."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    table = [line for line in lines if not line.startswith("# ")]
    return header, list(csv.DictReader(table))


def _details(row: GradeRow) -> str:
    items = [("failure", f) for f in failures(row)] + [("note", n) for n in row.notes]
    if row.reason:
        items.insert(0, ("reason", row.reason))
    if not items:
        return ""
    body = "".join(f"<li><b>{kind}</b>: {html.escape(text)}</li>" for kind, text in items)
    return f"<details><summary>{len(items)} item{'s' * (len(items) != 1)}</summary><ul>{body}</ul></details>"


def write_html(rows: list[GradeRow], reference: Reference, header: Header, path: Path,
               feedback_dir: Path | None = None, scores: dict | None = None) -> None:
    ids = reference.checkpoints
    heads = ["student", "status", "score", *(column(reference, c) for c in ids), "details", "s", "peak MB"]
    body = []
    for row in rows:
        name = html.escape(row.student)
        if feedback_dir is not None:
            link = os.path.relpath(Path(feedback_dir, feedback_name(row.student) + ".md"), path.parent)
            name = f"<a href='{html.escape(link)}'>{name}</a>"
        memory = "" if row.peak_rss_mb is None else f"{row.peak_rss_mb:.0f}"
        plain = [row.status, score(row, reference),
                 *(f"{MARKS[row.checkpoints[c].state]} {row.checkpoints[c].state}" for c in ids)]
        cells = [name, *map(html.escape, plain), _details(row), f"{row.seconds:.0f}", memory]  # all HTML now
        body.append(f"<tr style='background:{COLOURS[row.status]}'>" + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>")
    rates = pass_rates(rows, reference)
    body.append("<tr class='summary'><td>pass rate</td><td></td><td></td>"
                + "".join(f"<td>{rates[c]}</td>" for c in ids) + "<td></td><td></td><td></td></tr>")
    bars = histogram(rows, reference)
    most = max((count for _, count in bars), default=0) or 1
    chart = "".join(f"<div class='bar'><span class='label'>{html.escape(label)}</span>"
                    f"<span class='fill' style='width:{20 * count / most:.1f}em'></span> {count}</div>"
                    for label, count in bars)
    lines = header.lines()
    legend = "".join(f"<li><b>{status}</b>: {html.escape(text)}</li>" for status, text in LEGEND.items())
    page = f"""<!doctype html><meta charset='utf-8'><title>{html.escape(lines[0])}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #999;
padding:4px 8px;vertical-align:top}} .summary{{font-weight:bold;background:#eee}} .bar{{margin:2px 0}}
.label{{display:inline-block;width:5em}} .fill{{display:inline-block;height:1em;background:#4a7}}</style>
<h1>{html.escape(lines[0])}</h1><p>{html.escape(lines[1])}<br>{html.escape(lines[2])}</p>
<h2>Legend</h2><ul>{legend}<li>checkpoint columns: ✅ passed · ❌ failed · – not run</li>
<li>{html.escape(CELLS_NOTE)}</li></ul>
<h2>Scores</h2>{chart}
<h2>Submissions</h2><table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in heads)}</tr>{''.join(body)}</table>
{_written_html(rows, reference, scores or {}, path)}"""
    path.write_text(page, encoding="utf-8")


def _written_html(rows: list[GradeRow], reference: Reference, scores: dict, path: Path) -> str:
    if not reference.answers:
        return ""
    parts = [f"<h2>Written answers</h2><p>Score them in {html.escape(scores_path(path).name)} "
             f"(column <i>score</i>); your scores survive re-grading.</p>"]
    for answer, ours in reference.answers.items():
        parts.append(f"<h3>{html.escape(answer)}</h3><p><b>Reference:</b> {html.escape(ours)}</p><table>"
                     "<tr><th>student</th><th>answer</th><th>score</th></tr>")
        parts += [f"<tr><td>{html.escape(row.student)}</td><td>{html.escape(row.written.get(answer) or NO_ANSWER)}"
                  f"</td><td>{html.escape(score_label(scores, row.student, answer))}</td></tr>" for row in rows]
        parts.append("</table>")
    return "".join(parts)


def write_feedback(row: GradeRow, reference: Reference, header: Header, folder: Path,
                   scores: dict | None = None) -> Path:
    """``<student>.md`` (what passed, what failed and where) and ``<student>.graded.ipynb`` (the notebook the
    grade came from, so cell numbers can be followed)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = feedback_name(row.student)
    graded = f"{name}.graded.ipynb"
    if row.graded is not None:
        nbformat.write(row.graded, folder / graded)
    lines = [f"# {header.title} · feedback for {row.student}", "",
             f"Lab {header.lab}, graded {header.graded_at} with {header.version} (profile {header.profile}).", "",
             (f"**Result: {row.status}**, {score(row, reference)} checkpoints passed. {row.status}: "
              f"{LEGEND[row.status]}."), ""]
    if row.reason:
        lines += [f"Why: {row.reason}", ""]
    lines += ["| checkpoint | what it checks | result |", "|---|---|---|"]
    lines += [f"| {c} | {reference.descriptions[c]} | {MARKS[o.state]} {o.state} |" for c, o in row.checkpoints.items()]
    if failures(row):
        lines += ["", "## What failed", "", *(f"- {f}" for f in failures(row))]
    if row.notes:
        lines += ["", "## Notes from the grader", "", *(f"- {n}" for n in row.notes)]
    if reference.answers:
        lines += ["", "## Your written answers", ""]
        for answer, ours in reference.answers.items():
            lines += [f"### {answer} · {score_label(scores or {}, row.student, answer)}", "",
                      "**Yours:** " + (row.written.get(answer) or NO_ANSWER), "", f"**Ours:** {ours}", ""]
    if row.graded is not None:
        lines += ["", f"Cells: {CELLS_NOTE} (`{graded}`, next to this file)."]
    path = folder / f"{name}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
