"""The official ``openai`` and ``ollama`` Python clients, unchanged, against the gateway in front of the real
llama.cpp server, the real vLLM CPU server, and with the in-process transformers backend."""

from __future__ import annotations

import asyncio

import httpx
import ollama
import openai
import pytest

from spark_labs.serve import start_gateway

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class Target:
    def __init__(self, url: str, model: str, engine: str):
        self.url, self.model, self.engine = url, model, engine
        self.base_url = url + "/v1"


@pytest.fixture(scope="module", params=["llamacpp", "vllm", "transformers"])
def target(request):
    """The gateway in front of each engine. For transformers the engine *is* the gateway (spark-labs serve
    --backend transformers, started by the transformers_engine fixture)."""
    engine = request.getfixturevalue(f"{request.param}_engine")
    if request.param == "transformers":
        yield Target(engine.url, engine.served_name, request.param)
        return
    gateway = start_gateway(upstreams=[engine.base_url], log_json=True)
    yield Target(gateway.url, engine.served_name, request.param)
    gateway.stop()


def test_openai_sync_chat_answers_with_usage(target):
    client = openai.OpenAI(base_url=target.base_url, api_key="unused", max_retries=0)
    response = client.chat.completions.create(model=target.model, messages=QUESTION, max_tokens=12, temperature=0)
    assert "Paris" in response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")
    assert 1 <= response.usage.completion_tokens <= 12
    assert [m.id for m in client.models.list()] == [target.model]
    # The thinking switch Qwen3 labs send is forwarded (vLLM applies it, llama.cpp ignores it), never refused.
    switched = client.chat.completions.create(model=target.model, messages=QUESTION, max_tokens=12, temperature=0,
                                              extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert "Paris" in switched.choices[0].message.content


def test_openai_streaming_with_include_usage(target):
    client = openai.OpenAI(base_url=target.base_url, api_key="unused", max_retries=0)
    chunks = list(client.chat.completions.create(
        model=target.model, messages=[{"role": "user", "content": "Count from one to ten."}], max_tokens=16,
        temperature=0, stream=True, stream_options={"include_usage": True}))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 3  # really streamed, not one blob
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= len(texts) // 2
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_openai_async_client_completions_and_streaming(target):
    async def go():
        client = openai.AsyncOpenAI(base_url=target.base_url, api_key="unused", max_retries=0)
        plain = await client.completions.create(model=target.model, prompt="The sky is", max_tokens=6, temperature=0)
        stream = await client.chat.completions.create(model=target.model, messages=QUESTION, max_tokens=8,
                                                      temperature=0, stream=True)
        pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
        return plain, pieces

    plain, pieces = asyncio.run(go())
    assert plain.choices[0].text.strip() and 1 <= plain.usage.completion_tokens <= 6
    assert "".join(pieces).strip()


def test_ollama_client_chat_and_generate(target):
    client = ollama.Client(host=target.url)
    assert target.model in [m.model for m in client.list().models]
    assert client._client.get("/api/version").json()["version"]
    reply = client.chat(model=target.model, messages=QUESTION, options={"num_predict": 12, "temperature": 0})
    assert "Paris" in reply.message.content and reply.done and reply.done_reason in ("stop", "length")
    assert reply.eval_count >= 1 and reply.total_duration >= reply.eval_duration > 0
    assert reply.prompt_eval_duration > 0 and reply.load_duration >= 0
    # A prompt count is the real one or absent (llama-cpp-python counts no prompt tokens when streaming), never 0.
    assert reply.prompt_eval_count is None or reply.prompt_eval_count > 5
    assert reply.prompt_eval_count is not None or target.engine == "llamacpp"

    parts = list(client.generate(model=target.model + ":latest", prompt="Name a colour.", stream=True,
                                 options={"num_predict": 8, "temperature": 0}))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.response for p in parts).strip() and parts[-1].eval_count >= 1
    assert parts[-1].total_duration > 0 and parts[-1].eval_duration > 0

    chat_stream = list(client.chat(model=target.model, messages=QUESTION, stream=True, options={"num_predict": 6}))
    assert chat_stream[-1].done and "".join(p.message.content for p in chat_stream).strip()
    whole = client.generate(model=target.model, prompt="Say hello.", options={"num_predict": 6})
    assert whole.done and whole.response.strip()


def test_gateway_metrics_count_what_was_served(target):
    text = httpx.get(target.url + "/metrics", timeout=10).text
    assert 'spark_labs_requests_total{route="/v1/chat/completions",status="200"}' in text
    assert 'spark_labs_requests_total{route="/api/chat",status="200"}' in text
    completion = [line for line in text.splitlines() if line.startswith("spark_labs_completion_tokens_total")]
    assert completion and float(completion[0].split()[-1]) > 0
    assert "spark_labs_time_to_first_token_seconds_count" in text
