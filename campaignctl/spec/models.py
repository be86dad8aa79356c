"""Pydantic models of every YAML kind (DESIGN.md §1) and of `campaignctl.yaml`.

One source of truth: the loader validates documents against these models,
`campaignctl schema` emits their JSON Schema, and later layers (store, plan,
render, delivery, schedule) consume them. Models are frozen; unknown keys are
errors. Checks that need other documents (references, cycles, files) live in
`spec.workspace`.
"""

from __future__ import annotations

import enum
import re
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from campaignctl.enums import CampaignType, Channel
from campaignctl.errors import InvalidValue
from campaignctl.spec.types import (
    Duration,
    EmailAddress,
    LocalDateTime,
    Mailbox,
    Slug,
    StoreUrl,
    TimeOfDay,
    TimeZoneName,
    transport_name,
)
from campaignctl.store.functions import compile_pattern

ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
IDENTIFIER_PATTERN = r"^[a-z_][a-z0-9_]*$"
EnvName = Annotated[
    str,
    Field(
        pattern=ENV_NAME_PATTERN,
        description="Name of an environment variable holding the secret (never the secret itself).",
    ),
]
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
TemplateName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$", min_length=1)]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# =========================================================================== enums


class EmailTransportKind(enum.StrEnum):
    FILE = "file"
    SMTP = "smtp"


class SmsTransportKind(enum.StrEnum):
    FILE = "file"
    HTTP = "http"


# the built-in transports above, or one an installed plugin registers (spec/transports.py)
EmailTransportName = transport_name(tuple(EmailTransportKind))
SmsTransportName = transport_name(tuple(SmsTransportKind))


class ColumnType(enum.StrEnum):
    STRING = "string"
    EMAIL = "email"
    PHONE = "phone"
    INT = "int"
    NUMBER = "number"
    BOOL = "bool"
    DATE = "date"
    LIST = "list"
    PERIODS = "periods"  # date ranges "2026-04-01..2026-10-31;2026-12-20..2027-01-05"


