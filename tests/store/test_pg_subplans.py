"""PostgreSQL: no statement a command runs scans a whole table once per row.

`x IN (SELECT …)` in a CASE, an OR or under NOT is a subplan to PostgreSQL: hashed while
the subquery's rows fit in work_mem, else run again for every outer row. With 400,000
suppressions, `plan` of a million records ran for hours; an automation's `else:` branch
and `in_list: {ne: …}` did the same with big lists. Here the store runs with PostgreSQL's
smallest work_mem, so that a few thousand suppressions and list members are enough, and
every statement that `plan`, `lock`, `send` and the automation's tick run is EXPLAINed
as they ran it: none may hold a subplan that is not hashed over a scan of a whole table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import postgres_store_url
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.store.suppressions import address_hash

NOW = "2027-01-05T10:00:00+01:00"
LATER = "2027-01-05T11:00:00+01:00"
BULK = 3_000  # rows that a hashed subplan cannot hold in 64 kB
AUTOMATION = "bienvenue-adherents"


def ok(root: Path, *args: str, now: str = NOW, codes: tuple[int, ...] = (0,)) -> str:
    result = CliRunner().invoke(
        app, ["--workspace", str(root), *args], env={"CAMPAIGNCTL_NOW": now, "CI": "1"}
    )
    assert result.exit_code in codes, result.output
    return result.stdout


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Any:
    with postgres_store_url() as base:
        small = base + "%20-cwork_mem%3D64kB"
        monkeypatch.setenv("CAMPAIGNCTL_STORE", small)
        yield small


def _bulk(url: str) -> None:
    """BULK suppressions (one of them a demo member's address), and BULK more members of
    the list the automation's first step tests."""
    engine = sa.create_engine(url)
    at = datetime(2027, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        member = conn.execute(
            sa.text("SELECT email_normalized FROM record WHERE key = 'ACT-002'")
        ).scalar_one()
        addresses = [member] + [f"gone{i}@example.org" for i in range(BULK)]
        conn.execute(
            sa.text(
                "INSERT INTO suppression (channel, address, address_hash, reason, created_at) "
                "VALUES ('email', :a, :h, 'unsubscribed', :t)"
            ),
            [{"a": a, "h": address_hash(a), "t": at} for a in addresses],
        )
        # and as many forgotten ones (the hash alone is kept): tested by the hash
        conn.execute(
            sa.text(
                "INSERT INTO suppression (channel, address_hash, reason, created_at) "
                "VALUES ('email', :h, 'unsubscribed', :t)"
            ),
            [{"h": address_hash(f"forgotten{i}@example.org"), "t": at} for i in range(BULK)],
        )
        conn.execute(
            sa.text(
                "INSERT INTO record (audience, key, email, email_normalized, category, "
                "status, created_at, updated_at) VALUES ('bulk', :k, :e, :e, 'hotel', "
                "'active', :t, :t)"
            ),
            [{"k": f"BULK-{i}", "e": f"bulk{i}@example.org", "t": at} for i in range(BULK)],
        )
        conn.execute(
            sa.text(
                "INSERT INTO list_member (list_name, record_id, added_at, source) "
                "SELECT 'candidats-medias', id, :t, 'test' FROM record WHERE key LIKE 'BULK-%'"
            ),
            {"t": at},
        )
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


BIG = {"suppression", "list_member", "record"}  # the tables _bulk fills


def _whole_scans_per_row(plan: dict[str, Any], inside: str | None = None) -> list[str]:
    """The big tables a subplan that is not hashed scans whole (Seq Scan), in a plan tree.
    (Small ones may be: a scan of a few pages for each of a few campaigns is cheaper than
    an index.)"""
    found = []
    name = plan.get("Subplan Name") or ""
    if plan.get("Parent Relationship") == "SubPlan" and not name.startswith("hashed"):
        inside = name
    if inside and plan.get("Node Type") == "Seq Scan" and plan["Relation Name"] in BIG:
        found.append(f"{plan['Relation Name']} in {inside}")
    for child in plan.get("Plans", []):
        found.extend(_whole_scans_per_row(child, inside))
    return found


def test_no_command_scans_a_table_per_row_on_postgresql(demo: Path, url: str) -> None:
    # the automation's first step tests a big list under NOT (in_list: {ne: …})
    path = demo / "campaigns" / f"{AUTOMATION}.yaml"
    path.write_text(
        path.read_text().replace(
            "steps:\n",
            "steps:\n  - if: {in_list: {ne: candidats-medias}}\n"
            "    then: [{add_to_list: eductour-2027}]\n",
            1,
        ),
        "utf-8",
    )
    ok(demo, "audience", "import")
    _bulk(url)
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UPDATE")):
            plan = cursor.connection.execute(
                "EXPLAIN (FORMAT JSON) " + statement,
                parameters[0] if isinstance(parameters, list) and parameters else parameters,
            ).fetchone()[0]
            statements.append((statement, plan))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", capture)
    try:
        ok(demo, "apply", "--auto-approve")
        ok(demo, "plan")
        ok(demo, "lock", "rappel-renouvellement")
        ok(demo, "send", "mise-a-jour-2027", "--now", codes=(0, 75))  # 75: SMS held
        ok(demo, "list", "add", "nouveaux-adherents", "ACT-001", "ACT-002")
        for now in (NOW, LATER):  # 1: the demo's renewal reminders are missed waves
            ok(demo, "scheduler", "tick", now=now, codes=(0, 1))
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", capture)

    checked = " ".join(s for s, _ in statements)
    # they were EXPLAINed: suppressions by address and by hash, the list, the else branch
    assert "suppression.address_hash = encode(sha256(" in checked
    assert "list_member" in checked and "NOT (EXISTS" in checked
    bad = [
        (scan, statement)
        for statement, plan in statements
        for scan in _whole_scans_per_row(plan[0]["Plan"])
    ]
    assert not bad, json.dumps(sorted({scan: s[:300] for scan, s in bad}.items()), indent=1)
    # and the answers are right: the suppressed member was not sent the welcome
    sent = (demo / ".campaignctl" / "outbox" / AUTOMATION).glob("*.eml")
    assert not any(b"ACT-002" in p.read_bytes() or b"fenil" in p.read_bytes() for p in sent)
