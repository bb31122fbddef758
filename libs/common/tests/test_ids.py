import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthmesh.common.ids import HEALTHMESH_NAMESPACE, content_hash, raw_event_id, sample_id

USER = uuid.UUID("6f1c2b1e-6a55-4a5e-9d0a-2b8b3f0c1d2e")
START = datetime(2024, 3, 10, 6, 30, tzinfo=UTC)
END = datetime(2024, 3, 10, 7, 0, tzinfo=UTC)


def _sample_key(**changes: Any) -> dict[str, Any]:
    key: dict[str, Any] = {
        "user_id": USER,
        "metric": "steps",
        "source": "oura",
        "start": START,
        "end": END,
        "source_record_id": "rec-1",
    }
    key.update(changes)
    return key


@pytest.mark.parametrize(
    "zone",
    [
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-5, minutes=-30)),
        ZoneInfo("America/New_York"),
        ZoneInfo("Asia/Kolkata"),
    ],
    ids=str,
)
def test_sample_id_is_the_same_for_the_same_instant_in_any_offset(zone: Any) -> None:
    local = _sample_key(start=START.astimezone(zone), end=END.astimezone(zone))
    assert local["start"].utcoffset() != timedelta(0)  # the test really uses another offset

    assert sample_id(**local) == sample_id(**_sample_key())


@pytest.mark.parametrize(
    "changes",
    [
        {"user_id": uuid.UUID("00000000-0000-4000-8000-000000000001")},
        {"metric": "distance"},
        {"source": "whoop"},
        {"start": START + timedelta(seconds=1)},
        {"end": END + timedelta(microseconds=1)},
        {"source_record_id": "rec-2"},
        {"source_record_id": ""},
    ],
    ids=lambda c: next(iter(c)),
)
def test_sample_id_differs_when_any_key_part_differs(changes: dict[str, Any]) -> None:
    assert sample_id(**_sample_key(**changes)) != sample_id(**_sample_key())


def test_sample_id_does_not_confuse_start_and_end() -> None:
    swapped = _sample_key(start=END, end=START)
    assert sample_id(**swapped) != sample_id(**_sample_key())


def test_sample_id_is_a_name_based_uuid() -> None:
    assert sample_id(**_sample_key()).version == 5


def test_raw_event_id_is_deterministic() -> None:
    first = raw_event_id("oura", USER, "daily_activity", "2024-03-10")
    again = raw_event_id("oura", uuid.UUID(str(USER)), "daily_activity", "2024-03-10")

    assert first == again
    assert first.version == 5


@pytest.mark.parametrize(
    "args",
    [
        ("whoop", USER, "daily_activity", "2024-03-10"),
        ("oura", uuid.UUID(int=USER.int + 1), "daily_activity", "2024-03-10"),
        ("oura", USER, "daily_sleep", "2024-03-10"),
        ("oura", USER, "daily_activity", "2024-03-11"),
    ],
    ids=["source", "user", "resource", "natural_key"],
)
def test_raw_event_id_differs_when_any_part_differs(args: tuple[str, uuid.UUID, str, str]) -> None:
    assert raw_event_id(*args) != raw_event_id("oura", USER, "daily_activity", "2024-03-10")


def test_raw_and_sample_ids_do_not_collide_for_similar_inputs() -> None:
    assert raw_event_id("oura", USER, "steps", "rec-1") != sample_id(**_sample_key())


def test_content_hash_is_independent_of_key_order() -> None:
    one = {"b": 2, "a": {"y": [1, {"q": 1, "p": 2}], "x": None}, "c": "text"}
    other = {"c": "text", "a": {"x": None, "y": [1, {"p": 2, "q": 1}]}, "b": 2}

    assert list(one) != list(other)
    assert content_hash(one) == content_hash(other)


def test_content_hash_is_sha256_of_canonical_json() -> None:
    assert (
        content_hash({"b": 1, "a": [True, None]})
        == hashlib.sha256(b'{"a":[true,null],"b":1}').hexdigest()
    )


@pytest.mark.parametrize(
    "other",
    [
        {"a": 1, "b": 3},
        {"a": 1},
        {"a": 1, "b": 2, "c": 3},
        {"a": "1", "b": 2},
    ],
)
def test_content_hash_changes_with_the_content(other: dict[str, Any]) -> None:
    assert content_hash(other) != content_hash({"a": 1, "b": 2})


def test_content_hash_keeps_list_order() -> None:
    assert content_hash([1, 2, 3]) != content_hash([3, 2, 1])


@given(
    metric=st.text(max_size=20),
    source=st.text(max_size=10),
    record=st.text(max_size=30),
    start=st.datetimes(max_value=datetime(9000, 1, 1), timezones=st.just(UTC)),
    seconds=st.sampled_from([0, 1, 60, 86_400]),
    user=st.uuids(),
)
def test_sample_id_is_uuid5_over_the_natural_key(
    metric: str, source: str, record: str, start: datetime, seconds: int, user: uuid.UUID
) -> None:
    """The inline computation is exactly uuid5 over the documented key (ids already stored
    must never change)."""
    end = start + timedelta(seconds=seconds)
    key = orjson.dumps(
        ["sample", str(user), metric, source, start.isoformat(), end.isoformat(), record]
    ).decode()
    assert sample_id(user, metric, source, start, end, record) == uuid.uuid5(
        HEALTHMESH_NAMESPACE, key
    )
