"""WHOOP developer API v2 (reference: shared/reference/providers/whoop.md).

Quirks handled here, and why:
- Collections (`/developer/v2/cycle`, `/recovery`, `/activity/sleep`, `/activity/workout`) take
  `start` (inclusive) and `end` (exclusive) on the record's *start*, as UTC date-times. No
  maximum range is documented, so one window spans a whole backfill year and its partial first
  day: windows only add half-empty pages.
- Records come newest first, at most 25 a page (`limit`, default 10). The token goes in as
  `nextToken` but comes out as `next_token`, absent on the last page; the next call repeats
  `start`, `end` and `limit` (a token alone falls back to the default page of 10).
- A cycle in progress has no `end` and its strain grows all day; a record that ended less than
  15 minutes ago is `PENDING_SCORE` without a `score`; users edit sleeps and add activities
  afterwards. Incremental syncs re-read three days, which still fits one page of 25 records.
  A changed record gets a new event id (its content changed); an unchanged one the same.
- A recovery has no id and no times of its own: it is keyed by its `cycle_id` (one recovery per
  cycle; its `sleep_id` may move when the user edits the night).
- Errors are `{"message": ...}`: 401 token, 403 unticked scope, 400/404 bad requests, 429 with
  `X-RateLimit-*` headers (no `Retry-After` documented: `X-RateLimit-Reset` says when the
  tightest window starts over); a 200 that is not JSON is a truncated answer, worth retrying.
- 100 requests a minute and 10,000 a day per application. Every answer reports the window
  closest to exhaustion: `X-RateLimit-Limit: 100, 100;window=60, 10000;window=86400`,
  `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
- Webhooks have no handshake: `{user_id, id, type, trace_id}` POSTed with
  `X-WHOOP-Signature` = base64 HMAC-SHA256(client secret, `X-WHOOP-Signature-Timestamp` (ms) +
  raw body). They carry no record time, so the notice spans the day before they were signed.
  Cycles have no webhooks: they ride along with every event (new sleeps open cycles, workouts
  add strain, recoveries belong to cycles).
- `sleep.deleted`, `workout.deleted` and `recovery.deleted` name the gone record by `id`: the
  sleep or workout UUID, and for a recovery the UUID of its *sleep* (v2; a recovery has no id).
  The event's type prefix is our resource name.
"""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from healthmesh.connectors.providers.base import (
    Answer,
    Call,
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
    parse_retry_after,
    utc_moment,
)

API = "/developer/v2"
PAGE_SIZE = 25
"""WHOOP's largest `limit`."""
WHOLE_BACKFILL = timedelta(days=366)
"""A 365-day backfill starts mid-day: 366 days keep it (and its partial first day) in one window."""
OVERLAP = timedelta(days=3)
"""A cycle in progress began up to a day or more ago; scores and user edits follow later."""
SIGNATURE_TOLERANCE_S = 300
WEBHOOK_LOOKBACK = timedelta(days=1)
LIMITS = (
    Limit("requests_minute", 100, 60),
    Limit("requests_day", 10_000, 86_400),
)
LIMIT_BY_WINDOW = {limit.seconds: limit.name for limit in LIMITS}


# --- reading answers ---------------------------------------------------------------------------


def _utc_text(moment: datetime) -> str:
    """UTC with milliseconds and a `Z`, as WHOOP writes its own times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _records(body: Any, call: Call) -> tuple[list[dict[str, Any]], Call | None]:
    """The records of one `{"records", "next_token"}` page and the call for the next one."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise MalformedPage(f"{call.path}: no `records` list")
    records = body["records"]
    if not all(isinstance(record, dict) for record in records):
        raise MalformedPage(f"{call.path}: `records` holds a non-object")
    token = body.get("next_token")
    if token is not None and not isinstance(token, str):
        raise MalformedPage(f"{call.path}: `next_token` is {token!r}")
    if not token:
        return records, None
    params = {k: v for k, v in call.params.items() if k != "nextToken"}
    return records, Call(call.path, {**params, "nextToken": token})


