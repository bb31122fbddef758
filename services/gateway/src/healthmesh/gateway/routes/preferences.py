"""Preferences, and the sources they rank (`/v1/sources`): owned by the preferences service,
reached through the gateway.

Each route forwards the call (the caller's token included) and returns the service's answer as
it is: the service verifies the token, scopes everything to the caller and validates.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from healthmesh.gateway.deps import Http, SettingsDep
from healthmesh.gateway.routes.forwarding import forward

router = APIRouter(tags=["preferences"])


@router.get("/v1/sources", tags=["sources"])
async def list_sources(request: Request, http: Http, settings: SettingsDep) -> Response:
    """Every source: how it is reached (oauth or file), its categories, and the metrics it really
    yields (Strava: workouts only)."""
    return await forward(request, http, settings.preferences_url, "/v1/sources")


@router.get("/v1/preferences")
async def get_preferences(request: Request, http: Http, settings: SettingsDep) -> Response:
    """Source priority per category, with fallback, and per-metric overrides. `default: true` on
    a category the caller chose nothing for: the documented default order applies, and the
    metric queries use only the sources the caller has data from."""
    return await forward(request, http, settings.preferences_url, "/v1/preferences")


@router.delete("/v1/preferences/overrides/{metric}", status_code=204)
async def delete_override(
    metric: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")],
    request: Request,
    http: Http,
    settings: SettingsDep,
) -> Response:
    """Drop a metric's override: its category's order applies again."""
    return await forward(
        request, http, settings.preferences_url, f"/v1/preferences/overrides/{metric}"
    )


@router.delete("/v1/preferences/{category}", status_code=204)
async def delete_category(
    category: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")],
    request: Request,
    http: Http,
    settings: SettingsDep,
) -> Response:
    """Back to the default order for a category."""
    return await forward(request, http, settings.preferences_url, f"/v1/preferences/{category}")


@router.put("/v1/preferences/overrides/{metric}")
async def put_override(
    metric: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")],
    request: Request,
    http: Http,
    settings: SettingsDep,
) -> Response:
    """Set the source order for one metric, `{"sources": [...]}`; 422 with the reason when a
    source never yields that metric (e.g. steps from Strava) or the metric is unknown."""
    return await forward(
        request, http, settings.preferences_url, f"/v1/preferences/overrides/{metric}"
    )


@router.put("/v1/preferences/{category}")
async def put_category(
    category: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,64}$")],
    request: Request,
    http: Http,
    settings: SettingsDep,
) -> Response:
    """Set the source order and fallback for one category, `{"sources": [...], "fallback": bool}`;
    404 for an unknown category, 422 with the reason when a source cannot provide it."""
    return await forward(request, http, settings.preferences_url, f"/v1/preferences/{category}")
