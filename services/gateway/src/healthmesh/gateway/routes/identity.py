"""Identity: served by the auth service, reached through the gateway."""

from fastapi import APIRouter, Request, Response

from healthmesh.gateway.deps import Http, SettingsDep
from healthmesh.gateway.routes.forwarding import forward

router = APIRouter(tags=["identity"])


@router.post("/v1/users", status_code=201)
async def create_user(request: Request, http: Http, settings: SettingsDep) -> Response:
    """Create a user: `{"email", "password", "timezone"?}`."""
    return await forward(request, http, settings.auth_url, "/v1/users")


@router.post("/v1/auth/token")
async def token(request: Request, http: Http, settings: SettingsDep) -> Response:
    """OAuth2 password or refresh_token grant (form-encoded)."""
    return await forward(request, http, settings.auth_url, "/v1/auth/token")


@router.get("/v1/me")
async def me(request: Request, http: Http, settings: SettingsDep) -> Response:
    """The caller's account."""
    return await forward(request, http, settings.auth_url, "/v1/me")


@router.patch("/v1/me")
async def change_me(request: Request, http: Http, settings: SettingsDep) -> Response:
    """Change the caller's account: `{"timezone": "<IANA name>"}`."""
    return await forward(request, http, settings.auth_url, "/v1/me")


@router.get("/.well-known/jwks.json")
async def jwks(request: Request, http: Http, settings: SettingsDep) -> Response:
    """Public keys that verify access tokens."""
    return await forward(request, http, settings.auth_url, "/.well-known/jwks.json")
