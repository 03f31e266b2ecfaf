"""The LeanDojo backend: proofs of theorems that live in a repository traced by LeanDojo.

LeanDojo (Yang et al. 2023, github:lean-dojo/LeanDojo, package ``lean-dojo``) replaces the proof of
a theorem in its own file of a *traced* repository and runs it; ``check_proof(thm, proof)`` answers
a bool from the "declaration uses 'sorry'" warning only. Here:

1. ``Dojo(Theorem(repo, file, name))`` in tactic mode runs the submitted tactic block:
   ``ProofFinished`` / ``LeanError`` (message and goals go to the Critic) / ``ProofGivenUp`` (sorry)
   / an unfinished ``TacticState`` (open goals). The statement cannot change: LeanDojo keeps the
   file's own statement and only replaces the proof.
2. The axioms are audited in command mode, ``Dojo((repo, file, line))`` positioned at the theorem:
   a renamed copy of the submitted declaration and ``#print axioms`` on it.

Tracing clones and builds the repository (GitHub access; hours for Mathlib-based projects), so this
backend never traces implicitly: it needs ``lean-dojo`` installed and the repository traced in
LeanDojo's cache, and raises :class:`~scireflect.verifiers.lean.config.LeanUnavailable` naming what
is missing otherwise. The repository comes from ``lean.leandojo_repo``/``leandojo_commit``, the
row's ``lean_repo``/``lean_commit``/``lean_file``, or its ``source``
(``github:OWNER/REPO@COMMIT:PATH``, as in the miniF2F extract).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import LeanSettings, LeanUnavailable
from .judge import LeanMessage, LeanRun, parse_axioms
from .source import Submission, strip_comments

_SOURCE = re.compile(r"github:(?P<repo>[\w.-]+/[\w.-]+)@(?P<commit>[0-9a-fA-F]{7,40}):(?P<path>[^;\s]+\.lean)")


def leandojo_installed() -> bool:
    return importlib.util.find_spec("lean_dojo") is not None


def locate(question: Mapping[str, Any], settings: LeanSettings) -> tuple[str, str, str, str]:
    """``(repo_url, commit, file_path, theorem_name)`` for a row.

    Raises:
        LeanUnavailable: the row names no repository/file and the settings give none.
    """
    match = _SOURCE.search(str(question.get("source") or ""))
    url = settings.leandojo_repo or question.get("lean_repo") or (f"https://github.com/{match.group('repo')}" if match else None)
    commit = settings.leandojo_commit or question.get("lean_commit") or (match.group("commit") if match else None)
    path = question.get("lean_file") or (match.group("path") if match else None)
    name = str(question.get("name") or "")
    missing = [k for k, v in (("repository URL", url), ("commit", commit), ("file path", path), ("theorem name", name)) if not v]
    if missing:
        raise LeanUnavailable(f"LeanDojo backend: the row does not say where the theorem lives ({', '.join(missing)} missing); "
                              "set lean.leandojo_repo/leandojo_commit or the row's lean_repo/lean_commit/lean_file",
                              ["traced_repo"])
    return str(url), str(commit), str(path), name


def tactic_block(submission: Submission) -> str:
    """The tactic script of the submitted declaration (the text after ``:= by``), dedented.

    Raises:
        ValueError: the proof is not a tactic proof (LeanDojo's tactic mode needs ``by``).
    """
    code_nc = strip_comments(submission.code)
    decl = re.search(rf"(?:theorem|lemma)\s+{re.escape(submission.name)}(?![\w'.])", code_nc)
    start = code_nc.find(":=", decl.end()) if decl else -1
    rest = code_nc[start + 2:] if start >= 0 else ""
    by = re.match(r"\s*by\b", rest)
    if not by:
        raise ValueError("LeanDojo checks tactic proofs only: write the proof as `:= by ...`")
    body = submission.code[start + 2 + by.end():]
    lines = [ln for ln in body.splitlines() if ln.strip()]
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines), default=0)
    return "\n".join(ln[indent:] for ln in body.splitlines()).strip()


class LeanDojoBackend:
    """LeanDojo adapter (see the module docstring). ``lean_dojo`` is imported on first use only."""

    name = "leandojo"

    def __init__(self, settings: LeanSettings):
        self.settings = settings

    def _module(self) -> Any:
        try:
            return importlib.import_module("lean_dojo")
        except ImportError as exc:
            raise LeanUnavailable(f"LeanDojo backend: the lean-dojo package is not installed ({exc}); pip install lean-dojo",
                                  ["lean-dojo"]) from None

    def _traced_repo(self, ld: Any, url: str, commit: str) -> tuple[Any, Path | None]:
        try:
            repo = ld.LeanGitRepo(url, commit)
        except Exception as exc:  # LeanGitRepo resolves the commit on GitHub
            raise LeanUnavailable(f"LeanDojo cannot open {url}@{commit} ({type(exc).__name__}: {exc}); it needs GitHub access",
                                  ["github"]) from None
        trace_mod = importlib.import_module("lean_dojo.data_extraction.trace")
        in_cache = getattr(trace_mod, "is_available_in_cache", None)
        if in_cache is not None and not in_cache(repo):
            raise LeanUnavailable(
                f"LeanDojo backend: {url}@{commit} is not traced; trace it once with network access: "
                f"python -c \"from lean_dojo import LeanGitRepo, trace; trace(LeanGitRepo('{url}', '{commit}'))\"",
                ["traced_repo"])
        get_path = getattr(trace_mod, "get_traced_repo_path", None)
        return repo, (Path(get_path(repo)) if get_path is not None else None)

    def _run_sync(self, submission: Submission, question: Mapping[str, Any]) -> LeanRun:
        ld = self._module()
        url, commit, path, name = locate(question, self.settings)
        repo, traced_path = self._traced_repo(ld, url, commit)
        run = LeanRun(backend=self.name)
        started = time.perf_counter()
        try:
            tactics = tactic_block(submission)
        except ValueError as exc:
            run.messages = [LeanMessage("error", 1, 0, str(exc))]
            return run
        timeout = int(max(1, self.settings.timeout_s))
        try:
            with ld.Dojo(ld.Theorem(repo, path, name), timeout=timeout) as (dojo, init):
                result = dojo.run_tac(init, tactics)
        except Exception as exc:  # DojoTacticTimeoutError, DojoCrashError, DojoInitError
            kind = type(exc).__name__
            run.timed_out = "Timeout" in kind
            run.crashed = not run.timed_out
            run.note = f"{kind}: {exc}"[:400]
            run.elapsed_s = time.perf_counter() - started
            return run
        kind = type(result).__name__
        if kind == "LeanError":
            run.messages = [LeanMessage("error", 1, 0, str(getattr(result, "error", result)))]
        elif kind == "ProofGivenUp":
            run.sorries = [{"line": None, "column": None, "goal": None}]
        elif kind != "ProofFinished":  # a TacticState: goals left
            run.messages = [LeanMessage("error", 1, 0, "unsolved goals\n" + str(getattr(result, "pp", result)))]
        else:
            # LeanDojo keeps the file's statement: the elaborated statement is the given one by construction.
            run.elaborated = run.reference = f"(statement of {name} in {path}, kept by LeanDojo)"
            run.axioms, run.note = self._axioms(ld, repo, traced_path, path, submission, timeout)
        run.elapsed_s = time.perf_counter() - started
        return run

    def _axioms(self, ld: Any, repo: Any, traced_path: Path | None, path: str, submission: Submission,
                timeout: int) -> tuple[list[str] | None, str]:
        """Audit the axioms of a renamed copy of the submission, in command mode at the theorem's line."""
        if traced_path is None or not (traced_path / path).is_file():
            return None, "LeanDojo: the traced file was not found, axioms not audited"
        text = (traced_path / path).read_text(encoding="utf-8")
        decl = re.search(rf"^(?:theorem|lemma)\s+{re.escape(submission.name)}(?![\w'.])", text, re.MULTILINE)
        if not decl:
            return None, "LeanDojo: the theorem was not found in its file, axioms not audited"
        line = text.count("\n", 0, decl.start()) + 1
        audit = f"scireflect_audit_{submission.name}"
        code = re.sub(rf"((?:theorem|lemma)\s+){re.escape(submission.name)}(?![\w'.])", rf"\g<1>{audit}", submission.code, count=1)
        try:
            with ld.Dojo((repo, path, line), timeout=timeout) as (dojo, state):
                result = dojo.run_cmd(state, f"{code}\n\n#print axioms {audit}")
        except Exception as exc:
            return None, f"LeanDojo command mode failed ({type(exc).__name__}: {exc})"[:400]
        message = str(getattr(result, "message", "") or getattr(result, "error", ""))
        return parse_axioms([message]), "" if parse_axioms([message]) is not None else f"no #print axioms output: {message[:200]}"

    async def run(self, submission: Submission, question: Mapping[str, Any]) -> LeanRun:
        """Check one submission in a worker thread (LeanDojo is synchronous)."""
        return await asyncio.to_thread(self._run_sync, submission, question)

    async def close(self) -> None:
        return None


__all__ = ["LeanDojoBackend", "leandojo_installed", "locate", "tactic_block"]
