import time
from uuid import uuid4

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from healthmesh.auth.signing_keys import SigningKeys, generate_signing_key, import_signing_key
from healthmesh.auth.tokens import (
    LEEWAY_S,
    access_claims,
    hash_refresh_token,
    new_refresh_token,
    sign_access_token,
    verify_access_token,
)
from healthmesh.common.access_tokens import AUDIENCE, ISSUER, InvalidToken


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def keys(key: RSAKey) -> KeySet:
    return KeySet([key])


def test_access_claims() -> None:
    user_id = uuid4()
    claims = access_claims(user_id, "ada@example.com", issued_at=1_000, ttl_s=900)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == str(user_id)
    assert claims["email"] == "ada@example.com"
    assert claims["typ"] == "access"
    assert (claims["iat"], claims["exp"]) == (1_000, 1_900)
    assert claims["jti"] != access_claims(user_id, "a@b.c", issued_at=1_000, ttl_s=900)["jti"]


def test_a_signed_token_names_its_key_and_verifies(key: RSAKey, keys: KeySet) -> None:
    user_id = uuid4()
    token = sign_access_token(
        key, access_claims(user_id, "ada@example.com", issued_at=int(time.time()), ttl_s=900)
    )
    header = jwt.decode(token, keys).header
    assert header["kid"] == key.kid
    assert header["alg"] == "RS256"
    caller = verify_access_token(token, keys)
    assert (caller.user_id, caller.email) == (user_id, "ada@example.com")


def test_an_expired_token_is_refused(key: RSAKey, keys: KeySet) -> None:
    claims = access_claims(uuid4(), "ada@example.com", issued_at=1_000, ttl_s=1)
    token = sign_access_token(key, claims)
    verify_access_token(token, keys, now=1_000 + LEEWAY_S)
    with pytest.raises(InvalidToken, match="expired"):
        verify_access_token(token, keys, now=1_001 + LEEWAY_S)


def test_a_token_signed_by_another_key_under_our_kid_is_refused(key: RSAKey, keys: KeySet) -> None:
    forger = RSAKey.generate_key(2048)
    claims = access_claims(uuid4(), "ada@example.com", issued_at=int(time.time()), ttl_s=900)
    forged = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, forger)
    with pytest.raises(InvalidToken, match="signature"):
        verify_access_token(forged, keys)


def test_a_token_signed_by_an_unknown_key_is_refused(keys: KeySet) -> None:
    stranger = generate_signing_key()
    claims = access_claims(uuid4(), "ada@example.com", issued_at=int(time.time()), ttl_s=900)
    with pytest.raises(InvalidToken, match="unknown key"):
        verify_access_token(sign_access_token(stranger, claims), keys)


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [("aud", "someone-else", "aud"), ("iss", "someone-else", "iss"), ("typ", "refresh", "access")],
)
def test_foreign_claims_are_refused(
    key: RSAKey, keys: KeySet, claim: str, value: str, reason: str
) -> None:
    claims = access_claims(uuid4(), "ada@example.com", issued_at=int(time.time()), ttl_s=900)
    claims[claim] = value
    with pytest.raises(InvalidToken, match=reason):
        verify_access_token(sign_access_token(key, claims), keys)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c"])
def test_garbage_is_refused(keys: KeySet, garbage: str) -> None:
    with pytest.raises(InvalidToken, match="malformed"):
        verify_access_token(garbage, keys)


def test_refresh_tokens_are_random_and_stored_as_sha256() -> None:
    token = new_refresh_token()
    assert len(token) >= 43  # 32 bytes, base64url
    assert token != new_refresh_token()
    digest = hash_refresh_token(token)
    assert len(digest) == 64
    assert digest == hash_refresh_token(token)
    assert token not in digest


def test_jwks_publishes_only_public_parameters(key: RSAKey) -> None:
    reloaded = import_signing_key(str(key.kid), key.as_pem(private=True).decode())
    older = generate_signing_key()
    document = SigningKeys.from_keys([reloaded, older]).jwks()
    assert [k["kid"] for k in document["keys"]] == [key.kid, older.kid]
    for jwk in document["keys"]:
        assert {"kty", "n", "e", "kid", "use", "alg"} <= jwk.keys()
        assert (jwk["kty"], jwk["use"], jwk["alg"]) == ("RSA", "sig", "RS256")
        assert not {"d", "p", "q", "dp", "dq", "qi"} & jwk.keys()


def test_the_newest_key_signs() -> None:
    newest, older = generate_signing_key(), generate_signing_key()
    assert SigningKeys.from_keys([newest, older]).current is newest
