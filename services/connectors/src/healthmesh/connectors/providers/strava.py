"""Strava API v3 (reference: shared/reference/providers/strava.md).

Quirks handled here, and why:
- One resource, `activities`, from the summary list `GET /api/v3/athlete/activities`: it already
  carries what a workout needs (distance, moving/elapsed time, `sport_type` and legacy `type`,
  `start_date`, `start_date_local`, `timezone`, `utc_offset`, heart rate, `kilojoules`). The
  detailed activity would add `calories`, laps and splits at one call per activity out of a read
  budget of 1,000 a day shared by *every* user of the application, so it is not fetched.
- `after`/`before` are epoch seconds on the activity's start, with no documented maximum range:
  one window spans any backfill. `after` is sent one second early so an activity starting on the
  window's first second is listed whether Strava compares strictly or not; a repeat is free.
- Pages are `page`/`per_page` (at most 200) with no cursor. Strava documents that a page may hold
  fewer than `per_page` items "even when that page is not the last" and to iterate "until an empty
  page is returned": so a short page is not the end, and each window costs one empty page more
  than its items need. (With `after`, the order is oldest first.)
- `start_date` is UTC; `start_date_local` is the local wall time written with a `Z` (not UTC),
  and `timezone` carries the zone's standard offset while `utc_offset` follows DST. Item times come
  from `start_date` and `elapsed_time` only; the raw document keeps the rest for the normalizer.
- Uploads arrive late (a watch synced days after a trip) and other edits (cropping, re-processed
  heart rate) send no webhook: incremental syncs re-read a week, which costs no extra call until
  a week holds 200 activities.
- Errors are `{"message", "errors": [{"resource", "field", "code"}]}` Faults. A missing scope is a
  401 with `field: "activity:read_permission", code: "missing"`: refused for good (a refresh gives
  the same scopes), while any other 401 is a token to refresh. 404 (an activity gone) and other
  4xx are refused; 5xx and a 200 that is not JSON (truncated) are transient.
- Limits are per application: 200 / 15 min and 2,000 / UTC day overall, reads 100 / 15 min and
  1,000 / day, in windows at :00/:15/:30/:45 and midnight UTC. Every answer reports both pairs
  (`X-RateLimit-Usage`, `X-ReadRateLimit-Usage`: "15min,daily"). A 429 carries no Retry-After:
  we wait for the next quarter hour, or for UTC midnight when a daily count is spent.
- Webhooks: a GET handshake echoing `hub.challenge` when `hub.verify_token` is ours; events are
  not signed at all, so only their documented shape is checked. An athlete event with
  `updates: {"authorized": "false"}` (a string) is a deauthorization. An activity create, update or
  delete re-syncs the activities started in the 30 days before `event_time` (an upload can be
  late; the event does not say when the activity started). A deleted activity is simply absent from
  the list: nothing is published for it, and edits to activities older than that are not re-read.
"""

import hmac
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from healthmesh.connectors.providers.base import (
    Answer,
    Call,
    Challenge,
    HttpAnswer,
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

ACTIVITIES = "/api/v3/athlete/activities"
PER_PAGE = 200
"""Strava's largest page."""
WHOLE_HISTORY = timedelta(days=20 * 366)
"""No documented range limit: one window covers any backfill (each window costs an empty page)."""
OVERLAP = timedelta(days=7)
EVENT_LOOKBACK = timedelta(days=30)
"""An activity event re-syncs the activities started this long before it."""
QUARTER_HOUR_S = 900
DAY_S = 86_400
RESET_MARGIN_S = 1.0
"""Waiting a second past a window's reset keeps a slightly slow clock from hitting it again."""


# --- reading answers ---------------------------------------------------------------------------


def _epoch(moment: datetime) -> int:
    return math.ceil(moment.timestamp())


def first_call(start: datetime, end: datetime) -> Call:
    """Activities started in [start, end): `after` a second early, `before` at the end."""
    return Call(
        ACTIVITIES,
        {
            "after": str(_epoch(start) - 1),
            "before": str(_epoch(end)),
            "page": "1",
            "per_page": str(PER_PAGE),
        },
    )


def _activity_item(activity: Any) -> Item:
    if not isinstance(activity, dict):
        raise MalformedPage(f"an activity that is not an object: {activity!r:.80}")
    ident = activity.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool):
        raise MalformedPage(f"activity without an integer id: {sorted(activity)}")
    start = utc_moment(activity.get("start_date"), "start_date")  # UTC; start_date_local is not
    elapsed = activity.get("elapsed_time")
    end = (
        start + timedelta(seconds=elapsed)
        if isinstance(elapsed, int | float) and not isinstance(elapsed, bool)
        else None
    )
    return Item(key=str(ident), payload=activity, start=start, end=end)


