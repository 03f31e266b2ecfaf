"""The local trace viewer: a standard-library HTTP server on 127.0.0.1 over one run directory.

Pages and endpoints (all GET):

``/``                      the questions table, filterable by subject, status, stage, reason and id
                           (client-side, ``static/index.js``), refreshed live while a run is going.
``/q/<id>``                one question: attempts side by side with their verdicts and evidence,
                           critiques, tool calls, the reference answer, and a diff between
                           consecutive attempts (:class:`difflib.HtmlDiff`).
``/api/questions?gen=G&since=N``
                           JSON: the rows (:func:`scireflect.traces.trace_row`) after the first ``N``
                           of generation ``G`` (all rows, with ``reset: true``, when ``G`` is not the
                           current generation), and the questions in progress.
``/api/question/<id>``     JSON: one full trace record (or the in-progress state of a question).
``/static/...``            CSS, JS and the vendored KaTeX (no CDN).

``traces.jsonl`` is re-read incrementally: each request reads only the bytes appended since the last
read, up to the last complete line; a file that shrank or was replaced is re-read from the start
(a new generation). Questions in progress come from ``checkpoints.sqlite`` (LangGraph's
checkpointer, opened read-only), best effort.

Safety: the server binds 127.0.0.1 only, answers only requests whose ``Host`` is a loopback name
(against DNS rebinding), sends a strict Content-Security-Policy (scripts from this server only), and
HTML-escapes every piece of trace text; the browser scripts insert text with ``textContent`` only.
"""

from __future__ import annotations

import difflib
import html
import json
import mimetypes
import os
import sqlite3
import threading
import webbrowser
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import typer

from ..traces import TRACES_FILE, read_traces, solution_steps, tool_call_parts, trace_row

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
CHECKPOINTS_FILE = "checkpoints.sqlite"
MANIFEST_FILE = "run.json"
DEFAULT_PORT = 8765
LOOPBACK = "127.0.0.1"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# ------------------------------------------------------------------------------------------- data


class TraceIndex:
    """The finished questions of a run directory, kept in sync with its growing ``traces.jsonl``.

    Args:
        run_dir: the run directory (``traces.jsonl`` may not exist yet).

    Attributes:
        generation: bumped whenever the file had to be re-read from the start (it shrank or was replaced).
        offset: bytes of ``traces.jsonl`` read so far (always at a line end).
        records: ``{id: record}`` in file order (the first record of an id wins).
        rows: :func:`~scireflect.traces.trace_row` of each record, in file order.
        problems: messages for lines that were not trace records.

    Thread-safe: :meth:`refresh` takes a lock.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / TRACES_FILE
        self.generation = 0
        self.offset = 0
        self.records: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._ident: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.refresh()

    def _reset(self) -> None:
        self.generation += 1
        self.offset = 0
        self.records, self.rows, self.problems = {}, [], []

    def refresh(self) -> int:
        """Read the lines appended since the last call; returns how many new records were added."""
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                if self.offset or self.records:
                    self._reset()
                self._ident = None
                return 0
            ident = (st.st_dev, st.st_ino)
            if (self._ident is not None and ident != self._ident) or st.st_size < self.offset:
                self._reset()
            self._ident = ident
            if st.st_size == self.offset:
                return 0
            records, self.offset, problems = read_traces(self.path, self.offset)
            self.problems.extend(problems)
            added = 0
            for record in records:
                if record["id"] in self.records:
                    continue
                self.records[record["id"]] = record
                self.rows.append(trace_row(record))
                added += 1
            return added


class InProgress:
    """Questions in progress, read from the run's ``checkpoints.sqlite`` (read-only, best effort).

    :meth:`states` returns ``{id: pseudo-record}`` built from each thread's latest checkpoint:
    ``id``, ``subject``, ``status`` (``running``), ``question``, ``steps``, ``n_attempts``,
    ``tokens``, ``seconds``, ``updated_at``. The result is cached until the database files change.
    Any failure (no database, locked, unknown format) gives ``{}`` and sets :attr:`error`.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / CHECKPOINTS_FILE
        self.error: str | None = None
        self._key: tuple | None = None
        self._states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _stamp(self) -> tuple:
        stamp = []
        for suffix in ("", "-wal"):
            try:
                st = os.stat(str(self.path) + suffix)
                stamp.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stamp.append(None)
        return tuple(stamp)

    def states(self) -> dict[str, dict[str, Any]]:
        """The in-progress questions (see the class docstring)."""
        with self._lock:
            if not self.path.exists():
                self._key, self._states = None, {}
                return {}
            key = self._stamp()
            if key == self._key:
                return self._states
            try:
                self._states = self._read()
                self.error = None
            except Exception as exc:  # noqa: BLE001 - best effort: a viewer must not die on a locked db
                self._states, self.error = {}, f"{type(exc).__name__}: {exc}"
            self._key = key
            return self._states

    def _read(self) -> dict[str, dict[str, Any]]:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True, timeout=1.0, check_same_thread=False)
        try:
            saver = SqliteSaver(conn)
            threads = [row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = ''")]
            out = {}
            for thread in threads:
                saved = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
                if saved is None:
                    continue
                values = saved.checkpoint.get("channel_values") or {}
                question = dict(values.get("question") or {"id": thread})
                question = {k: v for k, v in question.items() if not str(k).startswith("_")}
                steps = list(values.get("steps") or [])
                out[thread] = {
                    "id": thread,
                    "subject": question.get("subject", "general"),
                    "status": "running",
                    "stop_reason": None,
                    "accepted_stage": None,
                    "n_attempts": len(solution_steps({"steps": steps})),
                    "tokens": sum(int(s.get("input_tokens") or 0) + int(s.get("output_tokens") or 0) for s in steps),
                    "seconds": round(sum(float(s.get("latency_s") or 0) for s in steps), 3),
                    "updated_at": saved.checkpoint.get("ts"),
                    "question": question,
                    "steps": steps,
                }
            return out
        finally:
            conn.close()


# --------------------------------------------------------------------------------------- rendering

_e = html.escape


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def _page(title: str, body: str, script: str, body_attrs: str = "") -> bytes:
    return _template("base.html").substitute(title=_e(title), body=body, script=_e(script), body_attrs=body_attrs).encode("utf-8")


def question_url(qid: str) -> str:
    """The viewer path of a question page (the id percent-encoded, ``/`` included)."""
    return "/q/" + quote(qid, safe="")


def _badge(text: Any, kind: str = "") -> str:
    if text is None or text == "":
        return ""
    return f'<span class="badge {_e(kind)}">{_e(str(text))}</span>'


def _kv(rows: list[tuple[str, Any]], cls: str = "kv") -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows if v not in (None, ""))
    return f'<table class="{cls}">{cells}</table>'


