"""Secrets never reach a message, a log, the store or `--debug` output (issue 17).

Every command runs as a real process with known secret values in its environment (the
variables the demo's campaignctl.yaml names), `--debug` on, against a real SMTP server
that requires AUTH and a real HTTP SMS provider; then every byte the run left behind is
searched for them: stdout, stderr, the `.campaignctl/` tree (SQLite store and its WAL,
outbox `.eml` and SMS files, previews, caches), decoded MIME parts, base64 at any offset.
A hostile workspace (attachments, logo, signature and a template pointing at
/proc/self/environ, which holds those values) is run the same way.
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.delivery.conftest import SmsProvider, SmtpServer, auth_smtp_server, sms_provider
from tests.delivery.sendkit import RUN_CLI, use_smtp

__all__ = ["auth_smtp_server", "sms_provider"]  # the real servers of tests/delivery

SECRETS = {
    "SMTP_PASSWORD": "s3cret-pw",  # what the AUTH server of tests/delivery accepts for alice
    "SMS_TOKEN": "sms-token-9d2f61b0c4e7",
    "CAMPAIGNCTL_SECRET": "link-secret-5e8a17c3d9f2b6",
    "CRM_TOKEN": "crm-token-0b6c2a9e47d1",
}
WRONG_PASSWORD = "wrong-pw-71c3e90a5b"
MONDAY_MORNING = "2026-11-23T10:00:00+01:00"  # outside the demo's SMS quiet hours
CAMPAIGN = "mise-a-jour-2027"


def cli(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """`campaignctl --workspace ROOT --debug ARGS…` as a process with the secrets set."""
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, "--workspace", str(root), "--debug", *args],
        capture_output=True,
        env={
            **os.environ,
            **SECRETS,
            "SMTP_USER": "alice",
            "CAMPAIGNCTL_NOW": MONDAY_MORNING,
            "CI": "1",
            **env,
        },
        timeout=300,
    )


def _needles(secret: str) -> list[bytes]:
    """The secret as bytes, and as base64 at each of the three alignments (the part of
    the encoding that does not depend on the bytes around it)."""
    raw = secret.encode()
    needles = [raw]
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        needles.append(encoded[(offset + 1 if offset else 0) : -4])
    return needles


def _decoded(data: bytes) -> list[bytes]:
    """The blob, and every decoded MIME part when it is an email."""
    blobs = [data]
    if re.search(rb"^Message-ID: ", data, re.MULTILINE):
        message = email.message_from_bytes(data, policy=email.policy.default)
        for part in message.walk():
            payload = part.get_payload(decode=True)
            if payload:
                blobs.append(payload)
    return blobs


def leaks(outputs: dict[str, bytes], secrets: list[str]) -> list[str]:
    found = []
    for name, data in outputs.items():
        for blob in _decoded(data):
            for secret in secrets:
                if any(needle in blob for needle in _needles(secret)):
                    found.append(f"{secret!r} in {name}")
    return sorted(set(found))


DEFINITIONS = {"campaignctl.yaml", "audiences", "campaigns", "questionnaires", "templates"}


def written_files(root: Path) -> dict[str, bytes]:
    """Every file the run wrote in the workspace (store, outbox, previews, exports…)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and not path.is_symlink()
        and path.relative_to(root).parts[0] not in {*DEFINITIONS, "documents", "schemas"}
    }


def _use_auth_and_http_sms(root: Path, smtp: SmtpServer, provider: SmsProvider) -> None:
    use_smtp(root, smtp.port)
    config = root / "campaignctl.yaml"
    text = config.read_text("utf-8")
    text = text.replace(
        "timeout: 5s}", "timeout: 5s, username_env: SMTP_USER, password_env: SMTP_PASSWORD}", 1
    )
    text = text.replace(
        "  transport: file                             # file | http\n",
        f"  transport: http\n  http: {{url: '{provider.url}', token_env: SMS_TOKEN}}\n",
        1,
    )
    assert "password_env: SMTP_PASSWORD" in text and "token_env: SMS_TOKEN" in text
    config.write_text(text, "utf-8")


