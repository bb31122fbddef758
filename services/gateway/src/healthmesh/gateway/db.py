"""The gateway's SQL: its own imports and csv_presets tables, and read-only queries on the read
models other services publish (connectors.import_progress_v1, normalizer.import_progress_v1,
normalizer.samples_v1, connectors.sync_status_v1). Every query filters by the caller's user id."""

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

_IMPORT_SELECT = """
SELECT i.id, i.kind, i.filename, i.bytes_total, i.created_at,
       c.status AS parse_status, c.bytes_read, c.records_seen, c.batches_published,
       c.errors AS parse_errors, c.started_at AS parse_started_at,
       c.finished_at AS parse_finished_at,
       n.batches_committed, n.records_imported, n.records_rejected, n.errors AS map_errors,
       n.last_committed_at
FROM gateway.imports AS i
LEFT JOIN connectors.import_progress_v1 AS c ON c.import_id = i.id AND c.user_id = i.user_id
LEFT JOIN normalizer.import_progress_v1 AS n ON n.import_id = i.id AND n.user_id = i.user_id
"""


async def insert_import(
    conn: asyncpg.Connection,
    import_id: UUID,
    user_id: UUID,
    kind: str,
    filename: str,
    path: str,
    bytes_total: int,
    mapping: dict[str, Any] | None,
) -> None:
    await conn.execute(
        """INSERT INTO gateway.imports (id, user_id, kind, filename, path, bytes_total, mapping)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        import_id,
        user_id,
        kind,
        filename,
        path,
        bytes_total,
        mapping,
    )


async def get_import(pool: asyncpg.Pool, import_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"{_IMPORT_SELECT} WHERE i.id = $1 AND i.user_id = $2", import_id, user_id
    )
    return dict(row) if row else None


async def list_imports(pool: asyncpg.Pool, user_id: UUID, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"{_IMPORT_SELECT} WHERE i.user_id = $1 ORDER BY i.created_at DESC LIMIT $2", user_id, limit
    )
    return [dict(r) for r in rows]


_PRESET_COLUMNS = "name, mapping, created_at, updated_at"


async def upsert_csv_preset(
    conn: asyncpg.Connection, user_id: UUID, name: str, mapping: dict[str, Any], max_presets: int
) -> dict[str, Any] | None:
    """Save the caller's preset `name` (replacing theirs of that name); None when it would be
    one more than `max_presets`."""
    others = await conn.fetchval(
        "SELECT count(*) FROM gateway.csv_presets WHERE user_id = $1 AND name <> $2",
        user_id,
        name,
    )
    if others >= max_presets:
        return None
    row = await conn.fetchrow(
        f"""INSERT INTO gateway.csv_presets (user_id, name, mapping) VALUES ($1, $2, $3)
            ON CONFLICT (user_id, name)
            DO UPDATE SET mapping = excluded.mapping, updated_at = now()
            RETURNING {_PRESET_COLUMNS}""",
        user_id,
        name,
        mapping,
    )
    return dict(row) if row else None


async def get_csv_preset(pool: asyncpg.Pool, user_id: UUID, name: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {_PRESET_COLUMNS} FROM gateway.csv_presets WHERE user_id = $1 AND name = $2",
        user_id,
        name,
    )
    return dict(row) if row else None


async def list_csv_presets(pool: asyncpg.Pool, user_id: UUID) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {_PRESET_COLUMNS} FROM gateway.csv_presets WHERE user_id = $1 ORDER BY name",
        user_id,
    )
    return [dict(r) for r in rows]


async def delete_csv_preset(pool: asyncpg.Pool, user_id: UUID, name: str) -> bool:
    deleted = await pool.fetchval(
        "DELETE FROM gateway.csv_presets WHERE user_id = $1 AND name = $2 RETURNING true",
        user_id,
        name,
    )
    return deleted is True


_AGGREGATES = {
    "sum": "sum(value)",
    "mean": "avg(value)",
    "last": "(array_agg(value ORDER BY end_at DESC))[1]",
    "session": "sum(value)",
}


async def bucketed(
    pool: asyncpg.Pool,
    *,
    user_id: UUID,
    metric: str,
    aggregation: str,
    unit: str,
    by_end: bool,
    tz: str | None,
    local_from: datetime | None,
    local_to: datetime | None,
    utc_from: datetime | None,
    utc_to: datetime | None,
    source: str | None,
) -> list[asyncpg.Record]:
    """Plausible samples aggregated per (source, local bucket). `unit` is the date_trunc unit.

    Local time is each sample's own recorded offset, or the IANA zone `tz` when given. Sessions
    (sleep) belong to the local day they end on.
    """
    anchor = "end_at" if by_end else "start_at"
    local = (
        f"CASE WHEN $3::text IS NULL"
        f" THEN ({anchor} AT TIME ZONE 'UTC') + make_interval(secs => utc_offset_s)"
        f" ELSE {anchor} AT TIME ZONE $3::text END"
    )
    sql = f"""
    WITH s AS (
        SELECT source, value, start_at, end_at, utc_offset_s, {local} AS local_at
        FROM normalizer.samples_v1
        WHERE user_id = $1 AND metric = $2 AND quality >= 0.5
          AND ($4::text IS NULL OR source = $4)
          AND ($5::timestamptz IS NULL OR {anchor} >= $5)
          AND ($6::timestamptz IS NULL OR {anchor} < $6)
    )
    SELECT source, date_trunc($7, local_at) AS bucket, {_AGGREGATES[aggregation]} AS value,
           (array_agg(utc_offset_s ORDER BY start_at))[1] AS utc_offset_s, count(*) AS samples
    FROM s
    WHERE ($8::timestamp IS NULL OR local_at >= $8) AND ($9::timestamp IS NULL OR local_at < $9)
    GROUP BY source, bucket
    ORDER BY bucket, source
    """
    rows: list[asyncpg.Record] = await pool.fetch(
        sql, user_id, metric, tz, source, utc_from, utc_to, unit, local_from, local_to
    )
    return rows


async def raw_samples(
    pool: asyncpg.Pool,
    *,
    user_id: UUID,
    metric: str,
    utc_from: datetime,
    utc_to: datetime,
    source: str | None,
    include_flagged: bool,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        """SELECT id, source, device, start_at, end_at, utc_offset_s, value, quality,
                  quality_reason, raw_event_id
           FROM normalizer.samples_v1
           WHERE user_id = $1 AND metric = $2 AND start_at >= $3 AND start_at < $4
             AND ($5::text IS NULL OR source = $5) AND ($6 OR quality >= 0.5)
             AND ($7::timestamptz IS NULL OR (start_at, id) > ($7, $8::uuid))
           ORDER BY start_at, id
           LIMIT $9""",
        user_id,
        metric,
        utc_from,
        utc_to,
        source,
        include_flagged,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return rows


async def sync_status(pool: asyncpg.Pool, user_id: UUID) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT provider, last_sync_at, last_error, syncing, last_job_status,
                  last_job_finished_at
           FROM connectors.sync_status_v1 WHERE user_id = $1""",
        user_id,
    )
    return {row["provider"]: dict(row) for row in rows}


