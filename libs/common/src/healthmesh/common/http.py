"""What every HTTP service serves the same way: errors, /healthz, /readyz and /metrics."""

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as prometheus_text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from healthmesh.common.logging import get_logger

log = get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]


class ApiError(Exception):
    """An error the client caused or must know about, answered as `{"error": {code, message}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as the contract's error object; never a stack trace."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_request", _describe_validation(exc)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal", "internal error"), 500)


def database_ready(app: FastAPI) -> ReadinessCheck:
    """Readiness of the pool the lifespan put on `app.state.pool`."""

    async def database() -> None:
        await app.state.pool.fetchval("SELECT 1")

    return database


def broker_ready(broker: KafkaBroker) -> ReadinessCheck:
    async def kafka() -> None:
        if not await broker.ping(timeout=2.0):
            raise ConnectionError("Kafka broker unreachable")

    return kafka


class _Measure:
    """Counts and times every request by route template. Plain ASGI: Starlette's
    `@app.middleware("http")` runs each request through extra tasks and streams, a cost paid on
    every request of every service."""

    def __init__(
        self, app: ASGIApp, *, service: str, requests: Counter, latency: Histogram
    ) -> None:
        self.app = app
        self.service = service
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the handlers is answered 500 further out

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(self.service, scope["method"], route, str(status)).inc()
            self.latency.labels(self.service, route).observe(time.perf_counter() - started)


def install_operations(app: FastAPI, service: str, checks: list[ReadinessCheck]) -> None:
    """/healthz (alive), /readyz (every dependency answers) and /metrics (Prometheus)."""
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total",
        "HTTP requests",
        ["service", "method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "http_request_seconds", "HTTP request latency", ["service", "route"], registry=registry
    )

    app.add_middleware(_Measure, service=service, requests=requests, latency=latency)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        for check in checks:
            try:
                await check()
            except Exception as exc:
                return JSONResponse(
                    error_body("not_ready", f"{check.__name__}: {type(exc).__name__}"), 503
                )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(prometheus_text(registry), media_type=CONTENT_TYPE_LATEST)
