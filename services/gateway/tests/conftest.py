"""What the gateway's tests share: the real app over a fresh database, the broker and an upload
store of its own; fakes of what it calls (auth's JWKS, the preferences read model); signed
tokens for two users; an import posted and its queued request awaited; the normalizer's tables,
for tests that insert rows as the normalizer writes them; zip archives made on the spot."""

import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from joserfc import jwt
from joserfc.jwk import RSAKey

from healthmesh.common.access_tokens import AUDIENCE, ISSUER, JwksVerifier
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.topics import Topics
from healthmesh.devstack.testing import collect, eventually
from healthmesh.gateway.app import create_app
from healthmesh.gateway.deps import caller_preferences
from healthmesh.gateway.settings import Settings

JWKS_URL = "http://auth.test/.well-known/jwks.json"
PREFERENCES_URL = "http://preferences.test"
NORMALIZER_MIGRATIONS = (
    Path(__file__).resolve().parents[2] / "normalizer/src/healthmesh/normalizer/migrations"
)
PREFERENCES_MIGRATIONS = (
    Path(__file__).resolve().parents[2] / "preferences/src/healthmesh/preferences/migrations"
)
DEFAULT_ORDER: dict[str, list[str]] = {
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
"""The preferences service's default order per category, for the fake; equal to the real read
model's (test_preferences_read_model.py checks it)."""


# --- users ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    """Stands in for auth's key: tokens signed with it verify through the fake JWKS."""
    return RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)


def _bearer(key: RSAKey, user_id: UUID) -> dict[str, str]:
    """An Authorization header with an access token for `user_id`, valid for 15 minutes."""
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
    return {"Authorization": f"Bearer {jwt.encode({'alg': 'RS256', 'kid': key.kid}, claims, key)}"}


@pytest.fixture
def ada_id() -> UUID:
    """The user a test acts as."""
    return uuid4()


@pytest.fixture
def ada(signing_key: RSAKey, ada_id: UUID) -> dict[str, str]:
    """Ada's Authorization header."""
    return _bearer(signing_key, ada_id)


@pytest.fixture
def bob(signing_key: RSAKey) -> dict[str, str]:
    """Another user's Authorization header: Bob must never see Ada's data."""
    return _bearer(signing_key, uuid4())


# --- the services the gateway calls -----------------------------------------------------------


@pytest.fixture
def default_preferences() -> dict[str, Any]:
    """What the preferences service answers a user who chose nothing: its default order for each
    category, fallback on, flagged `default`."""
    return {
        "categories": {
            category: {"sources": sources, "fallback": True, "default": True}
            for category, sources in DEFAULT_ORDER.items()
        },
        "overrides": {},
    }


@pytest.fixture
def preferences_by_token() -> dict[str, dict[str, Any]]:
    """What the fake preferences service answers, by the caller's Authorization header: a test
    puts a user's choices here. Anyone else gets `default_preferences`."""
    return {}


@pytest.fixture
async def services_http(signing_key: RSAKey) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's HTTP client to the other services, all fakes (httpx.MockTransport): auth's
    JWKS, publishing `signing_key`. Anything else is 404."""
    jwks = {"keys": [signing_key.as_dict(private=False)]}

    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url) == JWKS_URL:
            return httpx.Response(200, json=jwks)
        return httpx.Response(404)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        yield http


@pytest.fixture
def fake_preferences(
    default_preferences: dict[str, Any], preferences_by_token: dict[str, dict[str, Any]]
) -> Callable[[Request], Callable[[], Awaitable[dict[str, Any]]]]:
    """Stands in for `deps.caller_preferences` (the preferences read model, tested on its own
    in test_preferences_read_model.py): answers per caller, by the Authorization header."""

    def of(request: Request) -> Callable[[], Awaitable[dict[str, Any]]]:
        chosen = preferences_by_token.get(request.headers.get("authorization", ""))

        async def answer() -> dict[str, Any]:
            return chosen or default_preferences

        return answer

    return of


# --- the app ----------------------------------------------------------------------------------


@pytest.fixture
def settings(
    database_url: str, kafka_bootstrap_servers: str, topics: Topics, tmp_path: Path
) -> Settings:
    """The gateway's settings: a fresh database, this test's topics, an upload store of its own
    (`tmp_path / "uploads"`), the preferences service at the fake's address."""
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=topics.prefix,
        upload_dir=tmp_path / "uploads",
        preferences_url=PREFERENCES_URL,
        environment="test",
    )


@pytest.fixture
async def app(
    settings: Settings,
    services_http: httpx.AsyncClient,
    fake_preferences: Callable[[Request], Callable[[], Awaitable[dict[str, Any]]]],
) -> AsyncIterator[FastAPI]:
    """The gateway with its lifespan running (its schema migrated, the broker and the outbox relay
    started), verifying tokens and calling the other services through `services_http`, reading
    preferences from `fake_preferences`."""
    app = create_app(settings, verifier=JwksVerifier(services_http, JWKS_URL))
    app.dependency_overrides[caller_preferences] = fake_preferences
    async with app.router.lifespan_context(app):
        await app.state.http.aclose()
        app.state.http = services_http
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Calls the app in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@pytest.fixture
def pool(app: FastAPI) -> asyncpg.Pool:
    """The app's own pool: to put rows in place and to see what a request stored."""
    gateway_pool: asyncpg.Pool = app.state.pool
    return gateway_pool


@pytest.fixture
async def normalizer_tables(database_url: str) -> None:
    """The normalizer's tables in the test database (its migrations, applied by path), for tests
    that insert rows as the normalizer writes them. Use it with `pytest.mark.usefixtures`."""
    pool = await open_pool(database_url)
    try:
        await apply_migrations(pool, "normalizer", NORMALIZER_MIGRATIONS)
    finally:
        await pool.close()


PostImport = Callable[..., Awaitable[tuple[str, dict[str, Any]]]]


@pytest.fixture
def post_import(
    client: httpx.AsyncClient, kafka_bootstrap_servers: str, topics: Topics
) -> PostImport:
    """`POST /v1/imports` with httpx's arguments (`data`, `files`, `headers`), expecting 202, then
    waits for the import's `imports.requested` message: answers the import id and the message."""

    async def post(**request: Any) -> tuple[str, dict[str, Any]]:
        async with collect(kafka_bootstrap_servers, topics.imports_requested) as requested:
            answer = await client.post("/v1/imports", **request)
            assert answer.status_code == 202, answer.text
            import_id = str(answer.json()["id"])

            async def published() -> bool:
                return any(r["import_id"] == import_id for r in requested)

            await eventually(published, what="the import request")
        [message] = [r for r in requested if r["import_id"] == import_id]
        return import_id, message

    return post


# --- files ------------------------------------------------------------------------------------

ZipOf = Callable[[dict[str, bytes]], Path]


@pytest.fixture
def zip_of(tmp_path: Path) -> ZipOf:
    """Writes a zip archive (deflated) of `{name: bytes}` entries under `tmp_path`: a new file for
    each call."""
    made: list[Path] = []

    def write(entries: dict[str, bytes]) -> Path:
        path = tmp_path / f"archive-{len(made)}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)
        made.append(path)
        return path

    return write
