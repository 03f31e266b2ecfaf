"""The Lean REPL backend: warm ``repl`` processes, one import header elaborated once per process.

Protocol (leanprover-community/repl, README and ``REPL/Main.lean``; LeanInteract drives the same
binary through its ``repl_path``/local-project settings): commands are JSON objects separated by a
blank line on stdin, ``{"cmd": "<lean code>"}`` for a fresh environment (the only place ``import``
is allowed) or ``{"cmd": "...", "env": N}`` to continue environment ``N``. Each answer is one JSON
object (possibly pretty-printed over several lines) followed by a blank line::

    {"env": 7,
     "messages": [{"severity": "error", "pos": {"line": 3, "column": 2},
                   "endPos": {"line": 3, "column": 11}, "data": "unsolved goals\\n..."}],
     "sorries": [{"pos": {...}, "endPos": {...}, "goal": "⊢ ...", "proofState": 0}]}

Empty ``messages``/``sorries`` may be omitted; a protocol-level failure is ``{"message": "..."}``.

Per process (:class:`ReplSession`): the header (``import Mathlib ...``) is run once and its ``env``
kept (E0). The given statement is run in E0 once per process and ``set_option pp.all true in
#check @NAME`` recorded as the reference type. Each proof is run in E0 (so its declaration does not
clash with the statement's), then ``#check`` and ``#print axioms`` run in the proof's environment.
Every command of one proof shares one wall-clock limit; when it passes, the process group is
killed (SIGKILL) and the next proof starts a fresh process. A process that exits (crash, out of
memory under its ``RLIMIT_AS``) is replaced the same way. After ``restart_every`` proofs a process
is retired, since a REPL keeps every environment it made.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import LeanSettings, LeanUnavailable
from .judge import AXIOMS_TEMPLATE, CHECK_TEMPLATE, LeanMessage, LeanRun, check_output, parse_axioms
from .process import StderrTail, describe_exit, kill_group, spawn
from .source import Submission


class ReplTimeout(Exception):
    """A REPL command ran past its deadline (the process has been killed)."""


class ReplCrashed(Exception):
    """The REPL process died or broke the protocol (the process has been killed)."""


class ReplProcess:
    """One REPL child process.

    Args:
        command: argv, e.g. ``["lake", "env", "/path/to/repl"]``.
        cwd: the Lean project directory (``lake env`` sets ``LEAN_PATH`` from it).
        memory_mb: ``RLIMIT_AS`` of the child, in MiB.
    """

    def __init__(self, command: Sequence[str], cwd: str | Path | None, memory_mb: int):
        self.command = list(command)
        self.cwd = cwd
        self.memory_mb = memory_mb
        self.proc: asyncio.subprocess.Process | None = None
        self._stderr: StderrTail | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        """Start the child. Raises :class:`LeanUnavailable` when the executable is missing."""
        self.proc = await spawn(self.command, cwd=self.cwd, memory_mb=self.memory_mb)
        self._stderr = StderrTail(self.proc)

    async def kill(self) -> None:
        if self.proc is not None:
            await kill_group(self.proc)
        if self._stderr is not None:
            self._stderr.cancel()

    async def _describe_death(self) -> str:
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=2)
        except TimeoutError:
            pass
        await asyncio.sleep(0)
        tail = self._stderr.text() if self._stderr else ""
        return describe_exit(self.proc.returncode) + (f"; stderr: {tail}" if tail else "")

    async def _read_answer(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        lines: list[str] = []
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                raise ReplCrashed(f"the REPL closed its output ({await self._describe_death()})")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line.strip():
                if lines:
                    break
                continue
            lines.append(line)
        text = "\n".join(lines)
        start = text.find("{")
        try:
            answer = json.loads(text[start:] if start > 0 else text)
        except ValueError:
            raise ReplCrashed(f"the REPL answered with something that is not JSON: {text[:300]!r}") from None
        if not isinstance(answer, dict):
            raise ReplCrashed(f"the REPL answered with a JSON {type(answer).__name__}, not an object")
        return answer

    async def request(self, payload: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send one command and wait for its answer.

        Raises:
            ReplTimeout: no answer within ``timeout`` seconds (the process is killed).
            ReplCrashed: the process died, closed its pipes, answered non-JSON, or answered a
                protocol error ``{"message": ...}`` (the process is killed).
        """
        if not self.alive:
            raise ReplCrashed("the REPL is not running" + (f" ({describe_exit(self.proc.returncode)})" if self.proc else ""))
        assert self.proc is not None and self.proc.stdin is not None
        data = (json.dumps(dict(payload), ensure_ascii=False) + "\n\n").encode("utf-8")
        try:
            self.proc.stdin.write(data)
            await asyncio.wait_for(self.proc.stdin.drain(), timeout=max(timeout, 0.001))
            answer = await asyncio.wait_for(self._read_answer(), timeout=max(timeout, 0.001))
        except TimeoutError:
            await self.kill()
            raise ReplTimeout(f"no answer within {timeout:.1f} s") from None
        except (BrokenPipeError, ConnectionResetError):
            reason = await self._describe_death()
            await self.kill()
            raise ReplCrashed(f"the REPL closed its input ({reason})") from None
        except ReplCrashed:
            await self.kill()
            raise
        except asyncio.CancelledError:  # the caller gave up mid-command: the process state is unknown
            await asyncio.shield(self.kill())
            raise
        if "env" not in answer and "message" in answer:
            await self.kill()
            raise ReplCrashed(f"REPL protocol error: {answer['message']}")
        return answer


