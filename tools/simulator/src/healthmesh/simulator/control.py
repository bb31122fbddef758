"""The control API (`/_control`, part of no provider): faults, counters, reset, revocation at
the provider, and webhooks sent the way each provider sends them."""

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from healthmesh.simulator.context import Context
from healthmesh.simulator.faults import Fault, FaultKind
from healthmesh.simulator.providers.base import Provider
from healthmesh.simulator.providers.fitbit import Fitbit
from healthmesh.simulator.responses import Answer, json_response

ProviderName = Literal["oura", "whoop", "fitbit", "withings", "strava"]


class FaultIn(BaseModel):
    provider: ProviderName
    path_prefix: str = Field(
        "/", description="Real path prefix (`/v2/usercollection`), with or without /{provider}."
    )
    kind: FaultKind
    count: int = Field(1, ge=1, description="How many of the next matching calls fail.")


class RevokeIn(BaseModel):
    provider: ProviderName
    user: str = Field(description="The simulated user (the `sim_user` who approved).")


class WebhookIn(BaseModel):
    """Provider-specific extras are allowed (see the simulator README)."""

    model_config = ConfigDict(extra="allow")

    provider: ProviderName
    user: str
    url: str


def control_router(ctx: Context, providers: dict[str, Provider]) -> APIRouter:
    router = APIRouter(prefix="/_control", tags=["control"])

    @router.post("/faults")
    async def add_fault(fault: FaultIn) -> dict[str, Any]:
        """Make the next `count` calls matching provider + path prefix fail as `kind`."""
        prefix = fault.path_prefix if fault.path_prefix.startswith("/") else "/" + fault.path_prefix
        if prefix.startswith(f"/{fault.provider}/") or prefix == f"/{fault.provider}":
            prefix = prefix[len(fault.provider) + 1 :] or "/"
        ctx.faults.add(Fault(fault.provider, prefix, fault.kind, fault.count))
        return {"armed": [vars(f) for f in ctx.faults.pending]}

    @router.get("/faults")
    async def list_faults() -> dict[str, Any]:
        """Faults still armed."""
        return {"armed": [vars(f) for f in ctx.faults.pending]}

    @router.delete("/faults")
    async def disarm_faults() -> dict[str, Any]:
        """Disarm every fault still armed (tokens, codes and counters stay)."""
        ctx.faults.reset()
        return {"armed": []}

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        """Calls per provider and endpoint, token calls per grant type, 429s and faults sent."""
        return ctx.stats.snapshot()

    @router.post("/reset")
    async def reset() -> dict[str, str]:
        """Forget every code, token, counter and armed fault."""
        ctx.reset()
        for provider in providers.values():
            provider.oauth.reset()
        return {"status": "reset"}

    @router.post("/revoke")
    async def revoke(body: RevokeIn) -> dict[str, int]:
        """The user revoked access at the provider: every token of theirs stops working."""
        return {"revoked_grants": providers[body.provider].oauth.revoke_user(body.user)}

    @router.post("/webhooks/send")
    async def send_webhook(body: WebhookIn) -> Any:
        """Send one webhook (or handshake) the way the provider does; reports what was sent."""
        provider = providers[body.provider]
        try:
            result = await provider.webhook(body.model_dump())
        except Answer as exc:
            return exc.response
        ctx.stats.webhooks[body.provider] += 1
        return json_response(result)

    @router.get("/webhooks/fitbit/public-key")
    async def google_public_key() -> Response:
        """The P-256 public key that verifies X-HEALTHAPI-SIGNATURE (PEM)."""
        fitbit = providers["fitbit"]
        assert isinstance(fitbit, Fitbit)
        return Response(fitbit.signer.public_pem(), media_type="application/x-pem-file")

    @router.get("/users/{user}")
    async def user(user: str) -> dict[str, Any]:
        """Who `user` is at each provider (ids, time zone): what tests may need to assert."""
        return {name: provider.identity(user) for name, provider in providers.items()}

    return router
