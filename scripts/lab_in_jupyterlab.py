"""A lab as a learner sees it: JupyterLab in Chromium, Run All, save, the kernel shut down, the notebook opened
again. Screenshots of each stage and a report per notebook land in OUT.

    .venv/bin/python scripts/lab_in_jupyterlab.py /tmp/jl labs/02_vllm_serving.ipynb solutions/05_production_api.ipynb

A path under labs/ is the learner's copy (Run All stops at the first unfinished exercise, as the course map
says); a path under solutions/ is copied in as ``solved_NN_*.ipynb`` and runs to its end. Everything runs in a
copy of labs/ inside OUT, so nothing in the repository is written. The report says how long Run All took,
whether the notebook showed as modified after saving and after reopening, how many "Error displaying widget"
lines the reopened notebook shows, the checkpoint lines among the rendered cells (JupyterLab renders only the
cells near the view in long notebooks), and how many saved cells hold an error.

Needs the system Chromium (``make browser``); uses the course's own JupyterLab settings (``make lab``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PORT, TOKEN = 8899, "lab-in-jupyterlab"
BUSY = ("() => !!document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=\"busy\"]')"
        " || [...document.querySelectorAll('.jp-InputArea-prompt')].some(p => p.textContent.includes('[*]'))")
DIRTY = "() => !!document.querySelector('.jp-mod-dirty')"


def _url(path: str = "") -> str:
    return f"http://127.0.0.1:{PORT}{path}"


def _open(browser, name: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(_url(f"/lab/tree/{name}?token={TOKEN}&reset"))  # reset: only this notebook, no restored tabs
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_timeout(3000)
    return page


def _run_all(page, limit_s: float = 900) -> float:
    """Run ▸ Run All Cells, then wait until the kernel has been idle for 10 s in a row."""
    started = time.monotonic()
    page.click("text=Run", timeout=10_000)
    page.click("text=Run All Cells", timeout=10_000)
    idle_since = None
    while time.monotonic() - started < limit_s:
        if page.evaluate(BUSY):
            idle_since = None
        else:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 10:
                break
        page.wait_for_timeout(2000)
    return time.monotonic() - started - 10


def check(browser, name: str, folder: Path, out: Path) -> dict:
    stem = Path(name).stem
    page = _open(browser, name)
    page.screenshot(path=str(out / f"{stem}-0-opened.png"))
    ran_s = _run_all(page)
    page.screenshot(path=str(out / f"{stem}-1-ran.png"))
    text = page.inner_text(".jp-Notebook")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(3000)
    dirty_after_save = page.evaluate(DIRTY)
    for session in httpx.get(_url(f"/api/sessions?token={TOKEN}")).json():  # the kernel shut down, as overnight
        httpx.delete(_url(f"/api/sessions/{session['id']}?token={TOKEN}"))
    page.close()
    page = _open(browser, name)
    page.wait_for_timeout(5000)
    page.screenshot(path=str(out / f"{stem}-2-reopened.png"))
    reopened = page.inner_text(".jp-Notebook")
    dirty_after_reopen = page.evaluate(DIRTY)
    page.close()
    saved = json.loads((folder / name).read_text())
    return {
        "run_all_s": round(ran_s), "modified_after_save": dirty_after_save,
        "modified_after_reopen": dirty_after_reopen,
        "widget_errors_after_reopen": reopened.count("Error displaying widget"),
        "rendered_checkpoint_lines": re.findall(r"[✅❌] Checkpoint \d\d\.\d[^\n]{0,60}", text),
        "rendered_pause_lines": re.findall(r"⏸[^\n]{0,80}", text),
        "saved_cells_with_an_error": sum(1 for c in saved["cells"] if c.get("cell_type") == "code"
                                         and any(o.get("output_type") == "error" for o in c.get("outputs", []))),
    }


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    out = Path(argv[0]).resolve()
    folder = out / "labs"
    shutil.rmtree(folder, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "labs", folder)
    names = []
    for arg in argv[1:]:
        source = (ROOT / arg).resolve()
        if source.parent.name == "solutions":
            shutil.copy(source, folder / f"solved_{source.name}")
            names.append(f"solved_{source.name}")
        else:
            names.append(source.name)

    sys.path.insert(0, str(ROOT / "src"))
    from spark_labs.notebooks.lab_server import jupyter_command, write_overrides
    from spark_labs.ui.browser import chromium

    write_overrides()
    command = jupyter_command(folder) + ["--no-browser", f"--port={PORT}", f"--IdentityProvider.token={TOKEN}"]
    server = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "BROWSER": "true"})
    report = {}
    try:
        for _ in range(120):
            try:
                httpx.get(_url(f"/api/status?token={TOKEN}"), timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(1)
        with chromium() as browser:
            for name in names:
                report[name] = check(browser, name, folder, out)
                print(name, json.dumps(report[name], ensure_ascii=False), flush=True)
    finally:
        server.terminate()  # its kernels go with it, and the engines with their kernels
        server.wait(timeout=60)
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
