"""The lean MIME writer against the stdlib: same structure, headers and decoded parts."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaignctl.render import mime

SUBJECT = "Office de tourisme du Val — mettez à jour votre fiche « 2027 » " * 2
TEXT = "Bonjour,\n\nLigne é avec = signe et tab\tfin   \n" + "x" * 300 + "\n.point\nFrom me\n"
HTML = "<p>Bonjour <b>é</b></p>\n" + "<span>" + "y" * 2000 + "</span>"


def lean(logo: bytes | None = None, attachment: bytes | None = None) -> bytes:
    head = [
        mime.address_header("From", [mime.format_mailbox("Office de tourisme <a@example.org>")]),
        mime.address_header("To", [mime.format_mailbox("b@example.net")]),
        mime.header("Subject", SUBJECT),
        b"MIME-Version: 1.0\r\n",
    ]
    mixed, alternative, related = mime.boundaries("0123456789abcdef")
    html = mime.text_part("html", HTML)
    if logo is not None:
        image = mime.binary_part(
            "image/png", logo, filename="logo.png", content_id="logo@x", inline=True
        )
        html = mime.multipart("related", related, [html, image])
    body = mime.multipart("alternative", alternative, [mime.text_part("plain", TEXT), html])
    if attachment is not None:
        part = mime.binary_part("application/pdf", attachment, filename="charte été.pdf")
        body = mime.multipart("mixed", mixed, [body, part])
    return b"".join(head) + body


def stdlib(logo: bytes | None = None, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Office de tourisme <a@example.org>"
    msg["To"] = "b@example.net"
    msg["Subject"] = SUBJECT
    msg.set_content(TEXT)
    msg.add_alternative(HTML, subtype="html")
    if logo is not None:
        msg.get_payload()[1].add_related(logo, "image", "png", cid="<logo@x>", filename="logo.png")
    if attachment is not None:
        msg.add_attachment(attachment, "application", "pdf", filename="charte été.pdf")
    return msg.as_bytes(policy=policy.SMTP)


def shape(data: bytes) -> list[tuple[str, str | None, object]]:
    message = message_from_bytes(data, policy=policy.default)
    out = []
    for part in message.walk():
        content = None if part.is_multipart() else part.get_content()
        if isinstance(content, str):
            content = content.replace("\r\n", "\n")
        out.append((part.get_content_type(), part.get_filename(), content))
    return out


def test_same_structure_and_decoded_parts_as_the_stdlib() -> None:
    logo, pdf = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3, b"%PDF-1.4\n" + bytes(range(256))
    for args in ((None, None), (logo, None), (logo, pdf), (None, pdf)):
        assert shape(lean(*args)) == shape(stdlib(*args))


def test_headers_decode_like_the_stdlibs() -> None:
    ours = message_from_bytes(lean(), policy=policy.default)
    theirs = message_from_bytes(stdlib(), policy=policy.default)
    for name in ("From", "To", "Subject"):
        assert str(ours[name]) == str(theirs[name])
    assert str(ours["Subject"]) == SUBJECT


def test_lines_are_crlf_short_and_seven_bit() -> None:
    data = lean(b"\x00" * 5000, b"\xff" * 5000)
    assert b"\n" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    assert data.isascii()


def test_boundaries_cannot_appear_in_encoded_bodies() -> None:
    # quoted-printable escapes every "=" and base64 has no "_": "=_" never occurs in a body
    tricky = "--=_0123456789abcdef.alt\n=_ =_=_"
    part = mime.text_part("plain", tricky)
    assert b"=_" not in part.split(b"\r\n\r\n", 1)[1]
    assert b"=_" not in mime.base64_body(b"=_" * 1000 + bytes(range(256)))


def test_display_names_are_quoted_or_encoded() -> None:
    assert mime.format_mailbox("Val S.A. <a@x.org>") == '"Val S.A." <a@x.org>'
    encoded = mime.format_mailbox("Service adhésions <a@x.org>")
    assert encoded.isascii() and encoded.endswith(" <a@x.org>")
    parsed = message_from_bytes(
        mime.address_header("From", [encoded]) + b"\r\n", policy=policy.default
    )
    assert parsed["From"].addresses[0].display_name == "Service adhésions"


def test_long_ascii_header_is_folded_at_spaces() -> None:
    value = " ".join(["word"] * 40)
    raw = mime.header("Subject", value)
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    parsed = message_from_bytes(raw + b"\r\n", policy=policy.default)
    assert parsed["Subject"] == value


_PIECES = ["a", "é", " ", "\t", "=", ".", "\r", "\n", "\r\n", "😀", "x" * 40, "\x00", "\x7f"]
_LINES = st.lists(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), max_size=6)


@settings(max_examples=300, deadline=None)
@given(_LINES)
@example(["", "."])  # a lone dot is encoded (=2E) on every line it stands alone
@example(["x" * 75 + " ", "y" * 80])  # trailing space and soft breaks within a line
def test_line_cached_quoted_printable_equals_the_whole_text_encoding(lines: list[str]) -> None:
    cache = mime.QuotedPrintableCache(max_lines=3)  # small: clearing happens too
    for text in ("\n".join(lines), "".join(lines), *lines):
        assert cache.encode(text) == mime.quoted_printable(text)
        assert cache.encode(text) == mime.quoted_printable(text)  # from the cache


def test_quoted_printable_body_decodes_back_to_the_text() -> None:
    text = "Bonjour é = fin  \n.\n" + "x" * 200 + "\n"
    part = mime.text_part("plain", text, mime.QuotedPrintableCache())
    message = message_from_bytes(b"MIME-Version: 1.0\r\n" + part, policy=policy.default)
    assert message.get_content().replace("\r\n", "\n") == text


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
@settings(max_examples=200, deadline=None)
def test_no_header_value_can_carry_a_control_character_or_a_header_of_its_own(
    value: str,
) -> None:
    """A subject is rendered from record data: whatever it holds stays one header."""
    data = mime.header("Subject", value)
    message = message_from_bytes(data + b"\r\nbody\r\n", policy=policy.default)
    assert message.keys() == ["Subject"]
    decoded = str(message["Subject"])
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in decoded), decoded


def test_header_control_characters_are_dropped_and_line_breaks_become_spaces() -> None:
    assert mime.header("Subject", "Hôtel\x07 du \x1b[31mLac\r\nBcc: x@evil.example") == (
        b"Subject: =?utf-8?q?H=C3=B4tel_du_=5B31mLac__Bcc=3A_x=40evil=2Eexample?=\r\n"
    )
    assert mime.header("Subject", "Lac\x1b\r\nBcc: x") == b"Subject: Lac  Bcc: x\r\n"
