"""What routes depend on, as `Annotated` aliases. The lifespan puts the resources on app.state."""

from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from healthmesh.auth.connections import Connections
from healthmesh.auth.passwords import Passwords
from healthmesh.auth.settings import Settings
from healthmesh.auth.signing_keys import SigningKeys
from healthmesh.auth.tokens import verify_access_token
from healthmesh.common.access_tokens import Caller, InvalidToken
from healthmesh.common.http import ApiError


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _keys(request: Request) -> SigningKeys:
    keys: SigningKeys = request.app.state.signing_keys
    return keys


def _passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


def _connections(request: Request) -> Connections:
    connections: Connections = request.app.state.connections
    return connections


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Db = Annotated[asyncpg.Pool, Depends(_pool)]
Keys = Annotated[SigningKeys, Depends(_keys)]
Hasher = Annotated[Passwords, Depends(_passwords)]
AppSettings = Annotated[Settings, Depends(_settings)]
ConnectionsDep = Annotated[Connections, Depends(_connections)]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/token.")


async def _current_caller(
    keys: Keys, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)")
    try:
        return verify_access_token(credentials.credentials, keys.verification)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


CurrentCaller = Annotated[Caller, Depends(_current_caller)]
