"""Gateway parts without a server: breaker states, token bucket, admission, settings and CLI flags."""

from __future__ import annotations

import asyncio

import pytest

from spark_labs.serve.auth import Authenticator, key_id
from spark_labs.serve.cli import build_parser, settings_from_args
from spark_labs.serve.errors import GatewayError
from spark_labs.serve.limits import Admission, RateLimiter
from spark_labs.serve.metrics import GatewayMetrics
from spark_labs.serve.settings import GatewaySettings
from spark_labs.serve.upstreams import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    UpstreamPool,
    normalise_upstream,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_k_failures_half_opens_after_cooldown_and_closes_on_success():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allows()
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allows()
    clock.now += 10
    assert breaker.allows() and breaker.state == HALF_OPEN
    breaker.on_attempt()
    assert not breaker.allows()  # one trial at a time
    breaker.abandon()  # the trial's client left without a verdict: the next request may try
    assert breaker.allows()
    breaker.on_attempt()
    breaker.record_failure()
    assert breaker.state == OPEN  # a failed trial re-opens at once
    clock.now += 10
    assert breaker.allows()
    breaker.on_attempt()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.failures == 0


def test_pool_picks_least_outstanding_and_skips_unavailable_upstreams():
    pool = UpstreamPool(["a:1", "b:2", "c:3"], breaker_failures=1, breaker_cooldown_s=60)
    a, b, c = pool.upstreams
    a.outstanding, b.outstanding, c.outstanding = 2, 0, 1
    assert pool.choose(None, set()) is b
    b.healthy = False
    assert pool.choose(None, set()) is c
    c.breaker.record_failure()
    assert pool.choose(None, set()) is a and pool.choose(None, {"upstream-1"}) is None  # named by position
    a.models, b.models, c.models = ["m1"], ["m1"], ["m2"]
    assert pool.serving("m2") == [c] and pool.models() == ["m1", "m2"]


@pytest.mark.parametrize(("given", "expected"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000/v1"), ("http://h:8000/", "http://h:8000/v1"),
    ("http://h:8000/v1/", "http://h:8000/v1"), ("https://h/api/v1", "https://h/api/v1")])
def test_upstream_urls_are_normalised_to_an_openai_base(given, expected):
    assert normalise_upstream(given) == expected


def test_token_bucket_allows_a_burst_then_refills_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("k")
    with pytest.raises(GatewayError) as caught:
        limiter.check("k")
    assert caught.value.status == 429 and caught.value.headers() == {"Retry-After": "1"}
    limiter.check("other")  # per key
    clock.now += 0.5
    limiter.check("k")


def test_admission_queues_up_to_max_queue_then_rejects_and_drains():
    async def go():
        admission = Admission(max_in_flight=1, max_queue=1, queue_timeout_s=5, metrics=GatewayMetrics())
        await admission.acquire()
        waiter = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0.01)
        assert admission.waiting == 1
        with pytest.raises(GatewayError, match="server busy") as caught:
            await admission.acquire()
        assert caught.value.status == 503 and caught.value.retry_after == 1
        admission.release()
        await waiter
        assert admission.in_flight == 1
        drained = asyncio.create_task(admission.drain(5))
        await asyncio.sleep(0.01)
        with pytest.raises(GatewayError, match="shutting down"):
            await admission.acquire()
        admission.release()
        assert await drained

    asyncio.run(go())


