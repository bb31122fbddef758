import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from healthmesh.common.access_tokens import AUDIENCE, ISSUER, Caller, InvalidToken, JwksVerifier

JWKS_URL = "http://auth.test/.well-known/jwks.json"
USER = uuid.UUID("3c8d1f0e-9b7a-4e21-8d4c-1f2a3b4c5d6e")
EMAIL = "ada@example.com"


def _rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return _rsa("key-1")


@pytest.fixture(scope="module")
def next_key() -> RSAKey:
    return _rsa("key-2")


class FakeJwksEndpoint:
    """Auth's /.well-known/jwks.json: the public halves of `keys`, counting every fetch."""

    def __init__(self, *keys: RSAKey) -> None:
        self.keys = list(keys)
        self.fetches = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})


@pytest.fixture
def endpoint(key: RSAKey) -> FakeJwksEndpoint:
    return FakeJwksEndpoint(key)


@pytest.fixture
async def http(endpoint: FakeJwksEndpoint) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as client:
        yield client


@pytest.fixture
def verifier(http: httpx.AsyncClient) -> JwksVerifier:
    return JwksVerifier(http, JWKS_URL)


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(USER),
        "email": EMAIL,
        "typ": "access",
        "iat": now,
        "exp": now + 900,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(key: RSAKey, kid: str | None = None, **changes: Any) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid or key.kid}, _claims(**changes), key)


async def test_a_valid_access_token_gives_the_caller(
    verifier: JwksVerifier, key: RSAKey, endpoint: FakeJwksEndpoint
) -> None:
    caller = await verifier.verify(_token(key))

    assert caller == Caller(user_id=USER, email=EMAIL)
    assert endpoint.fetches == 1


async def test_the_jwks_is_fetched_once_and_cached(
    verifier: JwksVerifier, key: RSAKey, endpoint: FakeJwksEndpoint
) -> None:
    for _ in range(3):
        await verifier.verify(_token(key))
    await asyncio.gather(*(verifier.verify(_token(key)) for _ in range(5)))

    assert endpoint.fetches == 1


async def test_concurrent_first_requests_share_one_fetch(
    verifier: JwksVerifier, key: RSAKey, endpoint: FakeJwksEndpoint
) -> None:
    callers = await asyncio.gather(*(verifier.verify(_token(key)) for _ in range(10)))

    assert {c.user_id for c in callers} == {USER}
    assert endpoint.fetches == 1


async def test_a_token_expired_within_the_leeway_is_accepted(
    verifier: JwksVerifier, key: RSAKey
) -> None:
    now = int(time.time())
    token = _token(key, iat=now - 900, exp=now - 10)

    assert (await verifier.verify(token)).user_id == USER


async def test_a_token_expired_beyond_the_leeway_is_refused(
    verifier: JwksVerifier, key: RSAKey
) -> None:
    now = int(time.time())
    token = _token(key, iat=now - 900, exp=now - 45)

    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "someone-else"}, "invalid_claim"),
        ({"iss": None}, "missing_claim"),
        ({"aud": "another-audience"}, "invalid_claim"),
        ({"aud": None}, "missing_claim"),
        ({"exp": None}, "missing_claim"),
        ({"sub": None}, "missing_claim"),
        ({"typ": "refresh"}, "not an access token"),
        ({"typ": None}, "not an access token"),
        ({"sub": "not-a-uuid"}, "invalid token claims"),
        ({"email": None}, "invalid token claims"),
    ],
    ids=lambda v: "-".join(f"{k}={val}" for k, val in v.items()) if isinstance(v, dict) else "",
)
async def test_tokens_with_wrong_claims_are_refused(
    verifier: JwksVerifier, key: RSAKey, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidToken, match=message):
        await verifier.verify(_token(key, **changes))


async def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(
    verifier: JwksVerifier, key: RSAKey
) -> None:
    forger = _rsa(str(key.kid))

    with pytest.raises(InvalidToken, match="bad_signature"):
        await verifier.verify(_token(forger))


async def test_a_token_with_an_edited_payload_is_refused(
    verifier: JwksVerifier, key: RSAKey
) -> None:
    header, _, signature = _token(key).split(".")
    other = orjson.dumps(_claims(sub=str(uuid.uuid4())))
    payload = base64.urlsafe_b64encode(other).rstrip(b"=").decode()

    with pytest.raises(InvalidToken, match="bad_signature"):
        await verifier.verify(f"{header}.{payload}.{signature}")


async def test_a_token_with_another_algorithm_is_refused(
    verifier: JwksVerifier, key: RSAKey
) -> None:
    # HS256 keyed with something public is the classic algorithm-confusion forgery.
    secret = OctKey.import_key(orjson.dumps(key.as_dict(private=False)))
    token = jwt.encode({"alg": "HS256", "kid": key.kid}, _claims(), secret)

    with pytest.raises(InvalidToken, match="unsupported_algorithm"):
        await verifier.verify(token)


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "not.a.jwt.at.all", "e30.e30.e30", "Bearer x", "ééé.x.y"],
)
async def test_garbage_is_refused_without_asking_auth(
    verifier: JwksVerifier, endpoint: FakeJwksEndpoint, garbage: str
) -> None:
    with pytest.raises(InvalidToken, match="malformed token"):
        await verifier.verify(garbage)

    assert endpoint.fetches == 0


async def test_a_token_from_an_unknown_key_is_refused(
    verifier: JwksVerifier, next_key: RSAKey, endpoint: FakeJwksEndpoint
) -> None:
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(_token(next_key))

    assert endpoint.fetches == 1


async def test_key_rotation_an_unknown_kid_triggers_exactly_one_refetch(
    http: httpx.AsyncClient, endpoint: FakeJwksEndpoint, key: RSAKey, next_key: RSAKey
) -> None:
    verifier = JwksVerifier(http, JWKS_URL, min_refetch_s=0.5)
    await verifier.verify(_token(key))
    assert endpoint.fetches == 1

    endpoint.keys.append(next_key)  # auth rotated: the new key is published next to the old one
    await asyncio.sleep(0.6)
    caller = await verifier.verify(_token(next_key, sub=str(USER)))

    assert caller.user_id == USER
    assert endpoint.fetches == 2
    await verifier.verify(_token(next_key))
    await verifier.verify(_token(key))
    assert endpoint.fetches == 2


async def test_repeated_unknown_kids_refetch_at_most_once_per_interval(
    http: httpx.AsyncClient, endpoint: FakeJwksEndpoint, key: RSAKey, next_key: RSAKey
) -> None:
    verifier = JwksVerifier(http, JWKS_URL, min_refetch_s=0.5)
    await verifier.verify(_token(key))
    await asyncio.sleep(0.6)

    for kid in ("unknown-1", "unknown-2", "unknown-3", "unknown-1"):
        with pytest.raises(InvalidToken, match="unknown key"):
            await verifier.verify(_token(next_key, kid=kid))

    assert endpoint.fetches == 2


async def test_repeated_unknown_kids_within_30_s_do_not_refetch(
    verifier: JwksVerifier, endpoint: FakeJwksEndpoint, key: RSAKey, next_key: RSAKey
) -> None:
    await verifier.verify(_token(key))

    for n in range(5):
        with pytest.raises(InvalidToken, match="unknown key"):
            await verifier.verify(_token(next_key, kid=f"unknown-{n}"))

    assert endpoint.fetches == 1
