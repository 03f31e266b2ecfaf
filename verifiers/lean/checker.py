"""The Lean proof checker: an :class:`~scireflect.verifiers.base.AnswerVerifier` for formal-proof rows.

``LeanProofChecker.verify(response, question)`` / ``await averify(...)``:

* ``question``: a row with ``statement`` (Lean 4 theorem ending ``:= by sorry``), ``header``
  (``import Mathlib`` ...), optionally ``name`` (else read from the statement), ``lean_toolchain``.
* ``response``: model text; the proof is the last ```` ```lean ```` block (:mod:`.source`).
* returns a :class:`Verdict` (never raises): ``ok=True`` only when a Lean backend accepted the proof
  and every integrity check passed (:mod:`.judge`); ``ok=False`` with the reason (``lean_error``,
  ``sorry``, ``statement_changed``, ``disallowed_axiom``, ``native_decide``, ``unsafe_construct``,
  ``bad_import``, ``no_proof``); ``ok=None`` for ``timeout``, ``check_error`` and ``unverified``.

Without a usable backend every answer is ``unverified`` (``ok=None``): the proof was not checked,
and text-only findings are listed in the explanation. :meth:`LeanProofChecker.availability` and
:meth:`startup_event` tell the run so once, before the first question.

Backends (:mod:`.config` ``backend``): the Lean REPL (:mod:`.repl`), ``lake env lean``
(:mod:`.lake`), LeanDojo (:mod:`.leandojo`). The checker owns one event loop on a daemon thread
where every backend coroutine runs, so warm processes survive across callers' event loops (each
pytest test has its own) and the sync ``verify`` works from plain threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import threading
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..base import CHECK_ERROR, Verdict
from .config import LeanSettings, LeanUnavailable
from .judge import judge, static_verdict
from .leandojo import LeanDojoBackend, leandojo_installed
from .source import NO_PROOF, UNVERIFIED, Issue, Submission, build_submission, extract_lean_block, static_issues

T = TypeVar("T")
CHECKER_VERSION = "1"
ELAN_HINT = "install Lean 4 with elan and build a Mathlib project, see docs/lean.md"


@dataclass(frozen=True)
class LeanAvailability:
    """Whether proofs can be checked, with which backend, and what is missing otherwise.

    Attributes:
        ok: a backend can run.
        backend: ``repl``, ``lake``, ``leandojo`` or ``None``.
        message: one line for the user (what is used, or what is missing and how to fix it).
        missing: short names of the missing pieces (``lake``, ``project_dir``, ``repl``, ``lean-dojo``, ...).
        toolchain: the project's ``lean-toolchain`` content, when known.
    """

    ok: bool
    backend: str | None
    message: str
    missing: tuple[str, ...] = ()
    toolchain: str | None = None
    command: tuple[str, ...] = field(default=(), repr=False)
    cwd: str | None = field(default=None, repr=False)


def _which(executable: str) -> str | None:
    found = shutil.which(executable)
    if found:
        return found
    if os.sep not in executable:
        elan = Path.home() / ".elan" / "bin" / executable
        if elan.is_file() and os.access(elan, os.X_OK):
            return str(elan)
    elif Path(executable).is_file() and os.access(executable, os.X_OK):
        return executable
    return None


def _project_problem(project: Path | None) -> str | None:
    if project is None:
        return "lean.project_dir is not set (a Lean 4 project with Mathlib built)"
    if not project.is_dir():
        return f"lean.project_dir {project} does not exist"
    if not any((project / f).is_file() for f in ("lakefile.lean", "lakefile.toml")):
        return f"lean.project_dir {project} has no lakefile.lean/lakefile.toml"
    return None


def _toolchain(project: Path | None) -> str | None:
    try:
        return (project / "lean-toolchain").read_text().strip() if project else None
    except OSError:
        return None


def _find_repl(settings: LeanSettings) -> str | None:
    if settings.repl_path:
        return settings.repl_path if Path(settings.repl_path).is_file() else None
    project = settings.project
    candidates = [Path(p) for p in (shutil.which("repl"),) if p]
    if project is not None:
        candidates += [project / ".lake" / "packages" / name / ".lake" / "build" / "bin" / "repl" for name in ("REPL", "repl")]
        candidates.append(project / ".lake" / "build" / "bin" / "repl")
    return next((str(c) for c in candidates if c.is_file()), None)


def probe(settings: LeanSettings) -> LeanAvailability:
    """Find a backend for ``settings`` without starting Lean (files and executables only)."""
    project = settings.project
    toolchain = _toolchain(project)
    if settings.backend == "none":
        return LeanAvailability(False, None, "Lean checking is off (lean.backend = none)", ("backend",))
    if settings.backend == "leandojo":
        missing = [] if leandojo_installed() else ["lean-dojo"]
        if _which(settings.lake_path) is None:
            missing.append("lake")
        if missing:
            return LeanAvailability(False, None, f"LeanDojo backend cannot run: missing {', '.join(missing)} "
                                    f"(pip install lean-dojo; {ELAN_HINT})", tuple(missing))
        return LeanAvailability(True, "leandojo", "Lean checker: LeanDojo backend (traced repositories; tracing needs GitHub)")
    lake = _which(settings.lake_path)
    problems: dict[str, str] = {}
    if settings.backend in ("auto", "repl"):
        if settings.repl_command:
            cwd = str(project) if project and project.is_dir() else None
            return LeanAvailability(True, "repl", f"Lean checker: REPL backend ({' '.join(settings.repl_command)})",
                                    toolchain=toolchain, command=tuple(settings.repl_command), cwd=cwd)
        repl = _find_repl(settings)
        project_problem = _project_problem(project)
        if lake is None:
            problems["lake"] = f"`{settings.lake_path}` not found on PATH or in ~/.elan/bin ({ELAN_HINT})"
        if project_problem:
            problems["project_dir"] = project_problem
        if repl is None:
            problems["repl"] = ("the REPL binary was not found (set lean.repl_path, or build leanprover-community/repl "
                                "in the project: `lake build repl`)")
        if not problems:
            assert lake is not None and repl is not None and project is not None
            return LeanAvailability(True, "repl", f"Lean checker: REPL backend ({repl}) in {project} ({toolchain or 'toolchain ?'})",
                                    toolchain=toolchain, command=(lake, "env", repl), cwd=str(project))
        if settings.backend == "repl":
            return LeanAvailability(False, None, "Lean REPL backend cannot run: " + "; ".join(problems.values()), tuple(problems))
    if settings.backend in ("auto", "lake"):
        project_problem = _project_problem(project)
        lake_problems = {k: v for k, v in (("lake", None if lake else f"`{settings.lake_path}` not found on PATH or in ~/.elan/bin ({ELAN_HINT})"),
                                            ("project_dir", project_problem)) if v}
        if not lake_problems:
            assert lake is not None and project is not None
            return LeanAvailability(True, "lake", f"Lean checker: `lake env lean` backend in {project} ({toolchain or 'toolchain ?'}); "
                                    "no REPL found, every check reloads the imports", toolchain=toolchain, cwd=str(project))
        problems.update(lake_problems)
    return LeanAvailability(False, None, "no Lean toolchain: " + "; ".join(dict.fromkeys(problems.values())), tuple(problems))


class _LoopThread:
    """An asyncio event loop on a daemon thread; coroutines are submitted from any thread or loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="scireflect-lean", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class LeanProofChecker:
    """Checks Lean proofs of given statements (see the module docstring).

    Args:
        settings: :class:`LeanSettings` (default: ``backend = "auto"``).
        backend: an already-built backend object with ``async run(submission, question)`` and
            ``async close()`` (tests); overrides the selection.
    """

    name = "lean"
    version = CHECKER_VERSION

    def __init__(self, settings: LeanSettings | None = None, *, backend: Any = None):
        self.settings = settings or LeanSettings()
        self._backend = backend
        self._availability: LeanAvailability | None = (
            LeanAvailability(True, getattr(backend, "name", "custom"), f"Lean checker: {getattr(backend, 'name', 'custom')} backend")
            if backend is not None else None)
        self._runtime_problem: LeanUnavailable | None = None
        self._loop: _LoopThread | None = None
        self._lock = threading.Lock()

    # -- availability -------------------------------------------------------------------------
    def availability(self) -> LeanAvailability:
        """Which backend will check proofs, or why none can (cached; starts no process)."""
        if self._availability is None:
            self._availability = probe(self.settings)
        if self._runtime_problem is not None:
            return LeanAvailability(False, None, f"Lean backend failed: {self._runtime_problem}", tuple(self._runtime_problem.missing))
        return self._availability

    def ensure_available(self) -> LeanAvailability:
        """Like :meth:`availability` but raises :class:`LeanUnavailable` (naming what is missing) when no backend can run."""
        avail = self.availability()
        if not avail.ok:
            raise LeanUnavailable(avail.message, list(avail.missing))
        return avail

    def startup_message(self) -> str:
        """One line for the start of a run: the backend used, or that every proof will be ``unverified`` and why."""
        avail = self.availability()
        if avail.ok:
            return avail.message
        return f"formal proofs will NOT be checked: {avail.message}. Every formal-proof row ends 'unverified' (never accepted)."

    def startup_event(self) -> tuple[str, dict[str, str]]:
        """``("status" | "warning", {"message": startup_message()})`` for the runner's ``on_event``."""
        return ("status" if self.availability().ok else "warning"), {"message": self.startup_message()}

    # -- checking -----------------------------------------------------------------------------
    def _get_backend(self) -> Any:
        if self._backend is None:
            avail = self.availability()
            if avail.backend == "repl":
                from .repl import ReplBackend

                self._backend = ReplBackend(self.settings, avail.command, avail.cwd)
            elif avail.backend == "lake":
                from .lake import LakeBackend

                self._backend = LakeBackend(self.settings, _which(self.settings.lake_path) or self.settings.lake_path, avail.cwd or ".")
            elif avail.backend == "leandojo":
                self._backend = LeanDojoBackend(self.settings)
            else:  # pragma: no cover - callers check availability first
                raise LeanUnavailable(avail.message, list(avail.missing))
        return self._backend

    def _unverified(self, submission: Submission | None, issues: list[Issue], started: float, message: str) -> Verdict:
        found = f" Text checks found: {'; '.join(i.message for i in issues)}." if issues else ""
        return Verdict(ok=None, reason=UNVERIFIED, explanation=f"the proof was not checked by Lean ({message}).{found}",
                       extracted=submission.code if submission else None, extraction_method=submission.method if submission else None,
                       checker="lean", elapsed_s=round(time.perf_counter() - started, 4),
                       details={"issues": [i.to_dict() for i in issues], "missing": list(self.availability().missing)})

    async def _check(self, response: str, question: Mapping[str, Any]) -> Verdict:
        started = time.perf_counter()
        avail = self.availability()
        if not question.get("statement"):
            return Verdict(ok=None, reason=CHECK_ERROR, explanation="the question has no Lean `statement` to prove", checker="lean")
        block = extract_lean_block(response)
        submission: Submission | None = None
        if block is None:
            issues = [Issue(NO_PROOF, "no complete ```lean code block found in the response; end with one ```lean block "
                                      "holding the full theorem and its proof")]
        else:
            try:
                submission = build_submission(block, question)
            except ValueError as exc:
                return Verdict(ok=None, reason=CHECK_ERROR, explanation=f"bad formal statement: {exc}", checker="lean")
            issues = static_issues(submission, question, allow_native_decide=self.settings.allow_native_decide)
        if not avail.ok:
            return self._unverified(submission, issues, started, avail.message)
        if issues:
            verdict = static_verdict(issues, submission or Submission("", str(question.get("name") or ""), "none"), checker="lean-static")
            return dataclasses.replace(verdict, elapsed_s=round(time.perf_counter() - started, 4))
        assert submission is not None
        backend = self._get_backend()
        extra: dict[str, Any] = {}
        asked = question.get("lean_toolchain")
        if asked and avail.toolchain and str(asked).strip() != avail.toolchain:
            extra["toolchain_mismatch"] = {"row": asked, "project": avail.toolchain}
        try:
            run = await backend.run(submission, question)
        except LeanUnavailable as exc:
            self._runtime_problem = exc
            return self._unverified(submission, issues, started, str(exc))
        except Exception as exc:  # a backend bug must not end the run: never "accepted"
            return Verdict(ok=None, reason=CHECK_ERROR, explanation=f"the Lean checker failed: {type(exc).__name__}: {exc}"[:500],
                           extracted=submission.code, checker=f"lean-{backend.name}",
                           elapsed_s=round(time.perf_counter() - started, 4))
        return judge(run, submission, allowed_axioms=self.settings.allowed_axioms, checker=f"lean-{run.backend}",
                     elapsed_s=time.perf_counter() - started, extra_details=extra)

    def _loop_thread(self) -> _LoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
            return self._loop

    def verify(self, response: str, question: Mapping[str, Any]) -> Verdict:
        """Check ``response``'s proof of ``question['statement']`` (blocking)."""
        if not self.availability().ok:  # no thread, no process
            return asyncio.run(self._check(response, question))
        return self._loop_thread().run(self._check(response, question))

    async def averify(self, response: str, question: Mapping[str, Any]) -> Verdict:
        """Check ``response``'s proof without blocking the caller's event loop."""
        if not self.availability().ok:
            return await self._check(response, question)
        return await self._loop_thread().arun(self._check(response, question))

    def close(self) -> None:
        """Stop every Lean process and the checker's loop thread (idempotent)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._backend is not None and hasattr(self._backend, "close"):
            try:
                loop.run(self._backend.close())
            except Exception:  # noqa: BLE001 - closing must not raise
                pass
        loop.stop()

    def __enter__(self) -> LeanProofChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_lean_checker(settings: LeanSettings | Mapping[str, Any] | None = None) -> LeanProofChecker:
    """A checker for ``settings`` (a :class:`LeanSettings` or a ``[lean]`` TOML table).

    Raises:
        LeanUnavailable: a backend was named explicitly (``repl``, ``lake``, ``leandojo``) and cannot
            run; the message names what is missing. With ``auto`` (the default) a missing toolchain
            is not an error: the checker answers ``unverified``.
        ValueError: unknown keys or bad values in the table.
    """
    if settings is None or isinstance(settings, Mapping):
        settings = LeanSettings.from_mapping(settings)
    checker = LeanProofChecker(settings)
    if settings.backend in ("repl", "lake", "leandojo"):
        checker.ensure_available()
    return checker


def lean_verifier(*, lean: LeanSettings | Mapping[str, Any] | None = None, project_dir: str | None = None,
                  backend: str | None = None, repl_path: str | None = None) -> LeanProofChecker:
    """Factory for the verifier registry (entry point ``lean`` of the group ``scireflect.verifiers``).

    Takes only Lean-specific keywords, so the answer verifier's generic settings (``timeout_s``,
    ``memory_mb``, ``rel_tol``) passed to every factory never reach the Lean limits. Note that the
    registry routes by subject; formal rows also need the formal-proof graph (the runner routes rows
    with a ``statement`` there, see docs/lean.md).
    """
    settings = lean if isinstance(lean, LeanSettings) else LeanSettings.from_mapping(lean)
    return build_lean_checker(settings.with_overrides(project_dir=project_dir, backend=backend, repl_path=repl_path))


__all__ = ["CHECKER_VERSION", "LeanAvailability", "LeanProofChecker", "build_lean_checker", "lean_verifier", "probe"]
