"""The connectors' SQL: progress of file imports."""

from typing import Any
from uuid import UUID

import asyncpg


async def start_import(
    pool: asyncpg.Pool, import_id: UUID, user_id: UUID, kind: str, bytes_total: int
) -> None:
    """(Re)start from zero: a redelivered request parses the file again; the deterministic raw
    ids make the second pass change nothing downstream."""
    await pool.execute(
        """INSERT INTO connectors.imports (import_id, user_id, kind, status, bytes_total)
           VALUES ($1, $2, $3, 'running', $4)
           ON CONFLICT (import_id) DO UPDATE SET
               status = 'running', bytes_read = 0, records_seen = 0, batches_published = 0,
               errors = '[]', bytes_total = EXCLUDED.bytes_total, started_at = now(),
               finished_at = NULL, updated_at = now()""",
        import_id,
        user_id,
        kind,
        bytes_total,
    )


async def record_progress(
    pool: asyncpg.Pool, import_id: UUID, bytes_read: int, records: int
) -> None:
    await pool.execute(
        """UPDATE connectors.imports SET bytes_read = $2, records_seen = records_seen + $3,
               batches_published = batches_published + 1, updated_at = now()
           WHERE import_id = $1""",
        import_id,
        bytes_read,
        records,
    )


async def finish_import(
    pool: asyncpg.Pool, import_id: UUID, status: str, errors: list[dict[str, Any]]
) -> None:
    await pool.execute(
        """UPDATE connectors.imports SET status = $2, errors = $3, finished_at = now(),
               bytes_read = CASE WHEN $2 = 'parsed' THEN bytes_total ELSE bytes_read END,
               updated_at = now()
           WHERE import_id = $1""",
        import_id,
        status,
        errors,
    )
