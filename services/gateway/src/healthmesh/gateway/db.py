"""The gateway's SQL: its own imports, csv_presets and uploads tables, and read-only queries on
the read models other services publish (connectors.import_progress_v1,
normalizer.import_progress_v1, normalizer.samples_v1, normalizer.daily_rollups_v1 and
hourly_rollups_v1, connectors.sync_status_v1, preferences.effective_v1). Every query filters by
the caller's user id, except the expiry sweep's (marked below), maintenance over every user's
uploads."""

from collections.abc import Sequence
from datetime import date, datetime
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


async def caller_preferences(pool: asyncpg.Pool, user_id: UUID) -> dict[str, Any]:
    """The caller's preferences from the preferences service's read model
    (`preferences.effective_v1`), in the shape of its `GET /v1/preferences`: categories
    (sources, fallback, default) and overrides."""
    rows = await pool.fetch(
        "SELECT kind, name, sources, fallback, is_default FROM preferences.effective_v1($1)",
        user_id,
    )
    return {
        "categories": {
            r["name"]: {
                "sources": r["sources"],
                "fallback": r["fallback"],
                "default": r["is_default"],
            }
            for r in rows
            if r["kind"] == "category"
        },
        "overrides": {r["name"]: r["sources"] for r in rows if r["kind"] == "override"},
    }


_CELL_COLUMNS = (
    "source, samples, total, raw_total, minimum, maximum, last_value, last_at, utc_offset_s"
)


async def daily_rollups(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: UUID,
    metrics: Sequence[str],
    first: date,
    end: date,
    source: str | None,
) -> list[asyncpg.Record]:
    """Each source's day rollups of `metrics` for the local days `first` <= day < `end` (local
    by each sample's own offset; sleep by its end): one row per metric, day and source, with
    the summary of its hour rollups that day."""
    return await _rollups(
        conn,
        "daily_rollups_v1",
        "day",
        user_id,
        metrics,
        first,
        end,
        source,
        ", hour_mask, hours_samples, hours_total, hours_raw_total",
    )


async def hourly_rollups(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: UUID,
    metrics: Sequence[str],
    utc_from: datetime,
    utc_to: datetime,
    source: str | None,
) -> list[asyncpg.Record]:
    """Each source's UTC-hour rollups of `metrics` (samples up to an hour long) in a range."""
    return await _rollups(
        conn, "hourly_rollups_v1", "hour", user_id, metrics, utc_from, utc_to, source
    )


async def _rollups(
    conn: asyncpg.Connection | asyncpg.Pool,
    view: str,
    key: str,
    user_id: UUID,
    metrics: Sequence[str],
    start: date | datetime,
    end: date | datetime,
    source: str | None,
    extra: str = "",
) -> list[asyncpg.Record]:
    """Rows of one of the normalizer's rollup views, `start` <= `key` < `end`."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT metric, {key}, {_CELL_COLUMNS}{extra} FROM normalizer.{view}
            WHERE user_id = $1 AND metric = ANY($2::text[]) AND {key} >= $3 AND {key} < $4
              AND ($5::text IS NULL OR source = $5)""",
        user_id,
        list(metrics),
        start,
        end,
        source,
    )
    return rows


async def hourly_rollups_by_day(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: UUID,
    metrics: Sequence[str],
    tz: str,
    first: date,
    end: date,
    source: str | None,
) -> list[asyncpg.Record]:
    """Each source's hour rollups of `metrics` per local day in the zone `tz` (`first` <= day <
    `end`, the day the hour starts in) in one row: what they add up to, in the rollups' columns,
    `mask` (as a day rollup's `hour_mask`), and `last`, [epoch, value, offset] of the last
    reading. What the day rollups sum up by each hour's recorded offset, rebuilt for a zone."""
    params: list[Any] = [user_id, list(metrics), source, tz, first, end]
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT metric, source, date '1970-01-01' + day_number::int AS day,
                  bit_or(1::int8 << (18 + (epoch - day_number * 86400) / 3600)::int) AS mask,
                  sum(samples)::int AS samples, sum(total) AS total,
                  sum(raw_total) AS raw_total, min(minimum) AS minimum,
                  max(maximum) AS maximum, max(last_at) AS last_at,
                  max(ARRAY[extract(epoch FROM last_at)::float8, last_value,
                            utc_offset_s::float8]) AS last
           FROM (
               SELECT metric COLLATE "C" AS metric, source COLLATE "C" AS source, samples,
                      total, raw_total, minimum, maximum, last_value, last_at, utc_offset_s,
                      date_part('epoch', hour)::int8 AS epoch,
                      ((hour AT TIME ZONE $4::text)::date - date '1970-01-01') AS day_number
               FROM normalizer.hourly_rollups_v1
               WHERE user_id = $1 AND metric = ANY($2::text[])
                 AND ($3::text IS NULL OR source = $3)
                 AND hour >= ($5::date::timestamp AT TIME ZONE $4::text)
                 AND hour < ($6::date::timestamp AT TIME ZONE $4::text)
           ) AS h
           GROUP BY metric, source, day_number""",
        *params,
    )
    return rows


async def hour_sums(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: UUID,
    keys: Sequence[tuple[str, str, date, int]],
) -> list[asyncpg.Record]:
    """What the caller's hour rollups of given hours add up to, per (metric, source, local day,
    hours) key, the hours as a day rollup's `hour_mask` bits (the hours one source fills in for
    another on days that fall back per hour): one index search per key, for all its hours."""
    if not keys:
        return []
    metrics, sources, days, masks = (list(column) for column in zip(*keys, strict=True))
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT k.metric, k.source, k.day, s.samples, s.total, s.raw_total
           FROM unnest($2::text[], $3::text[], $4::date[], $5::int8[])
                AS k(metric, source, day, mask)
           CROSS JOIN LATERAL (
               SELECT sum(h.samples)::int AS samples, sum(h.total) AS total,
                      sum(h.raw_total) AS raw_total
               FROM normalizer.hourly_rollups_v1 AS h
               WHERE h.user_id = $1 AND h.metric = k.metric AND h.source = k.source
                 AND h.hour = ANY(ARRAY(
                     SELECT k.day::timestamp AT TIME ZONE 'UTC' + (bit - 18) * interval '1 hour'
                     FROM generate_series(0, 59) AS bit
                     WHERE k.mask & (1::int8 << bit) <> 0))
           ) AS s
           WHERE s.samples IS NOT NULL""",
        user_id,
        metrics,
        sources,
        days,
        masks,
    )
    return rows


