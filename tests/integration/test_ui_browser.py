"""The chat UI (lab 06) in a real Chromium, driven by Playwright.

Everything runs against the gateway's Ollama routes over the real llama.cpp server on the embedded model,
except the hostile-output test: its upstream is a small Ollama-shaped server written for the test, because
no real model emits ``<script>`` or ``javascript:`` links on demand (its name says so).

Chromium is the system one (``/usr/bin/chromium``); ``make test`` installs it when it can. Without it
these tests fail with the command that installs it — they never skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest
from gateway_support import closed_port, scrape, wait_until
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from spark_labs.serve import start_gateway
from spark_labs.serve.runner import start_app
from spark_labs.ui import start_ui
from spark_labs.ui.browser import ChatPage, chromium

KEY = "ui-test-key"
STORY = "Write a very long story about a dragon who learns to bake bread."
# Records every change of the streaming answer's text length, so a test can see it grow step by step.
WATCH_LENGTHS = """() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const m = document.querySelector('#messages li.assistant:last-child .body');
    if (m) window.__lengths.push(m.textContent.length);
  }).observe(document.querySelector('#messages'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as chromium_browser:
        yield chromium_browser


@pytest.fixture
def open_chat(browser):
    pages = []

    def open_(url: str) -> ChatPage:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        pages.append(page)
        return ChatPage(page, url).open()

    yield open_
    for page in pages:
        page.close()


@pytest.fixture(scope="module")
def keyed_gateway(llamacpp_engine):
    """The gateway with an API key in front of llama.cpp; answers up to 2,000 tokens when asked (stop test)."""
    with start_gateway(upstreams=[llamacpp_engine.base_url], api_keys=[KEY], health_interval_s=30,
                       max_tokens_limit=2000, log_level="warning") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def ui(keyed_gateway):
    handle = start_ui(keyed_gateway.url)
    yield handle
    handle.stop()


def test_page_is_served_with_a_strict_csp_and_only_its_own_assets(ui):
    page = httpx.get(ui.url + "/")
    csp = page.headers["content-security-policy"]
    assert page.status_code == 200 and "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script" in page.text and "<script>" not in page.text and " style=" not in page.text  # no inline code
    script = httpx.get(ui.url + "/static/chat.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    missing = httpx.get(ui.url + "/static/app.py")
    assert missing.status_code == 404 and "the UI serves" in missing.text
    assert httpx.get(ui.url + "/static/..%2Fapp.py").status_code == 404
    assert httpx.get(ui.url + "/api/pull").status_code == 404  # only tags, version and chat are relayed


def test_401_then_key_then_model_picker_streaming_stats_and_keyboard(ui, keyed_gateway, open_chat):
    chat = open_chat(ui.url)
    kind, text = chat.alert()
    assert chat.state() == "auth" and kind == "auth" and "API key" in text and "401" in text

    chat.set_api_key(KEY)
    tags = httpx.get(keyed_gateway.url + "/api/tags", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert chat.models() == [m["name"] for m in tags["models"]] and chat.state() == "ready"

    # Shift+Enter adds a line; Enter sends.
    chat.page.fill("#prompt", "Count from one to twenty, one number per line.")
    chat.page.press("#prompt", "Shift+Enter")
    chat.page.type("#prompt", "Then say done.")
    assert chat.page.locator("#messages li").count() == 0
    assert chat.page.input_value("#prompt").count("\n") == 1
    chat.page.evaluate(WATCH_LENGTHS)
    chat.page.press("#prompt", "Enter")
    answer = chat.wait_answer()

    assert answer.state == "done" and answer.text.strip()
    assert chat.page.locator("#messages li.user .body").inner_text().count("\n") == 1
    lengths = chat.page.evaluate("() => window.__lengths")
    growing = sorted({n for n in lengths if n > 0})
    assert len(growing) >= 3 and answer.renders >= 3, f"the answer did not appear incrementally: {lengths}"
    assert answer.eval_count and answer.eval_count > 0 and answer.tok_s and answer.tok_s > 0
    assert "tok/s" in answer.stats and "first token on screen" in answer.stats
    assert 0 < answer.ttft_api_ms <= answer.ttft_render_ms
    assert chat.page.get_attribute("#messages", "aria-live") == "polite"

    # The context budget counts what the engine counted; a num_ctx it fills to 90 % warns.
    used = int(re.search(r"Context: (\d+) of 2048", chat.page.inner_text("#budget")).group(1))
    assert used >= answer.eval_count and chat.page.get_attribute("#budget", "data-level") == "ok"
    chat.page.fill("#num-ctx", str(int(used / 0.9)))
    assert chat.page.get_attribute("#budget", "data-level") == "warn"
    assert "New chat" in chat.page.inner_text("#budget")
    assert not chat.page_errors and not chat.csp_violations


def test_stop_aborts_the_fetch_and_the_engine_stops_generating(ui, keyed_gateway, llamacpp_engine, open_chat):
    chat = open_chat(ui.url)
    chat.set_api_key(KEY)
    chat.page.fill("#temperature", "0")
    chat.page.fill("#num-predict", "2000")
    chat.send(STORY)
    chat.page.wait_for_function("() => (document.querySelector('#messages li.assistant .body')?.textContent.length"
                                " ?? 0) > 40", timeout=60_000)
    pool = keyed_gateway.gateway.backend.pool
    # The story's pace, to know how long it would still hold llama.cpp if Stop did not reach it.
    first_chars, first_t = len(chat.last_answer().text), time.monotonic()
    time.sleep(1.0)
    chars, elapsed = len(chat.last_answer().text) - first_chars, time.monotonic() - first_t
    story_left_s = (2000 * 4 - first_chars - chars) / max(chars / elapsed, 1.0)  # ~4 characters per token
    assert chat.last_answer().state == "streaming" and pool.upstreams[0].outstanding == 1
    chat.stop()
    chat.page.wait_for_function("() => document.querySelector('#messages li.assistant').dataset.state === 'stopped'")
    assert "Stopped" in chat.last_answer().stats

    # The gateway saw the browser leave and closed its upstream stream...
    assert wait_until(lambda: pool.upstreams[0].outstanding == 0, timeout=5)
    assert wait_until(lambda: scrape(keyed_gateway, "spark_labs_requests_in_flight") == 0, timeout=5)
    # ...and llama.cpp, which serves one request at a time, answers long before the rest of the 2,000-token
    # story could have been generated: the story stopped.
    start = time.monotonic()
    with httpx.stream("POST", llamacpp_engine.base_url + "/chat/completions", timeout=story_left_s, json={
            "model": llamacpp_engine.served_name, "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2, "stream": True}) as direct:
        next(direct.iter_lines())
        assert time.monotonic() - start < story_left_s / 2


def test_rate_limited_answer_shows_429_with_retry_after(llamacpp_engine, open_chat):
    with start_gateway(upstreams=[llamacpp_engine.base_url], health_interval_s=30, rate_limit_rps=0.02,
                       rate_limit_burst=2, log_level="warning") as gateway:
        handle = start_ui(gateway.url)
        try:
            chat = open_chat(handle.url)
            chat.page.fill("#num-predict", "4")
            states = []
            for _ in range(4):
                states.append(chat.ask("hi").state)
                if states[-1] == "error":
                    break
            kind, text = chat.alert()
            assert states[0] == "done" and states[-1] == "error", states
            assert kind == "rate" and "429" in text and "Retry in" in text
            assert chat.page.input_value("#prompt") == "hi"  # the question is back in the box to retry
        finally:
            handle.stop()


def test_busy_gateway_shows_503_with_retry_after(llamacpp_engine, open_chat):
    """One slot, no queue: while a long stream holds the slot, the page's question is refused with 503."""
    with start_gateway(upstreams=[llamacpp_engine.base_url], health_interval_s=30, max_in_flight=1, max_queue=0,
                       log_level="warning") as gateway:
        handle = start_ui(gateway.url)
        try:
            chat = open_chat(handle.url)
            with httpx.stream("POST", gateway.url + "/api/chat", timeout=60, json={
                    "model": llamacpp_engine.served_name, "messages": [{"role": "user", "content": STORY}],
                    "options": {"num_predict": 1000}}) as holding:
                lines = holding.iter_lines()  # kept: a dropped iterator closes the stream, freeing the slot
                next(lines)  # the slot is taken
                answer = chat.ask("hi")
                assert gateway.gateway.admission.in_flight == 1
            kind, text = chat.alert()
            assert answer.state == "error" and kind == "busy" and "503" in text and "Retry in 1 s" in text
        finally:
            handle.stop()


def test_engine_down_state_names_the_address(open_chat):
    port = closed_port()
    handle = start_ui(f"http://127.0.0.1:{port}")
    try:
        chat = open_chat(handle.url)
        kind, text = chat.alert()
        assert chat.state() == "down" and kind == "down"
        assert f"127.0.0.1:{port}" in text and "cannot reach the Ollama API" in text
        assert chat.page.is_disabled("#model")
    finally:
        handle.stop()


# --- hostile output ----------------------------------------------------------------------------------
HOSTILE_MODEL = '<img src=x onerror="window.__pwned=\'model\'">evil-model'
HOSTILE_PIECES = [
    "Here: <script>window.__pwned='script'</script> and ",
    "<img src=x onerror=\"window.__pwned='img'; alert('img')\"> then ",
    "[click me](javascript:window.__pwned='link') or ",
    "[JS entity](jav&#x61;script:alert(1)) or [data](data:text/html,<script>alert(1)</script>) ",
    "and [a real link](https://example.com/docs).\n\n```html\n<script>alert('code')</script>\n```\n",
    "**bold <b>not html</b>**",
]


def _ndjson(objects) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


def hostile_ollama_app() -> Starlette:
    """An Ollama-shaped stand-in (NOT an engine): answers with markup a real model will not emit on demand.

    ``/api/chat`` answers by the last user message: ``cut`` streams two pieces and drops the connection;
    ``truncate`` streams two pieces and ends without the final object; ``error`` sends Ollama's in-band
    error line (with markup in it); anything else streams the hostile text.
    """

    async def tags(request):
        return JSONResponse({"models": [{"name": HOSTILE_MODEL, "model": HOSTILE_MODEL}]})

    async def chat(request):
        body = await request.json()
        question = body["messages"][-1]["content"]

        async def stream():
            pieces = HOSTILE_PIECES if question not in ("cut", "truncate", "error") else HOSTILE_PIECES[:2]
            for piece in pieces:
                yield _ndjson([{"model": body["model"], "message": {"role": "assistant", "content": piece},
                                "done": False}])
                await asyncio.sleep(0.02)
            if question == "cut":
                raise ConnectionResetError("the test's upstream drops the connection mid-answer")
            if question == "truncate":
                return
            if question == "error":
                yield _ndjson([{"error": "<b onmouseover=alert(1)>engine exploded</b>"}])
                return
            yield _ndjson([{"model": body["model"], "message": {"role": "assistant", "content": ""}, "done": True,
                            "eval_count": 6, "eval_duration": 120_000_000, "prompt_eval_count": 9,
                            "prompt_eval_duration": 3_000_000, "load_duration": 1_000_000}])

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    return Starlette(routes=[Route("/api/tags", tags), Route("/api/chat", chat, methods=["POST"])])


@pytest.fixture(scope="module")
def hostile_ui():
    upstream = start_app(hostile_ollama_app())
    handle = start_ui(upstream.url)
    yield handle
    handle.stop()
    upstream.stop()


def test_fake_hostile_upstream_output_and_model_name_never_execute(hostile_ui, open_chat):
    chat = open_chat(hostile_ui.url)
    assert "script-src 'self'" in chat.response.headers["content-security-policy"]
    assert chat.models() == [HOSTILE_MODEL]  # shown as the text it is

    answer = chat.ask("hello")
    assert answer.state == "done"
    assert "<script>window.__pwned='script'</script>" in answer.text and "onerror=" in answer.text
    messages = chat.page.locator("#messages")
    assert messages.locator("script, img, b, [onerror], [onmouseover]").count() == 0
    links = messages.locator("a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.com/docs"
    assert "noopener" in links.get_attribute("rel")
    assert "<script>alert('code')</script>" in messages.locator("pre code").inner_text()
    chat.page.get_by_text("click me").first.click()  # plain text, not a link: nothing happens

    chat.ask("error")
    kind, text = chat.alert()
    assert kind == "midstream" and "<b onmouseover=alert(1)>engine exploded</b>" in text

    chat.ask("cut")  # the upstream breaks: the relay says so in Ollama's in-band error line
    kind, text = chat.alert()
    assert kind == "midstream" and "broke mid-answer" in text and hostile_ui.url not in text

    chat.ask("truncate")  # the stream just ends, without Ollama's final object
    kind, text = chat.alert()
    assert kind == "lost" and "incomplete" in text

    # The CSP is enforced, not just sent: even a script element built in the page does not run.
    ran = chat.page.evaluate("() => { const s = document.createElement('script'); s.textContent ="
                             " 'window.__pwned = \"inline\"'; document.body.append(s); return window.__pwned; }")
    assert ran is None
    assert chat.page.evaluate("() => window.__pwned") is None and chat.dialogs == []
    assert chat.csp_violations, "the browser should have reported the refused inline script"
