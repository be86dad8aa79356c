"""`where:` of triggers and `if:` of steps, compiled to SQL as segments are.

An `if:` tests record attributes exactly as a segment does, plus what the record
did in this campaign: `opened`, `clicked`, `delivered`, `bounced`, `unsubscribed`,
`form_opened`, `form_submitted` (`true`/`false`: any message of the campaign; a
send step's name or path: that step's message; `clicked: any` is `true`),
`answered: true` (a form submitted, in any campaign, since the record was enrolled)
and `in_list: NAME`. A trigger's `where:` tests the event's `data` first, then the
record: `{form: contact}` matches `data.form`, else the record's `form` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from campaignctl.audience.segments import _Compiler
from campaignctl.automation.lists import is_member
from campaignctl.spec.models import Audience, Condition
from campaignctl.spec.workspace import Workspace
from campaignctl.store.tables import ENROLMENT, EVENT, OUTBOX, RECORD, STEP_RUN

ACTIVITIES = {
    "opened": "opened",
    "clicked": "clicked",
    "delivered": "delivered",
    "bounced": "bounced",
    "unsubscribed": "unsubscribed",
    "form_opened": "form_opened",
    "form_submitted": "form_submitted",
}
TRUE = ("true", "yes", "1", "any")


def _truth(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in TRUE:
        return True
    if text in ("false", "no", "0"):
        return False
    return None


@dataclass(frozen=True)
class StepCompiler(_Compiler):
    """The segment compiler, with the activity tests of automation `if:` steps."""

    campaign_id: int = 0
    step_paths: Any = None  # name or path -> path of a send step

    def test(self, name: str, operator: str, value: Any) -> ColumnElement[bool]:
        if name == "in_list":
            names = value if isinstance(value, list) else [value]
            inside = is_member(RECORD.c.id, [str(n) for n in names])
            return sa.not_(inside) if operator in ("ne", "not_in") else inside
        if name == "answered":
            truth = _truth(value)
            answered = sa.exists(
                sa.select(EVENT.c.id).where(
                    EVENT.c.record_id == RECORD.c.id,
                    EVENT.c.type == "form_submitted",
                    EVENT.c.at
                    >= sa.select(ENROLMENT.c.enrolled_at)
                    .where(
                        ENROLMENT.c.record_id == RECORD.c.id,
                        ENROLMENT.c.campaign_id == self.campaign_id,
                    )
                    .scalar_subquery(),
                )
            )
            return answered if (truth is not False) == (operator != "ne") else sa.not_(answered)
        if name in ACTIVITIES:
            return self.activity(ACTIVITIES[name], operator, value)
        return super().test(name, operator, value)

    def activity(self, event_type: str, operator: str, value: Any) -> ColumnElement[bool]:
        truth = _truth(value)
        where = [
            EVENT.c.record_id == RECORD.c.id,
            EVENT.c.campaign_id == self.campaign_id,
            EVENT.c.type == event_type,
        ]
        if truth is None:  # a send step, by name or path
            path = (self.step_paths or {}).get(str(value), str(value))
            where.append(
                EVENT.c.outbox_id.in_(
                    sa.select(OUTBOX.c.id)
                    .join(STEP_RUN, STEP_RUN.c.wave_id == OUTBOX.c.wave_id)
                    .where(
                        STEP_RUN.c.campaign_id == self.campaign_id,
                        STEP_RUN.c.step == path,
                        STEP_RUN.c.record_id == RECORD.c.id,
                    )
                )
            )
            truth = True
        did = sa.exists(sa.select(EVENT.c.id).where(*where))
        positive = truth if operator != "ne" else not truth
        return did if positive else sa.not_(did)


def step_condition(
    workspace: Workspace,
    audience: Audience,
    dialect: str,
    today: date,
    condition: Condition,
    campaign_id: int,
    step_paths: dict[str, str],
) -> ColumnElement[bool]:
    """The boolean SQL of an `if:` over `record` (and its activity in the campaign)."""
    compiler = StepCompiler(workspace, audience, dialect, today, campaign_id, step_paths)
    return compiler.condition(condition)


@dataclass(frozen=True)
class EventCompiler(_Compiler):
    """A trigger's `where:`: each name tests the event's data, else the record."""

    def expression(self, name: str) -> tuple[ColumnElement[Any], Any]:
        record, column_type = super().expression(name)
        if self.dialect == "postgresql":
            data: Any = sa.literal_column(f"(event.data ->> '{name}')")
        else:
            data = sa.literal_column(f"json_extract(event.data, '$.{name}')")
        return sa.func.coalesce(data, record), column_type


def trigger_condition(
    workspace: Workspace, audience: Audience, dialect: str, today: date, condition: Condition
) -> ColumnElement[bool]:
    return EventCompiler(workspace, audience, dialect, today).condition(condition)


def record_condition(
    workspace: Workspace, audience: Audience, dialect: str, today: date, condition: Condition
) -> ColumnElement[bool]:
    return _Compiler(workspace, audience, dialect, today).condition(condition)
