"""The normalizer's SQL: bulk upsert of samples (COPY into staging, then INSERT ... ON CONFLICT),
import progress, and the outbox rows announcing each real change."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from healthmesh.common.events import MetricSample

_COLUMNS = (
    "user_id",
    "metric",
    "source",
    "start_at",
    "end_at",
    "source_record_id",
    "id",
    "value",
    "unit",
    "utc_offset_s",
    "device",
    "quality",
    "quality_reason",
    "raw_event_id",
)
_CHANGEABLE = ("value", "unit", "utc_offset_s", "device", "quality", "quality_reason")

_UPSERT = f"""
INSERT INTO normalizer.samples AS s ({", ".join(_COLUMNS)})
SELECT {", ".join(_COLUMNS)} FROM staging_samples
ON CONFLICT (user_id, metric, source, start_at, end_at, source_record_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _CHANGEABLE)},
    raw_event_id = EXCLUDED.raw_event_id,
    revision = s.revision + 1,
    updated_at = now()
WHERE ({", ".join(f"s.{c}" for c in _CHANGEABLE)})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _CHANGEABLE)})
RETURNING {", ".join(f"s.{c}" for c in _COLUMNS)}, s.revision, (s.xmax = 0) AS inserted
"""


@dataclass(frozen=True)
class ImportBatch:
    import_id: UUID
    raw_event_id: UUID
    user_id: UUID
    records_imported: int
    records_rejected: int
    errors: list[dict[str, str]]


@dataclass(frozen=True)
class ChangedSample:
    sample: MetricSample
    revision: int
    created: bool


def _record(sample: MetricSample) -> tuple[Any, ...]:
    return (
        sample.user_id,
        sample.metric,
        sample.source,
        sample.start,
        sample.end,
        sample.source_record_id,
        sample.id,
        sample.value,
        sample.unit,
        sample.utc_offset_s,
        sample.device,
        sample.quality,
        sample.quality_reason,
        sample.raw_event_id,
    )


async def upsert_samples(
    conn: asyncpg.Connection, samples: list[MetricSample]
) -> list[ChangedSample]:
    """Upsert inside the caller's transaction; return only the samples that really changed."""
    if not samples:
        return []
    unique = {s.id: s for s in samples}  # one natural key once per statement; the last wins
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS staging_samples "
        "(LIKE normalizer.samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await conn.copy_records_to_table(
        "staging_samples", records=[_record(s) for s in unique.values()], columns=_COLUMNS
    )
    rows = await conn.fetch(_UPSERT)
    return [_changed(r) for r in rows]


def _changed(r: asyncpg.Record) -> ChangedSample:
    return ChangedSample(
        sample=MetricSample(
            id=r["id"],
            user_id=r["user_id"],
            metric=r["metric"],
            value=r["value"],
            unit=r["unit"],
            source=r["source"],
            device=r["device"],
            start=r["start_at"],
            end=r["end_at"],
            utc_offset_s=r["utc_offset_s"],
            source_record_id=r["source_record_id"],
            quality=r["quality"],
            quality_reason=r["quality_reason"],
            raw_event_id=r["raw_event_id"],
        ),
        revision=r["revision"],
        created=r["inserted"],
    )


async def record_import_batches(conn: asyncpg.Connection, batches: list[ImportBatch]) -> None:
    """Idempotent: a batch delivered twice is counted once."""
    if not batches:
        return
    await conn.executemany(
        """INSERT INTO normalizer.import_batches
               (import_id, raw_event_id, user_id, records_imported, records_rejected, errors)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (import_id, raw_event_id) DO NOTHING""",
        [
            (
                b.import_id,
                b.raw_event_id,
                b.user_id,
                b.records_imported,
                b.records_rejected,
                b.errors,
            )
            for b in batches
        ],
    )


async def delete_source_samples(
    conn: asyncpg.Connection, user_id: UUID, source: str
) -> list[ChangedSample]:
    """Delete every sample of one user from one source; return them (revision bumped) so the
    deletion can be announced."""
    rows = await conn.fetch(
        f"""DELETE FROM normalizer.samples WHERE user_id = $1 AND source = $2
            RETURNING {", ".join(_COLUMNS)}, revision + 1 AS revision, false AS inserted""",
        user_id,
        source,
    )
    return [_changed(r) for r in rows]
