"""From Lean's output to a :class:`~scireflect.verifiers.base.Verdict`: messages, sorries, statement, axioms.

A backend (REPL, ``lake env lean``, LeanDojo) runs the submission and fills a :class:`LeanRun`;
:func:`judge` decides, in this order:

1. the run timed out (``timeout``, ok=None) or the Lean process crashed (``check_error``, ok=None);
2. any message of severity ``error`` -> ``lean_error`` (ok=False), with each error's line, column,
   text (which holds the goal state for "unsolved goals") and source line;
3. a ``sorry`` (the REPL's ``sorries`` list, a "declaration uses 'sorry'" warning, or ``sorryAx``
   among the axioms) -> ``sorry``;
4. the theorem is missing, or its elaborated type (``set_option pp.all true in #check @NAME`` in the
   proof's environment) differs from the type elaborated from the given statement ->
   ``statement_changed``;
5. an axiom outside the whitelist (``#print axioms NAME``; default ``propext``, ``Classical.choice``,
   ``Quot.sound``) -> ``disallowed_axiom`` (``native_decide`` shows up as ``Lean.ofReduceBool``);
6. else ``proof_checked`` (ok=True).

Message shapes follow the Lean REPL (leanprover-community/repl, ``REPL/JSON.lean``):
``{"severity": "error"|"warning"|"info", "pos": {"line", "column"}, "endPos": {...}|null, "data": str}``;
``lean --json`` writes the same fields with severity ``information``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import CHECK_ERROR, TIMEOUT, Verdict
from .source import (
    DISALLOWED_AXIOM, LEAN_ERROR, PROOF_CHECKED, SORRY, STATEMENT_CHANGED, Issue, Submission, normalize_ws,
)

CHECK_TEMPLATE = "set_option pp.all true in\n#check @{name}"
AXIOMS_TEMPLATE = "#print axioms {name}"
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")
_AXIOMS = re.compile(r"depends on axioms:\s*\[(.*?)\]", re.DOTALL)
_NO_AXIOMS = re.compile(r"does not depend on any axioms")


@dataclass(frozen=True)
class LeanMessage:
    """One Lean message; ``line`` is 1-based in the submitted code, ``column`` 0-based (Lean's convention)."""

    severity: str
    line: int
    column: int
    text: str
    end_line: int | None = None
    end_column: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], line_offset: int = 0) -> LeanMessage:
        """Parse a REPL / ``lean --json`` message; ``line_offset`` is subtracted from line numbers."""
        pos = data.get("pos") or {}
        end = data.get("endPos") or {}
        severity = str(data.get("severity", "info"))
        severity = {"information": "info"}.get(severity, severity)
        return cls(
            severity=severity,
            line=int(pos.get("line", 0)) - line_offset,
            column=int(pos.get("column", 0)),
            text=str(data.get("data", "")),
            end_line=int(end["line"]) - line_offset if end.get("line") is not None else None,
            end_column=int(end["column"]) if end.get("column") is not None else None,
        )

    def to_dict(self, code: str | None = None) -> dict[str, Any]:
        out = {"severity": self.severity, "line": self.line, "column": self.column, "end_line": self.end_line,
               "end_column": self.end_column, "message": self.text}
        if code is not None:
            lines = code.splitlines()
            out["source"] = lines[self.line - 1] if 0 < self.line <= len(lines) else None
        return out


@dataclass
class LeanRun:
    """What a backend observed for one submission.

    Attributes:
        backend: ``repl``, ``lake`` or ``leandojo``.
        messages: messages of the submission itself (lines relative to the submitted code).
        sorries: ``[{"line", "column", "goal"}]`` reported by the REPL for tactic-mode sorries.
        elaborated: ``#check @NAME`` output in the proof's environment (``None``: not obtained).
        reference: the same output for the given statement (``None``: not obtained).
        axioms: the axioms ``#print axioms NAME`` listed (``None``: not obtained).
        timed_out / crashed: the run was killed at its time limit / the Lean process died.
        note: a short description of a crash or of what could not be obtained.
        elapsed_s: wall-clock seconds of the run.
    """

    backend: str
    messages: list[LeanMessage] = field(default_factory=list)
    sorries: list[dict[str, Any]] = field(default_factory=list)
    elaborated: str | None = None
    reference: str | None = None
    axioms: list[str] | None = None
    timed_out: bool = False
    crashed: bool = False
    note: str = ""
    elapsed_s: float = 0.0