def _verdict_html(verdict: Mapping[str, Any] | None) -> str:
    if not verdict:
        return '<div class="verdict none">no verdict</div>'
    ok = verdict.get("ok")
    cls, label = ("ok", "✓ accepted") if ok is True else (("bad", "✗ rejected") if ok is False else ("undecided", "? undecided"))
    details = verdict.get("details") or {}
    rows = [
        ("reason", f"<code>{_e(str(verdict.get('reason')))}</code>"),
        ("why", _e(str(verdict.get("explanation") or ""))),
        ("extracted", f'<code class="no-math">{_e(str(verdict["extracted"]))}</code>' if verdict.get("extracted") is not None else ""),
        ("candidate", f'<code class="no-math">{_e(str(verdict["candidate"]))}</code>' if verdict.get("candidate") is not None else ""),
        ("reference", f'<code class="no-math">{_e(str(verdict["reference"]))}</code>' if verdict.get("reference") is not None else ""),
        ("method", _e(str(verdict.get("extraction_method") or ""))),
        ("checker", _e(f"{verdict.get('checker') or '-'} ({float(verdict.get('elapsed_s') or 0):.2f} s)")),
        ("details", f'<code class="no-math">{_e(json.dumps(details, ensure_ascii=False))}</code>' if details else ""),
    ]
    return f'<div class="verdict {cls}"><div class="verdict-head">{_e(label)}</div>{_kv(rows)}</div>'


def _tool_calls_html(calls: list[Any]) -> str:
    parts = []
    for call in calls:
        name, args, output = tool_call_parts(call)
        parts.append(
            f'<div class="tool-call"><div class="tool-name">tool call: <code>{_e(name)}</code></div>'
            f'<pre class="no-math">{_e(args)}</pre>'
            + (f'<div class="tool-out">output</div><pre class="no-math">{_e(output)}</pre>' if output else "")
            + "</div>"
        )
    return '<div class="tool-calls">' + "".join(parts) + "</div>"


