"""Provider connections: owned by the auth service, reached through the gateway. The OAuth
callback is public (the provider sends the user's browser here); auth checks its state."""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from healthmesh.gateway.deps import Http, SettingsDep
from healthmesh.gateway.routes.forwarding import forward

router = APIRouter(tags=["connections"])

ProviderId = Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")]


@router.get("/v1/connections")
async def list_connections(request: Request, http: Http, settings: SettingsDep) -> Response:
    """The caller's provider connections and their status."""
    return await forward(request, http, settings.auth_url, "/v1/connections")


@router.post("/v1/connections/{provider}")
async def connect(
    provider: ProviderId, request: Request, http: Http, settings: SettingsDep
) -> Response:
    """Start connecting a provider: answers the authorize URL to open in the user's browser."""
    return await forward(request, http, settings.auth_url, f"/v1/connections/{provider}")


@router.delete("/v1/connections/{provider}", status_code=204)
async def disconnect(
    provider: ProviderId, request: Request, http: Http, settings: SettingsDep
) -> Response:
    """Revoke and delete a connection (`?delete_data=true` also removes its data)."""
    return await forward(request, http, settings.auth_url, f"/v1/connections/{provider}")


@router.get("/v1/oauth/{provider}/callback")
async def oauth_callback(
    provider: ProviderId, request: Request, http: Http, settings: SettingsDep
) -> Response:
    """Where the provider sends the user back with a code and the state."""
    return await forward(request, http, settings.auth_url, f"/v1/oauth/{provider}/callback")
