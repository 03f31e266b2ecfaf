"""The ``lake env lean --json FILE`` backend: one Lean process per check, no REPL needed.

Slower than the REPL (every check loads the header's imports again, several seconds for Mathlib),
but needs only a Lean project with its dependencies built. The checked file is::

    <header>
    <submitted code>

    set_option pp.all true in
    #check @NAME

    #print axioms NAME

and the reference file is the header, the given statement and the same ``#check`` (its result is
cached per statement). ``lean --json`` prints one JSON message per line (``severity`` ``error`` /
``warning`` / ``information``, ``pos``, ``endPos``, ``data``); messages are attributed to the code or
to the two audit commands by line number. The process runs in its own process group under
``RLIMIT_AS`` and is killed (SIGKILL to the group) at the per-proof wall-clock limit.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import LeanSettings, LeanUnavailable
from .judge import AXIOMS_TEMPLATE, CHECK_TEMPLATE, LeanMessage, LeanRun, check_output, parse_axioms
from .process import describe_exit, kill_group, spawn
from .source import Submission


class LakeBackend:
    """Checks submissions with ``lake env lean --json`` in a Lean project.

    Args:
        settings: timeout, memory limit, ``workers`` (concurrent Lean processes).
        lake: the ``lake`` executable.
        project_dir: the Lean project (its ``lean-toolchain`` and built dependencies are used).
    """

    name = "lake"

    def __init__(self, settings: LeanSettings, lake: str, project_dir: str | Path):
        self.settings = settings
        self.lake = lake
        self.project_dir = Path(project_dir)
        self._tmp = Path(tempfile.mkdtemp(prefix="scireflect-lean-"))
        self._sem: asyncio.Semaphore | None = None
        self._references: dict[tuple[str, str, str], tuple[str | None, str]] = {}
        self._counter = 0

    async def _lean(self, text: str, timeout: float) -> tuple[list[dict[str, Any]], bool, str]:
        """Run Lean on ``text``; returns (JSON messages, timed out, note)."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.workers)
        async with self._sem:
            self._counter += 1
            path = self._tmp / f"Check{self._counter}.lean"
            path.write_text(text, encoding="utf-8")
            proc = await spawn([self.lake, "env", "lean", "--json", str(path)], cwd=self.project_dir, memory_mb=self.settings.memory_mb)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
            except TimeoutError:
                await kill_group(proc)
                return [], True, f"{timeout:g} s"
            finally:
                path.unlink(missing_ok=True)
        messages, other = [], []
        for line in out.decode("utf-8", "replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                if line.strip():
                    other.append(line.strip())
                continue
            if isinstance(item, dict) and "severity" in item:
                messages.append(item)
        note = ""
        if proc.returncode not in (0, 1) or (proc.returncode == 1 and not messages):
            tail = (err.decode("utf-8", "replace").strip() or " | ".join(other))[-400:]
            note = f"lean {describe_exit(proc.returncode)}" + (f": {tail}" if tail else "")
        return messages, False, note

    async def run(self, submission: Submission, question: Mapping[str, Any]) -> LeanRun:
        """Check one submission (see the module docstring). Never raises for Lean's own failures."""
        header = str(question.get("header") or "")
        statement = str(question["statement"])
        name = submission.name
        started = time.perf_counter()
        run = LeanRun(backend=self.name)
        head = header.rstrip("\n") + "\n" if header.strip() else ""
        offset = head.count("\n")
        key = (header, statement, name)
        if key not in self._references:
            ref_text = f"{head}{statement}\n\n{CHECK_TEMPLATE.format(name=name)}\n"
            ref_check_line = offset + statement.count("\n") + 3
            msgs, timed_out, note = await self._lean(ref_text, self.settings.timeout_s)
            if timed_out:
                run.timed_out, run.note, run.elapsed_s = True, note, time.perf_counter() - started
                return run
            parsed = [LeanMessage.from_json(m) for m in msgs]
            self._header_ok(parsed, offset)
            if any(m.severity == "error" and m.line <= ref_check_line - 2 for m in parsed):
                self._references[key] = (None, "the given statement has errors")
            else:
                found = check_output([m for m in parsed if m.line >= ref_check_line])
                self._references[key] = (found, note or ("" if found else "no #check output for the given statement"))
        run.reference, ref_note = self._references[key]
        code_lines = submission.code.count("\n") + 1
        check_line = offset + code_lines + 2  # the `set_option ... in` line; `#check` is the next
        axioms_line = check_line + 3
        text = f"{head}{submission.code}\n\n{CHECK_TEMPLATE.format(name=name)}\n\n{AXIOMS_TEMPLATE.format(name=name)}\n"
        left = self.settings.timeout_s - (time.perf_counter() - started)
        msgs, timed_out, note = await self._lean(text, max(left, 0.001))
        run.elapsed_s = time.perf_counter() - started
        if timed_out:
            run.timed_out, run.note = True, note
            return run
        parsed = [LeanMessage.from_json(m) for m in msgs]
        self._header_ok(parsed, offset)
        if note and not parsed:
            run.crashed, run.note = True, note
            return run
        run.messages = [LeanMessage.from_json(m, line_offset=offset) for m in msgs
                        if offset < int((m.get("pos") or {}).get("line", 0)) < check_line]
        run.elaborated = check_output([m for m in parsed if check_line <= m.line < axioms_line])
        run.axioms = parse_axioms(m.text for m in parsed if m.line >= axioms_line and m.severity == "info")
        run.note = note or ref_note
        return run

    def _header_ok(self, parsed: list[LeanMessage], offset: int) -> None:
        errors = [m for m in parsed if m.severity == "error" and m.line <= offset]
        if errors:
            raise LeanUnavailable(
                f"the import header does not elaborate in {self.project_dir}: {errors[0].text.strip()[:300]} "
                "(is Mathlib a dependency of the project and built? run `lake exe cache get && lake build` there)", ["mathlib"])

    async def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


__all__ = ["LakeBackend"]
