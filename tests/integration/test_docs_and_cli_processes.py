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


def test_validate_keeps_every_message_of_a_cell_that_prints_a_lot(tmp_path):
    """A cell that prints 10,000 lines, recorded, then validated as an instructor types it. nbval alone loses
    the cell's end (ZeroMQ drops IOPub messages past its high-water mark while nbval waits for the reply) and
    fails it as an output timeout — lab 01's engine loop did so on a GPU; ``labs validate`` must pass it."""
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell("for i in range(10_000):\n    print(i, flush=True)"),
                                   new_code_cell("print('the next cell')")])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()  # the recording
    nbformat.write(notebook, tmp_path / "loud.ipynb")

    bare = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "loud.ipynb"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bare.returncode != 0 and "exceeded waiting for output" in bare.stdout, bare.stdout[-2000:]

    script = Path(sys.executable).parent / "spark-labs"
    result = subprocess.run([str(script), "labs", "validate", "loud.ipynb", "--out", "reports"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    summary = (tmp_path / "reports" / "summary.txt").read_text()
    assert result.returncode == 0 and "loud.ipynb: passed" in summary, result.stdout[-2000:]
