"""The send engine: a locked campaign's current wave, from the outbox to the transports.

`send_campaign` makes the wave's outbox rows from the lock (once), then runs a
pipeline of a few batches in flight: claim (one statement) → render (in a
render process on large sends) → hand to the transport, a few messages at a
time → record the outcomes. What it guarantees (DESIGN.md §3):

- a row is claimed by one sender only; it is marked as handed over (committed)
  just before it goes to the transport, and at most a few rows per connection of
  the transport are handed over and not yet recorded at any time (`_Journal`).
  A sender that dies leaves its claimed rows in `sending`: the next run gives
  those never handed over back to the queue, and reports the others as
  `uncertain` (with the list), never re-sent unless asked (`retry_uncertain`);
- a 4xx, or a connection lost before the server's reply, is retried with
  exponential backoff (`delivery.retry_backoff` × 2^n, or the server's hint if
  longer) up to `delivery.max_attempts`, as Postfix does; a 5xx is final; a hard
  bounce (5.1.x) suppresses the address for every later wave and campaign and
  records a `bounced` event; a server that refuses the sender as configured
  (530: authentication or TLS required) stops the send (exit 69) with the
  messages still queued;
- an SMS is never sent in quiet hours: it waits for the next allowed instant;
- a stop request stops claiming; the messages handed over finish and are
  recorded. On Ctrl-C, SIGTERM or an error, claimed messages not yet handed over
  go back to the queue at once; with `limit` they are sent.

The library never prints: progress goes to `SendOptions.progress` as
`SendEvent`s, and the result is a `SendSummary`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from campaignctl import clock
from campaignctl.audience.privacy import guess_channel, normalize_address
from campaignctl.delivery import outbox
from campaignctl.delivery.outbox import (
    ClaimedRow,
    LockRef,
    RowOutcome,
    Slice,
    UncertainRow,
    WaveRef,
)
from campaignctl.delivery.quiet_hours import next_allowed
from campaignctl.delivery.rendering import (
    BatchRenderer,
    RenderJob,
    RenderResult,
    _render_in_worker,
    cores,
    render_pool,
)
from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    OutgoingEmail,
    OutgoingSms,
    Transport,
    TransportRegistry,
    TransportSettings,
    create_transport,
)
from campaignctl.enums import Channel, OutboxState, WaveStatus
from campaignctl.errors import ServiceUnavailable, StateError, UsageError
from campaignctl.plan.lock import virtual_lock
from campaignctl.render import CampaignRenderer, Recipient, RenderOptions, Wave
from campaignctl.render.context import WaveKind
from campaignctl.render.records import recipients_for_preview
from campaignctl.spec.workspace import Workspace
from campaignctl.store import lease as leases
from campaignctl.store import wave_state
from campaignctl.store.lease import HeldLease
from campaignctl.store.store import Store
from campaignctl.store.wave_state import WaveProgress

OUTBOX_DIR = Path(".campaignctl") / "outbox"
ROW_LEASE = timedelta(minutes=2)
SEND_LEASE_TTL = timedelta(seconds=60)  # renewed every HEARTBEAT_SECONDS while sending
HEARTBEAT_SECONDS = 10.0
MAX_BACKOFF = timedelta(hours=24)
PARALLEL_RENDER_MIN_ROWS = 2_000  # below this, starting a render process costs more than it saves
# Messages handed over to a transport and not yet recorded, per connection it sends on:
# with 10 SMTP connections at most 50, what a kill -9 may leave in doubt. They go in two
# slices (one being recorded and the next marked while the other is sent), so the store
# sees about one transaction per slice: benchmarks/send.py.
HANDED_PER_CONNECTION = 5
SLICES_PER_WINDOW = 2
# Stop reasons after which claimed messages not yet handed over go back to the queue.
RELEASE_ON_STOP = ("SIGINT", "SIGTERM", "error")


class StopRequest:
    """Set from a signal handler (or any thread): stop claiming, finish what is in flight."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    @property
    def requested(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True)
class SendEvent:
    """One progress event: `type` is start, uncertain, progress or summary (docs/json.md)."""

    type: str
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, **self.data}


@dataclass(frozen=True)
class SendOptions:
    """How one `send` runs. The defaults are those of `campaignctl send CAMPAIGN`."""

    dry_run: bool = False
    limit: int | None = None
    retry_uncertain: bool = False
    batch_size: int | None = None  # default: delivery.batch_size
    in_flight: int | None = None  # batches between claim and record at once
    render_processes: int | None = None  # None: one when the wave is large and there are 2 cores
    lease_wait: timedelta | None = None  # wait this long for another sender's lease
    hold_lease: bool = True  # False: one of several workers on the campaign (claims stay atomic)
    progress: Callable[[SendEvent], None] | None = None
    stop: StopRequest | None = None
    environ: Mapping[str, str] | None = None
    registry: TransportRegistry | None = None
    file_fsync: bool = True
    wave_id: int | None = None  # the scheduler's wave; None: the campaign's latest (or a first)
    spec: Any = None  # an automation's send step: the campaign as that step sends it


