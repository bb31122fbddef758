"""The simulator's application: `create_app(settings)` is what a runner starts.

Each provider is served under `/{provider}` followed by the real path of the real URL; the
control API is under `/_control`. One middleware counts every provider call, plays injected
faults, and adds the rate-limit headers a provider sends on every answer.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from healthmesh.simulator.clock import Clock, SystemClock
from healthmesh.simulator.context import Context
from healthmesh.simulator.control import control_router
from healthmesh.simulator.providers import make_providers
from healthmesh.simulator.providers.base import Provider
from healthmesh.simulator.responses import Answer
from healthmesh.simulator.settings import Settings


def create_app(
    settings: Settings, *, clock: Clock | None = None, http: httpx.AsyncClient | None = None
) -> FastAPI:
    """The app; `clock` and `http` (what webhooks are sent with) are injectable for tests."""
    ctx = Context(settings=settings, clock=clock or SystemClock(), http=http)
    providers = make_providers(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if http is not None:
            yield
            return
        async with httpx.AsyncClient(timeout=settings.webhook_timeout_s) as client:
            ctx.http = client
            yield

    app = FastAPI(
        title="HealthMesh provider simulator",
        version="1",
        lifespan=lifespan,
        description="Oura, WHOOP, Fitbit (Google Health API), Withings and Strava, simulated.",
    )
    app.state.ctx = ctx
    app.state.providers = providers

    @app.exception_handler(Answer)
    async def _answer(_: Request, exc: Answer) -> Response:
        return exc.response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for provider in providers.values():
        app.include_router(provider.router())
    app.include_router(control_router(ctx, providers))
    app.add_middleware(ProviderCalls, ctx=ctx, providers=providers)
    return app


class ProviderCalls:
    """Pure ASGI middleware: count, inject faults, add rate-limit headers."""

    def __init__(self, app: ASGIApp, ctx: Context, providers: dict[str, Provider]) -> None:
        self.app = app
        self.ctx = ctx
        self.providers = providers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name, _, rest = scope["path"].lstrip("/").partition("/")
        provider = self.providers.get(name)
        if provider is None:
            await self.app(scope, receive, send)
            return
        real_path = "/" + rest
        self.ctx.stats.calls[name][self._endpoint(provider, scope, real_path)] += 1
        kind = self.ctx.faults.take(name, real_path)
        if kind is not None:
            self.ctx.stats.faults[name] += 1
            if kind == "timeout":
                await asyncio.sleep(self.ctx.settings.fault_timeout_s)
            await provider.fault(kind)(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = state.get("rate_limit_headers") or {}
                present = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                for key, value in extra.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_limits)

    def _endpoint(self, provider: Provider, scope: Scope, real_path: str) -> str:
        """The route template (`/api/v3/activities/{id}`), so ids do not multiply the keys."""
        for route in provider.router().routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                path: str = getattr(route, "path", real_path)
                return "/" + path.split("/", 2)[2] if path.count("/") >= 2 else path
        return real_path
