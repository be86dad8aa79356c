"""An Audience's CSV source as the definitions see it: its encoding, delimiter and header,
and the record attributes the header gives.

DESIGN §1: `columns:` only adds types, labels and header renames. The key column is a
text column without being listed, and every column of the file that no declared column
reads is kept as a text attribute, named after its header (`Code postal` → `code_postal`).

`validate` reads the header (and the first 64 KiB, to catch a wrong encoding) so that a
file the import could not read is a located error there; the import reads it the same
way. Standard library and the models only.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from campaignctl.errors import InputError
from campaignctl.spec.models import Audience, Column

SNIFF_BYTES = 64 * 1024
DELIMITERS = (";", ",", "\t", "|")
ENCODING_HINT = "save it as UTF-8, or set `encoding: cp1252` (Excel on Windows)"


class SourceError(InputError):
    """A source file that cannot be read as CSV text, at `line` (0: the whole file)."""

    def __init__(self, shown: str, line: int, what: str, hint: str) -> None:
        super().__init__(f"{shown}:{line}: {what}" if line else f"{shown}: {what}", hint=hint)
        self.file, self.line, self.what = shown, line, what


@dataclass(frozen=True)
class SourceHeader:
    encoding: str
    delimiter: str
    header: list[str]


def lines_ended(text: str | bytes) -> int:
    """Physical lines ended in `text` (\\n, \\r\\n or \\r, as the csv reader counts them)."""
    if isinstance(text, str):
        return text.count("\n") + text.count("\r") - text.count("\r\n")
    return text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n")


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


def read_header(path: Path, audience: Audience, shown: str) -> SourceHeader:
    """The file's encoding, delimiter and header; its first 64 KiB must decode.

    Raises SourceError naming the file (and the line of a byte the encoding rejects)."""
    if not path.is_file():
        raise SourceError(
            shown, 0, f"source file of audience {audience.name!r} not found",
            f"put the CSV there or change `source:` in the {audience.name!r} audience",
        )  # fmt: skip
    with path.open("rb") as handle:
        raw = handle.read(SNIFF_BYTES)
    if b"\x00" in raw and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SourceError(
            shown, 0, "this is not a CSV text file (it contains binary data)",
            "export the contacts as CSV (UTF-8) from your spreadsheet or CRM",
        )  # fmt: skip
    try:
        encoding = _detect_encoding(raw, audience.encoding)
        codecs.lookup(encoding)
    except LookupError:
        raise SourceError(
            shown, 0, f"unknown encoding {audience.encoding!r}",
            "set `encoding:` to utf-8, latin-1 or cp1252",
        ) from None  # fmt: skip
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if len(raw) == SNIFF_BYTES and exc.start >= len(raw) - 4:
            text = raw[: exc.start].decode(encoding)  # a character cut by the sniff window
        else:
            line = lines_ended(raw[: exc.start]) + 1
            what = f"the file is not valid {encoding.removesuffix('-sig')} text"
            raise SourceError(shown, line, what, ENCODING_HINT) from None
    first_line = text.splitlines()[0] if text else ""
    if not first_line.strip():
        raise SourceError(
            shown, 1, "the file is empty or starts with a blank line",
            "the first line must be the header with the column names",
        )  # fmt: skip
    delimiter = _detect_delimiter(first_line, audience.delimiter)
    header = [h.strip() for h in next(csv.reader([first_line], delimiter=delimiter))]
    return SourceHeader(encoding, delimiter, header)


def attribute_name(header: str) -> str:
    """The attribute name of a header that no declared column reads: lower case, ASCII
    letters, digits and underscores (`Nom de l'hôtel` → `nom_de_l_hotel`); "" when none."""
    ascii_text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return f"_{name}" if name[:1].isdigit() else name


@dataclass(frozen=True)
class SourceColumns:
    """What the header gives the records of an audience."""

    # every attribute, by name: the declared columns (the key among them, text when it is
    # not declared), then the header's other columns, as text
    columns: dict[str, Column]
    positions: dict[str, int]  # attribute -> column index in the file
    missing: list[str]  # declared columns (the key included) whose header is not in the file
    unkept: list[tuple[str, str]]  # header cells that give no attribute: (header, why)

    def missing_column(self, audience: Audience, name: str, header: list[str]) -> tuple[str, str]:
        """(message, hint) for a declared column whose header the file does not have."""
        wanted = self.columns[name].header or name
        close = difflib.get_close_matches(wanted, header, n=1)
        if not close:
            hint = f"the header is: {', '.join(header)}"
        elif name in audience.columns:
            hint = f"the header has {close[0]!r}: set `header: {close[0]!r}` on column {name!r}"
        else:  # the key, not listed
            rename = f"{name}: {{header: {close[0]!r}}}"
            hint = f"the header has {close[0]!r}: add `{rename}` under `columns:`"
        return f"column {wanted!r} of audience {audience.name!r} is not in the header", hint


def source_columns(audience: Audience, header: list[str]) -> SourceColumns:
    """Map a header onto the audience: declared columns by their header, the rest as text."""
    columns = dict(audience.columns)
    if audience.key not in columns:
        columns = {audience.key: Column(), **columns}
    positions: dict[str, int] = {}
    missing: list[str] = []
    for name, column in columns.items():
        wanted = column.header or name
        if wanted in header:
            positions[name] = header.index(wanted)
        else:
            missing.append(name)
    read = set(positions.values())
    unkept: list[tuple[str, str]] = []
    for index, text in enumerate(header):
        if index in read:
            continue
        name = attribute_name(text)
        if not name:
            unkept.append((text, f"column {index + 1} has no name that can be an attribute"))
        elif name in columns or name == "key":
            unkept.append((text, f"its attribute name {name!r} is already taken"))
        else:
            columns[name] = Column(header=text)
            positions[name] = index
    return SourceColumns(columns, positions, missing, unkept)
