"""What a template sees: the documented context (docs/templates.md) and its inputs.

`RecordData`, `Recipient` and `Wave` are what callers (preview, the send engine) hand
to the renderer. The *View classes are what templates see: plain objects whose public
attributes are the documented names, so the sandbox exposes nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from campaignctl.enums import WaveKind

# The names every template may use (the static checks of `validate` use them too).
CONTEXT_NAMES = (
    "record",
    "records",
    "campaign",
    "organization",
    "blocks",
    "links",
    "questionnaire",
    "wave",
)


@dataclass(frozen=True, slots=True)
class Wave:
    number: int = 1
    kind: WaveKind = WaveKind.INITIAL


@dataclass(frozen=True, slots=True)
class RecordData:
    """One record as the store (or the CSV, before import) holds it."""

    key: str
    attributes: Mapping[str, Any]
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who one message goes to: one record, or every record of one address when grouped."""

    records: Sequence[RecordData]
    email: str | None = None
    phone: str | None = None
    id: str | None = field(default=None)  # identity in the Message-ID; default: the keys

    @property
    def identity(self) -> str:
        return self.id or "+".join(r.key for r in self.records)

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self.records]


class View:
    """Base of the objects templates see; `_what` names them in error messages."""

    _what = "object"

    def __repr__(self) -> str:
        return f"<{self._what}>"


class RecordView(View):
    """`record`: the attributes by column name, plus `key` (and `category`)."""

    _what = "record"

    def __init__(self, data: RecordData) -> None:
        self.__dict__.update(data.attributes)
        self.key = data.key
        if "category" not in self.__dict__:
            self.category = data.category


class CampaignView(View):
    _what = "campaign"

    def __init__(self, name: str, description: str | None, type_: str, category: str) -> None:
        self.name = name
        self.description = description
        self.type = type_
        self.category = category


class OrganizationView(View):
    _what = "organization"

    def __init__(
        self,
        name: str,
        logo: str | None,
        address: str | None,
        url: str | None,
        signature: Any = None,
    ) -> None:
        self.name = name
        self.logo = logo
        self.address = address
        self.url = url
        self.signature = signature


class BlocksView(View):
    """`blocks`: the campaign's free texts, escaped, with their paragraphs kept."""

    _what = "blocks"

    def __init__(self, blocks: Mapping[str, Any]) -> None:
        self.__dict__.update(blocks)


_PARAGRAPHS = re.compile(r"\n\s*\n")


def html_block(text: str) -> Markup:
    """Escaped text; paragraphs separated by a blank line, lines by <br>.

    It renders inside the template's own `<p>…</p>`, so no block-level tags are added.
    """
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text.strip()) if p.strip()]
    return Markup("<br><br>\n").join(
        Markup("<br>\n").join(escape(line.strip()) for line in p.splitlines()) for p in paragraphs
    )


def text_block(text: str) -> str:
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text.strip()) if p.strip()]
    return "\n\n".join("\n".join(line.strip() for line in p.splitlines()) for p in paragraphs)


@dataclass(frozen=True, slots=True)
class DocumentLink:
    name: str
    label: str
    typology: str
    to_sign: bool
    url: str


class LinksView(View):
    """`links`: signed URLs, computed only when a template uses them."""

    _what = "links"

    def __init__(self, factory: Any, recipient: Recipient, wave: Wave) -> None:
        self._factory = factory
        self._recipient = recipient
        self._wave = wave

    def __getattr__(self, name: str) -> Any:
        # Only the documented names: anything else is undefined (StrictUndefined).
        if name.startswith("_") or name not in self._factory.NAMES:
            raise AttributeError(name)
        value = self._factory.make(name, self._recipient, self._wave)
        self.__dict__[name] = value  # computed once per message
        return value
