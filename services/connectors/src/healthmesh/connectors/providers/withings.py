"""Withings Public Health Data API (reference: shared/reference/providers/withings.md).

Quirks handled here, and why:
- Every call is a webservice + `action` (`/measure action=getmeas`, `/v2/measure
  action=getactivity|getworkouts`, `/v2/sleep action=getsummary`) with its parameters in a
  form-encoded POST body and the token as a bearer header.
- Every answer is HTTP 200 with `{"status", "body"}`: success is status 0; 401 is a refused token
  (refresh), except `insufficient_scope`, which a refresh cannot fix (refused); 601 is the rate
  limit; 503 (invalid params), 2554 (unknown action) and any other status are refused for good,
  except Withings' 5xx-like statuses (other than 503) and 2555 "unknown error", which are worth a
  retry. HTTP 5xx, a gateway timeout and a 200 whose body is not JSON (truncated) are transient.
- `getmeas` takes epoch seconds, inclusive at both ends: a window [start, end) is asked as
  `startdate=ceil(start)`, `enddate=ceil(end) - 1`, so adjacent windows never share a group.
  It names the measure types wanted (`meastypes`: every documented type, so the normalizer has
  them all) and `category=1` (real measures, not the user's objectives). Values are
  `value x 10^unit` with a unit that varies per record: published exactly as received.
- `getactivity`, `getworkouts` and `getsummary` take local dates (`startdateymd`/`enddateymd`,
  inclusive); the window's UTC range is widened by a day each side so every user's local day is
  covered (an overlap costs nothing: ids are deterministic). `data_fields` asks for every
  documented field of activities and sleep summaries (without it, Withings leaves out heart rate
  and most sleep metrics). Workouts are asked without `data_fields` for now: their fields live
  under `data`, and the simulator filters a workout's top-level keys by them instead, which
  would drop `startdate` and `data` itself.
- Pages are Withings' own: `more` + `offset`, to be sent back as `offset`. `more` is an integer
  (0/1) in `getmeas` and a boolean in the v2 services; both forms are read. Withings has no page
  size parameter; it cuts pages of 100 (the simulator's, and what one page holds).
- No documented maximum range for these four listings (only the high-frequency `sleep get` and
  `getintradayactivity` stop at 24 hours): one window spans any backfill.
- A measure group is published as `{"timezone": <the page's>, "measuregrps": [<the group>]}`:
  getmeas gives the time zone once per page, not per group.
- Keys: a measure group's `grpid`; a day of activity's local `date` (one aggregate per day);
  a workout's and a sleep summary's `id` when Withings sends it, else its `startdate`.
- Data arrives late (a watch or cuff syncs when the app is opened, nights are re-scored), and
  Withings notifies changes: incremental syncs re-read a week.
- Limit: 120 calls a minute per application; no usage headers.
- Webhooks are unsigned form-encoded POSTs (`userid, appli, startdate, enddate`, sometimes `date`,
  `deviceid`, `action`): Withings relies on IP allow-lists, so verifying means the body is the
  documented shape, `appli` a known category and the time range sane. A HEAD or GET (Withings
  checking that the callback URL answers) gets an empty 200. `appli=46` with `action=unlink` or
  `delete` is the user leaving: a deauthorization, proven by the next sync's refused token.
"""

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    dates_of,
    no_usage_headers,
    parse_retry_after,
)

MEASURE = "/measure"
MEASURE_V2 = "/v2/measure"
SLEEP_V2 = "/v2/sleep"
PAGE = 100
"""What one Withings page holds (it takes no page size)."""
WHOLE_HISTORY = timedelta(days=20 * 366)
"""No documented range limit for these listings: one window covers any backfill."""
OVERLAP = timedelta(days=7)
MINUTE_S = 60.0

