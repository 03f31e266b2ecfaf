"""The annotation run: every question of a file through the annotation graph, K at a time, resumable.

Re-running the same command continues where the last run stopped: questions with a trace line are
skipped, so every question appears exactly once in ``traces.jsonl``; a question interrupted
mid-loop resumes at its last checkpointed node, without repeating its model calls. The files are
described in :mod:`scireflect.rundata.files`.

Checkpoints use SQLite in WAL mode with ``synchronous=NORMAL``: every committed checkpoint survives
a process crash (SIGKILL); only a power loss or OS crash can drop the last few, which costs at most
a repeated model call, never a trace line (those are fsynced). It saves one fsync per checkpoint
write (the SQLite documentation, "WAL mode" and "PRAGMA synchronous"). A question's checkpoints are
deleted once its trace line is on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..agents import prompts as P
from ..agents.figures import FigureError, FigureStore
from ..agents.roles import ROLES, AgentTeam
from ..graphs.annotation import build_annotation_graph
from ..graphs.call_slots import CallSlots
from ..graphs.context import AnnotationContext, mc_path_in, verify_with
from ..graphs.formal import build_formal_graph, formal_context
from ..graphs.nodes import EndpointError
from ..graphs.state import FINAL_STATUSES, initial_state
from ..rundata.checkpoints import CheckpointRejected, compact
from ..rundata.errors import RunError
from ..rundata.files import CHECKPOINTS, TRACES
from ..rundata.lock import run_dir_lock
from ..rundata.ocr import FigureOcr
from ..rundata.outputs import write_outputs
from ..rundata.questions import QuestionSet, is_formal_question, stable_bucket
from ..rundata.records import trace_record
from ..rundata.store import Fence, TraceFileError, TraceStore
from ..rundata.summary import Outcomes
from ..verifiers.base import AnswerVerifier
from ..verifiers.lean.config import LeanUnavailable
from ..verifiers.workers import SandboxedRunner
from .checkpointer import checkpointed_threads, open_run_checkpointer
from .config import RunSettings
from .endpoints import open_teams
from .manifest import manifest, record_invocation
from .postgres import schema_name, setup_schema
from .quick_check import InlineCheapAnswers

ProgressCallback = Callable[[str, Mapping[str, Any] | None], None]


@dataclass
class RunResult:
    """What :func:`annotate` did: counts of this invocation and the summary of the whole run directory."""

    run_dir: Path
    total: int
    skipped: int
    finished_now: int
    summary: dict[str, Outcomes]
    sft_count: int
    status_counts: Counter = field(default_factory=Counter)


def make_verifier(settings: RunSettings, workers: int | None = None) -> AnswerVerifier:
    """The run's verifier: ``[verifier] default`` and ``by_subject`` resolved through the registry
    (built-ins and entry-point plugins); checks of model text run in a sandboxed worker process,
    except cheap ones (plain numbers, option letters: :mod:`scireflect.run.quick_check`).
    ``workers``: sandbox worker processes (default: one per core, at most ``concurrency``)."""
    from ..verifiers import build_verifier

    v = settings.verifier
    return InlineCheapAnswers(build_verifier(v.default, v.by_subject, timeout_s=v.timeout_s, memory_mb=v.memory_mb,
                          workers=workers or max(1, min(settings.concurrency, os.cpu_count() or 1)),
                          rel_tol=v.rel_tol, tolerance=v.tolerance, ensemble=v.ensemble, steps=v.steps))


def make_lean_checker(settings: RunSettings) -> AnswerVerifier:
    """The proof checker of formal rows (``[lean]`` settings; ``auto`` never fails: without a
    toolchain every proof ends ``unverified``).

    Raises:
        RunError: a named Lean backend cannot run (the message names what is missing).
    """
    from ..verifiers.lean.checker import build_lean_checker

    try:
        return build_lean_checker(settings.lean)
    except LeanUnavailable as exc:
        raise RunError(f"Lean checker: {exc}") from None


def equip_tools(teams: list[AgentTeam], settings: RunSettings, say: ProgressCallback) -> tuple[list[AgentTeam], P.PromptSet]:
    """The answer teams with the tools of ``settings.tools``, and the prompt set they need.

    The basic tools (calculator, unit converter, answer-format check) go to the Solver and the
    Critic, by tool calling. ``python`` goes to the Solver and the Reviser: as plain-text code
    execution with :data:`~scireflect.agents.prompts.PYTHON_PROMPTS` (``tool_format`` ``text``, the
    default on the embedded model), or as a LangChain tool (``calls``). It is offered only where the
    code sandbox starts; otherwise the run says so once (a ``warning`` event) and goes on without it:
    model code is never run unsandboxed.
    """
    from ..agents.code_loop import CodeExecution
    from ..agents.tools import tools_named
    from ..sandbox import sandbox_available

    names = settings.tools
    if "python" in names:
        available, reason = sandbox_available()
        if not available:
            say("warning", {"message": f"the python tool is not offered: the code sandbox cannot start here ({reason}); "
                                       "model code is never run outside it"})
            names = tuple(n for n in names if n != "python")
    if not names:
        return teams, P.ANSWER_PROMPTS
    basic = [n for n in names if n != "python"]
    text = "python" in names and (settings.tool_format == "text" or
                                  (settings.tool_format == "auto" and settings.roles["solver"].embedded))
    rounds = settings.max_tool_rounds
    code = CodeExecution.with_timeout(rounds, settings.python_timeout_s)
    equipped = []
    for team in teams:
        if text:
            team = team.with_code_execution(code)
        elif "python" in names:
            team = team.with_tools(tools_named(["python"], code), rounds, roles=("solver", "reviser"))
        if basic:  # a Solver that writes Python in plain text calls no other tool
            team = team.with_tools(tools_named(basic), rounds, roles=("critic",) if text else ("solver", "critic"))
        equipped.append(team)
    message = f"tools: {', '.join(names)}"
    if text:
        message += " (python: ```python/```output blocks run in the sandbox" + ("; the basic tools go to the Critic only)" if basic else ")")
    say("status", {"message": message})
    return equipped, (P.PYTHON_PROMPTS if text else P.ANSWER_PROMPTS)


def program_sandbox(settings: RunSettings, say: ProgressCallback) -> Any:
    """The code execution settings of the ``program`` strategy (``[run] max_tool_rounds`` executions of
    ``python_timeout_s`` each), or ``None`` when the budget's order has no ``program`` or the code sandbox
    cannot start here (then the run says so once, a ``warning``, and ``decide`` skips the strategy).
    An order whose ``program`` lies beyond the budget's attempts never reaches it: ``None``, no warning."""
    if "program" not in settings.budget.order[:settings.budget.max_attempts]:
        return None
    from ..agents.code_loop import CodeExecution
    from ..sandbox import sandbox_available

    available, reason = sandbox_available()
    if not available:
        say("warning", {"message": f"the program strategy is skipped: the code sandbox cannot start here ({reason}); "
                                   "model code is never run outside it"})
        return None
    return CodeExecution.with_timeout(settings.max_tool_rounds, settings.python_timeout_s)