class FieldType(enum.StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    INT = "int"
    NUMBER = "number"
    BOOL = "bool"
    DATE = "date"
    CHOICE = "choice"
    MULTICHOICE = "multichoice"
    LIST = "list"
    PERIODS = "periods"


class PeriodsMode(enum.StrEnum):
    NONE = "none"  # leave periods empty for the recipient to fill in
    SAME = "same"  # suggest the current periods unchanged
    NEXT_YEAR = "next_year"  # suggest the current periods shifted by one year


class RelaunchTarget(enum.StrEnum):
    NON_RESPONDERS = "non_responders"
    NON_OPENERS = "non_openers"
    FAILED = "failed"
    ALL = "all"


class Every(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class Weekday(enum.StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class EventType(enum.StrEnum):
    """What happens to a message or a record (DESIGN.md §3): one vocabulary for every producer."""

    DELIVERED = "delivered"
    BOUNCED = "bounced"
    OPENED = "opened"
    CLICKED = "clicked"
    FORM_OPENED = "form_opened"
    FORM_SUBMITTED = "form_submitted"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"
    SMS_DELIVERED = "sms_delivered"
    SMS_FAILED = "sms_failed"
    SMS_REPLY = "sms_reply"
    # a `to_sign` document of an information campaign signed in the partner space
    DOCUMENT_SIGNED = "document_signed"
    # about a record, not a message (DESIGN.md §5): named by `record` (+ `audience`)
    DOCUMENT_RECEIVED = "document_received"
    SPACE_VISITED = "space_visited"
    API_CALL = "api_call"
    SCORE_CHANGED = "score_changed"


# Events that name their record alone (no message, no campaign needed).
RECORD_EVENTS = frozenset(
    {EventType.DOCUMENT_RECEIVED, EventType.SPACE_VISITED, EventType.API_CALL,
     EventType.SCORE_CHANGED}
)  # fmt: skip


# Automations (§5) may also start when a record joins or leaves a list or a segment, on an
# API call, a score change, a received document or a visit to the partner space.
TriggerEvent = enum.StrEnum(  # type: ignore[misc]
    "TriggerEvent",
    [(e.name, e.value) for e in EventType]
    + [
        ("LIST_ADDED", "list_added"),
        ("LIST_REMOVED", "list_removed"),
        ("SEGMENT_ENTERED", "segment_entered"),
    ],
    module=__name__,
)


class ExportSystemType(enum.StrEnum):
    CSV = "csv"
    WEBHOOK = "webhook"


# =========================================================================== filters

Scalar = str | bool | int | float | date | None


class Operators(SpecModel):
    """Tests on one attribute of a record; several operators in one mapping all apply."""

    eq: Scalar = None
    ne: Scalar = None
    in_: list[Scalar] | None = Field(None, alias="in")
    not_in: list[Scalar] | None = None
    contains: Scalar = None
    exists: bool | None = None
    gt: Scalar = None
    gte: Scalar = None
    lt: Scalar = None
    lte: Scalar = None
    between: list[Scalar] | None = Field(None, min_length=2, max_length=2)
    matches: str | None = None

    OPERATORS: ClassVar[tuple[str, ...]] = (
        "eq",
        "ne",
        "in",
        "not_in",
        "contains",
        "exists",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "matches",
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> Operators:
        if not self.model_fields_set:
            raise ValueError(f"give at least one operator: {', '.join(self.OPERATORS)}")
        return self

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)
        return value

    def items(self) -> list[tuple[str, Any]]:
        """The (operator, value) pairs actually written, with their YAML names."""
        names = {"in_": "in"}
        return [(names.get(f, f), getattr(self, f)) for f in self.model_fields_set]


def _shorthand_eq(value: Any) -> Any:
    """`category: hotel` is short for `category: {eq: hotel}`; a list for `{in: [...]}`."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"in": value}
    return {"eq": value}


FieldTest = Annotated[Operators, BeforeValidator(_shorthand_eq)]


class Condition(SpecModel):
    """A filter: combinators, segment references, and attribute tests (all must hold).

    Any key other than `all`, `any`, `not` and `segment` names a record attribute.
    """

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    __pydantic_extra__: dict[str, FieldTest] = Field(init=False)  # type: ignore[assignment]

    all_: list[Condition] | None = Field(None, alias="all")
    any_: list[Condition] | None = Field(None, alias="any")
    not_: Condition | None = Field(None, alias="not")
    segment: Slug | None = None

    @property
    def tests(self) -> dict[str, Operators]:
        """Attribute tests: attribute name → operators."""
        return dict(self.__pydantic_extra__ or {})

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set and not self.__pydantic_extra__:
            raise ValueError(
                "an empty condition matches nothing useful: use `all: []` to match every record"
            )
        return self

    @model_validator(mode="after")
    def _attribute_names(self) -> Condition:
        # attribute names reach SQL (JSON paths): only what a column name can be
        for name in self.__pydantic_extra__ or {}:
            if re.fullmatch(IDENTIFIER_PATTERN, name) is None:
                raise ValueError(
                    f"{name!r} is not an attribute name (lower-case letters, digits and _)"
                )
        return self


# =========================================================================== workspace config


class Organization(SpecModel):
    name: str = Field(min_length=1)
    logo: str | None = Field(
        None,
        description="Path of an image under documents/, relative to the workspace, or an "
        "https:// URL.",
    )
    address: str | None = None
    url: str | None = None
    signature: str | None = Field(
        None,
        description="Path of a Jinja template with the signature block, under templates/ "
        "(relative to the workspace).",
    )


class SmtpSettings(SpecModel):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    tls: bool = Field(False, description="Implicit TLS (port 465); excludes starttls.")
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    allow_plaintext_auth: bool = Field(
        False,
        description="Send AUTH (the password) without TLS to a server that is not this "
        "machine. Off: such a sender is an error of `validate`.",
    )
    pool_size: PositiveInt = 10
    max_per_domain: PositiveInt = Field(5, description="Concurrent sends per recipient domain.")
    timeout: Duration = Field(default="30s", validate_default=True)

    @model_validator(mode="after")
    def _tls_xor_starttls(self) -> SmtpSettings:
        if self.tls and self.starttls and "starttls" in self.model_fields_set:
            raise ValueError("`tls: true` (implicit TLS) and `starttls: true` exclude each other")
        return self

    @property
    def plaintext_auth(self) -> bool:
        """AUTH would carry the password in clear to another machine, and nobody allowed
        it: `validate` reports it and the transport refuses to log in."""
        return (
            bool(self.username_env or self.password_env)
            and not (self.tls or self.starttls)
            and not self.allow_plaintext_auth
            and not _loopback(self.host)
        )


def _loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: the password does not leave this machine."""
    import ipaddress

    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RateLimit(SpecModel):
    per_second: PositiveFloat


class DkimSettings(SpecModel):
    selector: str
    domain: str
    private_key_env: EnvName


class Sender(SpecModel):
    from_: Mailbox = Field(alias="from")
    reply_to: EmailAddress | None = None
    transport: EmailTransportName = "file"
    smtp: SmtpSettings | None = None
    rate: RateLimit | None = None
    dkim: DkimSettings | None = None


class QuietHours(SpecModel):
    start: TimeOfDay
    end: TimeOfDay
    days_off: list[Weekday] = []


class SmsHttp(SpecModel):
    url: str = Field(pattern=r"^https?://")
    token_env: EnvName
    timeout: Duration = Field(default="10s", validate_default=True)


class SmsSettings(SpecModel):
    transport: SmsTransportName = "file"
    sender_id: str = Field(pattern=r"^[A-Za-z0-9 ]{1,11}$|^\+?\d{3,15}$")
    http: SmsHttp | None = None
    quiet_hours: QuietHours | None = None
    price_per_part: float | None = Field(None, ge=0)
    currency: str = "EUR"
    opt_out_text: str = "STOP au 36111"
    rate: RateLimit | None = None


class Tracking(SpecModel):
    base_url: str = Field(pattern=r"^https?://")
    secret_env: EnvName = "CAMPAIGNCTL_SECRET"
    token_max_age: Duration = Field(default="180d", validate_default=True)
    opens: bool = Field(
        True, description="An open pixel in HTML emails (of categories with `tracking`)."
    )
    clicks: bool = Field(
        True,
        description="Links of HTML emails go through `serve`'s click redirect (of categories "
        "with `tracking`); form, space, unsubscribe, preference and document links never do.",
    )
    api_token_env: EnvName = Field(
        "CAMPAIGNCTL_API_TOKEN",
        description="Environment variable holding the bearer token of `POST /api/events`.",
    )


class CategorySettings(SpecModel):
    unsubscribe: bool = True
    tracking: bool = Field(True, description="Opens and clicks of this category are tracked.")
    label: str | None = None


class DeliverySettings(SpecModel):
    max_attempts: int = Field(5, ge=1, le=50)
    retry_backoff: Duration = Field(default="5m", validate_default=True)
    batch_size: int = Field(200, ge=1, le=10_000)


class SchedulerSettings(SpecModel):
    max_lateness: Duration = Field(default="6h", validate_default=True)
    lease_ttl: Duration = Field(default="60s", validate_default=True)


class ExportSystem(SpecModel):
    type: ExportSystemType
    path: str | None = Field(
        None, description="csv: folder the files are dropped into, inside the workspace."
    )
    url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="webhook: the URL badges are POSTed to; https unless it is localhost.",
    )
    token_env: EnvName | None = Field(
        None, description="webhook: the variable holding the bearer token."
    )
    batch_size: int = Field(500, ge=1, le=10_000, description="webhook: badges per request.")
    timeout: Duration = Field(default="30s", validate_default=True)
    max_attempts: PositiveInt = Field(
        6, description="webhook: tries of one request on a 5xx or a network error."
    )
    backoff: Duration = Field(
        default="1s",
        validate_default=True,
        description="webhook: the wait before the first retry; it doubles at each one.",
    )
    required_fields: list[str] = Field(
        default_factory=list,
        description="Badge fields every export to this system must give (Raiser's Edge NXT: "
        "appeal and package); `validate` reports an export without one.",
    )

    @model_validator(mode="after")
    def _target(self) -> ExportSystem:
        if self.type == ExportSystemType.CSV and not self.path:
            raise ValueError("a csv export system needs `path:` (the folder to drop files into)")
        if self.type == ExportSystemType.WEBHOOK and not self.url:
            raise ValueError("a webhook export system needs `url:`")
        return self

    @field_validator("url")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        if url and url.startswith("http://") and not _local_url(url):
            raise InvalidValue(
                f"webhook URL {url!r} is not https: badges and the token would travel in clear",
                hint="use https://; plain http is accepted only for localhost",
            )
        return url


def _local_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return host in ("localhost", "127.0.0.1", "::1") or bool(host and host.startswith("127."))


class SigningSettings(SpecModel):
    """The organisation's certificate for documents with `sign: true` (PAdES, pyHanko)."""

    certificate: str = Field(
        description="PEM certificate (chain after it): a path relative to the workspace, or "
        "absolute (keep keys out of the repository)."
    )
    key: str = Field(description="PEM private key, relative to the workspace or absolute.")
    password_env: EnvName | None = Field(
        None, description="Environment variable holding the key's password, if it has one."
    )
    reason: str = "Document certifié par l'organisation"


class WorkspaceConfig(SpecModel):
    """`campaignctl.yaml`: one per workspace."""

    store: StoreUrl = Field(
        "sqlite:///.campaignctl/store.db",
        description="SQLAlchemy URL; relative SQLite paths are relative to the workspace.",
    )
    timezone: TimeZoneName = "UTC"
    phone_region: str = Field(
        "FR", pattern=r"^[A-Z]{2}$", description="Default region for national phone numbers."
    )
    organization: Organization
    senders: dict[Slug, Sender] = {}
    sms: SmsSettings | None = None
    tracking: Tracking | None = None
    categories: dict[Slug, CategorySettings] = {}
    delivery: DeliverySettings = DeliverySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    systems: dict[Slug, ExportSystem] = Field(
        {}, description="CRM systems that campaign `exports:` transfer to."
    )
    signing: SigningSettings | None = None


# =========================================================================== documents


class Document(SpecModel):
    kind: str
    name: Slug
    description: str | None = None


class Column(SpecModel):
    type: ColumnType = ColumnType.STRING
    header: str | None = Field(None, description="CSV header, when it differs from the name.")
    region: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="phone: default region.")
    separator: str = Field(";", min_length=1, description="list and periods: item separator.")
    format: str | None = Field(
        None, description="date: strptime format, default ISO or dd/mm/yyyy."
    )
    required: bool = False
    label: str | None = Field(None, description="Default questionnaire label of this attribute.")


class Audience(Document):
    """A CSV source. Every column of the file is a record attribute (text, named after its
    header); `columns:` only adds types, labels and header renames. The key column is
    text without being listed."""

    kind: Literal["Audience"]
    source: str = Field(description="CSV file under audiences/, relative to the workspace.")
    key: Identifier = Field(description="Column that identifies a record across imports.")
    columns: dict[Identifier, Column] = Field(
        {}, description="Types, labels and header renames; unlisted columns are text."
    )
    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    encoding: str = "utf-8"

    def first_column(self, column_type: ColumnType) -> str | None:
        """The column that holds the contact address of that type (the first one declared)."""
        return next((n for n, c in self.columns.items() if c.type == column_type), None)


class Segment(Document):
    kind: Literal["Segment"]
    audience: Slug
    where: Condition


class List(Document):
    """A named list of records of one audience (DESIGN.md §5): its members live in the store,
    changed by automation steps, `campaignctl list add/remove` and `POST /api/lists/NAME`."""

    kind: Literal["List"]
    audience: Slug


class QuestionField(SpecModel):
    id: Identifier
    label: str | None = None
    help: str | None = None
    required: bool = False
    type: FieldType | None = Field(None, description="Default: from the audience column's type.")
    only_for: list[str] | None = Field(None, description="Record categories that see this field.")
    choices: list[str] | None = None

    @model_validator(mode="after")
    def _choices(self) -> QuestionField:
        if self.type in (FieldType.CHOICE, FieldType.MULTICHOICE) and not self.choices:
            raise ValueError(f"a {self.type} field needs `choices:`")
        return self


class Questionnaire(Document):
    kind: Literal["Questionnaire"]
    title: str | None = None
    audience: Slug | None = Field(None, description="Checks field ids against its columns.")
    fields: list[QuestionField] | None = Field(
        None, description="Default: every attribute of the record."
    )

    @field_validator("fields")
    @classmethod
    def _unique_ids(cls, fields: list[QuestionField] | None) -> list[QuestionField] | None:
        seen: set[str] = set()
        for field in fields or []:
            if field.id in seen:
                raise ValueError(f"field id {field.id!r} appears twice")
            seen.add(field.id)
        return fields


class AudienceSelection(SpecModel):
    segments: list[Slug] = Field(min_length=1)
    exclude_segments: list[Slug] = []
    exclude_campaigns: list[Slug] = []


class FieldOverride(SpecModel):
    label: str | None = None
    help: str | None = None
    required: bool | None = None


class QuestionnaireUse(SpecModel):
    ref: Slug
    fields: list[Identifier] | None = Field(None, description="Default: all.")
    overrides: dict[Identifier, FieldOverride] = {}


class MessageSpec(SpecModel):
    sender: Slug = "default"
    subject: str | None = Field(None, description="Jinja expression; required for email.")
    template: TemplateName = Field(
        description="Base name under templates/: NAME.html.j2, NAME.txt.j2, NAME.sms.j2"
    )
    blocks: dict[Identifier, str] = {}
    attachments: list[str] = Field([], description="Paths under documents/.")


class Options(SpecModel):
    """Frozen after the first send; they apply to relaunches too."""

    group_by_email: bool = False
    send_email: bool = True
    prefill: bool = True
    periods_mode: PeriodsMode = PeriodsMode.NONE
    internal_criteria: list[str] = []
    max_messages_per_contact: PositiveInt | None = None
    respect_other_campaigns: bool | None = Field(
        None,
        description="Leave out the records already asked by another active questionnaire "
        "campaign (seed 000), each counted with that campaign's name. Default: true for "
        "questionnaire campaigns, false for message and information campaigns.",
    )


class RelaunchRule(SpecModel):
    after: Duration
    to: RelaunchTarget = RelaunchTarget.NON_RESPONDERS
    channels: list[Channel] | None = None
    template: TemplateName | None = None


class Recurrence(SpecModel):
    every: Every | None = None
    interval: PositiveInt = 1
    cron: str | None = None
    until: date | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Recurrence:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give either `every:` (day, week, month, year) or `cron:`, not both")
        if self.cron is not None:
            from croniter import croniter

            if not croniter.is_valid(self.cron):
                raise ValueError(
                    f"invalid cron expression {self.cron!r}: write five fields, e.g. '0 9 * * mon'"
                )
        return self


class Schedule(SpecModel):
    send_at: LocalDateTime | None = Field(
        None,
        description="Local time in `timezone` (default: the workspace's) unless it has an offset.",
    )
    timezone: TimeZoneName | None = None
    relaunch: list[RelaunchRule] = []
    recurrence: Recurrence | None = None


class ExportSpec(SpecModel):
    system: Slug
    entity: str = Field(description="What the CRM records, e.g. appeal, badge.")
    label: str
    fields: dict[str, str | int | float | bool] = {}
    segments: list[Slug] | None = Field(None, description="Default: every segment.")
    channels: list[Channel] | None = Field(None, description="Default: every channel.")


class DocumentSpec(SpecModel):
    path: str = Field(description="Path under documents/.")
    typology: str
    to_sign: bool = Field(False, description="The recipient signs it in their space.")
    sign: bool = Field(
        False,
        description="A PDF served signed with the organisation's certificate (PAdES, "
        "`signing:` in campaignctl.yaml).",
    )
    label: str | None = None


class ActiveWindow(SpecModel):
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _ordered(self) -> ActiveWindow:
        if self.to < self.from_:
            raise ValueError(f"`to` ({self.to}) is before `from` ({self.from_})")
        return self


class Trigger(SpecModel):
    event: TriggerEvent
    where: Condition | None = Field(None, description="Tests on the event's data and record.")
    list: Slug | None = None
    segment: Slug | None = None
    document_type: str | None = None
    campaign: Slug | None = Field(None, description="Only events of this campaign.")

    @model_validator(mode="after")
    def _needs(self) -> Trigger:
        if self.event in (TriggerEvent.LIST_ADDED, TriggerEvent.LIST_REMOVED) and not self.list:
            raise ValueError(f"a {self.event} trigger needs `list:`")
        if self.event == TriggerEvent.SEGMENT_ENTERED and not self.segment:
            raise ValueError("a segment_entered trigger needs `segment:`")
        return self


class SendStep(SpecModel):
    template: TemplateName | None = None
    subject: str | None = None
    channels: list[Channel] | None = None


def _send_shorthand(value: Any) -> Any:
    return {"template": value} if isinstance(value, str) else value


class Step(SpecModel):
    """One node of an automation: exactly one action (`if` comes with `then`/`else`)."""

    name: str | None = None
    # `send: NAME` is short for `send: {template: NAME}`; the schema accepts both forms
    send: (
        Annotated[
            SendStep,
            BeforeValidator(_send_shorthand, json_schema_input_type=SendStep | TemplateName),
        ]
        | None
    ) = None
    wait: Duration | None = None
    if_: Condition | None = Field(None, alias="if")
    then: list[Step] = []
    else_: list[Step] = Field([], alias="else")
    add_to_list: Slug | None = None
    remove_from_list: Slug | None = None

    ACTIONS: ClassVar[dict[str, str]] = {  # YAML key -> attribute
        "send": "send",
        "wait": "wait",
        "if": "if_",
        "add_to_list": "add_to_list",
        "remove_from_list": "remove_from_list",
    }

    @property
    def action(self) -> str:
        return next(key for key, attr in self.ACTIONS.items() if getattr(self, attr) is not None)

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [key for key, attr in self.ACTIONS.items() if getattr(self, attr) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step takes exactly one of {', '.join(self.ACTIONS)}"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if given[0] != "if" and (self.then or self.else_):
            raise ValueError("`then:` and `else:` belong to an `if:` step")
        return self


class Campaign(Document):
    kind: Literal["Campaign"]
    category: Slug
    type: CampaignType = CampaignType.MESSAGE
    draft: bool = Field(False, description="Saved but not activated: apply records it as a draft.")
    tags: list[Slug] = []
    audience: AudienceSelection
    channels: list[Channel] = Field(
        [Channel.EMAIL],
        description="Priority order: a later channel only where earlier ones lack an address.",
    )
    questionnaire: QuestionnaireUse | None = None
    message: MessageSpec | None = None
    options: Options = Options()
    schedule: Schedule | None = None
    exports: list[ExportSpec] = []
    documents: list[DocumentSpec] = []
    active: ActiveWindow | None = None
    dashboard_message: str | None = None
    logo: str | None = Field(
        None,
        description="Information campaigns: the picture shown with the campaign in the partner "
        "space (seed 003's \"logo d'illustration\"), an image under documents/ (PNG, JPEG, GIF, "
        "WebP or SVG, at most 256 KiB), the path relative to documents/ as `documents:` paths.",
    )
    partner_types: list[str] = []
    trigger: Trigger | None = None
    steps: list[Step] = []

    @model_validator(mode="before")
    @classmethod
    def _respect_other_campaigns_by_type(cls, data: Any) -> Any:
        """`options.respect_other_campaigns` unset: true for a questionnaire campaign only,
        so that a second newsletter never loses its recipients to the first."""
        if not isinstance(data, dict):
            return data
        options = data.get("options", {})
        if not isinstance(options, dict) or options.get("respect_other_campaigns") is not None:
            return data
        by_type = data.get("type") == CampaignType.QUESTIONNAIRE
        return {**data, "options": {**options, "respect_other_campaigns": by_type}}

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, channels: list[Channel]) -> list[Channel]:
        if len(set(channels)) != len(channels):
            raise ValueError("a channel is listed twice")
        return channels

    @model_validator(mode="after")
    def _coherent(self) -> Campaign:
        if self.type == CampaignType.QUESTIONNAIRE and self.questionnaire is None:
            raise ValueError("a questionnaire campaign needs `questionnaire: {ref: ...}`")
        if self.type != CampaignType.QUESTIONNAIRE and self.questionnaire is not None:
            raise ValueError(f"a {self.type} campaign takes no `questionnaire:`")
        if self.channels and self.message is None:
            raise ValueError(
                "campaigns with channels need `message:` (sender, subject, template); "
                "an information campaign shown only in the partner space sets `channels: []`"
            )
        if self.steps and self.trigger is None and self.schedule is None:
            raise ValueError("`steps:` run from a `trigger:` or a `schedule:`: add one")
        return self

    @property
    def segment_names(self) -> list[str]:
        return list(self.audience.segments)


KINDS: dict[str, type[Document]] = {
    "Audience": Audience,
    "Segment": Segment,
    "Questionnaire": Questionnaire,
    "Campaign": Campaign,
    "List": List,
}
