"""`export push` and `export withdraw`: move badges to (or off) the CRM systems.

A push, under the lease `export:CAMPAIGN` (one transfer of a campaign at a time):
1. records a transfer, then, in the same committed transaction, gives every locked record
   of the selected cells a badge row per system (`pending`) with its idempotency key
   (`CAMPAIGN/SYSTEM/tTRANSFER/rRECORD`), set-based, one statement per cell and system;
   a badge withdrawn before gets a new key (it is a new transfer), no other badge ever
   does;
2. sends the `pending` (and `failed`) badges: one CSV file, or webhook batches; a batch
   is marked `sent` only once the system answered it. A push killed between sending and
   marking leaves its badges `pending` with their keys: the next push sends them again
   under the same keys, and the system drops what it already has.
A withdraw marks the selected badges `withdrawing` first (committed), then sends them
(the CSV system gets a withdraw file) and marks them `withdrawn`.

After a `lock --refresh` (a push ran from another lock), a push also marks `withdrawing`,
in step 1, the badges whose record the lock in force left out or put in another cell, and
withdraws them first, as a withdraw does; a moved record's badge, once withdrawn, is made
anew for its new cell (a new key) and sent with the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from campaignctl import clock
from campaignctl.enums import BadgeState, TransferAction
from campaignctl.errors import StateError, UsageError
from campaignctl.export.cells import BadgeSpec, Selection, badge_specs, check_selection
from campaignctl.export.systems import Badge, CsvDrop, Webhook
from campaignctl.safecsv import FORMULA_START, neutralise
from campaignctl.spec.models import Campaign, ExportSystemType
from campaignctl.spec.workspace import Workspace
from campaignctl.store.campaigns import lock_id_in_force as active_lock_id
from campaignctl.store.lease import HeldLease, acquire, this_holder
from campaignctl.store.statistics import refresh_statistics
from campaignctl.store.store import Store
from campaignctl.store.tables import (
    CAMPAIGN,
    EXPORT_BADGE,
    EXPORT_TRANSFER,
    RECIPIENT,
    RECORD,
)

LEASE_TTL = timedelta(seconds=60)
# a badge in these states may be in the CRM: a push withdraws it when the lock in force
# no longer puts its record in its cell
STALE_STATES = [
    BadgeState.SENT.value,
    BadgeState.PENDING.value,
    BadgeState.FAILED.value,
    BadgeState.WITHDRAWING.value,
]
RENEW_EVERY = 10.0  # seconds
MAX_LISTED_FAILURES = 20
Progress = Callable[[str, int, int], None]  # system, done, total


@dataclass(frozen=True)
class _Due:
    """The badges one pass sends to one system: all in `state`, matched by `where`."""

    system: str
    action: TransferAction
    state: str
    where: Any


@dataclass(frozen=True)
class TransferOptions:
    selection: Selection = field(default_factory=Selection)
    environ: Mapping[str, str] | None = None
    sleep: Callable[[float], None] = time.sleep
    progress: Progress | None = None
    lock_timeout: timedelta | None = None


@dataclass
class SystemResult:
    """What one transfer did for one system."""

    system: str
    type: str
    target: str
    to_send: int = 0  # badges this run had to send
    sent: int = 0  # accepted by the system in this run (withdrawn, for a withdraw)
    failed: int = 0  # refused (4xx) in this run
    already: int = 0  # push: already transferred, unchanged; withdraw: nothing to undo
    changed: int = 0  # push: transferred with a badge the definitions changed since
    # push: badges of records a `lock --refresh` left out or moved to another cell, which
    # this push withdraws first (a moved record then gets its new cell's badge)
    to_withdraw: int = 0
    withdrawn: int = 0  # of them, withdrawn in this run
    left_out: int = 0  # of `to_withdraw`: the record is no longer in the lock
    moved: int = 0  # of `to_withdraw`: the record is in another cell now
    retries: int = 0
    file: str | None = None
    withdraw_file: str | None = None  # push, csv: the file withdrawing those badges
    failures: list[dict[str, str]] = field(default_factory=list)  # first ones

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TransferResult:
    campaign: str
    action: str
    transfer_id: int
    lock_id: int | None
    selection: Selection
    systems: list[SystemResult] = field(default_factory=list)
    elapsed: float = 0.0
    outcome: str = "done"

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.systems)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.systems)

    @property
    def withdrawn(self) -> int:
        """Push: badges withdrawn because the lock in force left their record out or moved
        it to another cell."""
        return sum(s.withdrawn for s in self.systems)

    @property
    def nothing_to_do(self) -> bool:
        return not any(s.to_send or s.to_withdraw for s in self.systems)

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "campaign": self.campaign,
            "action": self.action,
            "transfer": self.transfer_id,
            "lock": self.lock_id,
            "selection": self.selection.as_json(),
            "outcome": self.outcome,
            "sent": self.sent,
            "failed": self.failed,
            "withdrawn": self.withdrawn,
            "nothing_to_do": self.nothing_to_do,
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.sent / self.elapsed, 1) if self.elapsed else None,
            "systems": [s.as_json() for s in self.systems],
        }


# =========================================================================== entry points


def push_badges(
    store: Store, workspace: Workspace, name: str, options: TransferOptions | None = None
) -> TransferResult:
    """Transfer the badges of the selected cells of a locked campaign (see the module)."""
    return _Transfer(store, workspace, name, TransferAction.PUSH, options).run()


def withdraw_badges(
    store: Store, workspace: Workspace, name: str, options: TransferOptions | None = None
) -> TransferResult:
    """Undo the transfer of the selected badges (see the module)."""
    return _Transfer(store, workspace, name, TransferAction.WITHDRAW, options).run()


# =========================================================================== the run


class _Transfer:
    def __init__(
        self,
        store: Store,
        workspace: Workspace,
        name: str,
        action: TransferAction,
        options: TransferOptions | None,
    ) -> None:
        self.store = store
        self.workspace = workspace
        self.campaign: Campaign = workspace.campaign(name)
        self.action = action
        self.options = options or TransferOptions()
        check_selection(self.campaign, self.options.selection)
        self.specs = badge_specs(self.campaign)
        self.lease: HeldLease | None = None
        self._renewed = 0.0
        self._changed: bool | None = None  # see _lock_changed

    # ------------------------------------------------------------------ frame
    def run(self) -> TransferResult:
        started = time.monotonic()
        self.lease = acquire(
            self.store,
            f"export:{self.campaign.name}",
            f"export {self.action}",
            LEASE_TTL,
            wait=self.options.lock_timeout,
            sleep=self.options.sleep,
            timezone=self.workspace.config.timezone if self.workspace.config else "UTC",
        )
        self._renewed = time.monotonic()
        try:
            result = self._begin()
            try:
                for system in result.systems:
                    self._system(result, system)
            except BaseException:
                result.outcome = "stopped"
                result.elapsed = time.monotonic() - started
                self._settle(lambda: self._finish(result))
                raise
            result.outcome = "failed" if result.failed else "done"
            result.elapsed = time.monotonic() - started
            self._finish(result)
        except BaseException:
            self._settle(self.lease.release)
            raise
        self.lease.release()
        return result

    def _settle(self, step: Callable[[], None]) -> None:
        """Record the end of a run that an error or Ctrl-C stopped, on a fresh connection
        (an interrupted statement can leave its pooled one unusable). Best effort: the
        first error is the one reported; a transfer left unrecorded reads `running or
        killed`, and a lease left behind is taken over, its holder being gone."""
        try:
            self.store.engine.dispose()
            step()
        except Exception:
            pass

    def _heartbeat(self) -> None:
        if self.lease is not None and time.monotonic() - self._renewed > RENEW_EVERY:
            self.lease.renew()
            self._renewed = time.monotonic()

    def _systems(self) -> list[str]:
        wanted = self.options.selection.system
        names = list(dict.fromkeys(spec.system for spec in self.specs.values()))
        return [n for n in names if wanted in (None, n)]

    def _begin(self) -> TransferResult:
        now = clock.now()
        selection = self.options.selection
        with self.store.transaction(immediate=True) as conn:
            campaign_id = _campaign_id(conn, self.campaign.name)
            lock_id = active_lock_id(conn, campaign_id)
            if lock_id is None and self.action == TransferAction.PUSH:
                raise StateError(
                    f"campaign {self.campaign.name!r} is not locked: badges are transferred "
                    "from a lock, so that the CRM gets the figures that were reviewed",
                    hint=f"run `campaignctl lock {self.campaign.name}` first "
                    "(`lock --refresh` recomputes the cells)",
                )
            transfer_id = conn.execute(
                EXPORT_TRANSFER.insert()
                .values(
                    campaign_id=campaign_id,
                    lock_id=lock_id,
                    action=self.action.value,
                    selection=selection.as_json(),
                    holder=this_holder(),
                    started_at=now,
                )
                .returning(EXPORT_TRANSFER.c.id)
            ).scalar_one()
            self.campaign_id, self.transfer_id = campaign_id, int(transfer_id)
            self.lock_id = lock_id
            result = TransferResult(
                self.campaign.name, self.action.value, self.transfer_id, lock_id, selection
            )
            refresh_statistics(conn, "recipient", "export_badge")
            for system in self._systems():
                settings = self._settings(system)
                webhook = settings.type == ExportSystemType.WEBHOOK
                target = settings.url if webhook else settings.path
                result.systems.append(SystemResult(system, settings.type.value, target))
                if self.action == TransferAction.PUSH:
                    assert lock_id is not None
                    if self._lock_changed(conn, lock_id):
                        self._mark_stale(conn, result.systems[-1], lock_id)
                    states = self._states(conn, system)
                    self._make_badges(conn, system, lock_id, BadgeState.WITHDRAWN in states)
                    if BadgeState.FAILED in states:
                        self._retry_failed(conn, system)
                else:
                    self._mark_withdrawing(conn, system)
            refresh_statistics(conn, "export_badge")  # the badges just made
            for system_result in result.systems:
                self._count(conn, system_result)
        return result

    def _lock_changed(self, conn: sa.Connection, lock_id: int) -> bool:
        """Whether an earlier push ran from another lock (before a `lock --refresh`): only
        then can a badge sit in a cell the lock in force does not give its record."""
        if self._changed is None:
            transfer = EXPORT_TRANSFER.c
            self._changed = (
                conn.execute(
                    sa.select(sa.literal(1))
                    .where(
                        transfer.campaign_id == self.campaign_id,
                        transfer.action == TransferAction.PUSH.value,
                        transfer.id != self.transfer_id,
                        sa.or_(transfer.lock_id.is_(None), transfer.lock_id != lock_id),
                    )
                    .limit(1)
                ).first()
                is not None
            )
        return self._changed

    def _mark_stale(self, conn: sa.Connection, result: SystemResult, lock_id: int) -> None:
        """Badges (transferred, on their way, refused or being withdrawn) whose record the
        lock in force left out, or put in another cell, are marked `withdrawing` by this
        transfer, counted: the push withdraws them before it sends anything (a moved
        record then gets its new cell's badge). In the selection: the badge's cell, or the
        record's new one, is selected."""
        badge = EXPORT_BADGE.c
        system = result.system
        recipient = RECIPIENT.c
        in_lock = sa.and_(recipient.lock_id == lock_id, recipient.record_id == badge.record_id)
        same_cell = sa.exists().where(
            in_lock,
            recipient.segment.is_not_distinct_from(badge.segment),
            recipient.channel == badge.channel,
        )
        selection = self.options.selection
        scope: Any = sa.true()
        if selection.segment is not None or selection.channel is not None:
            pairs = [
                sa.and_(recipient.segment == spec.segment, recipient.channel == spec.channel)
                for spec in self._cells(system)
            ]
            scope = sa.or_(
                self._where_cells(system, any_cell=True),
                sa.exists().where(in_lock, sa.or_(*pairs) if pairs else sa.false()),
            )
        stale = sa.and_(
            badge.campaign_id == self.campaign_id,
            badge.system == system,
            badge.state.in_(STALE_STATES),
            ~same_cell,
            scope,
        )
        moved = sa.exists().where(in_lock).label("moved")
        for is_moved, n in conn.execute(
            sa.select(moved, sa.func.count()).where(stale).group_by(moved)
        ):
            if is_moved:
                result.moved += int(n)
            else:
                result.left_out += int(n)
        result.to_withdraw = result.moved + result.left_out
        if result.to_withdraw:
            conn.execute(
                EXPORT_BADGE.update()
                .where(stale)
                .values(state=BadgeState.WITHDRAWING.value, withdraw_transfer_id=self.transfer_id)
            )

    def _finish(self, result: TransferResult) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                EXPORT_TRANSFER.update()
                .where(EXPORT_TRANSFER.c.id == self.transfer_id)
                .values(
                    finished_at=clock.now(),
                    outcome=result.outcome,
                    counts={
                        s.system: {
                            "sent": s.sent,
                            "failed": s.failed,
                            "already": s.already,
                            **({"withdrawn": s.withdrawn} if s.to_withdraw else {}),
                        }
                        for s in result.systems
                    },
                )
            )

    def _settings(self, system: str) -> Any:
        config = self.workspace.config
        assert config is not None
        settings = config.systems.get(system)
        if settings is None:
            raise UsageError(
                f"export system {system!r} is not in campaignctl.yaml `systems:`",
                hint="add it back there to reach it",
            )
        return settings

    def _folder(self, system: str, settings: Any) -> Any:
        return self.workspace.confined_file(
            settings.path, "", "export folder", (None, None, "systems", system, "path")
        )

    # ------------------------------------------------------------------ selection
    def _cells(self, system: str) -> list[BadgeSpec]:
        selection = self.options.selection
        return [
            spec
            for (name, segment, channel), spec in self.specs.items()
            if name == system and selection.covers(system, segment, channel)
        ]

    def _where_cells(self, system: str, *, any_cell: bool = False) -> sa.ColumnElement[bool]:
        """Badges of this campaign and system in the selected cells. A withdraw
        (`any_cell`) reaches every badge of the selection, whatever exports say now."""
        badge = EXPORT_BADGE.c
        base = sa.and_(badge.campaign_id == self.campaign_id, badge.system == system)
        selection = self.options.selection
        if any_cell:
            extra = []
            if selection.segment is not None:
                extra.append(badge.segment == selection.segment)
            if selection.channel is not None:
                extra.append(badge.channel == selection.channel)
            return sa.and_(base, *extra)
        pairs = [
            sa.and_(badge.segment == spec.segment, badge.channel == spec.channel)
            for spec in self._cells(system)
        ]
        return sa.and_(base, sa.or_(*pairs) if pairs else sa.false())

    # ------------------------------------------------------------------ badges
    def _states(self, conn: sa.Connection, system: str) -> set[str]:
        """The states the campaign's badges in `system` are in (to skip needless updates)."""
        badge = EXPORT_BADGE.c
        return set(
            conn.execute(
                sa.select(badge.state)
                .where(badge.campaign_id == self.campaign_id, badge.system == system)
                .distinct()
            ).scalars()
        )

    def _make_badges(self, conn: sa.Connection, system: str, lock_id: int, withdrawn: bool) -> None:
        """Every locked record of the selected cells gets its badge row and key now
        (`withdrawn`: some badges were withdrawn, and those in the cells get new keys)."""
        badge = EXPORT_BADGE.c
        prefix = f"{self.campaign.name}/{system}/t{self.transfer_id}/r"
        key = sa.literal(prefix, sa.String) + sa.cast(RECIPIENT.c.record_id, sa.String)
        cells = self._cells(system)
        if not cells:
            return
        recipient = RECIPIENT.c
        # one pass over the lock's recipients for every selected cell (a statement per cell
        # would read them once per cell); the cell's badge hash by a CASE over the cells
        conn.execute(
            EXPORT_BADGE.insert().from_select(
                [
                    "campaign_id",
                    "system",
                    "record_id",
                    "segment",
                    "channel",
                    "state",
                    "idempotency_key",
                    "fields_hash",
                    "transfer_id",
                    "attempts",
                ],
                sa.select(
                    sa.literal(self.campaign_id),
                    sa.literal(system),
                    recipient.record_id,
                    recipient.segment,
                    recipient.channel,
                    sa.literal(BadgeState.PENDING.value),
                    key,
                    sa.case(
                        *[
                            (
                                sa.and_(
                                    recipient.segment == spec.segment,
                                    recipient.channel == spec.channel,
                                ),
                                sa.literal(spec.fields_hash),
                            )
                            for spec in cells
                        ]
                    ),
                    sa.literal(self.transfer_id),
                    sa.literal(0),
                ).where(
                    recipient.lock_id == lock_id,
                    sa.or_(
                        *[
                            sa.and_(
                                recipient.segment == spec.segment,
                                recipient.channel == spec.channel,
                            )
                            for spec in cells
                        ]
                    ),
                    ~sa.exists().where(
                        badge.campaign_id == self.campaign_id,
                        badge.system == system,
                        badge.record_id == recipient.record_id,
                    ),
                ),
            )
        )
        if not withdrawn:
            return
        for spec in cells:
            in_cell = sa.and_(
                recipient.lock_id == lock_id,
                recipient.segment == spec.segment,
                recipient.channel == spec.channel,
            )
            # a badge withdrawn before is transferred anew: a new transfer, a new key
            renewed = sa.literal(prefix, sa.String) + sa.cast(badge.record_id, sa.String)
            conn.execute(
                EXPORT_BADGE.update()
                .where(
                    badge.campaign_id == self.campaign_id,
                    badge.system == system,
                    badge.state == BadgeState.WITHDRAWN.value,
                    badge.record_id.in_(sa.select(RECIPIENT.c.record_id).where(in_cell)),
                )
                .values(
                    state=BadgeState.PENDING.value,
                    idempotency_key=renewed,
                    transfer_id=self.transfer_id,
                    fields_hash=spec.fields_hash,
                    segment=spec.segment,
                    channel=spec.channel,
                    attempts=0,
                    error=None,
                    pushed_at=None,
                    withdraw_transfer_id=None,
                    withdrawn_at=None,
                )
            )

    def _retry_failed(self, conn: sa.Connection, system: str) -> None:
        """Badges a system refused go again, under the keys they have."""
        badge = EXPORT_BADGE.c
        conn.execute(
            EXPORT_BADGE.update()
            .where(self._where_cells(system), badge.state == BadgeState.FAILED.value)
            .values(state=BadgeState.PENDING.value)
        )

    def _mark_withdrawing(self, conn: sa.Connection, system: str) -> None:
        badge = EXPORT_BADGE.c
        conn.execute(
            EXPORT_BADGE.update()
            .where(
                self._where_cells(system, any_cell=True),
                badge.state.in_(
                    [BadgeState.SENT.value, BadgeState.PENDING.value, BadgeState.WITHDRAWING.value]
                ),
            )
            .values(state=BadgeState.WITHDRAWING.value, withdraw_transfer_id=self.transfer_id)
        )

    def _due(self, system: str) -> _Due:
        """The badges this transfer sends to `system`: the push's pending ones in the
        selected cells; the withdraw's `withdrawing` ones in the selection."""
        badge = EXPORT_BADGE.c
        if self.action == TransferAction.PUSH:
            state = BadgeState.PENDING.value
            where = self._where_cells(system)
        else:
            state = BadgeState.WITHDRAWING.value
            where = self._where_cells(system, any_cell=True)
        return _Due(system, self.action, state, sa.and_(where, badge.state == state))

    def _stale_due(self, system: str) -> _Due:
        """The badges a push withdraws first (see `_mark_stale`)."""
        badge = EXPORT_BADGE.c
        state = BadgeState.WITHDRAWING.value
        where = sa.and_(
            badge.campaign_id == self.campaign_id,
            badge.system == system,
            badge.state == state,
            badge.withdraw_transfer_id == self.transfer_id,
        )
        return _Due(system, TransferAction.WITHDRAW, state, where)

    def _count(self, conn: sa.Connection, result: SystemResult) -> None:
        """to_send, already, changed: sums over one pass of the badges, no grouping (a
        GROUP BY over 100,000 badges sorts them)."""
        badge = EXPORT_BADGE.c
        withdraw = self.action == TransferAction.WITHDRAW

        def count(condition: Any) -> Any:
            return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

        same = [
            sa.and_(
                badge.segment == spec.segment,
                badge.channel == spec.channel,
                badge.fields_hash == spec.fields_hash,
            )
            for spec in self._cells(result.system)
        ]
        sent = badge.state == BadgeState.SENT.value
        due, unchanged, transferred, total = conn.execute(
            sa.select(
                count(badge.state == self._due(result.system).state),
                count(sa.and_(sent, sa.or_(*same) if same else sa.false())),
                count(sent),
                sa.func.count(),
            ).where(self._where_cells(result.system, any_cell=withdraw))
        ).one()
        result.to_send = int(due)
        if withdraw:
            result.already, result.changed = int(total) - int(due), 0
        else:
            result.already, result.changed = int(unchanged), int(transferred) - int(unchanged)

    # ------------------------------------------------------------------ sending
    def _rows(self, conn: sa.Connection, due: _Due, after: int, limit: int | None) -> Any:
        badge = EXPORT_BADGE.c
        query = (
            sa.select(
                badge.id,
                RECORD.c.key,
                badge.segment,
                badge.channel,
                badge.idempotency_key,
                badge.record_id,
            )
            .join(RECORD, RECORD.c.id == badge.record_id)
            .where(due.where, badge.record_id > after)
            .order_by(badge.record_id)  # the order of the (campaign, system, record) index
        )
        if limit is not None:
            query = query.limit(limit)
        return conn.execute(query)

    def _badges(self, rows: Any, system: str) -> Iterator[Badge]:
        for badge_id, key, segment, channel, idempotency_key, record_id in rows:
            spec = self.specs.get((system, segment, channel))
            entity, label, fields = (spec.entity, spec.label, spec.fields) if spec else ("", "", {})
            yield Badge(
                badge_id, key, segment, channel, idempotency_key, entity, label, fields, record_id
            )

    def _system(self, result: TransferResult, system: SystemResult) -> None:
        if not system.to_send and not system.to_withdraw:
            return
        settings = self._settings(system.system)
        send = self._csv if settings.type == ExportSystemType.CSV else self._webhook
        if system.to_withdraw:
            # first withdraw what the lock in force left out or moved: a moved record's
            # old badge goes before its new one is made
            done = SystemResult(system.system, system.type, system.target)
            done.to_send = system.to_withdraw
            send(done, settings, self._stale_due(system.system))
            system.withdrawn, system.withdraw_file = done.sent, done.file
            system.failed += done.failed
            system.retries += done.retries
            system.failures.extend(done.failures)
            if system.withdrawn:
                with self.store.transaction() as conn:
                    assert self.lock_id is not None
                    self._make_badges(conn, system.system, self.lock_id, withdrawn=True)
                    self._count(conn, system)
        if system.to_send:
            send(system, settings, self._due(system.system))

    def _progress(self, system: str, done: int, total: int) -> None:
        if self.options.progress is not None:
            self.options.progress(system, done, total)

    def _csv(self, result: SystemResult, settings: Any, due: _Due) -> None:
        """One file, its rows made whole by one SELECT (the cells' constant columns as SQL
        literals, the record key made formula-safe in SQL) and written by `writerows`
        straight from the cursor: no Python per badge."""
        drop = CsvDrop(result.system, self._folder(result.system, settings))
        specs = [spec for (s, _, _), spec in self.specs.items() if s == result.system]
        if due.action == TransferAction.PUSH:
            specs = self._cells(result.system)
        names = list(dict.fromkeys(n for spec in specs for n in spec.fields))
        action, campaign, transfer = due.action.value, self.campaign.name, self.transfer_id
        header = ["action", "record", "segment", "channel", "entity", "label", *names]
        header += ["idempotency_key", "campaign", "transfer"]
        badge = EXPORT_BADGE.c
        query = (
            sa.select(
                sa.literal(action, sa.String),
                _formula_safe(RECORD.c.key),
                *_cell_columns(specs, names, badge.segment, badge.channel),
                badge.idempotency_key,
                sa.literal(campaign, sa.String),
                sa.literal(str(transfer), sa.String),
            )
            .join_from(EXPORT_BADGE, RECORD, RECORD.c.id == badge.record_id)
            .where(due.where)
            .order_by(badge.record_id)  # the order of the (campaign, system, record) index
        )
        with self.store.read() as conn:
            last = conn.execute(sa.select(sa.func.max(badge.record_id)).where(due.where)).scalar()
            rows = conn.execution_options(stream_results=True, max_row_buffer=5000).execute(query)
            path, count = drop.write(
                f"{campaign}.{action}.{transfer:06d}.csv",
                header,
                rows.partitions(5000),
                on_row=lambda n: self._progress(result.system, n, result.to_send),
            )
        if count:
            self._mark_done(due, 0, int(last))
            result.file = str(path.relative_to(self.workspace.root))
        result.sent = count
        self._progress(result.system, count, result.to_send)

    def _webhook(self, result: SystemResult, settings: Any, due: _Due) -> None:
        import os

        hook = Webhook(
            result.system,
            settings,
            self.options.environ if self.options.environ is not None else os.environ,
            self.options.sleep,
        )
        hook.open()
        try:
            after, done = 0, 0
            while True:
                with self.store.read() as conn:
                    rows = self._rows(conn, due, after, settings.batch_size).all()
                batch = list(self._badges(rows, result.system))
                if not batch:
                    break
                outcome = hook.send(due.action.value, self.campaign.name, self.transfer_id, batch)
                result.retries += outcome.retries
                # the batch is every due badge of the selection in this range of records
                self._mark_done(due, after, batch[-1].record_id, outcome.rejected)
                after = batch[-1].record_id
                result.sent += len(outcome.accepted)
                result.failed += len(outcome.rejected)
                keys = {b.id: b.record for b in batch}
                for badge_id, why in outcome.rejected.items():
                    if len(result.failures) < MAX_LISTED_FAILURES:
                        result.failures.append({"record": keys[badge_id], "error": why})
                done += len(batch)
                self._progress(result.system, done, result.to_send)
                self._heartbeat()
        finally:
            hook.close()

    def _mark_done(
        self, due: _Due, after: int, up_to: int, rejected: dict[int, str] | None = None
    ) -> None:
        """Record what the system confirmed: every due badge of the selection whose record
        is in (after, up_to] (what was sent: nothing else writes meanwhile, the lease says
        so), except those `rejected`."""
        badge = EXPORT_BADGE.c
        now = clock.now()
        push = due.action == TransferAction.PUSH
        values: dict[str, Any] = (
            {"state": BadgeState.SENT.value, "pushed_at": now, "error": None}
            if push
            else {"state": BadgeState.WITHDRAWN.value, "withdrawn_at": now}
        )
        values["attempts"] = badge.attempts + 1
        with self.store.transaction(bump=False) as conn:
            conn.execute(
                EXPORT_BADGE.update()
                .where(
                    due.where,
                    badge.record_id > after,
                    badge.record_id <= up_to,
                    ~badge.id.in_(list(rejected)) if rejected else sa.true(),
                )
                .values(values)
            )
            for badge_id, why in (rejected or {}).items():
                conn.execute(
                    EXPORT_BADGE.update()
                    .where(badge.id == badge_id)
                    .values(
                        state=BadgeState.FAILED.value if push else BadgeState.WITHDRAWING.value,
                        error=why,
                        attempts=badge.attempts + 1,
                    )
                )