@dataclass
class SendSummary:
    campaign: str
    wave: int
    dry_run: bool = False
    sent: int = 0  # by this run
    failed: int = 0  # by this run (5xx, attempts exhausted, render errors)
    bounced: int = 0  # by this run (hard bounces, now suppressed)
    rendered: int = 0  # dry run: messages rendered
    retrying: int = 0  # in the wave: waiting for their next attempt
    held: int = 0  # in the wave: SMS held by quiet hours until `held_until`
    held_until: datetime | None = None
    uncertain: int = 0  # in the wave
    suppressed: int = 0  # in the wave
    skipped: int = 0  # in the wave
    remaining: int = 0  # in the wave: queued and due now (left by --limit or a stop)
    total: int = 0  # rows in the wave
    elapsed: float = 0.0
    stopped: str | None = None  # SIGINT, SIGTERM, limit
    next_attempt_at: datetime | None = None
    uncertain_rows: list[UncertainRow] = field(default_factory=list)
    # records of the lock left out: another active questionnaire campaign asks them
    other_campaigns: dict[str, int] = field(default_factory=dict)
    # dry run of a campaign not locked yet: the recipients a lock made now would freeze
    virtual_lock: int | None = None

    @property
    def rate(self) -> float:
        done = self.rendered if self.dry_run else self.sent
        return done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def progress(self) -> WaveProgress:
        """The wave after this run, for its exit code and what it says waits (wave_state)."""
        return WaveProgress(
            WaveStatus.SENDING, self.remaining, self.held, self.held_until, self.retrying,
            self.next_attempt_at, self.uncertain, self.failed + self.bounced,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": 1,
            "campaign": self.campaign,
            "wave": self.wave,
            "dry_run": self.dry_run,
            "sent": self.sent,
            "failed": self.failed,
            "bounced": self.bounced,
            "rendered": self.rendered,
            "retrying": self.retrying,
            "held": self.held,
            "held_until": self.held_until.isoformat() if self.held_until else None,
            "uncertain": self.uncertain,
            "suppressed": self.suppressed,
            "skipped": self.skipped,
            "remaining": self.remaining,
            "total": self.total,
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.rate, 1),
            "stopped": self.stopped,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "uncertain_rows": [row.as_json() for row in self.uncertain_rows],
            "other_campaigns": self.other_campaigns,
            "virtual_lock": self.virtual_lock,
        }


# --------------------------------------------------------------------------- entry points


def send_campaign(
    store: Store, workspace: Workspace, campaign: str, options: SendOptions | None = None
) -> SendSummary:
    """Send the current wave of a locked campaign; resumable, safe to run twice at once."""
    options = options or SendOptions()
    spec = options.spec or _campaign(workspace, campaign)
    if options.spec is None and options.wave_id is None and spec.trigger is not None:
        raise UsageError(
            f"campaign {campaign!r} is an automation: its steps send, on every scheduler pass",
            hint=f"`campaignctl campaign activate {campaign}` switches it on; "
            "`campaignctl scheduler tick` runs a pass now",
        )
    if options.dry_run:
        return _dry_run(store, workspace, campaign, options)
    lock = outbox.require_lock(store, campaign, options.wave_id)
    holder = leases.this_holder()
    lease = None
    if options.hold_lease:
        zone = workspace.config.timezone if workspace.config else "UTC"
        lease = leases.acquire(
            store, f"send:{campaign}", f"send {campaign}", SEND_LEASE_TTL,
            wait=options.lease_wait, holder=holder, timezone=zone,
        )  # fmt: skip
    try:
        run = _Run(store, workspace, spec, lock, holder, lease, options)
        try:
            return asyncio.run(run.main())
        finally:
            run.db_thread.shutdown()
    finally:
        if lease is not None:
            lease.release()


