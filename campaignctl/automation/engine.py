"""The automation pass: enrol, then move every enrolled record through its steps.

On every scheduler pass (`scheduler tick`, each minute of `scheduler run`), for
each campaign with a `trigger:` that is switched on (applied without `draft:
true`, or `campaign activate`d, and not `campaign deactivate`d):

1. enrol, in one INSERT … SELECT, the records the trigger selects now that were
   never enrolled in the campaign (the unique key: never twice, even after
   leaving and re-entering): members of the segment or list, or records named
   by matching events since the activation; only records of the campaign's
   `audience:` segments (minus its exclusions) and `partner_types`;
2. run each step for the records at it whose time has come, set-based, each
   step for a batch in one transaction with its `step_run` rows (unique: a step
   never runs twice for a record, even after a kill -9 mid-pass), until no record
   moves: a `wait:` holds them until its end (pushed past quiet hours), an `if:`
   sends them down `then:` or `else:`, list steps change list members, and a
   `send` writes a wave (a lock of just those records, kind `automation`) that
   the send engine delivers like any other (quiet hours, caps, suppressions);
   records go on once their wave is done. A wave that fails (a template broken
   since) leaves its records at their step with the error, retried next pass.

Nothing here loads records into Python: every step is SQL over the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from campaignctl.audience.segments import segment_condition, workspace_today
from campaignctl.automation import lists
from campaignctl.automation.conditions import (
    record_condition,
    step_condition,
    trigger_condition,
)
from campaignctl.automation.steps import (
    AUTOMATION_KEY,
    Node,
    campaign_steps,
    content_hash,
    first_path,
    flatten,
    step_paths,
)
from campaignctl.clock import aware
from campaignctl.enums import CampaignState, OutboxState, RecordStatus, WaveKind, WaveStatus
from campaignctl.errors import CampaignctlError, TemporaryFailure, UsageError
from campaignctl.spec.models import Campaign, Channel
from campaignctl.spec.workspace import Workspace
from campaignctl.store.store import Store
from campaignctl.store.tables import (
    AUTOMATION,
    CAMPAIGN,
    ENROLMENT,
    EVENT,
    LIST_MEMBER,
    LOCK,
    OUTBOX,
    RECIPIENT,
    RECORD,
    STEP_RUN,
    WAVE,
)

LIST_EVENTS = ("list_added", "list_removed")


@dataclass(frozen=True)
class AppliedAutomation:
    """An automation as `apply` recorded it in the store (the scheduler's source of truth)."""

    id: int
    name: str
    category: str | None
    spec: Campaign


OFF_STATES = (CampaignState.DRAFT.value, CampaignState.ARCHIVED.value)


def is_automation(spec: Campaign) -> bool:
    return spec.trigger is not None


# --------------------------------------------------------------------------- activation


@dataclass(frozen=True)
class ActivationState:
    campaign: str
    state: str  # active | inactive | draft | archived | not applied
    activated_at: datetime | None = None
    deactivated_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "state": self.state,
            "activated_at": self.activated_at.isoformat() if self.activated_at else None,
            "deactivated_at": self.deactivated_at.isoformat() if self.deactivated_at else None,
        }


def activation_state(conn: sa.Connection, name: str) -> ActivationState:
    """Whether the automation runs: `draft` until activated, `inactive` once deactivated."""
    row = conn.execute(
        sa.select(CAMPAIGN.c.state, AUTOMATION.c.active,
                  sa.func.coalesce(AUTOMATION.c.activated_at, CAMPAIGN.c.applied_at)
                  .label("activated_at"), AUTOMATION.c.deactivated_at)
        .select_from(CAMPAIGN.outerjoin(AUTOMATION, AUTOMATION.c.campaign_id == CAMPAIGN.c.id))
        .where(CAMPAIGN.c.name == name)
    ).first()  # fmt: skip
    if row is None:
        return ActivationState(name, "not applied")
    if row.state in OFF_STATES:
        return ActivationState(name, str(row.state))
    if row.active is None or row.active:
        return ActivationState(name, "active", aware(row.activated_at))
    return ActivationState(name, "inactive", aware(row.activated_at), aware(row.deactivated_at))


