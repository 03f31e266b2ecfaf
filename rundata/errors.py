"""The run layer's error."""

from __future__ import annotations


class RunError(RuntimeError):
    """The run cannot start or cannot go on (bad run directory, endpoint down, model missing); the
    message says what to do."""


__all__ = ["RunError"]
