"""Signed links: `LinkSigner.token` writes the same tokens as itsdangerous, and they load."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from campaignctl.render.links import COMPRESS_FROM, LinkPurpose, LinkSigner, ShortLinkError
from campaignctl.spec.models import Tracking

SECRET = "test-secret"
PAYLOADS = [
    {"c": "update-2027", "r": "H001", "w": 1},
    {"c": "update-2027", "k": "marketing", "r": ["H001"]},
    {"r": ["H001", "H002"]},
    {"c": "charte", "r": ["H001"], "d": "charte qualité — 2027.pdf"},  # non-ASCII
    {"c": "update-2027", "r": [f"H{i:03d}" for i in range(40)], "w": 2},  # compressed
    {"c": "x" * 200, "r": "y"},  # compressed
    {"c": "é" * 60, "r": "😀"},  # long, non-ASCII
]


def tracking() -> Tracking:
    return Tracking(
        base_url="https://campagnes.example.org/",
        secret_env="CAMPAIGNCTL_SECRET",
        token_max_age=timedelta(days=90),
    )


def signer() -> LinkSigner:
    return LinkSigner(tracking(), SECRET)


@pytest.mark.parametrize("purpose", list(LinkPurpose))
@pytest.mark.parametrize("payload", PAYLOADS)
def test_tokens_are_itsdangerous_tokens_that_load(
    purpose: LinkPurpose, payload: dict[str, object], frozen: object
) -> None:
    s = signer()
    token = s.token(purpose, payload)
    assert s.load(purpose, token) == payload
    reference = URLSafeTimedSerializer(SECRET, salt=f"campaignctl.{purpose}")
    assert reference.loads(token, max_age=60) == payload
    expected = reference.dumps(payload)
    if len(expected) >= COMPRESS_FROM or not expected.startswith("."):
        # byte for byte what itsdangerous writes (only short payloads skip zlib)
        assert token == expected


def test_short_payloads_are_never_compressed_and_long_ones_are(frozen: object) -> None:
    s = signer()
    assert not s.token(LinkPurpose.FORM, PAYLOADS[0]).startswith(".")
    assert s.token(LinkPurpose.SPACE, PAYLOADS[4]).startswith(".")


def test_a_token_does_not_open_another_purpose_nor_outlive_its_max_age(frozen: object) -> None:
    s = signer()
    token = s.token(LinkPurpose.UNSUBSCRIBE, PAYLOADS[1])
    with pytest.raises(Exception, match="does not match"):
        s.load(LinkPurpose.FORM, token)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(Exception, match="does not match"):
        s.load(LinkPurpose.UNSUBSCRIBE, tampered)


def test_expired_tokens_are_refused() -> None:
    import time_machine

    s = signer()
    with time_machine.travel("2027-01-01 09:00:00+00:00", tick=False):
        token = s.token(LinkPurpose.FORM, PAYLOADS[0])
    later = time_machine.travel("2027-06-01 09:00:00+00:00", tick=False)
    with later, pytest.raises(Exception, match="age"):
        s.load(LinkPurpose.FORM, token)


SHORT = [
    (LinkPurpose.FORM, {"c": "update-2027", "r": "H001", "w": 1}),
    (LinkPurpose.FORM, {"c": "charte", "r": "clé é 😀", "w": 300}),
    (LinkPurpose.SPACE, {"c": "update-2027", "r": ["H001"], "w": 2}),
    (LinkPurpose.SPACE, {"c": "x" * 200, "r": [f"H{i:03d}" for i in range(40)], "w": 1}),
]


@pytest.mark.parametrize(("purpose", "payload"), SHORT)
def test_short_codes_round_trip_to_the_long_links_payload(
    purpose: LinkPurpose, payload: dict[str, object], frozen: object
) -> None:
    s = signer()
    url = s.short_url(purpose, payload)
    prefix, code = url.rsplit("/", 1)
    assert prefix == "https://campagnes.example.org/q"
    assert code.replace("-", "").replace("_", "").isalnum()  # URL-safe, no padding
    assert s.load_short(code) == (purpose, payload)
    assert s.resolve_short(code) == s.url(purpose, payload)
    assert s.load(purpose, s.resolve_short(code).rsplit("/", 1)[1]) == payload


def test_short_form_code_is_short(frozen: object) -> None:
    code = signer().short_code(*SHORT[0])
    assert len(code) == 39  # 1 + 2 + 1 + (1 + 11) + (1 + 4) bytes + 8 of signature, base64url
    assert len(signer().token(*SHORT[0])) > 80


def test_tampered_or_foreign_short_codes_are_refused(frozen: object) -> None:
    s = signer()
    code = s.short_code(*SHORT[0])
    data = bytearray(base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)))
    for i in range(len(data)):  # every byte matters: purpose, day, wave, fields, signature
        changed = bytearray(data)
        changed[i] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("=")
        with pytest.raises(ShortLinkError):
            s.load_short(forged)
    space = s.short_code(LinkPurpose.SPACE, {"c": "update-2027", "r": ["H001"], "w": 1})
    raw = base64.urlsafe_b64decode(space + "=" * (-len(space) % 4))
    as_form = base64.urlsafe_b64encode(b"f" + raw[1:]).decode()  # a key per purpose
    with pytest.raises(ShortLinkError, match="does not match"):
        s.load_short(as_form)
    other = LinkSigner(tracking(), "another-secret")
    with pytest.raises(ShortLinkError, match="does not match"):
        other.load_short(code)
    for garbage in ("", "A", "!!!!", code[:10], code + "AAAA"):
        with pytest.raises(ShortLinkError):
            s.load_short(garbage)


def test_short_codes_expire_with_the_tokens_max_age() -> None:
    import time_machine

    s = signer()  # token_max_age: 90 days
    with time_machine.travel("2027-01-01 09:00:00+00:00", tick=False):
        code = s.short_code(*SHORT[0])
    with time_machine.travel("2027-03-31 23:00:00+00:00", tick=False):  # day 89
        assert s.load_short(code)[1] == SHORT[0][1]
    with time_machine.travel("2027-04-02 01:00:00+00:00", tick=False):  # day 91
        with pytest.raises(ShortLinkError, match="expired") as caught:
            s.load_short(code)
        assert caught.value.expired
        assert s.load_short(code, max_age=365 * 86400)[1] == SHORT[0][1]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_load_agrees_with_itsdangerous_on_every_altered_character(
    payload: dict[str, object], frozen: object
) -> None:
    from itsdangerous import BadData

    s = signer()
    reference = URLSafeTimedSerializer(SECRET, salt=f"campaignctl.{LinkPurpose.OPEN}")
    token = reference.dumps(payload)  # written by itsdangerous itself
    assert s.load(LinkPurpose.OPEN, token) == payload
    for i in range(len(token)):
        for replacement in ("A", "_", ".", "é"):
            if token[i] == replacement:
                continue
            altered = token[:i] + replacement + token[i + 1 :]
            try:
                expected = ("ok", reference.loads(altered, max_age=60))
            except BadData:
                expected = ("refused", None)
            try:
                ours = ("ok", s.load(LinkPurpose.OPEN, altered))
            except BadData:
                ours = ("refused", None)
            assert ours == expected, (i, replacement)
