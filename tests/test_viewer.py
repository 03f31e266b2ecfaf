"""The web viewer's server: pages, JSON endpoints, live re-reading, in-progress questions, safety."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import openai
import pytest
import typer
from typer.testing import CliRunner

from scireflect.agents.roles import AgentTeam
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.nodes import EndpointError
from scireflect.graphs.state import initial_state
from scireflect.verifiers import verify_answer
from scireflect.cli.view import view_command
from scireflect.viewer import TraceIndex, diff_html, question_url, serve
from tests.fakes import REFLECTION_LOOP, ScriptedChatModel

FIXTURE = Path(__file__).parent / "fixtures" / "traces" / "sample_run"
LINES = (FIXTURE / "traces.jsonl").read_bytes().splitlines(keepends=True)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def server(run_dir):
    srv = serve(run_dir, 0, poll_ms=200)
    yield srv
    srv.close()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8")


def raw_get(server, path: str, host: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", path, skip_host=host is not None)
    if host is not None:
        conn.putheader("Host", host)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, body


def test_binds_loopback_only_and_serves_the_index(server):
    assert server.server_address[0] == "127.0.0.1" and server.url == f"http://127.0.0.1:{server.port}/"
    status, headers, body = get(server.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    assert 'id="questions"' in body and "/static/katex/katex.min.js" in body and "/static/index.js" in body
    assert 'id="f-status"' in body and 'data-poll-ms="200"' in body
    assert "cdn" not in body.lower() and "https://" not in body


def test_questions_api_rows_and_polling(server, run_dir):
    status, _, body = get(server.url + "api/questions")
    data = json.loads(body)
    assert status == 200 and data["total"] == data["matched"] == 6 and data["reset"] is True and data["in_progress"] == []
    by_id = {r["id"]: r for r in data["rows"]}
    row = by_id["mmlu-hs-chem-0042"]
    assert (row["subject"], row["status"], row["stage"], row["reason"], row["attempts"]) == ("chemistry", "rejected", None, "choice_mismatch", 4)
    assert "rejected" in data["facets"]["status"] and "-" in data["facets"]["stage"]
    gen = data["generation"]
    data = json.loads(get(server.url + f"api/questions?gen={gen}")[2])
    assert data["reset"] is False and data["total"] == 6
    # A run appends a question, the second one is still being written: only the complete one shows.
    extra = json.loads(LINES[0])
    extra["id"] = "math-frac-0002"
    second = dict(extra, id="math-frac-0003")
    with open(run_dir / "traces.jsonl", "ab") as fh:
        fh.write((json.dumps(extra) + "\n").encode() + json.dumps(second).encode()[:50])
    data = json.loads(get(server.url + f"api/questions?gen={gen}&offset=6")[2])
    assert [r["id"] for r in data["rows"]] == ["math-frac-0002"] and data["total"] == 7
    offset = server.index.offset
    assert offset == (run_dir / "traces.jsonl").stat().st_size - 50
    with open(run_dir / "traces.jsonl", "ab") as fh:
        fh.write(json.dumps(second).encode()[50:] + b"\n")
    data = json.loads(get(server.url + f"api/questions?gen={gen}&offset=7")[2])
    assert [r["id"] for r in data["rows"]] == ["math-frac-0003"]
    # The full record is read back from its line.
    assert json.loads(get(server.url + "api/question/math-frac-0003")[2])["steps"] == second["steps"]


def test_questions_api_filters_sorts_and_pages_on_the_server(server):
    def ids(query):
        data = json.loads(get(server.url + "api/questions?" + query)[2])
        return data["matched"], [r["id"] for r in data["rows"]]

    assert ids("status=rejected") == (1, ["mmlu-hs-chem-0042"])
    everything = ids("sort=tokens")[1]
    assert ids("sort=tokens&desc=1")[1] == everything[::-1]
    assert ids("sort=tokens&limit=2&offset=2") == (6, everything[2:4])
    assert ids("q=GSM8K") == (1, ["gsm8k-train-0000"])
    assert ids("stage=-")[0] == sum(1 for line in LINES if json.loads(line).get("accepted_stage") is None)
    assert get(server.url + "api/questions?sort=__class__")[0] == 400
    assert get(server.url + "api/questions?offset=x")[0] == 400
    data = json.loads(get(server.url + "api/questions?limit=100000")[2])
    assert len(data["rows"]) == 6  # the page is capped at MAX_PAGE rows, here all of them


def test_a_rewritten_traces_file_resets_the_client(server, run_dir):
    gen = json.loads(get(server.url + "api/questions")[2])["generation"]
    (run_dir / "traces.jsonl").write_bytes(LINES[3])  # shrank: re-read from the start
    data = json.loads(get(server.url + f"api/questions?gen={gen}")[2])
    assert data["reset"] is True and data["generation"] == gen + 1 and [r["id"] for r in data["rows"]] == ["mmlu-hs-chem-0042"]


def test_trace_index_reads_only_new_bytes(run_dir):
    path = run_dir / "traces.jsonl"
    path.write_bytes(b"")
    index = TraceIndex(run_dir)
    assert index.rows == [] and index.refresh() == 0
    path.write_bytes(LINES[0] + b"not json\n")
    assert index.refresh() == 1 and len(index.problems) == 1
    with open(path, "ab") as fh:
        fh.write(LINES[0] + LINES[1])  # a duplicate id is ignored, as in the runner
    assert index.refresh() == 1 and [r["id"] for r in index.rows] == ["math-frac-0001", "gsm8k-train-0000"]
    assert index.offset == path.stat().st_size
    assert index.record("gsm8k-train-0000") == json.loads(LINES[1]) and index.record("nope") is None
    path.unlink()
    assert index.refresh() == 0 and index.rows == [] and index.generation == 1


def test_trace_index_reads_in_chunks_and_keeps_no_records(run_dir):
    path = run_dir / "traces.jsonl"
    long = json.loads(LINES[0])
    long["id"], long["note"] = "long-line", "x" * 5000  # longer than a chunk: read whole
    path.write_bytes(b"".join(LINES) + (json.dumps(long) + "\n").encode() + b'{"x": 1}\n' + LINES[0][:40])
    index = TraceIndex(run_dir, chunk_bytes=1024)
    assert [r["id"] for r in index.rows] == [json.loads(line)["id"] for line in LINES] + ["long-line"]
    assert index.record("long-line")["note"] == "x" * 5000
    assert index.problems == [f"{path}:{len(LINES) + 2}: not a trace record (no 'id')"]
    assert index.offset == path.stat().st_size - 40  # the line still being written is left for later
    assert not hasattr(index, "records") and "reference" not in index.rows[0]
    # A file replaced by another (a new inode) is not read at the old offsets.
    replaced = run_dir / "other.jsonl"
    replaced.write_bytes(LINES[1])
    os.replace(replaced, path)
    assert index.record("long-line") is None


def test_question_page_has_attempts_verdicts_diffs_and_escapes_model_text(server):
    status, headers, page = get(server.url + "q/mmlu-hs-chem-0042")
    assert status == 200 and "/static/question.js" in page
    assert page.count('<article class="attempt') == 4
    assert "Attempt 1 → attempt 2" in page and "Attempt 3 → attempt 4" in page and page.count('<table class="diff"') == 3
    assert "choice_mismatch" in page and "no_answer" in page and "critique of attempt 1" in page
    assert "answer-guided: the reference answer was shown" in page
    assert "reference answer:" in page and "<li class=\"math\">HCl</li>" in page
    # The model wrote <script>alert('x')</script>: it must arrive escaped, in the attempt and in the diff.
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;" in page.split('<section class="diffs">')[1]


def test_question_page_of_tool_calls_and_errors(server):
    page = get(server.url + "q/math-algebra-0105")[2]
    assert "tool call: <code>python</code>" in page and "sp.solve(x**2 - 5*x + 6, x)" in page and "[2, 3]" in page
    page = get(server.url + "q/scibench-thermo-0003")[2]
    assert "BadRequestError: context length exceeded" in page and "status-error" in page and "Changes between" not in page


def test_question_json_and_404s(server):
    record = json.loads(get(server.url + "api/question/gsm8k-train-0000")[2])
    assert record["n_attempts"] == 3 and len(record["steps"]) == 5
    assert get(server.url + "api/question/nope")[0] == 404
    status, _, body = get(server.url + "q/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert status == 404 and "<img" not in body and "&lt;img" in body
    assert get(server.url + "nowhere")[0] == 404


def test_static_files_and_no_path_traversal(server):
    status, headers, _ = get(server.url + "static/katex/katex.min.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css")
    req = urllib.request.urlopen(server.url + "static/katex/fonts/KaTeX_Main-Regular.woff2", timeout=10)
    assert req.headers["Content-Type"] == "font/woff2" and len(req.read()) > 10_000
    assert raw_get(server, "/static/../server.py")[0] == 404
    assert raw_get(server, "/static/..%2Fserver.py")[0] == 404
    assert raw_get(server, "/static/%2E%2E/%2E%2E/traces.py")[0] == 404


def test_foreign_host_header_is_refused(server):
    assert raw_get(server, "/api/questions", host="evil.example:80")[0] == 403
    assert raw_get(server, "/api/questions", host=f"localhost:{server.port}")[0] == 200


def test_question_ids_with_odd_characters(run_dir):
    record = json.loads(LINES[0])
    record["id"] = "weird/id?&<x>"
    (run_dir / "traces.jsonl").write_text(json.dumps(record) + "\n")
    srv = serve(run_dir, 0)
    try:
        assert question_url("weird/id?&<x>") == "/q/weird%2Fid%3F%26%3Cx%3E"
        status, _, page = get(srv.url.rstrip("/") + question_url("weird/id?&<x>"))
        assert status == 200 and "weird/id?&amp;&lt;x&gt;" in page
    finally:
        srv.close()


def test_diff_html_escapes_and_strips_control_characters():
    table = diff_html("plain\n\0+x", "<b onmouseover=alert(1)>bold</b>\n\1y", "<one>", "two")
    assert "<b " not in table and "onmouseover=a</span>l<span" in table and "ert(1)&gt;bold&lt;/b&gt;" in table
    assert "&lt;one&gt;" in table and "\0" not in table and "\1" not in table
    assert table.count("<span") == table.count("</span>")


async def test_questions_in_progress_come_from_the_checkpoints(run_dir):
    """A run stopped mid-question (endpoint failure) leaves a checkpoint; the viewer lists it as running."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    class Verifier:
        name, version = "answer", "1"

        def verify(self, response, question):
            return verify_answer(response, question)

    response = httpx.Response(401, request=httpx.Request("POST", "http://127.0.0.1:9/v1"), json={})
    models = {"solver": ScriptedChatModel(replies=["48 * 2 = 96, so \\boxed{144}"]),
              "critic": ScriptedChatModel(replies=[openai.AuthenticationError("bad key", response=response, body=None)]),
              "reviser": ScriptedChatModel(replies=[])}
    team = AgentTeam.from_models({r: (m, "m") for r, m in models.items()})
    question = {"id": "live-0001", "subject": "math", "question": "48 and half as many: total?", "answer": "72"}
    async with AsyncSqliteSaver.from_conn_string(str(run_dir / "checkpoints.sqlite")) as saver:
        graph = build_annotation_graph(saver)
        with pytest.raises(EndpointError):
            await graph.ainvoke(initial_state(question, "math"), {"configurable": {"thread_id": "live-0001"}},
                                context=AnnotationContext(agents=team, verify=verify_with(Verifier()), budget=REFLECTION_LOOP))
    srv = serve(run_dir, 0)
    try:
        data = json.loads(get(srv.url + "api/questions")[2])
        assert data["checkpoint_error"] is None
        [running] = data["in_progress"]
        assert running["id"] == "live-0001" and running["status"] == "running" and running["attempts"] == 1
        status, _, page = get(srv.url + "q/live-0001")
        assert status == 200 and 'data-status="running"' in page and "numeric_mismatch" in page and "\\boxed{144}" in page
        # Once its trace line is written, it is no longer "in progress".
        record = json.loads(LINES[0])
        record["id"] = "live-0001"
        with open(run_dir / "traces.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        data = json.loads(get(srv.url + "api/questions")[2])
        assert data["in_progress"] == [] and data["total"] == 7
    finally:
        srv.close()


def test_a_corrupt_checkpoint_db_does_not_break_the_viewer(run_dir):
    (run_dir / "checkpoints.sqlite").write_bytes(b"this is not sqlite" * 100)
    srv = serve(run_dir, 0)
    try:
        data = json.loads(get(srv.url + "api/questions")[2])
        assert data["total"] == 6 and data["in_progress"] == [] and data["checkpoint_error"]
    finally:
        srv.close()


def test_view_command_errors(tmp_path):
    app = typer.Typer()
    app.command("view")(view_command)

    @app.command()
    def other() -> None:
        pass

    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["view", str(tmp_path / "missing"), "--no-browser"])
    assert result.exit_code == 2 and "not a directory" in result.output
    busy = serve(tmp_path, 0)
    try:
        result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["view", str(tmp_path), "--port", str(busy.port), "--no-browser"])
        assert result.exit_code == 2 and "cannot listen" in result.output and "--port 0" in result.output
    finally:
        busy.close()
    with pytest.raises(FileNotFoundError):
        serve(tmp_path / "missing", 0)


