"""The chat UI's server and command line, without a browser (tests/test_ui_browser.py drives Chromium)."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from gateway_support import closed_port
from ui_support import SPARK_LABS, ui_process

from spark_labs.serve import start_gateway


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
                       log_level="warning") as gateway, ui_process("--ollama", gateway.url) as (url, first_line):
        assert "answers (version" in first_line
        page = httpx.get(url + "/")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert httpx.get(url + "/api/version").json() == httpx.get(gateway.url + "/api/version").json()
        chat = httpx.post(url + "/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code >= 500 and "error" in chat.json()  # the gateway's own answer, passed through
