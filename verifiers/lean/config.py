"""Settings of the Lean proof checker (the ``[lean]`` table of a run's TOML config) and its errors.

Keys (all optional)::

    [lean]
    backend = "auto"          # auto | repl | lake | leandojo | none
    project_dir = "~/lean/minif2f"   # a Lean 4 project (lakefile + lean-toolchain) with Mathlib built
    repl_path = ""            # the REPL binary (leanprover-community/repl); default: `repl` on PATH,
                              # else <project_dir>/.lake/packages/REPL/.lake/build/bin/repl,
                              # else <project_dir>/.lake/build/bin/repl
    lake_path = "lake"        # lake (from elan); run as `lake env <repl_path>` in project_dir
    timeout_s = 120           # wall-clock seconds per proof; a stuck REPL is killed and restarted
    header_timeout_s = 600    # seconds to elaborate the import header (`import Mathlib`) once per process
    memory_mb = 16384         # RLIMIT_AS of each Lean process (olean files are mmapped and count)
    workers = 1               # warm REPL processes per import header
    restart_every = 200       # restart a REPL after this many proofs (its memory only grows)
    allowed_axioms = ["propext", "Classical.choice", "Quot.sound"]
    allow_native_decide = false
    leandojo_repo = ""        # LeanDojo: git URL of the traced repository (default: from the row's `source`)
    leandojo_commit = ""      # LeanDojo: commit of that repository

``backend = "auto"`` picks the REPL when a REPL binary and ``lake`` are found, else ``lake env
lean`` when ``lake`` and ``project_dir`` are found, else no backend: every proof is answered
``unverified`` (never "correct"). Naming a backend that cannot run raises :class:`LeanUnavailable`
with what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

BACKENDS = ("auto", "repl", "lake", "leandojo", "none")
DEFAULT_AXIOMS = ("propext", "Classical.choice", "Quot.sound")


class LeanUnavailable(RuntimeError):
    """A Lean backend cannot run; the message names what is missing (toolchain, project, REPL, traced repo).

    Attributes:
        missing: short names of the missing pieces, e.g. ``["lake", "project_dir"]``.
    """

    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])


@dataclass(frozen=True)
class LeanSettings:
    """How the Lean proof checker finds Lean and how it limits each check (see the module docstring)."""

    backend: str = "auto"
    project_dir: str | None = None
    repl_path: str | None = None
    lake_path: str = "lake"
    repl_command: tuple[str, ...] | None = None  # full command overriding `lake env <repl_path>` (advanced)
    timeout_s: float = 120.0
    header_timeout_s: float = 600.0
    memory_mb: int = 16384
    workers: int = 1
    restart_every: int = 200
    allowed_axioms: tuple[str, ...] = DEFAULT_AXIOMS
    allow_native_decide: bool = False
    leandojo_repo: str | None = None
    leandojo_commit: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"lean: unknown backend '{self.backend}'; choose one of {', '.join(BACKENDS)}")
        if self.timeout_s <= 0 or self.header_timeout_s <= 0:
            raise ValueError("lean: timeout_s and header_timeout_s must be positive")
        if self.memory_mb < 64:
            raise ValueError("lean: memory_mb must be at least 64")
        if self.workers < 1 or self.restart_every < 1:
            raise ValueError("lean: workers and restart_every must be >= 1")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any] | None, where: str = "[lean]") -> LeanSettings:
        """Build settings from a TOML table.

        Raises:
            ValueError: an unknown key (the message lists the known ones) or an invalid value.
        """
        table = dict(table or {})
        known = {f.name for f in fields(cls)}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        for key in ("allowed_axioms", "repl_command"):
            if table.get(key) is not None:
                value = table[key]
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{where}: {key} must be a list of strings")
                table[key] = tuple(value)
        for key in ("project_dir", "repl_path"):
            if table.get(key):
                table[key] = os.path.expanduser(str(table[key]))
        try:
            return cls(**table)
        except TypeError as exc:  # pragma: no cover - guarded by the key check
            raise ValueError(f"{where}: {exc}") from exc

    def with_overrides(self, **changes: Any) -> LeanSettings:
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def project(self) -> Path | None:
        return Path(self.project_dir).expanduser() if self.project_dir else None


__all__ = ["BACKENDS", "DEFAULT_AXIOMS", "LeanSettings", "LeanUnavailable"]
