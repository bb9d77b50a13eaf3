"""Drive the chat UI in a real Chromium through Playwright (tests and lab 06).

Chromium comes from the system package manager; Playwright's own browser download is never used (it
needs the network). Where no Chromium is found, :func:`chromium_path` raises with the one command that
installs it.

    from spark_labs.ui.browser import run_in_browser
    answer = run_in_browser(ui.url, lambda chat: chat.open().ask("Hello"))

Playwright's sync API refuses to run on a thread that has a running asyncio loop (a notebook kernel's),
so :func:`run_in_browser` runs the whole browser session on a worker thread and returns its result.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import SparkLabsError

CHROMIUM_ENV = "SPARK_LABS_CHROMIUM"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
INSTALL_COMMAND = "apt-get install -y chromium fonts-noto-color-emoji"
# Headless, no sandbox (containers run as root), and no network of its own: no update or field-trial calls.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


class BrowserMissingError(SparkLabsError):
    """Chromium or the playwright package is not installed."""


def chromium_path() -> str:
    """The system Chromium: ``SPARK_LABS_CHROMIUM`` if set, else the usual Debian/Ubuntu locations."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        if os.access(given, os.X_OK):
            return given
        raise BrowserMissingError(f"{CHROMIUM_ENV}={given} is not an executable file; unset it or point it at "
                                  "a Chromium binary")
    for candidate in (*CHROMIUM_CANDIDATES, shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrowserMissingError(f"no Chromium found (looked at {', '.join(CHROMIUM_CANDIDATES)}). Install it with "
                              f"`{INSTALL_COMMAND}` (as root; prefix sudo otherwise), or set {CHROMIUM_ENV} to a "
                              "Chromium binary. Do not run `playwright install`: it downloads its own browser.")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless system Chromium as a Playwright ``Browser``."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserMissingError("the playwright package is missing: install the dev extra "
                                  "(`pip install -e '.[dev]'`, which `make install` does)") from exc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Answer:
    """One assistant message as the page shows it, with what the page measured."""

    text: str
    state: str  # done | stopped | error | streaming
    stats: str
    ttft_api_ms: float | None  # send -> first NDJSON line with text arrived in the page
    ttft_render_ms: float | None  # send -> that text rendered into the DOM (in the frame before its paint)
    server_ttft_ms: float | None  # the engine's own: load_duration + prompt_eval_duration
    eval_count: int | None
    tok_s: float | None  # from Ollama's own eval_count / eval_duration
    renders: int


def _number(value: str | None, kind=float):
    return kind(value) if value not in (None, "") else None


@dataclass
class ChatPage:
    """The UI in one browser tab. Records dialogs, page errors and CSP violations for safety checks.

    Page functions are passed as arrow functions: a bare expression string would be evaluated with
    ``eval``, which the page's CSP (rightly) refuses."""

    page: Any
    url: str
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def open(self, timeout_s: float = 30) -> ChatPage:
        """Load the page and wait until the model list loaded or an error state shows."""
        self.response = self.page.goto(self.url)
        self.page.wait_for_function("() => document.body.dataset.state !== undefined", timeout=timeout_s * 1e3)
        return self

    def models(self) -> list[str]:
        return self.page.locator("#model option").all_inner_texts()

    def state(self) -> str:
        return self.page.evaluate("document.body.dataset.state")

    def alert(self) -> tuple[str | None, str]:
        alert = self.page.locator("#alert")
        return alert.get_attribute("data-kind"), alert.inner_text() if alert.is_visible() else ""

    def set_api_key(self, key: str) -> None:
        self.page.fill("#api-key", key)
        self.page.dispatch_event("#api-key", "change")
        self.page.wait_for_function("() => document.querySelector('#status').textContent !== 'Loading models…'")

    def send(self, prompt: str) -> None:
        """Type the prompt and press Enter, as a person would; returns at once."""
        self.page.fill("#prompt", prompt)
        self.page.press("#prompt", "Enter")

    def wait_answer(self, timeout_s: float = 120) -> Answer:
        self.page.wait_for_function(
            "() => { const m = document.querySelector('#messages li.assistant:last-child');"
            " return m && m.dataset.state !== 'streaming'; }", timeout=timeout_s * 1e3)
        return self.last_answer()

    def ask(self, prompt: str, timeout_s: float = 120) -> Answer:
        self.send(prompt)
        return self.wait_answer(timeout_s)

    def stop(self) -> None:
        self.page.click("#stop")

    def last_answer(self) -> Answer:
        data = self.page.evaluate(
            "() => { const m = document.querySelector('#messages li.assistant:last-child');"
            " return m ? {...m.dataset, text: m.querySelector('.body').innerText,"
            " stats: m.querySelector('.stats').innerText} : null; }")
        if data is None:
            raise AssertionError("the page shows no answer yet: send a prompt first")
        return Answer(text=data["text"], state=data.get("state", ""), stats=data["stats"],
                      ttft_api_ms=_number(data.get("ttftApiMs")), ttft_render_ms=_number(data.get("ttftRenderMs")),
                      server_ttft_ms=_number(data.get("serverTtftMs")),
                      eval_count=_number(data.get("evalCount"), int), tok_s=_number(data.get("tokS")),
                      renders=_number(data.get("renders"), int) or 0)

    def screenshot(self) -> bytes:
        return self.page.screenshot(full_page=True)


@contextmanager
def chat_page(url: str, viewport: tuple[int, int] = (1100, 700)) -> Iterator[ChatPage]:
    """The UI at ``url`` in a fresh headless Chromium tab (sync API: not on a thread with a running loop)."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        yield ChatPage(page, url)


def run_in_browser(url: str, session: Callable[[ChatPage], Any], timeout_s: float = 300) -> Any:
    """Run ``session(chat)`` against the UI at ``url`` on a worker thread and return what it returns."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with chat_page(url) as chat:
                outcome["value"] = session(chat)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="spark-labs-browser", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"the browser session did not finish within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
