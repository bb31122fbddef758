"""Handling one batch of raw messages: validate, map (pure), write in one transaction.

The transaction archives every readable raw event (even those that could not be mapped, so a
fixed mapper can replay them), upserts the samples, recomputes the rollups they touch, keeps the
records a mapper rejected (with where and why) and queues one metrics.unified event per real
change in the outbox.

What cannot be read or mapped becomes a dead letter with its reason; the rest of the batch goes
through. A database error caused by one message's data (a poison message) is isolated by
retrying the batch message by message, so it never stalls its partition. Any other failure
(database unreachable) raises, and the caller rewinds the batch to be delivered again.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson
from pydantic import ValidationError

from healthmesh.common.events import (
    ChangeKind,
    ConnectionChanged,
    DeadLettered,
    RawPayloadReceived,
)
from healthmesh.common.logging import get_logger
from healthmesh.common.outbox import Outbox, OutboxMessage
from healthmesh.common.topics import Topics
from healthmesh.normalizer import db, rollups
from healthmesh.normalizer.mapping import (
    Mapper,
    MappingResult,
    Sample,
    UnmappablePayload,
    map_payload,
    names_one_record,
)

log = get_logger(__name__)

MAX_ERRORS_PER_BATCH = 100
_POISON_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    trace_context: dict[str, str] = field(default_factory=dict)
    """The message's W3C trace headers: each sample's event continues its raw message's trace
    (a batch's own span only links the messages it read)."""


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    key: bytes
    event: DeadLettered


@dataclass(frozen=True)
class _Mapped:
    message: RawMessage
    envelope: RawPayloadReceived
    result: MappingResult


_Dead = tuple[RawMessage, str, RawPayloadReceived | None]

MAX_SAMPLES_PER_TRANSACTION = 20_000
"""A batch of big messages (days of minute-level data) is written in several transactions of
about this many samples, so memory stays bounded; offsets still wait for the last commit, and a
replay of the already committed part changes nothing."""


class RawHandler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        topics: Topics,
        mappers: dict[str, Mapper],
        max_samples: int = MAX_SAMPLES_PER_TRANSACTION,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._topics = topics
        self._mappers = mappers
        self._max_samples = max_samples

    async def handle(self, messages: list[RawMessage]) -> list[DeadLetter]:
        """Commit what maps; return dead letters for the rest (to publish before acking)."""
        letters: list[DeadLetter] = []
        mapped: list[_Mapped] = []
        dead: list[_Dead] = []
        samples = 0
        for message in messages:
            item = self._map(message)
            if isinstance(item, _Mapped):
                mapped.append(item)
                samples += len(item.result.samples)
            else:
                dead.append(item)
            if samples >= self._max_samples:
                letters += await self._commit(mapped, dead)
                mapped, dead, samples = [], [], 0
        return letters + await self._commit(mapped, dead)

    def _map(self, message: RawMessage) -> _Mapped | _Dead:
        envelope = None
        try:
            envelope = read_envelope(message.value)
            return _Mapped(message, envelope, map_payload(envelope, self._mappers))
        except NotAnEnvelope as exc:
            return (message, f"not a raw.v1 envelope: {exc}", None)
        except UnmappablePayload as exc:
            return (message, str(exc), envelope)
        except Exception as exc:  # a mapper bug must not stall the partition either
            log.exception("mapper failed", topic=message.topic, offset=message.offset)
            return (message, f"mapper error: {type(exc).__name__}: {exc}", envelope)

    async def _commit(self, mapped: list[_Mapped], dead: list[_Dead]) -> list[DeadLetter]:
        """One transaction; a database refusal caused by one message's data (a poison message)
        is isolated by writing the messages one by one."""
        if not mapped and not dead:
            return []
        try:
            await self._write(mapped, dead)
        except _POISON_ERRORS:
            log.warning("batch rejected by the database; isolating the poison message")
            for item in mapped:
                try:
                    await self._write([item], [])
                except _POISON_ERRORS as exc:
                    dead.append((item.message, f"database refused: {exc}", item.envelope))
            await self._write([], dead)
        return [self._dead_letter(m, reason) for m, reason, _ in dead]

    async def _write(self, mapped: list[_Mapped], dead: list[_Dead]) -> None:
        samples = [s for item in mapped for s in item.result.samples]
        batches = [_import_batch(m.envelope, m.result) for m in mapped if m.envelope.import_id]
        batches += [_failed_import_batch(e, reason) for _, reason, e in dead if e and e.import_id]
        raw = [db.RawEvent(m.envelope, m.message.value) for m in mapped]
        raw += [db.RawEvent(e, message.value) for message, _, e in dead if e is not None]
        rejected = [
            (m.envelope, r.where, r.reason)
            for m in mapped
            for r in m.result.rejections[:MAX_ERRORS_PER_BATCH]
        ]
        traces = {item.envelope.id: item.message.trace_context for item in mapped}
        withdrawn = [
            db.Withdrawn(
                m.envelope.user_id, m.envelope.source, w.source_record_id, m.envelope.fetched_at
            )
            for m in mapped
            for w in m.result.withdrawals
        ]
        fetched_at = {m.envelope.id: m.envelope.fetched_at for m in mapped}
        async with self._pool.acquire() as conn, conn.transaction():
            await db.lock_series(conn, {(m.envelope.user_id, m.envelope.source) for m in mapped})
            await db.archive_raw(conn, raw)
            samples = await db.drop_withdrawn(conn, samples, fetched_at)
            changed = await store(conn, self._outbox, self._topics, samples, traces)
            deleted = await db.withdraw_records(conn, withdrawn)
            await remove(conn, self._outbox, self._topics, deleted)
            await db.record_import_batches(conn, batches)
            await db.record_rejections(conn, rejected)
        if changed or deleted:
            self._outbox.wakeup.set()

    def _dead_letter(self, message: RawMessage, reason: str) -> DeadLetter:
        base_topic = message.topic.removeprefix(self._topics.prefix)
        return DeadLetter(
            topic=self._topics.dlq(base_topic),
            key=message.key or b"",
            event=DeadLettered(
                reason=reason,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                original=message.value.decode("utf-8", errors="replace"),
            ),
        )


class NotAnEnvelope(ValueError):
    """A raw message that is not a raw.v1 envelope; says why."""


def read_envelope(body: bytes) -> RawPayloadReceived:
    """A raw message's envelope. orjson parses the JSON and pydantic checks the envelope's own
    fields: validating a payload of a thousand export items as a pydantic JsonValue cost two to
    three times as much (1.9-3.0 against 0.9 us an Apple Health record), and orjson yields JSON
    values only, which is all that JsonValue checks."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotAnEnvelope(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise NotAnEnvelope(f"a JSON {type(document).__name__}, not an object")
    if "payload" not in document:
        raise NotAnEnvelope("payload: Field required")
    payload = document.pop("payload")
    try:
        envelope = RawPayloadReceived.model_validate({**document, "payload": None})
    except ValidationError as exc:
        raise NotAnEnvelope(_first_error(exc)) from None
    return envelope.model_copy(update={"payload": payload})


class ConnectionHandler:
    """A disconnected provider whose user asked for its data to go: delete and announce."""

    def __init__(self, pool: asyncpg.Pool, outbox: Outbox, topics: Topics) -> None:
        self._pool = pool
        self._outbox = outbox
        self._topics = topics

    async def handle(self, change: ConnectionChanged) -> int:
        if change.event != "connection.disconnected" or not change.delete_data:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            await db.lock_series(conn, [(change.user_id, change.provider)])
            deleted = await db.delete_source_samples(conn, change.user_id, change.provider)
            await remove(conn, self._outbox, self._topics, deleted)
        if deleted:
            self._outbox.wakeup.set()
        log.info("source data deleted", source=change.provider, samples=len(deleted))
        return len(deleted)


async def store(
    conn: asyncpg.Connection,
    outbox: Outbox,
    topics: Topics,
    samples: list[Sample],
    traces: dict[UUID, dict[str, str]],
) -> list[db.ChangedSample]:
    """Upsert samples, refresh their rollups and announce each real change (in the caller's
    transaction); `traces` maps raw event ids to the trace their events continue."""
    changed, superseded, moved = await db.upsert_samples(conn, samples, names_one_record)
    await rollups.refresh(conn, [c.sample for c in changed + superseded] + moved)
    await outbox.add(
        conn,
        announcements(
            topics,
            changed,
            "created_or_updated",
            traces,
        ),
    )
    await outbox.add(conn, announcements(topics, superseded, "deleted", {}))
    return changed + superseded


async def remove(
    conn: asyncpg.Connection, outbox: Outbox, topics: Topics, deleted: list[db.ChangedSample]
) -> None:
    """Refresh the rollups of samples just deleted and announce each deletion."""
    await rollups.refresh(conn, [d.sample for d in deleted])
    await outbox.add(conn, announcements(topics, deleted, "deleted", {}))


MAX_CHANGES_PER_EVENT = 500
"""Under 100 kB of JSON: well under the broker's 1 MB per message."""


def announcements(
    topics: Topics,
    changed: list[db.ChangedSample],
    kind: Literal["created_or_updated", "deleted"],
    traces: dict[UUID, dict[str, str]],
) -> list[OutboxMessage]:
    """metrics.unified events, keyed by user: a user's changes from one raw event travel
    together (continuing that raw message's trace), at most MAX_CHANGES_PER_EVENT a message."""
    now = datetime.now(UTC)
    groups: dict[tuple[UUID, UUID], list[db.ChangedSample]] = {}
    for c in changed:
        groups.setdefault((c.sample.user_id, c.sample.raw_event_id), []).append(c)
    messages = []
    for (user, origin), items in groups.items():
        for start in range(0, len(items), MAX_CHANGES_PER_EVENT):
            chunk = items[start : start + MAX_CHANGES_PER_EVENT]
            messages.append(
                OutboxMessage(
                    topic=topics.metrics_unified,
                    key=str(user).encode(),
                    payload=metric_changes(user, origin, now, kind, chunk),
                    trace_context=traces.get(origin) if kind != "deleted" else None,
                )
            )
    return messages


def metric_changes(
    user_id: UUID,
    raw_event_id: UUID,
    occurred_at: datetime,
    kind: Literal["created_or_updated", "deleted"],
    changed: list[db.ChangedSample],
) -> dict[str, Any]:
    """A `MetricChanges` event (metric_batch.v2) as the outbox writes it, built directly: going
    through the pydantic models costs more than the write itself (a property test checks it
    reads back as the same samples). UUIDs and datetimes are left for orjson to write."""
    series: dict[tuple[str, str, str, str | None], list[dict[str, Any]]] = {}
    for c in changed:
        s = c.sample
        key = (s.metric, s.unit, s.source, s.device)
        series.setdefault(key, []).append(_sample_change(_change_kind(kind, c), c.revision, s))
    return {
        "schema": "metric_batch.v2",
        "user_id": user_id,
        "raw_event_id": raw_event_id,
        "occurred_at": occurred_at,
        "series": [
            {"metric": metric, "unit": unit, "source": source, "device": device, "changes": items}
            for (metric, unit, source, device), items in series.items()
        ],
    }


def _sample_change(event: ChangeKind, revision: int, s: Sample) -> dict[str, Any]:
    """`SampleChange`'s fields, leaving out those at their default (orjson writes a dict several
    times faster than a dataclass)."""
    change: dict[str, Any] = {
        "event": event,
        "revision": revision,
        "id": s.id,
        "value": s.value,
        "start": s.start,
        "end": s.end,
        "utc_offset_s": s.utc_offset_s,
    }
    if s.source_record_id:
        change["source_record_id"] = s.source_record_id
    if s.quality != 1.0:
        change["quality"] = s.quality
    if s.quality_reason is not None:
        change["quality_reason"] = s.quality_reason
    if s.details is not None:
        change["details"] = s.details
    return change


def _change_kind(
    kind: Literal["created_or_updated", "deleted"], change: db.ChangedSample
) -> ChangeKind:
    if kind == "deleted":
        return "deleted"
    return "created" if change.created else "updated"


def _import_batch(envelope: RawPayloadReceived, result: MappingResult) -> db.ImportBatch:
    assert envelope.import_id is not None
    return db.ImportBatch(
        import_id=envelope.import_id,
        raw_event_id=envelope.id,
        user_id=envelope.user_id,
        records_imported=result.records_imported,
        records_rejected=result.records_rejected,
        errors=[
            {"where": r.where, "reason": r.reason} for r in result.rejections[:MAX_ERRORS_PER_BATCH]
        ],
    )


def _failed_import_batch(envelope: RawPayloadReceived, reason: str) -> db.ImportBatch:
    assert envelope.import_id is not None
    payload = envelope.payload
    rows = payload.get("rows") if isinstance(payload, dict) else None
    return db.ImportBatch(
        import_id=envelope.import_id,
        raw_event_id=envelope.id,
        user_id=envelope.user_id,
        records_imported=0,
        records_rejected=len(rows) if isinstance(rows, list) else 1,
        errors=[{"where": f"batch {envelope.id}", "reason": reason}],
    )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
