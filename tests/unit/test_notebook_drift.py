"""output_drift: nbval's comparison of a run with a recording, used by the rehearsals instead of a second run."""

from __future__ import annotations

import copy

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from spark_labs.notebooks.drift import output_drift


def recorded(*texts: str, tags: tuple[str, ...] = ()) -> object:
    cells = [new_markdown_cell("# a lab")]
    for number, text in enumerate(texts, start=1):
        cell = new_code_cell(f"print({number})", execution_count=number,
                             outputs=[new_output("stream", name="stdout", text=text)])
        cell.metadata["tags"] = list(tags)
        cells.append(cell)
    return new_notebook(cells=cells)


def run_printing(notebook, *texts: str) -> list:
    cells = copy.deepcopy(notebook.cells)
    for cell, text in zip(cells[1:], texts):
        cell.outputs = [new_output("stream", name="stdout", text=text)]
    return cells


def test_the_same_outputs_are_no_drift():
    notebook = recorded("capacity: 640 tokens\n", "pass\n")
    assert output_drift(notebook, run_printing(notebook, "capacity: 640 tokens\n", "pass\n")) == []


def test_a_changed_number_is_drift_naming_the_cell_and_both_texts():
    notebook = recorded("capacity: 640 tokens\n", "pass\n")
    drift = output_drift(notebook, run_printing(notebook, "capacity: 768 tokens\n", "pass\n"))
    assert len(drift) == 1 and drift[0].startswith("cell 1:") and "640" in drift[0] and "768" in drift[0]


def test_what_the_sanitize_file_masks_is_no_drift():
    notebook = recorded("TTFT 41.2 ms at 127.0.0.1:8001, 3.1 GiB\n")
    assert output_drift(notebook, run_printing(notebook, "TTFT 57.9 ms at 127.0.0.1:9123, 2.9 GiB\n")) == []


def test_an_error_where_the_recording_has_none_is_drift():
    notebook = recorded("pass\n")
    cells = copy.deepcopy(notebook.cells)
    cells[1].outputs = [new_output("error", ename="KeyError", evalue="'ttft'", traceback=[])]
    assert output_drift(notebook, cells)


def test_a_missing_output_is_drift():
    notebook = recorded("pass\n")
    cells = copy.deepcopy(notebook.cells)
    cells[1].outputs = []
    assert output_drift(notebook, cells)


def test_cells_nbval_ignores_are_ignored():
    notebook = recorded("capacity: 640 tokens\n", tags=("nbval-ignore-output",))
    assert output_drift(notebook, run_printing(notebook, "capacity: 768 tokens\n")) == []


def test_only_the_cells_run_are_compared():
    notebook = recorded("pass\n", "second\n")
    assert output_drift(notebook, run_printing(notebook, "pass\n")[:2]) == []
