"""Oura API v2 (reference: shared/reference/providers/oura.md).

Quirks handled here, and why:
- Daily collections and sleep periods take `start_date`/`end_date` as the user's *local* dates,
  both inclusive: a UTC window is widened by a day on each side (`dates_of`), since we do not
  know the user's offset; document ids make the overlap free.
- Heart rate takes `start_datetime` (inclusive) / `end_datetime` (exclusive) instead; we send UTC
  with a `Z`, so no `+` needs escaping.
- No documented maximum range (the recorded API even answered `start_date=0024-11-11` with the
  whole history), so one window spans a whole backfill year plus its partial first day.
- Pages are `{"data": [...], "next_token": ...}`; the page size is Oura's (no `limit`), so the
  next call repeats the query with the token until it is null.
- Sleep and readiness appear only once the user opens the app and are re-scored (naps change a
  day's scores), so daily documents re-read a week; heart rate syncs in the background.
- A sleep period belongs to its wake-up day, and workouts on one day may carry different
  offsets: record times come from each document's own timestamps, never from `day`.
- Errors are FastAPI-style `{"detail": ...}`: 401 token, 403 unticked scope or lapsed
  membership, 400/404/422 bad requests, 429 "Request Rate Limit Exceeded" without headers;
  a 200 that is not JSON is a truncated answer, worth retrying.
- 5000 requests per 5 minutes per user (and client); no usage headers.
- Webhooks: a GET handshake echoing `challenge` when `verification_token` matches; events are
  signed with upper-case hex HMAC-SHA256(client secret, `x-oura-timestamp` + raw body). Heart
  rate has no webhook data type: it rides along with activity, sleep and workout events.
- An `event_type` of `delete` names the gone document by `object_id`; the data types we sync are
  named as our resources.
"""

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import JsonValue

from healthmesh.connectors.providers.base import (
    Answer,
    Call,
    Challenge,
    Deletion,
    HttpAnswer,
    Identity,
    Item,
    Limit,
    MalformedPage,
    Notice,
    Notices,
    Ok,
    Page,
    Provider,
    RateLimited,
    Refused,
    Resource,
    Transient,
    Unauthorized,
    WebhookRefused,
    WebhookRequest,
    WebhookSecrets,
    dates_of,
    no_usage_headers,
    parse_retry_after,
    utc_day,
    utc_moment,
)

COLLECTION = "/v2/usercollection"
WHOLE_BACKFILL = timedelta(days=366)
"""A 365-day backfill starts mid-day: 366 days keep it (and its partial first day) in one window."""
SIGNATURE_TOLERANCE_S = 300
DAILY_OVERLAP = timedelta(days=7)
HEARTRATE_OVERLAP = timedelta(days=2)


# --- reading answers ---------------------------------------------------------------------------


