"""Apple Health exports (export.zip, or export.xml alone), cut into raw batches of items.

The file is streamed: the zip member is decompressed as it is read and `read_export` keeps one
item in memory at a time, so memory stays flat whatever the export's size. A batch is published
as `{"records": [item, ...]}` (resource `export`), the payload the normalizer's apple_health
mapper reads. Batches are cut at a count and a size, so the same file always gives the same
batches (and the same raw event ids): importing it twice adds nothing.
"""

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from healthmesh.common.apple_export import ArchiveLimits, export_member
from healthmesh.connectors.importers.apple_health_xml import ExportError, read_export

RESOURCE = "export"


@dataclass
class ItemBatch:
    records: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0
    bytes_read: int = 0
    """How far into the uploaded file (the zip, when zipped) reading had got."""


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
    batch = ItemBatch()
    try:
        for item in read_export(xml):
            batch.records.append(item)
            batch.size += len(orjson.dumps(item))
            if len(batch.records) >= max_records or batch.size >= max_bytes:
                batch.bytes_read = upload.tell()
                yield batch
                batch = ItemBatch()
    except ExportError:
        if batch.records:  # what was read before the error is kept
            batch.bytes_read = upload.tell()
            yield batch
        raise
    if batch.records:
        batch.bytes_read = upload.tell()
        yield batch
