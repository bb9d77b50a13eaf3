"""The chat UI's server and command line, without a browser (tests/test_ui_browser.py drives Chromium)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from gateway_support import closed_port, wait_until

from spark_labs.serve import start_gateway

SPARK_LABS = Path(sys.executable).parent / "spark-labs"  # the venv's script, as a user types it


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


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
