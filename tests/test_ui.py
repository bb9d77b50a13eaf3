"""The chat UI's server and command line, without a browser (tests/test_ui_browser.py drives Chromium)."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from test_gateway_support import closed_port, wait_until

from spark_labs.serve import start_gateway
from spark_labs.ui import browser
from spark_labs.ui.app import ASSETS, STATIC
from spark_labs.ui.browser import BrowserMissingError, chromium_path

ROOT = Path(__file__).resolve().parents[1]
SPARK_LABS = Path(sys.executable).parent / "spark-labs"  # the venv's script, as a user types it


def test_every_static_asset_ships_as_package_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["spark_labs"]
    files = sorted(p.relative_to(STATIC.parent.parent).as_posix() for p in STATIC.iterdir())
    assert {p.name for p in STATIC.iterdir()} == {"index.html", *ASSETS}
    assert all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), f"{files} not all matched by {globs}"


def test_missing_chromium_names_the_command_that_installs_it(monkeypatch):
    monkeypatch.delenv(browser.CHROMIUM_ENV, raising=False)
    monkeypatch.setattr(browser, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium",))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrowserMissingError, match="apt-get install -y chromium") as caught:
        chromium_path()
    assert "playwright install" in str(caught.value)  # ...and says not to use Playwright's download


def test_a_wrong_chromium_setting_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv(browser.CHROMIUM_ENV, str(tmp_path / "chromium"))
    with pytest.raises(BrowserMissingError, match="SPARK_LABS_CHROMIUM=.* is not an executable"):
        chromium_path()


@pytest.mark.parametrize("args, message", [
    (["--ollama", "localhost:11434"], "--ollama must be an http(s) URL"),
    (["--port", "eighty"], "--port must be a number or 'auto'"),
])
def test_spark_labs_ui_rejects_bad_arguments_with_the_fix(args, message):
    result = subprocess.run([str(SPARK_LABS), "ui", *args], check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and message in result.stderr


def test_spark_labs_ui_serves_the_page_and_relays_the_gateway():
    """`spark-labs ui --ollama URL --port auto` as typed, in front of a real gateway (its engine is down)."""
    with start_gateway(upstreams=[f"http://127.0.0.1:{closed_port()}/v1"], health_interval_s=0,
                       log_level="warning") as gateway:
        process = subprocess.Popen([str(SPARK_LABS), "ui", "--ollama", gateway.url, "--port", "auto"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = [process.stdout.readline() for _ in range(2)]
            assert "answers (version" in lines[0], lines
            url = lines[1].split("UI: ")[1].split()[0].rstrip("/")
            assert wait_until(lambda: _answers(url), timeout=30)
            page = httpx.get(url + "/")
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert httpx.get(url + "/api/version").json() == httpx.get(gateway.url + "/api/version").json()
            chat = httpx.post(url + "/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            assert chat.status_code >= 500 and "error" in chat.json()  # the gateway's own answer, passed through
        finally:
            process.terminate()
            process.wait(30)


def test_ui_over_a_dead_address_answers_502_with_the_address():
    from spark_labs.ui import start_ui

    port = closed_port()
    with start_ui(f"http://127.0.0.1:{port}") as ui:
        response = httpx.get(ui.url + "/api/tags")
    assert response.status_code == 502
    assert f"127.0.0.1:{port}" in response.json()["error"] and "spark-labs ui --ollama" in response.json()["error"]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
