"""HTTP endpoints of the connectors: provider webhooks (public, through the gateway) and the
internal sync endpoints the gateway calls for a verified user."""

import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from healthmesh.common.http import ApiError
from healthmesh.connectors import jobs
from healthmesh.connectors.providers.base import WebhookRequest
from healthmesh.connectors.webhooks import receive

router = APIRouter()

ProviderId = Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")]
MAX_WEBHOOK_BYTES = 1024 * 1024
MAX_HISTORY = timedelta(days=3650)


@router.api_route("/v1/webhooks/{provider}", methods=["GET", "POST", "HEAD"])
async def webhook(provider: ProviderId, request: Request) -> Response:
    """A provider's notification or verification handshake, verified its own way."""
    state = request.app.state
    spec = state.sync.providers.get(provider)
    if spec is None:
        raise ApiError(404, "unknown_provider", f"no webhooks for {provider!r}")
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise ApiError(413, "payload_too_large", "webhook body over 1 MiB")
    answer = await receive(
        spec,
        WebhookRequest(
            method=request.method,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        ),
        await state.webhook_secrets.for_provider(provider),
        state.pool,
        state.sync.auth,
        state.sync.broker,
        state.sync.topics,
    )
    if answer.body is None:
        return Response(status_code=answer.status)
    return JSONResponse(answer.body, status_code=answer.status)


def _require_service(request: Request, authorization: str) -> None:
    expected = request.app.state.settings.internal_token
    presented = authorization.removeprefix("Bearer ").strip()
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "internal endpoint: service credentials required")


class SyncRequest(BaseModel):
    user_id: UUID
    provider: str
    start: datetime | None = Field(None, description="Re-fetch from here (default: incremental).")
    end: datetime | None = Field(None, description="Up to here (default: now).")


@router.post("/internal/v1/syncs", status_code=202, include_in_schema=False)
async def request_sync(
    body: SyncRequest, request: Request, authorization: Annotated[str, Header()] = ""
) -> dict[str, str]:
    """Queue a sync for a user (or join the one queued): `POST /v1/connections/{p}/sync`."""
    _require_service(request, authorization)
    state = request.app.state
    if body.provider not in state.sync.providers:
        raise ApiError(404, "unknown_provider", f"no connector for {body.provider!r}")
    link = await jobs.link_of(state.pool, body.user_id, body.provider)
    if link is None or link["status"] == "disconnected":
        raise ApiError(404, "not_connected", f"no {body.provider} connection for this user")
    if link["status"] == "reauth_required":
        raise ApiError(409, "reauth_required", f"the {body.provider} connection must be renewed")
    now = datetime.now(UTC)
    start, end = _aware(body.start), _aware(body.end)
    if start is not None and end is not None and start >= end:
        raise ApiError(422, "invalid_request", "start must be before end")
    if start is not None and start < now - MAX_HISTORY:
        raise ApiError(422, "invalid_request", "start is more than 10 years ago")
    sync_id = await jobs.request_sync(
        state.pool,
        body.user_id,
        body.provider,
        "manual",
        start or now - timedelta(days=1),
        end,
    )
    state.workers.wake()
    return {"sync_id": str(sync_id)}


@router.get("/internal/v1/syncs/{sync_id}", include_in_schema=False)
async def sync_status(
    sync_id: UUID,
    user_id: UUID,
    request: Request,
    authorization: Annotated[str, Header()] = "",
) -> dict[str, Any]:
    """One sync of the user's: status, calls made, events published, error."""
    _require_service(request, authorization)
    view = await jobs.job_view(request.app.state.pool, sync_id)
    if view is None or view["user_id"] != user_id:
        raise ApiError(404, "not_found", "no such sync")
    del view["user_id"]
    return view


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