def test_settings_from_env_keys_file_and_cli_flags(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARK_LABS_GATEWAY_API_KEYS", "k1, k2")
    monkeypatch.setenv("SPARK_LABS_GATEWAY_UPSTREAMS", "http://a:1/v1,http://b:2/v1")
    monkeypatch.setenv("SPARK_LABS_GATEWAY_MAX_IN_FLIGHT", "7")
    keys = tmp_path / "keys"
    keys.write_text("# comment\nk3\n\n")
    args = build_parser().parse_args(["--upstream", "c:3", "--upstream", "d:4", "--max-queue", "5",
                                      "--api-keys-file", str(keys), "--no-log-json", "--rate-limit-rps", "1.5"])
    settings = settings_from_args(args)
    assert settings.upstreams == ["c:3", "d:4"]  # flags override the environment
    assert settings.max_in_flight == 7 and settings.max_queue == 5 and settings.rate_limit_rps == 1.5
    assert settings.log_json is False and settings.load_api_keys() == {"k1", "k2", "k3"}
    assert GatewaySettings().load_api_keys() == {"k1", "k2"}
    monkeypatch.delenv("SPARK_LABS_GATEWAY_API_KEYS")
    assert GatewaySettings().load_api_keys() == set()  # no keys: authentication off


def test_keys_are_checked_by_digest_and_logged_by_id_only():
    auth = Authenticator({"secret-key"})
    assert auth.identify("Bearer secret-key", "1.2.3.4") == key_id("secret-key") != "secret-key"
    for header in (None, "Bearer wrong", "Basic secret-key"):
        with pytest.raises(GatewayError) as caught:
            auth.identify(header, "1.2.3.4")
        assert caught.value.status == 401
    assert Authenticator(set()).identify(None, "1.2.3.4") == "anon-1.2.3.4"


def test_request_fields_are_strictly_typed_and_forwarded_fields_are_bounded():
    from pydantic import ValidationError

    from spark_labs.serve.schemas import ChatCompletionRequest, OllamaChatRequest

    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for bad in ({"max_tokens": "4"}, {"max_tokens": 4.0}, {"temperature": "0.5"}, {"stream": "true"},
                {"top_k": -5}, {"min_p": 1.5}, {"presence_penalty": 3}, {"logit_bias": {"the": 5}},
                {"logit_bias": {"50": 101}}, {"user": 7}):
        with pytest.raises(ValidationError):
            ChatCompletionRequest.model_validate({**base, **bad})
    ok = ChatCompletionRequest.model_validate({**base, "temperature": 0, "top_k": 0, "logit_bias": {"2": -100},
                                               "min_tokens": 2, "max_tokens": 4, "unknown_field": 1})
    generation = ok.to_generation(GatewaySettings())
    assert generation.temperature == 0.0
    assert generation.extra == {"top_k": 0, "logit_bias": {"2": -100.0}, "min_tokens": 2}  # unknown: not forwarded
    too_many = ChatCompletionRequest.model_validate({**base, "min_tokens": 5, "max_tokens": 4})
    with pytest.raises(GatewayError, match="min_tokens=5 is above max_tokens=4") as caught:
        too_many.to_generation(GatewaySettings())
    assert caught.value.status == 422
    with pytest.raises(GatewayError, match="at least one message") as caught:
        OllamaChatRequest.model_validate({"model": "m", "messages": []}).to_generation(GatewaySettings())
    assert caught.value.status == 400
    with pytest.raises(ValidationError):
        OllamaChatRequest.model_validate({"model": "m", "messages": [], "options": {"num_predict": "4"}})


def test_chat_template_switches_are_forwarded_bounded_and_ollama_think_maps_to_enable_thinking():
    from pydantic import ValidationError

    from spark_labs.serve.schemas import ChatCompletionRequest, OllamaChatRequest, OllamaGenerateRequest

    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    asked = ChatCompletionRequest.model_validate({**base, "chat_template_kwargs": {"enable_thinking": False}})
    assert asked.to_generation(GatewaySettings()).extra == {"chat_template_kwargs": {"enable_thinking": False}}
    for bad in ({"nested": {"a": 1}}, {f"k{i}": 1 for i in range(17)}):
        with pytest.raises(ValidationError):
            ChatCompletionRequest.model_validate({**base, "chat_template_kwargs": bad})
    switched = OllamaChatRequest.model_validate({**base, "think": False}).to_generation(GatewaySettings())
    assert switched.extra == {"chat_template_kwargs": {"enable_thinking": False}}
    generated = OllamaGenerateRequest.model_validate({"model": "m", "prompt": "hi", "think": True})
    assert generated.to_generation(GatewaySettings()).extra == {"chat_template_kwargs": {"enable_thinking": True}}
    effort = OllamaChatRequest.model_validate({**base, "think": "high"}).to_generation(GatewaySettings())
    assert effort.extra == {}  # gpt-oss effort levels: accepted, not used
    with pytest.raises(ValidationError):
        OllamaChatRequest.model_validate({**base, "think": "maybe"})


def test_public_paths_are_exact_or_starred_prefixes_and_everything_else_is_protected():
    from pydantic import ValidationError

    from spark_labs.serve.auth import PublicPaths

    public = PublicPaths(["/health", "/ui/*"])
    assert "/health" in public and "/ui/" in public and "/ui/app.js" in public
    assert "/health/x" not in public and "/v1/models" not in public and "/uix" not in public
    with pytest.raises(ValueError, match="must start with '/'"):
        public.add("ui/*")
    with pytest.raises(ValidationError, match="must start with '/'"):
        GatewaySettings(public_paths=["status"])
    assert GatewaySettings(public_paths="/a, /b/*").public_paths == ["/a", "/b/*"]


def test_error_types_follow_the_status_class():
    from spark_labs.serve.errors import error_type

    assert [error_type(s) for s in (405, 413, 422, 401, 429, 499, 500, 502)] == [
        "invalid_request_error", "invalid_request_error", "invalid_request_error", "authentication_error",
        "rate_limit_exceeded", "client_closed_request", "server_error", "upstream_error"]


def test_every_setting_is_in_the_docs_table_with_its_variable_and_flag():
    from pathlib import Path

    from spark_labs.serve.cli import _FLAG_NAMES

    docs = (Path(__file__).parents[2] / "docs" / "gateway.md").read_text()
    for name in GatewaySettings.model_fields:
        flag = _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))
        row = f"| `{name}` | `SPARK_LABS_GATEWAY_{name.upper()}` | `{flag}"
        assert row in docs, f"docs/gateway.md's settings table lacks {row}"
