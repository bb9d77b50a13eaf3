"""Whether a run's outputs still match a notebook's recording, judged the way nbval judges them.

``labs validate`` runs nbval, which executes a notebook and compares each cell's new outputs with the recorded
ones. A rehearsal (:mod:`spark_labs.grading.rehearsal`) already executes a whole lab; :func:`output_drift` lets
it make the same comparison on that run instead of executing the lab a second time. The comparison is nbval's
own code (``IPyNbCell.compare_outputs``) with the course's sanitize file and nbval's cell markers, so a cell
this calls unchanged is one nbval would pass.
"""

from __future__ import annotations

from types import SimpleNamespace

import nbformat


def _sanitize_patterns() -> dict[str, str]:
    from nbval.plugin import get_sanitize_patterns

    from .cli import sanitize_file

    return dict(get_sanitize_patterns(sanitize_file().read_text()))


def _checked(cell) -> bool:
    """False for a cell nbval skips or whose output it ignores (comment markers or tags)."""
    from nbval.plugin import find_comment_markers, find_metadata_tags

    options = dict(find_comment_markers(cell.source))
    options.update(find_metadata_tags(cell.metadata))
    return options.get("check", True) and not options.get("skip", False) and cell.execution_count is not None


def output_drift(recorded: nbformat.NotebookNode, executed: list[nbformat.NotebookNode]) -> list[str]:
    """One line per code cell of ``recorded`` whose outputs in ``executed`` (the same cells, in order, as run
    now) nbval would not accept; empty when the run matches the recording."""
    import re

    from nbval.plugin import IPyNbCell, coalesce_streams, nocolors

    patterns = _sanitize_patterns()

    def sanitize(text):
        if not isinstance(text, str):
            return text
        for regex, replace in patterns.items():
            text = re.sub(regex, replace, text)
        return text

    skip = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
            "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")  # nbval's defaults
    problems = []
    for index, (old, new) in enumerate(zip(recorded.cells, executed)):
        if old.cell_type != "code" or not _checked(old):
            continue
        found: list[str] = []
        judge = SimpleNamespace(parent=SimpleNamespace(skip_compare=skip, sanitize_patterns=patterns),
                                colors=nocolors, sanitize=sanitize, comparison_traceback=[],
                                format_output_compare=lambda key, left, right, found=found: found.append(
                                    f"{key}: recorded {left!r} but now {right!r}"))
        same = IPyNbCell.compare_outputs(judge, coalesce_streams([nbformat.from_dict(o) for o in new.outputs]),
                                         coalesce_streams([nbformat.from_dict(o) for o in old.outputs]))
        if not same:
            detail = "; ".join(found) or " ".join(line.strip() for line in judge.comparison_traceback)
            problems.append(f"cell {index}: {detail[:600]}")
    return problems
