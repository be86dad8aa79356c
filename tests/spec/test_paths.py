"""Every file path a definition names stays inside its folder of the workspace (issue 17).

A hostile workspace (the demo with one path of each kind pointing outside: absolute,
`..`, a symbolic link to a file, a symbolic link to a folder, a link inside the
workspace that leaves its folder) is refused by `validate` with each path located, by
`send` and `preview` (nothing read, nothing written), by the Jinja loader, and again at
the time a file is read, when a link changed after the definitions were checked.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaignctl.cli.main import app
from campaignctl.errors import SpecError
from campaignctl.render.preview import build_preview
from campaignctl.spec.workspace import load_workspace
from tests.delivery.locking import locked_demo

SECRET = "SMTP_PASSWORD=leaked-if-you-read-this-7f3a"
CAMPAIGN = "appel-cotisation-2027"


def run(root: Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(root), *args])


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files outside the workspace that a definition must never reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    for name in ("secret.txt", "x.j2", "contacts.csv"):
        (folder / name).write_text(f"{SECRET}\n", encoding="utf-8")
    (folder / "campaign.yaml").write_text(
        f"kind: Campaign\nname: leak\n{SECRET.replace('=', ': ')}\n", encoding="utf-8"
    )
    return folder.resolve()


@pytest.fixture
def hostile(demo: Path, outside: Path) -> Path:
    """The demo with every kind of path leading out of where it belongs."""
    (demo / ".env").write_text(f"{SECRET}\n", encoding="utf-8")
    os.symlink(outside / "secret.txt", demo / "documents" / "linked.txt")
    os.symlink(outside, demo / "documents" / "outdir")
    os.symlink("../.env", demo / "documents" / "dotenv")
    edit(
        demo,
        "campaigns/appel-cotisation-2027.yaml",
        "  template: appel-cotisation\n",
        "  template: appel-cotisation\n  attachments: [/proc/self/environ, ../../../../etc/passwd,"
        " linked.txt, outdir/secret.txt, dotenv]\n",
    )
    edit(demo, "campaignctl.yaml", "logo: documents/logo.png", "logo: /etc/passwd")
    edit(
        demo,
        "campaignctl.yaml",
        "signature: templates/signature.html.j2",
        "signature: ../../../../../proc/self/environ",
    )
    edit(demo, "campaignctl.yaml", "path: exports/crm", "path: ../crm-drop")
    edit(
        demo,
        "audiences/providers.audience.yaml",
        "source: audiences/contacts.csv",
        "source: audiences/../../outside/contacts.csv",
    )
    edit(demo, "campaigns/medias-2027.yaml", "template: medias", "template: layouts/../../x")
    edit(
        demo,
        "campaigns/charte-qualite-2027.yaml",
        "path: guide-partenaire-2027.txt",
        "path: ../campaignctl.yaml",
    )
    os.symlink(outside / "secret.txt", demo / "templates" / "evil.txt.j2")
    os.symlink(outside, demo / "templates" / "shared")
    (demo / "templates" / "inc.txt.j2").write_text(
        'Bonjour\n{% include "shared/x.j2" %}\n{% include "../../outside/x.j2" %}\n',
        encoding="utf-8",
    )
    os.symlink(outside / "campaign.yaml", demo / "campaigns" / "linked.yaml")
    return demo


HINT_DOCUMENTS = (
    "  hint: write a path relative to documents/ that stays inside it; copy the file into "
    "documents/ rather than linking to it from outside"
)
HINT_TEMPLATES = (
    "  hint: write a path relative to templates/ that stays inside it; copy the file into "
    "templates/ rather than linking to it from outside"
)


def hint_root(folder: str) -> str:
    return (
        f"  hint: write a path relative to the workspace root, inside {folder}; copy the file "
        f"into {folder} rather than linking to it from outside"
    )


def expected_diagnostics(outside: Path) -> list[str]:
    return [
        "audiences/providers.audience.yaml:8:9: error[unsafe-path]: source "
        "'audiences/../../outside/contacts.csv' climbs out of audiences/",
        hint_root("audiences/"),
        "campaignctl.yaml:10:9: error[unsafe-path]: organization.logo '/etc/passwd' is an "
        "absolute path: it must stay inside documents/",
        hint_root("documents/"),
        "campaignctl.yaml:13:14: error[unsafe-path]: organization.signature "
        "'../../../../../proc/self/environ' climbs out of templates/",
        hint_root("templates/"),
        "campaignctl.yaml:62:11: error[unsafe-path]: systems.crm-fichier.path '../crm-drop' "
        "climbs out of the workspace",
        "  hint: write a path relative to the workspace that stays inside it; copy the file "
        "into the workspace rather than linking to it from outside",
        "campaigns/appel-cotisation-2027.yaml:20:17: error[unsafe-path]: attachment "
        "'/proc/self/environ' is an absolute path: it must stay inside documents/",
        HINT_DOCUMENTS,
        "campaigns/appel-cotisation-2027.yaml:20:37: error[unsafe-path]: attachment "
        "'../../../../etc/passwd' climbs out of documents/",
        HINT_DOCUMENTS,
        "campaigns/appel-cotisation-2027.yaml:20:61: error[unsafe-path]: attachment "
        f"'linked.txt' leads out of documents/ through a symbolic link (to {outside}/secret.txt)",
        HINT_DOCUMENTS,
        "campaigns/appel-cotisation-2027.yaml:20:73: error[unsafe-path]: attachment "
        "'outdir/secret.txt' leads out of documents/ through a symbolic link "
        f"(to {outside}/secret.txt)",
        HINT_DOCUMENTS,
        "campaigns/appel-cotisation-2027.yaml:20:92: error[unsafe-path]: attachment 'dotenv' "
        f"leads out of documents/ through a symbolic link (to {outside.parent}/demo/.env)",
        HINT_DOCUMENTS,
        "campaigns/charte-qualite-2027.yaml:19:11: error[unsafe-path]: document "
        "'../campaignctl.yaml' climbs out of documents/",
        HINT_DOCUMENTS,
        "campaigns/linked.yaml:1:1: error[unsafe-path]: definition file 'campaigns/linked.yaml' "
        f"leads out of campaigns/ through a symbolic link (to {outside}/campaign.yaml)",
        hint_root("campaigns/"),
        "campaigns/medias-2027.yaml:21:13: error[unsafe-path]: template "
        "'layouts/../../x' climbs out of templates/",
        HINT_TEMPLATES,
        "templates/evil.txt.j2:1:1: error[unsafe-path]: template 'evil.txt.j2' leads out of "
        f"templates/ through a symbolic link (to {outside}/secret.txt)",
        HINT_TEMPLATES,
        "templates/inc.txt.j2:2:13: error[unsafe-path]: template 'shared/x.j2' leads out of "
        f"templates/ through a symbolic link (to {outside}/x.j2)",
        HINT_TEMPLATES,
        "templates/inc.txt.j2:3:13: error[unsafe-path]: template '../../outside/x.j2' climbs "
        "out of templates/",
        HINT_TEMPLATES,
    ]


def test_validate_reports_every_unsafe_path_with_its_location(hostile: Path, outside: Path) -> None:
    result = run(hostile, "validate")

    assert result.exit_code == 65, result.output
    assert result.stdout.splitlines() == expected_diagnostics(outside)
    assert result.stderr == (
        "Checked 29 file(s) (1 Audience, 11 Segments, 2 Questionnaires, 8 Campaigns, 5 Lists; "
        "26 template(s)): 15 error(s), 0 warning(s).\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ("preview", CAMPAIGN, "--format", "eml"),
        ("preview", "mise-a-jour-2027", "--format", "html"),
        ("send", CAMPAIGN, "--now"),
        ("plan",),
        ("lock", CAMPAIGN),
    ],
    ids=" ".join,
)
def test_commands_refuse_a_workspace_with_unsafe_paths_and_read_nothing(
    hostile: Path, outside: Path, command: tuple[str, ...]
) -> None:
    result = run(hostile, *command)

    assert result.exit_code == 65, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        *expected_diagnostics(outside),
        "error: 15 error(s) in the workspace definitions",
    ]
    assert SECRET not in result.output
    assert not (hostile / ".campaignctl" / "outbox").exists()


def test_validate_accepts_links_that_stay_inside_their_folder(demo: Path) -> None:
    os.symlink("guide-partenaire-2027.txt", demo / "documents" / "latest.txt")
    (demo / "documents" / "2027").mkdir()
    os.symlink("../bareme-taxe-sejour-2027.txt", demo / "documents" / "2027" / "bareme.txt")
    os.symlink("appel-cotisation.txt.j2", demo / "templates" / "alias.txt.j2")
    edit(
        demo,
        "campaigns/appel-cotisation-2027.yaml",
        "  template: appel-cotisation\n",
        "  template: appel-cotisation\n  attachments: [latest.txt, 2027/bareme.txt]\n",
    )

    assert run(demo, "validate").exit_code == 0
    preview = run(demo, "preview", CAMPAIGN, "--format", "eml")

    assert preview.exit_code == 0, preview.output
    assert 'filename="latest.txt"' in preview.stdout
    assert 'filename="bareme.txt"' in preview.stdout
    guide = (demo / "documents" / "guide-partenaire-2027.txt").read_bytes()
    assert base64.b64encode(guide[:57]).decode() in preview.stdout


# ----------------------------------------------------------------------------- at read time
# The definitions were valid when loaded; a link put in place afterwards (the window
# between `validate` and a long send, or a library user who never validated) is refused
# when the file is read, with the location of the value that names it.


def _swap_for_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.symlink(target, path)


def _attach(root: Path, *names: str) -> None:
    edit(
        root,
        "campaigns/appel-cotisation-2027.yaml",
        "  template: appel-cotisation\n",
        f"  template: appel-cotisation\n  attachments: [{', '.join(names)}]\n",
    )


SWAPS = {
    # kind: (what to link out after loading, the refusal expected)
    "attachment file": (
        "documents/guide-partenaire-2027.txt",
        "campaigns/appel-cotisation-2027.yaml:20:17: error[unsafe-path]: attachment "
        "'guide-partenaire-2027.txt' leads out of documents/ through a symbolic link "
        "(to {outside}/guide-partenaire-2027.txt)",
    ),
    "attachment in a linked folder": (
        "documents/2027",
        "campaigns/appel-cotisation-2027.yaml:20:44: error[unsafe-path]: attachment "
        "'2027/bareme.txt' leads out of documents/ through a symbolic link "
        "(to {outside}/2027/bareme.txt)",
    ),
    "logo": (
        "documents/logo.png",
        "campaignctl.yaml:10:9: error[unsafe-path]: organization.logo 'documents/logo.png' "
        "leads out of documents/ through a symbolic link (to {outside}/logo.png)",
    ),
    "signature": (
        "templates/signature.html.j2",
        # refused where the layout includes it
        "templates/layouts/base.html.j2:29:13: error[unsafe-path]: template "
        "'signature.html.j2' leads out of templates/ through a symbolic link "
        "(to {outside}/signature.html.j2)",
    ),
    "template": (
        "templates/appel-cotisation.txt.j2",
        "templates/appel-cotisation.txt.j2:1:1: error[unsafe-path]: template "
        "'appel-cotisation.txt.j2' leads out of templates/ through a symbolic link "
        "(to {outside}/appel-cotisation.txt.j2)",
    ),
    "layout folder": (
        "templates/layouts",
        # refused where each part extends it
        "templates/appel-cotisation.html.j2:1:13: error[unsafe-path]: template "
        "'layouts/base.html.j2' leads out of templates/ through a symbolic link "
        "(to {outside}/layouts/base.html.j2)\n"
        "templates/appel-cotisation.txt.j2:1:13: error[unsafe-path]: template "
        "'layouts/base.txt.j2' leads out of templates/ through a symbolic link "
        "(to {outside}/layouts/base.txt.j2)",
    ),
    "audience source": (
        "audiences/contacts.csv",
        "audiences/providers.audience.yaml:8:9: error[unsafe-path]: source "
        "'audiences/contacts.csv' leads out of audiences/ through a symbolic link "
        "(to {outside}/contacts.csv)",
    ),
}


@pytest.mark.parametrize("kind", SWAPS)
def test_a_link_leading_out_after_loading_is_refused_when_the_file_is_read(
    demo: Path, tmp_path: Path, kind: str
) -> None:
    relative, expected = SWAPS[kind]
    (demo / "documents" / "2027").mkdir()
    shutil.copy(demo / "documents/bareme-taxe-sejour-2027.txt", demo / "documents/2027/bareme.txt")
    _attach(demo, "guide-partenaire-2027.txt", "2027/bareme.txt")
    workspace = load_workspace(demo).require_valid()
    # the same content, with a secret added, now outside the workspace
    outside = (tmp_path / "outside").resolve()
    original = demo / relative
    copy = outside / original.name
    if original.is_dir():
        shutil.copytree(original, copy)
        for file in copy.rglob("*.*"):
            file.write_bytes(file.read_bytes() + f"\n{SECRET}\n".encode())
    else:
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(original.read_bytes() + f"\n{SECRET}\n".encode())
    _swap_for_link(original, copy)

    with pytest.raises(SpecError) as raised:
        build_preview(workspace, CAMPAIGN)

    assert raised.value.exit_code == 65
    assert [d.format().splitlines()[0] for d in raised.value.diagnostics] == (
        expected.format(outside=outside).splitlines()
    )
    assert SECRET not in raised.value.render()


def test_send_refuses_an_attachment_linked_out_after_the_lock(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _attach(demo, "guide-partenaire-2027.txt")
    monkeypatch.setenv("CAMPAIGNCTL_NOW", "2026-11-23T10:00:00+01:00")  # a Monday morning
    locked_demo(demo, CAMPAIGN)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    _swap_for_link(demo / "documents" / "guide-partenaire-2027.txt", secret)

    result = run(demo, "send", CAMPAIGN, "--now")

    assert result.exit_code == 65, result.output
    assert result.stderr.splitlines()[0] == (
        "campaigns/appel-cotisation-2027.yaml:20:17: error[unsafe-path]: attachment "
        "'guide-partenaire-2027.txt' leads out of documents/ through a symbolic link "
        f"(to {secret.resolve()})"
    )
    outbox = demo / ".campaignctl" / "outbox"
    assert not any(SECRET.encode() in f.read_bytes() for f in outbox.rglob("*") if f.is_file())


def test_the_template_loader_refuses_a_computed_include_leading_out(
    demo: Path, outside: Path
) -> None:
    # a name built at render time escapes the static checks of `validate`
    edit(
        demo,
        "templates/appel-cotisation.txt.j2",
        "{% block content -%}",
        '{% block content -%}{% include "../" ~ "../outside/x.j2" %}',
    )
    assert run(demo, "validate").exit_code == 0

    result = run(demo, "preview", CAMPAIGN)

    assert result.exit_code == 65, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[-3:] == [
        "templates/../../outside/x.j2:1:1: error[unsafe-path]: template '../../outside/x.j2' "
        "climbs out of templates/",
        HINT_TEMPLATES,
        "error: template templates/../../outside/x.j2 cannot be used",
    ]
    assert SECRET not in result.output
