"""What reaches the terminal: text shown as text, never as terminal commands.

Stored data (a contact's name, a CSV value, an event's field) may hold ESC, BEL, CR or
backspace: printed raw, they move the cursor, rewrite earlier lines, change the window
title or ring the bell. Every console of the CLI (and the error paragraph of cli/main.py)
goes through `safe_text`, which writes such characters as visible escapes (`\\x1b`);
line breaks and tabs stay, they are the layout of the output.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_SHOWN_ESCAPED = [
    *(c for c in range(0x20) if c not in (0x09, 0x0A)),  # C0 controls, but tab and newline
    0x7F,
    *range(0x80, 0xA0),  # C1 controls (0x9B is a CSI on some terminals)
    *range(0x202A, 0x202F),  # bidirectional overrides: text that displays reordered
    *range(0x2066, 0x206A),
]
_ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _SHOWN_ESCAPED}


def safe_text(text: str) -> str:
    """`text` with terminal control characters written as visible escapes."""
    return text.translate(_ESCAPES)


def console(**options: Any) -> Any:
    """A rich Console whose every printed string (tables included) is `safe_text`."""
    return _safe_console_class()(**options)


@cache
def _safe_console_class() -> type:
    from rich.console import Console

    class SafeConsole(Console):
        def render_str(self, text: str, **options: Any) -> Any:  # print() and table cells
            return super().render_str(safe_text(text), **options)

    return SafeConsole
