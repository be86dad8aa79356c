"""The strict pre-checks never accept what email-validator or phonenumbers would reject,
and the phone pre-check rejects only what phonenumbers parses and finds invalid.

Whatever the fast path accepts must be exactly what the full library returns; what it
declines goes to the library, so declining is always safe.
"""

from __future__ import annotations

import itertools

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaignctl.audience.values import _fast_email, _phone_rules


def library_email(text: str) -> str | None:
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    return f"{result.local_part}@{result.domain.lower()}"


def library_phone(text: str, region: str) -> str | bool | None:
    """E.164 when valid, False when parsed but invalid, None when it does not parse
    (the two failures have different messages in the rejects file)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# accented letters (precomposed, decomposed, title case), signs, marks and spaces beside them
INTL = "éÉèçïÿŒœǅȳ×÷\u0301\u00a0\u0130ß\u01c4"
EMAIL_ALPHABET = "aZ09._+-@x-é!\"' " + INTL
LABEL = st.text("abcXYZ019-", min_size=0, max_size=8)
EMAILS = st.one_of(
    st.text(EMAIL_ALPHABET, max_size=30),
    st.builds(
        lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
        st.text("abZ9._+-" + INTL, min_size=0, max_size=12),
        st.lists(LABEL, min_size=0, max_size=3),
        st.one_of(st.sampled_from(["fr", "com", "test", "local", "example", "c0m", "x"]), LABEL),
    ),
)


@settings(max_examples=3000, deadline=None)
@given(EMAILS)
@example("a..b@orange.fr")
@example(".a@orange.fr")
@example("a@-orange.fr")
@example("a@xn--bcher-kva.fr")
@example("a" * 65 + "@orange.fr")
@example("a@" + "b" * 64 + ".fr")
@example("a@b.test")
@example("A.B@Orange.FR")
@example("Postmaster@Orange.FR")
@example("chloé.lefèvre12@orange.fr")
@example("e\u0301@orange.fr")
@example("é" * 64 + "@orange.fr")
@example("é" * 60 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 50 + ".fr")
def test_fast_email_agrees_with_email_validator(text: str) -> None:
    fast = _fast_email(text)
    if fast is not None:
        assert fast == library_email(text)


def test_fast_email_exhaustive_on_short_addresses() -> None:
    """Every address of the shape L@D.T over a small alphabet: the fast path never disagrees."""
    alphabet = ["", "a", "-", ".", "_", "A", "a-", "-a", "a.", ".a", "a.b", "a--b"]
    for local, domain, tld in itertools.product(alphabet, alphabet, ["fr", "FR", "a", "1a"]):
        text = f"{local}@{domain}.{tld}"
        fast = _fast_email(text)
        if fast is not None:
            assert fast == library_email(text), text


def test_fast_email_exhaustive_on_single_characters() -> None:
    """Every character up to U+2FFF, alone or between letters and dots in the local part."""
    for code in range(0x21, 0x3000):
        c = chr(code)
        for local in (c, f"a{c}b", f"{c}.a", f"a.{c}", f"{c}{c}", f"info{c}"):
            text = f"{local}@Orange.FR"
            fast = _fast_email(text)
            if fast is not None:
                assert fast == library_email(text), text


def test_fast_email_accepts_french_names() -> None:
    assert _fast_email("chloé.lefèvre12@Free.FR") == "chloé.lefèvre12@free.fr"
    assert _fast_email("anaïs@orange.fr") == "anaïs@orange.fr"
    assert _fast_email("Postmaster@orange.fr") is None  # the library lower-cases role names
    assert _fast_email("e\u0301@orange.fr") is None  # not NFC: the library normalises it


DIGITS = st.text("0123456789", min_size=1, max_size=13)
SEPARATED = st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=6).map(
    lambda parts: " ".join(parts)
)


@pytest.mark.parametrize("region", ["FR", "BE", "CH", "DE"])
@settings(max_examples=1500, deadline=None)
@given(
    number=st.one_of(
        DIGITS,
        SEPARATED,
        DIGITS.map(lambda d: "0" + d),
        DIGITS.map(lambda d: "+" + d),
        st.sampled_from(["+33", "+32", "+41", "+49", "0033"]).flatmap(
            lambda cc: DIGITS.map(lambda d: f"{cc} {d}")
        ),
        st.text("0123456789 .-+()", max_size=16),
    )
)
@example(number="06 12 34 56 78")
@example(number="07 00 00 00 00")
@example(number="+33 6 12 34 56 78")
@example(number="+33 06 12 34 56 78")
@example(number="05 01 23 45 67")
@example(number="012345")
@example(number="01")
@example(number="0033 6 12 34 56 78")
@example(number="33 6 12 34 56 78")
@example(number="+33 5 01 23 45 67")
@example(number="0 123 456 789 012 345 678")
def test_fast_phone_agrees_with_phonenumbers(region: str, number: str) -> None:
    fast = _phone_rules(region).check(number)
    if fast is not None:
        assert fast == library_phone(number, region)


def test_fast_phone_accepts_the_common_french_shapes() -> None:
    rules = _phone_rules("FR")
    assert rules.check("06 12 34 56 78") == "+33612345678"
    assert rules.check("04.50.12.34.56") == "+33450123456"
    assert rules.check("+33 4 50 12 34 56") == "+33450123456"


def test_fast_phone_rejects_the_common_bad_french_numbers() -> None:
    rules = _phone_rules("FR")
    for bad in ("07 00 00 00 00", "012345", "+33 7 00 00 00 00", "0700.00.00.00"):
        assert rules.check(bad) is False, bad  # not a French range, too short: invalid
        assert library_phone(bad, "FR") is False, bad
    for unusual in ("0033 7 00 00 00 00", "33 7 00 00 00 00", "0" * 20):
        assert rules.check(unusual) is None, unusual  # the library reads these differently