def parse_axioms(texts: Iterable[str]) -> list[str] | None:
    """The axiom list from ``#print axioms`` output texts; ``[]`` for "does not depend on any axioms"."""
    for text in texts:
        match = _AXIOMS.search(text)
        if match:
            return [a.strip() for a in match.group(1).replace("\n", " ").split(",") if a.strip()]
        if _NO_AXIOMS.search(text):
            return []
    return None


def check_output(messages: Sequence[LeanMessage]) -> str | None:
    """The ``#check`` result among the messages of a check command (the info message), normalised."""
    infos = [m.text for m in messages if m.severity == "info"]
    if not infos or any(m.severity == "error" for m in messages):
        return None
    return normalize_ws(infos[0])


def _errors(run: LeanRun, code: str) -> list[dict[str, Any]]:
    return [m.to_dict(code) for m in run.messages if m.severity == "error"]


def judge(run: LeanRun, submission: Submission, *, allowed_axioms: Sequence[str], elapsed_s: float | None = None,
          checker: str = "lean", extra_details: Mapping[str, Any] | None = None) -> Verdict:
    """Decide a :class:`Verdict` from a backend's :class:`LeanRun` (see the module docstring for the order).

    ``explanation`` never claims more than Lean showed; ``details`` holds the evidence (errors with
    source lines, sorries with goals, both elaborated statements, axioms).
    """
    code = submission.code
    details: dict[str, Any] = {"backend": run.backend, "theorem": submission.name, **dict(extra_details or {})}
    warnings = [m.to_dict(code) for m in run.messages if m.severity == "warning"][:5]
    if warnings:
        details["warnings"] = warnings

    def verdict(ok: bool | None, reason: str, explanation: str) -> Verdict:
        return Verdict(ok=ok, reason=reason, explanation=explanation, extracted=code, extraction_method=submission.method,
                       candidate=run.elaborated, reference=run.reference, checker=checker,
                       elapsed_s=round(run.elapsed_s if elapsed_s is None else elapsed_s, 4), details=details)

    if run.timed_out:
        return verdict(None, TIMEOUT, f"Lean did not finish within the time limit ({run.note}); the process was killed and restarted. "
                                      "Prefer a shorter, more direct proof (fewer heavy `simp`/`nlinarith` calls).")
    if run.crashed:
        return verdict(None, CHECK_ERROR, f"the Lean process crashed while checking ({run.note}); it was restarted.")
    errors = _errors(run, code)
    if errors:
        details["errors"] = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        return verdict(False, LEAN_ERROR, f"Lean error at line {first['line']}, column {first['column']}: "
                                          f"{_clip(first['message'], 600)}{more}")
    sorry_warning = any(_SORRY_WARNING.search(m.text) for m in run.messages if m.severity == "warning")
    if run.sorries or sorry_warning or (run.axioms is not None and "sorryAx" in run.axioms):
        details["sorries"] = list(run.sorries)
        where = f" at line {run.sorries[0].get('line')}" if run.sorries else ""
        return verdict(False, SORRY, f"Lean accepted the code only with `sorry`{where}: the proof is incomplete "
                                     "(a tactic such as `stop`, `admit` or `sorry` closed a goal).")
    if run.elaborated is None:
        return verdict(False, STATEMENT_CHANGED, f"after the code, `{submission.name}` is not a declared theorem "
                                                 f"({run.note or 'no #check output'}); declare exactly the given theorem.")
    if run.reference is None:
        return verdict(None, CHECK_ERROR, f"the given statement could not be elaborated for comparison ({run.note}).")
    details["elaborated_statement"] = run.elaborated
    details["reference_statement"] = run.reference
    if normalize_ws(run.elaborated) != normalize_ws(run.reference):
        return verdict(False, STATEMENT_CHANGED, f"the elaborated statement of `{submission.name}` differs from the given one; "
                                                 "the proof must prove exactly the given statement.")
    if run.axioms is None:
        return verdict(None, CHECK_ERROR, f"could not list the axioms of `{submission.name}` ({run.note or 'no #print axioms output'}).")
    details["axioms"] = list(run.axioms)
    bad = [a for a in run.axioms if a not in allowed_axioms]
    if bad:
        hint = " (`native_decide`/`decide +native` adds Lean.ofReduceBool)" if any("ofReduce" in a for a in bad) else ""
        return verdict(False, DISALLOWED_AXIOM, f"the proof depends on axioms outside the whitelist: {', '.join(bad)}{hint}; "
                                                f"allowed: {', '.join(allowed_axioms)}.")
    return verdict(True, PROOF_CHECKED, f"Lean ({run.backend}) accepted the proof: no errors, no sorry, the statement is the "
                                        f"given one, axioms {', '.join(run.axioms) or 'none'}.")


