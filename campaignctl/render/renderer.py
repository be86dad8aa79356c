"""`CampaignRenderer`: build once per campaign and run, then render each recipient's messages.

What is done once (in `__init__`): the Jinja environment and every template compiled,
the subject compiled, the signature rendered, the CSS inliner, the link signer and its
secret, the questionnaire's fields, the constant MIME parts (logo, attachments, From,
Reply-To) and the DKIM key. What is done per recipient: the context, the template
renders, CSS inlining, the quoted-printable bodies, the headers and, if configured,
the DKIM signature.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2 import meta
from markupsafe import Markup

from campaignctl.errors import CampaignctlError, InputError, SpecError, UsageError
from campaignctl.render import mime, sandbox
from campaignctl.render.context import (
    BlocksView,
    CampaignView,
    DocumentLink,
    LinksView,
    OrganizationView,
    Recipient,
    RecordView,
    Wave,
    html_block,
    text_block,
)
from campaignctl.render.environment import (
    OUTPUT_CAPTURE,
    TEMPLATES_DIR,
    make_environment,
    template_error,
)
from campaignctl.render.inlining import OutputCapture, ShapeInliner
from campaignctl.render.links import LinkPurpose, LinkSigner, resolve_secret
from campaignctl.render.questionnaire import QuestionnairePlan, QuestionnaireView
from campaignctl.render.sms import SmsInfo, sms_info
from campaignctl.render.tracking import EmailTracking
from campaignctl.spec.files import DOCUMENTS_DIR, TEMPLATE_SUFFIXES
from campaignctl.spec.models import (
    Campaign,
    Channel,
    EmailTransportKind,
    Sender,
    SmsTransportKind,
    WorkspaceConfig,
)
from campaignctl.spec.templates import LINK_NAMES, analyze_campaign
from campaignctl.spec.workspace import Workspace

_WHITESPACE = re.compile(r"\s+")
DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)


@dataclass(frozen=True)
class RenderOptions:
    """How a run renders. The defaults are those of a real send."""

    # Sign links with the development secret when the secret env var is unset:
    # None = only when every transport of the campaign is `file`.
    allow_development_secret: bool | None = None
    # A sender with `dkim:` whose key env var is unset: error (send) or warning (preview).
    require_dkim_key: bool = True
    # Fixed clock for golden files; default: now, in the workspace time zone.
    now: Callable[[], datetime] | None = None
    # Inline the CSS once per message shape and fill in each recipient's texts
    # (render/inlining.py); False inlines every message on its own (same bytes, slower).
    reuse_inlined_shapes: bool = True


@dataclass(frozen=True)
class RenderedEmail:
    message_id: str  # without angle brackets (the events' `message_id`)
    to: str
    sender: str  # the envelope sender address (From)
    subject: str
    html: str
    text: str
    data: bytes  # the whole RFC 5322 message, CRLF, ready for SMTP or a .eml file
    links: dict[str, Any] = field(default_factory=dict)  # the links the message carries


@dataclass(frozen=True)
class RenderedSms:
    message_id: str
    to: str | None
    sender_id: str
    text: str
    info: SmsInfo
    warnings: tuple[str, ...] = ()
    links: dict[str, Any] = field(default_factory=dict)


def _read(path: Path, named: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read {named!r} ({path}): {exc.strerror or exc}",
            hint="run `campaignctl validate` to check every file the definitions name",
        ) from None


def _whom(recipient: Recipient) -> str:
    """The recipient's records, as render errors name them."""
    keys = recipient.keys
    return f"record {keys[0]}" if len(keys) == 1 else f"records {', '.join(keys)}"


def message_id(campaign: str, wave: Wave, recipient: Recipient, channel: str, domain: str) -> str:
    """Stable: the same campaign, wave, recipient and channel always give the same id."""
    seed = f"{campaign}\x1f{wave.number}\x1f{recipient.identity}\x1f{channel}".encode()
    return f"{hashlib.sha256(seed).hexdigest()[:32]}@{domain}"


def _used(links: LinksView) -> dict[str, Any]:
    return {k: v for k, v in links.__dict__.items() if not k.startswith("_") and v is not None}


