"""Lean 4 proof checking for formal-proof rows (miniF2F and the like).

``LeanProofChecker`` (``checker.py``) is an :class:`~scireflect.verifiers.base.AnswerVerifier`: it
takes the last ```` ```lean ```` block of a response as a proof of the row's ``statement`` and checks
it with a backend: a warm Lean REPL (leanprover-community/repl, ``repl.py``), ``lake env lean``
(``lake.py``) or LeanDojo (``leandojo.py``), chosen by :class:`LeanSettings` (``config.py``, the
``[lean]`` TOML table). Every accepted proof also passes the integrity checks of ``judge.py`` and
``source.py``: the elaborated statement is the given one, no ``sorry``/``admit``, axioms within a
whitelist, no ``native_decide``/``implemented_by``/metaprogramming. Without a Lean toolchain every
verdict is ``unverified`` (``ok=None``), never "correct". ``integration.py`` holds the hooks the
runner uses. Import as ``scireflect.verifiers.lean``; see ``docs/lean.md``.
"""

from .checker import LeanAvailability, LeanProofChecker, build_lean_checker, probe
from .config import LeanSettings, LeanUnavailable
from .judge import LeanMessage, LeanRun, judge, lean_evidence
from .source import (
    BAD_IMPORT, DISALLOWED_AXIOM, LEAN_ERROR, LEAN_REASONS, NATIVE_DECIDE, NO_PROOF, PROOF_CHECKED, SORRY,
    STATEMENT_CHANGED, UNSAFE_CONSTRUCT, UNVERIFIED, build_submission, extract_lean_block, static_issues,
)

__all__ = [
    "BAD_IMPORT", "DISALLOWED_AXIOM", "LEAN_ERROR", "LEAN_REASONS", "NATIVE_DECIDE", "NO_PROOF", "PROOF_CHECKED", "SORRY",
    "STATEMENT_CHANGED", "UNSAFE_CONSTRUCT", "UNVERIFIED", "LeanAvailability", "LeanMessage", "LeanProofChecker", "LeanRun",
    "LeanSettings", "LeanUnavailable", "build_lean_checker", "build_submission", "extract_lean_block", "judge",
    "lean_evidence", "probe", "static_issues",
]
