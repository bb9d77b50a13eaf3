"""The chat UI relay answers only its own page, in a real Chromium against `spark-labs ui` as a user starts it.

The upstream is the calibration fake :class:`ui_support.MisbehavingOllama` (NOT an engine: real Ollama does not
exist here, and only a server that records what reached it can show that an attack did not get through). Chromium
maps made-up names to 127.0.0.1 (``--host-resolver-rules``): what a DNS-rebinding attacker's resolver does, and
what a LAN name (``spark.local``) does for a learner.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright
from ui_support import MODEL, MisbehavingOllama, ui_process

from spark_labs.serve.runner import start_app
from spark_labs.ui.browser import CHROMIUM_ARGS, ChatPage, chromium_path

RESOLVER = "--host-resolver-rules=MAP attacker.example 127.0.0.1, MAP spark.local 127.0.0.1"
ATTACK = """<!doctype html><title>any web page</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" action="{relay}/api/chat" target="sink">
<input name='{{"model": "{model}", "messages": [{{"role": "user", "content": "form"}}], "x": "' value='"}}'></form>
<script>
const chat = JSON.stringify({{model: "{model}", messages: [{{role: "user", content: "fetch"}}]}});
const post = (url) => fetch(url, {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                                  body: chat}});
window.sent = Promise.all([post("{relay}/api/chat"), post("{direct}/api/chat"),
  new Promise((done) => {{ document.querySelector("iframe").onload = done;  // a relayed NDJSON answer is a
                           setTimeout(done, 3000);  // download, which never loads the frame
                           document.getElementById("form").submit(); }})]).then(() => "sent");
</script>"""


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=[*CHROMIUM_ARGS, RESOLVER])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    tab = browser.new_page(viewport={"width": 1100, "height": 700})
    yield tab
    tab.close()


@pytest.fixture
def fake():
    upstream = MisbehavingOllama()
    yield upstream
    upstream.stop()


def _relayed(fake) -> list:
    """Chats the relay passed on (its client is httpx); the rest came straight from the browser."""
    return [seen for seen in fake.chats() if "python-httpx" in seen.headers.get("user-agent", "")]


def test_a_cross_site_page_cannot_chat_through_the_relay_but_the_own_page_can(fake, page):
    """The attack: any web page POSTs text/plain (a form, a no-cors fetch) to /api/chat; the relay passed both
    on. The same page's direct POST to the fake shows Chromium does send them, with the attacker's Origin."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    with ui_process("--ollama", fake.url) as (relay, _):
        html = ATTACK.format(relay=relay, direct=fake.url, model=MODEL)
        attacker = Starlette(routes=[Route("/", lambda request: HTMLResponse(html))])
        with start_app(attacker) as site:
            page.goto(f"http://attacker.example:{site.port}/")
            assert page.evaluate("() => window.sent") == "sent"
        direct = [seen for seen in fake.chats() if seen not in _relayed(fake)]
        assert [seen.headers.get("origin") for seen in direct] == [f"http://attacker.example:{site.port}"]
        assert _relayed(fake) == [], "the relay passed a cross-site chat on"

        chat = ChatPage(page, relay + "/").open()
        answer = chat.ask("hi")
        assert answer.state == "done" and answer.text == "Hello from the fake."
        assert [seen.headers.get("origin") for seen in _relayed(fake)] == [relay]  # forwarded: OLLAMA_ORIGINS applies
        assert not chat.page_errors and not chat.csp_violations


def test_dns_rebinding_name_is_refused_in_the_browser(fake, page):
    """The attack: attacker.example resolves to this machine after its page loaded (here: from the start)."""
    with ui_process("--ollama", fake.url) as (relay, _):
        port = relay.rsplit(":", 1)[1]
        response = page.goto(f"http://attacker.example:{port}/")
        assert response.status == 403, f"served: {response.status}"
        assert "spark-labs ui --allow-host attacker.example" in page.inner_text("body")
        tags = page.evaluate("() => fetch('/api/tags').then((r) => r.status)")
    assert tags == 403 and fake.chats() == [] and [seen.path for seen in fake.requests] == ["/api/version"]


def test_a_name_allowed_with_the_flag_serves_the_page_and_its_chat(fake, page):
    with ui_process("--ollama", fake.url, "--allow-host", "spark.local") as (relay, _):
        own = "http://spark.local:" + relay.rsplit(":", 1)[1]
        chat = ChatPage(page, own + "/").open()
        assert chat.models() == [MODEL]
        assert chat.ask("hi").state == "done"
    assert [seen.headers.get("origin") for seen in _relayed(fake)] == [own]
