"""Hooks for the runner and the CLI: which rows are formal, the run's Lean checker, a formal run.

* :func:`is_formal_row`: a row with a non-empty ``statement`` goes to the formal graph
  (:func:`scireflect.graphs.formal.build_formal_graph`) and the Lean checker.
* :func:`lean_settings_of`: the :class:`LeanSettings` of a run (``RunSettings.lean`` once the config
  has a ``[lean]`` table; defaults otherwise).
* :func:`make_lean_checker`: the checker for a run (``auto`` never fails: no toolchain means every
  proof is ``unverified``; a named backend that cannot run raises :class:`LeanUnavailable`).
* :func:`annotate_formal_rows`: annotate a question set with formal rows through
  :func:`scireflect.runner.annotate` (needs the runner's ``lean_checker`` parameter; see docs/lean.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .checker import LeanProofChecker, build_lean_checker
from .config import LeanSettings


def is_formal_row(row: Mapping[str, Any]) -> bool:
    """Whether ``row`` is a formal-proof task: it has a non-empty string ``statement``."""
    return isinstance(row.get("statement"), str) and bool(row["statement"].strip())


def lean_settings_of(settings: Any) -> LeanSettings:
    """``settings.lean`` as :class:`LeanSettings` (a mapping is parsed; missing -> defaults)."""
    value = getattr(settings, "lean", None)
    if isinstance(value, LeanSettings):
        return value
    if isinstance(value, Mapping):
        return LeanSettings.from_mapping(value)
    return LeanSettings()


def make_lean_checker(settings: Any = None) -> LeanProofChecker:
    """The Lean checker of a run: ``settings`` is a ``RunSettings`` (its ``lean``), a
    :class:`LeanSettings`, a ``[lean]`` mapping, or ``None`` (defaults, ``backend = "auto"``).

    Raises:
        LeanUnavailable: an explicitly named backend cannot run (the message names what is missing).
    """
    if settings is None or isinstance(settings, (LeanSettings, Mapping)):
        return build_lean_checker(settings)
    return build_lean_checker(lean_settings_of(settings))


def runner_supports_formal() -> bool:
    """Whether :func:`scireflect.runner.annotate` routes formal rows (has the ``lean_checker`` parameter)."""
    from ...runner import annotate

    return "lean_checker" in inspect.signature(annotate).parameters


async def annotate_formal_rows(questions: Any, run_dir: str | Path, settings: Any, *, checker: LeanProofChecker | None = None,
                               team: Any = None, on_event: Any = None, verifier: Any = None) -> Any:
    """Annotate ``questions`` (a ``QuestionSet``; formal rows go to the formal graph) into ``run_dir``.

    Delegates to :func:`scireflect.runner.annotate` with ``lean_checker=checker`` (default:
    :func:`make_lean_checker` of ``settings``); the runner announces the checker once
    (:meth:`LeanProofChecker.startup_event`) and closes a checker it built.

    Raises:
        NotImplementedError: the runner does not route formal rows yet (no ``lean_checker`` parameter).
        LeanUnavailable: a named backend cannot run.
    """
    if not runner_supports_formal():
        raise NotImplementedError("scireflect.runner.annotate has no lean_checker parameter yet; apply the runner change of docs/lean.md")
    from ...runner import annotate

    return await annotate(questions, Path(run_dir), settings, on_event=on_event, team=team, verifier=verifier,
                          lean_checker=checker)


__all__ = ["annotate_formal_rows", "is_formal_row", "lean_settings_of", "make_lean_checker", "runner_supports_formal"]
