"""The caller's source preferences, asked of the preferences service with the caller's own token
(so it answers for that user only)."""

from typing import Any

import httpx

from healthmesh.common.http import ApiError


async def fetch_preferences(
    http: httpx.AsyncClient, preferences_url: str, authorization: str
) -> dict[str, Any]:
    """`GET /v1/preferences` of the caller: categories (sources, fallback) and overrides."""
    try:
        answer = await http.get(
            f"{preferences_url}/v1/preferences",
            headers={"authorization": authorization},
            timeout=5.0,
        )
        answer.raise_for_status()
    except httpx.HTTPError:
        raise ApiError(503, "unavailable", "the preferences service did not answer") from None
    preferences: dict[str, Any] = answer.json()
    return preferences
