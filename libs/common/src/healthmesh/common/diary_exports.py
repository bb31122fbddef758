"""Nutrition-diary CSV exports (Cronometer, MyFitnessPal): which export a file is, from its header.

The gateway refuses an upload that is none of them before anything is queued; the connectors'
importer reads the header again to name each batch's resource (the normalizer mapper that reads
it). Headers differ by account settings and app version, so an export is recognised by a few
columns it always has, never by the whole header. References: shared/reference/providers/
cronometer.md ("[CM]") and myfitnesspal.md ("[MFP]").
"""

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from healthmesh.common.apple_export import ArchiveLimits, checked_entries

HEAD_BYTES = 64 * 1024
"""A header line comes within this (Cronometer's widest known one is ~1.5 KB [CM])."""


@dataclass(frozen=True)
class DiaryExport:
    source: str
    resource: str
    """The normalizer's name for this export (its mapper), e.g. `dailysummary`."""
    title: str
    """As the user knows the file, for messages."""
    day_column: str
    """The column dating each row: the importer keeps a day's rows in one batch."""
    columns: frozenset[str]
    """Columns (lower case, "(unit)" stripped) every such file has."""
    any_of: frozenset[str] = frozenset()
    """Columns of which the file has at least one, when not empty."""


def _export(
    source: str, resource: str, title: str, day: str, columns: str, any_of: str = ""
) -> DiaryExport:
    return DiaryExport(
        source,
        resource,
        title,
        day,
        frozenset(columns.split(",")),
        frozenset(any_of.split(",")) if any_of else frozenset(),
    )


EXPORTS: dict[str, tuple[DiaryExport, ...]] = {
    "cronometer": (
        # `Date,Energy (kcal)|Energy (kJ),...nutrients...,Completed` [CM dailysummary].
        _export("cronometer", "dailysummary", "Daily Nutrition (dailysummary.csv)", "Date",
                "date,energy"),
        # `Day,Time,Group,Food Name,Amount,Energy (kcal),...,Category` [CM servings].
        _export("cronometer", "servings", "Food & Recipe Entries (servings.csv)", "Day",
                "day,group,food name,energy"),
        # `Day,Time,Group,Exercise,Minutes,Calories Burned` [CM, importer fixtures].
        _export("cronometer", "exercises", "Exercises (exercises.csv)", "Day",
                "day,exercise,minutes"),
        # `Day,Time,Group,Metric,Unit,Amount` [CM, importer fixtures]. Notes (`Day,Time,Group,
        # Note`) hold no metric: not recognised.
        _export("cronometer", "biometrics", "Biometrics (biometrics.csv)", "Day",
                "day,metric,unit,amount"),
    ),
    "myfitnesspal": (
        # `Date,Meal[,Time],Calories,Fat (g),...` in shapes N1-N3 [MFP].
        _export("myfitnesspal", "nutrition", "Nutrition-Summary", "Date", "date,meal,calories"),
        # `Date,Exercise,Type,Exercise Calories,Exercise Minutes,...,Steps,Note` [MFP].
        _export("myfitnesspal", "exercise", "Exercise-Summary", "Date",
                "date,exercise,exercise minutes"),
        # `Date,Weight[,...]`, wider when other measurements are logged [MFP].
        _export("myfitnesspal", "measurement", "Measurement-Summary", "Date", "date",
                "weight,body fat,body fat %"),
    ),
}  # fmt: skip
ZIPPED_SOURCES = ("myfitnesspal",)
"""Sources whose export comes as one zip of CSVs: MyFitnessPal emails `File-Export-<range>/`
with Nutrition-, Exercise- and Measurement-Summary-<range>.csv [MFP "Zip layout"]."""
_SOURCE_NAMES = {"cronometer": "Cronometer", "myfitnesspal": "MyFitnessPal"}
_UNIT = re.compile(r"\s*\([^()]*\)$")


class NotAnExport(ValueError):
    """The file is not a recognised export of the source; the message says what would be."""


def column_name(header: str) -> str:
    """ "Energy (kcal)" → "energy"; a BOM and blanks dropped."""
    return _UNIT.sub("", header.lstrip("\ufeff").strip()).strip().lower()


def recognise(source: str, header: list[str]) -> DiaryExport:
    """Which of `source`'s exports has this header row."""
    names = {column_name(h) for h in header}
    for export in EXPORTS[source]:
        if export.columns <= names and (not export.any_of or export.any_of & names):
            return export
    raise NotAnExport(
        f"not a {_SOURCE_NAMES[source]} export: the header ({', '.join(header)[:200]}) is none of "
        f"{'; '.join(e.title for e in EXPORTS[source])}"
    )


def header_of(head: bytes) -> list[str]:
    """The header row of a CSV file from its first bytes (UTF-8, a BOM allowed)."""
    if head.startswith(b"PK\x03\x04"):
        raise NotAnExport("a zip archive, not a CSV file")
    line, newline, _ = head.partition(b"\n")
    if not newline and len(head) >= HEAD_BYTES:
        raise NotAnExport(f"no line break in the first {HEAD_BYTES} bytes: not a CSV export")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotAnExport("not UTF-8 text: not a CSV export") from None
    return next(csv.reader(io.StringIO(text)), [])


def zip_members(archive: zipfile.ZipFile, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The CSV files of a zipped export, in archive order, once every entry was checked (raises
    `UnsafeArchive`); macOS's `__MACOSX/` copies are not files of the export."""
    members = [
        entry
        for entry in checked_entries(archive, limits)
        if not entry.is_dir()
        and PurePosixPath(entry.filename).suffix.lower() == ".csv"
        and PurePosixPath(entry.filename).parts[0] != "__MACOSX"
    ]
    if not members:
        raise NotAnExport("the zip holds no CSV file")
    return members
