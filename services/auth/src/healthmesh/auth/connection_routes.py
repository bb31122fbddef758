"""Provider connections over HTTP: connect, the OAuth callback, list, disconnect, and the
internal token endpoint the connectors use."""

import hmac
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from healthmesh.auth.connections import app_redirect_location
from healthmesh.auth.deps import AppSettings, ConnectionsDep, CurrentCaller, Keys
from healthmesh.auth.tokens import verify_access_token
from healthmesh.common.access_tokens import InvalidToken
from healthmesh.common.http import ApiError

router = APIRouter(tags=["connections"])

ProviderId = Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")]


class ConnectRequest(BaseModel):
    redirect_uri: str | None = None
    """Where to send the user's browser once connected (an allowed app origin)."""


@router.post("/v1/connections/{provider}")
async def connect(
    provider: ProviderId,
    caller: CurrentCaller,
    connections: ConnectionsDep,
    body: ConnectRequest | None = None,
) -> dict[str, str]:
    """Start connecting a provider: open the returned authorize URL in the user's browser."""
    redirect = body.redirect_uri if body else None
    return {"authorize_url": await connections.start(caller.user_id, provider, redirect)}


@router.get("/v1/oauth/{provider}/callback", response_model=None)
async def callback(
    provider: ProviderId,
    request: Request,
    connections: ConnectionsDep,
    keys: Keys,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> RedirectResponse | dict[str, str]:
    """The provider sends the user's browser back here with a code and the state."""
    caller = None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            caller = verify_access_token(token.strip(), keys.verification).user_id
        except InvalidToken as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None
    completed = await connections.complete(provider, state, code, error, caller)
    location = app_redirect_location(completed)
    if location is not None:
        return RedirectResponse(location, status_code=302)
    return {"provider": provider, "status": "connected"}


@router.get("/v1/connections")
async def list_connections(
    caller: CurrentCaller, connections: ConnectionsDep
) -> list[dict[str, Any]]:
    """The caller's connections and their status."""
    return await connections.list(caller.user_id)


@router.delete("/v1/connections/{provider}", status_code=204)
async def disconnect(
    provider: ProviderId,
    caller: CurrentCaller,
    connections: ConnectionsDep,
    delete_data: Annotated[bool, Query()] = False,
) -> Response:
    """Revoke at the provider, delete the tokens; optionally ask for the data to be deleted."""
    await connections.disconnect(caller.user_id, provider, delete_data)
    return Response(status_code=204)


class TokenRequest(BaseModel):
    rejected_sha256: str | None = None
    """SHA-256 (hex) of an access token the provider refused: refresh unless already done."""


class ReauthReport(BaseModel):
    reason: str


def _require_service(settings: AppSettings, authorization: str) -> None:
    presented = authorization.removeprefix("Bearer ").strip()
    if not hmac.compare_digest(presented.encode(), settings.internal_token.encode()):
        raise ApiError(401, "unauthorized", "internal endpoint: service credentials required")


@router.post("/internal/v1/connections/{provider}/{user_id}/token", include_in_schema=False)
async def internal_token(
    provider: ProviderId,
    user_id: UUID,
    connections: ConnectionsDep,
    settings: AppSettings,
    response: Response,
    authorization: Annotated[str, Header()] = "",
    body: TokenRequest | None = None,
) -> dict[str, str]:
    """A working access token for a connector (service-to-service; never for clients)."""
    _require_service(settings, authorization)
    response.headers["Cache-Control"] = "no-store"
    rejected = body.rejected_sha256 if body else None
    tokens = await connections.access_token(user_id, provider, rejected)
    return {
        "access_token": tokens.access_token,
        "expires_at": tokens.expires_at.isoformat(),
        "provider_user_id": tokens.provider_user_id or "",
    }


@router.post(
    "/internal/v1/connections/{provider}/{user_id}/reauth",
    status_code=204,
    include_in_schema=False,
)
async def internal_reauth(
    provider: ProviderId,
    user_id: UUID,
    report: ReauthReport,
    connections: ConnectionsDep,
    settings: AppSettings,
    authorization: Annotated[str, Header()] = "",
) -> None:
    """A connector reports a dead grant (refused even fresh, or revoked at the provider)."""
    _require_service(settings, authorization)
    await connections.mark_reauth(user_id, provider, report.reason[:200])
