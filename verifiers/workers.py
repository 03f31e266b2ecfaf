"""Run answer checks in worker processes with a wall-clock limit and a memory limit.

sympy can be made to run for hours or to eat all memory by a few characters of LaTeX
(``9^{9^{9^{9}}}``), and the annotation graph checks thousands of untrusted model answers from an
asyncio event loop and from threads. :class:`SandboxedAnswerVerifier` therefore runs every check of
:func:`scireflect.verifiers.answer.verify_answer` in a ``pebble.ProcessPool`` worker started with the
``spawn`` method (``fork`` is unsafe in a process with threads and a running event loop): a task
past ``timeout_s`` is killed with its worker (the pool starts a fresh one and goes on), and each
worker runs under ``RLIMIT_AS`` = ``memory_mb`` so that a memory bomb raises ``MemoryError`` in the
worker instead of taking the machine down. The parent extracts the final answer once
(:func:`precheck`), makes the cheap decisions there without a round trip (no reference, no answer,
an answer longer than ``MAX_ANSWER_CHARS``) and sends the worker the
:class:`~scireflect.verifiers.extract.Extraction` with the response, which the checks of the whole
response (the step checker) parse there, under the same limits.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import Future, wait
from dataclasses import replace
from time import perf_counter
from typing import Any
from collections.abc import Mapping

from .answer import VerifierConfig, precheck, verify_answer
from .answer.verify import check_response
from .base import CHECK_ERROR, TIMEOUT, Verdict
from .extract import Extraction

__all__ = ["SandboxedAnswerVerifier", "SandboxedRunner", "precheck"]

_QUESTION_KEYS = ("answer", "choices", "unit", "question_type", "answer_type", "question", "subject", "source", "id",
                  "mc_path")


def _init_worker(memory_mb: int | None) -> None:
    """Worker initialiser: apply ``RLIMIT_AS`` and import sympy and the LaTeX parser once.

    Never raises (a failing initialiser would make pebble restart workers forever); a limit that
    cannot be set is ignored (e.g. on platforms without ``resource``).
    """
    if memory_mb:
        try:
            import resource

            limit = int(memory_mb) * 1024 * 1024
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        except (ImportError, ValueError, OSError):
            pass
    try:  # warm up: the first parse_latex call loads the ANTLR grammar; pint loads its registry
        verify_answer("\\boxed{x+1}", {"answer": "1+x"})
        verify_answer("\\boxed{5000 m}", {"answer": "5", "unit": "km"})
    except Exception:  # noqa: BLE001 - best effort
        pass


def _run_check(response: str, extraction: Extraction, question: dict[str, Any], config: VerifierConfig) -> Verdict:
    """Worker entry point (top level so that ``spawn`` workers can unpickle it): the answer check and
    the checks that read the whole response (:func:`~scireflect.verifiers.answer.verify.check_response`)."""
    return check_response(response, extraction, question, config)


def _noop() -> None:
    """A task that only makes the pool start a worker (:meth:`_WorkerPool.warm`)."""


_POLL_S = 0.01
"""How often a caller looks whether its queued task has started (its time limit starts then)."""


class _WorkerPool:
    """A lazily started pebble process pool of ``workers`` workers, each under ``RLIMIT_AS`` of
    ``memory_mb`` MiB (:func:`_init_worker`), started with ``start_method``; thread-safe.
    :meth:`close` stops it (running tasks are killed) and a later use starts a new one. The shared
    machinery of :class:`SandboxedAnswerVerifier` and :class:`SandboxedRunner`.

    Time limit: a task gets ``timeout_s`` from the moment a worker starts it, and its caller gets
    ``TimeoutError`` then (:meth:`_result` / :meth:`_aresult`). pebble kills the worker for the
    same limit, but it sets the task's exception only after the kill (SIGTERM, then up to 3 s
    before SIGKILL when the worker is stuck in C code); that kill and the worker's restart happen
    in pebble's manager thread, off the caller's path."""

    def __init__(self, timeout_s: float, memory_mb: int | None, workers: int, start_method: str = "spawn") -> None:
        self.timeout_s = float(timeout_s)
        self.memory_mb = memory_mb
        self.workers = int(workers)
        self.start_method = start_method
        self._pool: Any = None
        self._lock = threading.Lock()

    def _get_pool(self):
        with self._lock:
            if self._pool is None or not getattr(self._pool, "active", True):
                import pebble

                self._pool = pebble.ProcessPool(
                    max_workers=self.workers,
                    initializer=_init_worker,
                    initargs=(self.memory_mb,),
                    context=multiprocessing.get_context(self.start_method),
                )
            return self._pool

    def _result(self, fut: Future) -> Any:
        """``fut.result()``, or ``TimeoutError`` at ``timeout_s`` after a worker started the task."""
        while not fut.running() and not fut.done():  # queued: the limit has not started
            wait([fut], timeout=_POLL_S)
        return fut.result(timeout=self.timeout_s)  # at most timeout_s (+ one poll) after the start

    async def _aresult(self, fut: Future) -> Any:
        """:meth:`_result` for asyncio. At the limit, or when the coroutine is cancelled, the task is
        cancelled: pebble kills its worker in its own thread."""
        try:
            while not fut.running() and not fut.done():
                await asyncio.sleep(_POLL_S)
        except asyncio.CancelledError:
            fut.cancel()
            raise
        return await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout_s)  # cancels fut on timeout

    def warm(self) -> None:
        """Start the worker processes now, without waiting for them: a worker takes about a second to
        start and import sympy and pint, which then overlaps the first model calls instead of delaying
        the first check. Safe to call more than once; never raises."""
        try:
            pool = self._get_pool()
            for _ in range(self.workers):
                pool.schedule(_noop)
        except Exception:  # noqa: BLE001 - a failed warm-up shows again, with its reason, at the first check
            pass

    def close(self) -> None:
        """Stop the worker processes (running tasks are killed). Safe to call more than once."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SandboxedAnswerVerifier(_WorkerPool):
    """The answer verifier of scireflect: :func:`verify_answer` in a killable worker process.

    Implements :class:`~scireflect.verifiers.base.AnswerVerifier` (``name="answer"``,
    ``version="1"``). Thread-safe and asyncio-friendly; the pool is created on first use.

    Args:
        timeout_s: wall-clock limit, in seconds, for one check once a worker has started it; a
            check past it returns ``Verdict(ok=None, reason="timeout")`` at the limit, and its
            worker is killed and replaced in the background (a check queued behind it waits for
            the fresh worker; queueing does not count against its limit).
        memory_mb: address-space limit (``RLIMIT_AS``) of each worker, in MiB (``None``/0: none).
            A check that runs out of memory returns ``ok=None``, reason ``check_error``.
        workers: number of worker processes (checks beyond that wait in a queue).
        rel_tol: passed to :func:`verify_answer` (``None``: default rules; ``0.05``: SciBench-style).
        tolerance: the tolerance policy passed to :func:`verify_answer` (``None``/``"default"``,
            ``"sig_figs"``, ``"scibench"``).
        ensemble: let math-verify decide what our symbolic check cannot (never overriding it).
        steps: the step checker's mode, ``gate`` (default: a false calculation claim rejects a
            matching answer as ``step_error``), ``flag`` (recorded only) or ``off``.
        start_method: ``spawn`` (default) or ``forkserver``; never ``fork``.

    ``elapsed_s`` of every verdict is the wall time measured in the calling process (queueing,
    worker start-up and transfer included). :meth:`close` stops the workers; a later call starts a
    new pool. Sources: process isolation with a per-task timeout as in the sandboxed graders of
    OpenAI's ``human-eval`` and of math-verify (which uses signal timeouts, unusable in threads).
    """

    name = "answer"
    version = "3"  # 3: the step checker gates acceptance (steps="gate"); the worker reads the whole response

    def __init__(
        self,
        timeout_s: float = 10.0,
        memory_mb: int | None = 1024,
        workers: int = 1,
        rel_tol: float | None = None,
        *,
        tolerance: str | None = None,
        ensemble: bool = True,
        steps: str = "gate",
        start_method: str = "spawn",
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError("start_method must be 'spawn' or 'forkserver' (fork is unsafe with threads)")
        self.config = VerifierConfig.of(rel_tol, tolerance, ensemble, steps)  # ValueError: unknown policy or mode
        super().__init__(timeout_s, memory_mb, workers, start_method)
        self.steps = steps
        self.rel_tol = rel_tol
        self.tolerance = tolerance
        self.ensemble = ensemble

    # -- checking -------------------------------------------------------------------------------

    def _submit(self, response: str, question: Mapping[str, Any],
                finish_reason: str | None) -> tuple[Future | None, Verdict | None, Any]:
        """Pre-check in the parent; return (future, None, extraction) or (None, verdict, extraction)."""
        extraction, early = precheck(response, question, finish_reason=finish_reason)
        if early is not None:
            return None, early, extraction
        assert extraction is not None
        payload = {k: question.get(k) for k in _QUESTION_KEYS if question.get(k) is not None}
        pool = self._get_pool()
        fut = pool.schedule(_run_check, args=(response, extraction, payload, self.config), timeout=self.timeout_s)
        return fut, None, extraction

    def _from_exception(self, exc: BaseException, extraction: Any) -> Verdict:
        ex_kw = {"extracted": extraction.text, "extraction_method": extraction.method} if extraction else {}
        if isinstance(exc, TimeoutError):
            return Verdict(
                ok=None,
                reason=TIMEOUT,
                explanation=f"the check ran past its {self.timeout_s:g} s wall-clock limit and was stopped",
                checker="sandbox",
                details={"timeout_s": self.timeout_s},
                **ex_kw,
            )
        if isinstance(exc, MemoryError):
            expl = f"the check ran out of memory (limit {self.memory_mb} MiB)"
        else:
            try:
                from pebble import ProcessExpired
            except ImportError:  # pragma: no cover
                ProcessExpired = ()  # type: ignore[assignment]  # noqa: N806
            if isinstance(exc, ProcessExpired):
                code = getattr(exc, "exitcode", None)
                expl = f"the worker process died during the check (exit code {code}; e.g. out of memory)"
            else:
                expl = f"the sandboxed check failed ({type(exc).__name__})"
        return Verdict(
            ok=None,
            reason=CHECK_ERROR,
            explanation=expl,
            checker="sandbox",
            details={"error_type": type(exc).__name__, "memory_mb": self.memory_mb},
            **ex_kw,
        )

    def verify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        """Check ``response`` against ``question['answer']`` in a worker; blocks until done.

        Args:
            response: the full model output.
            question: mapping with ``answer`` and optionally ``choices``, ``unit``,
                ``question_type``, ``answer_type``, ``question``, ``subject``, ``source``, ``id``.
            finish_reason: the model server's ``finish_reason`` of the response (``length``: cut
                off by the token limit, so ``no_answer``, decided in the parent); ``None`` if unknown.

        Returns:
            The worker's :class:`Verdict` (``elapsed_s`` replaced by the parent's wall time), or
            ``timeout`` / ``check_error`` verdicts. Never raises (except ``KeyboardInterrupt``).
        """
        t0 = perf_counter()
        extraction = None
        try:
            fut, early, extraction = self._submit(response, question, finish_reason)
            verdict = early if fut is None else self._result(fut)
        except Exception as exc:  # noqa: BLE001 - the contract is "never raises" (incl. CancelledError)
            verdict = self._from_exception(exc, extraction)
        return replace(verdict, elapsed_s=perf_counter() - t0)

    async def averify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        """Asynchronous :meth:`verify`: awaits the worker without blocking the event loop.

        Safe to call from many coroutines at once (``asyncio.gather``) and from several threads,
        each with its own loop. Cancelling the coroutine cancels the check (its worker is killed
        if it had started). Returns a :class:`Verdict`; never raises except ``CancelledError``.
        """
        t0 = perf_counter()
        extraction = None
        try:
            fut, early, extraction = self._submit(response, question, finish_reason)
            verdict = early if fut is None else await self._aresult(fut)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
            verdict = self._from_exception(exc, extraction)
        return replace(verdict, elapsed_s=perf_counter() - t0)

    def __repr__(self) -> str:
        return (
            f"SandboxedAnswerVerifier(timeout_s={self.timeout_s:g}, memory_mb={self.memory_mb}, "
            f"workers={self.workers}, rel_tol={self.rel_tol}, tolerance={self.tolerance}, steps={self.steps})"
        )


class SandboxedRunner(_WorkerPool):
    """Run any picklable top-level function in a killable ``spawn`` worker with time and memory limits.

    Used by the agents' tools (:mod:`scireflect.agents.tools`: calculator, unit converter, answer
    format check) so that a sympy bomb in a tool call is killed like one in an answer check.

    Args:
        timeout_s: wall-clock seconds per call once a worker has started it.
        memory_mb: ``RLIMIT_AS`` of each worker in MiB.
        workers: worker processes.

    :meth:`run` / :meth:`arun` return the function's result or raise ``TimeoutError`` (past the
    limit; the worker is killed), ``MemoryError`` or ``RuntimeError`` (the worker died).
    """

    def __init__(self, timeout_s: float = 10.0, memory_mb: int | None = 1024, workers: int = 1) -> None:
        super().__init__(timeout_s, memory_mb, workers)

    def _translate(self, exc: BaseException) -> BaseException:
        from pebble import ProcessExpired

        if isinstance(exc, ProcessExpired):
            return RuntimeError(f"the worker process died (exit code {getattr(exc, 'exitcode', None)}; e.g. out of memory)")
        return exc

    def run(self, fn, *args: Any) -> Any:
        """``fn(*args)`` in a worker; blocks. Raises ``TimeoutError`` past ``timeout_s``."""
        fut = self._get_pool().schedule(fn, args=args, timeout=self.timeout_s)
        try:
            return self._result(fut)
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc) from exc

    async def arun(self, fn, *args: Any) -> Any:
        """``fn(*args)`` in a worker without blocking the event loop."""
        fut = self._get_pool().schedule(fn, args=args, timeout=self.timeout_s)
        try:
            return await self._aresult(fut)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc) from exc
