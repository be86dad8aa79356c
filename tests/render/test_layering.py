from __future__ import annotations

import subprocess
import sys


def test_render_never_imports_the_cli_stack() -> None:
    code = (
        "import sys, campaignctl.render, campaignctl.render.preview, campaignctl.render.records, "
        "campaignctl.spec.templates; "
        "print(sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
