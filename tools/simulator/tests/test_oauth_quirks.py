"""What makes each provider's OAuth different from the textbook."""

import httpx
from fastapi import FastAPI

from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.testing import (
    OAUTH,
    authorize,
    authorize_params,
    connect,
    pkce_pair,
    redirect_query,
    refresh,
    token_answer,
    token_request,
)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# --- WHOOP --------------------------------------------------------------------------------------


async def test_whoop_state_must_be_exactly_eight_characters(client: httpx.AsyncClient) -> None:
    for state in ("short", "nine-char"):
        params = authorize_params("whoop", state=state)
        query = redirect_query(await client.get(OAUTH["whoop"].authorize, params=params))
        assert query["error"] == "invalid_state"
        assert "code" not in query


async def test_whoop_gives_a_refresh_token_only_with_offline(client: httpx.AsyncClient) -> None:
    tokens = await connect(client, "whoop", scope="read:cycles")
    assert "refresh_token" not in tokens
    assert tokens["token_type"] == "bearer"
    assert tokens["scope"] == "read:cycles"


async def test_whoop_refresh_invalidates_the_old_access_token(client: httpx.AsyncClient) -> None:
    tokens = await connect(client, "whoop")
    token_answer("whoop", await refresh(client, "whoop", tokens["refresh_token"]))
    old = await client.get("/whoop/developer/v2/cycle", headers=bearer(tokens["access_token"]))
    assert old.status_code == 401


# --- Withings -----------------------------------------------------------------------------------