def test_bad_static_paths_are_404_and_only_loopback_hosts_of_this_port_are_served(run_dir):
    srv = serve(run_dir, 0)
    try:
        for path in ("/static/app.css%00.js", "/static/%2e%2e/server.py", "/static/../../etc/passwd", "/static/a%0ab.js"):
            status, _ = raw_get(srv, path)
            assert status == 404, path
        assert raw_get(srv, "/static/app.css")[0] == 200
        for host in ("[::1].evil", "localhost:evil", "localhost.evil.com", "127.0.0.1.nip.io", "evil:8765", "localhost:1"):
            assert raw_get(srv, "/", host=host)[0] == 403, host
        for host in ("localhost", "127.0.0.1", f"localhost:{srv.port}", f"127.0.0.1:{srv.port}", f"[::1]:{srv.port}"):
            assert raw_get(srv, "/", host=host)[0] == 200, host
    finally:
        srv.close()


@pytest.mark.timeout(60)
def test_long_attempts_diff_by_lines_and_very_long_ones_are_not_diffed():
    from scireflect.viewer.pages import MAX_DIFF_LINES

    before = "\n".join(f"Step {i}: 12 * {i} = {12 * i}" for i in range(1000))
    after = before.replace("Step 500: 12 * 500 = 6000", "Step 500: 12 * 500 = 6100 <b>")
    table = diff_html(before, after, "attempt 1", "attempt 2")  # difflib.HtmlDiff did not finish this
    assert table.count("<tr>") == 1001 and "6<span class=\"diff_chg\">1</span>00" in table and "&lt;b&gt;" in table
    huge = "\n".join(["x"] * (MAX_DIFF_LINES + 1))
    assert "too long to diff" in diff_html(huge, huge + "y", "attempt 1", "attempt 2")
