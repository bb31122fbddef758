"""Fitbit through the Google Health API v4 (reference: shared/reference/providers/google_health.md;
the legacy Fitbit Web API of fitbit.md is switched off).

Quirks handled here, and why:
- Every data type has three spellings: kebab-case in the URL (`heart-rate`; `heartRate` is a 400),
  snake_case in filters (`heart_rate.…`), lowerCamelCase as the JSON union member (`heartRate`).
  Resources are named after the URL spelling.
- dataPoints.list takes an AIP-160 `filter` on the one field each record kind allows (anything
  else is a 400 INVALID_DATA_POINT_FILTER): intervals on `<t>.interval.start_time`, samples on
  `<t>.sample_time.physical_time`, daily types on `<t>.date`, exercise on
  `exercise.interval.civil_start_time`, sleep on its *end*, `sleep.interval.end_time`.
- Daily types, exercise and `:dailyRollUp` know only the user's civil (local) dates, and we do
  not know the user's offset: a window asks for the civil dates of the UTC days it touches
  (closed-open), so consecutive windows tile the calendar without gaps or repeats, today included.
- list has no documented maximum range: one window spans a whole backfill year. `:dailyRollUp`
  spans at most 90 civil days (total-calories 14).
- Pages: `pageSize` at its maximum, 10,000 (sleep and exercise: 25), `pageToken` from
  `nextPageToken`, newest first. Proto3 JSON leaves empty fields out, so `{}` is an empty page.
- list gives each source's own points (watch and phone overlap; summing double counts): the
  daily totals the Fitbit app shows come from `:dailyRollUp` (steps, distance, total-calories,
  which has no list at all), one row per civil day, keyed by that date.
- Per-minute steps, distance and active minutes and 5-minute heart rate are time series,
  published per UTC day as `{"dataPoints": [...]}` like Google's own page. Documents of the
  identifiable types (sleep, exercise, weight, body fat) are keyed by their `name`; the others by
  their date or time plus a fingerprint of their `dataSource` (two sources may share a time).
- int64 values arrive as strings and offsets as "7200s": published as received.
- Trackers hold about a week of minute data and upload it whenever they next sync; daily values
  (resting heart rate, HRV, SpO2, totals) are recomputed then: every resource re-reads 7 days.
- Errors are google.rpc.Status: 401 UNAUTHENTICATED (refresh); 400 (ACCOUNT_NOT_LINKED,
  INVALID_ARGUMENT, a bad filter) and 403 (a scope left unticked) are refused; 429
  RESOURCE_EXHAUSTED waits; 5xx, UNAVAILABLE/DEADLINE_EXCEEDED/ABORTED and a 200 that is not
  JSON are retried.
- 300 requests per minute per user; per project 120,000 per minute and 86.4 M per day. No usage
  headers.
- Webhooks: the endpoint check POSTs `{"type": "verification"}` twice and wants 201 when
  `Authorization` is the subscriber's secret, 401/403 without it. Notifications are JSON arrays
  (`healthUserId`, `dataType`, `intervals`) carrying the secret verbatim in `Authorization` and a
  base64 DER ECDSA P-256/SHA-256 signature of the raw body in `X-HEALTHAPI-SIGNATURE`; both must
  hold. No timestamp is signed, so there is no staleness to check.
"""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import JsonValue

from healthmesh.connectors.providers.base import (
    Answer,
    Call,
    Challenge,
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
    no_usage_headers,
    parse_retry_after,
    utc_day,
)

DATA_TYPES = "/v4/users/me/dataTypes"
WHOLE_BACKFILL = timedelta(days=366)
"""A 365-day backfill starts mid-day: 366 days keep it (and its partial first day) in one window."""
LATE_SYNC = timedelta(days=7)
LIST_PAGE_SIZE = 10_000
SESSION_PAGE_SIZE = 25
ROLLUP_DAYS = 90
SHORT_ROLLUP_DAYS = 14
"""heart-rate, total-calories, active-minutes and calories-in-heart-rate-zone roll up 14 days."""