_UPLOAD_COLUMNS = "id, filename, length, received, expires_at"


async def insert_upload(
    conn: asyncpg.Connection | asyncpg.Pool,
    upload_id: UUID,
    user_id: UUID,
    filename: str,
    length: int,
    expiry_s: float,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""INSERT INTO gateway.uploads (id, user_id, filename, length, expires_at)
            VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
            RETURNING {_UPLOAD_COLUMNS}""",
        upload_id,
        user_id,
        filename,
        length,
        float(expiry_s),
    )
    return row


async def get_upload(
    conn: asyncpg.Connection | asyncpg.Pool, upload_id: UUID, user_id: UUID
) -> asyncpg.Record | None:
    """The caller's upload, unless it has expired (an expired one is gone even before the sweep)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT {_UPLOAD_COLUMNS} FROM gateway.uploads
            WHERE id = $1 AND user_id = $2 AND expires_at > now()""",
        upload_id,
        user_id,
    )
    return row


async def record_upload_offset(
    conn: asyncpg.Connection, upload_id: UUID, user_id: UUID, received: int, expiry_s: float
) -> asyncpg.Record | None:
    """Bytes up to `received` are on disk for good; writing to an upload keeps it alive."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""UPDATE gateway.uploads
            SET received = $3, expires_at = now() + make_interval(secs => $4)
            WHERE id = $1 AND user_id = $2
            RETURNING {_UPLOAD_COLUMNS}""",
        upload_id,
        user_id,
        received,
        float(expiry_s),
    )
    return row


async def delete_upload(conn: asyncpg.Connection, upload_id: UUID, user_id: UUID) -> bool:
    deleted = await conn.fetchval(
        """DELETE FROM gateway.uploads WHERE id = $1 AND user_id = $2 AND expires_at > now()
           RETURNING id""",
        upload_id,
        user_id,
    )
    return deleted is not None


async def take_completed_upload(conn: asyncpg.Connection, upload_id: UUID, user_id: UUID) -> bool:
    """Consume the caller's completed upload in the import's transaction (false: it is gone)."""
    taken = await conn.fetchval(
        """DELETE FROM gateway.uploads
           WHERE id = $1 AND user_id = $2 AND received = length AND expires_at > now()
           RETURNING id""",
        upload_id,
        user_id,
    )
    return taken is not None


# The expiry sweep is maintenance over every user's uploads, the only unscoped upload queries.


async def expired_uploads(pool: asyncpg.Pool, limit: int) -> list[UUID]:
    rows = await pool.fetch(
        """SELECT id FROM gateway.uploads WHERE expires_at <= now()
           ORDER BY expires_at LIMIT $1""",
        limit,
    )
    return [row["id"] for row in rows]


async def delete_expired_upload(conn: asyncpg.Connection, upload_id: UUID) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM gateway.uploads WHERE id = $1 AND expires_at <= now() RETURNING id", upload_id
    )
    return deleted is not None


async def upload_exists(pool: asyncpg.Pool, upload_id: UUID) -> bool:
    found = await pool.fetchval(
        "SELECT EXISTS (SELECT FROM gateway.uploads WHERE id = $1)", upload_id
    )
    return bool(found)
