"""The generation routes, called by the gateway's middleware directly instead of through the rest of the
framework.

A generation request used to pass Starlette's error and exception middlewares, FastAPI's exit-stack
middleware, the router's match against every route, and FastAPI's request handler (exit stacks, the
dependency solver, exception wrapping) before its endpoint ran: measured in-process, about a third of the
gateway's own time per request. In a burst (16 requests arriving together) every request waits for the ones
parsed before it, so that third is paid eight times over by the median request.

The routes stay declared in FastAPI (the OpenAPI schema, ``/docs``, 405 for other methods, trailing-slash
redirects: all of that still goes through the router). A :class:`HotRoute` calls the same endpoint function
with the body decoded and validated by the same field FastAPI would use, and hands every exception to the
app's own exception handlers, so an answer, an error included, is the same either way
(``tests/unit/test_hot_routes.py`` sends each case both ways).
"""

from __future__ import annotations

import json

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response


class HotRoute:
    """``POST path`` of an APIRoute whose endpoint takes exactly one JSON body model and the Request."""

    def __init__(self, route: APIRoute, exception_handlers: dict):
        dependant = route.dependant
        params = (dependant.path_params, dependant.query_params, dependant.header_params, dependant.cookie_params,
                  dependant.dependencies)
        if len(dependant.body_params) != 1 or any(params) or not dependant.request_param_name:
            raise ValueError(f"{route.path}: a hot route's endpoint takes one body model and the Request, nothing "
                             "else (no dependencies, path, query, header or cookie parameters)")
        self.endpoint = route.endpoint
        self.field = route.body_field
        model = self.field.field_info.annotation
        self.model = model if isinstance(model, type) and issubclass(model, BaseModel) else None
        self.body_name, self.request_name = dependant.body_params[0].name, dependant.request_param_name
        self.exception_handlers = exception_handlers  # the app's dict: handlers added later count too

    async def __call__(self, scope, receive, send, body: bytes) -> None:
        """``body``: the request's body, already read from ``receive`` (by the middleware, which bounds its size)."""
        request = Request(scope, receive)
        request._body = body  # Starlette's own cache: request.body() answers it without reading again
        try:
            model = self._validated(body, request.headers.get("content-type"))
            result = await self.endpoint(**{self.body_name: model, self.request_name: request})
            response = result if isinstance(result, Response) else JSONResponse(jsonable_encoder(result))
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # as before: Starlette's outermost middleware answers 500 and the server logs it
            # As Starlette calls them: a plain function runs in the thread pool.
            response = await (handler(request, exc) if is_async_callable(handler)
                              else run_in_threadpool(handler, request, exc))
        await response(scope, receive, send)

    def _validated(self, body: bytes, content_type: str | None):
        """The body model, by FastAPI's rules. A JSON body that is valid takes one step (pydantic parses and
        validates the bytes at once, the same result as ``json.loads`` and then the field's validator: checked
        for each case in the tests); anything else, errors included, takes FastAPI's two steps, so its answer
        is FastAPI's to the letter."""
        if self.model is not None and body and _is_json(content_type):
            try:
                return self.model.model_validate_json(body)
            except ValidationError:
                pass
        value = _decoded(body, content_type)
        if value is None:
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required",
                                           "input": None}])
        model, errors = self.field.validate(value, {}, loc=("body",))
        if errors:
            raise RequestValidationError(errors)
        return model

    def _handler(self, exc: Exception):
        for cls in type(exc).__mro__:
            if cls in self.exception_handlers:
                return self.exception_handlers[cls]
        return None


def _is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/…+json``, parameters and case aside (FastAPI's test)."""
    maintype, _, subtype = (content_type or "").split(";", 1)[0].strip().lower().partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def _decoded(body: bytes, content_type: str | None):
    """The body as FastAPI decodes it for a model: JSON when the Content-Type says so (:func:`_is_json`),
    the raw bytes otherwise (which then fail validation), None when empty."""
    if not body:
        return None
    if not _is_json(content_type):
        return body
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}]) from exc
    except Exception as exc:  # not UTF-8/16/32, nested too deep: FastAPI answers the same 400
        raise HTTPException(400, "There was an error parsing the body") from exc


def hot_routes(app, paths: set[str]) -> dict[str, HotRoute]:
    """The app's ``POST`` routes among ``paths``, keyed by path."""
    return {route.path: HotRoute(route, app.exception_handlers) for route in app.routes
            if isinstance(route, APIRoute) and route.path in paths and "POST" in route.methods}
