"""The CRM systems badges go to: a CSV file drop and an HTTP webhook.

Both take badges as `Badge` rows and say which were accepted; neither touches the store
(`export.transfer` records the outcome). Nothing here prints.

The webhook POSTs JSON batches (`batch_size`, 500 by default) with the bearer token read
from the environment variable `token_env` names. Each badge carries its idempotency key,
the same on every retry and every resumed push; the request carries an `Idempotency-Key`
header derived from its badges' keys. 5xx answers and network errors are retried with
exponential backoff (`backoff`, doubled each time, `max_attempts` tries); 429 waits for
`Retry-After`; 401, 403, 404 and 405 are about the setup (the token, the URL): the push
stops (exit 69) and no badge is failed; another 4xx refuses the whole batch, each badge
failed with the answer.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import orjson

from campaignctl import clock
from campaignctl.delivery.transport import read_secret
from campaignctl.errors import ServiceUnavailable, TemporaryFailure, writing
from campaignctl.spec.models import ExportSystem

MAX_RETRY_AFTER = 300.0  # seconds: a longer Retry-After stops the push (exit 75)
MAX_RATE_LIMITED = 50  # 429 answers for one batch before the push stops (exit 75)
# answers about the setup, not the badges: the push stops (exit 69), nothing is failed
REFUSED_SETUP = {
    401: "the token is refused",
    403: "the token is refused",
    404: "no such URL",
    405: "the URL takes no POST",
}


@dataclass(frozen=True)
class Badge:
    """One badge on its way: the stored row joined with its record key and cell's badge."""

    id: int
    record: str
    segment: str | None
    channel: str
    idempotency_key: str
    entity: str
    label: str
    fields: dict[str, Any]
    record_id: int = 0  # the order batches are read in

    def as_json(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.idempotency_key,
            "record": self.record,
            "segment": self.segment,
            "channel": self.channel,
            "entity": self.entity,
            "label": self.label,
            "fields": self.fields,
        }


@dataclass
class BatchOutcome:
    accepted: list[int] = field(default_factory=list)  # badge ids
    rejected: dict[int, str] = field(default_factory=dict)  # badge id -> why
    retries: int = 0


# =========================================================================== CSV


