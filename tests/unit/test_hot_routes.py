"""The generation routes answer the same whether the gateway's middleware calls them itself (hot routes, what
``create_app`` does) or hands them to Starlette's router and FastAPI's request handler as before: every case
below is sent to both, each a real server (uvicorn in a thread) in front of the calibration upstream."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from gateway_support import StubUpstream
from pydantic import BaseModel

from spark_labs.serve import GatewaySettings, ProxyBackend, create_app, start_gateway
from spark_labs.serve.errors import GatewayError
from spark_labs.serve.hot_routes import HotRoute, hot_routes
from spark_labs.serve.middleware import GENERATION_ROUTES, GatewayMiddleware

CHAT = {"model": "calibration", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
JSON = {"Content-Type": "application/json"}

CASES = {
    "chat": ("/v1/chat/completions", {"json": CHAT}),
    "chat stream": ("/v1/chat/completions", {"json": {**CHAT, "stream": True}}),
    "completion": ("/v1/completions", {"json": {"model": "calibration", "prompt": "hi", "max_tokens": 2}}),
    "ollama chat": ("/api/chat", {"json": {"model": "calibration", "messages": CHAT["messages"], "stream": False}}),
    "ollama generate": ("/api/generate", {"json": {"model": "calibration", "prompt": "hi"}}),
    "ollama load call": ("/api/generate", {"json": {"model": "calibration"}}),
    "unknown model": ("/v1/chat/completions", {"json": {**CHAT, "model": "nope"}}),
    "unknown model, ollama": ("/api/chat", {"json": {"model": "nope", "messages": CHAT["messages"]}}),
    "invalid JSON": ("/v1/chat/completions", {"content": b'{"model": ', "headers": JSON}),
    "invalid JSON, ollama": ("/api/chat", {"content": b"{nope", "headers": JSON}),
    "empty body": ("/v1/chat/completions", {"content": b"", "headers": JSON}),
    "no Content-Type": ("/v1/chat/completions", {"content": b'{"model": "calibration"}'}),
    "text/plain": ("/v1/chat/completions", {"content": b'{"model": "calibration"}',
                                           "headers": {"Content-Type": "text/plain"}}),
    "application/x+json; charset": ("/v1/completions", {"content": b'{"model": "calibration", "prompt": "x"}',
                                                         "headers": {"Content-Type": "Application/X+JSON; a=b"}}),
    "not UTF-8": ("/v1/chat/completions", {"content": b'{"model": "\xff\xfe\xfa"}', "headers": JSON}),
    "nested too deep": ("/v1/chat/completions", {"content": b"[" * 100_000, "headers": JSON}),
    "a JSON list": ("/v1/chat/completions", {"json": [CHAT]}),
    "wrong field type": ("/v1/chat/completions", {"json": {**CHAT, "max_tokens": "many"}}),
    "unknown field": ("/v1/chat/completions", {"json": {**CHAT, "surprise": 1}}),
    "missing messages": ("/v1/chat/completions", {"json": {"model": "calibration"}}),
    "several problems": ("/v1/chat/completions", {"json": {"messages": 3, "temperature": "hot"}}),
    # valid, or nearly, in ways where parsing the bytes in one step could differ from json.loads then validating
    "a key twice": ("/v1/chat/completions", {"content": b'{"model": "x", "model": "calibration", "messages": '
                                                         b'[{"role": "user", "content": "hi"}], "max_tokens": 2}',
                                              "headers": JSON}),
    "a lone surrogate": ("/v1/chat/completions", {"content": b'{"model": "calibration", "messages": [{"role": '
                                                              b'"user", "content": "\\ud800"}], "max_tokens": 2}',
                                                   "headers": JSON}),
    "a byte-order mark": ("/v1/completions", {"content": b'\xef\xbb\xbf{"model": "calibration", "prompt": "x", '
                                                          b'"max_tokens": 2}', "headers": JSON}),
    "NaN temperature": ("/v1/completions", {"content": b'{"model": "calibration", "prompt": "x", "temperature": NaN}',
                                            "headers": JSON}),
    "an integer for a float": ("/v1/completions", {"json": {"model": "calibration", "prompt": "x", "top_p": 1}}),
    "a float for an integer": ("/v1/completions", {"json": {"model": "calibration", "prompt": "x", "seed": 1.0}}),
    "extra nested fields": ("/v1/chat/completions", {"json": {**CHAT, "chat_template_kwargs": {"a": 1, "b": True},
                                                              "metadata": {"k": [1, 2.5, None, "é"]}}}),
    "text parts": ("/v1/chat/completions", {"json": {**CHAT, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}}),
}
# What differs between any two answers: ids, clocks, durations, and the calibration upstream's text (its clock).
_VARYING = re.compile(rb'("(?:id|created|created_at)": ?)(?:"[^"]*"|\d+)|("[a-z_]*duration": ?)\d+|()\d+:\d+:\d+')


def _routed_only(app: FastAPI) -> FastAPI:
    """The same app with its middleware handing every request to the router, as before hot routes."""
    for middleware in app.user_middleware:
        if middleware.cls is GatewayMiddleware:
            middleware.kwargs["hot_routes"] = {}
    return app


@pytest.fixture(scope="module")
def gateways():
    stub = StubUpstream()
    settings = GatewaySettings(api_keys=[], health_interval_s=0, log_level="warning")
    apps = [create_app(ProxyBackend([stub.url], settings), settings),
            _routed_only(create_app(ProxyBackend([stub.url], settings), settings))]
    with start_gateway(app=apps[0]) as hot, start_gateway(app=apps[1]) as routed:
        yield hot, routed
    stub.stop()


def _answer(gateway, path: str, request: dict) -> tuple:
    response = httpx.post(gateway.url + path, timeout=30, **request)
    return (response.status_code, response.headers.get("content-type"),
            _VARYING.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + b"0", response.content))


@pytest.mark.parametrize("case", list(CASES))
def test_a_generation_route_answers_the_same_called_directly_or_through_the_router(gateways, case):
    path, request = CASES[case]
    hot, routed = (_answer(gateway, path, request) for gateway in gateways)
    assert hot == routed


def test_the_four_generation_routes_are_hot_and_nothing_else():
    settings = GatewaySettings(api_keys=[], health_interval_s=0)
    app = create_app(ProxyBackend(["http://127.0.0.1:9/v1"], settings), settings)
    middleware = next(m for m in app.user_middleware if m.cls is GatewayMiddleware)
    assert set(middleware.kwargs["hot_routes"]) == GENERATION_ROUTES
    assert all(isinstance(route, HotRoute) for route in middleware.kwargs["hot_routes"].values())


def test_an_endpoint_with_more_than_a_body_and_the_request_cannot_be_a_hot_route():
    class Body(BaseModel):
        text: str

    app = FastAPI()

    @app.post("/with-dependency")
    async def with_dependency(body: Body, request: Request, user: str = Depends(lambda: "x")):
        return {}

    @app.post("/with-query")
    async def with_query(body: Body, request: Request, verbose: bool = False):
        return {}

    for path in ("/with-dependency", "/with-query"):
        with pytest.raises(ValueError, match="one body model and the Request"):
            hot_routes(app, {path})


@pytest.mark.parametrize("plain", [False, True], ids=["async handler", "plain function"])
def test_an_exception_handler_added_after_create_app_also_answers_for_hot_routes(plain):
    """The hot route looks handlers up in the app's own table when an error happens, not at create_app, and
    calls a plain function as Starlette does (in the thread pool)."""
    from fastapi.responses import JSONResponse

    settings = GatewaySettings(api_keys=[], health_interval_s=0, log_level="warning")
    app = create_app(ProxyBackend(["http://127.0.0.1:9/v1"], settings), settings)

    def teapot(request, exc):
        return JSONResponse({"mine": exc.message}, status_code=418)

    async def async_teapot(request, exc):
        return teapot(request, exc)

    app.add_exception_handler(GatewayError, teapot if plain else async_teapot)

    with start_gateway(app=app) as gw:
        response = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, timeout=30)
    assert response.status_code == 418 and "unreachable" in response.json()["mine"]
