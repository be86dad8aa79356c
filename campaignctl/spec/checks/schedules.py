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
    Condition,
    Step,
)
from campaignctl.spec.models import (
    List as ListSpec,
)


class ScheduleChecks(CheckerBase):
    """Checks of a campaign's schedule, triggers and automation steps."""

    # ------------------------------------------------------------------ lists
    def _check_list(self, doc: LoadedDocument) -> None:
        list_ = typing.cast(ListSpec, doc.model)
        if list_.audience not in self.ws.audiences:
            self._unknown(doc, ("audience",), "audience", list_.audience, self.ws.audiences)

    def _check_list_ref(
        self, doc: LoadedDocument, path: PathKey, name: str, audience_name: str | None
    ) -> None:
        """A list an automation names exists, and holds records of the campaign's audience."""
        list_ = self.ws.lists.get(name)
        if list_ is None:
            self._unknown(doc, path, "list", name, self.ws.lists)
        elif audience_name and list_.audience != audience_name:
            self._report(
                doc.file,
                doc.mark(*path),
                "unknown-reference",
                f"list {name!r} holds records of audience {list_.audience!r}, "
                f"not {audience_name!r}",
                "an automation only uses lists of its campaign's audience",
            )

    def _check_step_refs(
        self, doc: LoadedDocument, path: PathKey, cond: Condition, sends: set[str]
    ) -> None:
        """`opened: STEP` / `clicked: STEP` name a send step (its name or path)."""
        for key, items in (("all", cond.all_), ("any", cond.any_)):
            for i, child in enumerate(items or []):
                self._check_step_refs(doc, (*path, key, i), child, sends)
        if cond.not_ is not None:
            self._check_step_refs(doc, (*path, "not"), cond.not_, sends)
        for name, test in cond.tests.items():
            if name not in ACTIVITY_ATTRIBUTES or name in ("answered", "in_list"):
                continue
            for op, value in test.items():
                if isinstance(value, bool) or str(value).lower() in _TRUTHS or value in sends:
                    continue
                self._report(
                    doc.file,
                    doc.mark(*path, name, op),
                    "unknown-reference",
                    f"{name}: {value!r} is not a send step of this campaign",
                    f"send steps: {', '.join(sorted(sends)) or 'none'} "
                    "(a step's `name:` or its path); or true for any message",
                )

    def _check_in_list(
        self, doc: LoadedDocument, path: PathKey, cond: Condition, audience_name: str | None
    ) -> None:
        for key, items in (("all", cond.all_), ("any", cond.any_)):
            for i, child in enumerate(items or []):
                self._check_in_list(doc, (*path, key, i), child, audience_name)
        if cond.not_ is not None:
            self._check_in_list(doc, (*path, "not"), cond.not_, audience_name)
        test = cond.tests.get("in_list")
        if test is not None:
            for op, value in test.items():
                for name in value if isinstance(value, list) else [value]:
                    self._check_list_ref(doc, (*path, "in_list", op), str(name), audience_name)

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
        if trigger.list:
            self._check_list_ref(doc, ("trigger", "list"), trigger.list, audience_name)
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
            for key in ("add_to_list", "remove_from_list"):
                if getattr(step, key) is not None:
                    self._check_list_ref(doc, (*here, key), getattr(step, key), audience_name)
            if step.if_ is not None:
                self._check_condition(
                    doc, (*here, "if"), step.if_, audience, audience_name, ACTIVITY_ATTRIBUTES
                )
                self._check_in_list(doc, (*here, "if"), step.if_, audience_name)
                self._check_step_refs(doc, (*here, "if"), step.if_, _send_steps(campaign.steps))
                self._check_steps(doc, (*here, "then"), step.then, campaign, audience_name)
                self._check_steps(doc, (*here, "else"), step.else_, campaign, audience_name)


_TRUTHS = ("true", "false", "yes", "no", "1", "0", "any")


def _send_steps(steps: list[Step], prefix: str = "") -> set[str]:
    """The names and paths (`1`, `3.then.1`…) of a tree's send steps."""
    found: set[str] = set()
    for i, step in enumerate(steps):
        path = f"{prefix}{i + 1}"
        if step.send is not None:
            found.add(path)
            if step.name:
                found.add(step.name)
        found |= _send_steps(step.then, f"{path}.then.")
        found |= _send_steps(step.else_, f"{path}.else.")
    return found