def read_page(body: Any, call: Call) -> Page:
    """One page of SummaryActivity; the next page until Strava answers an empty one."""
    if not isinstance(body, list):
        raise MalformedPage(
            f"{call.path}: expected a list of activities, got {type(body).__name__}"
        )
    items = [_activity_item(activity) for activity in body]
    if not items:
        return Page([], None)
    try:
        page = int(call.params.get("page", "1"))
    except ValueError:
        raise MalformedPage(f"{call.path}: page {call.params.get('page')!r}") from None
    return Page(items, Call(call.path, {**call.params, "page": str(page + 1)}))


RESOURCES = (
    Resource(
        name="activities",
        first_call=first_call,
        read_page=read_page,
        max_window=WHOLE_HISTORY,
        overlap=OVERLAP,
        page_size=PER_PAGE,
        ends_on_empty_page=True,
    ),
)


# --- answers -----------------------------------------------------------------------------------

LIMITS = (
    Limit("overall_15min", 200, QUARTER_HOUR_S),
    Limit("overall_daily", 2_000, DAY_S),
    Limit("read_15min", 100, QUARTER_HOUR_S),
    Limit("read_daily", 1_000, DAY_S),
)
HEADER_PAIRS = (
    ("x-ratelimit-limit", "x-ratelimit-usage", "overall_15min", "overall_daily"),
    ("x-readratelimit-limit", "x-readratelimit-usage", "read_15min", "read_daily"),
)


def _pair(value: str | None) -> tuple[int, int] | None:
    """Strava's "15min,daily" header value."""
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) != 2:
        return None
    try:
        return int(parts[0].strip()), int(parts[1].strip())
    except ValueError:
        return None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def usage_from_headers(headers: Mapping[str, str]) -> dict[str, int]:
    lower = _lower(headers)
    used: dict[str, int] = {}
    for _, usage_header, short, daily in HEADER_PAIRS:
        pair = _pair(lower.get(usage_header))
        if pair is not None:
            used[short], used[daily] = pair
    return used


def _daily_spent(headers: dict[str, str]) -> bool:
    for limit_header, usage_header, _, _ in HEADER_PAIRS:
        limit, usage = _pair(headers.get(limit_header)), _pair(headers.get(usage_header))
        if limit is not None and usage is not None and usage[1] >= limit[1]:
            return True
    return False