def send_test(
    workspace: Workspace,
    campaign: str,
    address: str,
    *,
    environ: Mapping[str, str] | None = None,
    registry: TransportRegistry | None = None,
) -> list[dict[str, Any]]:
    """`send --test-to`: one real message to `address` on its channel, as the first usable
    record of the audience would get it; the store is not touched."""
    assert workspace.config is not None
    spec = _campaign(workspace, campaign)
    channel = guess_channel(address)
    if channel not in spec.channels:
        raise UsageError(
            f"campaign {campaign!r} does not send by {channel} (channels: "
            f"{', '.join(map(str, spec.channels))})",
            hint="give an address of one of its channels",
        )
    normal = normalize_address(channel, address, workspace.config.phone_region)
    renderer = CampaignRenderer(workspace, spec, RenderOptions())
    sample = recipients_for_preview(workspace, spec, channel).recipients[0]
    identity = f"test-to:{normal}:{sample.identity}:{clock.now().isoformat()}"
    transport = _make_transport(workspace, spec, channel, environ, registry)
    if channel == Channel.EMAIL:
        email = renderer.render_email(Recipient(sample.records, email=normal, id=identity), Wave())
        message: Any = OutgoingEmail(email.sender, (normal,), email.data, email.message_id)
    else:
        sms = renderer.render_sms(Recipient(sample.records, phone=normal, id=identity), Wave())
        message = OutgoingSms(normal, sms.text, sms.sender_id, sms.message_id)

    async def go() -> DeliveryOutcome:
        async with transport:
            return (await transport.send_many([message]))[0]

    outcome = asyncio.run(go())
    return [
        {
            "channel": str(channel),
            "to": normal,
            "record": sample.identity,
            "message_id": message.message_id,
            "status": str(outcome.status),
            "reply": outcome.reply,
        }
    ]


# --------------------------------------------------------------------------- helpers


def _campaign(workspace: Workspace, name: str) -> Any:
    return workspace.campaign(name)


def outbox_dir(workspace: Workspace, campaign: str) -> Path:
    """Where the file transports of a campaign write: `.campaignctl/outbox/<campaign>/`."""
    return workspace.root / OUTBOX_DIR / campaign


def _make_transport(
    workspace: Workspace,
    spec: Any,
    channel: Channel,
    environ: Mapping[str, str] | None,
    registry: TransportRegistry | None,
    fsync: bool = True,
) -> Transport:
    import os

    config = workspace.config
    assert config is not None
    sender_name = spec.message.sender if spec.message else "default"
    sender = config.senders.get(sender_name)
    settings = TransportSettings(
        outbox_dir(workspace, spec.name),
        sender=sender,
        sender_name=sender_name,
        sms=config.sms,
        environ=os.environ if environ is None else environ,
    )
    if channel == Channel.EMAIL:
        if sender is None:
            raise UsageError(f"sender {sender_name!r} is not in campaignctl.yaml")
        name = str(sender.transport)
    else:
        if config.sms is None:
            raise UsageError("campaign sends SMS but campaignctl.yaml has no `sms:` settings")
        name = str(config.sms.transport)
    transport = create_transport(channel, name, settings, registry=registry)
    if name == "file" and hasattr(transport, "fsync"):
        transport.fsync = fsync  # type: ignore[attr-defined]
    return transport


def backoff(base: timedelta, attempts_before: int, hint: timedelta | None) -> timedelta:
    """Exponential: base × 2^(attempts so far), at most a day, never less than the hint."""
    delay = min(base * (2 ** min(attempts_before, 20)), MAX_BACKOFF)
    return max(delay, hint) if hint else delay


def _jobs(rows: list[ClaimedRow], records: dict[int, list[outbox.GroupRecord]]) -> list[RenderJob]:
    return [
        RenderJob(
            row.id,
            row.channel,
            row.address,
            tuple((r.key, r.attributes, r.category) for r in records.get(row.id, [])),
        )
        for row in rows
    ]


# --------------------------------------------------------------------------- dry run


def _dry_run(
    store: Store, workspace: Workspace, campaign: str, options: SendOptions
) -> SendSummary:
    """Render every message the next send would send; nothing is written anywhere.

    A campaign not locked yet is rendered from a virtual lock: the recipients a lock made
    now would freeze, in a temporary table of this connection (`plan.lock.virtual_lock`)."""
    with store.read() as conn:
        lock = outbox.lock_ref(conn, campaign, options.wave_id)
        if lock is not None:
            return _render_dry_run(conn, workspace, lock, outbox.RECIPIENT, options)
        row = outbox.sendable_campaign(conn, campaign)
        with virtual_lock(conn, workspace, campaign, clock.now()) as (recipients, counts):
            others = outbox.left_out_by_other_campaigns(counts)
            lock = outbox.LockRef(int(row.id), campaign, row.category, 0, others)
            summary = _render_dry_run(conn, workspace, lock, recipients, options)
        summary.virtual_lock = int(counts["recipients"])
        return summary