class ReplSession:
    """A REPL process with its header environment and the reference types it has elaborated."""

    def __init__(self, process: ReplProcess, header: str):
        self.process = process
        self.header = header
        self.header_env: int | None = None
        self.references: dict[tuple[str, str], tuple[str | None, str]] = {}
        self.checks = 0


def _messages(answer: Mapping[str, Any]) -> list[LeanMessage]:
    return [LeanMessage.from_json(m) for m in answer.get("messages") or []]


def _sorries(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in answer.get("sorries") or []:
        pos = s.get("pos") or {}
        out.append({"line": pos.get("line"), "column": pos.get("column"), "goal": s.get("goal")})
    return out


class ReplBackend:
    """Checks submissions with warm REPL processes (see the module docstring).

    Args:
        settings: timeouts, memory limit, workers per header, ``restart_every``.
        command: the REPL command line (``[lake, "env", repl_path]`` or ``settings.repl_command``).
        cwd: working directory of the processes (the Lean project).

    Use from one event loop (the checker runs it on its own loop thread).
    """

    name = "repl"

    def __init__(self, settings: LeanSettings, command: Sequence[str], cwd: str | Path | None):
        self.settings = settings
        self.command = list(command)
        self.cwd = cwd
        self._idle: dict[str, list[ReplSession]] = {}
        self._count: dict[str, int] = {}
        self._all: set[ReplSession] = set()
        self._cond: asyncio.Condition | None = None
        self.started = 0  # processes started so far (restarts included)

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def _start_session(self, header: str) -> ReplSession:
        process = ReplProcess(self.command, self.cwd, self.settings.memory_mb)
        await process.start()
        self.started += 1
        session = ReplSession(process, header)
        try:
            answer = await process.request({"cmd": header if header.strip() else "-- no header"}, self.settings.header_timeout_s)
        except ReplTimeout:
            raise LeanUnavailable(f"the Lean REPL did not load the header within {self.settings.header_timeout_s:g} s "
                                  f"(command: {' '.join(self.command)}); raise lean.header_timeout_s or check the project",
                                  ["header_timeout"]) from None
        except ReplCrashed as exc:
            raise LeanUnavailable(f"the Lean REPL failed while loading the header ({exc}); command: {' '.join(self.command)}, "
                                  f"cwd: {self.cwd}", ["repl"]) from None
        errors = [m for m in _messages(answer) if m.severity == "error"]
        if errors:
            await process.kill()
            raise LeanUnavailable(
                f"the import header does not elaborate in {self.cwd}: {errors[0].text.strip()[:300]} "
                "(is Mathlib a dependency of the project and built? run `lake exe cache get && lake build` there)",
                ["mathlib"])
        session.header_env = int(answer["env"])
        self._all.add(session)
        return session

    async def _acquire(self, header: str) -> ReplSession:
        cond = self._condition()
        async with cond:
            while True:
                idle = self._idle.setdefault(header, [])
                if idle:
                    return idle.pop()
                if self._count.get(header, 0) < self.settings.workers:
                    self._count[header] = self._count.get(header, 0) + 1
                    break
                await cond.wait()
        try:
            return await self._start_session(header)
        except BaseException:
            async with cond:
                self._count[header] -= 1
                cond.notify()
            raise

    async def _release(self, session: ReplSession) -> None:
        cond = self._condition()
        retire = not session.process.alive or session.checks >= self.settings.restart_every
        if retire:
            await session.process.kill()
            self._all.discard(session)
        async with cond:
            if retire:
                self._count[session.header] -= 1
            else:
                self._idle.setdefault(session.header, []).append(session)
            cond.notify()

    async def _reference(self, session: ReplSession, statement: str, name: str, deadline: float) -> tuple[str | None, str]:
        key = (statement, name)
        if key not in session.references:
            answer = await session.process.request({"cmd": statement, "env": session.header_env}, _left(deadline))
            errors = [m for m in _messages(answer) if m.severity == "error"]
            if errors:
                session.references[key] = (None, f"the given statement has errors: {errors[0].text[:200]}")
            else:
                check = await session.process.request({"cmd": CHECK_TEMPLATE.format(name=name), "env": int(answer["env"])},
                                                      _left(deadline))
                found = check_output(_messages(check))
                session.references[key] = (found, "" if found else "no #check output for the given statement")
        return session.references[key]

    async def run(self, submission: Submission, question: Mapping[str, Any]) -> LeanRun:
        """Check one submission against ``question['statement']`` under ``question['header']``.

        Returns a :class:`LeanRun` (``timed_out``/``crashed`` set when the process had to be
        killed). Raises :class:`LeanUnavailable` when no process can load the header.
        """
        header = str(question.get("header") or "")
        statement = str(question["statement"])
        session = await self._acquire(header)
        started = time.perf_counter()
        deadline = time.monotonic() + self.settings.timeout_s
        run = LeanRun(backend=self.name)
        try:
            session.checks += 1
            run.reference, note = await self._reference(session, statement, submission.name, deadline)
            answer = await session.process.request({"cmd": submission.code, "env": session.header_env}, _left(deadline))
            run.messages = _messages(answer)
            run.sorries = _sorries(answer)
            if not any(m.severity == "error" for m in run.messages):
                env = int(answer["env"])
                check = await session.process.request({"cmd": CHECK_TEMPLATE.format(name=submission.name), "env": env}, _left(deadline))
                run.elaborated = check_output(_messages(check))
                axioms = await session.process.request({"cmd": AXIOMS_TEMPLATE.format(name=submission.name), "env": env},
                                                       _left(deadline))
                run.axioms = parse_axioms(m.text for m in _messages(axioms) if m.severity == "info")
                if run.elaborated is None:
                    note = "; ".join(m.text[:200] for m in _messages(check)) or note
            run.note = note
        except ReplTimeout:
            run.timed_out, run.note = True, f"{self.settings.timeout_s:g} s"
        except ReplCrashed as exc:
            run.crashed, run.note = True, str(exc)
        finally:
            run.elapsed_s = time.perf_counter() - started
            await self._release(session)
        return run

    async def close(self) -> None:
        """Kill every process."""
        for session in list(self._all):
            await session.process.kill()
        self._all.clear()
        self._idle.clear()
        self._count.clear()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ReplTimeout("deadline passed")
    return left


__all__ = ["ReplBackend", "ReplCrashed", "ReplProcess", "ReplSession", "ReplTimeout"]