class _Links:
    """Makes the `links.*` values of one recipient (called lazily by LinksView)."""

    NAMES = frozenset(LINK_NAMES)

    def __init__(self, signer: LinkSigner | None, campaign: Campaign, unsubscribe: bool) -> None:
        self.signer = signer
        self.campaign = campaign
        self.unsubscribe_allowed = unsubscribe

    def _signer(self) -> LinkSigner:
        if self.signer is None:
            raise UsageError(
                "the templates use `links` but campaignctl.yaml has no `tracking:` settings",
                hint="add `tracking: {base_url: https://..., secret_env: CAMPAIGNCTL_SECRET}`",
            )
        return self.signer

    def make(self, name: str, recipient: Recipient, wave: Wave) -> Any:
        signer = self._signer()
        c, keys, w = self.campaign.name, recipient.keys, wave.number
        if name == "form":
            return signer.url(LinkPurpose.FORM, {"c": c, "r": keys[0], "w": w})
        if name == "form_short":
            return signer.short_url(LinkPurpose.FORM, {"c": c, "r": keys[0], "w": w})
        if name == "space_short":
            return signer.short_url(LinkPurpose.SPACE, {"c": c, "r": keys, "w": w})
        if name == "forms":
            return {k: signer.url(LinkPurpose.FORM, {"c": c, "r": k, "w": w}) for k in keys}
        if name == "space":
            return signer.url(LinkPurpose.SPACE, {"c": c, "r": keys, "w": w})
        if name == "unsubscribe":
            if not self.unsubscribe_allowed:
                return None
            return signer.url(
                LinkPurpose.UNSUBSCRIBE, {"c": c, "k": self.campaign.category, "r": keys}
            )
        if name == "preferences":
            return signer.url(LinkPurpose.PREFERENCES, {"r": keys})
        if name == "documents":
            return signer.url(LinkPurpose.DOCUMENT, {"c": c, "r": keys})
        return [  # document_list
            DocumentLink(
                d.path,
                d.label or d.path,
                d.typology,
                d.to_sign,
                signer.url(LinkPurpose.DOCUMENT, {"c": c, "r": keys, "d": d.path}),
            )
            for d in self.campaign.documents
        ]


