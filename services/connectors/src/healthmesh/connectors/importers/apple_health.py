"""Apple Health exports (export.zip, or export.xml alone), cut into raw batches of items.

The file is streamed: the zip member is decompressed as it is read and `read_export` keeps one
item in memory at a time, so memory stays flat whatever the export's size. A batch is published
as `{"records": [item, ...]}` (resource `export`), the payload the normalizer's apple_health
mapper reads. Batches are cut at a count and a size, so the same file always gives the same
batches (and the same raw event ids): importing it twice adds nothing.

A batch is never cut inside a night: the mapper builds each night's `sleep_session` from the
sleep-analysis records of one payload, so a batch that is due waits until the next item cannot
belong to a night already in it (`NIGHT_GAP`). The export lists records by type, then date;
an export listing each source's records apart is handled too. A batch runs at most
`NIGHT_OVERRUN` times past its limits for that; a chain of sleep records longer than that (no
real night is) is cut there.
"""

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from healthmesh.common.apple_export import (
    NIGHT_GAP,
    SLEEP_ANALYSIS,
    ArchiveLimits,
    export_member,
)
from healthmesh.common.ids import canonical_json
from healthmesh.connectors.importers.apple_health_xml import ExportError, read_export

RESOURCE = "export"
NIGHT_OVERRUN = 2
"""A batch finishing a night may grow to this many times its record and byte limits (the
default byte limit, 256 KB, stays well below Kafka's 1 MB message limit even doubled)."""
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"  # the export's "2023-04-01 07:15:00 -0700"


@dataclass
class ItemBatch:
    records: list[dict[str, Any]] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)
    """Each record's canonical JSON (`ids.canonical_json`), written once: it measures the
    batch and becomes the published payload (`payload_json`)."""
    size: int = 0
    bytes_read: int = 0
    """How far into the uploaded file (the zip, when zipped) reading had got."""

    def payload_json(self) -> bytes:
        """`canonical_json({"records": records})`, joined from the records' own JSON."""
        return b'{"records":[' + b",".join(self.encoded) + b"]}"


def read_batches(
    path: Path, limits: ArchiveLimits, max_records: int, max_bytes: int
) -> Iterator[ItemBatch]:
    """Yield batches of export items in file order. Raises `UnsafeArchive` for a zip that is
    refused, and `ExportError` once every item before an unreadable place was yielded."""
    with path.open("rb") as raw:
        if zipfile.is_zipfile(raw):
            raw.seek(0)
            with (
                zipfile.ZipFile(raw) as archive,
                archive.open(export_member(archive, limits)) as xml,
            ):
                yield from _batches(xml, raw, max_records, max_bytes)
        else:
            raw.seek(0)
            yield from _batches(raw, raw, max_records, max_bytes)


def _batches(
    xml: IO[bytes], upload: IO[bytes], max_records: int, max_bytes: int
) -> Iterator[ItemBatch]:
    batch, nights = ItemBatch(), OpenNights()
    try:
        for item in read_export(xml):
            due = len(batch.records) >= max_records or batch.size >= max_bytes
            overrun = (
                len(batch.records) >= NIGHT_OVERRUN * max_records
                or batch.size >= NIGHT_OVERRUN * max_bytes
            )
            if due and (overrun or not nights.continued_by(item)):
                batch.bytes_read = upload.tell()
                yield batch
                batch, nights = ItemBatch(), OpenNights()
            encoded = canonical_json(item)
            batch.records.append(item)
            batch.encoded.append(encoded)
            batch.size += len(encoded)  # sorting the keys changes no length
            nights.add(item)
    except ExportError:
        if batch.records:  # what was read before the error is kept
            batch.bytes_read = upload.tell()
            yield batch
        raise
    if batch.records:
        batch.bytes_read = upload.tell()
        yield batch


@dataclass
class _Run:
    last_start: datetime
    end: datetime


@dataclass
class OpenNights:
    """The sleep-analysis records of the batch being filled, per source name: the latest start
    and the latest end, enough to tell whether an item may still belong to one of their nights."""

    runs: dict[str, _Run] = field(default_factory=dict)

    def add(self, item: dict[str, Any]) -> None:
        sleep = _sleep_record(item)
        if sleep is None:
            return
        source, start, end = sleep
        run = self.runs.get(source)
        if run is None:
            self.runs[source] = _Run(start, end)
        else:
            run.last_start, run.end = max(run.last_start, start), max(run.end, end)

    def continued_by(self, item: dict[str, Any]) -> bool:
        """Whether `item` is a sleep record that may continue a night of this batch, of its own
        source or of another one: records come in date order, so another source's night goes
        on while an item starts within `NIGHT_GAP` of its end, unless the item starts before
        that source's last record (then the file lists each source apart, and it is done)."""
        sleep = _sleep_record(item)
        if sleep is None:
            return False
        source, start, _end = sleep
        for name, run in self.runs.items():
            if start >= run.end + NIGHT_GAP:
                continue
            if name != source and start < run.last_start:
                continue
            return True
        return False


def _sleep_record(item: dict[str, Any]) -> tuple[str, datetime, datetime] | None:
    """(source name, start, end) of a top-level sleep-analysis record; None for any other item
    and for one whose times do not parse (the mapper rejects that one)."""
    if item.get("kind") != "record" or item.get("type") != SLEEP_ANALYSIS:
        return None
    source, start, end = item.get("sourceName"), item.get("startDate"), item.get("endDate")
    if not isinstance(source, str) or not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        return source, _time(start), _time(end)
    except ValueError:
        return None


def _time(text: str) -> datetime:
    """The export's "2023-04-01 07:15:00 -0700". Without the space before it, ±HHMM is an
    offset fromisoformat reads (the same moment ~20x faster than strptime)."""
    if len(text) == 25 and text[10] == " " and text[19] == " " and text[20] in "+-":
        return datetime.fromisoformat(text[:19] + text[20:])
    return datetime.strptime(text, _TIME_FORMAT)
