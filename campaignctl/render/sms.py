"""SMS encoding and segmentation: GSM 03.38 (7-bit, with its extension table) or UCS-2.

A single-part message holds 160 GSM-7 septets or 70 UTF-16 code units; a concatenated
message loses room to its header, 153 septets or 67 units per part. An extension
character (`€`, `{`, `[` …) costs two septets and is never split across parts; neither
is a surrogate pair (emoji), which costs two UTF-16 units.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
MAX_PARTS_BEFORE_WARNING = 3


class SmsEncoding(enum.StrEnum):
    GSM7 = "gsm-7"
    UCS2 = "ucs-2"


@dataclass(frozen=True)
class SmsInfo:
    encoding: SmsEncoding
    length: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int
    characters: int

    @property
    def too_long(self) -> bool:
        return self.parts > MAX_PARTS_BEFORE_WARNING

    def describe(self) -> str:
        unit = "septets" if self.encoding == SmsEncoding.GSM7 else "UTF-16 units"
        return f"{self.encoding}, {self.length} {unit}, {self.parts} part(s)"


def _costs(text: str) -> tuple[SmsEncoding, list[int]]:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return SmsEncoding.GSM7, [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return SmsEncoding.UCS2, [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _count_parts(costs: list[int], single: int, multi: int) -> int:
    total = sum(costs)
    if total <= single:
        return 1 if costs else 0
    parts, used = 1, 0
    for cost in costs:  # greedy: a character never straddles two parts
        if used + cost > multi:
            parts += 1
            used = 0
        used += cost
    return parts


def sms_info(text: str) -> SmsInfo:
    """The encoding an SMS needs and how many parts it is billed as."""
    encoding, costs = _costs(text)
    single, multi = (160, 153) if encoding == SmsEncoding.GSM7 else (70, 67)
    return SmsInfo(encoding, sum(costs), _count_parts(costs, single, multi), len(text))
