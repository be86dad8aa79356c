"""The worker side of an import: what one block costs, and what it leaves behind."""

from __future__ import annotations

import gc
from pathlib import Path

from campaignctl.audience.source import RowTyper, inspect_source, iter_blocks
from campaignctl.audience.staging import Stager, Staging, mapping_salt, stage_one
from campaignctl.spec.workspace import load_workspace

HEADER = "id;nom;email;telephone;category;commune;tags;contract_end;opening_periods\n"


def test_staging_a_block_with_bad_phones_leaves_no_garbage_behind(
    scaffold: Path, tmp_path: Path
) -> None:
    """phonenumbers keeps the exception of a bad country code (+99) in a reference cycle
    that holds the stager's frame, and with it every row of the block. Workers pause the
    cyclic garbage collector, so those blocks were never freed: a gigabyte a worker on a
    million rows. Staging a block must free them."""
    rows = [f"H{i};Hôtel {i};h{i}@example.org;+99 123;hotel;Val;;;\n" for i in range(50)]
    (scaffold / "audiences" / "contacts.csv").write_text(HEADER + "".join(rows))
    ws = load_workspace(scaffold).require_valid()
    audience = ws.audiences["providers"]
    layout = inspect_source(scaffold / audience.source, audience)
    stager = Stager(layout, RowTyper(audience, layout, "FR"), mapping_salt(layout, audience, "FR"),
                    audience.name, known=False)  # fmt: skip
    staging = Staging(str(tmp_path))
    (block,) = iter_blocks(layout)
    gc.collect()
    gc.disable()  # as in a worker
    try:
        staged = stage_one(stager, staging, None, block)
        left = gc.collect()
    finally:
        gc.enable()
        staging.close()
    assert [problem[4] for problem in staged.problems] == ["invalid_phone"] * 50
    assert left == 0, left