def _render_dry_run(
    conn: Any, workspace: Workspace, lock: LockRef, recipients: Any, options: SendOptions
) -> SendSummary:
    import sqlalchemy as sa

    spec = _campaign(workspace, lock.campaign)
    started = time.perf_counter()
    renderer = BatchRenderer(CampaignRenderer(workspace, spec, RenderOptions()), 1, _initial())
    batch = options.batch_size or workspace.config.delivery.batch_size  # type: ignore[union-attr]
    summary = SendSummary(lock.campaign, 1, dry_run=True, other_campaigns=lock.other_campaigns)
    wave = None
    if lock.lock_id:
        wave = conn.execute(
            sa.select(outbox.WAVE.c.id, outbox.WAVE.c.number, outbox.WAVE.c.kind)
            .where(outbox.WAVE.c.campaign_id == lock.campaign_id)
            .order_by(outbox.WAVE.c.number.desc())
        ).first()
    if wave is not None:
        summary.wave = wave.number
        renderer = BatchRenderer(renderer.renderer, wave.number, wave.kind)
        query = sa.select(
            outbox.OUTBOX.c.id, outbox.OUTBOX.c.channel, outbox.OUTBOX.c.address,
            outbox.OUTBOX.c.group_key, outbox.OUTBOX.c.record_id, outbox.OUTBOX.c.attempts,
            outbox.OUTBOX.c.state, outbox.OUTBOX.c.reason,
        ).where(outbox.OUTBOX.c.wave_id == wave.id).order_by(outbox.OUTBOX.c.id)  # fmt: skip
    else:
        ref = WaveRef(0, 1, _initial(), None, False)  # type: ignore[arg-type]
        max_messages = spec.options.max_messages_per_contact
        sub = outbox.candidates(conn, lock, ref, max_messages, recipients).subquery()
        query = sa.select(
            sa.literal(0), sub.c.channel, sub.c.address, sub.c.group_key, sub.c.record_id,
            sa.literal(0), sub.c.state, sub.c.reason,
        )  # fmt: skip
    # streamed: the group lookups run on the same connection between two partitions
    for index, chunk in enumerate(conn.execute(query).yield_per(batch).partitions(batch)):
        rows = []
        for number, row in enumerate(chunk):
            state = str(row[6])
            summary.total += 1
            if state == OutboxState.SUPPRESSED:
                summary.suppressed += 1
            elif state == OutboxState.SKIPPED:
                summary.skipped += 1
            elif state == OutboxState.UNCERTAIN:
                summary.uncertain += 1
            elif state == OutboxState.QUEUED:
                rows.append(ClaimedRow(row[0] or -(index * batch + number + 1), *row[1:6]))
        if options.limit is not None:
            rows = rows[: max(0, options.limit - summary.rendered - summary.failed)]
        records = outbox.grouped_records(conn, lock.lock_id, rows, recipients)
        for rendered in renderer.render(_jobs(rows, records)):
            if rendered.error:
                summary.failed += 1
            else:
                summary.rendered += 1
        if options.progress:
            options.progress(SendEvent("progress", {"rendered": summary.rendered}))
    summary.elapsed = time.perf_counter() - started
    return summary


def _initial() -> Any:
    return WaveKind.INITIAL


# --------------------------------------------------------------------------- hand-over