def static_verdict(issues: Sequence[Issue], submission: Submission, *, checker: str, ok: bool | None = False,
                   reason: str | None = None, prefix: str = "", details: Mapping[str, Any] | None = None) -> Verdict:
    """A verdict from text-only integrity issues (the first issue decides the reason unless ``reason`` is given)."""
    first = issues[0]
    return Verdict(ok=ok, reason=reason or first.reason, explanation=prefix + "; ".join(i.message for i in issues),
                   extracted=submission.code, extraction_method=submission.method, checker=checker,
                   details={"issues": [i.to_dict() for i in issues], "theorem": submission.name, **dict(details or {})})


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ...(truncated)"


def lean_evidence(verdict: Mapping[str, Any], *, limit: int = 4000) -> str:
    """The checker's evidence for the Critic, as text: status, then each error with its line, column,
    source line and message (goal states included), each ``sorry`` goal, statement and axiom findings.

    Takes ``Verdict.to_dict()`` output (as stored in a trace). Never contains anything the question
    does not (there is no reference proof).
    """
    details = verdict.get("details") or {}
    lines = [f"Lean checker: {verdict.get('status', '?')} ({verdict.get('reason')}). {verdict.get('explanation', '')}"]
    for err in (details.get("errors") or [])[:6]:
        source = f"\n  source line: `{err['source'].strip()}`" if err.get("source") else ""
        lines.append(f"- error at line {err['line']}, column {err['column']}:{source}\n  message: {_clip(err['message'], 1200)}")
    for sorry in (details.get("sorries") or [])[:4]:
        goal = sorry.get("goal")
        lines.append(f"- sorry at line {sorry.get('line')}" + (f"; open goal:\n{_clip(goal, 800)}" if goal else ""))
    for issue in (details.get("issues") or [])[:6]:
        lines.append(f"- {issue['message']}")
    if verdict.get("reason") == STATEMENT_CHANGED and details.get("elaborated_statement"):
        lines.append(f"- elaborated statement of the proof: {_clip(details['elaborated_statement'], 800)}\n"
                     f"- elaborated given statement: {_clip(details.get('reference_statement') or '', 800)}")
    if verdict.get("reason") == DISALLOWED_AXIOM:
        lines.append(f"- axioms used: {', '.join(details.get('axioms') or [])}")
    text = "\n".join(lines)
    return _clip(text, limit)


__all__ = ["AXIOMS_TEMPLATE", "CHECK_TEMPLATE", "LeanMessage", "LeanRun", "check_output", "judge", "lean_evidence",
           "parse_axioms", "static_verdict"]
