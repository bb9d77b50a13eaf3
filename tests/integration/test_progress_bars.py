"""Progress bars in a real Jupyter kernel (nbclient) leave text, not widgets: a saved notebook keeps no widget
view whose model is gone, which JupyterLab shows as "Error displaying widget: model not found" after
reopening."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

WIDGET = "application/vnd.jupyter.widget-view+json"


def _run(*sources: str) -> list[list[dict]]:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True).execute()
    return [cell.outputs for cell in notebook.cells]


def _texts(outputs: list[dict]) -> list[str]:
    return [output.get("data", {}).get("text/plain", output.get("text", "")) for output in outputs]


def test_a_finished_bar_leaves_text_and_no_widget():
    done, kept, stopped, threaded, transformers, plain = _run(
        "import spark_labs.notebooks  # as every lab's first cell does\n"
        "from spark_labs.progress import progress_bar\n"
        "for _ in progress_bar(range(3), desc='quiet', leave=False): pass",
        "for _ in progress_bar(range(3), desc='kept', unit='run'): pass",
        "bar = progress_bar(total=5, desc='stopped', leave=False)\nbar.update(2)\nbar.close()",
        # moved from another thread, as the load generator's bar is: still one output, updated in place
        "import threading, time\nbar = progress_bar(total=4, desc='threaded', leave=True, mininterval=0)\n"
        "worker = threading.Thread(target=lambda: [bar.update(1) or time.sleep(0.01) for _ in range(4)])\n"
        "worker.start(); worker.join(); bar.close()",
        # transformers imported after spark_labs.notebooks: its own bars (a learner's from_pretrained) too
        "from transformers.utils import logging\nfor _ in logging.tqdm(range(3), desc='Loading weights'): pass",
        "from tqdm.auto import tqdm\nfor _ in tqdm(range(2), leave=False): pass")
    for outputs in (done, kept, stopped, threaded, transformers):
        assert len(outputs) == 1 and not any(WIDGET in output.get("data", {}) for output in outputs), outputs
    assert _texts(done) == [""]
    assert _texts(kept)[0].startswith("kept: 100%|") and "3/3" in _texts(kept)[0]
    assert _texts(stopped)[0].startswith("stopped:  40%|") and "2/5" in _texts(stopped)[0]
    assert _texts(threaded)[0].startswith("threaded: 100%|") and "4/4" in _texts(threaded)[0]
    assert _texts(transformers)[0].startswith("Loading weights: 100%|")
    # the control: tqdm's own notebook bar does leave a widget view behind
    assert any(WIDGET in output.get("data", {}) for output in plain)