MEASTYPES = (
    1, 4, 5, 6, 8, 9, 10, 11, 12, 54, 71, 73, 76, 77, 88, 91, 123, 130, 135, 136, 137, 138,
    139, 155, 167, 168, 169, 170, 173, 174, 175, 196, 226, 227, 229,
)  # fmt: skip
"""Every measure type the getmeas reference documents."""
ACTIVITY_FIELDS = (
    "steps", "distance", "elevation", "soft", "moderate", "intense", "active", "calories",
    "totalcalories", "hr_average", "hr_min", "hr_max", "hr_zone_0", "hr_zone_1", "hr_zone_2",
    "hr_zone_3",
)  # fmt: skip
SLEEP_FIELDS = (
    "total_timeinbed", "total_sleep_time", "asleepduration", "lightsleepduration",
    "remsleepduration", "deepsleepduration", "sleep_efficiency", "sleep_latency",
    "wakeup_latency", "wakeupduration", "wakeupcount", "waso", "nb_rem_episodes",
    "breathing_disturbances_intensity", "apnea_hypopnea_index", "withings_index",
    "durationtosleep", "durationtowakeup", "out_of_bed_count", "hr_average", "hr_min", "hr_max",
    "rr_average", "rr_min", "rr_max", "breathing_quality_assessment", "snoring",
    "snoringepisodecount", "sleep_score", "night_events", "mvt_score_avg", "mvt_active_duration",
    "rmssd_start_avg", "rmssd_end_avg", "chest_movement_rate_wellness_average",
    "chest_movement_rate_wellness_min", "chest_movement_rate_wellness_max", "breathing_sounds",
    "breathing_sounds_episode_count", "chest_movement_rate_average", "chest_movement_rate_min",
    "chest_movement_rate_max", "core_body_temperature_min", "core_body_temperature_max",
    "core_body_temperature_avg", "core_body_temperature_status",
)  # fmt: skip
"""Every field of the getsummary reference."""


# --- calls and pages ---------------------------------------------------------------------------


def _post(path: str, form: dict[str, str]) -> Call:
    return Call(path, method="POST", form=form)


def measures_call(start: datetime, end: datetime) -> Call:
    """Measure groups taken in [start, end)."""
    return _post(
        MEASURE,
        {
            "action": "getmeas",
            "meastypes": ",".join(str(t) for t in MEASTYPES),
            "category": "1",
            "startdate": str(math.ceil(start.timestamp())),
            "enddate": str(math.ceil(end.timestamp()) - 1),
        },
    )


def _by_day(
    path: str, action: str, fields: tuple[str, ...]
) -> Callable[[datetime, datetime], Call]:
    def first_call(start: datetime, end: datetime) -> Call:
        first, last = dates_of(start, end)
        form = {
            "action": action,
            "startdateymd": first.isoformat(),
            "enddateymd": last.isoformat(),
        }
        if fields:
            form["data_fields"] = ",".join(fields)
        return _post(path, form)

    return first_call


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _more(body: dict[str, Any], call: Call) -> bool:
    """`more` is 0/1 in getmeas and a boolean in the v2 services."""
    more = body.get("more")
    if isinstance(more, bool):
        return more
    if more in (0, 1):
        return bool(more)
    raise MalformedPage(f"{call.path}: `more` is {more!r:.40}")


def _page(body: Any, call: Call, list_field: str, item: Callable[[dict[str, Any]], Item]) -> Page:
    """One Withings page: the list, then the same call at the answer's `offset` while `more`."""
    if not isinstance(body, dict):
        raise MalformedPage(f"{call.path}: expected an object, got {type(body).__name__}")
    rows = body.get(list_field)
    if not isinstance(rows, list):
        raise MalformedPage(f"{call.path}: no `{list_field}` list in {sorted(body)[:8]}")
    items = []
    for row in rows:
        if not isinstance(row, dict):
            raise MalformedPage(f"{call.path}: a `{list_field}` row is not an object")
        items.append(item(row))
    if not _more(body, call):
        return Page(items, None)
    form = dict(call.form or {})
    offset, current = _int(body.get("offset")), int(form.get("offset", "0"))
    if offset is None or offset <= current:
        raise MalformedPage(f"{call.path}: more, but offset {body.get('offset')!r:.40}")
    form["offset"] = str(offset)
    return Page(items, _post(call.path, form))


def _epoch(row: dict[str, Any], name: str) -> datetime:
    value = _int(row.get(name))
    if value is None:
        raise MalformedPage(f"a row without an integer `{name}`: {sorted(row)[:10]}")
    return datetime.fromtimestamp(value, UTC)


def _own_id(row: dict[str, Any], fallback: str) -> str:
    """Withings' `id` when it sends one (the reference documents it), else the start."""
    ident = _int(row.get("id"))
    if ident is not None:
        return str(ident)
    return str(int(_epoch(row, fallback).timestamp()))


def _measure_group(row: dict[str, Any], page: dict[str, Any]) -> Item:
    """One group, published in getmeas' own shape with the page's `timezone`: the reference
    gives a group no time zone of its own, and the normalizer needs one for the local offset."""
    grpid = _int(row.get("grpid"))
    if grpid is None:
        raise MalformedPage(f"a measure group without an integer grpid: {sorted(row)[:10]}")
    if not isinstance(row.get("measures"), list):
        raise MalformedPage(f"measure group {grpid} without a `measures` list")
    at = _epoch(row, "date")
    payload: dict[str, Any] = {"timezone": page.get("timezone"), "measuregrps": [row]}
    return Item(key=str(grpid), payload=payload, start=at, end=at)


DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _local_day(day: date, zone: Any) -> tuple[datetime | None, datetime | None]:
    """The local day the record covers, in UTC, when its time zone is a real one."""
    if not isinstance(zone, str):
        return None, None
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None, None
    start = datetime.combine(day, day_time(), tz)
    end = datetime.combine(day + timedelta(days=1), day_time(), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _activity(row: dict[str, Any]) -> Item:
    raw = row.get("date")
    try:
        day = date.fromisoformat(raw) if isinstance(raw, str) and DATE.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None:
        raise MalformedPage(f"an activity without a Y-m-d date: {raw!r:.40}")
    start, end = _local_day(day, row.get("timezone"))
    return Item(key=day.isoformat(), payload=row, start=start, end=end)


def _span(row: dict[str, Any]) -> Item:
    """A workout or a night: its own id (or start) and its start and end instants."""
    start, end = _epoch(row, "startdate"), _epoch(row, "enddate")
    return Item(key=_own_id(row, "startdate"), payload=row, start=start, end=end)


def read_measures(body: Any, call: Call) -> Page:
    page = body if isinstance(body, dict) else {}
    return _page(body, call, "measuregrps", lambda row: _measure_group(row, page))


def read_activity(body: Any, call: Call) -> Page:
    return _page(body, call, "activities", _activity)


def read_series(body: Any, call: Call) -> Page:
    """Workouts and sleep summaries both come as `series`."""
    return _page(body, call, "series", _span)


RESOURCES = (
    Resource(
        name="measures",
        first_call=measures_call,
        read_page=read_measures,
        max_window=WHOLE_HISTORY,
        overlap=OVERLAP,
        page_size=PAGE,
    ),
    Resource(
        name="activity",
        first_call=_by_day(MEASURE_V2, "getactivity", ACTIVITY_FIELDS),
        read_page=read_activity,
        max_window=WHOLE_HISTORY,
        overlap=OVERLAP,
        page_size=PAGE,
    ),
    Resource(
        name="workouts",
        first_call=_by_day(MEASURE_V2, "getworkouts", ()),
        read_page=read_series,
        max_window=WHOLE_HISTORY,
        overlap=OVERLAP,
        page_size=PAGE,
    ),
    Resource(
        name="sleep",
        first_call=_by_day(SLEEP_V2, "getsummary", SLEEP_FIELDS),
        read_page=read_series,
        max_window=WHOLE_HISTORY,
        overlap=OVERLAP,
        page_size=PAGE,
    ),
)


# --- answers -----------------------------------------------------------------------------------

LIMITS = (Limit("application_minute", 120, 60),)

OK = 0
TOKEN_REFUSED = frozenset({100, 101, 102, 200, 283, 401})
"""Withings' "Authentication failed" / invalid token statuses: refresh, then reconnect."""
TOO_MANY_REQUESTS = 601
INVALID_PARAMS = 503
UNKNOWN_ERROR = 2555


def _reason(status: int, body: dict[str, Any]) -> str:
    return f"status {status}: {str(body.get('error', ''))[:200]}"


def _verdict(status: int, body: dict[str, Any], headers: Mapping[str, str]) -> Answer:
    """Withings' own `status` in an HTTP 200 envelope."""
    if status == OK:
        inner = body.get("body")
        if not isinstance(inner, dict):
            return Transient("status 0 without a `body` object")
        return Ok(inner)
    reason = _reason(status, body)
    if status in TOKEN_REFUSED:
        if "insufficient_scope" in reason:
            return Refused(f"scope not granted: {reason}")  # a refresh gives the same scopes
        return Unauthorized(reason)
    if status == TOO_MANY_REQUESTS:
        return RateLimited(parse_retry_after(headers.get("retry-after")) or MINUTE_S)
    if status == UNKNOWN_ERROR or (500 <= status < 600 and status != INVALID_PARAMS):
        return Transient(reason)
    return Refused(reason)  # 503 invalid params, 2554 unknown action, 342 signature, ...


def check_answer(answer: HttpAnswer) -> Answer:
    http = answer.status
    if http == 200:
        body = answer.json
        if body is None:
            return Transient("200 with a body that is not JSON (truncated?)")
        status = body.get("status") if isinstance(body, dict) else None
        if status is None or _int(status) is None:
            return Transient(f"200 without a Withings status: {answer.text[:100]}")
        return _verdict(int(status), body, answer.headers)
    reason = f"HTTP {http}: {answer.text[:200]}"
    if http == 429:
        return RateLimited(parse_retry_after(answer.headers.get("retry-after")) or MINUTE_S)
    if http == 401:
        return Unauthorized(reason)
    if http >= 500 or http == 408:
        return Transient(reason)
    return Refused(reason)


# --- webhooks ----------------------------------------------------------------------------------

MEASURES, ACTIVITY, WORKOUTS, SLEEP = "measures", "activity", "workouts", "sleep"
APPLI: dict[int, tuple[str, ...]] = {
    1: (MEASURES,),  # weight and body composition
    2: (MEASURES,),  # temperature
    4: (MEASURES,),  # blood pressure, heart rate, SpO2
    16: (ACTIVITY, WORKOUTS),  # activity: steps, distances, workouts
    44: (SLEEP,),  # sleep
    46: (),  # user actions: `action=unlink|delete` ends the grant, others change nothing we sync
    50: (),  # in bed: the night is not over yet, its summary follows with 51 and 44
    51: (SLEEP,),  # out of bed
    53: (),  # a device with no account associated
    54: (MEASURES,),  # ECG: its AFib and interval results are measure types
    58: (),  # glucose: not among the resources synced here
}
"""Withings' notification categories (`appli`) and what each re-syncs."""
LEAVING = frozenset({"unlink", "delete"})
FUTURE_SLACK_S = 86_400
"""A notification may cover the rest of a user's local day, never much more."""
FORM = "application/x-www-form-urlencoded"
DIGITS = re.compile(r"[0-9]{1,20}")


def _form(request: WebhookRequest) -> dict[str, str]:
    content_type = request.headers.get("content-type", FORM).split(";")[0].strip().lower()
    if content_type != FORM:
        raise WebhookRefused(400, f"not a form body: {content_type[:60]}")
    try:
        pairs = parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRefused(400, "unreadable form body") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise WebhookRefused(400, "a field is repeated")
    return form


def _number(form: Mapping[str, str], name: str) -> int | None:
    raw = form.get(name)
    if raw is None:
        return None
    if not DIGITS.fullmatch(raw):
        raise WebhookRefused(400, f"`{name}` is not a number: {raw[:40]!r}")
    return int(raw)


def _range(form: Mapping[str, str], now: float) -> tuple[datetime, datetime]:
    """The instants the notification covers, [start, end) in UTC."""
    start, end = _number(form, "startdate"), _number(form, "enddate")
    if start is not None and end is not None:
        if not 0 < start <= end:
            raise WebhookRefused(400, f"startdate {start} and enddate {end} out of order")
        if end > now + FUTURE_SLACK_S:
            raise WebhookRefused(400, f"enddate {end} is in the future")
        return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end + 1, UTC)
    if start is not None or end is not None:
        raise WebhookRefused(400, "startdate without enddate, or the reverse")
    raw = form.get("date", "")
    try:
        day = date.fromisoformat(raw) if DATE.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None:
        raise WebhookRefused(400, "neither startdate/enddate nor a Y-m-d date")
    first = datetime.combine(day, day_time(), UTC) - timedelta(days=1)  # any user's local day
    if first.timestamp() > now + FUTURE_SLACK_S:
        raise WebhookRefused(400, f"date {raw} is in the future")
    return first, first + timedelta(days=3)