# =========================================================================== CSV columns


def _csv_text(value: object) -> str:
    """A constant cell as `csv.writer` writes it, formula-safe (`safecsv.neutralise`)."""
    safe = neutralise(value)
    return safe if isinstance(safe, str) else str(safe)


def _formula_safe(column: Any) -> Any:
    """`safecsv.neutralise` in SQL: a text a spreadsheet would run gets an apostrophe."""
    first = sa.func.substr(column, 1, 1)
    return sa.case(
        (first.in_([sa.literal(c, sa.String) for c in FORMULA_START]), sa.literal("'") + column),
        else_=sa.func.coalesce(column, ""),
    )


def _cell_columns(
    specs: list[BadgeSpec], names: list[str], segment: Any, channel: Any
) -> list[Any]:
    """segment, channel, entity, label and each field, as the cell of the row says: CASE over
    the cells (a handful), formula-safe text made once per cell; a badge no export covers
    now (a withdraw) gets its segment and channel and empty cells."""
    columns: list[Any] = [_formula_safe(segment), channel]
    values = [[spec.entity, spec.label, *(spec.fields.get(n) for n in names)] for spec in specs]
    for i in range(2 + len(names)):
        whens = [
            (
                sa.and_(segment == spec.segment, channel == spec.channel)
                if spec.segment is not None
                else sa.and_(segment.is_(None), channel == spec.channel),
                sa.literal(_csv_text(row[i]), sa.String),
            )
            for spec, row in zip(specs, values, strict=True)
        ]
        columns.append(
            sa.case(*whens, else_=sa.literal("", sa.String)) if whens else sa.literal("")
        )
    return columns


# =========================================================================== store look-ups


def _campaign_id(conn: sa.Connection, name: str) -> int:
    row = conn.execute(sa.select(CAMPAIGN.c.id).where(CAMPAIGN.c.name == name)).first()
    if row is None:
        raise StateError(
            f"campaign {name!r} is not applied: the store does not know it yet",
            hint="run `campaignctl apply`, then `campaignctl lock` it",
        )
    return int(row.id)
