"""Reading an Audience's CSV source: dialect detection, header mapping, typed records.

Streams the file (never loads it whole). Each row becomes a `SourceRecord` with
its typed attributes and the problems of its bad values; a row whose key is
missing is returned with `rejected` set, so callers can count and report it
without aborting the read.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from campaignctl.audience.values import ValueProblem, converter
from campaignctl.errors import InputError
from campaignctl.spec.models import Audience, ColumnType

SNIFF_BYTES = 64 * 1024
DELIMITERS = (";", ",", "\t", "|")
BLOCK_CHARS = 1 << 18  # the text of whole rows handed to an import worker at a time: a
# quarter of a megabyte (about 2,500 rows) keeps a worker under 60 MB, no slower than more
MAX_ROW_CHARS = 8 << 20  # a "row" longer than this is an unclosed quote


@dataclass(frozen=True)
class RowProblem:
    row: int  # line number in the file, the header being line 1
    column: str
    value: str
    reason: str
    message: str


@dataclass
class SourceRecord:
    row: int
    key: str
    email: str | None
    phone: str | None
    category: str | None
    attributes: dict[str, Any]
    problems: list[RowProblem] = field(default_factory=list)
    rejected: bool = False


@dataclass(frozen=True)
class SourceLayout:
    """How one CSV file maps onto an audience: its dialect and column positions."""

    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    positions: dict[str, int]  # attribute name -> column index in the file
    shown: str  # the file's name in messages (relative to the workspace)


def _detect_encoding(raw: bytes, declared: str) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if declared.lower().replace("_", "-") in ("utf-8", "utf8"):
        return "utf-8-sig"  # tolerate a BOM even when UTF-8 is declared
    return declared


def _detect_delimiter(first_line: str, declared: str) -> str:
    if declared != "auto":
        return declared
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def inspect_source(path: Path, audience: Audience, display: str | None = None) -> SourceLayout:
    """Open the file far enough to know its encoding, delimiter and header; check the mapping."""
    shown = display or str(path)
    if not path.is_file():
        raise InputError(
            f"{shown}: source file of audience {audience.name!r} not found",
            hint=f"put the CSV there or change `source:` in the {audience.name!r} audience",
        )
    with path.open("rb") as handle:
        raw = handle.read(SNIFF_BYTES)
    if b"\x00" in raw and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(
            f"{shown}: this is not a CSV text file (it contains binary data)",
            hint="export the contacts as CSV (UTF-8) from your spreadsheet or CRM",
        )
    try:
        encoding = _detect_encoding(raw, audience.encoding)
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(
            f"{shown}: unknown encoding {audience.encoding!r}",
            hint="set `encoding:` to utf-8, latin-1 or cp1252",
        ) from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if len(raw) == SNIFF_BYTES and exc.start >= len(raw) - 4:
            text = raw[: exc.start].decode(encoding)  # a character cut by the sniff window
        else:
            raise InputError(
                f"{shown}:{_lines(raw[: exc.start]) + 1}: "
                f"the file is not valid {encoding.removesuffix('-sig')} text",
                hint="save it as UTF-8, or set `encoding: cp1252` (Excel on Windows)",
            ) from None
    first_line = text.splitlines()[0] if text else ""
    if not first_line.strip():
        raise InputError(
            f"{shown}: the file is empty or starts with a blank line",
            hint="the first line must be the header with the column names",
        )
    delimiter = _detect_delimiter(first_line, audience.delimiter)
    header = [h.strip() for h in next(csv.reader([first_line], delimiter=delimiter))]
    positions: dict[str, int] = {}
    missing = []
    for name, column in audience.columns.items():
        wanted = column.header or name
        if wanted in header:
            positions[name] = header.index(wanted)
        else:
            missing.append((name, wanted))
    if missing:
        name, wanted = missing[0]
        close = difflib.get_close_matches(wanted, header, n=1)
        others = ", ".join(repr(w) for _, w in missing[1:])
        raise InputError(
            f"{shown}:1: column {wanted!r} of audience {audience.name!r} is not in the header"
            + (f" (nor {others})" if others else ""),
            hint=(
                f"the header has {close[0]!r}: set `header: {close[0]!r}` on column {name!r}"
                if close
                else f"the header is: {', '.join(header)}"
            ),
        )
    return SourceLayout(path, encoding, delimiter, header, positions, shown)


def estimate_rows(layout: SourceLayout) -> int:
    """About how many rows the file holds, from the line length of its first 64 KiB."""
    size = layout.path.stat().st_size
    with layout.path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    return size * sample.count(b"\n") // max(len(sample), 1)


@dataclass(frozen=True)
class Block:
    """Whole rows of the file, as text: what one import worker parses and types."""

    line: int  # physical lines of the file before the block
    text: str
    header: bool  # the block starts with the header row


@lru_cache(maxsize=16)
def _row_patterns(delimiter: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(complete rows, one last row without a line end) as Python's csv module reads them.

    A field is either quoted (a quote, then anything but a lone quote, newlines included,
    then the closing quote and whatever follows it up to the delimiter) or unquoted (up
    to the delimiter or the line end; a quote inside it is a plain character). Every
    text matches except one that ends inside a quoted field: an unclosed quote.
    Possessive quantifiers: no backtracking, a megabyte of rows in about 10 ms.
    """
    d = re.escape(delimiter)
    field = rf'(?:"(?:[^"]|"")*+"[^{d}\r\n]*+|[^"{d}\r\n][^{d}\r\n]*+|)'
    row = rf"{field}(?:{d}{field})*+"
    return re.compile(rf"(?:{row}(?:\r\n|\n|\r))*+"), re.compile(row)