def notices_of(form: Mapping[str, str], now: float) -> Notices:
    """What a well-formed notification asks for; WebhookRefused otherwise."""
    userid = form.get("userid", "")
    if not DIGITS.fullmatch(userid):
        raise WebhookRefused(400, "`userid` missing or not a number")
    appli = _number(form, "appli")
    if appli is None or appli not in APPLI:
        raise WebhookRefused(400, f"unknown appli {form.get('appli', '')[:20]!r}")
    action = form.get("action")
    if appli == 46 and action in LEAVING:
        return Notices([Notice(provider_user_id=userid, deauthorized=True)])
    resources = APPLI[appli]
    if not resources:
        if {"startdate", "enddate", "date"} & form.keys():
            _range(form, now)
        return Notices([])
    start, end = _range(form, now)
    return Notices([Notice(provider_user_id=userid, resources=resources, start=start, end=end)])


def verify_webhook(
    request: WebhookRequest, secrets: WebhookSecrets, now: float | None = None
) -> Challenge | Notices:
    """Withings' URL check (HEAD/GET) or an unsigned form-encoded notification (POST).
    `now` (epoch seconds) is for tests of the time range check."""
    method = request.method.upper()
    if method in ("HEAD", "GET"):
        return Challenge(200, {})
    if method != "POST":
        raise WebhookRefused(405, f"{request.method} is not a webhook call")
    return notices_of(_form(request), time.time() if now is None else now)


PROVIDER = Provider(
    name="withings",
    resources=RESOURCES,
    limits=LIMITS,
    check_answer=check_answer,
    usage_from_headers=no_usage_headers,
    verify_webhook=verify_webhook,
    signed_webhooks=False,
)
