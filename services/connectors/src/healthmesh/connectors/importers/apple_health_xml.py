"""Apple Health export.xml, streamed: one plain dict per top-level item, memory flat at any size.

Exports reach several GB (reference: shared/reference/providers/apple_health.md, "Size"), so the
file is read with lxml `iterparse` and every item is cleared once turned into a dict. What the
items are (numbers, units, times) is the normalizer's job: attribute values stay the XML's text.

The internal DTD every export starts with is cut out before lxml sees it (its lines kept as blank
lines so line numbers stay true): nothing in it is needed, iOS 16 wrote it broken (an ATTLIST
without its `>`, same reference, "Why naive parsers choke" 1), and an export that declares
entities in it is refused outright (billion laughs: Apple's DTD declares none).
"""

import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

from lxml import etree

TOP_LEVEL_TAGS = ("Record", "Correlation", "Workout", "ActivitySummary")
ROOT_TAG = "HealthData"
MAX_PROLOGUE_BYTES = 1 << 20
"""The prologue (XML declaration, comments, DOCTYPE) must end within this; Apple's is ~10 KB."""

_CHUNK = 64 * 1024


class ExportError(ValueError):
    """The export cannot be read on from `line`; items before it were already yielded."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(f"line {line}: {reason}")
        self.reason = reason
        self.line = line


def read_export(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Yield each Record, Correlation, Workout and ActivitySummary under HealthData, in file order.

    Raises ExportError (after yielding everything before it) for a truncated or malformed file,
    an entity declaration, or a root element other than HealthData.
    """
    source = _PrologueStripped(stream)
    context = etree.iterparse(
        source,
        events=("end",),
        tag=TOP_LEVEL_TAGS,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
        dtd_validation=False,
    )
    line = 0  # of the last item read, for an error the stream raises (it knows no line)
    try:
        for _event, element in context:
            line = element.sourceline or line
            parent = element.getparent()
            if parent is None or parent.getparent() is not None:
                continue  # nested (a correlation's or workout's Record): read with its parent
            if parent.tag != ROOT_TAG:
                raise ExportError(
                    f"not an Apple Health export: the root element is {parent.tag!r}",
                    element.sourceline or 0,
                )
            item = _item(element)
            element.clear(keep_tail=True)
            while element.getprevious() is not None:
                del parent[0]  # ExportDate, Me and the items already yielded
            yield item
    except etree.XMLSyntaxError as exc:
        reason, at = _first_error(context.error_log, exc)
        raise ExportError(reason, at) from None
    except (zlib.error, zipfile.BadZipFile, EOFError, OSError) as exc:
        # A zip damaged past the part the gateway checked: its deflate stream breaks (zlib) or
        # its checksum fails (BadZipFile) partway; what was read before is kept.
        raise ExportError(f"the file is damaged after this line: {exc}", line) from None
    root = context.root
    if root is not None and root.tag != ROOT_TAG:
        raise ExportError(f"not an Apple Health export: the root element is {root.tag!r}", 1)


def _first_error(log: Any, exc: etree.XMLSyntaxError) -> tuple[str, int]:
    """libxml2 goes on after some errors (an undeclared entity) and then fails with a vaguer
    one ("no element found", line 0): the first error of this parse is the one to show."""
    for entry in log:
        if entry.level >= etree.ErrorLevels.ERROR:
            return str(entry.message), int(entry.line)
    return str(exc.msg), int(exc.lineno or 0)


# --- items ---------------------------------------------------------------------------------------


def _item(element: Any) -> dict[str, Any]:
    if element.tag == "Record":
        return _record(element)
    if element.tag == "Correlation":
        return {
            "kind": "correlation",
            "line": element.sourceline,
            **element.attrib,
            "metadata": _metadata(element),
            "records": [_record(child) for child in element if child.tag == "Record"],
        }
    if element.tag == "Workout":
        # Direct children only: WorkoutActivity (iOS 16+) repeats its own statistics/events,
        # and a nested Record also appears at the top level, so neither is read here.
        return {
            "kind": "workout",
            "line": element.sourceline,
            **element.attrib,
            "metadata": _metadata(element),
            "statistics": [dict(c.attrib) for c in element if c.tag == "WorkoutStatistics"],
            "events": [dict(c.attrib) for c in element if c.tag == "WorkoutEvent"],
        }
    return {"kind": "activity_summary", "line": element.sourceline, **element.attrib}