def _messages_html(step: Mapping[str, Any]) -> str:
    messages = step.get("messages") or []
    if not messages:
        return ""
    inner = "".join(
        f'<div class="msg"><div class="msg-role">{_e(str(m.get("role", "?")))}</div><pre class="no-math">{_e(str(m.get("content", "")))}</pre></div>'
        for m in messages
    )
    return f'<details class="prompt"><summary>prompt sent ({len(messages)} messages)</summary>{inner}</details>'


def _step_meta(step: Mapping[str, Any]) -> str:
    bits = [f"{_e(str(step.get('model') or '?'))}",
            f"{int(step.get('input_tokens') or 0):,} in / {int(step.get('output_tokens') or 0):,} out tokens",
            f"{float(step.get('latency_s') or 0):.1f} s"]
    if step.get("finish_reason") not in (None, "stop"):
        bits.append(f'<span class="warn">finish: {_e(str(step["finish_reason"]))}</span>')
    if step.get("transport_failures"):
        bits.append(f'<span class="warn">{len(step["transport_failures"])} transport failure(s) retried</span>')
    return '<div class="meta">' + " · ".join(bits) + "</div>"


def _step_body(step: Mapping[str, Any]) -> str:
    out = [_step_meta(step)]
    if step.get("tool_calls"):
        out.append(_tool_calls_html(step["tool_calls"]))
    if step.get("error"):
        out.append(f'<div class="error">error: {_e(str(step["error"]))}</div>')
    out.append(f'<div class="text math">{_e(str(step.get("response") or ""))}</div>')
    out.append(_messages_html(step))
    return "".join(out)


def _clean_for_diff(text: str) -> list[str]:
    # difflib marks changes with \0 and \1 characters: drop them from model text first.
    return str(text or "").replace("\0", "").replace("\1", "").splitlines()


def diff_html(before: str, after: str, before_label: str, after_label: str) -> str:
    """An HTML side-by-side diff table of two texts (escaped; long lines wrapped at 60 characters)."""
    table = difflib.HtmlDiff(wrapcolumn=60).make_table(
        _clean_for_diff(before), _clean_for_diff(after), _e(before_label), _e(after_label), context=False,
    )
    return table


def question_html(record: Mapping[str, Any]) -> str:
    """The body of a question page (see the module docstring); every trace string is HTML-escaped."""
    row = trace_row(record)
    question = record.get("question") or {}
    status = row["status"] or "running"
    steps = list(record.get("steps") or [])
    solutions = [s for s in steps if s.get("kind", "solution") == "solution"]
    critiques = {s.get("attempt"): s for s in steps if s.get("kind") == "critique"}

    header = (
        f'<div class="qhead"><nav><a href="/" class="back">← all questions</a></nav>'
        f'<h1><code>{_e(str(row["id"]))}</code></h1>'
        f'{_badge(status, "status-" + status)}{_badge(row["stage"], "stage")}{_badge(row["subject"], "subject")}'
        f'<span class="meta">{row["attempts"]} attempt(s) · {row["tokens"]:,} tokens · {row["seconds"]:.1f} s'
        + (f' · stop: {_e(str(row["stop_reason"]))}' if row["stop_reason"] else "")
        + f' · <a href="/api/question/{quote(str(row["id"]), safe="")}">JSON</a></span></div>'
    )
    choices = question.get("choices") or []
    choices_html = ("<ol class=\"choices\" type=\"A\">" + "".join(f'<li class="math">{_e(str(c))}</li>' for c in choices) + "</ol>") if choices else ""
    reference = _e(str(question.get("answer")))
    # The answer as written too, when KaTeX renders it (LaTeX).
    raw = f' <code class="no-math raw-answer">{reference}</code>' if "\\" in str(question.get("answer")) else ""
    unit = f' <span class="unit">({_e(str(question["unit"]))})</span>' if question.get("unit") else ""
    extra = _kv([("topic", _e(str(question.get("topic") or ""))), ("source", _e(str(question.get("source") or ""))),
                 ("prompt version", _e(str(record.get("prompt_version") or ""))),
                 ("verifier", _e(str(record.get("verifier") or ""))), ("finished", _e(str(record.get("finished_at") or "")))],
                cls="kv small")
    qbox = (
        f'<section class="question"><h2>Question</h2><div class="text math qtext">{_e(str(question.get("question") or ""))}</div>'
        f'{choices_html}<div class="reference">reference answer: <span class="answer math">{reference}</span>'
        f'{raw}{unit}</div>{extra}</section>'
    )

    columns = []
    for step in solutions:
        attempt = step.get("attempt")
        verdict = step.get("verdict")
        ok = (verdict or {}).get("ok")
        cls = "ok" if ok is True else ("bad" if ok is False else "undecided")
        stage = str(step.get("stage") or "")
        guided = '<div class="guided-note">answer-guided: the reference answer was shown</div>' if stage == "answer_guided" else ""
        critique = critiques.get(attempt)
        critique_html = (
            f'<div class="critique"><h4>critique of attempt {_e(str(attempt))} '
            f'<span class="role">({_e(str(critique.get("role")))})</span></h4>{_step_body(critique)}</div>'
            if critique else ""
        )
        columns.append(
            f'<article class="attempt {cls}" id="attempt-{_e(str(attempt))}">'
            f'<h3>Attempt {_e(str(attempt))} <span class="role">{_e(str(step.get("role")))} · {_e(stage)}</span></h3>'
            f"{guided}{_verdict_html(verdict)}{_step_body(step)}{critique_html}</article>"
        )
    attempts = (
        f'<section><h2>Attempts ({len(solutions)})</h2><div class="attempts">{"".join(columns)}</div></section>'
        if columns else '<section><h2>Attempts</h2><p class="empty">no attempt yet</p></section>'
    )

    diffs = []
    for before, after in zip(solutions, solutions[1:], strict=False):
        a, b = before.get("attempt"), after.get("attempt")
        diffs.append(
            f'<div class="diff-block"><h3>Attempt {_e(str(a))} → attempt {_e(str(b))}</h3>'
            f'<div class="diff-wrap no-math">{diff_html(before.get("response", ""), after.get("response", ""), f"attempt {a}", f"attempt {b}")}</div></div>'
        )
    diff_section = f'<section class="diffs"><h2>Changes between attempts</h2>{"".join(diffs)}</section>' if diffs else ""
    return header + qbox + attempts + diff_section