def _clock(headers: dict[str, str]) -> float:
    """Strava's own time from its `Date` header when there is one (the windows are its)."""
    value = headers.get("date")
    if value:
        try:
            return parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def until_reset(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds to the next quarter hour, or to UTC midnight when a daily count is spent."""
    lower = _lower(headers)
    at = _clock(lower) if now is None else now
    period = DAY_S if _daily_spent(lower) else QUARTER_HOUR_S
    return period - at % period + RESET_MARGIN_S


def _errors(answer: HttpAnswer) -> list[dict[str, Any]]:
    body = answer.json
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    return []


def _reason(answer: HttpAnswer) -> str:
    body = answer.json
    if isinstance(body, dict) and "message" in body:
        fields = ", ".join(
            f"{e.get('resource')}.{e.get('field')} {e.get('code')}" for e in _errors(answer)
        )
        return f"{answer.status} {str(body['message'])[:100]}" + (
            f" ({fields[:200]})" if fields else ""
        )
    return f"{answer.status} {answer.text[:200]}"


def _missing_scope(answer: HttpAnswer) -> bool:
    return any(
        e.get("code") == "missing" and str(e.get("field", "")).endswith("_permission")
        for e in _errors(answer)
    )


def check_answer(answer: HttpAnswer, now: float | None = None) -> Answer:
    """`now` (epoch seconds) is for tests of the rate-limit wait."""
    status = answer.status
    if 200 <= status < 300:
        if answer.json is None:
            return Transient(f"{status} with a body that is not JSON (truncated?)")
        return Ok(answer.json)
    if status == 401:
        if _missing_scope(answer):
            return Refused(f"scope not granted: {_reason(answer)}")
        return Unauthorized(_reason(answer))
    if status == 429:
        retry_after = parse_retry_after(answer.headers.get("retry-after"))
        return RateLimited(retry_after if retry_after else until_reset(answer.headers, now))
    if status >= 500 or status == 408:
        return Transient(_reason(answer))
    return Refused(_reason(answer))


# --- webhooks ----------------------------------------------------------------------------------

ASPECTS = frozenset({"create", "update", "delete"})
OBJECTS = frozenset({"activity", "athlete"})
INTEGER_FIELDS = ("event_time", "object_id", "owner_id", "subscription_id")


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def _handshake(request: WebhookRequest, secrets: WebhookSecrets) -> Challenge:
    if secrets.verify_token is None:
        raise WebhookRefused(403, "no verify token configured")
    if request.query.get("hub.mode") != "subscribe":
        raise WebhookRefused(403, "handshake without hub.mode=subscribe")
    if not _same(secrets.verify_token, request.query.get("hub.verify_token", "")):
        raise WebhookRefused(403, "hub.verify_token does not match")
    challenge = request.query.get("hub.challenge")
    if not challenge:
        raise WebhookRefused(403, "handshake without hub.challenge")
    return Challenge(200, {"hub.challenge": challenge})


def _event(body: bytes) -> dict[str, Any]:
    """The event, if it is exactly the documented shape: all Strava lets us check."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRefused(403, "event body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRefused(403, "event is not an object")
    for name in INTEGER_FIELDS:
        value = event.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise WebhookRefused(403, f"event without a positive integer {name}")
    if event.get("aspect_type") not in ASPECTS:
        raise WebhookRefused(403, f"unknown aspect_type {event.get('aspect_type')!r:.40}")
    if event.get("object_type") not in OBJECTS:
        raise WebhookRefused(403, f"unknown object_type {event.get('object_type')!r:.40}")
    if not isinstance(event.get("updates", {}), dict):
        raise WebhookRefused(403, "event updates is not an object")
    return event


def _notices(event: dict[str, Any]) -> list[Notice]:
    owner = str(event["owner_id"])
    updates: dict[str, Any] = event.get("updates") or {}
    if event["object_type"] == "athlete":
        if str(updates.get("authorized", "")).lower() == "false":
            return [Notice(provider_user_id=owner, deauthorized=True)]
        return []  # athlete profile changes: nothing we sync
    at = datetime.fromtimestamp(event["event_time"], UTC)
    return [
        Notice(
            provider_user_id=owner,
            resources=("activities",),
            start=at - EVENT_LOOKBACK,
            end=at,
        )
    ]


def verify_webhook(request: WebhookRequest, secrets: WebhookSecrets) -> Challenge | Notices:
    """The subscription handshake (GET) or an unsigned event (POST)."""
    method = request.method.upper()
    if method == "GET":
        return _handshake(request, secrets)
    if method != "POST":
        raise WebhookRefused(405, f"{request.method} is not a webhook call")
    return Notices(_notices(_event(request.body)))


PROVIDER = Provider(
    name="strava",
    resources=RESOURCES,
    limits=LIMITS,
    check_answer=check_answer,
    usage_from_headers=usage_from_headers,
    verify_webhook=verify_webhook,
    signed_webhooks=False,
)
