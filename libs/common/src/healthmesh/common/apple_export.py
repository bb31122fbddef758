"""Apple Health export.zip: finding its export.xml and refusing archives that are not safe to read.

The gateway checks an upload with `export_member` before queueing it (a clear 4xx, nothing
imported); the connectors' importer checks again when it opens the file. The checks trust the
sizes the zip declares, which is safe because Python's zipfile never decompresses an entry past
its declared size (and fails on a CRC mismatch).

Layout (reference: shared/reference/providers/apple_health.md, "Zip layout"): one top folder,
`apple_health_export/`, holding `export.xml` (its name is localized, e.g. `exportieren.xml`),
`export_cda.xml` (a clinical document, not ours), GPX routes and ECG CSVs; macOS adds
`__MACOSX/` entries.

It also holds what the connectors' importer and the normalizer's mapper must agree on about the
export's sleep records: which records they are and when two of them are one night.
"""

import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath

SLEEP_ANALYSIS = "HKCategoryTypeIdentifierSleepAnalysis"
NIGHT_GAP = timedelta(hours=2)
"""Sleep-analysis records of one source less than this apart (end of the night so far to the
next record's start) are one night. Within a night the Watch writes Awake stages and older
exports an InBed record over it, so gaps are short; 2 h keeps a restless night whole (awake
without a record) and a nap ending 2 h or more before bedtime apart. The importer keeps a night's
records in one batch by it, the mapper builds `sleep_session`s by it."""


class UnsafeArchive(ValueError):
    """The archive is refused as a whole, for this reason."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_uncompressed_bytes: int = 16 << 30
    """Largest export.xml accepted once unzipped (a decade of Apple Watch data is ~4 GB)."""
    max_ratio: int = 200
    """Largest uncompressed/compressed ratio of any entry; real exports are ~20 (4 GB XML in a
    200 MB zip), a zip bomb is thousands."""
    max_entries: int = 100_000


def export_member(archive: zipfile.ZipFile, limits: ArchiveLimits) -> zipfile.ZipInfo:
    """The export.xml entry of an Apple Health export.zip, once every entry was checked."""
    entries = checked_entries(archive, limits)
    candidates = [e for e in entries if _is_export_xml(e)]
    if not candidates:
        raise UnsafeArchive(
            "not an Apple Health export: no apple_health_export/export.xml in the archive"
        )
    named = [e for e in candidates if PurePosixPath(e.filename).name == "export.xml"]
    return (named or sorted(candidates, key=lambda e: e.file_size))[-1]


def checked_entries(archive: zipfile.ZipFile, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """Every entry of an uploaded zip (also other exports that come zipped, e.g. MyFitnessPal's),
    refused as a whole if one is not safe to read: a name that escapes the archive, a zip bomb
    (compression ratio, total size), an encrypted entry."""
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise UnsafeArchive(f"the archive has {len(entries)} entries (limit {limits.max_entries})")
    total = 0
    for entry in entries:
        _check_name(entry.filename)
        if entry.flag_bits & 0x1:
            raise UnsafeArchive(f"entry {entry.filename!r} is encrypted")
        if entry.compress_size and entry.file_size / entry.compress_size > limits.max_ratio:
            raise UnsafeArchive(
                f"entry {entry.filename!r} expands {entry.file_size // entry.compress_size}x "
                f"(limit {limits.max_ratio}x): refused as a zip bomb"
            )
        total += entry.file_size
    if total > limits.max_uncompressed_bytes:
        raise UnsafeArchive(
            f"the archive expands to {total} bytes (limit {limits.max_uncompressed_bytes})"
        )
    return entries


def _check_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchive(f"entry {name!r} points outside the archive")


def _is_export_xml(entry: zipfile.ZipInfo) -> bool:
    """An .xml directly in the top folder (or at the root), not the clinical document."""
    path = PurePosixPath(entry.filename)
    return (
        not entry.is_dir()
        and path.suffix.lower() == ".xml"
        and not path.name.lower().endswith("_cda.xml")
        and len(path.parts) <= 2
        and path.parts[0] != "__MACOSX"
    )