def index_html(run_dir: Path, poll_ms: int) -> bytes:
    """The questions page (the table itself is filled by ``static/index.js`` from ``/api/questions``)."""
    manifest = {}
    try:
        manifest = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    models = manifest.get("models") if isinstance(manifest, dict) else None
    model_text = ", ".join(sorted({str(v) for v in models.values()})) if isinstance(models, dict) else ""
    body = _template("index.html").substitute(
        run_dir=_e(str(run_dir.resolve())), run_name=_e(run_dir.resolve().name), models=_e(model_text),
    )
    return _page(f"scireflect · {run_dir.resolve().name}", body, "/static/index.js", f'data-poll-ms="{int(poll_ms)}"')


# ------------------------------------------------------------------------------------------ server


class ViewerServer(ThreadingHTTPServer):
    """The viewer's HTTP server (127.0.0.1 only). ``url`` is its base URL; :meth:`close` stops it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, run_dir: str | Path, port: int = 0, *, poll_ms: int = 2000):
        self.run_dir = Path(run_dir)
        self.index = TraceIndex(self.run_dir)
        self.in_progress = InProgress(self.run_dir)
        self.poll_ms = poll_ms
        self._thread: threading.Thread | None = None
        super().__init__((LOOPBACK, port), ViewerHandler)

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self) -> ViewerServer:
        """Serve in a daemon thread; returns ``self``."""
        self._thread = threading.Thread(target=self.serve_forever, name="scireflect-viewer", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def lookup(self, qid: str) -> dict[str, Any] | None:
        """The finished record of ``qid``, else its in-progress state, else ``None``."""
        self.index.refresh()
        return self.index.records.get(qid) or self.in_progress.states().get(qid)

    def questions_payload(self, generation: int | None, since: int) -> dict[str, Any]:
        """The ``/api/questions`` JSON (see the module docstring)."""
        self.index.refresh()
        index = self.index
        reset = generation != index.generation
        start = 0 if reset else max(0, min(since, len(index.rows)))
        finished = index.records
        running = [
            {**trace_row(s), "updated_at": s.get("updated_at"), "steps": len(s.get("steps") or [])}
            for qid, s in self.in_progress.states().items() if qid not in finished
        ]
        return {
            "generation": index.generation,
            "reset": reset,
            "total": len(index.rows),
            "rows": index.rows[start:],
            "in_progress": running,
            "problems": index.problems[-5:],
            "checkpoint_error": self.in_progress.error,
        }


class ViewerHandler(BaseHTTPRequestHandler):
    """Routes of the viewer (see the module docstring)."""

    server: ViewerServer
    server_version = "scireflect-viewer"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet; the CLI prints the URL
        pass

    def _send(self, status: int, body: bytes, content_type: str, *, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _not_found(self, what: str) -> None:
        body = _page("not found", f'<p class="empty">{_e(what)} not found. <a href="/">all questions</a></p>', "/static/question.js")
        self._send(404, body, "text/html; charset=utf-8")

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        return name in ("127.0.0.1", "localhost", "[::1]")

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if not self._host_ok():
            self._send(403, b"forbidden host", "text/plain; charset=utf-8")
            return
        parts = urlsplit(self.path)
        path = parts.path
        try:
            if path in ("/", "/index.html"):
                self._send(200, index_html(self.server.run_dir, self.server.poll_ms), "text/html; charset=utf-8")
            elif path == "/api/questions":
                query = parse_qs(parts.query)
                try:
                    gen = int(query["gen"][0]) if "gen" in query else None
                    since = int(query.get("since", ["0"])[0])
                except ValueError:
                    self._json({"error": "gen and since must be integers"}, 400)
                    return
                self._json(self.server.questions_payload(gen, since))
            elif path.startswith("/api/question/"):
                record = self.server.lookup(unquote(path[len("/api/question/"):]))
                if record is None:
                    self._json({"error": "no such question"}, 404)
                else:
                    self._json(record)
            elif path.startswith("/q/"):
                qid = unquote(path[len("/q/"):])
                record = self.server.lookup(qid)
                if record is None:
                    self._not_found(f"question {qid!r}")
                    return
                status = record.get("status") or "running"
                attrs = (f'data-qid="{_e(qid)}" data-status="{_e(status)}" data-steps="{len(record.get("steps") or [])}" '
                         f'data-poll-ms="{int(self.server.poll_ms)}"')
                self._send(200, _page(f"{qid} · scireflect", question_html(record), "/static/question.js", attrs),
                           "text/html; charset=utf-8")
            elif path.startswith("/static/"):
                self._static(unquote(path[len("/static/"):]))
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            else:
                self._not_found(f"page {path!r}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _static(self, rel: str) -> None:
        root = STATIC.resolve()
        target = (root / rel).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            self._send(404, b"not found", "text/plain; charset=utf-8")
            return
        ctype = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".woff2": "font/woff2"}.get(
            target.suffix, mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        self._send(200, target.read_bytes(), ctype, cache=True)


def serve(run_dir: str | Path, port: int = 0, *, poll_ms: int = 2000) -> ViewerServer:
    """Start the viewer on ``127.0.0.1:port`` (0: a free port) in a background thread.

    Args:
        run_dir: the run directory (its ``traces.jsonl`` may not exist yet: the page fills in live).
        port: TCP port on 127.0.0.1.
        poll_ms: how often the pages poll for new traces, in milliseconds.

    Returns:
        The running :class:`ViewerServer`; its ``url`` is the page to open. Call ``close()`` to stop.

    Raises:
        FileNotFoundError: ``run_dir`` is not a directory.
        OSError: the port is taken.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a directory")
    return ViewerServer(run_dir, port, poll_ms=poll_ms).start()


