"""`spark-labs serve --backend transformers` batches: slots of one static cache, filled by a scheduler loop.

The real server process on the embedded model (CPU: the eager batched step), the official openai client.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

PROMPTS = ["What is the capital of France?", "Name three colours.", "Count from one to five."]


@pytest.fixture(scope="module")
def server():
    from spark_labs.models.embedded import prepare_embedded_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "spark_labs.serve", "--backend", "transformers", "--model",
                                str(prepare_embedded_model()), "--port", str(port), "--served-model-name", "m",
                                "--max-concurrency", "3", "--max-model-len", "512"], start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    answers = []  # (health status, ready status, ready body) from the first answer on
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited"
            try:
                health = httpx.get(url + "/health", timeout=5).status_code
                ready = httpx.get(url + "/ready", timeout=5)
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            answers.append((health, ready.status_code, ready.json()))
            if ready.status_code == 200:
                break
            time.sleep(0.01)
        yield url, answers
    finally:
        process.terminate()
        process.wait(30)


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


def _streamed_text(url: str, prompt: str, max_tokens: int = 24) -> str:
    stream = _client(url).chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}],
                                                  max_tokens=max_tokens, temperature=0, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_ready_only_after_the_warm_up_while_health_answers_before(server):
    url, answers = server
    assert answers and answers[-1][1] == 200
    warming = [body for health, status, body in answers if status == 503]
    assert warming, f"/ready was never seen unready: {answers[:3]}"
    assert all(health == 200 for health, _, _ in answers)  # liveness: the process answers throughout
    assert all(body["ready"] is False and body["reason"].startswith("warming up") for body in warming)
    assert answers[-1][2]["warm_up_s"] > 0  # details for a caller on this machine (auth off)


def test_concurrent_streams_get_the_same_greedy_text_as_one_at_a_time(server):
    url, _ = server
    alone = [_streamed_text(url, prompt) for prompt in PROMPTS]
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        together = list(pool.map(lambda p: _streamed_text(url, p), PROMPTS))
    assert together == alone
    assert "Paris" in alone[0]


def test_a_client_that_leaves_frees_its_slot(server):
    url, _ = server
    body = {"model": "m", "messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": 400,
            "temperature": 0, "stream": True, "ignore_eos": True}
    with httpx.Client(timeout=60) as client:
        for _ in range(3):  # fill every slot, read a little, leave
            with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
                lines = response.iter_lines()
                for _ in range(3):
                    next(lines)
        deadline = time.monotonic() + 30
        while httpx.get(url + "/ready", timeout=5).json()["slots_busy"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(url + "/ready", timeout=5).json()["slots_busy"] == 0
    start = time.monotonic()
    assert _streamed_text(url, PROMPTS[0], 8)
    assert time.monotonic() - start < 30  # not queued behind 3 x 400 abandoned tokens