class CampaignRenderer:
    """Renders one campaign's messages. Build once per run; `render_*` per recipient."""

    def __init__(
        self,
        workspace: Workspace,
        campaign: Campaign | str,
        options: RenderOptions | None = None,
    ) -> None:
        self.options = options or RenderOptions()
        self.workspace = workspace
        self.root = workspace.root
        config = workspace.config
        if config is None:
            raise SpecError(workspace.errors)
        self.config: WorkspaceConfig = config
        if isinstance(campaign, str):
            campaign = workspace.campaign(campaign)
        self.campaign = campaign
        if campaign.message is None:
            raise UsageError(
                f"campaign {campaign.name!r} has no `message:`: it sends nothing to render"
            )
        self.message = campaign.message
        self.warnings: list[str] = []
        self.audience = self._audience()

        analysis = analyze_campaign(workspace, campaign)
        errors = [d for d in analysis.diagnostics if d.severity == "error"]
        if errors:
            raise SpecError(errors, message=f"the templates of {campaign.name!r} have errors")
        self.uses = analysis.uses

        category = config.categories.get(campaign.category)
        self.unsubscribe_allowed = bool(category and category.unsubscribe)
        tracking = config.tracking
        tracked = category is None or category.tracking
        self.track_opens = bool(tracking and tracking.opens and tracked)
        self.track_clicks = bool(tracking and tracking.clicks and tracked)
        self.env = make_environment(self.root)
        self._templates: dict[tuple[str, str], jinja2.Template | None] = {}
        self._globals: dict[jinja2.Template, dict[str, Any]] = {}
        self._qp = mime.QuotedPrintableCache()
        self._subject = self._compile_string(self.message.subject or "", "message.subject")
        self.signer = self._link_signer()
        self._links = _Links(self.signer, campaign, self.unsubscribe_allowed)
        self._tracking = (
            EmailTracking(self.signer, opens=self.track_opens, clicks=self.track_clicks)
            if self.signer is not None and (self.track_opens or self.track_clicks)
            else None
        )
        questionnaire = (
            workspace.questionnaires.get(campaign.questionnaire.ref)
            if campaign.questionnaire
            else None
        )
        self.questionnaire = QuestionnairePlan(
            questionnaire,
            campaign.questionnaire,
            self.audience,
            campaign.options,
            workspace.record_columns(self.audience) if self.audience else None,
        )
        self.tz = ZoneInfo(config.timezone)
        self._date_cache: tuple[int, str] = (-1, "")
        self._email_ready = False
        self._text_ready = False

    # ------------------------------------------------------------------ setup
    def _audience(self) -> Any:
        for name in self.campaign.audience.segments:
            segment = self.workspace.segments.get(name)
            if segment is not None:
                return self.workspace.audiences.get(segment.audience)
        return None

    def _all_file_transports(self) -> bool:
        channels = set(self.campaign.channels)
        ok = True
        if Channel.EMAIL in channels:
            sender = self.config.senders.get(self.message.sender)
            ok = ok and sender is not None and sender.transport == EmailTransportKind.FILE
        if Channel.SMS in channels and self.config.sms is not None:
            ok = ok and self.config.sms.transport == SmsTransportKind.FILE
        return ok

    def _link_signer(self) -> LinkSigner | None:
        tracking = self.config.tracking
        needed = self.uses.links or (
            (self.unsubscribe_allowed or self.track_opens or self.track_clicks)
            and Channel.EMAIL in self.campaign.channels
        )
        if tracking is None:
            if needed:
                raise UsageError(
                    f"campaign {self.campaign.name!r} needs signed links (its templates use "
                    "`links`, or its category allows unsubscribing) but campaignctl.yaml has "
                    "no `tracking:`",
                    hint="add `tracking: {base_url: https://..., secret_env: CAMPAIGNCTL_SECRET}`",
                )
            return None
        if not needed:
            return None
        allow = self.options.allow_development_secret
        if allow is None:
            allow = self._all_file_transports()
        secret = resolve_secret(tracking, allow_development=allow)
        if secret.notice:
            self.warnings.append(secret.notice)
        return LinkSigner(tracking, secret.value)

    def _compile_string(self, source: str, what: str) -> jinja2.Template:
        try:
            return self.env.from_string(source)
        except jinja2.TemplateError as exc:
            raise template_error(exc, self.root, what) from None

    def template(self, part: str, name: str | None = None) -> jinja2.Template | None:
        """The compiled template of `part` (html, text, sms), None when the file is absent."""
        name = name or self.message.template
        cache_key = (name, part)
        if cache_key not in self._templates:
            file = f"{name}{TEMPLATE_SUFFIXES[part]}"
            try:  # the workspace's loader refuses a name or a link leading out of templates/
                compiled = self.env.get_template(file)
            except jinja2.TemplateNotFound as exc:
                if exc.name != file:  # a layout or include it needs is missing
                    raise template_error(exc, self.root, file) from None
                compiled = None
            except jinja2.TemplateError as exc:
                raise template_error(exc, self.root, file) from None
            self._templates[cache_key] = compiled
        return self._templates[cache_key]

    def _prepare_email(self) -> None:
        """The constant parts of every email: sender, logo, signature, attachments, inliner."""
        if self._email_ready:
            return
        import css_inline

        sender = self.config.senders.get(self.message.sender)
        if sender is None:
            raise UsageError(f"sender {self.message.sender!r} is not in campaignctl.yaml")
        self.sender: Sender = sender
        _, self.from_address = parseaddr(sender.from_)
        self.domain = self.from_address.rpartition("@")[2] or "campaignctl.invalid"
        self._from = mime.address_header("From", [mime.format_mailbox(sender.from_)])
        self._reply_to = (
            mime.address_header("Reply-To", [mime.format_mailbox(sender.reply_to)])
            if sender.reply_to
            else b""
        )
        self._feedback = mime.header(
            "Feedback-ID", f"{self.campaign.name}:{self.campaign.category}:campaignctl"
        )
        self._inliner = ShapeInliner(
            css_inline.CSSInliner(
                keep_at_rules=True, load_remote_stylesheets=False, keep_link_tags=False
            ),
            enabled=self.options.reuse_inlined_shapes,
        )
        self._logo_part, logo_src = self._logo()
        self._attachments = [
            self._attachment(i, path) for i, path in enumerate(self.message.attachments)
        ]
        org = self.config.organization
        campaign_view = CampaignView(
            self.campaign.name,
            self.campaign.description,
            str(self.campaign.type),
            self.campaign.category,
        )
        html_org = OrganizationView(org.name, logo_src, org.address, org.url)
        text_org = OrganizationView(org.name, logo_src, org.address, org.url)
        signature_html, signature_text = self._signature(campaign_view, html_org)
        html_org.signature, text_org.signature = signature_html, signature_text
        blocks = self.message.blocks
        self._html_base = {
            "campaign": campaign_view,
            "organization": html_org,
            "blocks": BlocksView({k: html_block(v) for k, v in blocks.items()}),
        }
        self._text_base = {
            "campaign": campaign_view,
            "organization": text_org,
            "blocks": BlocksView({k: text_block(v) for k, v in blocks.items()}),
        }
        self._dkim = self._dkim_key(sender)
        self._constant_subject = self._subject_once()
        self._email_ready = True

    def _subject_once(self) -> str | None:
        """The subject, when it uses only campaign, organization and blocks (render it once)."""
        source = self.message.subject or ""
        names = meta.find_undeclared_variables(self.env.parse(source))
        if not names <= {"campaign", "organization", "blocks"}:
            return None
        rendered = self._render(self._subject, dict(self._text_base), "the subject")
        return _WHITESPACE.sub(" ", rendered).strip()

    def _logo(self) -> tuple[bytes | None, str | None]:
        logo = self.config.organization.logo
        if not logo:
            return None, None
        if logo.startswith(("http://", "https://")):
            return None, logo  # linked, not embedded
        path = self.workspace.confined_file(
            logo, DOCUMENTS_DIR, "organization.logo", (None, "", "organization", "logo")
        )
        name = Path(logo).name  # as written, even when it is a link to another file
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        cid = f"logo@{self.domain}"
        part = mime.binary_part(
            content_type, _read(path, logo), filename=name, content_id=cid, inline=True
        )
        self._logo_cid = f"cid:{cid}"
        self._logo_file = path
        return part, self._logo_cid

    def _attachment(self, index: int, relative: str) -> bytes:
        # Checked again here, not only by `validate`: a link may have changed since.
        path = self.workspace.confined_file(
            relative,
            DOCUMENTS_DIR,
            "attachment",
            ("Campaign", self.campaign.name, "message", "attachments", index),
            base=DOCUMENTS_DIR,
        )
        name = Path(relative).name  # as written, even when it is a link to another file
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return mime.binary_part(content_type, _read(path, relative), filename=name)

    def _signature(self, campaign: CampaignView, org: OrganizationView) -> tuple[Any, Any]:
        relative = self.config.organization.signature
        name = self.workspace.signature_template()  # refused when it leads out of templates/
        if not relative or name is None:
            return None, None
        context = {"organization": org, "campaign": campaign}
        try:
            html = self.env.get_template(name).render(context)
        except jinja2.TemplateError as exc:
            raise template_error(exc, self.root, relative, "the signature") from None
        if relative.endswith(".html.j2"):
            from inscriptis import get_text

            return Markup(html), get_text(html).strip()
        return html, html

    def _dkim_key(self, sender: Sender) -> bytes | None:
        settings = sender.dkim
        if settings is None:
            return None
        value = os.environ.get(settings.private_key_env)
        if not value:
            message = (
                f"sender {self.message.sender!r} signs with DKIM but the environment variable "
                f"{settings.private_key_env} (the private key, PEM) is not set"
            )
            if self.options.require_dkim_key:
                raise UsageError(
                    message, hint=f'export {settings.private_key_env}="$(cat key.pem)"'
                )
            self.warnings.append(message + ": the message is not signed")
            return None
        if not value.lstrip().startswith("-----") and Path(value).is_file():
            return Path(value).read_bytes()  # a path to the PEM file is accepted too
        return value.encode()

    # ------------------------------------------------------------------ per recipient
    def _views(self, recipient: Recipient) -> tuple[list[RecordView], QuestionnaireView | None]:
        if not recipient.records:
            raise ValueError("a recipient needs at least one record")
        views = [RecordView(r) for r in recipient.records]
        plan = self.questionnaire
        if not self.uses.questionnaire or not plan.specs:
            return views, QuestionnaireView(plan.title, [], {})
        by_key = {r.key: plan.fields_for(r.category, r.attributes) for r in recipient.records}
        first = recipient.records[0].key
        return views, QuestionnaireView(plan.title, by_key[first], by_key)

    def _context(
        self,
        base: dict[str, Any],
        views: list[RecordView],
        questionnaire: Any,
        links: LinksView,
        wave: Wave,
    ) -> dict[str, Any]:
        context = dict(base)
        context["record"] = views[0]
        context["records"] = views
        context["links"] = links
        context["questionnaire"] = questionnaire
        context["wave"] = wave
        return context

    def _render(self, template: jinja2.Template, context: dict[str, Any], what: str) -> str:
        # What `template.render(context)` does, minus the per-call copy of the template's
        # globals: they are a ChainMap whose iteration cost a tenth of each message.
        env = template.environment
        globals_ = self._globals.get(template)
        if globals_ is None:
            globals_ = self._globals[template] = dict(template.globals)
        try:
            try:
                ctx = env.context_class(
                    env, {**globals_, **context}, template.name, template.blocks, globals_
                )
                return env.concat(template.root_render_func(ctx))  # type: ignore[arg-type]
            except Exception:
                env.handle_exception()  # Jinja's traceback rewrite (template file and line)
        except CampaignctlError:
            raise
        except Exception as exc:
            raise template_error(exc, self.root, template.name or what, what) from None

    def _inline(self, template: jinja2.Template, context: dict[str, Any], what: str) -> str:
        """The HTML part rendered with its CSS inlined (once per shape: render/inlining.py)."""
        inliner = self._inliner
        if not inliner.enabled:
            return inliner.inline(self._render(template, context, what))
        capture = OutputCapture()
        token = OUTPUT_CAPTURE.set(capture)
        try:
            shape = self._render(template, context, what)
        finally:
            OUTPUT_CAPTURE.reset(token)
        html = inliner.inline_shape(shape, capture)
        if html is None:  # the marker character is in the template itself: no shapes
            html = inliner.inline(self._render(template, context, what))
        if len(html) > sandbox.MAX_TEXT:  # the shape was bounded; what filled it, in all
            raise template_error(sandbox.too_large(), self.root, template.name or what, what)
        return html

    def _date(self) -> str:
        if self.options.now is not None:
            return format_datetime(self.options.now())
        second = int(time.time())
        if self._date_cache[0] != second:
            self._date_cache = (
                second,
                format_datetime(datetime.now(self.tz).replace(microsecond=0)),
            )
        return self._date_cache[1]

    def render_email(
        self, recipient: Recipient, wave: Wave | None = None, template: str | None = None
    ) -> RenderedEmail:
        """The complete email of one recipient for one wave (`template`: a relaunch's)."""
        self._prepare_email()
        wave = wave or Wave()
        if not recipient.email:
            raise UsageError(f"recipient {recipient.identity!r} has no email address")
        html_template = self.template("html", template)
        text_template = self.template("text", template)
        if html_template is None and text_template is None:
            name = template or self.message.template
            raise UsageError(f"template {name!r} has no email part (.html.j2 or .txt.j2)")
        views, questionnaire = self._views(recipient)
        links = LinksView(self._links, recipient, wave)
        whom = _whom(recipient)
        mid = message_id(self.campaign.name, wave, recipient, "email", self.domain)
        html = text = ""
        if html_template is not None:
            context = self._context(self._html_base, views, questionnaire, links, wave)
            html = self._inline(html_template, context, f"the html part for {whom}")
            if self._tracking is not None:
                html = self._tracking.apply(html, mid)
        if text_template is not None:
            context = self._context(self._text_base, views, questionnaire, links, wave)
            text = self._render(text_template, context, f"the text part for {whom}")
        elif html:
            from inscriptis import get_text

            text = get_text(html)
        subject = self._constant_subject
        if subject is None:
            context = self._context(self._text_base, views, questionnaire, links, wave)
            rendered = self._render(self._subject, context, f"the subject for {whom}")
            subject = _WHITESPACE.sub(" ", rendered).strip()
        data = self._assemble(recipient.email, subject, mid, html, text, links)
        return RenderedEmail(
            mid, recipient.email, self.from_address, subject, html, text, data, _used(links)
        )

    def _assemble(
        self, to: str, subject: str, mid: str, html: str, text: str, links: LinksView
    ) -> bytes:
        head = [
            self._from,
            mime.address_header("To", [mime.format_mailbox(to)]),
            self._reply_to,
            mime.header("Subject", subject),
            b"Date: " + self._date().encode("ascii") + b"\r\n",
            b"Message-ID: <" + mid.encode("ascii") + b">\r\n",
        ]
        if self.unsubscribe_allowed:
            url = links.unsubscribe
            mailto = f"mailto:{self.sender.reply_to or self.from_address}?subject=unsubscribe"
            head.append(mime.address_header("List-Unsubscribe", [f"<{url}>", f"<{mailto}>"]))
            head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        head.append(self._feedback)
        head.append(b"MIME-Version: 1.0\r\n")
        seed = mid[:16]
        mixed, alternative, related = mime.boundaries(seed)
        parts_text = mime.text_part("plain", text, self._qp)
        if html:
            html_part = mime.text_part("html", html, self._qp)
            if self._logo_part is not None and self._logo_cid in html:
                html_part = mime.multipart("related", related, [html_part, self._logo_part])
            body = mime.multipart("alternative", alternative, [parts_text, html_part])
        else:
            body = parts_text
        if self._attachments:
            body = mime.multipart("mixed", mixed, [body, *self._attachments])
        data = b"".join(head) + body
        if self._dkim is not None:
            data = self._sign(data)
        return data

    def _sign(self, data: bytes) -> bytes:
        import dkim

        settings = self.sender.dkim
        assert settings is not None
        signature = dkim.sign(
            data,
            settings.selector.encode(),
            settings.domain.encode(),
            self._dkim,
            include_headers=[h for h in DKIM_HEADERS if h != b"list-unsubscribe"]
            + ([b"list-unsubscribe"] if self.unsubscribe_allowed else []),
        )
        return signature + data

    def render_sms(
        self, recipient: Recipient, wave: Wave | None = None, template: str | None = None
    ) -> RenderedSms:
        """The SMS text of one recipient, with its encoding, parts and opt-out text."""
        wave = wave or Wave()
        sms_template = self.template("sms", template)
        if sms_template is None:
            name = template or self.message.template
            raise UsageError(
                f"template {name!r} has no SMS part: {TEMPLATES_DIR}/{name}.sms.j2 not found"
            )
        settings = self.config.sms
        if settings is None:
            raise UsageError("campaignctl.yaml has no `sms:` settings")
        self._prepare_text_base()
        views, questionnaire = self._views(recipient)
        links = LinksView(self._links, recipient, wave)
        context = self._context(self._text_base, views, questionnaire, links, wave)
        text = self._render(sms_template, context, f"the SMS for {_whom(recipient)}")
        text = "\n".join(_WHITESPACE.sub(" ", line).strip() for line in text.strip().splitlines())
        if self.unsubscribe_allowed and settings.opt_out_text:
            text = f"{text}\n{settings.opt_out_text}"
        info = sms_info(text)
        warnings = ()
        if info.too_long:
            warnings = (f"the SMS takes {info.parts} parts ({info.describe()}): shorten it",)
        domain = settings.sender_id.replace(" ", "").lower() + ".sms.campaignctl"
        mid = message_id(self.campaign.name, wave, recipient, "sms", domain)
        return RenderedSms(
            mid, recipient.phone, settings.sender_id, text, info, warnings, _used(links)
        )

    def _prepare_text_base(self) -> None:
        if self._email_ready or self._text_ready:
            return
        self._text_ready = True
        # SMS-only campaigns still get campaign, organization and blocks (text flavour).
        org = self.config.organization
        campaign_view = CampaignView(
            self.campaign.name,
            self.campaign.description,
            str(self.campaign.type),
            self.campaign.category,
        )
        text_org = OrganizationView(org.name, org.logo, org.address, org.url)
        self._text_base = {
            "campaign": campaign_view,
            "organization": text_org,
            "blocks": BlocksView({k: text_block(v) for k, v in self.message.blocks.items()}),
        }

    # ------------------------------------------------------------------ preview helpers
    def html_for_browser(self, html: str) -> str:
        """The HTML part with the embedded logo as a data: URI, so a browser shows it."""
        if self._logo_part is None or self._logo_cid not in html:
            return html
        import base64

        content_type = mimetypes.guess_type(self._logo_file.name)[0] or "image/png"
        data = base64.b64encode(self._logo_file.read_bytes()).decode("ascii")
        return html.replace(self._logo_cid, f"data:{content_type};base64,{data}")
