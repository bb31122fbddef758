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
    # The key is a JSON array whose first parts are the same for a whole series of samples;
    # orjson writes an aware datetime exactly as isoformat() does, several times faster.
    hasher = _hashed_key_start(user_id, metric, source).copy()
    hasher.update(orjson.dumps((start.astimezone(UTC), end.astimezone(UTC), source_record_id))[1:])
    # What uuid.UUID(bytes=digest[:16], version=5) computes, without its argument checks.
    value = int.from_bytes(hasher.digest()[:16]) & _VARIANT_VERSION_MASK | _RFC4122_VERSION_5
    return uuid.UUID(int=value)


@functools.lru_cache(maxsize=4096)
def _hashed_key_start(user_id: uuid.UUID, metric: str, source: str) -> "hashlib._Hash":
    """SHA-1 fed with the namespace and `["sample","<user>","<metric>","<source>",`."""
    start = orjson.dumps(("sample", str(user_id), metric, source))[:-1] + b","
    return hashlib.sha1(_NAMESPACE_BYTES + start, usedforsecurity=False)


_VARIANT_VERSION_MASK = ~((0xC000 << 48) | (0xF000 << 64))
_RFC4122_VERSION_5 = (0x8000 << 48) | (5 << 76)
