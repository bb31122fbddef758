from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from joserfc.jwk import RSAKey

from healthmesh.preferences.app import create_app
from healthmesh.preferences.settings import Settings

pytestmark = pytest.mark.integration

TokenFor = Callable[[UUID], str]

# The documented defaults (README): dedicated devices first, aggregators next, food logs and
# generic CSV last; every source that can provide a category is in its list.
DEFAULTS = {
    "activity": [
        "apple_health",
        "fitbit",
        "oura",
        "whoop",
        "withings",
        "strava",
        "myfitnesspal",
        "cronometer",
        "csv",
    ],
    "sleep": ["oura", "whoop", "fitbit", "withings", "apple_health", "csv"],
    "body": ["withings", "fitbit", "apple_health", "whoop", "cronometer", "myfitnesspal", "csv"],
    "heart": ["apple_health", "oura", "whoop", "fitbit", "withings", "cronometer", "csv"],
    "recovery": ["oura", "whoop", "csv"],
    "nutrition": ["cronometer", "myfitnesspal", "apple_health", "csv"],
}


def default(category: str) -> dict[str, Any]:
    return {"sources": DEFAULTS[category], "fallback": True, "default": True}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def preferences_of(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/v1/preferences", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_new_user_gets_the_defaults(client: httpx.AsyncClient, token_for: TokenFor) -> None:
    body = await preferences_of(client, token_for(uuid4()))
    assert body["overrides"] == {}
    assert body["categories"] == {category: default(category) for category in DEFAULTS}


async def test_put_then_get(client: httpx.AsyncClient, token_for: TokenFor) -> None:
    token = token_for(uuid4())
    choice = {"sources": ["whoop", "apple_health"], "fallback": False}
    response = await client.put("/v1/preferences/sleep", json=choice, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"category": "sleep", **choice}

    categories = (await preferences_of(client, token))["categories"]
    assert categories["sleep"] == {**choice, "default": False}
    assert categories["activity"] == default("activity")

    again = {"sources": ["oura"], "fallback": True}
    await client.put("/v1/preferences/sleep", json=again, headers=bearer(token))
    sleep = (await preferences_of(client, token))["categories"]["sleep"]
    assert sleep == {**again, "default": False}

    response = await client.delete("/v1/preferences/sleep", headers=bearer(token))
    assert response.status_code == 204
    categories = (await preferences_of(client, token))["categories"]
    assert categories["sleep"] == default("sleep")


@pytest.mark.parametrize(
    ("sources", "reason"),
    [
        (["strava"], "strava cannot provide sleep data"),
        (["oura", "strava"], "strava cannot provide sleep data"),
        ([], "at least one source"),
        (["oura", "oura"], "more than once"),
        (["garmin"], "unknown source garmin"),
    ],
)
async def test_an_impossible_priority_is_422_with_the_reason(
    client: httpx.AsyncClient, token_for: TokenFor, sources: list[str], reason: str
) -> None:
    token = token_for(uuid4())
    response = await client.put(
        "/v1/preferences/sleep", json={"sources": sources, "fallback": True}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_preference"
    assert reason in response.json()["error"]["message"]
    categories = (await preferences_of(client, token))["categories"]
    assert categories["sleep"] == default("sleep")


async def test_an_unknown_category_is_404(client: httpx.AsyncClient, token_for: TokenFor) -> None:
    response = await client.put(
        "/v1/preferences/mood",
        json={"sources": ["oura"], "fallback": True},
        headers=bearer(token_for(uuid4())),
    )
    assert response.status_code == 404
    assert "mood" in response.json()["error"]["message"]


async def test_a_body_without_fallback_is_422(
    client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    response = await client.put(
        "/v1/preferences/sleep", json={"sources": ["oura"]}, headers=bearer(token_for(uuid4()))
    )
    assert response.status_code == 422
    assert "fallback" in response.json()["error"]["message"]


async def test_overrides(client: httpx.AsyncClient, token_for: TokenFor) -> None:
    token = token_for(uuid4())
    response = await client.put(
        "/v1/preferences/overrides/steps",
        json={"sources": ["apple_health", "oura"]},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"metric": "steps", "sources": ["apple_health", "oura"]}
    assert (await preferences_of(client, token))["overrides"] == {"steps": ["apple_health", "oura"]}

    response = await client.delete("/v1/preferences/overrides/steps", headers=bearer(token))
    assert response.status_code == 204
    assert (await preferences_of(client, token))["overrides"] == {}


@pytest.mark.parametrize(
    ("metric", "sources", "reason"),
    [
        # Strava has activity data, but its activities are workouts only: no steps, no distance.
        ("steps", ["strava"], "strava cannot provide steps; its activity metrics are workout"),
        ("distance", ["withings", "strava"], "strava cannot provide distance;"),
        (
            "steps",
            ["apple_health", "whoop"],
            "whoop cannot provide steps; its activity metrics are total_energy, workout",
        ),
        ("distance", ["oura"], "oura cannot provide distance;"),
        ("body_mass", ["oura"], "oura cannot provide body_mass: it has no body data"),
        ("hrv_rmssd", ["apple_health"], "apple_health cannot provide hrv_rmssd;"),
        ("sleep_duration", ["strava"], "strava cannot provide sleep_duration: it has no sleep"),
        ("mood", ["oura"], "unknown metric 'mood'"),
        ("steps", [], "at least one source"),
        ("steps", ["garmin"], "unknown source garmin"),
    ],
)
async def test_an_impossible_override_is_422_and_stores_nothing(
    client: httpx.AsyncClient, token_for: TokenFor, metric: str, sources: list[str], reason: str
) -> None:
    token = token_for(uuid4())
    response = await client.put(
        f"/v1/preferences/overrides/{metric}", json={"sources": sources}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_preference"
    assert reason in response.json()["error"]["message"]
    assert (await preferences_of(client, token))["overrides"] == {}


async def test_one_users_choices_are_invisible_to_another(
    client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    alice, bob = token_for(uuid4()), token_for(uuid4())
    await client.put(
        "/v1/preferences/heart",
        json={"sources": ["oura"], "fallback": False},
        headers=bearer(alice),
    )
    await client.put(
        "/v1/preferences/overrides/steps", json={"sources": ["withings"]}, headers=bearer(alice)
    )
    seen_by_bob = await preferences_of(client, bob)
    assert seen_by_bob["categories"]["heart"] == default("heart")
    assert seen_by_bob["overrides"] == {}

    # Bob resetting his own choices leaves Alice's alone.
    await client.delete("/v1/preferences/heart", headers=bearer(bob))
    await client.delete("/v1/preferences/overrides/steps", headers=bearer(bob))
    seen_by_alice = await preferences_of(client, alice)
    assert seen_by_alice["categories"]["heart"] == {
        "sources": ["oura"],
        "fallback": False,
        "default": False,
    }
    assert seen_by_alice["overrides"] == {"steps": ["withings"]}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/preferences"),
        ("PUT", "/v1/preferences/sleep"),
        ("DELETE", "/v1/preferences/sleep"),
        ("PUT", "/v1/preferences/overrides/steps"),
        ("DELETE", "/v1/preferences/overrides/steps"),
    ],
)
async def test_every_route_needs_a_token(client: httpx.AsyncClient, method: str, path: str) -> None:
    body = {"sources": ["oura"], "fallback": True}
    response = await client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("missing bearer token")


async def test_a_forged_or_garbled_token_is_401_with_the_reason(
    client: httpx.AsyncClient, sign: Callable[[RSAKey, UUID], str]
) -> None:
    stranger = RSAKey.generate_key(2048, auto_kid=True)
    forged = await client.get("/v1/preferences", headers=bearer(sign(stranger, uuid4())))
    assert forged.status_code == 401
    assert forged.json()["error"]["message"] == "token signed by an unknown key"
    garbled = await client.get("/v1/preferences", headers=bearer("not-a-token"))
    assert garbled.status_code == 401
    assert garbled.json()["error"]["message"] == "malformed token"


async def test_without_a_given_verifier_tokens_are_checked_against_auth(
    settings: Settings, token_for: TokenFor
) -> None:
    # Nothing listens on auth_url here, so the real JWKS fetch fails: 503, not 500 or a pass.
    app = create_app(settings.model_copy(update={"auth_url": "http://127.0.0.1:9"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://preferences") as client:
            response = await client.get("/v1/preferences", headers=bearer(token_for(UUID(int=1))))
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "auth_unavailable"
            assert (await client.get("/readyz")).status_code == 200


async def test_sources_say_how_they_are_reached_and_what_they_give(
    client: httpx.AsyncClient, token_for: TokenFor
) -> None:
    answer = await client.get("/v1/sources", headers=bearer(token_for(uuid4())))
    assert answer.status_code == 200
    sources = {s["id"]: s for s in answer.json()}
    # Only what the normalizer's strava mapper emits: each activity is one workout sample.
    assert sources["strava"] == {
        "id": "strava",
        "kind": "oauth",
        "categories": ["activity"],
        "metrics": ["workout"],
    }
    assert sources["whoop"] == {
        "id": "whoop",
        "kind": "oauth",
        "categories": ["activity", "body", "heart", "recovery", "sleep"],
        "metrics": [
            "heart_rate",
            "hrv_rmssd",
            "recovery",
            "respiratory_rate",
            "resting_heart_rate",
            "skin_temperature",
            "sleep_duration",
            "sleep_session",
            "spo2",
            "strain",
            "total_energy",
            "workout",
        ],
    }
    assert sources["cronometer"]["kind"] == "file"
    assert sources["cronometer"]["categories"] == ["activity", "body", "heart", "nutrition"]
    assert "energy_intake" in sources["cronometer"]["metrics"]
    assert "steps" not in sources["cronometer"]["metrics"]
    assert "hrv_rmssd" not in sources["apple_health"]["metrics"]  # Apple's HRV is SDNN
    assert set(sources) == {
        "apple_health",
        "cronometer",
        "csv",
        "fitbit",
        "myfitnesspal",
        "oura",
        "strava",
        "whoop",
        "withings",
    }
    assert (await client.get("/v1/sources")).status_code == 401
