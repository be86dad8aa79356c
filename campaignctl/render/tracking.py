"""Open and click tracking of HTML emails: the pixel and the click redirects `serve` answers.

An email of a category that allows tracking (`categories.X.tracking`, and
`tracking.opens` / `tracking.clicks` in campaignctl.yaml) gets a 1×1 image
`{base_url}/o/TOKEN` before `</body>`, and each `href` of its HTML part that leads
elsewhere than `tracking.base_url` becomes `{base_url}/c/TOKEN`. Both tokens name the
message by its Message-ID; the click token also holds the URL the message held, so
the redirect goes there and nowhere else (a changed token fails its signature). The
links under `tracking.base_url` (form, space, unsubscribe, preferences, documents)
are left as they are: they are hits of their own. The text part is not rewritten:
its links stay readable.
"""

from __future__ import annotations

import html
import re

from campaignctl.render.links import LinkPurpose, LinkSigner

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE)
PIXEL = '<img src="{url}" width="1" height="1" alt="" style="display:block;border:0;">'


class EmailTracking:
    """Adds the open pixel and rewrites the links of one campaign's HTML parts."""

    def __init__(self, signer: LinkSigner, *, opens: bool, clicks: bool) -> None:
        self.signer = signer
        self.opens = opens
        self.clicks = clicks
        self._own = signer.base_url + "/"

    def apply(self, body: str, message_id: str) -> str:
        """The HTML part with its links rewritten and the pixel added (per the settings)."""
        if self.clicks and "href" in body:
            signer, own = self.signer, self._own

            def rewrite(match: re.Match[str]) -> str:
                target = html.unescape(match.group(3))
                if target.startswith(own):
                    return match.group(0)
                url = signer.url(LinkPurpose.CLICK, {"m": message_id, "u": target}, compress=False)
                return f"{match.group(1)}{match.group(2)}{url}{match.group(2)}"

            body = _HREF.sub(rewrite, body)
        if self.opens:
            pixel = PIXEL.format(url=self.signer.url(LinkPurpose.OPEN, {"m": message_id}))
            end = _body_end(body)
            body = body + pixel if end < 0 else body[:end] + pixel + body[end:]
        return body


def _body_end(body: str) -> int:
    """Where the last `</body` (in any case) starts, or -1. Not `body.lower().rfind(...)`:
    lowering a copy of the whole part cost more than the rest of `apply` but its tokens,
    and its positions are not the part's when a character lowers to two (İ)."""
    end = len(body)
    while (end := body.rfind("</", 0, end)) >= 0:
        if body[end + 2 : end + 6].lower() == "body":
            return end
    return -1
