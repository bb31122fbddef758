"""Answering metric queries: the metric asked for, windows, local buckets, raw cursors (whose
value counts is resolution.py's).

Pure functions; the SQL lives in db.py. A bucket's `start` carries the local offset of the day
(`2024-03-12T00:00:00+01:00`) and `date` the local date.
"""

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Literal
from uuid import UUID

from healthmesh.common.http import ApiError
from healthmesh.common.vocabulary import METRICS, MetricDef
from healthmesh.common.zones import iana_zone

Resolution = Literal["raw", "hour", "day", "week", "month"]


@dataclass(frozen=True)
class Window:
    """A query's range: dates are local (inclusive end date), date-times are instants."""

    local_from: datetime | None
    local_to: datetime | None
    utc_from: datetime | None
    utc_to: datetime | None


def known_metric(metric: str) -> MetricDef:
    """The metric named in a path; 404 for a name the vocabulary lacks."""
    if metric not in METRICS:
        raise ApiError(404, "not_found", f"unknown metric {metric!r}; GET /v1/metrics lists them")
    return METRICS[metric]


def parse_bound(name: str, text: str | None) -> date | datetime | None:
    if text is None:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422, "invalid_request", f"{name}: {text!r} is not an ISO 8601 date or date-time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window(start: date | datetime | None, end: date | datetime | None, today: date) -> Window:
    if start is None and end is None:
        end = today
    if start is None:
        assert end is not None
        start = (end.date() if isinstance(end, datetime) else end) - timedelta(days=29)
    if end is None:
        end = today
    local_from = utc_from = local_to = utc_to = None
    if isinstance(start, datetime):
        utc_from = start
    else:
        local_from = datetime.combine(start, time())
    if isinstance(end, datetime):
        utc_to = end
    else:
        local_to = datetime.combine(end + timedelta(days=1), time())
    if (local_from and local_to and local_from >= local_to) or (
        utc_from and utc_to and utc_from >= utc_to
    ):
        raise ApiError(422, "invalid_request", "start must be before end")
    return Window(local_from, local_to, utc_from, utc_to)


def zone(tz: str | None) -> tzinfo | None:
    if tz is None:
        return None
    found = iana_zone(tz)
    if found is None:
        raise ApiError(422, "invalid_request", f"tz: unknown time zone {tz!r}")
    return found


def next_bucket(start: datetime, resolution: Resolution) -> datetime:
    """The following bucket's local start (naive local time in, naive out)."""
    if resolution == "hour":
        return start + timedelta(hours=1)
    if resolution == "day":
        return start + timedelta(days=1)
    if resolution == "week":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def localize(naive: datetime, tz: tzinfo | None, utc_offset_s: int) -> datetime:
    """Attach the zone (its own offset on that date, DST included) or the sample's offset."""
    if tz is not None:
        return naive.replace(tzinfo=tz)
    return naive.replace(tzinfo=timezone(timedelta(seconds=utc_offset_s)))


def point(
    bucket: datetime,
    resolution: Resolution,
    tz: tzinfo | None,
    utc_offset_s: int,
    value: float,
    source: str,
    fallback: bool,
) -> dict[str, Any]:
    start = localize(bucket, tz, utc_offset_s)
    end = localize(next_bucket(bucket, resolution), tz, utc_offset_s)
    answer: dict[str, Any] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "value": value,
        "source": source,
        "fallback": fallback,
    }
    if resolution in ("day", "week", "month"):
        answer["date"] = bucket.date().isoformat()
    return answer


def encode_cursor(start: datetime, sample_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{start.isoformat()}|{sample_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        start, _, sample_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(start), UUID(sample_id)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "invalid_request", "cursor: not a cursor this API returned") from None
