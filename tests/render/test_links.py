"""Signed links: `LinkSigner.token` writes the same tokens as itsdangerous, and they load."""

from __future__ import annotations

from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from campaignctl.render.links import COMPRESS_FROM, LinkPurpose, LinkSigner
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


def signer() -> LinkSigner:
    tracking = Tracking(
        base_url="https://campagnes.example.org/",
        secret_env="CAMPAIGNCTL_SECRET",
        token_max_age=timedelta(days=90),
    )
    return LinkSigner(tracking, SECRET)


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