class Kind(Enum):
    INTERVAL = "interval"
    SAMPLE = "sample"
    DAILY = "daily"
    EXERCISE = "exercise"
    SLEEP = "sleep"


@dataclass(frozen=True)
class DataType:
    kebab: str
    """In the URL, and our resource name."""
    member: str
    """The JSON union member of a DataPoint."""
    kind: Kind

    @property
    def snake(self) -> str:
        """In filters."""
        return self.kebab.replace("-", "_")


# --- reading answers ---------------------------------------------------------------------------


def _moment(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedPage(f"{what}: expected an RFC 3339 time, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedPage(f"{what}: not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise MalformedPage(f"{what}: a physical time without a zone: {value!r}")
    return moment.astimezone(UTC)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPage(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _civil_date(value: Any, what: str) -> date:
    """A google.type.Date `{year, month, day}` as a date."""
    parts = _object(value, what)
    try:
        return date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except (KeyError, TypeError, ValueError):
        raise MalformedPage(f"{what}: not a date: {parts!r}") from None


def _source_tag(point: dict[str, Any]) -> str:
    """Tells sources apart when points share a time (a watch and a phone)."""
    source = point.get("dataSource")
    if source is None:
        return ""
    return "@" + hashlib.sha256(orjson.dumps(source, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def _document_key(point: dict[str, Any], natural: str) -> str:
    name = point.get("name")
    if isinstance(name, str) and name:
        return name
    return natural + _source_tag(point)


def _point_item(data_type: DataType, point: dict[str, Any]) -> Item:
    member = _object(point.get(data_type.member), f"{data_type.kebab}: `{data_type.member}`")
    kind = data_type.kind
    if kind is Kind.DAILY:
        day = _civil_date(member.get("date"), f"{data_type.kebab}.date").isoformat()
        return Item(key=_document_key(point, day), payload=point)
    if kind is Kind.SAMPLE:
        sample = _object(member.get("sampleTime"), f"{data_type.kebab}.sampleTime")
        at = _moment(sample.get("physicalTime"), f"{data_type.kebab}.sampleTime.physicalTime")
        start, end = at, at
    else:
        interval = _object(member.get("interval"), f"{data_type.kebab}.interval")
        start = _moment(interval.get("startTime"), f"{data_type.kebab}.interval.startTime")
        end = _moment(interval.get("endTime"), f"{data_type.kebab}.interval.endTime")
    if data_type.kebab in SERIES:
        return Item(key=utc_day(start), payload=point, start=start, end=end)
    natural = start.isoformat().replace("+00:00", "Z")
    return Item(key=_document_key(point, natural), payload=point, start=start, end=end)


def _page_fields(body: Any, listed: str, call: Call) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of a `{listed: [...], "nextPageToken"}` page and its token; both may be left
    out (proto3 JSON omits empty fields), nothing else may be there."""
    if not isinstance(body, dict):
        raise MalformedPage(f"{call.path}: the answer is not an object")
    unknown = set(body) - {listed, "nextPageToken"}
    if unknown:
        raise MalformedPage(f"{call.path}: unexpected fields {sorted(unknown)}")
    rows = body.get(listed, [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise MalformedPage(f"{call.path}: `{listed}` is not a list of objects")
    token = body.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise MalformedPage(f"{call.path}: `nextPageToken` is {token!r}")
    return rows, token or None


# --- dataPoints.list ---------------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def civil_range(start: datetime, end: datetime) -> tuple[date, date]:
    """The civil dates of the UTC days [start, end) touches, as a closed-open range."""
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return first, last + timedelta(days=1)


def list_filter(data_type: DataType, start: datetime, end: datetime) -> str:
    """The AIP-160 filter for a window, on the field the record kind allows."""
    field = {
        Kind.INTERVAL: "interval.start_time",
        Kind.SAMPLE: "sample_time.physical_time",
        Kind.SLEEP: "interval.end_time",
        Kind.DAILY: "date",
        Kind.EXERCISE: "interval.civil_start_time",
    }[data_type.kind]
    if data_type.kind in (Kind.DAILY, Kind.EXERCISE):
        low, high = (day.isoformat() for day in civil_range(start, end))
    else:
        low, high = _rfc3339(start), _rfc3339(end)
    name = f"{data_type.snake}.{field}"
    return f'{name} >= "{low}" AND {name} < "{high}"'


def _list_call(data_type: DataType, page_size: int) -> Callable[[datetime, datetime], Call]:
    def first_call(start: datetime, end: datetime) -> Call:
        return Call(
            f"{DATA_TYPES}/{data_type.kebab}/dataPoints",
            {"filter": list_filter(data_type, start, end), "pageSize": str(page_size)},
        )

    return first_call


def _list_page(data_type: DataType) -> Callable[[Any, Call], Page]:
    def read_page(body: Any, call: Call) -> Page:
        points, token = _page_fields(body, "dataPoints", call)
        items = [_point_item(data_type, point) for point in points]
        if token is None:
            return Page(items, None)
        params = {k: v for k, v in call.params.items() if k != "pageToken"}
        return Page(items, Call(call.path, {**params, "pageToken": token}))

    return read_page


def _series_payload(rows: list[JsonValue]) -> JsonValue:
    """A UTC day of points, shaped like Google's own page."""
    return {"dataPoints": rows}


def _listed(data_type: DataType, series: bool = False) -> Resource:
    sessions = data_type.kind in (Kind.SLEEP, Kind.EXERCISE)
    page_size = SESSION_PAGE_SIZE if sessions else LIST_PAGE_SIZE
    return Resource(
        name=data_type.kebab,
        first_call=_list_call(data_type, page_size),
        read_page=_list_page(data_type),
        max_window=WHOLE_BACKFILL,
        overlap=LATE_SYNC,
        series=_series_payload if series else None,
        page_size=page_size,
    )


# --- dataPoints:dailyRollUp --------------------------------------------------------------------


def _date_json(day: date) -> dict[str, JsonValue]:
    return {"year": day.year, "month": day.month, "day": day.day}


def _rollup_call(kebab: str) -> Callable[[datetime, datetime], Call]:
    def first_call(start: datetime, end: datetime) -> Call:
        first, stop = civil_range(start, end)
        body: dict[str, JsonValue] = {
            "range": {"start": {"date": _date_json(first)}, "end": {"date": _date_json(stop)}},
            "windowSizeDays": 1,
        }
        return Call(f"{DATA_TYPES}/{kebab}/dataPoints:dailyRollUp", method="POST", json=body)

    return first_call


def _rollup_page(body: Any, call: Call) -> Page:
    rows, token = _page_fields(body, "rollupDataPoints", call)
    items = []
    for row in rows:
        civil_start = _object(row.get("civilStartTime"), "civilStartTime")
        day = _civil_date(civil_start.get("date"), "civilStartTime.date")
        items.append(Item(key=day.isoformat(), payload=row))
    if token is None:
        return Page(items, None)
    # The schema has no nextPageToken here; should one come, the body must stay the same.
    request = call.json if isinstance(call.json, dict) else {}
    following = {**{k: v for k, v in request.items() if k != "pageToken"}, "pageToken": token}
    return Page(items, Call(call.path, call.params, method="POST", json=following))


def _rolled_up(kebab: str, max_days: int) -> Resource:
    return Resource(
        name=f"{kebab}:dailyRollUp",
        first_call=_rollup_call(kebab),
        read_page=_rollup_page,
        max_window=timedelta(days=max_days),
        overlap=LATE_SYNC,
    )


# --- the resources -----------------------------------------------------------------------------

TYPES = {
    t.kebab: t
    for t in (
        DataType("steps", "steps", Kind.INTERVAL),
        DataType("distance", "distance", Kind.INTERVAL),
        DataType("active-minutes", "activeMinutes", Kind.INTERVAL),
        DataType("active-zone-minutes", "activeZoneMinutes", Kind.INTERVAL),
        DataType("heart-rate", "heartRate", Kind.SAMPLE),
        DataType("exercise", "exercise", Kind.EXERCISE),
        DataType("sleep", "sleep", Kind.SLEEP),
        DataType("weight", "weight", Kind.SAMPLE),
        DataType("body-fat", "bodyFat", Kind.SAMPLE),
        DataType("daily-resting-heart-rate", "dailyRestingHeartRate", Kind.DAILY),
        DataType("daily-heart-rate-variability", "dailyHeartRateVariability", Kind.DAILY),
        DataType("daily-oxygen-saturation", "dailyOxygenSaturation", Kind.DAILY),
    )
}
SERIES = frozenset(("steps", "distance", "active-minutes", "active-zone-minutes", "heart-rate"))
"""Minute-level (heart rate: every few minutes): one event per UTC day, not one per point."""

RESOURCES = (
    *(_listed(t, series=t.kebab in SERIES) for t in TYPES.values()),
    _rolled_up("steps", ROLLUP_DAYS),
    _rolled_up("distance", ROLLUP_DAYS),
    _rolled_up("total-calories", SHORT_ROLLUP_DAYS),
)


# --- answers -----------------------------------------------------------------------------------

RETRYABLE = frozenset(("UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "INTERNAL"))
"""google.rpc codes worth retrying whatever the HTTP status says."""
QUOTA_REASONS = frozenset(("RATE_LIMIT_EXCEEDED", "rateLimitExceeded", "userRateLimitExceeded"))


def _status(answer: HttpAnswer) -> tuple[str, str, str]:
    """(google.rpc status, ErrorInfo reason, message) of an error answer, empty when absent."""
    error = answer.json.get("error") if isinstance(answer.json, dict) else None
    if not isinstance(error, dict):
        return "", "", answer.text[:200]
    reasons = [
        str(d.get("reason"))
        for d in error.get("details") or []
        if isinstance(d, dict) and d.get("reason")
    ]
    return (
        str(error.get("status") or ""),
        reasons[0] if reasons else "",
        str(error.get("message", "")),
    )


def check_answer(answer: HttpAnswer) -> Answer:
    code = answer.status
    if 200 <= code < 300:
        if answer.json is None:
            return Transient(f"{code} with a body that is not JSON (truncated?)")
        return Ok(answer.json)
    status, reason, message = _status(answer)
    detail = " ".join(part for part in (str(code), status, reason) if part) + f": {message[:200]}"
    if code == 401:
        return Unauthorized(detail)
    if code == 429 or status == "RESOURCE_EXHAUSTED" or reason in QUOTA_REASONS:
        return RateLimited(parse_retry_after(answer.headers.get("retry-after")))
    if code >= 500 or code == 408 or status in RETRYABLE:
        return Transient(detail)
    return Refused(detail)


# --- webhooks ----------------------------------------------------------------------------------

RESYNC: Mapping[str, tuple[str, ...]] = {
    **{kebab: (kebab,) for kebab in TYPES},
    "steps": ("steps", "steps:dailyRollUp"),
    "distance": ("distance", "distance:dailyRollUp"),
    "total-calories": ("total-calories:dailyRollUp",),
}
"""A notification's `dataType` -> the resources to re-sync; other types are acknowledged."""
SIGNATURE_HEADERS = ("x-healthapi-signature", "google-health-api-signature")
"""The documented header, and the name a third party observed it under."""


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


@lru_cache(maxsize=8)
def _public_key(pem: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise WebhookRefused(403, "the configured webhook public key is unreadable") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WebhookRefused(403, "the configured webhook public key is not an EC key")
    return key


def _check_signature(request: WebhookRequest, signature: str, secrets: WebhookSecrets) -> None:
    if secrets.public_key_pem is None:
        raise WebhookRefused(403, "no webhook public key configured")
    key = _public_key(secrets.public_key_pem)
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, request.body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookRefused(401, "bad X-HEALTHAPI-SIGNATURE") from None


def _civil_start(text: str) -> datetime:
    """A civil (local) time or date, as UTC widened by a day: the offset is unknown."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC) - timedelta(days=1)


def _interval_span(interval: Any) -> tuple[datetime | None, datetime | None]:
    if not isinstance(interval, dict):
        return None, None
    try:
        physical = interval.get("physicalTimeInterval")
        if isinstance(physical, dict) and physical.get("startTime"):
            end = physical.get("endTime")
            return (
                _moment(physical["startTime"], "startTime"),
                _moment(end, "endTime") if end else None,
            )
        civil = interval.get("civilIso8601TimeInterval")
        if isinstance(civil, str) and "/" in civil:
            first, last = civil.split("/", 1)
            return _civil_start(first), _civil_start(last) + timedelta(days=2)
        local = interval.get("civilDateTimeInterval")
        if isinstance(local, dict) and isinstance(local.get("startTime"), str):
            end = local.get("endTime")
            return (
                _civil_start(local["startTime"]),
                _civil_start(end) + timedelta(days=2) if isinstance(end, str) else None,
            )
    except (MalformedPage, ValueError):
        pass  # a verified notification with an odd interval still re-syncs, from the default
    return None, None


def _notice(element: Any) -> Notice | None:
    data = element.get("data", element) if isinstance(element, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("healthUserId"), str):
        raise WebhookRefused(400, "a notification without a healthUserId")
    resources = RESYNC.get(str(data.get("dataType")))
    if resources is None:
        return None
    intervals = data.get("intervals")
    spans = [_interval_span(i) for i in intervals] if isinstance(intervals, list) else []
    starts = [s for s, _ in spans if s is not None]
    ends = [e for _, e in spans if e is not None]
    return Notice(
        provider_user_id=data["healthUserId"],
        resources=resources,
        start=min(starts) if starts else None,
        end=max(ends) if ends and len(ends) == len(spans) else None,
    )


def verify_webhook(request: WebhookRequest, secrets: WebhookSecrets) -> Challenge | Notices:
    """The endpoint check (201 for the holder of the secret) or a signed notification batch."""
    if request.method.upper() != "POST":
        raise WebhookRefused(405, f"{request.method} is not a webhook call")
    if secrets.authorization is None:
        raise WebhookRefused(403, "no webhook Authorization secret configured")
    given = request.headers.get("authorization")
    if given is None:
        raise WebhookRefused(401, "missing Authorization")
    if not _same(secrets.authorization, given):
        raise WebhookRefused(401, "Authorization does not match the subscriber's secret")
    signature = next((request.headers[h] for h in SIGNATURE_HEADERS if h in request.headers), None)
    if signature is not None:
        _check_signature(request, signature, secrets)
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise WebhookRefused(400, "webhook body is not JSON") from None
    if isinstance(body, dict) and body.get("type") == "verification":
        return Challenge(201, None)
    if signature is None:
        raise WebhookRefused(401, "missing X-HEALTHAPI-SIGNATURE")
    if not isinstance(body, list):
        raise WebhookRefused(400, "a notification body is a JSON array")
    notices = [_notice(element) for element in body]
    return Notices([n for n in notices if n is not None])


def _health_user_id(body: Any) -> str:
    """The identity's `healthUserId` is what webhook notifications carry."""
    if not isinstance(body, dict) or not isinstance(body.get("healthUserId"), str):
        raise MalformedPage("identity without a healthUserId")
    return str(body["healthUserId"])


PROVIDER = Provider(
    name="fitbit",
    resources=RESOURCES,
    limits=(
        Limit("user_minute", 300, 60, per_user=True),
        Limit("project_minute", 120_000, 60),
        Limit("project_day", 86_400_000, 86_400),
    ),
    check_answer=check_answer,
    usage_from_headers=no_usage_headers,
    verify_webhook=verify_webhook,
    identity=Identity(Call("/v4/users/me/identity"), _health_user_id),
)
