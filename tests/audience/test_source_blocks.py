"""The import cuts the CSV into blocks of whole rows for its workers. Whatever the block
size, the rows (cells and line numbers) must be exactly those Python's csv module reads
from the whole file, and a file that ends inside a quoted value must be an error naming
the row, not a silent swallow of every row after the quote."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from campaignctl.audience.source import SourceLayout, iter_blocks, iter_rows, parse_block
from campaignctl.cli.main import app
from campaignctl.errors import InputError

HEADER = "id;nom;email;telephone;category;commune;tags;contract_end;opening_periods\n"
PIECES = ['"', '""', ";", "\n", "\r", "\r\n", "a", "é", " ", "A1", '"x;\ny"']


def _csv_rows(text: str, width: int) -> list[tuple[int, list[str]]]:
    """What csv.reader reads from the whole text: (line number, padded cells), blank
    rows skipped, header left out."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";")
    next(reader, None)
    rows = []
    for cells in reader:
        if "".join(cells).strip():
            rows.append((reader.line_num, cells + [""] * (width - len(cells))))
    return rows


def _ends_in_quotes(text: str) -> bool:
    """The csv module's reader states, reduced to: is the end inside a quoted field?"""
    state = "field start"
    for char in text:
        if state == "field start":
            state = "quoted" if char == '"' else "field start" if char in ";\r\n" else "field"
        elif state == "field":
            state = "field start" if char in ";\r\n" else "field"
        elif state == "quoted":
            state = "quote in quoted" if char == '"' else "quoted"
        else:  # a quote inside a quoted field: doubled, or the field's end
            state = "quoted" if char == '"' else "field start" if char in ";\r\n" else "field"
    return state == "quoted"


def _layout(path: Path, header: str = "h1;h2") -> SourceLayout:
    names = header.split(";")
    return SourceLayout(path, "utf-8-sig", ";", names, {}, path.name)


@settings(max_examples=400, deadline=None)
@given(body=st.lists(st.sampled_from(PIECES), max_size=40).map("".join), size=st.integers(1, 64))
@example(body='A1;"x\r\n"\r\nA2;b\r', size=3)
@example(body='A1;ab"c;"d""e"\n"', size=5)
def test_blocks_hold_the_rows_the_csv_module_reads(
    tmp_path_factory: pytest.TempPathFactory, body: str, size: int
) -> None:
    text = "h1;h2\n" + body
    path = tmp_path_factory.mktemp("blocks") / "f.csv"
    path.write_text(text, encoding="utf-8", newline="")
    layout = _layout(path)
    if _ends_in_quotes(text):
        with pytest.raises(InputError, match="never closed"):
            list(iter_blocks(layout, size))
        return
    blocks = list(iter_blocks(layout, size))
    assert "".join(b.text for b in blocks) == text
    rows = [row for block in blocks for row in parse_block(block, layout)]
    assert rows == _csv_rows(text, 2)
    assert list(iter_rows(layout)) == rows


def test_an_unclosed_quote_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('h1;h2\nA1;ok\nA2;"Hôtel du Lac;x\nA3;y\n' + "A4;z\n" * 50_000)
    with pytest.raises(InputError) as caught:
        list(iter_blocks(_layout(path), 4096))
    assert caught.value.message == "f.csv:3: a quoted value that starts on this row is never closed"
    assert caught.value.exit_code == 65


def test_a_bad_byte_mid_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    good = "".join(f"A{i};Hôtel {i}\n" for i in range(2, 30_000))
    path.write_bytes(("h1;h2\n" + good).encode() + b"B1;Caf\xe9\n" + b"B2;ok\n")
    with pytest.raises(InputError) as caught:
        list(iter_blocks(_layout(path), 4096))
    assert caught.value.message == "f.csv:30000: the file is not valid utf-8 text"
    assert "cp1252" in (caught.value.hint or "")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252"])
def test_line_endings_and_encodings_give_the_same_rows(
    tmp_path: Path, newline: str, encoding: str
) -> None:
    lines = ["h1;h2", 'A1;"Hôtel;\ndu Lac"', "", "A2;Gîte", ";", "A3;x"]
    path = tmp_path / "f.csv"
    path.write_bytes("\n".join(lines).replace("\n", newline).encode(encoding))
    layout = SourceLayout(path, encoding, ";", ["h1", "h2"], {}, "f.csv")
    expected = [(3, ["A1", f"Hôtel;{newline}du Lac"]), (5, ["A2", "Gîte"]), (7, ["A3", "x"])]
    for size in (2, 7, 1 << 20):
        assert [r for b in iter_blocks(layout, size) for r in parse_block(b, layout)] == expected


def _write(root: Path, body: bytes) -> None:
    (root / "audiences" / "contacts.csv").write_bytes(HEADER.encode() + body)


def test_the_cli_reports_broken_files_with_their_line_and_exit_65(scaffold: Path) -> None:
    runner = CliRunner()
    _write(scaffold, b'A1;"Chez Paul;a@b.fr;;hotel;Val;;;\nA2;Ok;c@d.fr;;hotel;Val;;;\n')
    result = runner.invoke(app, ["-w", str(scaffold), "audience", "import"])
    assert result.exit_code == 65, result.output
    assert "audiences/contacts.csv:2: a quoted value that starts on this row" in result.output
    assert "Traceback" not in result.output

    _write(scaffold, b"A1;Caf\xe9;a@b.fr;;hotel;Val;;;\n")
    result = runner.invoke(app, ["-w", str(scaffold), "audience", "import"])
    assert result.exit_code == 65, result.output
    assert "audiences/contacts.csv:2: the file is not valid utf-8 text" in result.output
    assert runner.invoke(app, ["-w", str(scaffold), "audience", "list"]).exit_code == 0


@pytest.mark.parametrize(
    ("cell", "size"),
    [
        ('"' + "x" * (10 << 20) + '"', "10,485,760 characters; "),  # quoted, and closed
        ('"' + 'x""' * (4 << 20) + '"', "12,582,912 characters; "),  # with doubled quotes
        ("x" * (10 << 20), ""),  # a line that never ends
    ],
)
def test_a_huge_cell_is_too_large_not_an_unclosed_quote(
    tmp_path: Path, cell: str, size: str
) -> None:
    """A 10 MB cell was reported as a quoted value never closed."""
    path = tmp_path / "f.csv"
    path.write_text(f"h1;h2\nA1;ok\nA2;{cell}\nA3;z\n" + "A4;z\n" * 1_000)
    with pytest.raises(InputError) as caught:
        list(iter_blocks(_layout(path), 1 << 18))
    assert caught.value.message == (
        f"f.csv:3: a cell of this row is too large ({size}at most 131,072 characters)"
    )


def test_a_cell_over_the_csv_limit_names_the_row_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('h1;h2\nA1;ok\nA2;"' + "x\n" * 100_000 + '"\nA3;z\n')
    layout = _layout(path)
    with pytest.raises(InputError) as caught:
        [row for block in iter_blocks(layout) for row in parse_block(block, layout)]
    assert caught.value.message == (
        "f.csv:3: a cell of this row is too large (at most 131,072 characters)"
    )
