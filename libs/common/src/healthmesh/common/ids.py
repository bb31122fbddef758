"""Deterministic ids: the same data always gets the same id, so replays upsert, never double."""

import functools
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

HEALTHMESH_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://healthmesh.dev/ids")
_NAMESPACE_BYTES = HEALTHMESH_NAMESPACE.bytes


def content_hash(value: Any) -> str:
    """SHA-256 over canonical JSON (sorted keys), stable across processes and runs."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
    """Id of a unified sample, derived from its natural key: `uuid5(HEALTHMESH_NAMESPACE, key)`
    computed inline (the normalizer derives one per sample, a minute-level day has 1,440)."""
    utc_start = start.astimezone(UTC).isoformat()
    utc_end = utc_start if end == start else end.astimezone(UTC).isoformat()
    key = orjson.dumps(
        ("sample", _text(user_id), metric, source, utc_start, utc_end, source_record_id)
    )
    digest = hashlib.sha1(_NAMESPACE_BYTES + key, usedforsecurity=False).digest()
    # What uuid.UUID(bytes=digest[:16], version=5) computes, without its argument checks.
    value = int.from_bytes(digest[:16]) & _VARIANT_VERSION_MASK | _RFC4122_VERSION_5
    return uuid.UUID(int=value)


_VARIANT_VERSION_MASK = ~((0xC000 << 48) | (0xF000 << 64))
_RFC4122_VERSION_5 = (0x8000 << 48) | (5 << 76)


@functools.lru_cache(maxsize=4096)
def _text(user_id: uuid.UUID) -> str:
    """A user's id as text, once per user rather than once per sample."""
    return str(user_id)
