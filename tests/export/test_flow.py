"""The seed 001 flow on the demo: a CRM appeal over three segments and two channels, locked,
pushed one cell, then a segment, then everything; a segment withdrawn; the status. Against
a real local HTTP receiver and a real CSV folder, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.export.conftest import CAMPAIGN, run
from tests.export.receiver import Answer, Receiver

# the lock of the demo's appeal on 2026-12-06: records per cell
CELLS = {
    ("renewing-soon", "email"): 6,
    ("renewing-soon", "sms"): 2,
    ("members-loyal", "email"): 72,
    ("members-loyal", "sms"): 3,
    ("members-new", "email"): 4,
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def push(root: Path, *args: str) -> dict:
    result = run(root, "export", "push", CAMPAIGN, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_push_is_refused_until_the_campaign_is_locked(crm: Path, receiver: Receiver) -> None:
    result = run(crm, "export", "push", CAMPAIGN)

    assert (result.exit_code, result.stderr) == (
        65,
        f"error: campaign '{CAMPAIGN}' is not locked: badges are transferred from a lock, so "
        "that the CRM gets the figures that were reviewed\n"
        f"  hint: run `campaignctl lock {CAMPAIGN}` first (`lock --refresh` recomputes the "
        "cells)\n",
    )
    assert receiver.requests == []
    assert not (crm / "exports").exists()


def test_push_a_cell_then_a_segment_then_everything(locked: Path, receiver: Receiver) -> None:
    # one cell: renewing-soon × email, to both systems
    cell = push(locked, "--segment", "renewing-soon", "--channel", "email")
    assert [(s["system"], s["sent"], s["failed"], s["already"]) for s in cell["systems"]] == [
        ("crm-fichier", 6, 0, 0),
        ("crm-adherents", 6, 0, 0),
    ]
    assert cell["transfer"] == 1 and cell["outcome"] == "done"
    drop = locked / cell["systems"][0]["file"]
    assert drop.name == f"{CAMPAIGN}.push.000001.csv"
    rows = read_csv(drop)
    assert list(rows[0]) == [
        "action", "record", "segment", "channel", "entity", "label", "appeal", "package",
        "date", "idempotency_key", "campaign", "transfer",
    ]  # fmt: skip
    assert {(r["segment"], r["channel"], r["package"], r["label"]) for r in rows} == {
        ("renewing-soon", "email", "COT27-EMAIL", "Appel cotisation 2027 — email")
    }
    assert len({r["record"] for r in rows}) == 6
    assert all(r["idempotency_key"].startswith(f"{CAMPAIGN}/crm-fichier/t1/r") for r in rows)
    hooked = list(receiver.pushed.values())
    assert len(hooked) == 6
    assert {(b["entity"], b["label"], json.dumps(b["fields"])) for b in hooked} == {
        (
            "badge",
            "Renouvellement urgent",
            '{"badge": "renouvellement-urgent", "priority": 1, "follow_up_call": true}',
        )
    }
    assert {b["record"] for b in hooked} == {r["record"] for r in rows}

    # a segment: members-loyal, both channels
    segment = push(locked, "--segment", "members-loyal")
    assert [(s["system"], s["sent"]) for s in segment["systems"]] == [
        ("crm-fichier", 75),
        ("crm-adherents", 75),
    ]
    sms_rows = [
        r for r in read_csv(locked / segment["systems"][0]["file"]) if r["channel"] == "sms"
    ]
    assert {r["package"] for r in sms_rows} == {"COT27-SMS"} and len(sms_rows) == 3

    # everything: only what is left goes
    rest = push(locked)
    assert [(s["system"], s["sent"], s["already"]) for s in rest["systems"]] == [
        ("crm-fichier", 6, 81),
        ("crm-adherents", 6, 81),
    ]
    assert len(receiver.pushed) == sum(CELLS.values())
    assert all(len(keys) == 1 for keys in receiver.keys_by_record().values())

    # again: nothing, and it says so
    again = run(locked, "export", "push", CAMPAIGN)
    assert (again.exit_code, again.stdout) == (
        0,
        "Nothing to transfer: 174 badge(s) already transferred.\n",
    )
    assert sorted(p.name for p in (locked / "exports" / "crm").iterdir()) == [
        f"{CAMPAIGN}.push.000001.csv",
        f"{CAMPAIGN}.push.000002.csv",
        f"{CAMPAIGN}.push.000003.csv",
    ]


def test_withdraw_a_segment_then_push_it_anew_under_new_keys(
    locked: Path, receiver: Receiver
) -> None:
    push(locked)
    first_keys = receiver.keys_by_record()

    refused = run(locked, "export", "withdraw", CAMPAIGN, "--segment", "members-new")
    assert refused.exit_code == 64
    assert "add --yes to confirm" in refused.stderr

    result = run(locked, "export", "withdraw", CAMPAIGN, "--segment", "members-new", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "crm-fichier (csv, exports/crm): 4 withdrawn → "
        f"exports/crm/{CAMPAIGN}.withdraw.000002.csv\n"
        "crm-adherents (webhook, " + receiver.url + "): 4 withdrawn\n"  # type: ignore[attr-defined]
    )
    withdrawn = read_csv(locked / "exports" / "crm" / f"{CAMPAIGN}.withdraw.000002.csv")
    assert {(r["action"], r["segment"]) for r in withdrawn} == {("withdraw", "members-new")}
    members_new = {r["record"] for r in withdrawn}
    assert receiver.keys_by_record("withdraw") == {k: first_keys[k] for k in members_new}

    status = json.loads(run(locked, "export", "status", CAMPAIGN, "--json").stdout)
    new_cell = next(c for c in status["cells"] if c["segment"] == "members-new")
    assert [
        (s["system"], s["sent"], s["withdrawn"], s["to_transfer"]) for s in new_cell["systems"]
    ] == [
        ("crm-fichier", 0, 4, 4),
        ("crm-adherents", 0, 4, 4),
    ]
    assert [(t["id"], t["action"], t["outcome"]) for t in status["transfers"]] == [
        (2, "withdraw", "done"),
        (1, "push", "done"),
    ]

    again = push(locked)
    assert [(s["system"], s["sent"], s["already"]) for s in again["systems"]] == [
        ("crm-fichier", 4, 83),
        ("crm-adherents", 4, 83),
    ]
    keys = receiver.keys_by_record()
    for record in members_new:  # a new transfer after a withdrawal: a new key
        assert len(keys[record]) == 2
        assert any("/t3/" in key for key in keys[record])
    assert all(len(keys[r]) == 1 for r in keys if r not in members_new)


def test_status_shows_each_cell_and_system(locked: Path, receiver: Receiver) -> None:
    push(locked, "--system", "crm-adherents", "--segment", "renewing-soon")

    result = run(locked, "export", "status", CAMPAIGN, "--json")

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["format_version"] == 1 and status["lock"] == 1
    table = {
        (c["segment"], c["channel"], s["system"]): (c["records"], s["to_transfer"], s["sent"])
        for c in status["cells"]
        for s in c["systems"]
    }
    assert table == {
        ("renewing-soon", "email", "crm-fichier"): (6, 6, 0),
        ("renewing-soon", "email", "crm-adherents"): (6, 0, 6),
        ("renewing-soon", "sms", "crm-fichier"): (2, 2, 0),
        ("renewing-soon", "sms", "crm-adherents"): (2, 0, 2),
        ("members-loyal", "email", "crm-fichier"): (72, 72, 0),
        ("members-loyal", "email", "crm-adherents"): (72, 72, 0),
        ("members-loyal", "sms", "crm-fichier"): (3, 3, 0),
        ("members-loyal", "sms", "crm-adherents"): (3, 3, 0),
        ("members-new", "email", "crm-fichier"): (4, 4, 0),
        ("members-new", "email", "crm-adherents"): (4, 4, 0),
        ("members-new", "sms", "crm-fichier"): (0, 0, 0),
        ("members-new", "sms", "crm-adherents"): (0, 0, 0),
    }
    text = run(locked, "export", "status", CAMPAIGN)
    assert text.exit_code == 0
    assert text.stdout.splitlines()[:4] == [
        f"{CAMPAIGN} (lock 1)",
        "renewing-soon × email: 6 record(s)",
        "  crm-fichier: Appel cotisation 2027 — email — 0 sent, 6 to transfer",
        "  crm-adherents: Renouvellement urgent — 6 sent, 0 to transfer "
        "(last pushed 2026-12-06 10:00)",
    ]
    assert text.stdout.splitlines()[-1] == (
        "transfer 1: push 2026-12-06 10:00 done (crm-adherents: 8 ok, 0 failed)"
    )


def test_a_badge_refused_is_reported_and_retried_under_its_key(
    locked: Path, receiver: Receiver
) -> None:
    receiver.reject = {"HOT-006": "unknown constituent"}
    receiver.script = [Answer(422, body={"error": "appeal COT27 is closed"})]

    result = run(locked, "export", "push", CAMPAIGN, "--system", "crm-adherents",
                 "--segment", "renewing-soon")  # fmt: skip

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("crm-adherents (webhook, http://127.0.0.1:")
    assert lines[0].endswith("): 0 transferred, 8 failed, 0 already transferred")
    assert '  failed: HOT-006: HTTP 422: {"error": "appeal COT27 is closed"}' in lines
    assert "error: 8 badge(s) were refused" in result.stderr
    assert receiver.pushed == {}

    retried = run(locked, "export", "push", CAMPAIGN, "--system", "crm-adherents",
                  "--segment", "renewing-soon", "--json")  # fmt: skip
    assert retried.exit_code == 1
    summary = json.loads(retried.stdout)["systems"][0]
    assert (summary["sent"], summary["failed"]) == (7, 1)
    assert summary["failures"] == [{"record": "HOT-006", "error": "unknown constituent"}]
    assert all("/t1/" in key for key in receiver.pushed)  # the keys of the first push

    receiver.reject = {}
    last = push(locked, "--system", "crm-adherents", "--segment", "renewing-soon")
    assert last["systems"][0]["sent"] == 1
    assert all(len(k) == 1 for k in receiver.keys_by_record().values())


# the demo's lock on 2026-12-20 against the one of 2026-12-06 (renewing-soon moved on):
LEFT_OUT = {"CAM-013", "CHH-007", "GIT-007", "GIT-011", "HOT-006", "HOT-032", "RES-015",
            "RES-030"}  # fmt: skip
MOVED = {  # record: (cell in the first lock, cell in the refreshed one)
    "CAM-005": ("members-new", "renewing-soon"),
    "CAM-017": ("members-new", "renewing-soon"),
    "ACT-019": ("members-loyal", "renewing-soon"),
    "RES-034": ("members-loyal", "renewing-soon"),
    "RES-043": ("members-loyal", "renewing-soon"),
}


def test_lock_refresh_then_push_withdraws_what_the_lock_left_out_or_moved(
    locked: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(locked)
    first_keys = receiver.keys_by_record()
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-12-20T10:00:00+01:00")  # renewing-soon moved
    refreshed = run(locked, "lock", CAMPAIGN, "--refresh")
    assert refreshed.exit_code == 0, refreshed.output
    assert "since the previous lock: +1 -8 recipient(s)" in refreshed.stdout
    receiver.reject = {"RES-034": "constituent locked"}  # its old badge cannot go yet
    before = json.loads(run(locked, "export", "status", CAMPAIGN, "--json").stdout)
    for system in ("crm-fichier", "crm-adherents"):
        entries = [s for c in before["cells"] for s in c["systems"] if s["system"] == system]
        assert sum(e["to_withdraw"] for e in entries) == len(LEFT_OUT) + len(MOVED)
        assert sum(e["to_transfer"] for e in entries) == 1 + len(MOVED)

    result = run(locked, "export", "push", CAMPAIGN)

    assert result.exit_code == 1, result.output
    drop = locked / "exports" / "crm"
    assert result.stdout.splitlines()[:2] == [
        "crm-fichier (csv, exports/crm): 6 transferred, 13 withdrawn (8 left out of the lock, "
        f"5 moved to another cell), 74 already transferred → exports/crm/{CAMPAIGN}.withdraw."
        f"000002.csv, exports/crm/{CAMPAIGN}.push.000002.csv",
        f"crm-adherents (webhook, {receiver.url}): 5 transferred, 12 withdrawn (8 left out of "  # type: ignore[attr-defined]
        "the lock, 5 moved to another cell), 1 still to withdraw, 1 failed, 74 already "
        "transferred",
    ]
    assert "  failed: RES-034: constituent locked" in result.stdout
    # the CSV drop: the old badges withdrawn under their keys, the moved records pushed anew
    withdrawn = read_csv(drop / f"{CAMPAIGN}.withdraw.000002.csv")
    assert {r["record"] for r in withdrawn} == LEFT_OUT | set(MOVED)
    assert {r["action"] for r in withdrawn} == {"withdraw"}
    assert all("/t1/" in r["idempotency_key"] for r in withdrawn)
    assert {r["record"]: r["segment"] for r in withdrawn if r["record"] in MOVED} == {
        record: cells[0] for record, cells in MOVED.items()
    }
    pushed = read_csv(drop / f"{CAMPAIGN}.push.000002.csv")
    assert {r["record"]: r["segment"] for r in pushed} == {
        "HOT-020": "renewing-soon",
        **{record: cells[1] for record, cells in MOVED.items()},
    }
    assert all("/t2/" in r["idempotency_key"] for r in pushed)
    # the webhook: the same, except RES-034, whose old badge the CRM refused to withdraw:
    # its new one waits
    assert {record: keys for record, keys in receiver.keys_by_record("withdraw").items()} == {
        record: first_keys[record] for record in (LEFT_OUT | set(MOVED)) - {"RES-034"}
    }
    second = {k: b for k, b in receiver.pushed.items() if "/t2/" in k}
    assert {b["record"]: b["segment"] for b in second.values()} == {
        "HOT-020": "renewing-soon",
        **{record: cells[1] for record, cells in MOVED.items() if record != "RES-034"},
    }

    receiver.reject = {}
    again = push(locked)
    hook = next(s for s in again["systems"] if s["system"] == "crm-adherents")
    assert (hook["to_withdraw"], hook["withdrawn"], hook["moved"], hook["sent"]) == (1, 1, 1, 1)
    assert receiver.keys_by_record("withdraw")["RES-034"] == first_keys["RES-034"]
    assert len(receiver.keys_by_record()["RES-034"]) == 2  # the old cell's key, the new one's
    files = next(s for s in again["systems"] if s["system"] == "crm-fichier")
    assert (files["to_withdraw"], files["to_send"]) == (0, 0)

    last = run(locked, "export", "push", CAMPAIGN)
    assert (last.exit_code, last.stdout) == (
        0,
        "Nothing to transfer: 160 badge(s) already transferred.\n",
    )
    after = json.loads(run(locked, "export", "status", CAMPAIGN, "--json").stdout)
    assert not [s for c in after["cells"] for s in c["systems"] if s["to_withdraw"]]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            (CAMPAIGN, "--segment", "members-neww"),
            64,
            f"error: --segment 'members-neww' is not one of campaign '{CAMPAIGN}''s segments "
            "(renewing-soon, members-loyal, members-new)\n  hint: did you mean 'members-new'?\n",
        ),
        (
            (CAMPAIGN, "--channel", "fax"),
            64,
            f"error: --channel 'fax' is not one of campaign '{CAMPAIGN}''s channels (email, "
            "sms)\n  hint: use one of email, sms\n",
        ),
        (
            (CAMPAIGN, "--system", "crm-adherent"),
            64,
            f"error: --system 'crm-adherent' is not one of campaign '{CAMPAIGN}''s systems "
            "(crm-fichier, crm-adherents)\n  hint: did you mean 'crm-adherents'?\n",
        ),
        (
            ("medias-2027",),
            65,
            "error: campaign 'medias-2027' has no `exports:`: it transfers nothing to a CRM\n"
            "  hint: add `exports: [{system: ..., entity: ..., label: ..., fields: {...}}]` to "
            "it (see README, CRM exports)\n",
        ),
    ],
)
def test_push_names_a_selector_the_campaign_does_not_have(
    locked: Path, receiver: Receiver, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(locked, "export", "push", *args)

    assert (result.exit_code, result.stderr) == (code, message)
    assert receiver.requests == []


def test_after_a_refresh_a_selected_push_withdraws_the_badges_of_its_cells_only(
    locked: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(locked, "--system", "crm-fichier")
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-12-20T10:00:00+01:00")
    assert run(locked, "lock", CAMPAIGN, "--refresh").exit_code == 0
    drop = locked / "exports" / "crm"

    # members-new: the badges whose old cell it is go; their new cell waits for its push
    first = push(locked, "--system", "crm-fichier", "--segment", "members-new")["systems"][0]
    assert (first["to_withdraw"], first["withdrawn"], first["moved"], first["sent"]) == (2, 2, 2, 0)
    assert {r["record"] for r in read_csv(drop / f"{CAMPAIGN}.withdraw.000002.csv")} == {
        record for record, cells in MOVED.items() if cells[0] == "members-new"
    }

    # renewing-soon: the records it lost, and those moved into it, then its new badges
    second = push(locked, "--system", "crm-fichier", "--segment", "renewing-soon")["systems"][0]
    moved_in = {r for r, cells in MOVED.items() if cells[0] != "members-new"}
    assert (second["left_out"], second["moved"]) == (len(LEFT_OUT), len(moved_in))
    assert {r["record"] for r in read_csv(drop / f"{CAMPAIGN}.withdraw.000003.csv")} == (
        LEFT_OUT | moved_in
    )
    assert {r["record"] for r in read_csv(drop / f"{CAMPAIGN}.push.000003.csv")} == {
        "HOT-020",
        *MOVED,
    }
    assert receiver.requests == []  # the webhook was not selected
