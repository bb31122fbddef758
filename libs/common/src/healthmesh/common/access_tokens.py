"""Verifying HealthMesh access tokens against the auth service's published JWKS.

Auth signs with RS256 and publishes its public keys at /.well-known/jwks.json; any service that
accepts bearer tokens verifies them locally with a cached copy, refetched when an unknown key id
shows up (key rotation), at most once per `min_refetch_s`.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ISSUER = "healthmesh-auth"
AUDIENCE = "healthmesh"
ALGORITHM = "RS256"


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or not ours. The message says which."""


@dataclass(frozen=True)
class Caller:
    user_id: UUID
    email: str


class JwksVerifier:
    def __init__(self, http: httpx.AsyncClient, jwks_url: str, min_refetch_s: float = 30.0):
        self._http = http
        self._url = jwks_url
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = 0.0
        self._min_refetch_s = min_refetch_s
        self._lock = asyncio.Lock()

    async def _refresh(self, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._keys is not None and (
                not force or now - self._fetched_at < self._min_refetch_s
            ):
                return
            response = await self._http.get(self._url, timeout=5.0)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            self._kids = {str(k.get("kid")) for k in document.get("keys", [])}
            self._fetched_at = now

    async def verify(self, token: str) -> Caller:
        try:
            kid = str(jws.extract_compact(token.encode()).protected.get("kid"))
        except (JoseError, ValueError) as exc:
            raise InvalidToken("malformed token") from exc
        await self._refresh(force=False)
        if kid not in self._kids:
            await self._refresh(force=True)
        if kid not in self._kids or self._keys is None:
            raise InvalidToken("token signed by an unknown key")
        try:
            decoded = jwt.decode(token, self._keys, algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": ISSUER},
                aud={"essential": True, "value": AUDIENCE},
                sub={"essential": True},
                exp={"essential": True},
            ).validate(decoded.claims)
            if decoded.claims.get("typ") != "access":
                raise InvalidToken("not an access token")
            return Caller(user_id=UUID(decoded.claims["sub"]), email=str(decoded.claims["email"]))
        except JoseError as exc:
            raise InvalidToken(f"invalid token: {exc.error}") from exc
        except (KeyError, ValueError) as exc:
            raise InvalidToken("invalid token claims") from exc
