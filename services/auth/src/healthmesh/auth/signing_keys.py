"""RS256 signing keys: the first start creates one; tokens are signed with the newest key and every
key's public half is published as the JWKS, so a newer key can be added without breaking tokens
signed by an older one.

Private keys are stored in auth.signing_keys NOT encrypted at rest yet (an issue records it):
whoever can read that table can mint access tokens.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from joserfc.jwk import KeySet, RSAKey

from healthmesh.auth import db
from healthmesh.common.access_tokens import ALGORITHM

KEY_SIZE = 2048


@dataclass(frozen=True)
class SigningKeys:
    current: RSAKey
    """The newest key; every new token is signed with it."""
    verification: KeySet
    """Every key, to verify tokens signed by any of them."""

    @classmethod
    def from_keys(cls, newest_first: Sequence[RSAKey]) -> "SigningKeys":
        if not newest_first:
            raise ValueError("at least one signing key is needed")
        return cls(current=newest_first[0], verification=KeySet(list(newest_first)))

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys as a JWK Set (no private parameters)."""
        return {"keys": [dict(key.as_dict(private=False)) for key in self.verification.keys]}


def generate_signing_key() -> RSAKey:
    """A new RSA key whose kid is its RFC 7638 thumbprint."""
    return RSAKey.generate_key(KEY_SIZE, parameters={"use": "sig", "alg": ALGORITHM}, auto_kid=True)


def import_signing_key(kid: str, private_pem: str) -> RSAKey:
    return RSAKey.import_key(private_pem, parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})


async def load_signing_keys(pool: asyncpg.Pool) -> SigningKeys:
    """Load every signing key, creating the first one if there is none yet."""
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_signing_keys(conn)
        rows = await db.signing_keys(conn)
        if not rows:
            key = await asyncio.to_thread(generate_signing_key)
            assert key.kid is not None  # auto_kid sets it
            await db.insert_signing_key(conn, key.kid, key.as_pem(private=True).decode())
            rows = await db.signing_keys(conn)
    return SigningKeys.from_keys([import_signing_key(r["kid"], r["private_pem"]) for r in rows])
