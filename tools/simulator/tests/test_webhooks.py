"""Webhooks as each provider sends them: bodies like the samples, signatures verifiable with the
documented algorithms, and the verification handshakes."""

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from healthmesh.simulator.testing import client_secret, connect

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples"
HOOK = "http://app.test/webhooks"


def keys(value: Any, prefix: str = "") -> set[str]:
    """Field paths of a JSON document (as in test_contract)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out |= {path} | keys(item, path)
    elif isinstance(value, list):
        for item in value:
            out |= {prefix + "[]"} | keys(item, prefix + "[]")
    return out


def sample(name: str) -> Any:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    return orjson.loads((SAMPLES / name).read_bytes())


async def send(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/_control/webhooks/send", json={"url": HOOK, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_oura_event_is_signed_as_documented(
    client: httpx.AsyncClient, webhook_calls: list[httpx.Request]
) -> None:
    await connect(client, "oura", user="ada")
    result = await send(client, provider="oura", user="ada", data_type="daily_sleep")
    request = webhook_calls[-1]
    timestamp = request.headers["x-oura-timestamp"]
    expected = (
        hmac.new(
            client_secret("oura").encode(), timestamp.encode() + request.content, hashlib.sha256
        )
        .hexdigest()
        .upper()
    )
    assert request.headers["x-oura-signature"] == expected
    body = orjson.loads(request.content)
    assert keys(body) == keys(sample("oura/webhook_event.docs_example.json"))
    assert body["data_type"] == "daily_sleep"
    assert result["requests"][0]["status"] == 204
    users = (await client.get("/_control/users/ada")).json()
    assert body["user_id"] == users["oura"]["user_id"]


async def test_oura_verification_handshake(
    client: httpx.AsyncClient, webhook_calls: list[httpx.Request]
) -> None:
    result = await send(
        client, provider="oura", user="ada", kind="verification", verification_token="mine"
    )
    assert result["verified"] is True
    request = webhook_calls[-1]
    assert request.method == "GET"
    assert request.url.params["verification_token"] == "mine"


async def test_whoop_signature_and_body(
    client: httpx.AsyncClient, webhook_calls: list[httpx.Request]
) -> None:
    tokens = await connect(client, "whoop", user="ada")
    await send(client, provider="whoop", user="ada", type="sleep.updated")
    request = webhook_calls[-1]
    timestamp = request.headers["x-whoop-signature-timestamp"]
    digest = hmac.new(
        client_secret("whoop").encode(), timestamp.encode() + request.content, hashlib.sha256
    ).digest()
    assert request.headers["x-whoop-signature"] == base64.b64encode(digest).decode()
    assert len(timestamp) == 13  # milliseconds
    body = orjson.loads(request.content)
    assert keys(body) == keys(sample("whoop/webhook.v2.sleep_updated.json"))
    sleep = await client.get(
        f"/whoop/developer/v2/activity/sleep/{body['id']}",
        headers={"authorization": f"Bearer {tokens['access_token']}"},
    )
    assert sleep.status_code == 200  # the id names a real record


async def test_revoked_users_get_no_webhooks(client: httpx.AsyncClient) -> None:
    await connect(client, "whoop", user="ada")
    await client.post("/_control/revoke", json={"provider": "whoop", "user": "ada"})
    response = await client.post(
        "/_control/webhooks/send", json={"provider": "whoop", "user": "ada", "url": HOOK}
    )
    assert response.status_code == 409


async def test_strava_validation_and_event(
    client: httpx.AsyncClient, webhook_calls: list[httpx.Request]
) -> None:
    validation = await send(
        client, provider="strava", user="ada", kind="validation", verify_token="STRAVA"
    )
    assert validation["verified"] is True
    params = webhook_calls[-1].url.params
    assert params["hub.mode"] == "subscribe" and params["hub.verify_token"] == "STRAVA"
    await connect(client, "strava", user="ada")
    await send(
        client, provider="strava", user="ada", aspect_type="update", updates={"title": "Messy"}
    )
    body = orjson.loads(webhook_calls[-1].content)
    assert keys(body) == keys(sample("strava/webhook_event.activity_update.docs_example.json"))
    deauth = await send(
        client,
        provider="strava",
        user="ada",
        object_type="athlete",
        aspect_type="update",
        updates={"authorized": "false"},
    )
    event = orjson.loads(deauth["requests"][0]["body"])
    assert event["object_id"] == event["owner_id"]


async def test_withings_notification_is_a_form(
    client: httpx.AsyncClient, webhook_calls: list[httpx.Request]
) -> None:
    tokens = await connect(client, "withings", user="ada")
    await send(client, provider="withings", user="ada", appli=1)
    request = webhook_calls[-1]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    text = (SAMPLES / "withings/notification.callback.form_body.docs_example.txt").read_text()
    assert set(form) == set(parse_qs(text.strip()))
    assert form["userid"] == tokens["userid"]


async def test_google_notification_and_signature(
    client: httpx.AsyncClient, webhook_calls: list[httpx.Request]
) -> None:
    await connect(client, "fitbit", user="ada")
    await send(
        client,
        provider="fitbit",
        user="ada",
        data_type="sleep",
        secret="Bearer s3cret",
        day="2026-03-14",
    )
    request = webhook_calls[-1]
    assert request.headers["authorization"] == "Bearer s3cret"
    body = orjson.loads(request.content)
    observed = keys(sample("google_health/webhook.notification.observed_anonymized.json"))
    # The observed intervals lacked end times; OW's schema and ours carry them.
    ends = {
        "[].data.intervals[].civilDateTimeInterval.endTime",
        "[].data.intervals[].physicalTimeInterval.endTime",
    }
    assert keys(body) == observed | ends
    assert body[0]["data"]["intervals"][0]["civilIso8601TimeInterval"] == "2026-03-14/2026-03-15"
    pem = (await client.get("/_control/webhooks/fitbit/public-key")).content
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(request.headers["x-healthapi-signature"])
    key.verify(signature, request.content, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.verify(signature, request.content + b" ", ec.ECDSA(hashes.SHA256()))


async def test_google_endpoint_verification(
    client: httpx.AsyncClient, webhook_calls: list[httpx.Request]
) -> None:
    result = await send(client, provider="fitbit", user="ada", kind="verification")
    assert result["verified"] is True
    signed, anonymous = webhook_calls[-2:]
    assert orjson.loads(signed.content) == sample(
        "google_health/webhook.verification.request.docs.json"
    )
    assert "authorization" in signed.headers and "authorization" not in anonymous.headers


async def test_an_unreachable_receiver_is_reported(client: httpx.AsyncClient) -> None:
    await connect(client, "oura", user="ada")
    transport_error = await client.post(
        "/_control/webhooks/send",
        json={"provider": "oura", "user": "ada", "url": "http://unreachable.invalid/x"},
    )
    assert transport_error.status_code == 200
    sent = transport_error.json()["requests"][0]
    assert sent["status"] is None and sent["error"].startswith("ConnectError")
    stats = (await client.get("/_control/stats")).json()
    assert stats["webhooks"] == {"oura": 1}