def _key(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise MalformedPage(f"record without a `{field}`: {sorted(record)}")
    return str(value)


def _timed_item(record: dict[str, Any]) -> Item:
    """Cycles, sleeps and workouts: their own id and times (no `end` while in progress)."""
    end = record.get("end")
    return Item(
        key=_key(record, "id"),
        payload=record,
        start=utc_moment(record.get("start"), "start"),
        end=utc_moment(end, "end") if end is not None else None,
    )


def _recovery_item(record: dict[str, Any]) -> Item:
    return Item(key=_key(record, "cycle_id"), payload=record)


def _first_call(path: str) -> Callable[[datetime, datetime], Call]:
    def first_call(start: datetime, end: datetime) -> Call:
        params = {"start": _utc_text(start), "end": _utc_text(end), "limit": str(PAGE_SIZE)}
        return Call(path, params)

    return first_call


def _resource(name: str, path: str, to_item: Callable[[dict[str, Any]], Item]) -> Resource:
    def read_page(body: Any, call: Call) -> Page:
        records, next_call = _records(body, call)
        return Page([to_item(record) for record in records], next_call)

    return Resource(
        name=name,
        first_call=_first_call(f"{API}/{path}"),
        read_page=read_page,
        max_window=WHOLE_BACKFILL,
        overlap=OVERLAP,
        page_size=PAGE_SIZE,
    )


RESOURCES = (
    _resource("cycle", "cycle", _timed_item),
    _resource("recovery", "recovery", _recovery_item),
    _resource("sleep", "activity/sleep", _timed_item),
    _resource("workout", "activity/workout", _timed_item),
)


# --- answers -----------------------------------------------------------------------------------


def _message(answer: HttpAnswer) -> str:
    if isinstance(answer.json, dict):
        for field in ("message", "error_description", "error"):
            if field in answer.json:
                return f"{answer.status} {str(answer.json[field])[:200]}"
    return f"{answer.status} {answer.text[:200]}"


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def check_answer(answer: HttpAnswer) -> Answer:
    status = answer.status
    if 200 <= status < 300:
        if answer.json is None:
            return Transient(f"{status} with a body that is not JSON (truncated?)")
        return Ok(answer.json)
    if status == 401:
        return Unauthorized(_message(answer))
    if status == 429:
        wait = parse_retry_after(answer.headers.get("retry-after"))
        if wait is None:
            wait = parse_retry_after(answer.headers.get("x-ratelimit-reset"))
        return RateLimited(wait)
    if status >= 500 or status == 408:
        return Transient(_message(answer))
    return Refused(_message(answer))


def usage_from_headers(headers: Mapping[str, str]) -> dict[str, int]:
    """Calls used in the window closest to exhaustion, the only one the headers describe.

    `X-RateLimit-Limit` opens with that window's quota, then lists every policy
    (`quota;window=seconds`). Were two quotas equal, the longer window is the tighter one: it
    holds every call of the shorter.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    remaining = _int(lower.get("x-ratelimit-remaining"))
    parts = [part.strip() for part in lower.get("x-ratelimit-limit", "").split(",")]
    quota = _int(parts[0]) if parts else None
    if remaining is None or quota is None:
        return {}
    windows: list[int] = []
    for part in parts[1:]:
        limit_text, _, params = part.partition(";")
        seconds = _int(params.strip().removeprefix("window=")) if params else None
        if _int(limit_text) == quota and seconds in LIMIT_BY_WINDOW:
            windows.append(seconds)
    if not windows:
        return {}
    return {LIMIT_BY_WINDOW[max(windows)]: max(0, quota - remaining)}


# --- webhooks ----------------------------------------------------------------------------------

RESYNC: Mapping[str, tuple[str, ...]] = {
    "sleep": ("sleep", "recovery", "cycle"),
    "recovery": ("recovery", "cycle"),
    "workout": ("workout", "cycle"),
}
"""An event's `type` prefix -> the resources to re-sync (cycles have no events of their own)."""


def _signed_at(request: WebhookRequest, secrets: WebhookSecrets, now: float) -> datetime:
    """The verified signing time; raises WebhookRefused."""
    if secrets.client_secret is None:
        raise WebhookRefused(403, "no client secret configured to verify signatures")
    signature = request.headers.get("x-whoop-signature")
    timestamp = request.headers.get("x-whoop-signature-timestamp")
    if not signature or not timestamp:
        raise WebhookRefused(401, "missing X-WHOOP-Signature or X-WHOOP-Signature-Timestamp")
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused(401, "X-WHOOP-Signature is not base64") from None
    expected = hmac.new(
        secrets.client_secret.encode(), timestamp.encode() + request.body, hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, given):
        raise WebhookRefused(401, "bad X-WHOOP-Signature")
    millis = _int(timestamp)
    if millis is None:
        raise WebhookRefused(401, "X-WHOOP-Signature-Timestamp is not a number")
    if abs(now - millis / 1000) > SIGNATURE_TOLERANCE_S:
        raise WebhookRefused(401, "stale X-WHOOP-Signature-Timestamp")
    return datetime.fromtimestamp(millis / 1000, UTC)


def _notices(body: bytes, sent: datetime) -> list[Notice]:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRefused(400, "event body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRefused(400, "event is not an object")
    user_id = event.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, int | str) or user_id == "":
        raise WebhookRefused(400, "event without a user_id")
    kind, _, action = str(event.get("type", "")).partition(".")
    resources = RESYNC.get(kind)
    if resources is None:
        return []  # an event we do not sync: acknowledged, nothing to do
    deleted = None
    if action == "deleted":
        record_id = event.get("id")
        if isinstance(record_id, bool) or not isinstance(record_id, int | str) or record_id == "":
            raise WebhookRefused(400, f"{kind}.deleted without a record id")
        deleted = Deletion(resource=kind, record_id=str(record_id), event=event)
    # The record's own time is not in the event.
    return [
        Notice(
            provider_user_id=str(user_id),
            resources=resources,
            start=sent - WEBHOOK_LOOKBACK,
            end=sent,
            deleted=deleted,
        )
    ]


def verify_webhook(
    request: WebhookRequest, secrets: WebhookSecrets, now: float | None = None
) -> Notices:
    """A signed event (POST); WHOOP has no handshake. `now` (epoch seconds) is for tests."""
    if request.method.upper() != "POST":
        raise WebhookRefused(405, f"{request.method} is not a WHOOP webhook call")
    sent = _signed_at(request, secrets, time.time() if now is None else now)
    return Notices(_notices(request.body, sent))


def _profile_id(body: Any) -> str:
    """The profile's numeric `user_id` is the one webhook events carry."""
    if not isinstance(body, dict) or not isinstance(body.get("user_id"), int):
        raise MalformedPage("profile without a user_id")
    return str(body["user_id"])


PROVIDER = Provider(
    name="whoop",
    resources=RESOURCES,
    limits=LIMITS,
    check_answer=check_answer,
    usage_from_headers=usage_from_headers,
    verify_webhook=verify_webhook,
    identity=Identity(Call(f"{API}/user/profile/basic"), _profile_id),
)
