"""Reading an Audience's CSV source: dialect detection, header mapping, typed records.

Streams the file (never loads it whole). Each row becomes a `SourceRecord` with
its typed attributes and the problems of its bad values; a row whose key is
missing is returned with `rejected` set, so callers can count and report it
without aborting the read.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from campaignctl.audience.values import ValueProblem, converter
from campaignctl.errors import InputError
from campaignctl.spec.models import Audience, Column, ColumnType
from campaignctl.spec.sources import (
    ENCODING_HINT,
    SNIFF_BYTES,
    lines_ended,
    read_header,
    source_columns,
)

# record.key is VARCHAR(200) (store/tables.py): PostgreSQL refuses a longer key, so the
# import leaves such a row out, counted, on both stores
KEY_MAX_LENGTH = 200
BLOCK_CHARS = 1 << 18  # the text of whole rows handed to an import worker at a time: a
# quarter of a megabyte (about 2,500 rows) keeps a worker under 60 MB, no slower than more
MAX_ROW_CHARS = 8 << 20  # a row unfinished after this: a quote never closed, or a cell too large


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
    columns: dict[str, Column] = field(default_factory=dict)  # every attribute's column


def inspect_source(path: Path, audience: Audience, display: str | None = None) -> SourceLayout:
    """Open the file far enough to know its encoding, delimiter and header; map the header
    onto the audience (every column is an attribute; the declared ones must be there)."""
    shown = display or str(path)
    head = read_header(path, audience, shown)
    mapped = source_columns(audience, head.header)
    if mapped.missing:
        message, hint = mapped.missing_column(audience, mapped.missing[0], head.header)
        others = [repr(mapped.columns[n].header or n) for n in mapped.missing[1:]]
        raise InputError(
            f"{shown}:1: {message}" + (f" (nor {', '.join(others)})" if others else ""),
            hint=hint,
        )
    return SourceLayout(
        path, head.encoding, head.delimiter, head.header, mapped.positions, shown, mapped.columns
    )


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
    d, field = re.escape(delimiter), _field(delimiter)
    row = rf"{field}(?:{d}{field})*+"
    return re.compile(rf"(?:{row}(?:\r\n|\n|\r))*+"), re.compile(row)


def _field(delimiter: str) -> str:
    """One field, quoted or not, as the csv module reads it (see `_row_patterns`)."""
    d = re.escape(delimiter)
    return rf'(?:"(?:[^"]|"")*+"[^{d}\r\n]*+|[^"{d}\r\n][^{d}\r\n]*+|)'


@lru_cache(maxsize=16)
def _open_value(delimiter: str) -> re.Pattern[str]:
    """The start of a row up to the opening quote of a quoted value that does not close."""
    return re.compile(rf'(?:{_field(delimiter)}{re.escape(delimiter)})*+"')


_QUOTED = re.compile(r'(?:[^"]|"")*+')  # the inside of a quoted value, up to a lone quote


def _texts(handle: Any, decoder: Any, size: int) -> Iterator[tuple[str, bool]]:
    """The file's text, read `size` bytes at a time: (text, end of file)."""
    while True:
        data = handle.read(size)
        yield decoder.decode(data, final=not data), not data
        if not data:
            return


def iter_blocks(layout: SourceLayout, size: int | None = None) -> Iterator[Block]:
    """The file as blocks of about `size` characters (BLOCK_CHARS) that end where a row ends.

    Streams the file. Undecodable bytes, an unclosed quote and a cell too large are errors
    naming the line (an unclosed quote would swallow every row after it into one value).
    """
    size = size or BLOCK_CHARS
    complete, last = _row_patterns(layout.delimiter)
    decoder = codecs.getincrementaldecoder(layout.encoding)()
    buffer, line, header = "", 0, True
    with layout.path.open("rb") as handle:
        texts = _texts(handle, decoder, size)
        while True:
            try:
                text, end_of_file = next(texts)
            except UnicodeDecodeError as exc:
                at = line + lines_ended(buffer) + lines_ended(exc.object[: exc.start]) + 1
                encoding = layout.encoding.removesuffix("-sig")
                raise InputError(
                    f"{layout.shown}:{at}: the file is not valid {encoding} text",
                    hint=ENCODING_HINT,
                ) from None
            buffer += text
            # a final \r may be the first half of \r\n: wait for the next read
            stop = len(buffer) - (not end_of_file and buffer.endswith("\r"))
            cut = complete.match(buffer, 0, stop).end()
            if end_of_file and cut < len(buffer):
                if last.fullmatch(buffer, cut) is None:
                    raise _unclosed_quote(layout, line + lines_ended(buffer[:cut]) + 1)
                cut = len(buffer)
            if cut:
                text, buffer = buffer[:cut], buffer[cut:]
                yield Block(line, text, header)
                line, header = line + lines_ended(text), False
            elif len(buffer) > MAX_ROW_CHARS:
                raise _row_too_long(layout, buffer, texts, line + 1)
            if end_of_file:
                return


