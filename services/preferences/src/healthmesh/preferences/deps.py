"""What routes depend on, as `Annotated` aliases. The lifespan puts the resources on app.state."""

from typing import Annotated, Protocol

import asyncpg
import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from healthmesh.common.access_tokens import Caller, InvalidToken
from healthmesh.common.http import ApiError
from healthmesh.common.logging import get_logger
from healthmesh.preferences.changes import Changes

log = get_logger(__name__)


class TokenVerifier(Protocol):
    """Turns a bearer token into its caller, or raises InvalidToken saying why.

    The service uses healthmesh.common.access_tokens.JwksVerifier; tests may pass another.
    """

    async def verify(self, token: str) -> Caller: ...


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


def _changes(request: Request) -> Changes:
    changes: Changes = request.app.state.changes
    return changes


Db = Annotated[asyncpg.Pool, Depends(_pool)]
ChangesDep = Annotated[Changes, Depends(_changes)]
Verifier = Annotated[TokenVerifier, Depends(_verifier)]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/token.")


async def _current_caller(
    verifier: Verifier,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)")
    try:
        return await verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("cannot fetch the JWKS from auth", error=type(exc).__name__)
        raise ApiError(
            503, "auth_unavailable", "cannot verify tokens right now: auth's keys are unreachable"
        ) from None


CurrentCaller = Annotated[Caller, Depends(_current_caller)]
