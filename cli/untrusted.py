"""Untrusted text for the terminal: every string from a model, a tool or an input file, shown, never obeyed.

A terminal acts on control characters: ``ESC]0;...BEL`` sets the window title, ``ESC[2J`` clears the
screen, ``ESC[31m`` colours what follows, and C1 controls (``\\x9b`` is a one-byte CSI) do the same on
terminals that honour them. Rich escapes its own markup (text is always a :class:`rich.text.Text`) but
passes these bytes through, so a tool's stdout or a question id could redraw the user's terminal.
:func:`visible` writes each such character as a Python escape (``\\x1b``, ``\\x9b``, ``\\u202e``) instead:
C0 and C1 controls, DEL, and the Unicode bidirectional and line/paragraph separators that reorder or
break what a reader sees. Newlines and tabs are kept; ``\\r\\n`` becomes ``\\n``.

Examples:
    >>> visible("red \\x1b[31mtext")
    'red \\\\x1b[31mtext'
    >>> visible("two\\nlines")
    'two\\nlines'
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

_CONTROLS = [c for c in range(0x20) if c not in (0x09, 0x0A)] + list(range(0x7F, 0xA0))
_FORMATS = [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]
_ESCAPES = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _FORMATS}


def visible(value: Any) -> str:
    """``str(value)`` with its control characters written as escapes (see the module docstring)."""
    return str(value).replace("\r\n", "\n").translate(_ESCAPES)


def untrusted(value: Any, style: str = "") -> Text:
    """Untrusted text as a rich :class:`Text`: control characters made visible, never parsed as markup;
    ``None`` or ``""`` shows as ``-``."""
    return Text("-" if value is None or value == "" else visible(value), style=style)


__all__ = ["untrusted", "visible"]
