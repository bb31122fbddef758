import time
from collections.abc import AsyncIterator, Callable
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from healthmesh.common.access_tokens import AUDIENCE, ISSUER, JwksVerifier
from healthmesh.common.topics import Topics
from healthmesh.preferences.app import create_app
from healthmesh.preferences.settings import Settings

JWKS_URL = "http://auth.test/.well-known/jwks.json"


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    """Stands in for auth's key: tokens signed with it verify through the JWKS served below."""
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)


Signer = Callable[[RSAKey, UUID], str]
TokenFor = Callable[[UUID], str]


def _sign(key: RSAKey, user_id: UUID) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "email": f"{user_id.hex[:8]}@example.com",
        "typ": "access",
        "iat": now,
        "exp": now + 900,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


@pytest.fixture
def sign() -> Signer:
    """Signs an access token for a user with any key."""
    return _sign


@pytest.fixture
def token_for(signing_key: RSAKey) -> TokenFor:
    """An access token for a user, signed with the key auth's fake JWKS publishes."""
    return lambda user_id: _sign(signing_key, user_id)


@pytest.fixture
async def verifier(signing_key: RSAKey) -> AsyncIterator[JwksVerifier]:
    """The real verifier, fetching the JWKS from a fake auth through httpx.MockTransport."""
    document = {"keys": [signing_key.as_dict(private=False)]}

    def auth(request: httpx.Request) -> httpx.Response:
        if str(request.url) == JWKS_URL:
            return httpx.Response(200, json=document)
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(auth)) as http:
        yield JwksVerifier(http, JWKS_URL)


@pytest.fixture
def settings(database_url: str, kafka_bootstrap_servers: str, topics: Topics) -> Settings:
    """Settings on a fresh database and this test's own topics."""
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=topics.prefix,
        environment="test",
    )


@pytest.fixture
async def app(settings: Settings, verifier: JwksVerifier) -> AsyncIterator[FastAPI]:
    app = create_app(settings, verifier=verifier)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://preferences") as client:
        yield client