class _Journal:
    """One transport's hand-over marks on their way to the store, written by one task, so
    that a kill -9 leaves at most `window` messages in doubt.

    A slice of messages goes to the transport only once its handover row is committed
    (`outbox.write_journal`), and the journal commits one only while the messages handed
    over and not yet settled (`held`), less those settled in the same transaction, leave
    room for it: the store never names more than `window` messages in doubt, and the
    transport never holds more. A slice is settled when its handover row is marked done,
    with the outcomes that cannot wait for the batch (all but `sent`). Whatever waits
    when a write starts goes into it (a finished slice and the next slice's mark,
    typically): about one small transaction per slice, none touching the outbox rows of
    sent messages, which the batch records at its end. An idempotent transport (`window`
    None) needs no marks: its slices go at once.
    """

    def __init__(
        self,
        write: Callable[..., Awaitable[list[outbox.Slice]]],
        window: int | None,
    ) -> None:
        self._write = write
        self.window = window
        self.held = 0
        self._marks: list[tuple[list[tuple[int, str]], asyncio.Future[Any]]] = []
        self._settled: list[tuple[Slice, list[RowOutcome], asyncio.Future[Any]]] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._broken: BaseException | None = None
        self._task = asyncio.create_task(self._run())

    async def hand_over(self, messages: list[tuple[int, str]]) -> Slice:
        """Wait for room and mark `(outbox id, message id)` as handed over; the slice says
        which rows are still ours (another sender takes back an expired claim)."""
        if self.window is None:
            return Slice(None, frozenset(row_id for row_id, _ in messages))
        return await self._submit(self._marks, messages)

    async def settle(self, handed: Slice, outcomes: list[RowOutcome]) -> None:
        """Every message of the slice has its outcome: write those that are not `sent`
        (the batch writes the others) and free the slice's room."""
        if handed.handover is not None or outcomes:
            await self._submit(self._settled, handed, outcomes)

    def _submit(self, queue: list[Any], *item: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._broken is not None:
            future.set_exception(self._broken)
            return future
        queue.append((*item, future))
        self._wakeup.set()
        return future

    def _take_marks(self, room: int) -> list[tuple[list[tuple[int, str]], asyncio.Future[Any]]]:
        taken = []
        while self._marks and len(self._marks[0][0]) <= room:
            mark = self._marks.pop(0)
            taken.append(mark)
            room -= len(mark[0])
        return taken

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            settled, self._settled = self._settled, []
            freed = sum(len(handed.ours) for handed, _, _ in settled if handed.handover)
            marks = self._take_marks(self.window - self.held + freed) if self.window else []
            if not settled and not marks:
                if self._closing:  # nothing in flight any more: a mark still waiting never goes
                    for _, future in self._marks:
                        future.cancel()
                    return
                continue
            try:
                slices = await self._write(
                    outcomes=[o for _, outcomes, _ in settled for o in outcomes],
                    done=[h.handover for h, _, _ in settled if h.handover is not None],
                    marks=[messages for messages, _ in marks],
                )
            except BaseException as exc:
                self._broken = exc
                for *_, future in (*marks, *settled, *self._marks, *self._settled):
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            self.held += sum(len(handed.ours) for handed in slices) - freed
            for *_, future in settled:
                if not future.done():
                    future.set_result(None)
            for (_, future), handed in zip(marks, slices, strict=True):
                if not future.done():
                    future.set_result(handed)
            if self._marks or self._settled:
                self._wakeup.set()

    async def close(self) -> None:
        """Write what waits, then stop (once nothing is in flight)."""
        self._closing = True
        self._wakeup.set()
        await self._task


def _journal(transport: Transport, write: Any) -> tuple[_Journal, int]:
    """The transport's journal and slice size: at most HANDED_PER_CONNECTION × its
    concurrency messages handed over and not settled, in SLICES_PER_WINDOW slices. An
    idempotent transport takes whole batches, unmarked: a message it gets again after a
    crash is written once all the same."""
    if getattr(transport, "idempotent", False):
        return _Journal(write, None), 1 << 30
    window = HANDED_PER_CONNECTION * max(1, int(getattr(transport, "concurrency", 1)))
    return _Journal(write, window), max(1, window // SLICES_PER_WINDOW)


# --------------------------------------------------------------------------- the run


class _Run:
    """One `send` of one campaign: state shared by the pipeline's tasks."""

    def __init__(
        self,
        store: Store,
        workspace: Workspace,
        spec: Any,
        lock: LockRef,
        holder: str,
        lease: HeldLease | None,
        options: SendOptions,
    ) -> None:
        assert workspace.config is not None
        self.store = store
        self.workspace = workspace
        self.spec = spec
        self.lock = lock
        self.holder = holder
        self.lease = lease
        self.options = options
        self.config = workspace.config
        self.delivery = workspace.config.delivery
        self.batch_size = options.batch_size or self.delivery.batch_size
        self.stop = options.stop or StopRequest()
        self.claimed = 0
        self.quiet_until: datetime | None = None
        self.summary = SendSummary(spec.name, 0, other_campaigns=lock.other_campaigns)
        self.started = time.perf_counter()
        # Every store call runs on this one thread: SQLite serialises writes anyway, and
        # one thread means one connection and one malloc arena (flat memory).
        self.db_thread = ThreadPoolExecutor(1, thread_name_prefix="campaignctl-store")

    async def _db(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.db_thread, partial(function, *args, **kwargs))

    # ------------------------------------------------------------------ setup
    def _emit(self, kind: str, **data: Any) -> None:
        if self.options.progress:
            self.options.progress(SendEvent(kind, data))

    async def main(self) -> SendSummary:
        now = clock.now()
        # Templates compile (and their errors surface) before anything is claimed.
        renderer = CampaignRenderer(self.workspace, self.spec, RenderOptions())
        for warning in renderer.warnings:
            self._emit("warning", message=warning)
        if self.options.wave_id is None:
            wave = await self._db(outbox.current_wave, self.store, self.lock, now)
        else:
            wave = await self._db(outbox.wave_by_id, self.store, self.options.wave_id)
        self.wave = wave
        self.summary.wave = wave.number
        if not wave.populated:
            max_messages = self.spec.options.max_messages_per_contact
            await self._db(outbox.create_outbox, self.store, self.lock, wave, max_messages, now)
        abandoned = await self._db(outbox.mark_abandoned, self.store, wave.id, self.holder, now)
        if abandoned.requeued or abandoned.sent:
            sent = f"; {abandoned.sent} it had sent are recorded as sent" if abandoned.sent else ""
            self._emit(
                "warning",
                message=f"{abandoned.requeued} message(s) claimed by a sender that stopped "
                f"({', '.join(abandoned.holders)}) before handing them over went back to "
                f"the queue{sent}",
            )
        if self.options.retry_uncertain:
            await self._db(outbox.requeue_uncertain, self.store, wave.id, now)
        counts = await self._db(outbox.wave_counts, self.store, wave.id)
        due = await self._db(outbox.due_count, self.store, wave.id, now)
        self._emit(
            "start",
            campaign=self.spec.name,
            wave=wave.number,
            total=counts.total,
            due=due,
            **{state: counts.states.get(state, 0) for state in ("sent", "suppressed", "skipped")},
            uncertain=counts.get(OutboxState.UNCERTAIN),
        )
        if counts.get(OutboxState.UNCERTAIN):
            rows = await self._db(outbox.uncertain_rows, self.store, wave.id)
            self._emit("uncertain", count=counts.get(OutboxState.UNCERTAIN),
                       rows=[row.as_json() for row in rows])  # fmt: skip
        self.batch_renderer = BatchRenderer(renderer, wave.number, wave.kind)
        self.pool = None
        processes = self.options.render_processes
        if processes is None:
            # Rendering costs about twice what the (pipelined) SMTP conversation does: one
            # render process per core, and the OS shares the cores between them and the
            # event loop of this process.
            processes = cores() if due >= PARALLEL_RENDER_MIN_ROWS and cores() > 1 else 0
        self.processes = processes if due else 0
        if self.processes:
            self.pool = render_pool(
                self.workspace.root,
                self.spec,
                RenderOptions(),
                wave.number,
                wave.kind,
                processes=self.processes,
            )
        try:
            if due:
                await self._pipeline(await self._channels(wave.id))
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
        return await self._db(self._finish)

    async def _channels(self, wave_id: int) -> set[str]:
        import sqlalchemy as sa

        def query() -> set[str]:
            with self.store.read() as conn:
                return {
                    str(c)
                    for (c,) in conn.execute(
                        sa.select(outbox.OUTBOX.c.channel)
                        .where(
                            outbox.OUTBOX.c.wave_id == wave_id,
                            outbox.OUTBOX.c.state == OutboxState.QUEUED,
                        )
                        .distinct()
                    )
                }

        return await self._db(query)

    # ------------------------------------------------------------------ pipeline
    async def _pipeline(self, channels: set[str]) -> None:
        self.transports: dict[str, Transport] = {}
        self.journals: dict[str, tuple[_Journal, int]] = {}
        self.refusal: ServiceUnavailable | None = None
        for channel in sorted(channels):
            transport = _make_transport(
                self.workspace,
                self.spec,
                Channel(channel),
                self.options.environ,
                self.options.registry,
                self.options.file_fsync,
            )
            await transport.open()
            self.transports[channel] = transport
            self.journals[channel] = _journal(transport, self._write)
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            # one batch rendering in each render process and one being sent or recorded:
            # more only holds more messages in memory
            in_flight = self.options.in_flight or (self.processes + 1 if self.pool else 2)
            # A worker that fails asks the others to stop claiming; they finish and record
            # the batches they hold before the first failure is raised.
            results = await asyncio.gather(
                *(self._worker() for _ in range(in_flight)), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            if self.refusal is not None:
                raise self.refusal
        finally:
            heartbeat.cancel()
            for journal, _ in self.journals.values():
                await journal.close()
            for transport in self.transports.values():
                await transport.close()

    async def _write(self, **journal: Any) -> list[Slice]:
        lock = self.lock
        return await self._db(
            outbox.write_journal, self.store, self.holder, self.wave.id, **journal,
            campaign_id=lock.campaign_id, campaign=lock.campaign, now=clock.now(),
        )  # fmt: skip

    async def _record(self, outcomes: list[RowOutcome], handovers: list[int]) -> None:
        lock = self.lock
        await self._db(
            outbox.record_outcomes, self.store, self.holder, outcomes, handovers=handovers,
            campaign_id=lock.campaign_id, campaign=lock.campaign, now=clock.now(),
        )  # fmt: skip

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            until = clock.now() + ROW_LEASE
            await self._db(outbox.extend_claims, self.store, self.holder, until)
            if self.lease is not None:
                try:
                    await self._db(self.lease.renew)
                except StateError as exc:  # released by hand: claims stay atomic, go on
                    self._emit("warning", message=exc.message)
                    self.lease = None

    def _next_size(self) -> int:
        if self.stop.requested:
            return 0
        size = self.batch_size
        if self.options.limit is not None:
            size = min(size, self.options.limit - self.claimed)
            if size <= 0:
                self.stop.request("limit")
                return 0
        self.claimed += size  # reserved now, so concurrent workers respect the limit
        return size

    def _quiet(self, now: datetime) -> None:
        sms = self.config.sms
        if sms is None or sms.quiet_hours is None or "sms" not in self.transports:
            return

        allowed = next_allowed(now, sms.quiet_hours, ZoneInfo(self.config.timezone))
        if allowed > now and allowed != self.quiet_until:
            outbox.defer_quiet_sms(self.store, self.wave.id, allowed)
            self.quiet_until = allowed

    def _claim(self, size: int) -> list[ClaimedRow]:
        now = clock.now()
        self._quiet(now)
        return outbox.claim_batch(self.store, self.wave.id, self.holder, size, now, ROW_LEASE)

    async def _worker(self) -> None:
        while (size := self._next_size()) > 0:
            rows = await self._db(self._claim, size)
            if self.options.limit is not None:
                self.claimed -= size - len(rows)
            if not rows:
                return
            await self._batch(rows)

    async def _batch(self, rows: list[ClaimedRow]) -> None:
        store, lock = self.store, self.lock
        suppressed, records = await self._db(
            lambda: (
                outbox.suppressed_now(store, rows, lock.category),
                outbox.group_records(store, lock.lock_id, rows),
            )
        )
        outcomes = [
            RowOutcome(row, OutboxState.SUPPRESSED, reason=suppressed[row.id], attempted=False)
            for row in rows
            if row.id in suppressed
        ]
        todo = [row for row in rows if row.id not in suppressed]
        jobs = _jobs(todo, records)
        try:
            if self.pool is not None:
                loop = asyncio.get_running_loop()
                rendered = await loop.run_in_executor(self.pool, _render_in_worker, jobs)
            else:
                rendered = await asyncio.to_thread(self.batch_renderer.render, jobs)
        except BaseException:
            # Nothing of this batch reached a transport (a render process died, or we
            # are being cancelled): give the rows back instead of leaving them to be
            # reported uncertain.
            self.stop.request("error")
            release = [RowOutcome(row, OutboxState.QUEUED, attempted=False) for row in rows]
            outbox.record_outcomes(
                store, self.holder, release,
                campaign_id=lock.campaign_id, campaign=lock.campaign, now=clock.now(),
            )  # fmt: skip
            raise
        by_id = {row.id: row for row in todo}
        emails: list[tuple[ClaimedRow, RenderResult, OutgoingEmail]] = []
        texts: list[tuple[ClaimedRow, RenderResult, OutgoingSms]] = []
        for result in rendered:
            row = by_id[result.row_id]
            if result.error or result.message_id is None:
                outcomes.append(
                    RowOutcome(row, OutboxState.FAILED, error=result.error, attempted=False)
                )
            elif row.channel == "email":
                message = OutgoingEmail(
                    result.sender, (row.address,), result.data, result.message_id
                )
                emails.append((row, result, message))
            else:
                texts.append(
                    (
                        row,
                        result,
                        OutgoingSms(row.address, result.text, result.sender, result.message_id),
                    )
                )
        # The slices write every outcome but `sent` as they end; the batch writes the
        # rest (most of it) in one transaction, with the outcomes found before sending.
        later, handovers, failure = list(outcomes), [], None
        for channel, items in (("email", emails), ("sms", texts)):
            for result in await self._deliver(channel, items) if items else []:
                if isinstance(result, BaseException):
                    failure = failure or result
                    continue
                handed, settled = result
                outcomes.extend(settled)
                later.extend(o for o in settled if o.state == OutboxState.SENT)
                if handed.handover is not None:
                    handovers.append(handed.handover)
        await self._record(later, handovers)
        if failure is not None:
            raise failure
        self._count(outcomes)

    async def _deliver(
        self, channel: str, items: list[tuple[ClaimedRow, RenderResult, Any]]
    ) -> list[tuple[Slice, list[RowOutcome]] | BaseException]:
        """Hand `items` to the channel's transport slice by slice, within its window; each
        slice's outcomes, or what broke it (the others still finish)."""
        size = self.journals[channel][1]
        slices = [items[start : start + size] for start in range(0, len(items), size)]
        return await asyncio.gather(
            *(self._hand_over(channel, part) for part in slices), return_exceptions=True
        )

    async def _hand_over(
        self, channel: str, items: list[tuple[ClaimedRow, RenderResult, Any]]
    ) -> tuple[Slice, list[RowOutcome]]:
        """Mark the slice as handed over (committed), send it, settle it."""
        transport, (journal, _) = self.transports[channel], self.journals[channel]
        handed = Slice(None, frozenset())
        if self.stop.reason not in RELEASE_ON_STOP:
            handed = await journal.hand_over([(row.id, r.message_id) for row, r, _ in items])
            items = [item for item in items if item[0].id in handed.ours]
        if self.stop.reason in RELEASE_ON_STOP:
            # before the slice went, or while it waited for room: back to the queue at once
            released = [RowOutcome(row, OutboxState.QUEUED, attempted=False) for row, *_ in items]
            await journal.settle(handed, released)
            return handed, released
        try:
            results = await transport.send_many([message for *_, message in items])
        except Exception as exc:
            # the transport as a whole broke mid-slice: these rows may or may not have gone
            reply = f"transport {transport.name} failed: {getattr(exc, 'message', exc)}"
            failed = [
                RowOutcome(row, OutboxState.UNCERTAIN, message_id=r.message_id, error=reply)
                for row, r, _ in items
            ]
            self.stop.request("error")
            await journal.settle(handed, failed)
            raise
        now = clock.now()
        outcomes = [
            self._outcome(row, rendered, result, now)
            for (row, rendered, _), result in zip(items, results, strict=True)
        ]
        await journal.settle(handed, [o for o in outcomes if o.state != OutboxState.SENT])
        return handed, outcomes

    def _outcome(
        self, row: ClaimedRow, rendered: RenderResult, result: DeliveryOutcome, now: datetime
    ) -> RowOutcome:
        mid, parts = rendered.message_id, rendered.sms_parts
        if result.status is DeliveryStatus.SENT:
            return RowOutcome(row, OutboxState.SENT, mid, result.provider_id, sms_parts=parts)
        if result.status is DeliveryStatus.MISCONFIGURED:
            if self.refusal is None:
                self.refusal = ServiceUnavailable(
                    result.reply, hint=result.hint or "check the transport's settings"
                )
            self.stop.request("error")
            return RowOutcome(row, OutboxState.QUEUED, mid, error=result.reply, attempted=False)
        if result.status is DeliveryStatus.RETRY:
            # A connection lost after the message went out (`result.uncertain`) is retried
            # too, as Postfix does: the sender is alive and knows the server never answered.
            if row.attempts + 1 >= self.delivery.max_attempts:
                error = f"gave up after {row.attempts + 1} attempts: {result.reply}"
                if result.uncertain:  # the last try may have arrived: a person decides
                    return RowOutcome(row, OutboxState.UNCERTAIN, mid, error=error, sms_parts=parts)
                return RowOutcome(row, OutboxState.FAILED, mid, error=error, sms_parts=parts)
            delay = backoff(self.delivery.retry_backoff, row.attempts, result.retry_after)
            return RowOutcome(
                row, OutboxState.QUEUED, mid, error=result.reply,
                next_attempt_at=now + delay, sms_parts=parts,
            )  # fmt: skip
        if result.hard_bounce:
            code = result.enhanced_code or str(result.smtp_code or "")
            return RowOutcome(
                row, OutboxState.BOUNCED, mid, error=result.reply, sms_parts=parts, bounce_code=code
            )
        return RowOutcome(row, OutboxState.FAILED, mid, error=result.reply, sms_parts=parts)

    def _count(self, outcomes: list[RowOutcome]) -> None:
        s = self.summary
        for o in outcomes:
            if o.state == OutboxState.SENT:
                s.sent += 1
            elif o.state == OutboxState.FAILED:
                s.failed += 1
            elif o.state == OutboxState.BOUNCED:
                s.bounced += 1
        s.elapsed = time.perf_counter() - self.started
        self._emit(
            "progress",
            sent=s.sent,
            failed=s.failed,
            bounced=s.bounced,
            rate=round(s.rate, 1),
            elapsed=round(s.elapsed, 3),
        )

    # ------------------------------------------------------------------ end
    def _finish(self) -> SendSummary:
        now = clock.now()
        s = self.summary
        s.elapsed = time.perf_counter() - self.started
        outbox.finish_wave(self.store, self.wave.id, now)
        counts = outbox.wave_counts(self.store, self.wave.id)
        s.total = counts.total
        s.uncertain = counts.get(OutboxState.UNCERTAIN)
        s.suppressed = counts.get(OutboxState.SUPPRESSED)
        s.skipped = counts.get(OutboxState.SKIPPED)
        s.remaining = outbox.due_count(self.store, self.wave.id, now)
        with self.store.read() as conn:
            progress = wave_state.wave_progress(conn, [self.wave.id], now)[self.wave.id]
        s.held, s.held_until = progress.held, progress.held_until
        s.retrying, s.next_attempt_at = progress.waiting, progress.next_retry
        s.stopped = self.stop.reason
        if s.uncertain:
            s.uncertain_rows = outbox.uncertain_rows(self.store, self.wave.id)
        return s
