"""What every answer check shares: the two parse-failure exceptions and the verdict shorthand."""

from __future__ import annotations

from ..base import Verdict

MAX_ANSWER_CHARS = 20_000
"""Extracted answers longer than this are rejected as ``unparseable`` before any parsing."""


class Unparseable(Exception):
    """The text could not be parsed (internal to the checks; never leaves :func:`verify_answer`)."""


class NotANumber(Exception):
    """The expression has free symbols or no finite value (internal); the message says which."""


def verdict(ok: bool | None, reason: str, explanation: str, checker: str, **fields) -> Verdict:
    """``Verdict(ok=..., reason=..., explanation=..., checker=..., **fields)`` in one line."""
    return Verdict(ok=ok, reason=reason, explanation=explanation, checker=checker, **fields)
