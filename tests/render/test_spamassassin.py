"""The scaffold's questionnaire email scored offline by SpamAssassin (no network tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from campaignctl.render import CampaignRenderer, Recipient, RecordData, RenderOptions
from campaignctl.spec.workspace import load_workspace

# Rules about the message's own construction (not about its content or the network).
STRUCTURE_RULE = re.compile(r"^(MIME_|MISSING_|INVALID_|HEADER_|FROM_|MSGID_|DATE_|__MIME)")


@pytest.mark.skipif(
    shutil.which("spamassassin") is None,
    reason="spamassassin is not installed (apt-get install spamassassin)",
)
def test_scaffold_email_scores_below_two_without_structure_rules(scaffold: Path) -> None:
    record = RecordData(
        "H001",
        {
            "nom": "Hôtel du Lac",
            "commune": "Val",
            "telephone": "+33450123456",
            "email": "reservation@hotel-du-lac.example",
            "opening_periods": [["2026-04-01", "2026-10-31"]],
        },
        "hotel",
    )
    renderer = CampaignRenderer(load_workspace(scaffold), "update-2027", RenderOptions())
    email = renderer.render_email(Recipient([record], email="reservation@hotel-du-lac.example"))
    result = subprocess.run(
        ["spamassassin", "-t", "-L", "--cf=score RDNS_NONE 0"],
        input=email.data,
        capture_output=True,
        timeout=120,
    )
    report = result.stdout.decode("utf-8", "replace")
    score = float(re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.M).group(1))
    rules = re.search(r"tests=([^\n]*(?:\n\t[^\n]*)*)", report).group(1)
    hits = [r.strip() for r in re.split(r"[,\s]+", rules) if r.strip() and r.strip() != "none"]
    assert score < 2.0, report
    assert [h for h in hits if STRUCTURE_RULE.match(h)] == [], report
