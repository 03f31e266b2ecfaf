"""The local trace viewer: a standard-library HTTP server on 127.0.0.1 over one run directory.

Pages and endpoints (all GET):

``/``                      the questions table, filterable by subject, status, stage, reason and id
                           (client-side, ``static/index.js``), refreshed live while a run is going.
``/q/<id>``                one question: attempts side by side with their verdicts and evidence,
                           critiques, tool calls, the reference answer, and a diff between
                           consecutive attempts (:class:`difflib.HtmlDiff`).
``/api/questions?offset=O&limit=L&subject=..&status=..&stage=..&reason=..&q=..&sort=K&desc=1&gen=G``
                           JSON: one page of the finished questions' rows
                           (:func:`scireflect.rundata.query.trace_row`) that match the filters (``q``: the
                           id contains it), sorted by ``K`` (file order by default); ``total`` and
                           ``matched`` counts; ``facets``, the values each filter can take; the
                           questions in progress; ``reset: true`` when ``G`` is not the current
                           generation (the file was replaced). At most :data:`MAX_PAGE` rows a page.
``/api/question/<id>``     JSON: one full trace record (or the in-progress state of a question).
``/figure/<id>/<n>``       the question's ``n``-th figure (0-based), read from the question file's
                           directory recorded in ``run.json``: the trace's path must stay inside it
                           and the bytes must have the trace's sha256; the type is Pillow's reading
                           of the bytes, never the trace's word.
``/static/...``            CSS, JS and the vendored KaTeX (no CDN).
``/review?pos=N``          review: the ``N``-th trace of a seeded, stratified sample of accepted traces
                           (:mod:`scireflect.viewer.review`), labelled by keyboard (``static/review.js``).

And one POST: ``/api/label`` with a JSON body ``{id, trace_hash, label, reason, note}`` appends a label by
this server's reviewer to ``labels.jsonl`` (:mod:`scireflect.rundata.labels`); it is refused (409) when the
trace has changed since the page showed it (another hash). A POST must come from this server's own
pages: its ``Origin`` is this server and its type ``application/json`` (which a page elsewhere cannot
send without a CORS preflight, which this server never grants).

``traces.jsonl`` is re-read incrementally: each request reads only the bytes appended since the last
read, up to the last complete line; a file that shrank or was replaced is re-read from the start
(a new generation). The server keeps a small row per question, never the records
(:class:`~scireflect.viewer.index.TraceIndex`): filtering, sorting and paging happen here, and a page
holds at most one page of rows, so a run of 100,000 questions opens as fast as one of ten. Questions in progress come from ``checkpoints.sqlite`` (LangGraph's
checkpointer, opened read-only), best effort.

Safety: the server binds 127.0.0.1 only, answers only requests whose ``Host`` is a loopback name
(against DNS rebinding), sends a strict Content-Security-Policy (scripts from this server only), and
HTML-escapes every piece of trace text; the browser scripts insert text with ``textContent`` only.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


from ..agents.figures import FigureError, figure_refs
from ..rundata.images import decode_image, figure_root, read_figure
from ..rundata.query import trace_row
from .index import FACETS, InProgress, TraceIndex
from ..rundata.labels import INVALID_REASONS, LabelError, append_label, make_label, trace_hash
from .pages import index_html, page, question_html, review_html
from .review import ReviewSample, review_item

HERE = Path(__file__).parent
STATIC = HERE / "static"
LOOPBACK = "127.0.0.1"

_LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(?::(\d{1,5}))?")
MAX_PAGE = 1000
"""The most rows one ``/api/questions`` page returns."""

_SAFE_STATIC = re.compile(r"[A-Za-z0-9._/-]{1,200}")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class ViewerServer(ThreadingHTTPServer):
    """The viewer's HTTP server (127.0.0.1 only). ``url`` is its base URL; :meth:`close` stops it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, run_dir: str | Path, port: int = 0, *, poll_ms: int = 2000, reviewer: str = "reviewer",
                 review_seed: int = 0):
        self.run_dir = Path(run_dir)
        self.index = TraceIndex(self.run_dir)
        self.in_progress = InProgress(self.run_dir)
        self.poll_ms = poll_ms
        self.reviewer = reviewer
        self.review = ReviewSample(self.index, review_seed)
        self._label_lock = threading.Lock()
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
        """The finished record of ``qid`` (read back from its line), else its in-progress state, else ``None``."""
        self.index.refresh()
        return self.index.record(qid) or self.in_progress.states().get(qid)

    def figure(self, qid: str, n: int) -> tuple[bytes, str] | None:
        """The bytes and MIME type of question ``qid``'s figure ``n``, or ``None`` when it cannot be had
        (no such question or figure, no question-file directory, a path out of it, changed bytes)."""
        record = self.lookup(qid)
        refs = figure_refs((record or {}).get("question") or {})
        if not 0 <= n < len(refs):
            return None
        try:
            data = read_figure(figure_root(self.run_dir), refs[n])
            return data, decode_image(data)[0]
        except FigureError:
            return None

    def label(self, body: Any) -> tuple[int, dict[str, Any]]:
        """Record one label from a review page's POST body; returns ``(HTTP status, JSON reply)``."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not isinstance(body.get("trace_hash"), str):
            return 400, {"error": "a label needs id and trace_hash"}
        self.index.refresh()
        record = self.index.record(body["id"])
        if record is None:
            return 404, {"error": "no such finished question"}
        if trace_hash(record) != body["trace_hash"]:
            return 409, {"error": "the trace changed since this page showed it: reload it and label it again"}
        try:
            label = make_label(record, str(body.get("label")), reviewer=self.reviewer, reason=body.get("reason") or None,
                               note=str(body.get("note") or ""))
        except LabelError as exc:
            return 400, {"error": str(exc)}
        with self._label_lock:
            append_label(self.run_dir, label)
        return 200, {"ok": True, "label": label}

    def questions_payload(self, generation: int | None = None, *, filters: dict[str, str] | None = None, text: str = "",
                          sort: str | None = None, desc: bool = False, offset: int = 0, limit: int = 200) -> dict[str, Any]:
        """The ``/api/questions`` JSON (see the module docstring; arguments as :meth:`TraceIndex.query`).

        Raises:
            ValueError: an unknown filter or sort key.
        """
        self.index.refresh()
        index = self.index
        matched, rows = index.query(filters, text, sort, desc, offset, min(limit, MAX_PAGE))
        running = [
            {**trace_row(s), "updated_at": s.get("updated_at"), "steps": len(s.get("steps") or [])}
            for qid, s in self.in_progress.states().items() if qid not in index.locations
        ]
        return {
            "generation": index.generation,
            "reset": generation != index.generation,
            "total": len(index.rows),
            "matched": matched,
            "offset": offset,
            "rows": rows,
            "facets": {k: sorted(index.facets[k]) for k in FACETS},
            "in_progress": running,
            "problems": index.problems[-5:],
            "checkpoint_error": self.in_progress.error,
            "checkpoint_rejected": self.in_progress.rejected,
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
        body = page("not found", f'<p class="empty">{html.escape(what)} not found. <a href="/">all questions</a></p>', "/static/question.js")
        self._send(404, body, "text/html; charset=utf-8")

    def _host_ok(self) -> bool:
        """The Host header names this server on loopback, nothing else (DNS rebinding): ``127.0.0.1``,
        ``localhost`` or ``[::1]``, with no port or this server's port."""
        match = _LOOPBACK_HOST.fullmatch((self.headers.get("Host") or "").strip().lower())
        return match is not None and match.group(2) in (None, str(self.server.port))

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
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                try:
                    gen = int(query["gen"]) if "gen" in query else None
                    offset, limit = int(query.get("offset", "0")), int(query.get("limit", "200"))
                except ValueError:
                    self._json({"error": "gen, offset and limit must be integers"}, 400)
                    return
                try:
                    payload = self.server.questions_payload(
                        gen, filters={k: query[k] for k in FACETS if query.get(k)}, text=query.get("q", ""),
                        sort=query.get("sort") or None, desc=query.get("desc") == "1", offset=offset, limit=limit)
                except ValueError as exc:
                    self._json({"error": str(exc)}, 400)
                    return
                self._json(payload)
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
                attrs = (f'data-qid="{html.escape(qid)}" data-status="{html.escape(status)}" data-steps="{len(record.get("steps") or [])}" '
                         f'data-poll-ms="{int(self.server.poll_ms)}"')
                self._send(200, page(f"{qid} · scireflect", question_html(record), "/static/question.js", attrs),
                           "text/html; charset=utf-8")
            elif path == "/review":
                try:
                    pos = max(0, int(parse_qs(parts.query).get("pos", ["0"])[-1]))
                except ValueError:
                    pos = 0
                item = review_item(self.server.index, self.server.review, pos, self.server.run_dir)
                attrs = f'data-pos="{pos}"'
                if item is not None:
                    attrs += f' data-qid="{html.escape(item["record"]["id"])}" data-hash="{item["hash"]}"'
                self._send(200, page(f"review {pos + 1} · scireflect", review_html(item, self.server.reviewer, INVALID_REASONS, pos),
                                     "/static/review.js", attrs), "text/html; charset=utf-8")
            elif path.startswith("/figure/"):
                qid, _, n = path[len("/figure/"):].rpartition("/")
                found = self.server.figure(unquote(qid), int(n)) if n.isdigit() else None
                if found is None:
                    self._send(404, b"figure not found", "text/plain; charset=utf-8")
                else:
                    self._send(200, found[0], found[1])
            elif path.startswith("/static/"):
                self._static(unquote(path[len("/static/"):]))
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            else:
                self._not_found(f"page {path!r}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        if not self._host_ok():
            self._send(403, b"forbidden host", "text/plain; charset=utf-8")
            return
        origin = (self.headers.get("Origin") or "").strip().lower()
        allowed = {f"http://{host}:{self.server.port}" for host in ("127.0.0.1", "localhost", "[::1]")}
        if origin not in allowed:
            self._json({"error": "a label must come from this viewer's own page"}, 403)
            return
        if not (self.headers.get("Content-Type") or "").lower().startswith("application/json"):
            self._json({"error": "send JSON"}, 415)
            return
        if urlsplit(self.path).path != "/api/label":
            self._json({"error": "no such endpoint"}, 404)
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 < length <= 65536:
            self._json({"error": "a label is a JSON body of at most 64 KiB"}, 413)
            return
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._json({"error": "not JSON"}, 400)
            return
        status, reply = self.server.label(body)
        self._json(reply, status)

    def _static(self, rel: str) -> None:
        root = STATIC.resolve()
        try:
            target = (root / rel).resolve() if _SAFE_STATIC.fullmatch(rel) else None
        except (OSError, ValueError):  # e.g. a NUL byte ("app.css%00.js")
            target = None
        if target is None or not target.is_relative_to(root) or not target.is_file():
            self._send(404, b"not found", "text/plain; charset=utf-8")
            return
        ctype = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".woff2": "font/woff2"}.get(
            target.suffix, mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        self._send(200, target.read_bytes(), ctype, cache=True)


def serve(run_dir: str | Path, port: int = 0, *, poll_ms: int = 2000, reviewer: str = "reviewer",
          review_seed: int = 0) -> ViewerServer:
    """Start the viewer on ``127.0.0.1:port`` (0: a free port) in a background thread.

    Args:
        run_dir: the run directory (its ``traces.jsonl`` may not exist yet: the page fills in live).
        port: TCP port on 127.0.0.1.
        poll_ms: how often the pages poll for new traces, in milliseconds.
        reviewer: the name the review page's labels are recorded under.
        review_seed: the seed of the review sample's order.

    Returns:
        The running :class:`ViewerServer`; its ``url`` is the page to open. Call ``close()`` to stop.

    Raises:
        FileNotFoundError: ``run_dir`` is not a directory.
        OSError: the port is taken.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a directory")
    return ViewerServer(run_dir, port, poll_ms=poll_ms, reviewer=reviewer, review_seed=review_seed).start()


__all__ = ["LOOPBACK", "MAX_PAGE", "ViewerServer", "serve"]