def test_no_secret_reaches_any_output_of_a_full_run(
    demo: Path, auth_smtp_server: SmtpServer, sms_provider: SmsProvider
) -> None:
    _use_auth_and_http_sms(demo, auth_smtp_server, sms_provider)
    commands = [
        ("validate",),
        ("audience", "import"),
        ("plan",),
        ("apply", "--auto-approve"),
        ("lock", CAMPAIGN),
        ("send", CAMPAIGN, "--now"),
        ("preview", CAMPAIGN, "--format", "eml"),
        ("preview", CAMPAIGN, "--format", "html"),
        ("preview", CAMPAIGN, "--channel", "sms"),
        ("report",),
        ("report", CAMPAIGN, "--format", "json"),
        ("report", CAMPAIGN, "--format", "html"),
        ("report", CAMPAIGN, "--email", "direction@val-des-aiguilles.example"),
    ]
    outputs: dict[str, bytes] = {}
    for command in commands:
        result = cli(demo, *command)
        assert result.returncode == 0, (command, result.stderr.decode())
        outputs[f"stdout of {' '.join(command)}"] = result.stdout
        outputs[f"stderr of {' '.join(command)}"] = result.stderr
    # a refused login says so without the password it tried
    failed = cli(
        demo, "report", CAMPAIGN, "--email", "ops@example.org", SMTP_PASSWORD=WRONG_PASSWORD
    )
    assert failed.returncode == 69, failed.stderr.decode()
    assert b"Traceback" in failed.stderr  # --debug did print the traceback
    outputs["stdout of the refused login"] = failed.stdout
    outputs["stderr of the refused login"] = failed.stderr

    # the secrets were really in use: the server saw the login, the provider the token,
    # the messages carry links signed with the secret
    assert auth_smtp_server.handler.logins[:1] == ["alice"]
    assert len(auth_smtp_server.handler.delivered_ids()) == 145 + 1  # the campaign, the report
    assert {r.authorization for r in sms_provider.requests} == {f"Bearer {SECRETS['SMS_TOKEN']}"}
    outputs.update(
        {f"message to {r.rcpt_tos[0]}": r.data for r in auth_smtp_server.handler.received}
    )
    outputs.update(written_files(demo))
    assert "stderr of send mise-a-jour-2027 --now" in outputs
    assert any(name.startswith(".campaignctl/store.db") for name in outputs)

    assert leaks(outputs, [*SECRETS.values(), WRONG_PASSWORD]) == []


def test_no_secret_reaches_any_output_of_a_hostile_workspace(demo: Path) -> None:
    environ = "../" * 12 + "proc/self/environ"  # climbs to / from any temporary folder
    path = demo / "campaigns" / f"{CAMPAIGN}.yaml"
    text = path.read_text("utf-8").replace(
        "  template: mise-a-jour ",
        f"  attachments: [/proc/self/environ, {environ}, self/environ]\n  template: mise-a-jour ",
        1,
    )
    path.write_text(text, "utf-8")
    config = demo / "campaignctl.yaml"
    text = config.read_text("utf-8")
    text = text.replace("logo: documents/logo.png", "logo: /proc/self/environ")
    text = text.replace("signature: templates/signature.html.j2", f"signature: {environ}")
    config.write_text(text, "utf-8")
    os.symlink("/proc/self/environ", demo / "templates" / "environ.txt.j2")
    os.symlink("/proc/self", demo / "documents" / "self")

    outputs: dict[str, bytes] = {}
    codes = {}
    for command in [
        ("validate",),
        ("audience", "import"),
        ("plan",),
        ("lock", CAMPAIGN),
        ("send", CAMPAIGN, "--now"),
        ("preview", CAMPAIGN, "--format", "eml"),
        ("preview", CAMPAIGN, "--format", "html"),
        ("report",),
    ]:
        result = cli(demo, *command)
        name = " ".join(command)
        outputs[f"stdout of {name}"] = result.stdout
        outputs[f"stderr of {name}"] = result.stderr
        codes[name] = (result.returncode, b"error[unsafe-path]" in result.stdout + result.stderr)
    outputs.update(written_files(demo))

    assert leaks(outputs, list(SECRETS.values())) == []
    # report reads only the store: it runs, and warns that the definitions have errors
    assert codes == {**dict.fromkeys(codes, (65, True)), "report": (0, False)}
    assert "error(s) in the workspace definitions" in outputs["stderr of report"].decode()
