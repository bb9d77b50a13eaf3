"""spark-labs' own server with the transformers backend, through the official openai client."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest


def _client(engine) -> openai.OpenAI:
    return openai.OpenAI(base_url=engine.base_url, api_key="unused", max_retries=0)


def test_chat_completion_answers_with_usage(transformers_engine):
    response = _client(transformers_engine).chat.completions.create(
        model=transformers_engine.served_name, temperature=0, max_tokens=16,
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in response.choices[0].message.content
    assert response.usage.prompt_tokens > 5 and 1 <= response.usage.completion_tokens <= 16


def test_streaming_delivers_tokens_incrementally_and_usage_last(transformers_engine):
    stream = _client(transformers_engine).chat.completions.create(
        model=transformers_engine.served_name, temperature=0, max_tokens=24, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
        messages=[{"role": "user", "content": "Count from one to twenty."}])
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 5  # real streaming, not one blob
    assert chunks[-1].usage.completion_tokens == 24  # ignore_eos forces the exact length
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_async_client_and_completions_route(transformers_engine):
    async def go():
        client = openai.AsyncOpenAI(base_url=transformers_engine.base_url, api_key="unused", max_retries=0)
        return await client.completions.create(model=transformers_engine.served_name, prompt="The sky is",
                                               max_tokens=8, temperature=0)

    result = asyncio.run(go())
    assert result.choices[0].text.strip() and result.usage.completion_tokens <= 8


def test_bad_requests_get_openai_style_errors(transformers_engine):
    client = _client(transformers_engine)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="max_tokens"):
        client.chat.completions.create(model=transformers_engine.served_name, max_tokens=-3,
                                       messages=[{"role": "user", "content": "hi"}])
    raw = httpx.post(transformers_engine.base_url + "/chat/completions", content=b"{not json", timeout=10,
                     headers={"content-type": "application/json"})
    assert raw.status_code == 400 and "not valid JSON" in raw.json()["error"]["message"]


def test_metrics_count_what_was_served(transformers_engine):
    text = httpx.get(transformers_engine.metrics_url, timeout=10).text
    assert 'spark_labs_requests_total{route="/v1/chat/completions",status="200"}' in text
    completion = [line for line in text.splitlines() if line.startswith("spark_labs_completion_tokens_total")]
    assert completion and float(completion[0].split()[-1]) > 0


# A template that thinks unless told not to, as Qwen3's does: the switch must reach it from both API flavours.
THINKING_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                     "<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}"
                     "<think>\n\n</think>\n\n{% endif %}")


def test_chat_template_kwargs_and_ollama_think_reach_the_transformers_template():
    from spark_labs.models.embedded import prepare_embedded_model
    from spark_labs.serve.backends import Outcome, TransformersBackend
    from spark_labs.serve.schemas import ChatCompletionRequest, OllamaChatRequest
    from spark_labs.serve.settings import GatewaySettings

    backend = TransformersBackend(str(prepare_embedded_model()), "m")
    backend.tokenizer.chat_template = THINKING_TEMPLATE
    messages = [{"role": "user", "content": "hi"}]

    def prompt_tokens(request) -> int:
        async def first_piece():
            await backend.start(None)
            outcome = Outcome()
            async for _ in backend.stream(request.to_generation(GatewaySettings()), outcome):
                break
            return outcome.usage.prompt_tokens
        return asyncio.run(first_piece())

    plain = prompt_tokens(ChatCompletionRequest(model="m", messages=messages, max_tokens=1))
    no_think = prompt_tokens(ChatCompletionRequest(model="m", messages=messages, max_tokens=1,
                                                   chat_template_kwargs={"enable_thinking": False}))
    ollama_no_think = prompt_tokens(OllamaChatRequest(model="m", messages=messages, think=False,
                                                      options={"num_predict": 1}))
    expected = len(backend.encode_chat(messages, {"enable_thinking": False}))
    assert plain < no_think == ollama_no_think == expected
