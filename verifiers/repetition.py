"""Degenerate responses: a chain of thought that ends in a loop, the same passage over and over.

Small models that lose the thread repeat a line or a block ("Let's recheck the options: (A) 50
(B) 75 ...") until the token limit cuts them off; such a response states no final answer, and the
numbers in its loop are not one. :func:`repeating_tail` finds the shortest period ``p`` such that
the end of the text repeats itself with period ``p`` (the last copy may be cut off anywhere) over at
least ``MIN_COPIES`` copies and ``MIN_REPEATED_CHARS`` characters. Plain string comparison on the
last ``TAIL_CHARS`` characters; fast on any input (each period is compared in 64-character slices).
A loop that numbers its copies as list items ("26. If the problem is asking ...", "27. If the
problem is asking ...") is found too: when the text does not repeat as written, the numbers that
begin its lines are masked and it is compared again (numbers elsewhere are never masked, so a
legitimate table of different values is not a loop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MIN_COPIES", "MIN_REPEATED_CHARS", "Repetition", "repeating_tail"]

MIN_COPIES = 3
"""A loop is at least this many consecutive copies of its passage."""
MIN_REPEATED_CHARS = 400
"""... and covers at least this many characters (so that ``\\\\]\\n\\\\[`` twice is not a loop)."""
MAX_PERIOD = 2000
"""The longest passage looked for, in characters."""
TAIL_CHARS = 40_000
"""Only the end of the response is read (a loop runs to the end)."""
_CHUNK = 64
_ITEM_NUMBER = re.compile(r"(?m)^([ \t]*)\d{1,4}(?=[.):] )")
"""A list item's number at the start of a line (``26. ``, ``  3) ``), masked by :func:`repeating_tail`."""


@dataclass(frozen=True)
class Repetition:
    """A loop at the end of a response.

    Attributes:
        period: the length of the repeated passage, in characters.
        span: how many characters at the end of the text belong to the loop.
        passage: one copy of the passage (at most 200 characters, whitespace collapsed).
    """

    period: int
    span: int
    passage: str

    @property
    def copies(self) -> float:
        """How many copies of the passage the loop holds (the last one may be partial)."""
        return self.span / self.period


def _self_match(s: str, p: int) -> int:
    """How many leading characters of ``s`` equal those ``p`` places later (slices, then characters)."""
    n = len(s) - p
    i = 0
    while i + _CHUNK <= n and s[i : i + _CHUNK] == s[p + i : p + i + _CHUNK]:
        i += _CHUNK
    while i < n and s[i] == s[p + i]:
        i += 1
    return i


def repeating_tail(text: str) -> Repetition | None:
    """The loop the text ends in, or ``None``.

    Args:
        text: a model response (any length; trailing whitespace is ignored).

    Returns:
        The shortest-period :class:`Repetition` with ``span >= MIN_COPIES * period`` and
        ``span >= MIN_REPEATED_CHARS``, else ``None``. Never raises for ``str`` input.
    """
    if not isinstance(text, str):
        return None
    tail = text.rstrip()[-TAIL_CHARS:]
    loop = _periodic_end(tail)
    if loop is None:
        masked = _ITEM_NUMBER.sub(r"\1#", tail)
        if masked != tail:
            loop = _periodic_end(masked)  # period and span counted in the masked text
    return loop


def _periodic_end(tail: str) -> Repetition | None:
    """The shortest-period loop ``tail`` ends in (see :func:`repeating_tail`), or ``None``."""
    rev = tail[::-1]  # the loop is at the end: compare the reversed text with itself shifted by p
    n = len(rev)
    for p in range(1, min(MAX_PERIOD, n // MIN_COPIES) + 1):
        if rev[0] != rev[p]:
            continue
        run = _self_match(rev, p)  # characters c (from the end) with tail[-c] == tail[-c - p]
        span = run + p
        if span >= MIN_COPIES * p and span >= MIN_REPEATED_CHARS:
            passage = " ".join(tail[len(tail) - span : len(tail) - span + p].split())
            return Repetition(p, span, passage[:200])
    return None
