"""Windows, pagination and deterministic envelopes, without any provider."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import JsonValue

from healthmesh.connectors.fetching import MAX_EVENT_BYTES, batches, envelopes, pages, windows
from healthmesh.connectors.providers.base import (
    Call,
    Item,
    Ok,
    Page,
    Provider,
    Resource,
    WebhookRefused,
    no_usage_headers,
)

T0 = datetime(2026, 1, 10, 15, 30, tzinfo=UTC)


def test_windows_cover_the_range_and_meet_on_utc_midnights() -> None:
    cuts = windows(T0, T0 + timedelta(days=70), timedelta(days=30))
    assert cuts[0][0] == T0 and cuts[-1][1] == T0 + timedelta(days=70)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))
    assert all(c[0].hour == 0 and c[0].minute == 0 for c in cuts[1:])
    assert all(c[1] - c[0] <= timedelta(days=30) for c in cuts)
    assert windows(T0, T0, timedelta(days=1)) == []
    with pytest.raises(ValueError, match="whole days"):
        windows(T0, T0 + timedelta(days=1), timedelta(hours=1))


def _rows(call: Call) -> Page:
    return Page([], None)


def _refuse(*_: object) -> None:
    raise WebhookRefused(403, "test")


def series_of(rows: list[JsonValue]) -> JsonValue:
    return {"data": rows}


DOCS = Resource(name="docs", first_call=lambda s, e: Call("/docs"), read_page=lambda b, c: _rows(c))
SERIES = Resource(
    name="rows",
    first_call=lambda s, e: Call("/rows"),
    read_page=lambda b, c: _rows(c),
    series=series_of,
)
PROVIDER = Provider(
    name="testprov",
    resources=(DOCS, SERIES),
    limits=(),
    check_answer=lambda a: Ok(a.json),
    usage_from_headers=no_usage_headers,
    verify_webhook=_refuse,  # type: ignore[arg-type]
)


def row(minute: int, value: int = 60) -> Item:
    at = T0 + timedelta(minutes=minute)
    return Item(key=at.date().isoformat(), payload={"t": at.isoformat(), "bpm": value}, start=at)


def test_series_rows_group_per_day_whatever_the_page_cuts() -> None:
    user = uuid.uuid4()
    items = [row(m) for m in range(0, 3000, 5)]  # ~2 days of rows
    whole = envelopes(PROVIDER, SERIES, user, items, T0)
    midnight = datetime(2026, 1, 11, tzinfo=UTC)
    before = [i for i in items if i.start is not None and i.start < midnight]
    after = [i for i in items if i.start is not None and i.start >= midnight]
    halves = envelopes(PROVIDER, SERIES, user, before, T0) + envelopes(
        PROVIDER, SERIES, user, after, T0
    )
    assert len(whole) == 3  # the rows touch three UTC days
    # Windows meet on UTC midnights: cut there, the same rows give the same ids.
    assert {e.id for e in whole} == {e.id for e in halves}
    changed = envelopes(PROVIDER, SERIES, user, [*items[:-1], row(2995, 61)], T0)
    assert len({e.id for e in whole} & {e.id for e in changed}) == 2
    assert all(e.window.start is not None for e in whole)


def test_documents_are_one_event_each_and_repeats_collapse() -> None:
    user = uuid.uuid4()
    docs = [Item(key=f"doc-{i}", payload={"id": f"doc-{i}", "v": i}) for i in range(5)]
    events = envelopes(PROVIDER, DOCS, user, [*docs, docs[0]], T0)
    assert len(events) == 5
    again = envelopes(PROVIDER, DOCS, user, list(reversed(docs)), T0 + timedelta(hours=1))
    assert {e.id for e in events} == {e.id for e in again}
    other_user = envelopes(PROVIDER, DOCS, uuid.uuid4(), docs, T0)
    assert not {e.id for e in events} & {e.id for e in other_user}


def test_a_big_day_is_split_below_the_message_limit() -> None:
    blob = "x" * 2000
    items = [Item(key="2026-01-10", payload={"n": i, "blob": blob}, start=T0) for i in range(1200)]
    events = envelopes(PROVIDER, SERIES, uuid.uuid4(), items, T0)
    assert len(events) >= 3
    sizes = [len(e.model_dump_json()) for e in events]
    assert max(sizes) < 1_000_000
    payloads: list[Any] = [e.payload for e in events]
    assert sum(len(p["data"]) for p in payloads) == 1200
    assert MAX_EVENT_BYTES < 1_000_000


async def test_pages_follow_next_and_refuse_a_loop() -> None:
    served: list[str] = []

    def read(body: Any, call: Call) -> Page:
        n = int(call.params.get("page", "1"))
        following = Call("/p", {"page": str(n + 1)}) if n < 3 else None
        return Page([Item(key=str(n), payload=body)], following)

    resource = Resource(name="p", first_call=lambda s, e: Call("/p"), read_page=read)

    async def send(call: Call) -> Any:
        served.append(call.params.get("page", "1"))
        return {"page": served[-1]}

    got = [page async for page in pages(resource, T0, T0 + timedelta(days=1), send)]
    assert [p.items[0].key for p in got] == ["1", "2", "3"]

    looping = Resource(
        name="loop",
        first_call=lambda s, e: Call("/l"),
        read_page=lambda b, c: Page([], Call("/l")),
    )
    with pytest.raises(ValueError, match="loops"):
        async for _ in pages(looping, T0, T0 + timedelta(days=1), send):
            pass


async def test_batches_hold_a_day_back_until_it_is_complete() -> None:
    user = uuid.uuid4()
    items = [row(m) for m in range(0, 3000, 5)]  # three UTC days, pages cut mid-day
    per_page = 70

    def read(body: Any, call: Call) -> Page:
        n = int(call.params.get("page", "0"))
        following = Call("/rows", {"page": str(n + 1)}) if (n + 1) * per_page < len(items) else None
        return Page(items[n * per_page : (n + 1) * per_page], following)

    paged = Resource(
        name="rows", first_call=lambda s, e: Call("/rows"), read_page=read, series=series_of
    )

    async def send(call: Call) -> Any:
        return None

    got = [batch async for batch in batches(paged, T0, T0 + timedelta(days=3), send)]
    assert len(got) == 3  # one batch per day: no day is cut across batches
    assert [len({i.key for i in batch}) for batch in got] == [1, 1, 1]
    streamed = [e for batch in got for e in envelopes(PROVIDER, SERIES, user, batch, T0)]
    whole = envelopes(PROVIDER, SERIES, user, items, T0)
    assert [e.id for e in streamed] == [e.id for e in whole]
