"""Identity routes are auth's: the gateway passes them on with the caller's token and body, and
passes auth's answer back as it is."""

import json

import httpx
import pytest
from fastapi import FastAPI

from healthmesh.gateway.settings import Settings

pytestmark = pytest.mark.integration


async def test_patch_me_is_forwarded_to_auth_and_its_answer_returned(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, ada: dict[str, str]
) -> None:
    received: list[httpx.Request] = []

    def auth(request: httpx.Request) -> httpx.Response:
        received.append(request)
        zone = json.loads(request.content)["timezone"]
        if zone != "Europe/Berlin":
            error = {"code": "invalid_timezone", "message": f"unknown timezone {zone!r}"}
            return httpx.Response(422, json={"error": error})
        return httpx.Response(200, json={"id": "u1", "email": "a@example.com", "timezone": zone})

    app.state.http = httpx.AsyncClient(transport=httpx.MockTransport(auth))
    try:
        changed = await client.patch("/v1/me", json={"timezone": "Europe/Berlin"}, headers=ada)
        refused = await client.patch("/v1/me", json={"timezone": "Mars/Base"}, headers=ada)
    finally:
        await app.state.http.aclose()

    assert changed.status_code == 200, changed.text
    assert changed.json()["timezone"] == "Europe/Berlin"
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_timezone"
    first = received[0]
    assert (first.method, str(first.url)) == ("PATCH", f"{settings.auth_url}/v1/me")
    assert first.headers["authorization"] == ada["Authorization"]
    assert json.loads(first.content) == {"timezone": "Europe/Berlin"}
