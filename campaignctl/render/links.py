"""Signed, expiring links that recipients follow: form, space, unsubscribe, preferences, documents.

Each purpose has its own salt, so a token made for one purpose never opens another
(an unsubscribe token is not a form token). Tokens are itsdangerous timed
signatures of a small JSON payload; the web side checks them with `LinkSigner.load`.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Any

from campaignctl.errors import UsageError
from campaignctl.spec.models import Tracking

# Used only when every transport is `file` (nothing leaves the machine) or for preview.
DEVELOPMENT_SECRET = "campaignctl-development-secret-not-for-real-sends"


class LinkPurpose(enum.StrEnum):
    FORM = "form"
    SPACE = "space"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    DOCUMENT = "document"


# URL path of each purpose under `tracking.base_url` (what `campaignctl serve` routes).
LINK_PATHS = {
    LinkPurpose.FORM: "f",
    LinkPurpose.SPACE: "s",
    LinkPurpose.UNSUBSCRIBE: "u",
    LinkPurpose.PREFERENCES: "p",
    LinkPurpose.DOCUMENT: "d",
}


@dataclass(frozen=True)
class Secret:
    value: str
    development: bool
    notice: str | None = None


def resolve_secret(tracking: Tracking, *, allow_development: bool) -> Secret:
    """The signing secret from the environment; the development one only where allowed."""
    value = os.environ.get(tracking.secret_env)
    if value:
        return Secret(value, development=False)
    if allow_development:
        return Secret(
            DEVELOPMENT_SECRET,
            development=True,
            notice=(
                f"{tracking.secret_env} is not set: links are signed with the fixed development "
                "secret (accepted only with the file transport and for previews)"
            ),
        )
    raise UsageError(
        f"the environment variable {tracking.secret_env} (tracking.secret_env) is not set, "
        "and the messages carry signed links",
        hint=f"export {tracking.secret_env}=<a long random string>, the same one "
        "`campaignctl serve` uses (`openssl rand -base64 32` makes one)",
    )


class LinkSigner:
    """Makes and checks the tokens of every purpose; build once per run."""

    def __init__(self, tracking: Tracking, secret: str) -> None:
        from itsdangerous import URLSafeTimedSerializer

        self.base_url = tracking.base_url.rstrip("/")
        self.max_age = int(tracking.token_max_age.total_seconds())
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret, salt=f"campaignctl.{purpose}")
            for purpose in LinkPurpose
        }

    def token(self, purpose: LinkPurpose, payload: Any) -> str:
        return self._serializers[purpose].dumps(payload)

    def url(self, purpose: LinkPurpose, payload: Any) -> str:
        return f"{self.base_url}/{LINK_PATHS[purpose]}/{self.token(purpose, payload)}"

    def load(self, purpose: LinkPurpose, token: str, max_age: int | None = None) -> Any:
        """The payload of a token; raises itsdangerous.BadSignature / SignatureExpired."""
        return self._serializers[purpose].loads(
            token, max_age=self.max_age if max_age is None else max_age
        )