class CsvDrop:
    """One CSV file per transfer in the system's folder, written beside and moved into
    place (a reader never sees half a file); every cell formula-safe."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder

    @property
    def target(self) -> str:
        return str(self.folder)

    def write(
        self,
        name: str,
        header: list[str],
        chunks: Iterable[Iterable[Sequence[object]]],
        on_row: Callable[[int], None] | None = None,
    ) -> tuple[Path, int]:
        """Write the file `name` from `chunks` of rows (nothing when there are none), each
        by one `writerows`; return its path and how many rows it holds. The caller makes
        the cells formula-safe (`safecsv.neutralise`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        partial = self.folder / f".{name}.partial"
        count = 0
        with writing(path), partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for chunk in chunks:
                rows = chunk if isinstance(chunk, list) else list(chunk)
                writer.writerows(rows)
                count += len(rows)
                if on_row is not None:
                    on_row(count)
            handle.flush()
            os.fsync(handle.fileno())
        if count == 0:
            partial.unlink()
            return path, 0
        os.replace(partial, path)
        return path, count


# =========================================================================== webhook


class Webhook:
    """POST JSON batches to `url`, retrying as the module docstring says."""

    def __init__(
        self,
        name: str,
        settings: ExportSystem,
        environ: Mapping[str, str],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.settings = settings
        self.environ = environ
        self.sleep = sleep
        self._client: Any = None

    @property
    def target(self) -> str:
        return str(self.settings.url)

    def open(self) -> None:
        import httpx

        headers = {"User-Agent": "campaignctl", "Content-Type": "application/json"}
        if self.settings.token_env:
            token = read_secret(
                self.environ, self.settings.token_env, f"systems.{self.name}.token_env"
            )
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            timeout=self.settings.timeout.total_seconds(), headers=headers, http2=False
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(
        self, action: str, campaign: str, transfer_id: int, badges: list[Badge]
    ) -> BatchOutcome:
        """One batch, retried until it is answered for good; ServiceUnavailable (69) when the
        system cannot be reached, TemporaryFailure (75) when it keeps failing."""
        import httpx

        body = orjson.dumps(
            {
                "format_version": 1,
                "action": action,
                "campaign": campaign,
                "system": self.name,
                "transfer": transfer_id,
                "badges": [b.as_json() for b in badges],
            }
        )
        digest = hashlib.sha256(action.encode())
        for badge in badges:
            digest.update(b"\n" + badge.idempotency_key.encode())
        headers = {"Idempotency-Key": digest.hexdigest()[:40]}
        outcome = BatchOutcome()
        attempt = limited = 0
        while True:
            try:
                response = self._client.post(self.target, content=body, headers=headers)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt >= self.settings.max_attempts:
                    raise ServiceUnavailable(
                        f"export system {self.name!r} ({self.target}) is unreachable: "
                        f"{_reason(exc)} ({attempt} tries)",
                        hint="check that it is up and its `url:` in campaignctl.yaml; the "
                        "badges not confirmed keep their keys: `export push` again resumes",
                    ) from None
                outcome.retries += 1
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status == 429:
                limited += 1
                wait = _retry_after(response.headers.get("Retry-After"), self._backoff(1))
                if wait > MAX_RETRY_AFTER or limited > MAX_RATE_LIMITED:
                    raise TemporaryFailure(
                        f"export system {self.name!r} is rate limiting (429, Retry-After "
                        f"{wait:.0f} s)",
                        hint="push again later: the badges not confirmed keep their keys",
                    )
                outcome.retries += 1
                self.sleep(wait)
                continue
            if status >= 500:
                attempt += 1
                if attempt >= self.settings.max_attempts:
                    raise TemporaryFailure(
                        f"export system {self.name!r} ({self.target}) answered {status} "
                        f"{attempt} times in a row",
                        hint="push again later: the badges not confirmed keep their keys",
                    )
                outcome.retries += 1
                self.sleep(self._backoff(attempt))
                continue
            if status in REFUSED_SETUP:
                raise ServiceUnavailable(
                    f"export system {self.name!r} ({self.target}) answered {status} "
                    f"({REFUSED_SETUP[status]}): {_excerpt(response.text)}",
                    hint="check its `url:` and the token its `token_env:` names; no badge was "
                    "marked: they keep their keys, and `export push` again resumes",
                )
            if status >= 400:
                why = f"HTTP {status}: {_excerpt(response.text)}"
                outcome.rejected = {b.id: why for b in badges}
                return outcome
            rejected = _rejected(response)
            by_key = {b.idempotency_key: b.id for b in badges}
            outcome.rejected = {by_key[k]: why for k, why in rejected.items() if k in by_key}
            outcome.accepted = [b.id for b in badges if b.id not in outcome.rejected]
            return outcome

    def _backoff(self, attempt: int) -> float:
        return self.settings.backoff.total_seconds() * 2 ** (attempt - 1)


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return (flat[:200] + "…") if len(flat) > 200 else (flat or "(empty answer)")


def _retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - clock.now()).total_seconds())


def _rejected(response: Any) -> dict[str, str]:
    """`{"rejected": [{"idempotency_key": K, "error": E}]}` in a 2xx answer: badges the
    system refused one by one. Any other answer accepts the whole batch."""
    try:
        data = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("rejected"), list):
        return {}
    found = {}
    for item in data["rejected"]:
        if isinstance(item, dict) and isinstance(item.get("idempotency_key"), str):
            found[item["idempotency_key"]] = _excerpt(str(item.get("error") or "rejected"))
    return found
