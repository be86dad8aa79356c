"""Open and click tracking of HTML parts: where the pixel goes, which links are rewritten."""

from __future__ import annotations

import pytest

from campaignctl.render.tracking import PIXEL, EmailTracking
from tests.render.test_links import signer

BODIES = [
    "<html><body><p>Bonjour</p></body></html>",
    "<HTML><BODY><p>Bonjour</p></BODY></HTML>",
    "<html><body><p>Café</p></Body>\n</html>\n",
    "<p>un fragment sans body</p>",
    "<html><body><p>a </body> in the text</p></body></html>",
    "<p>Ünïcödé — 😀</p></bOdY></html>",
    "</body",
    "",
]


@pytest.mark.parametrize("body", BODIES)
def test_the_open_pixel_goes_before_the_last_closing_body_tag(body: str) -> None:
    tracking = EmailTracking(signer(), opens=True, clicks=False)
    pixel = PIXEL.format(url="PIXEL")
    tracking.signer.url = lambda *args, **kwargs: "PIXEL"  # type: ignore[method-assign]
    end = body.lower().rfind("</body")  # the rule, on bodies where lowering keeps positions
    expected = body + pixel if end < 0 else body[:end] + pixel + body[end:]
    assert tracking.apply(body, "m1@example.org") == expected


def test_the_pixel_position_is_the_tag_s_even_after_a_letter_that_lowers_to_two() -> None:
    tracking = EmailTracking(signer(), opens=True, clicks=False)
    tracking.signer.url = lambda *args, **kwargs: "PIXEL"  # type: ignore[method-assign]
    body = "<p>İstanbul</p></body></html>"
    assert tracking.apply(body, "m1@example.org") == (
        "<p>İstanbul</p>" + PIXEL.format(url="PIXEL") + "</body></html>"
    )
