"""Access tokens (RS256 JWTs every service verifies) and refresh tokens (opaque, stored hashed)."""

import hashlib
import secrets
import time
from typing import Any
from uuid import UUID, uuid4

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    DecodeError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet, RSAKey

from healthmesh.common.access_tokens import ALGORITHM, AUDIENCE, ISSUER, Caller, InvalidToken

# The same tolerance for clock skew as healthmesh.common.access_tokens.JwksVerifier.
LEEWAY_S = 30


def access_claims(user_id: UUID, email: str, *, issued_at: int, ttl_s: int) -> dict[str, Any]:
    """The claims of an access token for `user_id`, valid for `ttl_s` seconds from `issued_at`."""
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "email": email,
        "typ": "access",
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "jti": uuid4().hex,
    }


def sign_access_token(key: RSAKey, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}, claims, key)


def verify_access_token(token: str, keys: KeySet, *, now: int | None = None) -> Caller:
    """Check an access token against auth's own public keys, by the rules JwksVerifier applies."""
    try:
        decoded = jwt.decode(token, keys, algorithms=[ALGORITHM])
        jwt.JWTClaimsRegistry(
            now=now if now is not None else int(time.time()),
            leeway=LEEWAY_S,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            exp={"essential": True},
        ).validate(decoded.claims)
    except DecodeError as exc:
        raise InvalidToken("malformed token") from exc
    except InvalidKeyIdError as exc:
        raise InvalidToken("token signed by an unknown key") from exc
    except BadSignatureError as exc:
        raise InvalidToken("token signature does not verify") from exc
    except ExpiredTokenError as exc:
        raise InvalidToken("token has expired") from exc
    except JoseError as exc:
        raise InvalidToken(f"invalid token: {exc.description or exc.error}") from exc
    except ValueError as exc:
        raise InvalidToken("malformed token") from exc
    if decoded.claims.get("typ") != "access":
        raise InvalidToken("not an access token")
    try:
        return Caller(user_id=UUID(decoded.claims["sub"]), email=str(decoded.claims["email"]))
    except (KeyError, ValueError) as exc:
        raise InvalidToken("invalid token claims") from exc


def new_refresh_token() -> str:
    """32 random bytes, URL-safe; shown to the client once and stored only as its hash."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """SHA-256 (hex) of a refresh token: enough for 256 random bits, and lets us look it up."""
    return hashlib.sha256(token.encode()).hexdigest()