def _lines(text: str | bytes) -> int:
    """Physical lines ended in `text` (\\n, \\r\\n or \\r, as the csv reader counts them)."""
    if isinstance(text, str):
        return text.count("\n") + text.count("\r") - text.count("\r\n")
    return text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n")


def iter_blocks(layout: SourceLayout, size: int | None = None) -> Iterator[Block]:
    """The file as blocks of about `size` characters (BLOCK_CHARS) that end where a row ends.

    Streams the file. Undecodable bytes and an unclosed quote are errors naming the line
    (an unclosed quote would swallow every row after it into one value).
    """
    size = size or BLOCK_CHARS
    complete, last = _row_patterns(layout.delimiter)
    decoder = codecs.getincrementaldecoder(layout.encoding)()
    buffer, line, header = "", 0, True
    with layout.path.open("rb") as handle:
        while True:
            data = handle.read(size)
            end_of_file = not data
            try:
                buffer += decoder.decode(data, final=end_of_file)
            except UnicodeDecodeError as exc:
                at = line + _lines(buffer) + _lines(exc.object[: exc.start]) + 1
                encoding = layout.encoding.removesuffix("-sig")
                raise InputError(
                    f"{layout.shown}:{at}: the file is not valid {encoding} text",
                    hint="save it as UTF-8, or set `encoding: cp1252` (Excel on Windows)",
                ) from None
            # a final \r may be the first half of \r\n: wait for the next read
            stop = len(buffer) - (not end_of_file and buffer.endswith("\r"))
            cut = complete.match(buffer, 0, stop).end()
            if end_of_file and cut < len(buffer):
                if last.fullmatch(buffer, cut) is None:
                    raise _unclosed_quote(layout, line + _lines(buffer[:cut]) + 1)
                cut = len(buffer)
            if cut:
                text, buffer = buffer[:cut], buffer[cut:]
                yield Block(line, text, header)
                line, header = line + _lines(text), False
            elif len(buffer) > MAX_ROW_CHARS:
                raise _unclosed_quote(layout, line + 1)
            if end_of_file:
                return


def _unclosed_quote(layout: SourceLayout, line: int) -> InputError:
    return InputError(
        f"{layout.shown}:{line}: a quoted value that starts on this row is never closed",
        hint='close the quote; a quote inside a quoted value is written twice ("")',
    )


def parse_block(block: Block, layout: SourceLayout) -> list[tuple[int, list[str]]]:
    """The rows of a block as (line number, cells padded to the header), blank rows skipped.

    The line number is the file's (the header being line 1) where the row ends.
    """
    width = len(layout.header)
    reader = csv.reader(io.StringIO(block.text, newline=""), delimiter=layout.delimiter)
    if block.header:
        next(reader, None)
    rows = []
    line = block.line
    try:
        for cells in reader:
            first = cells[0] if cells else ""
            if (not first or first.isspace()) and not "".join(cells).strip():
                continue  # no cells, or only blank ones
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            rows.append((line + reader.line_num, cells))
    except csv.Error as exc:  # a value over the csv module's field size limit
        raise InputError(
            f"{layout.shown}:{line + reader.line_num}: {exc}",
            hint="a value this long is not a contact's: check the quotes on that row",
        ) from None
    return rows


