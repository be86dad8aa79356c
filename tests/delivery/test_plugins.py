"""A third-party transport, installed as a real distribution with entry-point metadata.

The plugin below is written to a folder with its `.dist-info` (METADATA and
entry_points.txt, as pip leaves them), put on the path of a real `campaignctl`
process: `importlib.metadata` finds it as it finds any installed package. A
workspace then names it in `campaignctl.yaml`, `validate` accepts it, and `send`
delivers the demo's emails through it. Unknown names are located errors that list
the installed transports; a broken plugin is named, not a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.delivery.sendkit import RUN_CLI

CAMPAIGN = "mise-a-jour-2027"
MORNING = "2026-11-23T10:00:00+01:00"  # a Monday, outside the demo's SMS quiet hours

PLUGIN = '''
"""campaignctl-pigeon: email by carrier pigeon (a log file of what it carried)."""

from __future__ import annotations

from campaignctl.delivery.transport import DeliveryOutcome, DeliveryStatus, TransportBase
from campaignctl.enums import Channel


class PigeonTransport(TransportBase):
    name = "pigeon"
    channel = Channel.EMAIL

    def __init__(self, folder):
        self.log = folder / "pigeon.log"

    async def open(self):
        self.log.parent.mkdir(parents=True, exist_ok=True)

    async def send_many(self, messages):
        with self.log.open("a", encoding="utf-8") as log:
            for m in messages:
                log.write(f"{m.message_id} {' '.join(m.recipients)}\\n")
        return [DeliveryOutcome(m.message_id, DeliveryStatus.SENT, reply="250 coo") for m in messages]


def register(registry):
    registry.register(Channel.EMAIL, "pigeon", lambda settings: PigeonTransport(settings.outbox_dir))
'''


def install(site: Path, name: str, module: str, source: str, target: str) -> None:
    """`name` 1.0 as pip installs it: the module, and a .dist-info with its entry point."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[campaignctl.transports]\n{target}\n", encoding="utf-8"
    )


def campaignctl(root: Path, site: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CAMPAIGNCTL_NOW": MORNING,
        "CAMPAIGNCTL_SECRET": "a-test-secret",  # not the file transport: links are signed
        "CI": "1",
    }
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, "--workspace", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def use_transport(root: Path, name: str) -> None:
    config = root / "campaignctl.yaml"
    text = config.read_text(encoding="utf-8")
    old = "    transport: file                           # writes .eml files"
    assert old in text
    config.write_text(text.replace(old, f"    transport: {name}  # writes", 1), encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    install(
        folder,
        "campaignctl-pigeon",
        "campaignctl_pigeon",
        PLUGIN,
        "pigeon = campaignctl_pigeon:register",
    )
    return folder


def test_a_plugin_transport_named_in_the_workspace_validates_and_sends(
    demo: Path, site: Path, backend: str
) -> None:
    use_transport(demo, "pigeon")

    valid = campaignctl(demo, site, "validate")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    for args in (["audience", "import"], ["apply", CAMPAIGN, "--auto-approve"], ["lock", CAMPAIGN]):
        done = campaignctl(demo, site, *args)
        assert done.returncode == 0, (args, done.stderr)
    sent = campaignctl(demo, site, "send", CAMPAIGN, "--now")

    assert sent.returncode == 0, sent.stderr
    assert "154 sent, 0 failed" in sent.stderr
    carried = (demo / ".campaignctl" / "outbox" / CAMPAIGN / "pigeon.log").read_text().splitlines()
    assert len(carried) == len({line.split()[0] for line in carried}) == 145  # once each
    assert not list((demo / ".campaignctl" / "outbox" / CAMPAIGN).glob("*.eml"))


def test_an_unknown_transport_is_located_lists_the_installed_ones_and_suggests(
    demo: Path, site: Path
) -> None:
    use_transport(demo, "pigeonn")

    result = campaignctl(demo, site, "validate")

    assert result.returncode == 65
    assert result.stdout.splitlines()[:2] == [
        "campaignctl.yaml:19:16: error[unknown-transport]: no email transport named 'pigeonn' "
        "is installed (installed: file, pigeon, smtp)",
        "  hint: did you mean 'pigeon'?",
    ]


def test_a_plugin_transport_without_its_package_says_how_to_get_it(demo: Path) -> None:
    use_transport(demo, "pigeon")

    result = campaignctl(demo, None, "validate")

    assert result.returncode == 65
    assert result.stdout.splitlines()[:2] == [
        "campaignctl.yaml:19:16: error[unknown-transport]: no email transport named 'pigeon' "
        "is installed (installed: file, smtp)",
        "  hint: install the package that provides it (it registers 'pigeon' in the entry "
        "point group campaignctl.transports), or use one of the installed transports",
    ]
    sent = campaignctl(demo, None, "send", CAMPAIGN, "--now")
    assert sent.returncode == 65, sent.stderr  # refused before anything is stored
    assert "no email transport named 'pigeon' is installed" in sent.stderr


def test_a_broken_plugin_is_named_with_its_package_not_a_traceback(
    demo: Path, tmp_path: Path
) -> None:
    site = tmp_path / "broken"
    install(
        site,
        "campaignctl-owl",
        "campaignctl_owl",
        "import owl_wings\n",
        "owl = campaignctl_owl:register",
    )
    use_transport(demo, "owl")

    result = campaignctl(demo, site, "validate")

    assert result.returncode == 64
    assert result.stderr == (
        "error: the transport plugin 'owl' (campaignctl-owl 1.0, entry point "
        "campaignctl_owl:register in group campaignctl.transports) cannot be loaded: "
        "ModuleNotFoundError: No module named 'owl_wings'\n"
        "  hint: reinstall that package, or uninstall it if you no longer use it\n"
    )