def _applied(conn: sa.Connection, name: str) -> Any:
    row = conn.execute(sa.select(CAMPAIGN).where(CAMPAIGN.c.name == name)).first()
    if row is None:
        raise UsageError(
            f"campaign {name!r} was never applied: there is nothing to switch",
            hint=f"run `campaignctl apply {name}` first",
        )
    spec = Campaign.model_validate(row.definition)
    if not is_automation(spec):
        raise UsageError(
            f"campaign {name!r} has no `trigger:`: only automations are activated",
            hint="`campaignctl send` sends a one-off campaign; its `schedule:` sends it by itself",
        )
    if row.state == CampaignState.ARCHIVED.value:
        raise UsageError(f"campaign {name!r} is archived: it runs no more")
    return row


def set_active(store: Store, name: str, active: bool, now: datetime) -> ActivationState:
    """`campaign activate` / `deactivate`. Deactivating keeps enrolled records where they
    are; activating again resumes them (and takes the events received meanwhile)."""
    store.ensure_schema()
    with store.transaction(immediate=True) as conn:
        row = _applied(conn, name)
        if active and row.state == CampaignState.DRAFT.value:
            conn.execute(
                CAMPAIGN.update()
                .where(CAMPAIGN.c.id == row.id)
                .values(state=CampaignState.ACTIVE.value)
            )
        _ensure_automation(conn, row.id, now, activated_at=now if active else None)
        values: dict[str, Any] = {"active": active}
        values["deactivated_at"] = None if active else now
        conn.execute(AUTOMATION.update().where(AUTOMATION.c.campaign_id == row.id).values(values))
        return activation_state(conn, name)


def _ensure_automation(
    conn: sa.Connection, campaign_id: int, now: datetime, activated_at: datetime | None = None
) -> None:
    exists = conn.execute(
        sa.select(AUTOMATION.c.campaign_id).where(AUTOMATION.c.campaign_id == campaign_id)
    ).first()
    if exists is None:
        conn.execute(
            AUTOMATION.insert().values(
                campaign_id=campaign_id, active=True, activated_at=activated_at or now
            )
        )


# --------------------------------------------------------------------------- enrolment


def audience_of(workspace: Workspace, spec: Campaign) -> Any:
    first = workspace.segments.get(spec.audience.segments[0])
    if first is None:
        raise UsageError(f"segment {spec.audience.segments[0]!r} of {spec.name!r} is not defined")
    return workspace.audiences[first.audience]


def eligible(workspace: Workspace, spec: Campaign, dialect: str, today: Any) -> Any:
    """Who the campaign may enrol: its `audience:` segments minus exclusions, its
    `partner_types` (record categories) when given, active records only."""
    inside = sa.or_(
        *(segment_condition(workspace, s, today, dialect) for s in spec.audience.segments)
    )
    parts = [inside, RECORD.c.status == RecordStatus.ACTIVE.value]
    for name in spec.audience.exclude_segments:
        parts.append(
            sa.not_(sa.func.coalesce(segment_condition(workspace, name, today, dialect), False))
        )
    if spec.partner_types:
        parts.append(RECORD.c.category.in_(spec.partner_types))
    return sa.and_(*parts)


