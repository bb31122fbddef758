"""FastAPI dependencies of the gateway, as `Annotated` aliases: the caller (and a way to ask for
its preferences), the pools, clients."""

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

import asyncpg
import httpx
from fastapi import Depends, Request

from healthmesh.common.access_tokens import Caller, InvalidToken, JwksVerifier
from healthmesh.common.http import ApiError
from healthmesh.common.outbox import Outbox
from healthmesh.common.topics import Topics
from healthmesh.gateway import db
from healthmesh.gateway.settings import Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _upload_writers(request: Request) -> asyncpg.Pool:
    """Connections that hold a resumable upload's lock while a chunk arrives (resumable.py)."""
    pool: asyncpg.Pool = request.app.state.upload_writers
    return pool


def _http(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.http
    return client


def _outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


def _topics(request: Request) -> Topics:
    return Topics(_settings(request).topic_prefix)


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "missing bearer token")
    return token.strip()


async def _current_user(request: Request) -> Caller:
    verifier: JwksVerifier = request.app.state.verifier
    try:
        return await verifier.verify(bearer_token(request))
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    except httpx.HTTPError:
        raise ApiError(503, "unavailable", "cannot reach the auth service's keys") from None


def caller_preferences(
    request: Request, caller: Annotated[Caller, Depends(_current_user)]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Reads the caller's preferences once called (a route asks only when its answer depends on
    them), from the preferences service's read model: a statement, not a call to the service."""
    return partial(db.caller_preferences, _pool(request), caller.user_id)


SettingsDep = Annotated[Settings, Depends(_settings)]
Db = Annotated[asyncpg.Pool, Depends(_pool)]
UploadWriters = Annotated[asyncpg.Pool, Depends(_upload_writers)]
Http = Annotated[httpx.AsyncClient, Depends(_http)]
OutboxDep = Annotated[Outbox, Depends(_outbox)]
TopicsDep = Annotated[Topics, Depends(_topics)]
CurrentUser = Annotated[Caller, Depends(_current_user)]
CallerPreferences = Annotated[Callable[[], Awaitable[dict[str, Any]]], Depends(caller_preferences)]
"""The caller's source preferences (`db.caller_preferences`, filtered by the caller's id)."""
