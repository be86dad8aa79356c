"""What a report says, independent of how it is shown (DESIGN.md §7).

The store's SQL aggregations fill these dataclasses; the renderers (terminal
table, JSON, CSV, HTML) only read them. Rates carry their denominators so that
every renderer shows "40 / 90 delivered (44.4 %)", never a bare percentage, and
an empty denominator is "—", never a division by zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from campaignctl.plan.plan import NotContactedCount  # reason, records, detail

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int
    basis: str  # what the denominator counts: "delivered", "contacted", …

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def describe(self) -> str:
        if not self.denominator:
            return f"— (no {self.basis} yet)"
        return f"{self.numerator} / {self.denominator} {self.basis} ({self.value:.1%})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "basis": self.basis,
            "value": self.value,
        }


@dataclass(frozen=True)
class Figures:
    """Counts for one wave, one segment × channel cell, or a whole campaign."""

    queued: int = 0
    uncertain: int = 0  # in doubt after a crash: never re-sent without `send --retry-uncertain`
    sent: int = 0  # accepted by the transport (includes those later delivered or bounced)
    delivered: int = 0
    failed: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    suppressed: int = 0
    skipped: int = 0
    opened: int = 0
    clicked: int = 0
    form_opened: int = 0
    answered: int = 0
    unsubscribed: int = 0
    complained: int = 0
    sms_parts: int = 0
    records_contacted: int = 0  # records behind the messages sent (grouping makes it ≥ sent)
    # the denominators of the open and click rates (only emails are opened or clicked);
    # not figures of their own: the rates carry them
    email_delivered: int = 0
    email_sent: int = 0

    @property
    def bounced(self) -> int:
        return self.bounced_hard + self.bounced_soft

    def _on_delivered(self, count: int) -> Rate:
        # Opens and clicks are on the emails delivered: an SMS is never opened, so the SMS
        # receipts are no part of the denominator. Without delivery receipts (the file
        # transport, SMTP without DSN) the basis is the emails sent, and the rate says so
        # rather than calling it "delivered".
        if self.email_delivered:
            return Rate(count, self.email_delivered, "delivered")
        return Rate(count, self.email_sent, "emails sent")

    @property
    def open_rate(self) -> Rate:
        return self._on_delivered(self.opened)

    @property
    def click_rate(self) -> Rate:
        return self._on_delivered(self.clicked)

    @property
    def response_rate(self) -> Rate:
        return Rate(self.answered, self.records_contacted, "records contacted")

    @property
    def form_open_rate(self) -> Rate:
        """Seed 000's "taux d'ouverture": opened the form without submitting it."""
        return Rate(
            max(self.form_opened - self.answered, 0), self.records_contacted, "records contacted"
        )

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _DENOMINATORS}

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts(),
            "bounced": self.bounced,
            "rates": {
                "open": self.open_rate.as_dict(),
                "click": self.click_rate.as_dict(),
                "response": self.response_rate.as_dict(),
                "form_open_without_answer": self.form_open_rate.as_dict(),
            },
        }


_DENOMINATORS = ("email_delivered", "email_sent")


@dataclass(frozen=True)
class WaveReport:
    number: int
    kind: str  # initial | relaunch | recurrence
    status: str  # scheduled | sending | held | waiting | incomplete | done | failed | missed
    scheduled_for: datetime | None
    started_at: datetime | None
    figures: Figures
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    held: int = 0  # SMS held by quiet hours (among `queued`), sent by the first pass after
    held_until: datetime | None = None


@dataclass(frozen=True)
class MatrixCell:
    segment: str
    channel: str
    figures: Figures


@dataclass(frozen=True)
class DailyAnswers:
    day: date
    answers: int
    cumulative: int


@dataclass(frozen=True)
class StepFigures:
    """Automation campaigns: records that reached a step vs records it processed."""

    step: str  # its path in the tree: 1, 3.then.1…
    affected: int  # records that reached it
    processed: int  # records that went through it
    label: str = ""  # its name, or its action and argument
    action: str = ""  # send | wait | if | add_to_list | remove_from_list
    waiting: int = 0  # records at it now
    sent: int = 0  # send steps: messages sent
    no_address: int = 0  # send steps: records without an address on the step's channels
    not_sent: int = 0  # send steps: messages failed, bounced, suppressed or skipped
    opened: int = 0  # send steps: records that opened / clicked its message
    clicked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # then/else, added, waited…


@dataclass(frozen=True)
class CampaignReport:
    name: str
    type: str
    category: str
    status: str
    timezone: str
    records: int
    messages: int
    responses_to_process: int
    totals: Figures
    waves: list[WaveReport]
    matrix: list[MatrixCell]
    answers_per_day: list[DailyAnswers]
    steps: list[StepFigures] = field(default_factory=list)
    generated_at: datetime | None = None
    # frozen by the campaign's latest lock: who its waves never reach, and why
    not_contacted: list[NotContactedCount] = field(default_factory=list)


class SentWave(NamedTuple):
    """When a wave of a campaign went out, and its kind (initial, relaunch, recurrence)."""

    at: datetime
    kind: str


@dataclass(frozen=True)
class CampaignListRow:
    name: str
    type: str
    category: str
    # of the last wave (store/wave_state.py): scheduled | sending | held | waiting |
    # incomplete | done | failed | missed | never sent
    status: str
    records: int
    messages: int
    response_rate: Rate
    form_open_rate: Rate
    email_open_rate: Rate
    responses_to_process: int
    waves: list[SentWave]  # every wave sent, in order
    uncertain: int = 0  # messages in doubt after a crash, in every wave
    held: int = 0  # SMS held by quiet hours, in every wave
    held_until: datetime | None = None


@dataclass(frozen=True)
class CampaignList:
    rows: list[CampaignListRow]
    timezone: str
    generated_at: datetime | None = None
    filtered: bool = False  # --status, --type or --since left some campaigns out


def to_json(report: CampaignReport | CampaignList) -> dict[str, Any]:
    """The documented JSON form (docs/json.md): format_version, then the report's fields."""

    def convert(value: Any) -> Any:
        if isinstance(value, Figures):
            return value.as_dict()
        if isinstance(value, Rate):
            return value.as_dict()
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, SentWave):
            return {"at": convert(value.at), "kind": value.kind}
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if hasattr(value, "__dataclass_fields__"):
            return {f.name: convert(getattr(value, f.name)) for f in fields(value)}
        return value

    kind = "campaign" if isinstance(report, CampaignReport) else "campaign_list"
    return {"format_version": FORMAT_VERSION, "report": kind, **convert(report)}
