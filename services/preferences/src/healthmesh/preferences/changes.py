"""`preferences.changed`: queued in the transaction that changes a user's preferences, so the
event is published if and only if the change committed (transactional outbox)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import asyncpg

from healthmesh.common.events import PreferencesChanged, dump
from healthmesh.common.outbox import Outbox, OutboxMessage
from healthmesh.common.vocabulary import Category


@dataclass(frozen=True)
class Changes:
    outbox: Outbox
    topic: str
    """`preferences.changed`, with the deployment's prefix."""

    async def priority(
        self,
        conn: asyncpg.Connection,
        user_id: UUID,
        category: Category,
        sources: list[str] | None = None,
        fallback: bool | None = None,
    ) -> None:
        """Queue a priority_set (with `sources`) or priority_deleted (without) event."""
        event: Literal["preferences.priority_set", "preferences.priority_deleted"] = (
            "preferences.priority_deleted" if sources is None else "preferences.priority_set"
        )
        await self._queue(
            conn,
            PreferencesChanged(
                event=event,
                user_id=user_id,
                category=category,
                sources=sources,
                fallback=fallback,
                occurred_at=datetime.now(UTC),
            ),
        )

    async def override(
        self,
        conn: asyncpg.Connection,
        user_id: UUID,
        metric: str,
        sources: list[str] | None = None,
    ) -> None:
        """Queue an override_set (with `sources`) or override_deleted (without) event."""
        event: Literal["preferences.override_set", "preferences.override_deleted"] = (
            "preferences.override_deleted" if sources is None else "preferences.override_set"
        )
        await self._queue(
            conn,
            PreferencesChanged(
                event=event,
                user_id=user_id,
                metric=metric,
                sources=sources,
                occurred_at=datetime.now(UTC),
            ),
        )

    def committed(self) -> None:
        """Wake the relay once the transaction committed (earlier, it would find nothing)."""
        self.outbox.wakeup.set()

    async def _queue(self, conn: asyncpg.Connection, change: PreferencesChanged) -> None:
        message = OutboxMessage(self.topic, str(change.user_id).encode(), dump(change))
        await self.outbox.add(conn, [message])