def trigger_selection(
    conn: sa.Connection,
    workspace: Workspace,
    campaign: AppliedAutomation,
    since: datetime | None,
    now: datetime,
) -> sa.Select[Any]:
    """SELECT record_id, trigger_event of the records the trigger selects now (enrolled
    or not): `plan` counts it as "affected", the pass enrols the new ones."""
    spec = campaign.spec
    trigger = spec.trigger
    assert trigger is not None
    dialect = conn.dialect.name
    today = workspace_today(workspace, now)
    audience = audience_of(workspace, spec)
    where = [eligible(workspace, spec, dialect, today)]
    event = str(trigger.event)
    if event == "segment_entered":
        assert trigger.segment is not None
        where.append(segment_condition(workspace, trigger.segment, today, dialect))
        if trigger.where is not None:
            where.append(record_condition(workspace, audience, dialect, today, trigger.where))
        return sa.select(RECORD.c.id.label("record_id"), sa.null().label("trigger_event")).where(
            *where
        )
    if event in LIST_EVENTS:
        m = LIST_MEMBER.c
        if event == "list_added":
            where += [m.list_name == trigger.list, m.removed_at.is_(None)]
        else:
            where += [m.list_name == trigger.list, m.removed_at.is_not(None)]
            if since is not None:
                where.append(m.removed_at >= since)
        if trigger.where is not None:
            where.append(record_condition(workspace, audience, dialect, today, trigger.where))
        return (
            sa.select(RECORD.c.id.label("record_id"), sa.null().label("trigger_event"))
            .select_from(LIST_MEMBER.join(RECORD, RECORD.c.id == m.record_id))
            .where(*where)
        )
    e = EVENT.c
    where += [e.type == event, e.record_id.is_not(None)]
    if since is not None:
        where.append(e.at >= since)
    if trigger.campaign:
        where.append(
            e.campaign_id
            == sa.select(CAMPAIGN.c.id).where(CAMPAIGN.c.name == trigger.campaign).scalar_subquery()
        )
    if trigger.document_type:
        field = (
            sa.literal_column("(event.data ->> 'document_type')")
            if dialect == "postgresql"
            else sa.literal_column("json_extract(event.data, '$.document_type')")
        )
        where.append(field == trigger.document_type)
    if spec.active is not None:  # information campaigns: only inside their window
        where.append(e.at >= datetime.combine(spec.active.from_, datetime.min.time(), UTC))
        end = datetime.combine(spec.active.to, datetime.max.time(), UTC)
        where.append(e.at <= end)
    if trigger.where is not None:
        where.append(trigger_condition(workspace, audience, dialect, today, trigger.where))
    return (
        sa.select(e.record_id.label("record_id"), sa.func.min(e.id).label("trigger_event"))
        .select_from(EVENT.join(RECORD, RECORD.c.id == e.record_id))
        .where(*where)
        .group_by(e.record_id)
    )