def _row_too_long(
    layout: SourceLayout, row: str, texts: Iterator[tuple[str, bool]], line: int
) -> InputError:
    """The error for a row still unfinished after MAX_ROW_CHARS: a quoted value that never
    closes, or a cell too large. Reads on to the closing quote (keeping nothing) to tell."""
    opened = _open_value(layout.delimiter).match(row)
    if opened is None:  # no quote open: one line of that length
        return _cell_too_large(layout, line)
    value, inside = len(row) - opened.end(), row[opened.end() :]
    try:
        while True:
            end = _QUOTED.match(inside).end()  # inside[end], if any, is a lone quote
            if end < len(inside) - 1:
                return _cell_too_large(layout, line, value - len(inside) + end)
            text, end_of_file = next(texts)
            if end == len(inside) - 1 and not text.startswith('"'):
                return _cell_too_large(layout, line, value - len(inside) + end)
            if end_of_file:
                return _unclosed_quote(layout, line)
            inside = inside[end:] + text  # from the quote that may be the first of two
            value += len(text)
    except UnicodeDecodeError:
        return _cell_too_large(layout, line)


def _unclosed_quote(layout: SourceLayout, line: int) -> InputError:
    return InputError(
        f"{layout.shown}:{line}: a quoted value that starts on this row is never closed",
        hint='close the quote; a quote inside a quoted value is written twice ("")',
    )


def _cell_too_large(layout: SourceLayout, line: int, size: int | None = None) -> InputError:
    """A cell over the csv module's limit; `size`, when known, its length in characters."""
    limit = f"at most {csv.field_size_limit():,} characters"
    return InputError(
        f"{layout.shown}:{line}: a cell of this row is too large "
        + (f"({size:,} characters; {limit})" if size else f"({limit})"),
        hint="a value this long is not a contact's: shorten it or leave it out of the export",
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
    ended = reader.line_num  # the last line of the previous row
    try:
        for cells in reader:
            ended = reader.line_num
            first = cells[0] if cells else ""
            if (not first or first.isspace()) and not "".join(cells).strip():
                continue  # no cells, or only blank ones
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            rows.append((line + ended, cells))
    except csv.Error:  # a value over the csv module's field size limit
        raise _cell_too_large(layout, line + ended + 1) from None
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
        self.columns = layout.columns  # every attribute, the header's undeclared ones included
        self.default_region = default_region
        self.email_column = audience.first_column(ColumnType.EMAIL)
        self.phone_column = audience.first_column(ColumnType.PHONE)
        self.category_column = "category" if "category" in self.columns else None
        self.required = [n for n, c in self.columns.items() if c.required and n != audience.key]
        self.key_index = layout.positions[audience.key]
        self.items = list(layout.positions.items())
        self._build()

    def _build(self) -> None:
        # (attribute, column index, converter): the per-row loop does no lookups
        self.plan: list[tuple[str, int, Callable[[str], Any]]] = [
            (name, index, converter(self.columns[name], self.default_region))
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
                        row, name, "", "missing_required", "empty, but the column is required"
                    )
                )
        return attributes, problems

    def missing_key(self, row: int) -> RowProblem:
        return RowProblem(
            row, self.audience.key, "", "missing_key",
            "the key is empty: the row is left out",
        )  # fmt: skip

    def key_problem(self, row: int, key: str) -> RowProblem | None:
        """Why the row's key cannot identify a record (the row is then left out), or None."""
        if not key:
            return self.missing_key(row)
        if len(key) > KEY_MAX_LENGTH:
            return RowProblem(
                row, self.audience.key, key[:40] + "…", "key_too_long",
                f"the key has {len(key)} characters, more than the {KEY_MAX_LENGTH} a record "
                "key may have: the row is left out",
            )  # fmt: skip
        return None

    def contact(self, attributes: dict[str, Any]) -> tuple[Any, Any, str | None]:
        """(email, phone, category) of typed attributes."""
        email = attributes.get(self.email_column) if self.email_column else None
        phone = attributes.get(self.phone_column) if self.phone_column else None
        category = attributes.get(self.category_column) if self.category_column else None
        return email, phone, str(category) if category is not None else None

    def type(self, row: int, cells: list[str]) -> SourceRecord:
        key = cells[self.key_index].strip()
        problem = self.key_problem(row, key)
        if problem is not None:
            return SourceRecord(row, key, None, None, None, {}, [problem], True)
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
    path: Path, audience: Audience, default_region: str, limit: int | None = None
) -> Iterator[SourceRecord]:
    """Records of an audience's CSV file (`Workspace.audience_source`), read straight from
    the workspace (no store needed)."""
    layout = inspect_source(path, audience, audience.source)
    return iter_source(layout, audience, default_region, limit)
