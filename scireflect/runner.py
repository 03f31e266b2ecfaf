"""The annotation run: many questions through the annotation graph, resumable, K at a time.

Files in the run directory:

``traces.jsonl``        append-only; one line per finished question with every step (the source of
                        truth). A line is written with one ``write`` and ``fsync``; a partial last line
                        left by a kill is cut off on the next start and that question is redone.
``sft.jsonl``           derived from ``traces.jsonl`` at the end of each run: one prompt/response pair
                        per accepted question, with its stage so answer-guided pairs can be filtered.
``checkpoints.sqlite``  LangGraph's SQLite checkpointer (WAL mode, ``synchronous=NORMAL``): a killed run
                        resumes an unfinished question at its last completed node, without repeating
                        the model calls. A question's checkpoints are deleted once its trace line is on
                        disk. WAL with ``synchronous=NORMAL`` keeps every committed checkpoint through a
                        process crash (SIGKILL); only a power loss or OS crash can drop the last few,
                        which costs at most a repeated model call, never a trace line (those are
                        fsynced). It saves one fsync per checkpoint write (the SQLite documentation,
                        "WAL mode" and "PRAGMA synchronous").
``run.json``            the manifest: input file and hash, settings, prompt and verifier versions.
``summary.json``        per-subject counts written at the end of each run.
``embedded-server.log`` the embedded llama.cpp server's log, when the embedded model is used.

Re-running the same command continues where the last run stopped: questions with a trace line are
skipped, so every question appears exactly once in ``traces.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

import openai
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from . import __version__
from .agents import prompts as P
from .agents import prompts_formal as PF
from .agents.roles import ROLES, Agent, AgentTeam, RetryPolicy
from .config import LLMSettings, RunSettings
from .graphs.annotation import EndpointError, build_annotation_graph, initial_state, seconds_used, tokens_used
from .graphs.formal import build_formal_graph
from .questions import QuestionSet, stable_bucket
from .traces import STATUSES as FINAL_STATUSES
from .verifiers.base import AnswerVerifier
from .verifiers.lean.config import LeanUnavailable
from .verifiers.lean.integration import is_formal_row, make_lean_checker

TRACES = "traces.jsonl"
SFT = "sft.jsonl"
CHECKPOINTS = "checkpoints.sqlite"
MANIFEST = "run.json"
SUMMARY = "summary.json"
SERVER_LOG = "embedded-server.log"


class RunError(RuntimeError):
    """The run cannot start or cannot go on (bad run directory, endpoint down, model missing)."""


class TraceStore:
    """The append-only ``traces.jsonl`` of a run directory, keyed by question id.

    Args:
        path: the traces file (created when missing).

    On open, a last line without its newline (a write cut by a kill) is removed; any other line
    that is not valid JSON raises :class:`RunError` naming the line, since it means the file was
    edited by hand.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self.repaired_bytes = 0
        self._load()
        self._lock = asyncio.Lock()

    def _load(self) -> None:
        if not self.path.exists():
            self.path.touch()
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a partial last line from a kill
            self.repaired_bytes = len(data) - end
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
            data = data[:end]
        for lineno, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                qid = record["id"]
            except (ValueError, KeyError, TypeError):
                raise RunError(f"{self.path}:{lineno}: not a trace record; the file was changed by hand") from None
            self.records.setdefault(qid, record)

    def __contains__(self, qid: str) -> bool:
        return qid in self.records

    async def append(self, record: dict[str, Any]) -> None:
        """Append one finished question (one ``write`` + ``fsync``) and remember it."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        async with self._lock:
            if record["id"] in self.records:
                return
            await asyncio.to_thread(self._write, line)
            self.records[record["id"]] = record

    def _write(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def sft_pairs(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """SFT pairs from trace records: one per accepted question, the accepted attempt's text.

    Each pair: ``id``, ``subject``, ``stage`` (``cot``/``reflection``/``answer_guided``), ``prompt``
    (the problem as the Solver saw it: no critique, no reference answer), ``response``,
    ``messages`` (OpenAI chat form), ``reference_answer``, ``extracted_answer``, ``model``,
    ``prompt_version``, ``source``.
    """
    pairs = []
    for record in records:
        if record.get("status") != "accepted":
            continue
        accepted = [s for s in record["steps"] if s["kind"] == "solution" and (s.get("verdict") or {}).get("ok") is True]
        if not accepted:
            continue
        step = accepted[-1]
        prompt = PF.render_formal_problem(record["question"]) if is_formal_row(record["question"]) else P.render_problem(record["question"])
        pairs.append({
            "id": record["id"],
            "subject": record["subject"],
            "stage": step["stage"],
            "prompt": prompt,
            "response": step["response"],
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": step["response"]}],
            "reference_answer": record["question"].get("answer"),
            "extracted_answer": step.get("parsed_answer"),
            "model": step.get("model"),
            "prompt_version": record.get("prompt_version"),
            "source": record["question"].get("source"),
        })
    return pairs


def write_jsonl_atomic(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows to ``path`` through a temporary file and a rename; returns the row count."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return count


@dataclass
class SubjectSummary:
    """Counts for one subject (or ``all``): questions, outcome by stage, tokens, seconds."""

    questions: int = 0
    accepted_cot: int = 0
    accepted_reflection: int = 0
    accepted_answer_guided: int = 0
    rejected: int = 0
    error: int = 0
    unverified: int = 0  # formal proofs no Lean checked (no toolchain)
    tokens: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.accepted_cot + self.accepted_reflection + self.accepted_answer_guided

    def add(self, record: Mapping[str, Any]) -> None:
        self.questions += 1
        status = record.get("status")
        if status == "accepted":
            stage = record.get("accepted_stage") or "cot"
            setattr(self, f"accepted_{stage}", getattr(self, f"accepted_{stage}") + 1)
        elif status == "error":
            self.error += 1
        elif status == "unverified":
            self.unverified += 1
        else:
            self.rejected += 1
        self.tokens += int(record.get("tokens", 0))
        self.seconds += float(record.get("seconds", 0.0))


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, SubjectSummary]:
    """Per-subject summaries plus an ``all`` row, subjects sorted by name."""
    by_subject: dict[str, SubjectSummary] = defaultdict(SubjectSummary)
    total = SubjectSummary()
    for record in records:
        by_subject[record.get("subject", "general")].add(record)
        total.add(record)
    out = dict(sorted(by_subject.items()))
    out["all"] = total
    return out


@dataclass
class RunResult:
    """What :func:`annotate` did: counts of this invocation and the summary of the whole run dir."""

    run_dir: Path
    total: int
    skipped: int
    finished_now: int
    summary: dict[str, SubjectSummary]
    sft_count: int
    status_counts: Counter = field(default_factory=Counter)


ProgressCallback = Callable[[str, Mapping[str, Any] | None], None]


def _chat_model(settings: LLMSettings, base_url: str, model: str) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=settings.api_key(),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        timeout=settings.request_timeout_s,
        max_retries=0,  # the agent retries, recording each failed try in the trace
    )


async def preflight(endpoints: Mapping[str, tuple[str, set[str]]]) -> None:
    """Check that each endpoint answers and serves the models the run needs.

    Args:
        endpoints: ``{base_url: (api_key, {model names})}``.

    Raises:
        RunError: unreachable endpoint, rejected key, or a model the endpoint does not list (the
            message lists what it serves). Endpoints without a ``/models`` route are not checked.
    """
    for base_url, (api_key, models) in endpoints.items():
        client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=15.0, max_retries=1)
        try:
            listed = [m.id async for m in client.models.list()]
        except openai.APIConnectionError as exc:
            raise RunError(f"endpoint unreachable: {base_url} ({exc.__cause__ or exc}); is the server running?") from None
        except openai.AuthenticationError:
            raise RunError(f"endpoint {base_url} rejected the API key; set it in OPENAI_API_KEY (or the role's api_key_env)") from None
        except (openai.NotFoundError, openai.UnprocessableEntityError):
            continue  # no /models route: cannot check names here
        except openai.APIError as exc:
            raise RunError(f"endpoint {base_url} failed when listing models: {exc}") from None
        finally:
            await client.close()
        missing = sorted(m for m in models if m not in listed)
        if missing and listed:
            raise RunError(
                f"model not found: {', '.join(missing)} is not served by {base_url}; available: {', '.join(listed[:20])}"
            )


def endpoint_urls(settings: LLMSettings, embedded_url: str | None) -> list[str]:
    """The endpoints one role spreads its questions over: ``base_url`` then its replicas."""
    if settings.base_url is None:
        assert embedded_url is not None
        return [embedded_url]
    return [settings.base_url, *settings.replicas]


@contextlib.asynccontextmanager
async def _llm_teams(settings: RunSettings, run_dir: Path, say: ProgressCallback) -> AsyncIterator[tuple[list[AgentTeam], dict[str, str]]]:
    """Start the embedded model if needed, check the endpoints, and build the agents.

    Yields ``([team per replica], {role: model name})``: team ``r`` uses endpoint ``r`` of each
    role's list (cycling when a role has fewer replicas).
    """
    server_cm: Any = contextlib.nullcontext()
    embedded_url = embedded_name = None
    if settings.uses_embedded:
        from .embedded import DEFAULT_EMBEDDED_MODEL, EmbeddedServer, available_embedded_models, materialise_embedded_model

        if settings.gguf_path is not None:
            gguf = Path(settings.gguf_path)
            if not gguf.is_file():
                raise RunError(f"--gguf {gguf}: no such file")
            embedded_name = gguf.stem
        else:
            name = settings.embedded_model or (available_embedded_models() or [DEFAULT_EMBEDDED_MODEL])[0]
            say("status", {"message": f"preparing embedded model {name}"})
            gguf = await asyncio.to_thread(materialise_embedded_model, name)
            embedded_name = name
        say("status", {"message": f"starting embedded llama.cpp server ({embedded_name}, {settings.concurrency} slots)"})
        server_cm = EmbeddedServer(gguf, parallel=settings.concurrency, context_per_slot=8192,
                                   log_path=run_dir / SERVER_LOG, model_name=embedded_name)
    async with server_cm as server:
        if server is not None:
            embedded_url = server.base_url
        urls = {role: endpoint_urls(settings.roles[role], embedded_url) for role in ROLES}
        names = {role: (settings.roles[role].model if settings.roles[role].base_url else embedded_name) for role in ROLES}
        endpoints: dict[str, tuple[str, set[str]]] = {}
        for role in ROLES:
            for url in urls[role]:
                endpoints.setdefault(url, (settings.roles[role].api_key(), set()))[1].add(names[role])
        await preflight(endpoints)
        n_replicas = max(len(u) for u in urls.values())
        teams = []
        for r in range(n_replicas):
            agents = {}
            for role in ROLES:
                llm = settings.roles[role]
                retry = RetryPolicy(max_retries=llm.max_retries, initial_backoff_s=llm.retry_backoff_s)
                chat = _chat_model(llm, urls[role][r % len(urls[role])], names[role])
                agents[role] = Agent(role, chat, names[role], retry=retry)
            teams.append(AgentTeam(**agents))
        if n_replicas > 1:
            say("status", {"message": f"spreading questions over {n_replicas} endpoint replicas"})
        yield teams, names


def _manifest(questions: QuestionSet, settings: RunSettings, models: Mapping[str, str], verifier: AnswerVerifier) -> dict[str, Any]:
    return {
        "scireflect_version": __version__,
        "input": {"path": str(questions.path), "sha256": questions.sha256},
        "prompt_version": P.PROMPT_VERSION,
        "verifier": {"name": verifier.name, "version": verifier.version, **asdict(settings.verifier)},
        "budget": asdict(settings.budget),
        "concurrency": settings.concurrency,
        "tools": settings.tools,
        "prompt_variant": settings.prompt_variant,
        "roles": {
            role: {"model": models[role], "base_url": s.base_url or "embedded", "replicas": list(s.replicas),
                   "temperature": s.temperature, "max_tokens": s.max_tokens}
            for role, s in settings.roles.items()
        },
    }


def _write_manifest(run_dir: Path, manifest: dict[str, Any], say: ProgressCallback) -> None:
    path = run_dir / MANIFEST
    runs = []
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            raise RunError(f"{path}: not valid JSON; was the run directory edited by hand?") from None
        runs = previous.get("runs", [])
        last = runs[-1]["settings"] if runs else {}
        if last and last.get("input", {}).get("sha256") != manifest["input"]["sha256"]:
            say("warning", {"message": "the input file changed since the last run in this directory; questions are matched by id"})
        if last and {k: v for k, v in last.items() if k != "input"} != {k: v for k, v in manifest.items() if k != "input"}:
            say("warning", {"message": "settings differ from the last run in this directory; each trace records its own models and versions"})
    runs.append({"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "settings": manifest})
    write_json_atomic(path, {"runs": runs})


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def trace_record(state: Mapping[str, Any], *, verifier: AnswerVerifier) -> dict[str, Any]:
    """The ``traces.jsonl`` line of one finished question (final graph state plus totals)."""
    question = {k: v for k, v in state["question"].items() if not k.startswith("_")}
    steps = state.get("steps", [])
    return {
        "id": question["id"],
        "subject": question.get("subject", "general"),
        "status": state.get("status"),
        "stop_reason": state.get("stop_reason"),
        "error_kind": state.get("error_kind"),
        "accepted_stage": state.get("accepted_stage"),
        "variant": state.get("variant"),
        "n_attempts": sum(1 for s in steps if s["kind"] == "solution"),
        "tokens": tokens_used(state),
        "seconds": round(seconds_used(state), 3),
        "prompt_version": PF.FORMAL_PROMPT_VERSION if is_formal_row(question) else P.PROMPT_VERSION,
        "verifier": f"{verifier.name}/{verifier.version}",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "question": question,
        "steps": steps,
    }


def make_verifier(settings: RunSettings) -> AnswerVerifier:
    """The run's verifier: ``[verifier] default`` and ``by_subject`` resolved through the registry
    (built-ins and entry-point plugins); checks of model text run in a sandboxed worker process."""
    from .verifiers import build_verifier

    v = settings.verifier
    return build_verifier(v.default, v.by_subject, timeout_s=v.timeout_s, memory_mb=v.memory_mb,
                          workers=max(1, min(settings.concurrency, os.cpu_count() or 1)),
                          rel_tol=v.rel_tol, tolerance=v.tolerance, ensemble=v.ensemble)


async def annotate(
    questions: QuestionSet,
    run_dir: Path,
    settings: RunSettings,
    *,
    on_event: ProgressCallback | None = None,
    verifier: AnswerVerifier | None = None,
    team: AgentTeam | None = None,
    lean_checker: AnswerVerifier | None = None,
) -> RunResult:
    """Annotate every question of ``questions`` not yet in ``run_dir``'s traces.

    Args:
        questions: validated questions (see :func:`scireflect.questions.load_questions`).
        run_dir: the run directory (created if missing); re-use it to resume.
        settings: models, budget, verifier, concurrency.
        on_event: ``callback(kind, data)`` for progress: ``status``, ``warning``, ``start``
            (``{"total", "pending"}``), ``done`` (a trace record).
        verifier / team: injected verifier and agents (tests); by default built from ``settings``.
        lean_checker: the proof checker of formal rows (rows with a Lean ``statement``, which go to
            the formal-proof graph); by default :func:`make_lean_checker` of ``settings.lean``,
            built only when such rows are pending. Its startup line is reported once (``warning``
            when proofs cannot be checked: those rows end ``unverified``).

    Returns:
        A :class:`RunResult`; ``traces.jsonl``, ``sft.jsonl``, ``summary.json`` are written.

    Raises:
        RunError: unusable run directory, endpoint unreachable, model not found.
        EndpointError: the endpoint failed mid-run; finished questions are kept, unfinished ones
            resume from their checkpoints on the next run.
    """
    say = on_event or (lambda kind, data: None)
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"--out {run_dir}: exists and is not a directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    store = TraceStore(run_dir / TRACES)
    if store.repaired_bytes:
        say("warning", {"message": f"removed a partial last line ({store.repaired_bytes} bytes) from {TRACES}; that question will be redone"})
    pending = [q for q in questions.questions if q["id"] not in store]
    skipped = len(questions) - len(pending)
    own_verifier = verifier is None
    verifier = verifier or make_verifier(settings)
    formal_pending = any(is_formal_row(q) for q in pending)
    own_lean = formal_pending and lean_checker is None
    finished_now = 0
    statuses: Counter = Counter()
    try:
        if formal_pending:
            if lean_checker is None:
                try:
                    lean_checker = make_lean_checker(settings)
                except LeanUnavailable as exc:
                    raise RunError(f"Lean checker: {exc}") from None
            startup = getattr(lean_checker, "startup_event", None)
            say(*(startup() if startup else ("status", {"message": f"formal proofs checked by {lean_checker.name}"})))
        if pending:
            team_cm: Any = (_llm_teams(settings, run_dir, say) if team is None
                             else contextlib.nullcontext(([team], {r: getattr(team, r).model_name for r in ROLES})))
            async with team_cm as (teams, models):
                _write_manifest(run_dir, _manifest(questions, settings, models, verifier), say)
                async with AsyncSqliteSaver.from_conn_string(str(run_dir / CHECKPOINTS)) as saver:
                    await saver.setup()
                    await saver.conn.execute("PRAGMA synchronous=NORMAL")
                    # One query for the whole run instead of one state read per question: only
                    # questions with checkpoints (interrupted last time) need their state read.
                    async with saver.conn.execute("SELECT DISTINCT thread_id FROM checkpoints") as cursor:
                        checkpointed = {row[0] async for row in cursor}
                    graphs = [build_annotation_graph(t, verifier, settings.budget, checkpointer=saver, tools=settings.tools,
                                                     max_tool_rounds=settings.max_tool_rounds) for t in teams]
                    formal_graphs = ([build_formal_graph(t, lean_checker, settings.budget, checkpointer=saver) for t in teams]
                                     if formal_pending else [])
                    say("start", {"total": len(questions), "pending": len(pending), "skipped": skipped})
                    semaphore = asyncio.Semaphore(settings.concurrency)
                    consecutive_transport_errors = 0

                    async def one(question: dict[str, Any]) -> None:
                        nonlocal finished_now, consecutive_transport_errors
                        async with semaphore:
                            formal = is_formal_row(question)
                            pool = formal_graphs if formal else graphs
                            graph = pool[stable_bucket(question["id"], len(pool))]
                            config = {"configurable": {"thread_id": question["id"]}, "recursion_limit": 100}
                            snapshot = await graph.aget_state(config) if question["id"] in checkpointed else None
                            if snapshot is not None and snapshot.next:  # interrupted mid-question: resume
                                final = await graph.ainvoke(None, config)
                            elif snapshot is not None and snapshot.values.get("status") in FINAL_STATUSES:
                                final = snapshot.values  # finished, but its trace line was not written
                            else:
                                variant = P.subject_variant(question.get("subject"), settings.prompt_variant)
                                final = await graph.ainvoke(initial_state(question, variant), config)
                            if final.get("error_kind") == "transport":
                                consecutive_transport_errors += 1
                                if consecutive_transport_errors >= settings.abort_after_transport_errors:
                                    # The endpoint is down, not the question: stop, keep this
                                    # question's checkpoint so the next run retries it.
                                    raise EndpointError(
                                        f"{consecutive_transport_errors} questions in a row failed on the endpoint; "
                                        f"last: {final.get('stop_reason')}")
                            else:
                                consecutive_transport_errors = 0
                            record = trace_record(final, verifier=lean_checker if formal else verifier)
                            await store.append(record)
                            await saver.adelete_thread(question["id"])
                            finished_now += 1
                            statuses[record["status"]] += 1
                            say("done", record)

                    tasks = [asyncio.create_task(one(q)) for q in pending]
                    try:
                        await asyncio.gather(*tasks)
                    except BaseException:
                        for task in tasks:
                            task.cancel()
                        await asyncio.gather(*tasks, return_exceptions=True)
                        raise
        else:
            say("start", {"total": len(questions), "pending": 0, "skipped": skipped})
    finally:
        if own_verifier and hasattr(verifier, "close"):
            verifier.close()
        if own_lean and lean_checker is not None and hasattr(lean_checker, "close"):
            lean_checker.close()
        records = list(store.records.values())
        sft_count = write_jsonl_atomic(run_dir / SFT, sft_pairs(records))
        summary = summarize(records)
        write_json_atomic(run_dir / SUMMARY, {k: {**asdict(v), "accepted": v.accepted} for k, v in summary.items()})
    return RunResult(run_dir=run_dir, total=len(questions), skipped=skipped, finished_now=finished_now,
                     summary=summary, sft_count=sft_count, status_counts=statuses)


__all__ = [
    "RunError",
    "RunResult",
    "SubjectSummary",
    "TraceStore",
    "annotate",
    "preflight",
    "sft_pairs",
    "summarize",
    "trace_record",
    "EndpointError",
]
