"""Pure parts of metric queries: windows, local buckets, cursors (choosing the source:
test_resolution.py)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from healthmesh.common.http import ApiError
from healthmesh.gateway.metrics import (
    decode_cursor,
    encode_cursor,
    parse_bound,
    point,
    window,
)


def test_dates_make_a_local_window_with_an_inclusive_end() -> None:
    span = window(date(2024, 3, 1), date(2024, 3, 3), date(2024, 6, 1))
    assert span.local_from == datetime(2024, 3, 1)
    assert span.local_to == datetime(2024, 3, 4)
    assert span.utc_from is None and span.utc_to is None


def test_without_bounds_the_window_is_the_last_30_days() -> None:
    span = window(None, None, date(2024, 6, 30))
    assert (span.local_from, span.local_to) == (datetime(2024, 6, 1), datetime(2024, 7, 1))


def test_date_times_are_instants() -> None:
    start = parse_bound("start", "2024-03-01T06:00:00+02:00")
    assert start == datetime(2024, 3, 1, 4, tzinfo=UTC)
    assert window(start, parse_bound("end", "2024-03-02T00:00:00Z"), date.today()).utc_from == start


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "01/03/2024"])
def test_unreadable_bounds_are_refused_with_the_parameter_named(text: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_bound("start", text)
    assert refused.value.status == 422 and "start" in refused.value.message


def test_start_after_end_is_refused() -> None:
    with pytest.raises(ApiError):
        window(date(2024, 3, 5), date(2024, 3, 1), date.today())


def test_a_dst_day_in_a_zone_starts_and_ends_at_local_midnight() -> None:
    answer = point(datetime(2024, 3, 31), "day", ZoneInfo("Europe/Berlin"), 0, 5.0, "csv", False)
    assert answer["start"] == "2024-03-31T00:00:00+01:00"
    assert answer["end"] == "2024-04-01T00:00:00+02:00"
    assert answer["date"] == "2024-03-31"


def test_without_a_zone_the_bucket_carries_the_samples_own_offset() -> None:
    answer = point(datetime(2024, 3, 12), "day", None, -7 * 3600, 1.0, "csv", False)
    assert answer["start"] == "2024-03-12T00:00:00-07:00"
    assert answer["end"] == "2024-03-13T00:00:00-07:00"


def test_months_roll_over_the_year() -> None:
    answer = point(datetime(2024, 12, 1), "month", None, 0, 1.0, "csv", False)
    assert answer["end"] == "2025-01-01T00:00:00+00:00"


def test_hours_have_no_date() -> None:
    assert "date" not in point(datetime(2024, 3, 1, 5), "hour", None, 0, 1.0, "csv", False)


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    import uuid

    moment, key = datetime(2024, 3, 1, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(moment, key)) == (moment, key)
    with pytest.raises(ApiError):
        decode_cursor("bm9wZQ==")
