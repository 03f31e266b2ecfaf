"""LangGraph checkpoints in PostgreSQL (``--checkpoints postgresql://...``): resume, one schema per run,
crafted rows refused, and kill-and-resume exactly once. Each module run starts its own PostgreSQL
server in a temporary directory, on a unix socket, as a non-root user (scireflect.testing.postgres)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import openai
import ormsgpack
import pytest

from scireflect.graphs.nodes import EndpointError
from scireflect.run.config import RunSettings
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.testing.mock_openai import MockOpenAI
from scireflect.testing.postgres import TempPostgres, postgres_bin
from tests.test_checkpoint_safety import _payload
from tests.fakes import REFLECTION_LOOP
from tests.test_graph import CRITIQUE, RIGHT, WRONG, ExactBoxedVerifier
from tests.test_runner import questions_file, scripted_team

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed (pip install -e '.[postgres]')")
pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed (apt-get install postgresql)")


@pytest.fixture(scope="module")
def pg():
    with TempPostgres() as server:
        yield server


def rejected_key() -> openai.AuthenticationError:
    response = httpx.Response(401, request=httpx.Request("POST", "http://127.0.0.1:9/v1"), json={})
    return openai.AuthenticationError("bad key", response=response, body=None)


async def interrupted(tmp_path, url):
    """A run whose one question stopped after its first verdict (the critic's key was rejected)."""
    team, _ = scripted_team([WRONG], [rejected_key()])
    questions = questions_file(tmp_path, 1)
    with pytest.raises(EndpointError):
        await annotate(load_questions(questions), tmp_path / "run", RunSettings(budget=REFLECTION_LOOP, concurrency=1, checkpoints=url), team=team,
                       verifier=ExactBoxedVerifier())
    run_id = json.loads((tmp_path / "run" / "run.json").read_text())["run_id"]
    return questions, f"scireflect_{run_id}"


async def test_an_interrupted_question_resumes_from_postgres_in_its_runs_schema(tmp_path, pg):
    questions, schema = await interrupted(tmp_path, pg.url)
    with psycopg.connect(pg.url) as conn:
        threads = conn.execute(f"SELECT DISTINCT thread_id FROM {schema}.checkpoints").fetchall()
    assert threads == [("q0",)]
    assert not (tmp_path / "run" / "checkpoints.sqlite").exists()
    # Another run directory with the same question id has a schema of its own: it starts afresh.
    other = tmp_path / "other"
    other.mkdir()
    team2, models2 = scripted_team([RIGHT])
    await annotate(load_questions(questions), other / "run", RunSettings(budget=REFLECTION_LOOP, concurrency=1, checkpoints=pg.url), team=team2,
                   verifier=ExactBoxedVerifier())
    assert len(models2["solver"].calls) == 1
    # The interrupted run resumes at its checkpoint: no new solver call, and its checkpoints go once committed.
    team, models = scripted_team([], [CRITIQUE], [RIGHT])
    result = await annotate(load_questions(questions), tmp_path / "run", RunSettings(budget=REFLECTION_LOOP, concurrency=1, checkpoints=pg.url), team=team,
                            verifier=ExactBoxedVerifier())
    assert result.summary["all"].accepted_reflection == 1 and not models["solver"].calls
    with psycopg.connect(pg.url) as conn:
        assert conn.execute(f"SELECT count(*) FROM {schema}.checkpoints").fetchone() == (0,)


async def test_the_checkpoint_url_is_recorded_without_its_password(tmp_path, pg):
    url = pg.url.replace("postgresql:///", "postgresql://scireflect:s3cret@/")  # trust auth ignores the password
    team, _ = scripted_team([RIGHT])
    await annotate(load_questions(questions_file(tmp_path, 1)), tmp_path / "run", RunSettings(budget=REFLECTION_LOOP, concurrency=1, checkpoints=url),
                   team=team, verifier=ExactBoxedVerifier())
    manifest = (tmp_path / "run" / "run.json").read_text()
    assert "s3cret" not in manifest and json.loads(manifest)["runs"][-1]["settings"]["checkpoints"].startswith("postgresql://***@")


async def test_a_crafted_postgres_checkpoint_is_refused_never_run(tmp_path, pg):
    questions, schema = await interrupted(tmp_path, pg.url)
    marker = tmp_path / "pwned-pg"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        planted = conn.execute(f"UPDATE {schema}.checkpoint_blobs SET blob = %s WHERE channel = 'question' AND type = 'msgpack'",
                               (ormsgpack.packb({"id": "q0", "source": _payload(marker)}),)).rowcount
    assert planted >= 1
    team, models = scripted_team([WRONG], [CRITIQUE], [RIGHT])
    events = []
    result = await annotate(load_questions(questions), tmp_path / "run", RunSettings(budget=REFLECTION_LOOP, concurrency=1, checkpoints=pg.url), team=team,
                            verifier=ExactBoxedVerifier(), on_event=lambda kind, data: events.append((kind, data)))
    assert not marker.exists()
    assert any(k == "warning" and "q0" in d["message"] and "question restarts" in d["message"] for k, d in events)
    assert result.summary["all"].accepted == 1 and len(models["solver"].calls) == 1  # restarted from the solver


@pytest.mark.slow  # starts and kills the CLI
def test_a_killed_run_resumes_exactly_once_from_postgres_checkpoints(tmp_path, pg):
    rows = [{"id": f"p{i}", "subject": "math", "question": f"Question number {i}: what is 40 + 2?", "answer": "42" if i % 3 else "41"}
            for i in range(12)]
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    traces = tmp_path / "run" / "traces.jsonl"
    with MockOpenAI(latency_s=0.15) as mock:
        cmd = [sys.executable, "-m", "scireflect.cli", "annotate", str(path), "--out", str(tmp_path / "run"), "--base-url", mock.base_url,
               "--model", mock.model, "--concurrency", "3", "--checkpoints", pg.url]
        env = dict(os.environ, OPENAI_API_KEY="test")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not traces.exists() or traces.read_bytes().count(b"\n") < 3):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = {json.loads(line)["id"] for line in traces.read_text().splitlines() if line.strip()}
        assert 3 <= len(done_before) < 12, "the kill should land mid-run"
        counts_before = mock.request_counts(r"Question number (\d+):")
        finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        counts_after = mock.request_counts(r"Question number (\d+):")
    ids = [json.loads(line)["id"] for line in traces.read_text().splitlines() if line.strip()]
    assert sorted(ids) == sorted(r["id"] for r in rows)
    for qid in done_before:
        assert counts_after[qid[1:]] == counts_before[qid[1:]], qid
