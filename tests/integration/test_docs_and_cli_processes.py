from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_docs_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "index.html").is_file()


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "spark-labs"  # the venv's bin, whether or not it is on PATH
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip()


def test_validate_keeps_every_message_of_a_cell_that_redraws_a_lot(tmp_path):
    """A cell that redraws one output 30,000 times (as a progress bar does), recorded, then validated as an
    instructor types it. ``labs validate`` must pass it: every message kept (ZeroMQ drops IOPub messages past its
    high-water mark while nbval waits for the reply, the cell's end among them: lab 01's engine loop on a GPU)
    and every update applied (nbval alone compares the output's first state with the recording's last). nbval
    alone fails it, by a timeout where messages were dropped or by the first state where none were."""
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell("from IPython.display import display\n"
                                                 "shown = display('start', display_id=True)\n"
                                                 "for i in range(30_000):\n    shown.update(i)"),
                                   new_code_cell("print('the next cell')")])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()  # the recording
    assert notebook.cells[0].outputs[0]["data"]["text/plain"] == "29999"
    nbformat.write(notebook, tmp_path / "loud.ipynb")

    bare = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "loud.ipynb"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bare.returncode != 0 and ("exceeded waiting for output" in bare.stdout or "'start'" in bare.stdout), \
        bare.stdout[-2000:]

    script = Path(sys.executable).parent / "spark-labs"
    result = subprocess.run([str(script), "labs", "validate", "loud.ipynb", "--out", "reports"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    summary = (tmp_path / "reports" / "summary.txt").read_text()
    assert result.returncode == 0 and "loud.ipynb: passed" in summary, result.stdout[-2000:]
