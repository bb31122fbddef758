"""MyFitnessPal's export: the zip it emails (File-Export-<range>/ with Nutrition-, Exercise- and
Measurement-Summary-<range>.csv), or one of those CSVs on its own.

Each CSV is recognised by its header (`healthmesh.common.diary_exports`), never by its name
(one export reportedly used bare `Nutrition-Summary.csv`); its rows go out in batches of whole
days (`diary_csv`), the payload the normalizer's myfitnesspal mapper reads. A zip member is
decompressed as it is read, after every entry was checked (zip bomb, names escaping the
archive). The files have CRLF line endings and may start with a BOM [MFP]. Reference:
shared/reference/providers/myfitnesspal.md ("[MFP]").
"""

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from healthmesh.common.apple_export import ArchiveLimits, UnsafeArchive
from healthmesh.common.diary_exports import (
    HEAD_BYTES,
    NotAnExport,
    column_name,
    header_of,
    recognise,
    zip_members,
)
from healthmesh.common.events import WeightUnit
from healthmesh.connectors.importers.csv_file import UnreadableFile
from healthmesh.connectors.importers.diary_csv import DayBatch, read_day_batches

SOURCE = "myfitnesspal"
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")
"""`Date` is YYYY-MM-DD [MFP]; M/D/YYYY after a spreadsheet re-save, as the mapper accepts."""
LOAD_COLUMNS: dict[str, WeightUnit] = {"pounds": "lb", "kilograms": "kg"}
"""Exercise-Summary's load column, named after the account's unit: `Kilograms` (metric) or
`Pounds` (imperial) [MFP Exercise-Summary]."""


def read_batches(
    path: Path, limits: ArchiveLimits, max_rows: int, max_bytes: int
) -> Iterator[DayBatch]:
    """Yield batches of whole days, file after file in archive order. Raises `UnsafeArchive`
    for a zip that is refused, `UnreadableFile` for a file that is not an export of MyFitnessPal
    and where reading stopped once the rows before were yielded."""
    with path.open("rb") as raw:
        if not zipfile.is_zipfile(raw):
            raw.seek(0)
            yield from read_day_batches(raw, raw, SOURCE, DATE_FORMATS, max_rows, max_bytes)
            return
        raw.seek(0)
        with zipfile.ZipFile(raw) as archive:
            try:
                members = zip_members(archive, limits)
            except NotAnExport as exc:
                raise UnreadableFile("file", str(exc)) from None
            for member in members:
                with archive.open(member) as member_file:
                    try:
                        yield from read_day_batches(
                            member_file, raw, SOURCE, DATE_FORMATS, max_rows, max_bytes
                        )
                    except UnreadableFile as exc:
                        where = f"{member.filename}, {exc.where}"
                        raise UnreadableFile(where, exc.reason) from None


def inferred_weight_unit(path: Path, limits: ArchiveLimits) -> WeightUnit | None:
    """The account's weight unit, from the header of the zip's Exercise-Summary: the
    Measurement-Summary's `Weight` names none, but both follow the same account setting [MFP].
    None for a lone CSV (nothing to infer from), a zip without an Exercise-Summary or one naming
    both units or neither. Reads only each member's head. A zip that cannot be read answers None
    too: `read_batches` refuses it, saying where and why."""
    found: set[WeightUnit] = set()
    try:
        with path.open("rb") as raw:
            if not zipfile.is_zipfile(raw):
                return None
            raw.seek(0)
            with zipfile.ZipFile(raw) as archive:
                for member in zip_members(archive, limits):
                    with archive.open(member) as member_file:
                        header = header_of(member_file.read(HEAD_BYTES))
                    if recognise(SOURCE, header).resource == "exercise":
                        names = {column_name(h) for h in header}
                        found.update(unit for name, unit in LOAD_COLUMNS.items() if name in names)
    except (NotAnExport, UnsafeArchive, zipfile.BadZipFile, zlib.error, EOFError, OSError):
        return None
    return found.pop() if len(found) == 1 else None
