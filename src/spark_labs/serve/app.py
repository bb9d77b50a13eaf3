"""The app factory: wires backend, settings, protections, both API flavours and the operational routes.

    app = create_app(ProxyBackend(["http://127.0.0.1:8000/v1"]), GatewaySettings(api_keys=["k1"]))

Operational routes: ``/health`` (the process is alive), ``/ready`` (a request would be served now: 503
with the reason while no upstream is healthy, while the transformers backend warms up, or while draining),
``/metrics`` (Prometheus; upstreams by name, not address). ``/openapi.json`` describes the gateway's own
routes and the public paths to anyone, and routes added to the app (lab 05) to key holders only.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from . import logs
from .backends import Backend
from .errors import GatewayError, is_ollama_route
from .generation import Gateway
from .hot_routes import hot_routes
from .middleware import GENERATION_ROUTES, GatewayMiddleware
from .ollama_api import router as ollama_router
from .openai_api import router as openai_router
from .settings import GatewaySettings


def create_app(backend: Backend, settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    logs.configure(settings.log_json, settings.log_level)
    gateway = Gateway(backend, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not gateway.auth.enabled:
            logs.log(30, "no API keys configured: authentication is OFF (set SPARK_LABS_GATEWAY_API_KEYS or "
                     "--api-key to turn it on)")
        await backend.start(gateway.metrics)
        logs.log(20, "gateway started", backend=backend.name, models=backend.models())
        try:
            yield
        finally:
            # Normally the server drained already (runner.GatewayServer); this covers other ASGI servers.
            await gateway.admission.drain(settings.drain_timeout_s)
            await backend.aclose()
            logs.log(20, "gateway stopped")

    app = FastAPI(title="spark-labs gateway", version=__version__, lifespan=lifespan,
                  description="OpenAI- and Ollama-compatible gateway in front of LLM engines.")
    app.state.gateway = gateway
    app.include_router(openai_router)
    app.include_router(ollama_router)
    _add_operational_routes(app, gateway)
    _add_openapi_route(app, gateway)
    _add_error_handlers(app, gateway)
    app.add_middleware(GatewayMiddleware, gateway=gateway, hot_routes=hot_routes(app, GENERATION_ROUTES))
    if settings.cors_origins:  # outermost, so CORS preflights are answered before the API-key check
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    return app


def _add_operational_routes(app: FastAPI, gateway: Gateway) -> None:
    @app.get("/health", tags=["ops"])
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready(request: Request) -> JSONResponse:
        ok, detail = gateway.backend.readiness()
        answer = {"ready": ok, "status": "ready" if ok else "unavailable", **readiness_counts(detail)}
        if gateway.admission.draining:
            answer.update(ready=False, status="unavailable", reason="shutting down")
        elif not ok:  # the transformers backend says why (warming up); the proxy has no healthy upstream
            answer["reason"] = detail.get("reason", "no healthy upstream")
        if gateway.holds_key(request.headers.get("authorization"), _client(request)):
            answer = {**detail, **answer}
        return JSONResponse(answer, status_code=200 if answer["ready"] else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        return Response(gateway.metrics.exposition(), media_type=gateway.metrics.content_type)


def readiness_counts(detail: dict) -> dict:
    """What anyone may know: how many upstreams exist and how many can take traffic."""
    upstreams = detail.get("upstreams")
    if upstreams is None:
        return {}
    return {"upstreams_total": len(upstreams),
            "upstreams_available": sum(u["healthy"] and u["breaker"] != "open" for u in upstreams)}


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _add_openapi_route(app: FastAPI, gateway: Gateway) -> None:
    """FastAPI's /openapi.json lists every route to anyone, an added admin route too. This one lists the
    gateway's own routes (the published API) and the public paths to anyone, everything to key holders
    (upstream URLs and added routes are operator knowledge: see Gateway.holds_key)."""
    builtin = {getattr(route, "path", None) for route in app.routes}  # what create_app itself serves
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url]

    def shown(path: str) -> bool:
        return path in builtin or path in gateway.public

    @app.get(app.openapi_url, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        schema = app.openapi()
        if gateway.holds_key(request.headers.get("authorization"), _client(request)):
            return JSONResponse(schema)
        return JSONResponse(public_schema(schema, shown))


def public_schema(schema: dict, shown) -> dict:
    """``schema`` with only the paths ``shown(path)`` accepts, and only the component schemas they use (a
    private route's body model would name it)."""
    paths = {path: item for path, item in schema.get("paths", {}).items() if shown(path)}
    components = schema.get("components", {})
    models = components.get("schemas", {})
    used: set[str] = set()
    pending: list = [paths]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name in models and name not in used:
                    used.add(name)
                    pending.append(models[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    kept = {**components, "schemas": {name: model for name, model in models.items() if name in used}}
    return {**schema, "paths": paths, "components": kept}


def _add_error_handlers(app: FastAPI, gateway: Gateway) -> None:
    def render(request: Request, error: GatewayError) -> JSONResponse:
        request.state.info.error = error.message
        return error.response(ollama=is_ollama_route(request.url.path))

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            gateway.metrics.rejected.labels("invalid_json").inc()
            return render(request, GatewayError(400, "the request body is not valid JSON: "
                                                f"{first.get('ctx', {}).get('error', 'parse error')}; send a JSON "
                                                "object with Content-Type: application/json", code="invalid_json"))
        gateway.metrics.rejected.labels("invalid_request").inc()
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        return render(request, GatewayError(422, f"invalid request: {where}: {first.get('msg', 'malformed body')}"
                                            f"{more}; fix that field and retry", code="invalid_request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return render(request, _routing_error(request, exc))


def _routing_error(request: Request, exc: StarletteHTTPException) -> GatewayError:
    path = request.url.path[:200]
    if exc.status_code == 404:
        return GatewayError(404, f"no route {path}; see /docs for the routes", code="route_not_found")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow") or "another method"
        return GatewayError(405, f"{request.method} is not allowed on {path}; use {allowed} (see /docs)",
                            code="method_not_allowed")
    return GatewayError(exc.status_code, str(exc.detail), code=f"http_{exc.status_code}")