def _rows(body: Any, call: Call) -> tuple[list[dict[str, Any]], Call | None]:
    """The documents of one `{"data", "next_token"}` page and the call for the next one."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedPage(f"{call.path}: no `data` list")
    rows = body["data"]
    if not all(isinstance(row, dict) for row in rows):
        raise MalformedPage(f"{call.path}: `data` holds a non-object")
    token = body.get("next_token")
    if token is not None and not isinstance(token, str):
        raise MalformedPage(f"{call.path}: `next_token` is {token!r}")
    if not token:
        return rows, None
    params = {k: v for k, v in call.params.items() if k != "next_token"}
    return rows, Call(call.path, {**params, "next_token": token})


def _document_item(doc: dict[str, Any], span: tuple[str, str] | None) -> Item:
    doc_id = doc.get("id")
    if not isinstance(doc_id, str) or not doc_id:
        raise MalformedPage(f"document without an id: {sorted(doc)}")
    if span is None:
        return Item(key=doc_id, payload=doc)
    first, last = span
    start = utc_moment(doc.get(first), first) if doc.get(first) is not None else None
    end = utc_moment(doc.get(last), last) if doc.get(last) is not None else None
    return Item(key=doc_id, payload=doc, start=start, end=end)


def _activity_item(doc: dict[str, Any]) -> Item:
    """An activity day runs from 04:00 local (its `timestamp`, with the user's offset) for 24 h."""
    item = _document_item(doc, None)
    if doc.get("timestamp") is None:
        return item
    start = utc_moment(doc["timestamp"], "timestamp")
    return Item(key=item.key, payload=doc, start=start, end=start + timedelta(days=1))


def _heartrate_item(row: dict[str, Any]) -> Item:
    at = utc_moment(row.get("timestamp"), "timestamp")
    return Item(key=utc_day(at), payload=row, start=at, end=at)


# --- resources ---------------------------------------------------------------------------------


def _date_call(path: str) -> Callable[[datetime, datetime], Call]:
    def first_call(start: datetime, end: datetime) -> Call:
        first, last = dates_of(start, end)
        return Call(path, {"start_date": first.isoformat(), "end_date": last.isoformat()})

    return first_call


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _heartrate_call(start: datetime, end: datetime) -> Call:
    return Call(
        f"{COLLECTION}/heartrate",
        {"start_datetime": _utc_text(start), "end_datetime": _utc_text(end)},
    )


def _documents(
    to_item: Callable[[dict[str, Any]], Item],
) -> Callable[[Any, Call], Page]:
    def read_page(body: Any, call: Call) -> Page:
        rows, next_call = _rows(body, call)
        return Page([to_item(row) for row in rows], next_call)

    return read_page


def _daily(name: str, to_item: Callable[[dict[str, Any]], Item] | None = None) -> Resource:
    return Resource(
        name=name,
        first_call=_date_call(f"{COLLECTION}/{name}"),
        read_page=_documents(to_item or (lambda doc: _document_item(doc, None))),
        max_window=WHOLE_BACKFILL,
        overlap=DAILY_OVERLAP,
    )


def _heartrate_payload(rows: list[JsonValue]) -> JsonValue:
    """A UTC day of rows, shaped like Oura's own page."""
    return {"data": rows}


RESOURCES = (
    _daily("daily_activity", _activity_item),
    _daily("sleep", lambda doc: _document_item(doc, ("bedtime_start", "bedtime_end"))),
    _daily("daily_sleep"),
    _daily("daily_readiness"),
    _daily("daily_spo2"),
    Resource(
        name="heartrate",
        first_call=_heartrate_call,
        read_page=_documents(_heartrate_item),
        max_window=WHOLE_BACKFILL,
        overlap=HEARTRATE_OVERLAP,
        series=_heartrate_payload,
    ),
    _daily("workout", lambda doc: _document_item(doc, ("start_datetime", "end_datetime"))),
)


# --- answers -----------------------------------------------------------------------------------


def _detail(answer: HttpAnswer) -> str:
    if isinstance(answer.json, dict) and "detail" in answer.json:
        return f"{answer.status} {str(answer.json['detail'])[:200]}"
    return f"{answer.status} {answer.text[:200]}"


def check_answer(answer: HttpAnswer) -> Answer:
    status = answer.status
    if 200 <= status < 300:
        if answer.json is None:
            return Transient(f"{status} with a body that is not JSON (truncated?)")
        return Ok(answer.json)
    if status == 401:
        return Unauthorized(_detail(answer))
    if status == 429:
        return RateLimited(parse_retry_after(answer.headers.get("retry-after")))
    if status >= 500 or status == 408:
        return Transient(_detail(answer))
    return Refused(_detail(answer))


# --- webhooks ----------------------------------------------------------------------------------

RESYNC: Mapping[str, tuple[str, ...]] = {
    "daily_activity": ("daily_activity", "heartrate"),
    "sleep": ("sleep", "heartrate"),
    "daily_sleep": ("daily_sleep",),
    "daily_readiness": ("daily_readiness",),
    "daily_spo2": ("daily_spo2",),
    "workout": ("workout", "heartrate"),
}
"""An event's `data_type` -> the resources to re-sync (heart rate has no data type of its own)."""


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def _handshake(request: WebhookRequest, secrets: WebhookSecrets) -> Challenge:
    if secrets.verify_token is None:
        raise WebhookRefused(403, "no verification token configured")
    token = request.query.get("verification_token", "")
    if not _same(secrets.verify_token, token):
        raise WebhookRefused(403, "verification_token does not match")
    challenge = request.query.get("challenge")
    if not challenge:
        raise WebhookRefused(403, "handshake without a challenge")
    return Challenge(200, {"challenge": challenge})


def _signed_at(request: WebhookRequest, secrets: WebhookSecrets, now: float) -> None:
    if secrets.client_secret is None:
        raise WebhookRefused(403, "no client secret configured to verify signatures")
    signature = request.headers.get("x-oura-signature")
    timestamp = request.headers.get("x-oura-timestamp")
    if not signature or not timestamp:
        raise WebhookRefused(401, "missing x-oura-signature or x-oura-timestamp")
    expected = hmac.new(
        secrets.client_secret.encode(), timestamp.encode() + request.body, hashlib.sha256
    ).hexdigest()
    if not _same(expected.upper(), signature.strip().upper()):
        raise WebhookRefused(401, "bad x-oura-signature")
    try:
        sent = float(timestamp)
    except ValueError:
        raise WebhookRefused(401, "x-oura-timestamp is not a number") from None
    if sent > 1e11:  # milliseconds, should Oura ever send them
        sent /= 1000
    if abs(now - sent) > SIGNATURE_TOLERANCE_S:
        raise WebhookRefused(401, "stale x-oura-timestamp")


def _notice(body: bytes) -> list[Notice]:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRefused(400, "event body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("user_id"), str):
        raise WebhookRefused(400, "event without a user_id")
    data_type = str(event.get("data_type"))
    resources = RESYNC.get(data_type)
    if resources is None:
        return []  # a data type we do not sync (tag, session, ...): acknowledged, nothing to do
    deleted = None
    if event.get("event_type") == "delete":
        object_id = event.get("object_id")
        if not isinstance(object_id, str) or not object_id:
            raise WebhookRefused(400, f"{data_type} delete without an object_id")
        deleted = Deletion(resource=data_type, record_id=object_id, event=event)
    at: datetime | None
    try:
        at = utc_moment(event.get("event_time"), "event_time")
    except MalformedPage:
        at = None
    return [
        Notice(
            provider_user_id=event["user_id"],
            resources=resources,
            # The document may belong to the previous local day (a night ending this morning).
            start=at - timedelta(days=1) if at else None,
            end=at,
            deleted=deleted,
        )
    ]


def verify_webhook(
    request: WebhookRequest, secrets: WebhookSecrets, now: float | None = None
) -> Challenge | Notices:
    """A handshake (GET) or a signed event (POST); `now` (epoch seconds) is for tests."""
    if request.method.upper() == "GET":
        return _handshake(request, secrets)
    if request.method.upper() != "POST":
        raise WebhookRefused(405, f"{request.method} is not a webhook call")
    _signed_at(request, secrets, time.time() if now is None else now)
    return Notices(_notice(request.body))


def _personal_id(body: Any) -> str:
    """personal_info's `id` is the `user_id` webhook events carry."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise MalformedPage("personal_info without an id")
    return str(body["id"])


PROVIDER = Provider(
    name="oura",
    resources=RESOURCES,
    limits=(Limit("requests_5min", 5000, 300, per_user=True),),
    check_answer=check_answer,
    usage_from_headers=no_usage_headers,
    verify_webhook=verify_webhook,
    identity=Identity(Call(f"{COLLECTION}/personal_info"), _personal_id),
)
