"""What `campaignctl serve` runs with: one frozen object, handed to `create_app`.

With `--workers N` uvicorn starts N processes that each import the app: the
settings travel to them in one environment variable (`SETTINGS_VARIABLE`, JSON). The
secrets never do: each worker reads them from the variables campaignctl.yaml names.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from campaignctl.errors import UsageError
from campaignctl.render.links import DEVELOPMENT_SECRET, Secret, resolve_secret
from campaignctl.spec.models import Tracking

SETTINGS_VARIABLE = "CAMPAIGNCTL_SERVE_SETTINGS"


@dataclass(frozen=True)
class ServeSettings:
    """Where the workspace and the store are, and the web side's limits."""

    root: str  # the workspace directory
    store_url: str  # as `App.store()` resolves it (CAMPAIGNCTL_STORE, else campaignctl.yaml)
    dev: bool = False  # the development secret is accepted (never for real recipients)
    max_body_bytes: int = 256 * 1024  # a request body larger than this gets 413
    posts_per_minute: int = 60  # per client IP, on every POST (forms, unsubscribe, API)
    api_posts_per_minute: int = 600  # per client IP on POST /api/events
    api_max_body_bytes: int = 8 * 1024 * 1024
    batch_max: int = 1000  # events written in one group commit at most
    forwarded_allow_ips: str = "127.0.0.1"  # proxies whose X-Forwarded-For is believed

    @property
    def workspace_root(self) -> Path:
        return Path(self.root)

    def to_environment(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_environment(cls) -> ServeSettings:
        raw = os.environ.get(SETTINGS_VARIABLE)
        if not raw:
            raise UsageError(
                f"{SETTINGS_VARIABLE} is not set: the app is started by `campaignctl serve`"
            )
        return cls(**json.loads(raw))


def serve_secret(tracking: Tracking, *, dev: bool) -> Secret:
    """The link-signing secret `serve` checks tokens with: the development one (or a
    variable set to it) only with --dev, since anyone can forge tokens with it."""
    secret = resolve_secret(tracking, allow_development=dev)
    if secret.value == DEVELOPMENT_SECRET and not dev:
        raise UsageError(
            f"{tracking.secret_env} holds the development secret, which anyone can sign links with",
            hint=f"export {tracking.secret_env}=<a long random string> (the one `send` signs "
            "with), or add --dev to try serve locally",
        )
    return secret
