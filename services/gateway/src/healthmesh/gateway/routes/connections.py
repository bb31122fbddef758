"""Provider connections: owned by the auth service (tokens, status) and the connectors (syncs,
webhooks), reached through the gateway. The OAuth callback and the webhooks are public (the
provider calls them); auth checks the state, the connectors verify each webhook."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import httpx
import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from healthmesh.common.http import ApiError
from healthmesh.gateway import db
from healthmesh.gateway.deps import CurrentUser, Db, Http, SettingsDep
from healthmesh.gateway.routes.forwarding import forward, forward_verbatim

router = APIRouter(tags=["connections"])

ProviderId = Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")]


@router.get("/v1/connections")
async def list_connections(
    request: Request, caller: CurrentUser, http: Http, settings: SettingsDep, pool: Db
) -> Response:
    """The caller's provider connections: auth's status, with the connectors' sync status
    (`syncing` while a sync is queued or running, `error` when the last one failed since the
    connection was made: a failure from before a reconnect is history, not the state)."""
    answer = await forward(request, http, settings.auth_url, "/v1/connections")
    if answer.status_code != 200:
        return answer
    connections: list[dict[str, Any]] = orjson.loads(bytes(answer.body))
    syncs = await db.sync_status(pool, caller.user_id)
    for connection in connections:
        sync = syncs.get(connection["provider"])
        if sync is None or connection["status"] != "connected":
            continue
        connection["last_sync_at"] = _iso(sync["last_sync_at"])
        if sync["syncing"]:
            connection["status"] = "syncing"
            continue
        failed = sync["last_job_status"] in ("failed", "reauth_required") and sync["last_error"]
        finished = sync["last_job_finished_at"]
        since = connection.get("connected_at")
        if failed and finished and (since is None or finished >= datetime.fromisoformat(since)):
            connection["status"] = "error"
            connection["last_error"] = sync["last_error"]
    return JSONResponse(connections, headers={"Cache-Control": "no-store"})


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class SyncRequest(BaseModel):
    start: datetime | None = None
    end: datetime | None = None


@router.post("/v1/connections/{provider}/sync", status_code=202)
async def sync_now(
    provider: ProviderId,
    caller: CurrentUser,
    http: Http,
    settings: SettingsDep,
    body: SyncRequest | None = None,
) -> Response:
    """Sync this provider now (incremental, or `start`..`end` again). A sync already queued is
    joined: the same `sync_id` comes back."""
    request = body or SyncRequest()
    payload = {
        "user_id": str(caller.user_id),
        "provider": provider,
        "start": request.start.isoformat() if request.start else None,
        "end": request.end.isoformat() if request.end else None,
    }
    return await _internal(http, settings, "POST", "/internal/v1/syncs", json=payload)


@router.get("/v1/connections/{provider}/syncs/{sync_id}")
async def sync_status(
    provider: ProviderId, sync_id: UUID, caller: CurrentUser, http: Http, settings: SettingsDep
) -> Response:
    """One sync: status, provider calls made, raw events published, error."""
    answer = await _internal(
        http,
        settings,
        "GET",
        f"/internal/v1/syncs/{sync_id}",
        params={"user_id": str(caller.user_id)},
    )
    if answer.status_code == 200 and orjson.loads(bytes(answer.body))["provider"] != provider:
        raise ApiError(404, "not_found", "no such sync")
    return answer


async def _internal(
    http: httpx.AsyncClient,
    settings: SettingsDep,
    method: str,
    path: str,
    json: Any = None,
    params: dict[str, str] | None = None,
) -> Response:
    try:
        upstream = await http.request(
            method,
            f"{settings.connectors_url.rstrip('/')}{path}",
            json=json,
            params=params,
            headers={"Authorization": f"Bearer {settings.internal_token}"},
            timeout=10.0,
        )
    except httpx.HTTPError:
        raise ApiError(503, "unavailable", "the connectors service did not answer") from None
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type"),
    )


# One route per method, each with its own operation id (a multi-method route gives all of them
# one, which OpenAPI forbids and client generators trip over).
@router.get("/v1/webhooks/{provider}", operation_id="verify_webhook")
@router.head("/v1/webhooks/{provider}", operation_id="probe_webhook")
@router.post("/v1/webhooks/{provider}", operation_id="deliver_webhook")
async def webhook(
    provider: ProviderId, request: Request, http: Http, settings: SettingsDep
) -> Response:
    """A provider's webhook: passed verbatim (headers, query, body) to the connectors, which
    verify it the provider's way before anything happens."""
    return await forward_verbatim(
        request, http, settings.connectors_url, f"/v1/webhooks/{provider}"
    )


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