def _contexts(teams: list[AgentTeam], settings: RunSettings, verifier: AnswerVerifier, lean_checker: AnswerVerifier | None,
              say: ProgressCallback, slots: CallSlots, paths: SandboxedRunner,
              figures: FigureStore | None = None) -> tuple[list[AnnotationContext], list[AnnotationContext]]:
    """The runtime contexts of the annotation and formal graphs, one per endpoint replica, sharing the
    run's call ``slots``; questions with figures get them through
    :class:`~scireflect.agents.prompts.FigurePrompts` (``settings.figures``); multiple-choice paths are
    decided in ``paths``, a sandboxed worker (option texts are parsed)."""
    answer_teams, prompts = equip_tools(teams, settings, say)
    prompts = P.FigurePrompts(prompts, figures, settings.figures) if figures else prompts
    choose = mc_path_in(paths)
    program = program_sandbox(settings, say)
    answer = [AnnotationContext(agents=t, verify=verify_with(verifier), budget=settings.budget, prompts=prompts, report=say,
                                call_slots=slots, choose_mc_path=choose, program=program, judge=settings.judge) for t in answer_teams]
    formal = ([replace(formal_context(t, verify_with(lean_checker), settings.budget), report=say, call_slots=slots) for t in teams]
              if lean_checker is not None else [])
    return answer, formal