def _record(element: Any) -> dict[str, Any]:
    # Most records have no children: `len` says so without making a proxy for any. The
    # attributes come as a list of pairs in C (`**element.attrib` asks for them one by one).
    item: dict[str, Any] = {"kind": "record", "line": element.sourceline}
    item.update(element.items())
    if not len(element):
        item["metadata"] = {}
        return item
    item["metadata"] = _metadata(element)
    beats = element.find("HeartRateVariabilityMetadataList")
    if beats is not None:
        item["beats"] = [
            {"bpm": beat.get("bpm"), "time": beat.get("time")}
            for beat in beats.iterchildren("InstantaneousBeatsPerMinute")
        ]
    return item


def _metadata(element: Any) -> dict[str, str]:
    return {
        str(child.get("key")): str(child.get("value", ""))
        for child in element.iterchildren("MetadataEntry")
        if child.get("key") is not None
    }


# --- the prologue --------------------------------------------------------------------------------


class _PrologueStripped:
    """A binary reader of `stream` with its DOCTYPE replaced by as many newlines as it spanned."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._head = b""
        self._head_ready = False

    def read(self, size: int = -1) -> bytes:
        if not self._head_ready:
            self._head = _strip_doctype(self._stream)
            self._head_ready = True
        if self._head:
            n = len(self._head) if size < 0 else size
            chunk, self._head = self._head[:n], self._head[n:]
            return chunk
        return self._stream.read(size)


def _strip_doctype(stream: IO[bytes]) -> bytes:
    """Read the file's beginning up to the end of its DOCTYPE (if any); return it with the
    DOCTYPE blanked out. Raises ExportError on an entity declaration."""
    data, eof, wanted = bytearray(), False, _CHUNK
    while True:
        while not eof and len(data) < wanted:  # streams may hand out less than asked
            more = stream.read(_CHUNK)
            data += more
            eof = not more
        buffer = bytes(data)
        span = _doctype_span(buffer, complete=eof)
        if span is None:
            if len(buffer) > MAX_PROLOGUE_BYTES:
                raise ExportError(
                    f"the prologue (DOCTYPE) is longer than {MAX_PROLOGUE_BYTES} bytes",
                    buffer.count(b"\n") + 1,
                )
            # rescanned from the start: doubling keeps that linear; no further than the limit
            wanted = min(2 * len(buffer), MAX_PROLOGUE_BYTES + 1)
            continue
        start, end = span
        if start == end:
            return buffer
        return buffer[:start] + b"\n" * buffer.count(b"\n", start, end) + buffer[end:]


def _doctype_span(buffer: bytes, *, complete: bool) -> tuple[int, int] | None:
    """(start, end) of the DOCTYPE in `buffer`, (0, 0) when there is none, None when more
    bytes are needed to tell. Comments, PIs and quoted literals are skipped whole, so a `>` or
    `<!ENTITY` inside them counts for nothing."""
    i = 0
    while True:  # before the DOCTYPE: XML declaration, comments, PIs, whitespace, a BOM
        i = _skip_space(buffer, i)
        if buffer.startswith(b"<?", i):
            close = buffer.find(b"?>", i + 2)
        elif buffer.startswith(b"<!--", i):
            close = buffer.find(b"-->", i + 4)
        elif buffer.startswith(b"<!DOCTYPE", i):
            break
        elif len(buffer) - i < len(b"<!DOCTYPE") and not complete:
            return None  # too short to tell what comes next
        else:
            return (0, 0)  # the root element (or junk lxml will report): no DOCTYPE
        if close < 0:
            return None if not complete else (0, 0)
        i = close + 2 if buffer[close] == ord("?") else close + 3
    start, i, in_subset = i, i + len(b"<!DOCTYPE"), False
    while i < len(buffer):
        char = buffer[i : i + 1]
        if buffer.startswith(b"<!--", i):
            close = buffer.find(b"-->", i + 4)
            if close < 0:
                break
            i = close + 3
            continue
        if char in (b'"', b"'"):
            close = buffer.find(char, i + 1)
            if close < 0:
                break
            i = close + 1
            continue
        if buffer.startswith(b"<!ENTITY", i):
            raise ExportError(
                "the export declares entities (<!ENTITY ...>); Apple's DTD declares none, "
                "refused as a possible entity-expansion bomb",
                buffer.count(b"\n", 0, i) + 1,
            )
        if char == b"[":
            in_subset = True
        elif char == b"]":
            in_subset = False
        elif char == b">" and not in_subset:
            return (start, i + 1)
        i += 1
    if complete:
        raise ExportError("the DOCTYPE never ends", buffer.count(b"\n") + 1)
    return None


def _skip_space(buffer: bytes, i: int) -> int:
    if i == 0 and buffer.startswith(b"\xef\xbb\xbf"):
        i = 3
    while i < len(buffer) and buffer[i : i + 1] in (b" ", b"\t", b"\r", b"\n"):
        i += 1
    return i
