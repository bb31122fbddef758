"""From a resource and a time range to raw events: windows, pages, and deterministic envelopes.

Pure of I/O except `pages` (and `batches` over it), which follow one window's pagination
through `send`. The raw event id is a UUIDv5 over (provider, user, resource, item key, content
hash): fetching the same data again, in any window and on any page, gives the same ids; changed
data gets a new id.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived, TimeWindow
from healthmesh.common.ids import content_hash, raw_event_id
from healthmesh.connectors.providers.base import Call, Item, Page, Provider, Resource

Send = Callable[[Call], Awaitable[Any]]

MAX_EVENT_BYTES = 900_000
"""Payloads stay under Kafka's default 1 MB message limit with the envelope around them."""


class OversizedItem(ValueError):
    """A single document larger than a message may be; it cannot be split without changing it."""


def day_floor(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def windows(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most `size`, each starting on a UTC
    midnight after the first, so a day of a time series never straddles two windows."""
    if size < timedelta(days=1):
        raise ValueError("windows are whole days")
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        stop = min(end, day_floor(cursor) + size)
        out.append((cursor, stop))
        cursor = stop
    return out


async def pages(
    resource: Resource, start: datetime, end: datetime, send: Send
) -> AsyncIterator[Page]:
    """Every page of one window, following the provider's own pagination."""
    call: Call | None = resource.first_call(start, end)
    seen: set[bytes] = set()
    while call is not None:
        fingerprint = orjson.dumps(
            [call.method, call.path, call.params, call.form, call.json],
            option=orjson.OPT_SORT_KEYS,
        )
        if fingerprint in seen:
            raise ValueError(f"{resource.name}: pagination loops back to {call.path}")
        seen.add(fingerprint)
        page = resource.read_page(await send(call), call)
        yield page
        call = page.next


async def batches(
    resource: Resource, start: datetime, end: datetime, send: Send
) -> AsyncIterator[list[Item]]:
    """One window's items as they arrive, page by page, so a year of minute-level data is never
    held at once. A time series' last key (UTC day) of a page is held back until a later key
    shows up, so each day still becomes the same events whatever the page boundaries."""
    held: list[Item] = []
    async for page in pages(resource, start, end, send):
        if resource.series is None:
            yield page.items
            continue
        held.extend(page.items)
        if not held:
            continue
        last = held[-1].key
        ready = [item for item in held if item.key != last]
        held = [item for item in held if item.key == last]
        if ready:
            yield ready
    if held:
        yield held


def envelopes(
    provider: Provider,
    resource: Resource,
    user_id: UUID,
    items: list[Item],
    fetched_at: datetime,
) -> list[RawPayloadReceived]:
    """The raw events of one window's items: one per document, or one per key (UTC day) of a
    time series, split into chunks below MAX_EVENT_BYTES."""
    if resource.series is None:
        groups = [(item.key, item.payload, item.start, item.end) for item in _unique(items)]
    else:
        groups = _series_groups(resource, items)
    events = []
    for key, payload, start, end in groups:
        size = len(orjson.dumps(payload))
        if size > MAX_EVENT_BYTES:
            raise OversizedItem(f"{provider.name} {resource.name} {key}: {size} bytes")
        events.append(
            RawPayloadReceived(
                id=raw_event_id(
                    provider.name, user_id, resource.name, f"{key}:{content_hash(payload)}"
                ),
                user_id=user_id,
                source=provider.name,
                resource=resource.name,
                fetched_at=fetched_at,
                window=TimeWindow(start=start, end=end),
                payload=payload,
            )
        )
    return events


def _unique(items: list[Item]) -> list[Item]:
    """Items by key, the last one seen winning (overlapping pages may repeat a document)."""
    return list({item.key: item for item in items}.values())


def _series_groups(
    resource: Resource, items: list[Item]
) -> list[tuple[str, JsonValue, datetime | None, datetime | None]]:
    assert resource.series is not None
    by_key: dict[str, list[Item]] = {}
    for item in items:
        by_key.setdefault(item.key, []).append(item)
    groups: list[tuple[str, JsonValue, datetime | None, datetime | None]] = []
    for key in sorted(by_key):
        for index, chunk in enumerate(_chunks(by_key[key])):
            starts = [i.start for i in chunk if i.start is not None]
            ends = [i.end or i.start for i in chunk if (i.end or i.start) is not None]
            groups.append(
                (
                    key if index == 0 else f"{key}#{index}",
                    resource.series([i.payload for i in chunk]),
                    min(starts, default=None),
                    max(e for e in ends if e is not None) if ends else None,
                )
            )
    return groups


def _chunks(items: list[Item]) -> list[list[Item]]:
    """Rows cut so each chunk's JSON stays below MAX_EVENT_BYTES."""
    chunks: list[list[Item]] = [[]]
    size = 0
    for item in items:
        row_size = len(orjson.dumps(item.payload)) + 1
        if chunks[-1] and size + row_size > MAX_EVENT_BYTES - 1024:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += row_size
    return chunks
