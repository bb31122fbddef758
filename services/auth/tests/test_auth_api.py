import asyncio
import time
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from healthmesh.auth.app import create_app
from healthmesh.auth.settings import Settings
from healthmesh.auth.signing_keys import SigningKeys
from healthmesh.auth.tokens import access_claims, sign_access_token
from healthmesh.common.access_tokens import JwksVerifier

pytestmark = pytest.mark.integration

EMAIL = "Ada.Lovelace@Example.com"
PASSWORD = "analytical engine 1843"


async def register(client: httpx.AsyncClient, email: str = EMAIL) -> dict[str, Any]:
    response = await client.post("/v1/users", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(client: httpx.AsyncClient, email: str = EMAIL) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/v1/me", headers={"Authorization": f"Bearer {access_token}"})


async def change_me(client: httpx.AsyncClient, access_token: str, body: Any) -> httpx.Response:
    return await client.patch(
        "/v1/me", json=body, headers={"Authorization": f"Bearer {access_token}"}
    )


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_create_user_stores_the_email_in_lower_case(client: httpx.AsyncClient) -> None:
    body = await register(client)
    assert set(body) == {"id", "email"}
    assert body["email"] == EMAIL.lower()
    UUID(body["id"])


async def test_an_email_is_taken_whatever_its_case(client: httpx.AsyncClient) -> None:
    await register(client)
    response = await client.post(
        "/v1/users", json={"email": EMAIL.upper(), "password": "another long password"}
    )
    assert response.status_code == 409
    assert error_code(response) == "email_taken"


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "at least 10"), ("my ada.lovelace password", "before the @")],
)
async def test_a_weak_password_is_refused_with_the_reason(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    response = await client.post("/v1/users", json={"email": EMAIL, "password": password})
    assert response.status_code == 422
    assert reason in response.json()["error"]["message"]


async def test_a_missing_password_or_a_bad_email_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/users", json={"email": EMAIL})
    assert response.status_code == 422
    assert "password" in response.json()["error"]["message"]
    response = await client.post("/v1/users", json={"email": "nobody", "password": PASSWORD})
    assert response.status_code == 422


async def test_password_grant_issues_tokens_the_common_verifier_accepts(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    response = await client.post(
        "/v1/auth/token", data={"username": EMAIL.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900

    verifier = JwksVerifier(client, "http://auth/.well-known/jwks.json")
    caller = await verifier.verify(tokens["access_token"])
    assert (str(caller.user_id), caller.email) == (user["id"], EMAIL.lower())


async def test_wrong_password_and_unknown_user_get_the_same_401(client: httpx.AsyncClient) -> None:
    await register(client)
    wrong = await client.post(
        "/v1/auth/token", data={"username": EMAIL, "password": "not the password"}
    )
    unknown = await client.post(
        "/v1/auth/token", data={"username": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert error_code(wrong) == "invalid_grant"


async def test_token_request_without_credentials_or_with_an_unknown_grant(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/auth/token", data={"username": EMAIL})
    assert response.status_code == 400
    assert error_code(response) == "invalid_request"
    response = await client.post("/v1/auth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert error_code(response) == "unsupported_grant_type"


async def test_a_refresh_token_rotates(client: httpx.AsyncClient) -> None:
    await register(client)
    first = await sign_in(client)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await me(client, second["access_token"])).status_code == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200


async def test_reusing_a_refresh_token_revokes_its_whole_family(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    other_sign_in = await sign_in(client)
    first = await sign_in(client)
    second = (await refresh(client, first["refresh_token"])).json()

    reused = await refresh(client, first["refresh_token"])
    assert reused.status_code == 401
    assert error_code(reused) == "invalid_grant"
    assert "already used" in reused.json()["error"]["message"]

    # The legitimate successor dies with the family; another sign-in's family does not.
    assert (await refresh(client, second["refresh_token"])).status_code == 401
    assert (await refresh(client, other_sign_in["refresh_token"])).status_code == 200


async def test_an_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    response = await refresh(client, "made-up-token")
    assert response.status_code == 401
    assert error_code(response) == "invalid_grant"


async def test_me_with_a_valid_token(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await me(client, (await sign_in(client))["access_token"])
    assert response.status_code == 200
    assert response.json() == {"id": user["id"], "email": EMAIL.lower(), "timezone": "UTC"}


async def test_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert "missing bearer token" in response.json()["error"]["message"]


async def test_me_with_an_expired_token_is_401(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await register(client)
    keys: SigningKeys = app.state.signing_keys
    an_hour_ago = int(time.time()) - 3600
    claims = access_claims(UUID(user["id"]), EMAIL.lower(), issued_at=an_hour_ago, ttl_s=60)
    response = await me(client, sign_access_token(keys.current, claims))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


async def test_a_tiny_ttl_is_what_tokens_get(settings: Settings) -> None:
    # Waiting out ttl + the 30 s clock-skew leeway would be slow: expiry itself is checked above
    # with a token issued an hour ago, and in test_tokens with an explicit clock.
    app = create_app(settings.model_copy(update={"access_token_ttl_s": 1}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            await register(client)
            tokens = await sign_in(client)
            assert tokens["expires_in"] == 1
            claims = jwt.decode(tokens["access_token"], app.state.signing_keys.verification).claims
            assert claims["exp"] - claims["iat"] == 1


async def test_me_with_a_forged_token_is_401(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await register(client)
    keys: SigningKeys = app.state.signing_keys
    claims = access_claims(UUID(user["id"]), EMAIL.lower(), issued_at=int(time.time()), ttl_s=900)
    forger = RSAKey.generate_key(2048)
    same_kid = jwt.encode({"alg": "RS256", "kid": keys.current.kid}, claims, forger)
    other_kid = jwt.encode({"alg": "RS256", "kid": "forged"}, claims, forger)
    for token in (same_kid, other_kid, "not.a.token"):
        response = await me(client, token)
        assert response.status_code == 401, token
        assert error_code(response) == "unauthorized"


async def test_me_for_a_token_of_a_user_that_does_not_exist_is_401(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    keys: SigningKeys = app.state.signing_keys
    claims = access_claims(uuid4(), "ghost@example.com", issued_at=int(time.time()), ttl_s=900)
    response = await me(client, sign_access_token(keys.current, claims))
    assert response.status_code == 401


async def test_patch_me_sets_the_callers_timezone_only(client: httpx.AsyncClient) -> None:
    ada = await register(client)
    await register(client, "bob@example.com")
    ada_token = (await sign_in(client))["access_token"]
    bob_token = (await sign_in(client, "bob@example.com"))["access_token"]

    response = await change_me(client, ada_token, {"timezone": "Europe/Berlin"})
    assert response.status_code == 200, response.text
    expected = {"id": ada["id"], "email": EMAIL.lower(), "timezone": "Europe/Berlin"}
    assert response.json() == expected
    assert (await me(client, ada_token)).json() == expected
    assert (await me(client, bob_token)).json()["timezone"] == "UTC"

    assert (await change_me(client, ada_token, {"timezone": "UTC"})).status_code == 200
    assert (await me(client, ada_token)).json()["timezone"] == "UTC"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "America", "../etc/passwd", "", "x" * 300, "localtime"]
)
async def test_patch_me_with_an_unknown_timezone_is_422_and_changes_nothing(
    client: httpx.AsyncClient, zone: str
) -> None:
    await register(client)
    token = (await sign_in(client))["access_token"]
    assert (await change_me(client, token, {"timezone": "Asia/Tokyo"})).status_code == 200

    response = await change_me(client, token, {"timezone": zone})
    assert response.status_code == 422
    assert error_code(response) == "invalid_timezone"
    assert "unknown timezone" in response.json()["error"]["message"]
    assert (await me(client, token)).json()["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "timezone: Field required"),
        ({"timezone": None}, "timezone: Input should be a valid string"),
        ({"timezone": "Europe/Paris", "email": "x@example.com"}, "email: Extra inputs"),
        ({"tz": "Europe/Paris"}, "tz: Extra inputs"),
    ],
)
async def test_patch_me_with_a_missing_or_extra_field_is_422_and_changes_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], reason: str
) -> None:
    await register(client)
    token = (await sign_in(client))["access_token"]
    response = await change_me(client, token, body)
    assert response.status_code == 422
    assert error_code(response) == "invalid_request"
    assert reason in response.json()["error"]["message"]
    assert (await me(client, token)).json()["timezone"] == "UTC"


async def test_patch_me_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.patch("/v1/me", json={})
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


async def test_a_new_user_may_give_a_timezone(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/users", json={"email": EMAIL, "password": PASSWORD, "timezone": "America/New_York"}
    )
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id", "email"}
    token = (await sign_in(client))["access_token"]
    assert (await me(client, token)).json()["timezone"] == "America/New_York"


async def test_a_new_user_with_an_unknown_timezone_is_422_and_not_created(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/users", json={"email": EMAIL, "password": PASSWORD, "timezone": "Europe/Atlantis"}
    )
    assert response.status_code == 422
    assert error_code(response) == "invalid_timezone"
    assert "'Europe/Atlantis'" in response.json()["error"]["message"]
    await register(client)  # the address is still free


async def test_jwks_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    document = response.json()
    assert set(document) == {"keys"}
    [key] = document["keys"]
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    assert key["kid"] and key["n"] and key["e"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


async def test_signing_keys_survive_restarts_and_concurrent_starts(settings: Settings) -> None:
    apps = [create_app(settings) for _ in range(3)]

    async def start_and_read_kids(app: FastAPI) -> list[str]:
        async with app.router.lifespan_context(app):
            keys: SigningKeys = app.state.signing_keys
            return [str(k["kid"]) for k in keys.jwks()["keys"]]

    concurrent = await asyncio.gather(*(start_and_read_kids(app) for app in apps[:2]))
    again = await start_and_read_kids(apps[2])
    assert concurrent[0] == concurrent[1] == again
    assert len(again) == 1


async def test_the_password_hash_is_in_no_answer(
    database_url: str, client: httpx.AsyncClient
) -> None:
    answers = [await client.post("/v1/users", json={"email": EMAIL, "password": PASSWORD})]
    answers.append(await client.post("/v1/users", json={"email": EMAIL, "password": PASSWORD}))
    tokens_answer = await client.post(
        "/v1/auth/token", data={"username": EMAIL, "password": PASSWORD}
    )
    answers.append(tokens_answer)
    answers.append(await refresh(client, tokens_answer.json()["refresh_token"]))
    answers.append(await me(client, tokens_answer.json()["access_token"]))
    answers.append(await client.post("/v1/auth/token", data={"username": EMAIL, "password": "x"}))
    answers.append(await client.get("/.well-known/jwks.json"))

    conn = await asyncpg.connect(database_url)
    try:
        stored_hash = await conn.fetchval("SELECT password_hash FROM auth.users")
    finally:
        await conn.close()
    assert stored_hash.startswith("$argon2")
    for answer in answers:
        assert "$argon2" not in answer.text
        assert stored_hash not in answer.text
        assert PASSWORD not in answer.text
        assert "password_hash" not in answer.text