async def long_samples_by_day(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: UUID,
    metrics: Sequence[str],
    by_end: Sequence[str],
    tz: str,
    first: date,
    end: date,
    source: str | None,
) -> list[asyncpg.Record]:
    """What the hour rollups leave out, per metric, source and local day in the zone `tz`
    (`first` <= day < `end`), in the rollups' columns: plausible samples longer than an hour
    (daily summaries, sessions), and every sample of the `by_end` metrics (sleep, counted on
    the day it ends). A bounded scan of the window's samples, for queries with `tz` only."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT metric, day, source, count(*)::int AS samples, sum(value) AS total,
                   sum(value) AS raw_total, min(value) AS minimum, max(value) AS maximum,
                   (array_agg(value ORDER BY start_at DESC, end_at DESC))[1] AS last_value,
                   max(start_at) AS last_at,
                   (array_agg(utc_offset_s ORDER BY start_at DESC, end_at DESC))[1]
                       AS utc_offset_s
            FROM (
                SELECT metric, source, value, start_at, end_at, utc_offset_s,
                       ((CASE WHEN metric = ANY($3::text[]) THEN end_at ELSE start_at END)
                        AT TIME ZONE $4::text)::date AS day
                FROM normalizer.samples_v1
                WHERE user_id = $1 AND metric = ANY($2::text[]) AND quality >= 0.5
                  AND ($7::text IS NULL OR source = $7)
                  AND start_at >= ($5::date::timestamp AT TIME ZONE $4::text) - interval '2 days'
                  AND start_at < ($6::date::timestamp AT TIME ZONE $4::text)
                  AND (metric = ANY($3::text[]) OR end_at - start_at > interval '1 hour')
            ) AS s
            WHERE day >= $5 AND day < $6
            GROUP BY metric, day, source
            ORDER BY metric, day, source""",
        user_id,
        list(metrics),
        list(by_end),
        tz,
        first,
        end,
        source,
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


# --- conflicts and explanations: a day's samples ---------------------------------------------


async def samples_of_days(
    pool: asyncpg.Pool,
    *,
    user_id: UUID,
    keys: list[tuple[str, date, bool]],
    tz: str | None = None,
) -> list[asyncpg.Record]:
    """The caller's samples (implausible ones too) of each (metric, local day, by end) key: the
    day by each sample's own offset, or in the IANA zone `tz`; sleep by its end. A day's samples
    start within 18 hours of it (2 days before, for sessions counted by their end), so each key
    is an index range scan."""
    if not keys:
        return []
    metrics, days, by_end = (list(column) for column in zip(*keys, strict=True))
    anchor = "(CASE WHEN k.by_end THEN s.end_at ELSE s.start_at END)"
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT k.metric, k.day, s.id, s.source, s.device, s.start_at, s.end_at,
                   s.utc_offset_s, s.value, s.quality, s.quality_reason
            FROM unnest($2::text[], $3::date[], $4::bool[]) AS k(metric, day, by_end)
            JOIN normalizer.samples_v1 AS s
              ON s.user_id = $1 AND s.metric = k.metric
             AND s.start_at >= k.day::timestamp AT TIME ZONE 'UTC'
                 - CASE WHEN k.by_end THEN interval '2 days' ELSE interval '18 hours' END
             AND s.start_at < k.day::timestamp AT TIME ZONE 'UTC' + interval '42 hours'
             AND CASE WHEN $5::text IS NULL
                      THEN ({anchor} AT TIME ZONE 'UTC'
                            + make_interval(secs => s.utc_offset_s))::date
                      ELSE ({anchor} AT TIME ZONE $5::text)::date END = k.day
            ORDER BY k.metric, k.day, s.start_at, s.source, s.id""",
        user_id,
        metrics,
        days,
        by_end,
        tz,
    )
    return rows
