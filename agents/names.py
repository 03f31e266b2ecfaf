"""The role names of the annotation loop (a module without dependencies, so data readers can import it)."""

from __future__ import annotations

from typing import Literal

Role = Literal["solver", "critic", "reviser"]
"""Who is called: the Solver (chain of thought), the Critic (finds the first wrong step), the Reviser."""

ROLES: tuple[Role, ...] = ("solver", "critic", "reviser")

__all__ = ["ROLES", "Role"]