def view_command(
    run_dir: Path = typer.Argument(..., help="Run directory (traces.jsonl, checkpoints.sqlite); may be in progress."),
    port: int = typer.Option(DEFAULT_PORT, "--port", "-p", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser; just print the URL."),
) -> None:
    """Browse a run in a local web viewer (127.0.0.1 only): questions table, attempts side by side, diffs, live updates."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not run_dir.is_dir():
        err.print(f"[bold red]error:[/] {escape(str(run_dir))}: not a directory")
        raise typer.Exit(2)
    if not (run_dir / TRACES_FILE).exists() and not (run_dir / CHECKPOINTS_FILE).exists():
        err.print(f"[yellow]note:[/] no {TRACES_FILE} in {escape(str(run_dir))} yet; the page fills in as questions finish")
    try:
        server = serve(run_dir, port)
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot listen on {LOOPBACK}:{port} ({exc.strerror or exc}); try --port 0 for a free port")
        raise typer.Exit(2) from None
    Console(highlight=False, soft_wrap=True).print(f"scireflect viewer for {escape(str(run_dir))}: {server.url}  (Ctrl-C to stop)")
    if not no_browser:
        webbrowser.open(server.url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


__all__ = ["InProgress", "TraceIndex", "ViewerServer", "diff_html", "question_html", "question_url", "serve", "view_command"]
