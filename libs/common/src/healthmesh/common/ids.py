"""Deterministic ids: the same data always gets the same id, so replays upsert, never double."""

import functools
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from asyncpg.pgproto import pgproto

HEALTHMESH_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://healthmesh.dev/ids")
_NAMESPACE_BYTES = HEALTHMESH_NAMESPACE.bytes


def content_hash(value: Any) -> str:
    """SHA-256 over canonical JSON (sorted keys), stable across processes and runs."""
    return canonical_hash(canonical_json(value))


def canonical_json(value: Any) -> bytes:
    """The JSON `content_hash` hashes: compact, keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def canonical_hash(canonical: bytes) -> str:
    """`content_hash` of a value from its `canonical_json`, for a caller that writes that JSON
    anyway (an importer publishes it): the value is not serialised a second time."""
    return hashlib.sha256(canonical).hexdigest()


def _key(*parts: str) -> str:
    """Parts joined unambiguously (a JSON array), so no part can swallow its neighbour."""
    return orjson.dumps(parts).decode()


def raw_event_id(source: str, user_id: uuid.UUID, resource: str, natural_key: str) -> uuid.UUID:
    """Id of a raw payload: provider, user, resource and the payload's natural key or hash."""
    return uuid.uuid5(
        HEALTHMESH_NAMESPACE, _key("raw", source, str(user_id), resource, natural_key)
    )


def sample_id(
    user_id: uuid.UUID,
    metric: str,
    source: str,
    start: datetime,
    end: datetime,
    source_record_id: str,
) -> uuid.UUID:
    """Id of a unified sample, derived from its natural key: `uuid5(HEALTHMESH_NAMESPACE, key)`."""
    return sample_ids(user_id, metric, source)(
        start.astimezone(UTC), end.astimezone(UTC), source_record_id
    )


SampleIds = Callable[[datetime, datetime, str], uuid.UUID]
"""(start in UTC, end in UTC, source record id) -> the sample's id, for one series."""


@functools.lru_cache(maxsize=1024)
def sample_ids(user_id: uuid.UUID, metric: str, source: str) -> SampleIds:
    """`sample_id` for the samples of one user, metric and source, computed inline (the
    normalizer derives one per sample, a minute-level day has 1,440): the key is a JSON array
    whose first parts are the series', so their SHA-1 is taken once and copied.

    Ids are asyncpg's `UUID`, a `uuid.UUID` subclass equal to the standard one, because asyncpg
    builds it and writes it to PostgreSQL in C, several times faster than `uuid.UUID(...)` and
    its `.bytes`."""
    key_start = orjson.dumps(("sample", str(user_id), metric, source))[:-1] + b","
    series = hashlib.sha1(_NAMESPACE_BYTES + key_start, usedforsecurity=False)

    def of(start: datetime, end: datetime, source_record_id: str) -> uuid.UUID:
        hasher = series.copy()
        # orjson writes a UTC datetime exactly as isoformat() does, several times faster.
        hasher.update(orjson.dumps((start, end, source_record_id))[1:])
        digest = bytearray(hasher.digest()[:16])
        digest[6] = digest[6] & 0x0F | 0x50  # version 5
        digest[8] = digest[8] & 0x3F | 0x80  # RFC 4122 variant
        made: uuid.UUID = pgproto.UUID(bytes(digest))
        return made

    return of


def fast_uuid(value: uuid.UUID) -> uuid.UUID:
    """The same UUID as asyncpg's C type (see `sample_id`), for an id written on many rows."""
    if type(value) is pgproto.UUID:
        return value
    made: uuid.UUID = pgproto.UUID(value.bytes)
    return made
