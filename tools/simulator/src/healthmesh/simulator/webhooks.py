"""Sending webhooks the way the providers send them, and their signatures.

Oura: `x-oura-signature` = upper-case hex HMAC-SHA256(client_secret, timestamp + body), with the
timestamp in `x-oura-timestamp`. WHOOP: `X-WHOOP-Signature` = base64 HMAC-SHA256(client_secret,
timestamp + body), the millisecond timestamp in `X-WHOOP-Signature-Timestamp`. Google Health: the
subscriber's secret verbatim in `Authorization`, and an ECDSA P-256 signature of the body in
`X-HEALTHAPI-SIGNATURE` (Google does not document how its public key is distributed; the
simulator publishes its own at /_control/webhooks/fitbit/public-key). Strava and Withings sign
nothing.
"""

import base64
import hashlib
import hmac
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from healthmesh.simulator.context import Context


def oura_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256)
    return digest.hexdigest().upper()


def whoop_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class GoogleSigner:
    """The simulator's stand-in for Google's webhook signing key (made per process)."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self._key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def public_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


async def deliver(
    ctx: Context,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send one request to the receiver; report what went out and what came back."""
    if ctx.http is None:
        raise RuntimeError("the app's lifespan has not started")
    request = ctx.http.build_request(method, url, headers=headers, content=content, params=params)
    sent: dict[str, Any] = {
        "method": method,
        "url": str(request.url),
        "headers": {k: v for k, v in request.headers.items() if k.lower() != "content-length"},
        "body": (content or b"").decode(),
    }
    try:
        response = await ctx.http.send(request)
    except httpx.HTTPError as exc:
        return {**sent, "status": None, "error": f"{type(exc).__name__}: {exc}"}
    return {**sent, "status": response.status_code, "response": response.text}


def echoed(result: dict[str, Any], key: str, value: str) -> bool:
    """Did the receiver answer 200 with `{key: value}` (the challenge handshakes)?"""
    if result.get("status") != 200:
        return False
    try:
        answer = orjson.loads(result.get("response") or "null")
    except orjson.JSONDecodeError:
        return False
    return isinstance(answer, dict) and answer.get(key) == value
