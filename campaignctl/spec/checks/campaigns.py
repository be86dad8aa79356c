"""Checks of each campaign: its audience, segments, questionnaire and channels."""

from __future__ import annotations

import difflib
import typing

from campaignctl.errors import Severity
from campaignctl.spec.checks.base import CheckerBase
from campaignctl.spec.loaded import (
    LoadedDocument,
)
from campaignctl.spec.models import (
    Audience,
    Campaign,
    Channel,
)


class CampaignChecks(CheckerBase):
    """Checks of each campaign: its audience, segments, questionnaire and channels."""

    def _check_campaign(self, doc: LoadedDocument) -> None:
        campaign = typing.cast(Campaign, doc.model)
        config = self.config
        if config is not None and campaign.category not in config.categories:
            self._unknown(doc, ("category",), "category", campaign.category, config.categories)
        audience_name = self._check_campaign_audience(doc, campaign)
        self._check_campaign_questionnaire(doc, campaign)
        self._check_campaign_channels(doc, campaign)
        self._check_campaign_schedule(doc, campaign)
        for i, export in enumerate(campaign.exports):
            if config is not None and export.system not in config.systems:
                self._unknown(
                    doc, ("exports", i, "system"), "export system", export.system, config.systems
                )
            for j, seg in enumerate(export.segments or []):
                if seg not in campaign.audience.segments:
                    self._report(
                        doc.file,
                        doc.mark("exports", i, "segments", j),
                        "unknown-reference",
                        f"export segment {seg!r} is not one of the campaign's segments",
                        f"use one of {', '.join(campaign.audience.segments)}",
                    )
            for j, channel in enumerate(export.channels or []):
                if channel not in campaign.channels:
                    self._report(
                        doc.file,
                        doc.mark("exports", i, "channels", j),
                        "unknown-reference",
                        f"export channel {channel!r} is not one of the campaign's channels",
                        f"use one of {', '.join(campaign.channels)}",
                    )
        self._check_export_overlaps(doc, campaign)
        self._check_export_fields(doc, campaign)
        for i, document in enumerate(campaign.documents):
            self._check_document_file(doc, ("documents", i, "path"), document.path, "document")
            if document.sign and not document.path.lower().endswith(".pdf"):
                self._report(
                    doc.file, doc.mark("documents", i, "sign"), "invalid-value",
                    f"document {document.path!r}: only a PDF is signed (`sign: true`)",
                    "remove `sign: true`, or offer the document as a PDF",
                )  # fmt: skip
            if document.sign and self.config is not None and self.config.signing is None:
                self._report(
                    doc.file, doc.mark("documents", i, "sign"), "missing-signing",
                    f"document {document.path!r} is to be signed by the organisation, but "
                    "campaignctl.yaml has no `signing:`",
                    "add `signing: {certificate: PATH, key: PATH, password_env: NAME}`",
                )  # fmt: skip
        if campaign.logo:
            self._check_logo(doc, campaign.logo)
        if (
            campaign.type == "information"
            and not campaign.documents
            and not campaign.dashboard_message
        ):
            self._report(
                doc.file,
                doc.mark("type"),
                "invalid-value",
                "an information campaign offers `documents:` or a `dashboard_message:`",
                "add at least one of them",
                Severity.WARNING,
            )
        if campaign.trigger is not None:
            self._check_trigger(doc, campaign, audience_name)
        self._check_steps(doc, ("steps",), campaign.steps, campaign, audience_name)

    def _check_export_fields(self, doc: LoadedDocument, campaign: Campaign) -> None:
        """Each export gives the badge fields its system requires (`required_fields:`),
        with a value: the CRM refuses a badge without them (seed 001: an Appeal and a
        Package for Raiser's Edge NXT)."""
        systems = self.config.systems if self.config is not None else {}
        for i, export in enumerate(campaign.exports):
            system = systems.get(export.system)
            if system is None:
                continue  # reported as an unknown system
            for name in system.required_fields:
                value = export.fields.get(name)
                if value is not None and str(value).strip():
                    continue
                present = name in export.fields
                self._report(
                    doc.file,
                    doc.mark("exports", i, "fields", name)
                    if present
                    else doc.mark("exports", i, "fields")
                    if "fields" in export.model_fields_set
                    else doc.mark("exports", i),
                    "missing-field",
                    f"export {i + 1} gives system {export.system!r} no {name!r} "
                    f"{'value' if present else 'field'}; that system requires "
                    f"{', '.join(repr(n) for n in system.required_fields)} "
                    "(`required_fields:` in campaignctl.yaml)",
                    f"add `{name}: ...` to the export's `fields:`",
                )

    def _check_export_overlaps(self, doc: LoadedDocument, campaign: Campaign) -> None:
        """One badge per cell and system: two exports to one system may not share a cell."""
        claimed: dict[tuple[str, str, str], int] = {}
        for i, export in enumerate(campaign.exports):
            for segment in export.segments or campaign.audience.segments:
                for channel in export.channels or campaign.channels:
                    cell = (export.system, segment, str(channel))
                    if cell in claimed:
                        self._report(
                            doc.file,
                            doc.mark("exports", i),
                            "invalid-value",
                            f"exports {claimed[cell] + 1} and {i + 1} both give system "
                            f"{export.system!r} a badge for the cell {segment} × {channel}",
                            "a cell has one badge per system: narrow `segments:` or "
                            "`channels:` of one of them",
                        )
                        return
                    claimed[cell] = i

    def _check_campaign_audience(self, doc: LoadedDocument, campaign: Campaign) -> str | None:
        audiences: dict[str, str] = {}
        selection = campaign.audience
        for key in ("segments", "exclude_segments"):
            for i, name in enumerate(getattr(selection, key)):
                segment = self.ws.segments.get(name)
                if segment is None:
                    self._unknown(doc, ("audience", key, i), "segment", name, self.ws.segments)
                else:
                    audiences.setdefault(segment.audience, name)
        if len(audiences) > 1:
            described = ", ".join(f"{seg!r} → {aud!r}" for aud, seg in audiences.items())
            self._report(
                doc.file,
                doc.mark("audience", "segments"),
                "unknown-reference",
                f"the campaign's segments select different audiences ({described})",
                "a campaign targets one audience: split it into one campaign per audience",
            )
        for i, name in enumerate(selection.exclude_campaigns):
            if name not in self.ws.campaigns:
                self._unknown(
                    doc, ("audience", "exclude_campaigns", i), "campaign", name, self.ws.campaigns
                )
            elif name == campaign.name:
                self._report(
                    doc.file,
                    doc.mark("audience", "exclude_campaigns", i),
                    "invalid-value",
                    "a campaign cannot exclude its own recipients",
                    "relaunches already skip those who acted: remove this entry",
                )
        return next(iter(audiences), None)

    def _check_campaign_questionnaire(self, doc: LoadedDocument, campaign: Campaign) -> None:
        use = campaign.questionnaire
        if use is None:
            return
        questionnaire = self.ws.questionnaires.get(use.ref)
        if questionnaire is None:
            self._unknown(
                doc, ("questionnaire", "ref"), "questionnaire", use.ref, self.ws.questionnaires
            )
            return
        if questionnaire.fields is not None:
            available = [f.id for f in questionnaire.fields]
        else:
            audience = self._campaign_audience(campaign)
            columns = self.ws.record_columns(audience) if audience else None
            available = list(columns) if columns else []  # unknown without a header
        for key, names in (("fields", use.fields or []), ("overrides", list(use.overrides))):
            for i, name in enumerate(names):
                if available and name not in available:
                    close = difflib.get_close_matches(name, available, n=1)
                    path = (
                        ("questionnaire", key, i)
                        if key == "fields"
                        else ("questionnaire", key, name)
                    )
                    self._report(
                        doc.file,
                        doc.source_map.locate(path, key=key == "overrides"),
                        "unknown-reference",
                        f"field {name!r} is not in questionnaire {use.ref!r}",
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"fields: {', '.join(available)}",
                    )

    def _campaign_audience(self, campaign: Campaign) -> Audience | None:
        for name in campaign.audience.segments:
            segment = self.ws.segments.get(name)
            if segment is not None:
                return self.ws.audiences.get(segment.audience)
        return None

    def _check_campaign_channels(self, doc: LoadedDocument, campaign: Campaign) -> None:
        message = campaign.message
        if message is None:
            return
        channels = set(campaign.channels)
        for rule in campaign.schedule.relaunch if campaign.schedule else []:
            channels.update(rule.channels or [])
        config = self.config
        if Channel.EMAIL in channels:
            if config is not None and message.sender not in config.senders:
                self._unknown(doc, ("message", "sender"), "sender", message.sender, config.senders)
            if message.subject is None:
                self._report(
                    doc.file,
                    doc.mark("message"),
                    "missing-field",
                    "the email channel needs `message.subject`",
                    "add `subject: ...`",
                )
            self._check_template(doc, ("message", "template"), message.template, ("html", "text"))
        if Channel.SMS in channels:
            if config is not None and config.sms is None:
                self._report(
                    doc.file,
                    doc.mark("channels"),
                    "channel",
                    "the sms channel is used but campaignctl.yaml has no `sms:` settings",
                    "add `sms: {transport: file, sender_id: ...}` to campaignctl.yaml",
                )
            self._check_template(doc, ("message", "template"), message.template, ("sms",))
        for i, attachment in enumerate(message.attachments):
            self._check_document_file(doc, ("message", "attachments", i), attachment, "attachment")
