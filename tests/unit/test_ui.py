"""The chat UI's server and command line, without a browser (tests/test_ui_browser.py drives Chromium)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import httpx
import pytest
from gateway_support import closed_port

from spark_labs.ui import browser
from spark_labs.ui.app import ASSETS, STATIC
from spark_labs.ui.browser import BrowserMissingError, chromium_path

ROOT = Path(__file__).resolve().parents[2]


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


def test_ui_over_a_dead_address_answers_502_with_the_address():
    from spark_labs.ui import start_ui

    port = closed_port()
    with start_ui(f"http://127.0.0.1:{port}") as ui:
        response = httpx.get(ui.url + "/api/tags")
    assert response.status_code == 502
    assert f"127.0.0.1:{port}" in response.json()["error"] and "spark-labs ui --ollama" in response.json()["error"]


def test_chat_endpoint_starts_the_first_engine_installed_here(monkeypatch):
    # A GPU without vLLM (the spark profile's first engine): lab 06 runs on the transformers server instead of failing.
    import dataclasses

    import spark_labs.engines as engines
    import spark_labs.serve as serve
    from spark_labs import plan
    from spark_labs.engines import ENGINES
    from spark_labs.engines.engine_spec import Availability
    from spark_labs.ui import endpoint

    installed = {"transformers", "llamacpp"}  # llama.cpp needs a GGUF, which a spark model does not have
    for name, spec in ENGINES.items():
        available = Availability(name in installed, "" if name in installed else "not installed")
        monkeypatch.setitem(ENGINES, name, dataclasses.replace(spec, check_available=lambda a=available: a))
    started = []

    class Handle:
        spec, served_name, base_url = ENGINES["transformers"], "m", "http://127.0.0.1:1"

        def stop(self):
            pass

    monkeypatch.setattr(endpoint, "running_ollama", lambda url=None: None)
    monkeypatch.setattr(engines, "launch", lambda name, *a, **k: started.append(name) or Handle())
    monkeypatch.setattr(serve, "start_gateway", lambda **k: type("Gateway", (), {"url": "http://gw", "stop": None})())
    chosen = endpoint.chat_endpoint(plan("06", "spark"))
    assert started == ["transformers"] and chosen.kind == "gateway" and "transformers" in chosen.reason
