from __future__ import annotations

import pytest

from campaignctl.render.sms import SmsEncoding, sms_info


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("a" * 160, SmsEncoding.GSM7, 1),
        ("a" * 161, SmsEncoding.GSM7, 2),
        ("€" * 80, SmsEncoding.GSM7, 1),
        ("€" * 81, SmsEncoding.GSM7, 2),
        ("ж" * 70, SmsEncoding.UCS2, 1),
        ("ж" * 71, SmsEncoding.UCS2, 2),
        ("😀" * 70, SmsEncoding.UCS2, 3),
        ("a" * 153 * 3, SmsEncoding.GSM7, 3),
        ("a" * (153 * 3 + 1), SmsEncoding.GSM7, 4),
        ("", SmsEncoding.GSM7, 0),
    ],
)
def test_sms_vectors(text: str, encoding: SmsEncoding, parts: int) -> None:
    info = sms_info(text)
    assert (info.encoding, info.parts) == (encoding, parts)


def test_extension_characters_count_two_septets_and_never_straddle_parts() -> None:
    # 152 plain + one € (2 septets) would be 154 in a 153 part: the € moves to part 2
    info = sms_info("a" * 152 + "€" + "a" * 10)
    assert (info.length, info.parts) == (164, 2)


def test_french_accents_outside_gsm7_switch_to_ucs2() -> None:
    assert sms_info("vérifiez votre fiche").encoding == SmsEncoding.GSM7  # é is GSM-7
    assert sms_info("mettez à jour, merci ç").encoding == SmsEncoding.UCS2  # ç is not


def test_warning_past_three_parts() -> None:
    assert not sms_info("a" * 459).too_long
    assert sms_info("a" * 460).too_long