def _insert(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def enrol(
    conn: sa.Connection,
    workspace: Workspace,
    campaign: AppliedAutomation,
    since: datetime | None,
    now: datetime,
    due_at: datetime | None = None,
) -> int:
    """Enrol the records the trigger selects that were never enrolled, at the first step,
    due at `due_at` (the end of a first `wait:`; default now); how many."""
    chosen = trigger_selection(conn, workspace, campaign, since, now).subquery()
    stamp = sa.bindparam("now", now, type_=ENROLMENT.c.enrolled_at.type)
    due = sa.bindparam("due", due_at or now, type_=ENROLMENT.c.due_at.type)
    start = first_path(campaign_steps(campaign.spec))
    source = sa.select(
        sa.literal(campaign.id), chosen.c.record_id, stamp, chosen.c.trigger_event,
        sa.literal(start, sa.String), due,
        stamp if start is None else sa.null(),
    ).where(
        ~sa.exists(
            sa.select(ENROLMENT.c.id).where(
                ENROLMENT.c.campaign_id == campaign.id,
                ENROLMENT.c.record_id == chosen.c.record_id,
            )
        )
    )  # fmt: skip
    statement = (
        _insert(conn)(ENROLMENT)
        .from_select(
            ["campaign_id", "record_id", "enrolled_at", "trigger_event", "step", "due_at",
             "finished_at"],
            source,
        )
        .on_conflict_do_nothing()
    )  # fmt: skip
    return _inserted(conn, statement, ENROLMENT.c.id, {"now": now, "due": due_at or now})


def _inserted(conn: sa.Connection, statement: Any, id_column: Any, params: dict[str, Any]) -> int:
    """Run an INSERT … SELECT … ON CONFLICT DO NOTHING; how many rows it inserted."""
    if conn.dialect.name == "sqlite":  # its rowcount counts the rows inserted
        return int(conn.execute(statement, params).rowcount)
    # psycopg reports no rowcount here: count the ids returned, a batch at a time (an
    # enrolment of 1M records never holds 1M Python rows)
    result = conn.execute(statement.returning(id_column), params)
    return sum(len(batch) for batch in result.partitions(10_000))


# --------------------------------------------------------------------------- steps


@dataclass
class CampaignPass:
    """What one pass did for one automation."""

    campaign: str
    enrolled: int = 0
    processed: dict[str, int] = field(default_factory=dict)  # step path -> records
    sent_waves: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def moved(self) -> int:
        return sum(self.processed.values())


@dataclass
class AutomationPass:
    """The automation part of a scheduler pass: the tick line counts it."""

    campaigns: list[CampaignPass] = field(default_factory=list)
    waiting: int = 0  # records waiting (a wait, or a send in progress) after the pass

    @property
    def enrolled(self) -> int:
        return sum(c.enrolled for c in self.campaigns)

    @property
    def processed(self) -> int:
        return sum(c.moved for c in self.campaigns)

    @property
    def failed(self) -> int:
        return sum(len(c.errors) for c in self.campaigns)

    def text(self) -> str:
        line = (
            f"automations: {len(self.campaigns)} active, {self.enrolled} enrolled, "
            f"{self.processed} step(s) run, {self.waiting} waiting, {self.failed} failed"
        )
        errors = [f"{c.campaign}: {e}" for c in self.campaigns for e in c.errors]
        return line + (f" ({'; '.join(errors)})" if errors else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "active": len(self.campaigns),
            "enrolled": self.enrolled,
            "steps_run": self.processed,
            "waiting": self.waiting,
            "failed": self.failed,
            "campaigns": [
                {"campaign": c.campaign, "enrolled": c.enrolled, "steps_run": c.processed,
                 "errors": c.errors}
                for c in self.campaigns
            ],
        }  # fmt: skip


class _Runner:
    """Moves one automation's records through its steps, in this pass."""

    def __init__(
        self,
        store: Store,
        workspace: Workspace,
        campaign: AppliedAutomation,
        now: datetime,
        run_wave: Callable[[int], Any],
        wait_end: Callable[[datetime], datetime] | None = None,
    ) -> None:
        self.store = store
        self.workspace = workspace
        self.campaign = campaign
        self.now = now
        self.run_wave = run_wave
        self.nodes = flatten(campaign_steps(campaign.spec))
        self.names = step_paths(campaign.spec)
        self.result = CampaignPass(campaign.name)
        self.wait_end = wait_end

    def _at(self, path: str) -> list[Any]:
        return [
            ENROLMENT.c.campaign_id == self.campaign.id,
            ENROLMENT.c.step == path,
            ENROLMENT.c.due_at <= sa.bindparam("now", self.now, type_=ENROLMENT.c.due_at.type),
        ]

    def _arrival(self, path: str | None) -> Any:
        """The due time of a record arriving at `path` now: a wait's end (past quiet
        hours), else now."""
        if path is None:
            return None
        node = self.nodes[path]
        if node.step.wait is None:
            return self.now
        end = self.now + node.step.wait
        return self.wait_end(end) if self.wait_end is not None else end

    def _move(self, conn: sa.Connection, where: list[Any], to: str | None) -> None:
        values: dict[str, Any] = {"step": to, "due_at": self._arrival(to), "error": None}
        if to is None:
            values["finished_at"] = self.now
        conn.execute(ENROLMENT.update().where(*where).values(**values), {"now": self.now})

    def _log(
        self, conn: sa.Connection, path: str, where: list[Any], outcome: Any, wave_id: Any = None
    ) -> int:
        stamp = sa.bindparam("now", self.now, type_=STEP_RUN.c.at.type)
        source = sa.select(
            sa.literal(self.campaign.id), sa.literal(path), ENROLMENT.c.record_id,
            outcome if not isinstance(outcome, str) else sa.literal(outcome),
            sa.literal(wave_id, sa.Integer), stamp,
        ).where(*where)  # fmt: skip
        statement = (
            _insert(conn)(STEP_RUN)
            .from_select(["campaign_id", "step", "record_id", "outcome", "wave_id", "at"], source)
            .on_conflict_do_nothing()
        )
        return _inserted(conn, statement, STEP_RUN.c.id, {"now": self.now})

    def run(self) -> bool:
        """One sweep over the tree; True when a record moved."""
        moved = False
        for path, node in self.nodes.items():
            try:
                count = self._step(path, node)
            except CampaignctlError as exc:
                self.result.errors.append(f"step {path} ({node.label}): {exc.message}")
                continue
            if count:
                moved = True
                self.result.processed[path] = self.result.processed.get(path, 0) + count
        return moved

    def _step(self, path: str, node: Node) -> int:
        if node.step.send is not None:
            return self._send(path, node)
        with self.store.transaction(immediate=True) as conn:
            where = self._at(path)
            if node.step.wait is not None:
                count = self._log(conn, path, where, "waited")
                self._move(conn, where, node.next)
                return count
            if node.step.if_ is not None:
                audience = audience_of(self.workspace, self.campaign.spec)
                condition = step_condition(
                    self.workspace, audience, conn.dialect.name,
                    workspace_today(self.workspace, self.now), node.step.if_,
                    self.campaign.id, self.names,
                )  # fmt: skip
                # a correlated EXISTS, not `record_id IN (SELECT …)`: under NOT (the
                # else branch) PostgreSQL would scan the matching records for every one
                matching = sa.exists().where(RECORD.c.id == ENROLMENT.c.record_id, condition)
                outcome = sa.case((matching, "then"), else_="else")
                count = self._log(conn, path, where, outcome)
                self._move(conn, [*where, matching], node.then)
                self._move(conn, [*where, sa.not_(matching)], node.else_)
                return count
            members = sa.select(ENROLMENT.c.record_id).where(*where)
            source = f"campaign {self.campaign.name} step {path}"
            if node.step.add_to_list:
                lists.add_selected(conn, node.step.add_to_list, members, self.now, source)
                count = self._log(conn, path, where, "added")
            else:
                assert node.step.remove_from_list is not None
                lists.remove_selected(conn, node.step.remove_from_list, members, self.now, source)
                count = self._log(conn, path, where, "removed")
            self._move(conn, where, node.next)
            return count

    # ------------------------------------------------------------------ send
    def _send(self, path: str, node: Node) -> int:
        """Records at a send step: those without a wave get one (written with their
        step_run rows in one transaction), waves are sent, then the records whose wave is
        done go on."""
        self._retry_failed(path)
        wave_id = self._new_wave(path)
        if wave_id is not None:
            try:
                self.run_wave(wave_id)
            except TemporaryFailure as exc:
                self.result.errors.append(f"step {path} ({node.label}): {exc.message}")
            except CampaignctlError as exc:
                self._failed(path, wave_id, exc.message)
                raise
        return self._sent_on(path, node)

    def _new_wave(self, path: str) -> int | None:
        c = self.campaign
        with self.store.transaction(immediate=True) as conn:
            where = [
                *self._at(path),
                ~sa.exists(
                    sa.select(STEP_RUN.c.id).where(
                        STEP_RUN.c.campaign_id == c.id,
                        STEP_RUN.c.step == path,
                        STEP_RUN.c.record_id == ENROLMENT.c.record_id,
                    )
                ),
            ]
            waiting = conn.execute(sa.select(sa.func.count()).where(*where), {"now": self.now})
            if not waiting.scalar_one():
                return None
            lock_id = conn.execute(
                LOCK.insert().values(
                    campaign_id=c.id, created_at=self.now, released_at=self.now,
                    definition_hash=self.content, counts={"automation_step": path},
                ).returning(LOCK.c.id)
            ).scalar_one()  # fmt: skip
            self._recipients(conn, lock_id, path, where)
            number = (
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(WAVE.c.number), 0)).where(
                        WAVE.c.campaign_id == c.id
                    )
                ).scalar_one()
                + 1
            )
            wave_id = conn.execute(
                WAVE.insert().values(
                    campaign_id=c.id, number=number, kind=WaveKind.AUTOMATION.value,
                    occurrence_key=f"{c.name}/{AUTOMATION_KEY}/{path}/{number}",
                    scheduled_for=self.now, status=WaveStatus.SCHEDULED.value, lock_id=lock_id,
                    target=path, channels=None, created_at=self.now,
                    note=f"automation step {path}",
                ).returning(WAVE.c.id)
            ).scalar_one()  # fmt: skip
            reached = RECIPIENT.c.record_id == ENROLMENT.c.record_id
            in_lock = sa.exists(
                sa.select(RECIPIENT.c.id).where(RECIPIENT.c.lock_id == lock_id, reached)
            )
            outcome = sa.case((in_lock, "sent"), else_="no_address")
            self._log(conn, path, where, outcome, wave_id)
        self.result.sent_waves.append(wave_id)
        return wave_id

    def _recipients(self, conn: sa.Connection, lock_id: int, path: str, where: list[Any]) -> None:
        """The lock of a step: each record on the first channel of the step it has an
        address for (suppressions, caps and quiet hours apply when the outbox is made)."""
        spec = self.campaign.spec
        send = self.nodes[path].step.send
        assert send is not None
        channels = list(send.channels or spec.channels)
        column = {Channel.EMAIL: RECORD.c.email_normalized, Channel.SMS: RECORD.c.phone}
        has = [(column[ch].is_not(None), ch) for ch in channels]
        channel = sa.case(*((cond, ch.value) for cond, ch in has), else_=None)
        address = sa.case(*((cond, column[ch]) for cond, ch in has), else_=None)
        chosen = (
            sa.select(RECORD.c.id.label("record_id"), channel.label("channel"),
                      address.label("address"))
            .select_from(ENROLMENT.join(RECORD, RECORD.c.id == ENROLMENT.c.record_id))
            .where(*where)
            .subquery()
        )  # fmt: skip
        conn.execute(
            RECIPIENT.insert().from_select(
                ["lock_id", "record_id", "channel", "address"],
                sa.select(sa.literal(lock_id), chosen.c.record_id, chosen.c.channel,
                          chosen.c.address).where(chosen.c.channel.is_not(None)),
            ),
            {"now": self.now},
        )  # fmt: skip

    def _failed(self, path: str, wave_id: int, message: str) -> None:
        """A wave that could not be sent (its template broke): its records stay at the
        step with the error, and get a new wave on the next pass."""
        with self.store.transaction(immediate=True) as conn:
            conn.execute(
                WAVE.update().where(WAVE.c.id == wave_id).values(
                    status=WaveStatus.FAILED.value, finished_at=self.now, note=message[:500]
                )
            )  # fmt: skip
            runs = sa.select(STEP_RUN.c.record_id).where(STEP_RUN.c.wave_id == wave_id)
            conn.execute(
                ENROLMENT.update()
                .where(ENROLMENT.c.campaign_id == self.campaign.id,
                       ENROLMENT.c.record_id.in_(runs))
                .values(error=message[:500])
            )  # fmt: skip
            conn.execute(STEP_RUN.delete().where(STEP_RUN.c.wave_id == wave_id))

    def _failed_rows(self, path: str) -> Any:
        """SELECT record_id, error of the records at `path` whose step message failed."""
        return (
            sa.select(STEP_RUN.c.record_id, OUTBOX.c.error, LOCK.c.definition_hash)
            .join(OUTBOX, sa.and_(OUTBOX.c.wave_id == STEP_RUN.c.wave_id,
                                  OUTBOX.c.record_id == STEP_RUN.c.record_id))
            .join(WAVE, WAVE.c.id == STEP_RUN.c.wave_id)
            .join(LOCK, LOCK.c.id == WAVE.c.lock_id)
            .where(STEP_RUN.c.campaign_id == self.campaign.id, STEP_RUN.c.step == path,
                   OUTBOX.c.state == OutboxState.FAILED.value)
        )  # fmt: skip

    @cached_property
    def content(self) -> str:
        """The hash of the automation's definition and template files as they are now."""
        return content_hash(self.workspace, self.campaign.spec)

    def _retry_failed(self, path: str) -> None:
        """Records held at a send step by a failed message get a new one once its content
        changed (a template fixed: the hash of the files differs from the failed wave's)."""
        current = self.content
        with self.store.transaction(immediate=True) as conn:
            failed = self._failed_rows(path).where(LOCK.c.definition_hash != current).subquery()
            conn.execute(
                STEP_RUN.delete().where(
                    STEP_RUN.c.campaign_id == self.campaign.id,
                    STEP_RUN.c.step == path,
                    STEP_RUN.c.record_id.in_(sa.select(failed.c.record_id)),
                )
            )

    def _sent_on(self, path: str, node: Node) -> int:
        """Records whose step wave is done (or failed for good) go on to the next step;
        those whose own message failed (a template that cannot render…) stay at the step,
        reported once, with the error."""
        with self.store.transaction(immediate=True) as conn:
            failed = self._failed_rows(path).subquery()
            held = conn.execute(
                sa.select(ENROLMENT.c.record_id, failed.c.error)
                .join(failed, failed.c.record_id == ENROLMENT.c.record_id)
                .where(*self._at(path), ENROLMENT.c.error.is_(None)),
                {"now": self.now},
            ).all()  # fmt: skip
            if held:
                error = str(held[0].error or "message failed")[:500]
                conn.execute(
                    ENROLMENT.update()
                    .where(ENROLMENT.c.campaign_id == self.campaign.id,
                           ENROLMENT.c.record_id.in_([r.record_id for r in held]))
                    .values(error=error)
                )  # fmt: skip
                self.result.errors.append(
                    f"step {path} ({self.nodes[path].label}): {len(held)} record(s) held at "
                    f"the step, their message failed: {error}; "
                    "the next pass after a fix sends it again"
                )
            finished = sa.select(STEP_RUN.c.record_id).join(
                WAVE, WAVE.c.id == STEP_RUN.c.wave_id
            ).where(
                STEP_RUN.c.campaign_id == self.campaign.id,
                STEP_RUN.c.step == path,
                WAVE.c.status.in_([WaveStatus.DONE.value, WaveStatus.FAILED.value]),
            )  # fmt: skip
            where = [
                *self._at(path),
                ENROLMENT.c.record_id.in_(finished),
                ~sa.exists().where(failed.c.record_id == ENROLMENT.c.record_id),
            ]
            count = conn.execute(sa.select(sa.func.count()).where(*where), {"now": self.now})
            moved = int(count.scalar_one())
            if moved:
                self._move(conn, where, node.next)
            return moved