def _finish(run_dir: Path, store: TraceStore) -> tuple[dict[str, Outcomes], int]:
    """Write ``sft.jsonl`` and ``summary.json`` from every finished question, and compact the checkpoints."""
    with contextlib.suppress(sqlite3.Error):  # best effort: a locked database is compacted next time
        compact(run_dir / CHECKPOINTS)
    return write_outputs(run_dir, store.records.values())


def make_run_dir(run_dir: Path) -> None:
    """Create the run directory, or say in one line why it cannot be one.

    Raises:
        RunError: the path (or a parent) is a file, or the directory cannot be created or written.
    """
    for parent in [run_dir, *run_dir.parents]:
        if parent.exists() and not parent.is_dir():
            raise RunError(f"--out {run_dir}: {parent} exists and is not a directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"--out {run_dir}: cannot create the run directory ({exc.strerror or exc})") from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise RunError(f"--out {run_dir}: the run directory is not writable")


def remove_leftovers(run_dir: Path, say: ProgressCallback) -> None:
    """Delete temporary files a killed run left (``.NAME.PID.tmp`` of the atomic writers); the lock
    is held, so no other process is writing them."""
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        say("status", {"message": f"removed {tmp.name}, left by an interrupted run"})


async def annotate(
    questions: QuestionSet,
    run_dir: Path,
    settings: RunSettings,
    *,
    on_event: ProgressCallback | None = None,
    verifier: AnswerVerifier | None = None,
    team: AgentTeam | None = None,
    lean_checker: AnswerVerifier | None = None,
    fence: Fence | None = None,
) -> RunResult:
    """Annotate every question of ``questions`` not yet in ``run_dir``'s traces.

    Args:
        questions: validated questions (see :func:`scireflect.rundata.questions.load_questions`).
        run_dir: the run directory (created if missing); re-use it to resume.
        settings: models, budget, verifier, concurrency.
        on_event: ``callback(kind, data)`` for progress: ``status`` and ``warning`` (``{"message"}``),
            ``start`` (``{"total", "pending", "skipped", "earlier": {status: count}}``), ``call``,
            ``tokens`` and ``retry`` (live model calls: ``id``, ``role``, ``stage``, ``attempt``, ...;
            see :class:`~scireflect.graphs.context.AnnotationContext`), ``done`` (a trace record).
        verifier / team: injected verifier and agents (tests); by default built from ``settings``.
        lean_checker: the proof checker of formal rows (rows with a Lean ``statement``, which go to
            the formal-proof graph); by default :func:`make_lean_checker`, built only when such rows
            are pending. Its startup line is reported once.
        fence: every commit of finished questions to ``traces.jsonl`` happens inside ``fence()``,
            which may refuse it (a Ray shard's lease, :meth:`scireflect.run.lease.ShardLease.fence`).

    Returns:
        A :class:`RunResult`; ``traces.jsonl``, ``sft.jsonl`` and ``summary.json`` are written.

    Raises:
        RunError: unusable run directory, endpoint unreachable, model not found.
        EndpointError: the endpoint failed mid-run; finished questions are kept, unfinished ones
            resume from their checkpoints on the next run.
    """
    say = on_event or (lambda kind, data: None)
    run_dir = Path(run_dir)
    make_run_dir(run_dir)
    with run_dir_lock(run_dir):
        return await _annotate_locked(questions, run_dir, settings, say, verifier, team, lean_checker, fence)


async def _annotate_locked(questions: QuestionSet, run_dir: Path, settings: RunSettings, say: ProgressCallback,
                           verifier: AnswerVerifier | None, team: AgentTeam | None,
                           lean_checker: AnswerVerifier | None, fence: Fence | None) -> RunResult:
    """:func:`annotate` once the run directory's lock is held."""
    remove_leftovers(run_dir, say)
    try:
        store = TraceStore(run_dir / TRACES, fence=fence)
    except TraceFileError as exc:
        raise RunError(str(exc)) from None
    if store.repaired_bytes:
        say("warning", {"message": f"removed a partial last line ({store.repaired_bytes} bytes) from {TRACES}; that question will be redone"})
    pending = [q for q in questions.questions if q["id"] not in store]
    skipped = len(questions) - len(pending)
    earlier = Counter(store.records[q["id"]]["status"] for q in questions.questions if q["id"] in store)
    own_verifier = verifier is None
    verifier = verifier or make_verifier(settings)
    if pending and hasattr(verifier, "warm"):
        verifier.warm()  # its workers start while the endpoints are checked and the first calls run
    formal_pending = any(is_formal_question(q) for q in pending)
    own_lean = formal_pending and lean_checker is None
    statuses: Counter = Counter()
    # multiple-choice paths parse option texts: in a killable worker, started on the first such question
    paths = SandboxedRunner(timeout_s=settings.verifier.timeout_s, memory_mb=settings.verifier.memory_mb or None)
    try:
        if formal_pending:
            lean_checker = lean_checker or make_lean_checker(settings)
            startup = getattr(lean_checker, "startup_event", None)
            say(*(startup() if startup else ("status", {"message": f"formal proofs checked by {lean_checker.name}"})))
        if pending:
            images = settings.figures != "text" and any(q.get("images") for q in pending)
            teams_cm: Any = (open_teams(settings, run_dir, say, images=images) if team is None
                             else contextlib.nullcontext(([team], {r: getattr(team, r).model_name for r in ROLES})))
            async with teams_cm as (teams, models):
                slots = CallSlots(settings.concurrency)  # one for the run: every replica and both graphs share it
                contexts = _contexts(teams, settings, verifier, lean_checker, say, slots, paths,
                                     questions.figures if questions.has_figures else None)
                prompt_version = contexts[0][0].prompts.version
                run_id = record_invocation(run_dir, manifest(questions, settings, models, verifier, prompt_version=prompt_version),
                                           lambda m: say("warning", {"message": m}))
                if settings.checkpoints and not settings.checkpoint_schema:  # not a Ray shard: this run owns the schema
                    settings = replace(settings, checkpoint_schema=schema_name(run_id))
                    await setup_schema(settings.checkpoints, settings.checkpoint_schema)
                labels = {formal: f"{judge.name}/{judge.version}" for formal, judge in ((False, verifier), (True, lean_checker)) if judge}
                say("start", {"total": len(questions), "pending": len(pending), "skipped": skipped, "earlier": dict(earlier)})
                try:
                    await _annotate_pending(pending, run_dir, settings, store, contexts, slots, labels, statuses, say, questions.figures)
                except FigureError as exc:  # a figure file vanished or changed during the run: stop, keep the checkpoints
                    raise RunError(str(exc)) from None
        else:
            say("start", {"total": len(questions), "pending": 0, "skipped": skipped, "earlier": dict(earlier)})
    finally:
        await store.drain()
        paths.close()
        if own_verifier and hasattr(verifier, "close"):
            verifier.close()
        if own_lean and lean_checker is not None and hasattr(lean_checker, "close"):
            lean_checker.close()
        summary, sft_count = _finish(run_dir, store)
    return RunResult(run_dir=run_dir, total=len(questions), skipped=skipped, finished_now=sum(statuses.values()),
                     summary=summary, sft_count=sft_count, status_counts=statuses)


async def _resume_point(graph: Any, saver: Any, config: dict[str, Any], say: ProgressCallback) -> Any:
    """The checkpointed state of an interrupted question, or ``None`` when its checkpoint is not plain
    data or its row is malformed (:class:`CheckpointRejected`): such a checkpoint is reported and
    deleted (never executed), and the question restarts."""
    try:
        return await graph.aget_state(config)
    except CheckpointRejected as exc:
        qid = config["configurable"]["thread_id"]
        say("warning", {"message": f"question {qid}: {exc}; its checkpoint is ignored and the question restarts"})
        await saver.adelete_thread(qid)
        return None


async def _annotate_pending(pending: list[dict[str, Any]], run_dir: Path, settings: RunSettings, store: TraceStore,
                            contexts: tuple[list[AnnotationContext], list[AnnotationContext]], slots: CallSlots,
                            labels: dict[bool, str], statuses: Counter, say: ProgressCallback, figures: FigureStore | None = None) -> None:
    """Run the pending questions through their graphs, ``settings.questions_in_flight`` at a time;
    their model calls share the contexts' call ``slots`` (:mod:`scireflect.graphs.call_slots`). The
    look-ahead questions are admitted once the first calls are out (``slots.filled``).

    Before the questions start, the start-up heap is frozen (:func:`_freeze_startup_heap`).

    ``contexts`` are the annotation and formal graphs' contexts (one per endpoint replica; a question
    goes to replica ``stable_bucket(id)``), ``labels`` the judges' ``name/version`` by formality.

    Raises:
        EndpointError: the endpoint failed fatally, or ``abort_after_transport_errors`` questions in
            a row ended on transport faults (the endpoint is taken to be down).
    """
    async with open_run_checkpointer(run_dir / CHECKPOINTS, settings.checkpoints, settings.checkpoint_schema,
                                     max_connections=min(8, settings.concurrency)) as saver:
        # One query for the whole run instead of one state read per question: only questions with
        # checkpoints (interrupted last time) need their state read.
        checkpointed = await checkpointed_threads(saver)
        for qid in checkpointed & set(store.records):  # committed, but killed before its checkpoints went
            await saver.adelete_thread(qid)
        graphs = {False: (build_annotation_graph(saver), contexts[0]), True: (build_formal_graph(saver), contexts[1])}
        semaphore = asyncio.Semaphore(settings.concurrency)
        transport_errors_in_a_row = 0
        ocr = FigureOcr(timeout_s=settings.ocr_timeout_s, warn=lambda m: say("warning", {"message": m})) if settings.ocr else None

        async def admit_lookahead() -> None:  # after the first calls: preparing these must not delay them
            await slots.filled.wait()
            for _ in range(settings.lookahead_questions):
                semaphore.release()

        async def one(question: dict[str, Any]) -> None:
            nonlocal transport_errors_in_a_row
            async with semaphore:
                formal = is_formal_question(question)
                graph, pool = graphs[formal]
                context = pool[stable_bucket(question["id"], len(pool))]
                config = {"configurable": {"thread_id": question["id"]}, "recursion_limit": 100}
                snapshot = await _resume_point(graph, saver, config, say) if question["id"] in checkpointed else None
                if snapshot is not None and snapshot.next:  # interrupted mid-question: resume
                    final = await graph.ainvoke(None, config, context=context)
                elif snapshot is not None and snapshot.values.get("status") in FINAL_STATUSES:
                    final = snapshot.values  # finished, but its trace line was not written
                else:
                    variant = P.subject_variant(question.get("subject"), settings.prompt_variant)
                    if ocr is not None:  # missing OCR text read by Tesseract; without it, one warning for the run
                        question = await ocr.fill(question, figures)
                    final = await graph.ainvoke(initial_state(question, variant), config, context=context)
                if final.get("error_kind") == "transport":
                    transport_errors_in_a_row += 1
                    if transport_errors_in_a_row >= settings.abort_after_transport_errors:
                        # The endpoint is down, not the question: stop, and keep this question's
                        # checkpoint so that the next run retries it.
                        raise EndpointError(f"{transport_errors_in_a_row} questions in a row failed on the endpoint; "
                                            f"last: {final.get('stop_reason')}")
                else:
                    transport_errors_in_a_row = 0
                record = trace_record(final, verifier=labels[formal], prompt_version=None if formal else context.prompts.version)
                await store.append(record)
                await saver.adelete_thread(question["id"])
                statuses[record["status"]] += 1
                slots.filled.set()  # a question that made no call (resumed finished, out of budget) ends the start too
                say("done", record)

        _freeze_startup_heap()
        admitter = asyncio.create_task(admit_lookahead())
        try:
            await gather_or_cancel([one(q) for q in pending])
        finally:
            admitter.cancel()


@functools.cache
def _freeze_startup_heap() -> None:
    """Move the objects made so far (modules, compiled graphs) out of the garbage collector's reach
    (``gc.freeze``), once per process: a full collection of a process that has imported LangGraph,
    SymPy and NumPy held the event loop for 120-130 ms, twice in a 10-second benchmark run, delaying
    every reply and request in flight; it now scans only what was made since (16-36 ms). Frozen
    objects are never collected, so reference cycles that were already garbage stay: once per
    process bounds that to the first run's start (no collection is forced first: it cost 90 ms)."""
    gc.freeze()


async def gather_or_cancel(coroutines: list[Any]) -> None:
    """Run ``coroutines`` as tasks; when one raises (or the caller is cancelled), cancel the others,
    wait for them to finish, and re-raise."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


__all__ = ["ProgressCallback", "RunResult", "annotate", "gather_or_cancel", "make_lean_checker", "make_run_dir", "make_verifier", "remove_leftovers"]
