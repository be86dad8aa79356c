"""Checks of a campaign's schedule, triggers and automation steps."""

from __future__ import annotations

import typing
from typing import Any

from campaignctl.errors import Severity
from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.loaded import (
    ACTIVITY_ATTRIBUTES,
    LoadedDocument,
)
from campaignctl.spec.loader import PathKey
from campaignctl.spec.models import (
    Campaign,
    Channel,
    Step,
)


class ScheduleChecks(CheckerBase):
    """Checks of a campaign's schedule, triggers and automation steps."""

    def _check_campaign_schedule(self, doc: LoadedDocument, campaign: Campaign) -> None:
        schedule = campaign.schedule
        if schedule is None:
            return
        previous = None
        for i, rule in enumerate(schedule.relaunch):
            if rule.after.total_seconds() <= 0:
                self._report(
                    doc.file,
                    doc.mark("schedule", "relaunch", i, "after"),
                    "schedule",
                    f"relaunch {i + 1} comes "
                    f"{'before' if rule.after.total_seconds() < 0 else 'at'} the send it follows",
                    "`after:` is the delay since the wave it relaunches, e.g. 7d",
                )
            elif previous is not None and rule.after <= previous:
                self._report(
                    doc.file,
                    doc.mark("schedule", "relaunch", i, "after"),
                    "schedule",
                    f"relaunch {i + 1} is not later than relaunch {i}",
                    "list relaunches in time order, each `after:` counted from the first send",
                    Severity.WARNING,
                )
            previous = rule.after
            channels = rule.channels or campaign.channels
            if rule.template and campaign.message is not None:
                parts = ("html", "text") if Channel.EMAIL in channels else ("sms",)
                self._check_template(
                    doc, ("schedule", "relaunch", i, "template"), rule.template, parts
                )
        recurrence = schedule.recurrence
        if recurrence is None:
            return
        if recurrence.every is not None and schedule.send_at is None:
            self._report(
                doc.file,
                doc.mark("schedule", "recurrence"),
                "schedule",
                f"`every: {recurrence.every}` repeats from `send_at`, which is missing",
                "add `send_at:` (the first occurrence) or use `cron:`",
            )
        send_at = schedule.send_at
        if (
            recurrence.until is not None
            and send_at is not None
            and recurrence.until < send_at.date()
        ):
            self._report(
                doc.file,
                doc.mark("schedule", "recurrence", "until"),
                "schedule",
                f"recurrence ends ({recurrence.until}) before the first send ({send_at.date()})",
                "move `until:` after `send_at:` or remove the recurrence",
            )

    def _check_trigger(
        self, doc: LoadedDocument, campaign: Campaign, audience_name: str | None
    ) -> None:
        trigger = typing.cast(Any, campaign.trigger)
        if trigger.segment and trigger.segment not in self.ws.segments:
            self._unknown(doc, ("trigger", "segment"), "segment", trigger.segment, self.ws.segments)
        if trigger.campaign and trigger.campaign not in self.ws.campaigns:
            self._unknown(
                doc, ("trigger", "campaign"), "campaign", trigger.campaign, self.ws.campaigns
            )
        if trigger.where is not None:
            # event data keys are free-form: only segment references are checked
            self._check_condition(doc, ("trigger", "where"), trigger.where, None, audience_name)

    def _check_steps(
        self,
        doc: LoadedDocument,
        path: PathKey,
        steps: list[Step],
        campaign: Campaign,
        audience_name: str | None,
    ) -> None:
        audience = self.ws.audiences.get(audience_name) if audience_name else None
        for i, step in enumerate(steps):
            here = (*path, i)
            if step.send is not None:
                template = step.send.template or (
                    campaign.message.template if campaign.message else None
                )
                channels = step.send.channels or campaign.channels
                if template is None:
                    self._report(
                        doc.file,
                        doc.mark(*here, "send"),
                        "missing-field",
                        "this send step has no template and the campaign no `message:`",
                        "add `send: {template: NAME}`",
                    )
                else:
                    parts = ("html", "text") if Channel.EMAIL in channels else ("sms",)
                    self._check_template(doc, (*here, "send"), template, parts)
            if step.if_ is not None:
                self._check_condition(
                    doc, (*here, "if"), step.if_, audience, audience_name, ACTIVITY_ATTRIBUTES
                )
                self._check_steps(doc, (*here, "then"), step.then, campaign, audience_name)
                self._check_steps(doc, (*here, "else"), step.else_, campaign, audience_name)
