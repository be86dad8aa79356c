"""Render claimed outbox rows into messages, in this process or in a render process.

Rendering costs about twice the CPU of the pipelined SMTP conversation, so on a
machine with several cores a large send renders in render processes (one per
core) that each build their `CampaignRenderer` once and turn batches of
`RenderJob` into `RenderResult` (plain data both ways), while the event loop of
the main process keeps the SMTP connections busy with the batches already
rendered.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campaignctl.lifeline import bind_to_parent
from campaignctl.render import CampaignRenderer, Recipient, RecordData, RenderOptions, Wave
from campaignctl.render.context import WaveKind
from campaignctl.spec.models import Campaign
from campaignctl.spec.workspace import load_workspace


@dataclass(frozen=True, slots=True)
class RenderJob:
    row_id: int
    channel: str
    address: str
    # key, attributes (a dict, or its JSON text), category
    records: tuple[tuple[str, dict[str, Any] | str, str | None], ...]


@dataclass(frozen=True, slots=True)
class RenderResult:
    row_id: int
    message_id: str | None = None
    sender: str = ""  # email: envelope sender; sms: sender id
    data: bytes = b""  # email: the whole message
    text: str = ""  # sms: the text
    sms_parts: int | None = None
    error: str | None = None


class BatchRenderer:
    """One campaign's renderer and the wave it renders for."""

    def __init__(self, renderer: CampaignRenderer, wave_number: int, wave_kind: WaveKind) -> None:
        self.renderer = renderer
        self.wave = Wave(wave_number, wave_kind)

    def render(self, jobs: list[RenderJob]) -> list[RenderResult]:
        return [self.render_one(job) for job in jobs]

    def render_one(self, job: RenderJob) -> RenderResult:
        try:
            records = [
                RecordData(key, _attributes(attributes), category)
                for key, attributes, category in job.records
            ]
            if not records:
                raise ValueError("its records are no longer in the lock")
            if job.channel == "email":
                email = self.renderer.render_email(Recipient(records, email=job.address), self.wave)
                return RenderResult(job.row_id, email.message_id, email.sender, data=email.data)
            sms = self.renderer.render_sms(Recipient(records, phone=job.address), self.wave)
            return RenderResult(
                job.row_id, sms.message_id, sms.sender_id, text=sms.text, sms_parts=sms.info.parts
            )
        except Exception as exc:  # one bad record must not stop the wave
            problem = getattr(exc, "diagnostic", None)  # a template's: where, and what
            message = (
                f"{problem.file}:{problem.line}: {problem.message}"
                if problem is not None
                else getattr(exc, "message", None) or str(exc) or type(exc).__name__
            )
            return RenderResult(job.row_id, error=f"cannot render: {message}")


def _attributes(value: dict[str, Any] | str | None) -> dict[str, Any]:
    return (json.loads(value) if isinstance(value, str) else value) or {}


# --------------------------------------------------------------------------- render process

_worker: BatchRenderer | None = None


def _init_worker(
    parent: int, root: str, campaign: Campaign, options: RenderOptions, number: int, kind: str
) -> None:
    global _worker

    bind_to_parent(parent)  # a kill -9 of `send` must not leave this process behind

    workspace = load_workspace(Path(root))
    _worker = BatchRenderer(CampaignRenderer(workspace, campaign, options), number, WaveKind(kind))


def _render_in_worker(jobs: list[RenderJob]) -> list[RenderResult]:
    assert _worker is not None
    return _worker.render(jobs)


def render_pool(
    root: Path,
    campaign: Campaign,
    options: RenderOptions,
    number: int,
    kind: WaveKind,
    *,
    processes: int = 1,
) -> ProcessPoolExecutor:
    """Render processes (spawned, so they share no connection or loop with their parent),
    which end when this process does, however it ends. They get the campaign as the parent
    sends it (an automation's send step: its template over the campaign's `message:`),
    not its name, so that they render exactly what the parent checked."""
    import multiprocessing

    return ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(), str(root), campaign, options, number, str(kind)),
    )


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