def unset_nulls(value: Any) -> Any:
    """The stored definition (every default written out) without its nulls: a test is
    then made of the operators written, as when the YAML was read."""
    if isinstance(value, dict):
        return {k: unset_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [unset_nulls(v) for v in value]
    return value


def applied_campaign(row: Any) -> AppliedAutomation:
    """An automation as applied to the store (the scheduler's source of truth)."""
    spec = Campaign.model_validate(unset_nulls(row.definition))
    return AppliedAutomation(row.id, row.name, row.category, spec)


def active_automations(conn: sa.Connection) -> list[tuple[AppliedAutomation, datetime | None]]:
    """The automations switched on, with when they were activated (None: first pass)."""
    rows = conn.execute(
        sa.select(CAMPAIGN, AUTOMATION.c.active, AUTOMATION.c.activated_at)
        .select_from(CAMPAIGN.outerjoin(AUTOMATION, AUTOMATION.c.campaign_id == CAMPAIGN.c.id))
        .where(CAMPAIGN.c.state.not_in(OFF_STATES))
        .order_by(CAMPAIGN.c.name)
    ).all()
    found = []
    for row in rows:
        if row.definition is None or not row.definition.get("trigger"):
            continue
        if row.active is False:
            continue
        found.append((applied_campaign(row), aware(row.activated_at)))
    return found


def automation_pass(
    store: Store,
    workspace: Workspace,
    now: datetime,
    run_wave: Callable[[int], Any],
    *,
    renew: Callable[[], None] | None = None,
    wait_end: Callable[[datetime], datetime] | None = None,
) -> AutomationPass:
    """Enrol and advance every active automation once (the scheduler's pass calls it).

    `run_wave(wave_id)` sends a step's wave (the scheduler's `runner.run_wave`);
    `wait_end(at)` moves the end of a wait past the SMS quiet hours (delivery's rule, given
    by the scheduler). An automation's failure is reported in its CampaignPass and never
    stops the others."""
    result = AutomationPass()
    store.ensure_schema()
    with store.read() as conn:
        automations = active_automations(conn)
    for campaign, activated_at in automations:
        if renew is not None:
            renew()
        done = CampaignPass(campaign.name)
        result.campaigns.append(done)
        try:
            with store.transaction(immediate=True) as conn:
                if activated_at is None:
                    applied = conn.execute(
                        sa.select(CAMPAIGN.c.applied_at).where(CAMPAIGN.c.id == campaign.id)
                    ).scalar_one()
                    activated_at = min(aware(applied) or now, now)
                    _ensure_automation(conn, campaign.id, now, activated_at)
                since = activated_at if _event_trigger(campaign.spec) else None
                runner = _Runner(store, workspace, campaign, now, run_wave, wait_end)
                start = first_path(campaign_steps(campaign.spec))
                due_at = runner._arrival(start) if start is not None else now
                done.enrolled = enrol(conn, workspace, campaign, since, now, due_at)
                conn.execute(
                    AUTOMATION.update()
                    .where(AUTOMATION.c.campaign_id == campaign.id)
                    .values(last_pass_at=now)
                )
            runner.result = done
            for _ in range(2 * len(runner.nodes) + 2):
                if not runner.run():
                    break
        except CampaignctlError as exc:
            done.errors.append(exc.message)
    with store.read() as conn:
        result.waiting = int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    ENROLMENT.c.step.is_not(None),
                    ENROLMENT.c.campaign_id.in_([c.id for c, _ in automations] or [-1]),
                )
            ).scalar_one()
        )
    return result


def _event_trigger(spec: Campaign) -> bool:
    assert spec.trigger is not None
    return str(spec.trigger.event) not in ("segment_entered", "list_added")