async def test_withings_codes_live_thirty_seconds(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = await authorize(client, "withings", **authorize_params("withings"))
    clock.advance(31)
    response = await token_request(client, "withings", "authorization_code", code)
    assert response.status_code == 200
    assert response.json() == {"status": 503, "body": {}, "error": "Invalid Params: invalid code"}


async def test_withings_token_answer_is_wrapped(client: httpx.AsyncClient) -> None:
    code = await authorize(client, "withings", **authorize_params("withings"))
    body = (await token_request(client, "withings", "authorization_code", code)).json()
    assert body["status"] == 0
    assert set(body["body"]) == {
        "userid",
        "access_token",
        "refresh_token",
        "scope",
        "expires_in",
        "token_type",
    }
    assert body["body"]["expires_in"] == 10_800
    assert body["body"]["scope"] == "user.info,user.metrics,user.activity"


async def test_withings_old_refresh_token_lives_until_the_new_access_token_is_used(
    client: httpx.AsyncClient,
) -> None:
    tokens = await connect(client, "withings")
    first = token_answer("withings", await refresh(client, "withings", tokens["refresh_token"]))
    # The new pair is not used yet: the old refresh token still works (the race safety net).
    second = token_answer("withings", await refresh(client, "withings", tokens["refresh_token"]))
    used = await client.post(
        "/withings/measure", data={"action": "getmeas"}, headers=bearer(second["access_token"])
    )
    assert used.json()["status"] == 0
    late = await refresh(client, "withings", tokens["refresh_token"])
    assert late.json()["error"] == "Invalid Params: invalid refresh_token"
    assert token_answer("withings", await refresh(client, "withings", first["refresh_token"]))


async def test_withings_grace_ends_after_eight_hours(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    tokens = await connect(client, "withings")
    token_answer("withings", await refresh(client, "withings", tokens["refresh_token"]))
    clock.advance(8 * 3600 + 1)
    late = await refresh(client, "withings", tokens["refresh_token"])
    assert late.json()["status"] == 503


async def test_withings_revoke_needs_a_valid_signature(client: httpx.AsyncClient) -> None:
    tokens = await connect(client, "withings")
    response = await client.post(
        "/withings/v2/oauth2",
        data={
            "action": "revoke",
            "client_id": "sandbox-withings",
            "nonce": "made-up",
            "signature": "0" * 64,
            "userid": tokens["userid"],
        },
    )
    assert response.json()["status"] == 342
    probe = await client.post(
        "/withings/measure", data={"action": "getmeas"}, headers=bearer(tokens["access_token"])
    )
    assert probe.json()["status"] == 0


# --- Strava -------------------------------------------------------------------------------------


async def test_strava_echoes_the_granted_scopes_and_embeds_the_athlete(
    client: httpx.AsyncClient,
) -> None:
    params = {**authorize_params("strava"), "sim_grant": "read,activity:read_all"}
    query = redirect_query(await client.get(OAUTH["strava"].authorize, params=params))
    assert query["scope"] == "read,activity:read_all"
    body = token_answer(
        "strava", await token_request(client, "strava", "authorization_code", query["code"])
    )
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 21_600
    assert isinstance(body["expires_at"], int)
    assert body["athlete"]["resource_state"] == 2
    assert isinstance(body["athlete"]["id"], int)


async def test_strava_refresh_keeps_a_token_with_more_than_an_hour_left(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    tokens = await connect(client, "strava")
    clock.advance(3600)
    same = token_answer("strava", await refresh(client, "strava", tokens["refresh_token"]))
    assert same["access_token"] == tokens["access_token"]
    assert same["refresh_token"] == tokens["refresh_token"]
    assert same["expires_at"] == tokens["expires_at"]
    assert "athlete" not in same
    clock.advance(4 * 3600 + 1)  # now less than an hour left
    new = token_answer("strava", await refresh(client, "strava", tokens["refresh_token"]))
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    # Old and new access tokens both work until they expire.
    for token in (tokens["access_token"], new["access_token"]):
        response = await client.get("/strava/api/v3/athlete", headers=bearer(token))
        assert response.status_code == 200


async def test_strava_accepts_the_access_token_as_a_query_parameter(
    client: httpx.AsyncClient,
) -> None:
    tokens = await connect(client, "strava")
    response = await client.get(
        "/strava/api/v3/athlete", params={"access_token": tokens["access_token"]}
    )
    assert response.status_code == 200


# --- Google (fitbit) ----------------------------------------------------------------------------


def google_params(**extra: str) -> dict[str, str]:
    params = authorize_params("fitbit")
    for key in ("access_type", "prompt"):
        params.pop(key)
    return {**params, **extra}


async def exchange(
    client: httpx.AsyncClient, params: dict[str, str], **extra: str
) -> httpx.Response:
    code = await authorize(client, "fitbit", **params)
    return await token_request(client, "fitbit", "authorization_code", code, **extra)


async def test_google_refresh_token_needs_offline_access(client: httpx.AsyncClient) -> None:
    online = (await exchange(client, google_params())).json()
    assert "refresh_token" not in online
    assert online["expires_in"] == 3599
    assert online["token_type"] == "Bearer"


async def test_google_refresh_token_comes_on_first_consent_only(client: httpx.AsyncClient) -> None:
    first = (await exchange(client, google_params(access_type="offline"))).json()
    assert "refresh_token" in first
    again = (await exchange(client, google_params(access_type="offline"))).json()
    assert "refresh_token" not in again
    forced = (await exchange(client, google_params(access_type="offline", prompt="consent"))).json()
    assert "refresh_token" in forced


async def test_google_pkce(client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    params = google_params(
        access_type="offline", code_challenge=challenge, code_challenge_method="S256"
    )
    missing = await exchange(client, params)
    assert missing.json() == {
        "error": "invalid_grant",
        "error_description": "Missing code verifier.",
    }
    wrong = await exchange(client, params, code_verifier="x" * 43)
    assert wrong.json()["error"] == "invalid_grant"
    right = await exchange(client, params, code_verifier=verifier)
    assert right.status_code == 200 and "refresh_token" in right.json()


async def test_google_redirect_carries_the_scope(client: httpx.AsyncClient) -> None:
    params = google_params(access_type="offline")
    query = redirect_query(await client.get(OAUTH["fitbit"].authorize, params=params))
    assert query["scope"] == params["scope"]


async def test_google_unknown_scope_is_an_error_page(client: httpx.AsyncClient) -> None:
    params = google_params(scope="https://www.googleapis.com/auth/fitness.activity.read")
    response = await client.get(OAUTH["fitbit"].authorize, params=params)
    assert response.status_code == 400
    assert "invalid_scope" in response.text


# --- consent ------------------------------------------------------------------------------------


async def test_the_approve_page(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.ctx.settings.auto_approve = False
    params = authorize_params("oura", user="ada")
    page = await client.get(OAUTH["oura"].authorize, params=params)
    assert page.status_code == 200
    assert 'name="decision" value="approve"' in page.text
    assert "ada" in page.text
    approved = await client.post(
        OAUTH["oura"].authorize, params=params, data={"decision": "approve"}
    )
    code = redirect_query(approved)["code"]
    assert token_answer("oura", await token_request(client, "oura", "authorization_code", code))
    denied = await client.post(OAUTH["oura"].authorize, params=params, data={"decision": "deny"})
    assert redirect_query(denied) == {"error": "access_denied", "state": "st4te-ok"}


async def test_sim_user_decides_whose_data(client: httpx.AsyncClient) -> None:
    ids = []
    for user in ("ada", "grace"):
        tokens = await connect(client, "whoop", user=user)
        profile = await client.get(
            "/whoop/developer/v2/user/profile/basic", headers=bearer(tokens["access_token"])
        )
        ids.append(profile.json()["user_id"])
    assert ids[0] != ids[1]
    users = (await client.get("/_control/users/ada")).json()
    assert users["whoop"]["user_id"] == ids[0]