def iter_rows(layout: SourceLayout, limit: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """Raw rows of the file as (line number, cells padded to the header), blank rows skipped."""
    count = 0
    for block in iter_blocks(layout, SNIFF_BYTES if limit is not None else None):
        for item in parse_block(block, layout):
            if limit is not None and count >= limit:
                return
            count += 1
            yield item


class RowTyper:
    """Turns the raw cells of one row into a typed `SourceRecord` (picklable: import workers)."""

    def __init__(self, audience: Audience, layout: SourceLayout, default_region: str) -> None:
        self.audience = audience
        self.default_region = default_region
        self.email_column = audience.first_column(ColumnType.EMAIL)
        self.phone_column = audience.first_column(ColumnType.PHONE)
        self.category_column = "category" if "category" in audience.columns else None
        self.required = [n for n, c in audience.columns.items() if c.required and n != audience.key]
        self.key_index = layout.positions[audience.key]
        self.items = list(layout.positions.items())
        self._build()

    def _build(self) -> None:
        # (attribute, column index, converter): the per-row loop does no lookups
        self.plan: list[tuple[str, int, Callable[[str], Any]]] = [
            (name, index, converter(self.audience.columns[name], self.default_region))
            for name, index in self.items
        ]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["plan"]  # cached converters: rebuilt on the other side
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build()

    def values(self, row: int, cells: list[str]) -> tuple[dict[str, Any], list[RowProblem]]:
        """The typed attributes of a row with a key, and the problems of its bad values."""
        attributes: dict[str, Any] = {}
        problems: list[RowProblem] = []
        for name, index, convert in self.plan:
            raw = cells[index]
            if raw and not raw.isspace():
                try:
                    attributes[name] = convert(raw)
                    continue
                except ValueProblem as problem:  # keep the record, drop the bad value
                    problems.append(RowProblem(row, name, raw, problem.reason, problem.message))
            attributes[name] = None
        for name in self.required:
            if attributes.get(name) is None and not any(p.column == name for p in problems):
                problems.append(
                    RowProblem(
                        row, name, "", "missing_required", f"required column {name!r} is empty"
                    )
                )
        return attributes, problems

    def missing_key(self, row: int) -> RowProblem:
        return RowProblem(
            row, self.audience.key, "", "missing_key",
            f"the key column {self.audience.key!r} is empty",
        )  # fmt: skip

    def contact(self, attributes: dict[str, Any]) -> tuple[Any, Any, str | None]:
        """(email, phone, category) of typed attributes."""
        email = attributes.get(self.email_column) if self.email_column else None
        phone = attributes.get(self.phone_column) if self.phone_column else None
        category = attributes.get(self.category_column) if self.category_column else None
        return email, phone, str(category) if category is not None else None

    def type(self, row: int, cells: list[str]) -> SourceRecord:
        key = cells[self.key_index].strip()
        if not key:
            return SourceRecord(row, key, None, None, None, {}, [self.missing_key(row)], True)
        attributes, problems = self.values(row, cells)
        email, phone, category = self.contact(attributes)
        return SourceRecord(row, key, email, phone, category, attributes, problems)


def iter_source(
    layout: SourceLayout, audience: Audience, default_region: str, limit: int | None = None
) -> Iterator[SourceRecord]:
    """Typed records of the file, in file order; bad values become problems, not exceptions."""
    typer = RowTyper(audience, layout, default_region)
    for row, cells in iter_rows(layout, limit):
        yield typer.type(row, cells)


def read_source(
    root: Path, audience: Audience, default_region: str, limit: int | None = None
) -> Iterator[SourceRecord]:
    """Records of an audience's CSV, read straight from the workspace (no store needed)."""
    path = root / audience.source
    layout = inspect_source(path, audience, audience.source)
    return iter_source(layout, audience, default_region, limit)
