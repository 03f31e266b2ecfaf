"""A crafted checkpoints.sqlite must never run code: not in the viewer, not on resume (issue 14, item 1).

LangGraph's default serializer imports and calls whatever a msgpack extension value names. The
payload planted here names ``os.system``; the positive control shows it runs under the default
serializer, and the tests show it does not under scireflect's readers.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from pathlib import Path

import httpx
import openai
import ormsgpack
import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from scireflect.rundata.checkpoints import CheckpointRejected, PlainDataSerializer, read_in_progress
from scireflect.run.config import RunSettings
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.graphs.nodes import EndpointError
from tests.fakes import REFLECTION_LOOP
from tests.test_graph import CRITIQUE, RIGHT, WRONG, ExactBoxedVerifier
from tests.test_runner import questions_file, scripted_team

EXT_CONSTRUCTOR_POS_ARGS = 1  # langgraph.checkpoint.serde.jsonplus: (module, name, args) -> module.name(*args)


def _payload(marker: Path) -> ormsgpack.Ext:
    return ormsgpack.Ext(EXT_CONSTRUCTOR_POS_ARGS, ormsgpack.packb(["os", "system", [f"touch {marker}"]]))


def plant(db: Path, marker: Path) -> int:
    """Put an ``os.system`` constructor into the question of every checkpoint in ``db``; returns the rows changed."""
    conn = sqlite3.connect(db)
    changed = 0
    for rowid, blob in conn.execute("SELECT rowid, checkpoint FROM checkpoints WHERE type = 'msgpack'").fetchall():
        checkpoint = ormsgpack.unpackb(blob, ext_hook=lambda code, data: ormsgpack.Ext(code, data),
                                       option=ormsgpack.OPT_NON_STR_KEYS)
        if "question" in checkpoint["channel_values"]:
            checkpoint["channel_values"]["question"]["source"] = _payload(marker)
            conn.execute("UPDATE checkpoints SET checkpoint = ? WHERE rowid = ?", (ormsgpack.packb(checkpoint), rowid))
            changed += 1
    conn.commit()
    conn.close()
    return changed


async def interrupted_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run directory whose one question stopped after its first verdict (the critic's key was rejected)."""
    response = httpx.Response(401, request=httpx.Request("POST", "http://127.0.0.1:9/v1"), json={})
    team, _ = scripted_team([WRONG], [openai.AuthenticationError("bad key", response=response, body=None)])
    questions = questions_file(tmp_path, 1)
    with pytest.raises(EndpointError):
        await annotate(load_questions(questions), tmp_path / "run", RunSettings(budget=REFLECTION_LOOP, concurrency=1), team=team,
                       verifier=ExactBoxedVerifier())
    return tmp_path / "run", questions


async def test_the_planted_payload_runs_under_langgraphs_default_serializer(tmp_path):
    """Positive control: the payload is real (this is what the readers below must not do)."""
    run_dir, _ = await interrupted_run(tmp_path)
    marker = tmp_path / "pwned-default"
    assert plant(run_dir / "checkpoints.sqlite", marker) >= 1
    [blob] = sqlite3.connect(run_dir / "checkpoints.sqlite").execute(
        "SELECT checkpoint FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1").fetchone()
    JsonPlusSerializer().loads_typed(("msgpack", blob))
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointRejected, match="extension value"):
        PlainDataSerializer().loads_typed(("msgpack", blob))
    assert not marker.exists()


async def test_the_viewer_reports_and_ignores_a_planted_checkpoint(tmp_path):
    from scireflect.viewer import serve

    run_dir, _ = await interrupted_run(tmp_path)
    marker = tmp_path / "pwned-view"
    plant(run_dir / "checkpoints.sqlite", marker)
    states, rejected = read_in_progress(run_dir / "checkpoints.sqlite")
    assert states == {} and len(rejected) == 1 and "q0" in rejected[0] and not marker.exists()
    server = serve(run_dir, 0)
    try:  # the page's own polling endpoint
        with urllib.request.urlopen(server.url + "api/questions") as reply:
            data = json.loads(reply.read())
    finally:
        server.close()
    assert data["in_progress"] == [] and "extension value" in data["checkpoint_rejected"][0]
    assert not marker.exists()


async def test_resume_ignores_a_planted_checkpoint_and_redoes_the_question(tmp_path):
    run_dir, questions = await interrupted_run(tmp_path)
    marker = tmp_path / "pwned-resume"
    plant(run_dir / "checkpoints.sqlite", marker)
    team, models = scripted_team([WRONG], [CRITIQUE], [RIGHT])
    events = []
    result = await annotate(load_questions(questions), run_dir, RunSettings(budget=REFLECTION_LOOP, concurrency=1), team=team,
                            verifier=ExactBoxedVerifier(), on_event=lambda kind, data: events.append((kind, data)))
    assert not marker.exists()
    warnings = [d["message"] for k, d in events if k == "warning"]
    assert any("q0" in w and "question restarts" in w for w in warnings)
    assert result.summary["all"].accepted == 1 and len(models["solver"].calls) == 1  # restarted from the solver
    assert [json.loads(line)["id"] for line in (run_dir / "traces.jsonl").read_text().split("\n") if line] == ["q0"]


@pytest.mark.parametrize("metadata", [ormsgpack.packb({"step": 1, "source": "loop"}), b'{"step": ', '{"step": ', b"[1, 2]"],
                         ids=["msgpack-bytes", "cut-json-bytes", "cut-json-text", "not-a-mapping"])
async def test_resume_reports_a_malformed_checkpoint_row_and_restarts_the_question(tmp_path, metadata):
    """Issue 25, finding 3: a checkpoint row whose metadata is not JSON crashed every resume with a
    traceback until checkpoints.sqlite was deleted by hand; the question is now reported and restarts."""
    run_dir, questions = await interrupted_run(tmp_path)
    db = run_dir / "checkpoints.sqlite"
    with sqlite3.connect(db) as conn:
        assert conn.execute("UPDATE checkpoints SET metadata = ?", (metadata,)).rowcount >= 1
    states, rejected = read_in_progress(db)
    assert states == {} and len(rejected) == 1 and "'q0'" in rejected[0] and "malformed" in rejected[0]
    team, models = scripted_team([WRONG], [CRITIQUE], [RIGHT])
    events = []
    result = await annotate(load_questions(questions), run_dir, RunSettings(budget=REFLECTION_LOOP, concurrency=1), team=team,
                            verifier=ExactBoxedVerifier(), on_event=lambda kind, data: events.append((kind, data)))
    warnings = [d["message"] for k, d in events if k == "warning"]
    assert any("q0" in w and "malformed" in w and "question restarts" in w for w in warnings), warnings
    assert result.summary["all"].accepted == 1 and len(models["solver"].calls) == 1  # restarted from the solver
    assert [json.loads(line)["id"] for line in (run_dir / "traces.jsonl").read_text().split("\n") if line] == ["q0"]


async def test_a_normal_run_resumes_through_the_plain_data_serializer(tmp_path):
    """The state the graph writes is plain data: an interrupted question resumes without redoing its solver call."""
    run_dir, questions = await interrupted_run(tmp_path)
    team, models = scripted_team([], [CRITIQUE], [RIGHT])
    result = await annotate(load_questions(questions), run_dir, RunSettings(budget=REFLECTION_LOOP, concurrency=1), team=team, verifier=ExactBoxedVerifier())
    assert result.summary["all"].accepted_reflection == 1 and not models["solver"].calls


class FullDisk:
    """A saver's SQLite connection whose commits fail, as on a full disk."""

    def __init__(self, conn):
        self.conn = conn

    def commit(self):
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name):
        return getattr(self.conn, name)


async def test_checkpoint_writes_of_one_loop_turn_share_one_commit(tmp_path):
    """The run's saver commits once per event-loop turn: what many questions wrote in that turn is
    committed together, visible to another connection (the viewer's) right after it, and whatever
    is pending when the run ends is committed on close."""
    import asyncio

    from langgraph.checkpoint.base import empty_checkpoint

    from scireflect.rundata.checkpoints import open_checkpointer

    path = tmp_path / "checkpoints.sqlite"
    commits: list[str] = []

    def threads_seen_elsewhere() -> set[str]:
        with sqlite3.connect(path) as other:
            return {row[0] for row in other.execute("SELECT DISTINCT thread_id FROM checkpoints")}

    async with open_checkpointer(path) as saver:
        saver.conn.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
        for i in range(5):  # five questions checkpoint in the same turn
            config = {"configurable": {"thread_id": f"q{i}", "checkpoint_ns": ""}}
            await saver.aput(config, empty_checkpoint(), {"step": 0}, {})
        assert threads_seen_elsewhere() == set() and commits == []  # not yet: the turn has not ended
        await asyncio.sleep(0)
        assert threads_seen_elsewhere() == {f"q{i}" for i in range(5)} and len(commits) == 1
        await saver.adelete_thread("q0")  # pending when the saver closes
    assert threads_seen_elsewhere() == {f"q{i}" for i in range(1, 5)}


async def test_a_failed_checkpoint_commit_is_raised_by_the_next_write(tmp_path):
    from langgraph.checkpoint.base import empty_checkpoint

    from scireflect.rundata.checkpoints import open_checkpointer

    import asyncio

    config = {"configurable": {"thread_id": "q", "checkpoint_ns": ""}}
    async with open_checkpointer(tmp_path / "checkpoints.sqlite") as saver:
        real = saver.conn
        saver.conn = FullDisk(real)
        await saver.aput(config, empty_checkpoint(), {"step": 0}, {})
        await asyncio.sleep(0)  # the scheduled commit fails in the loop, with no caller to tell
        saver.conn = real
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            await saver.aput(config, empty_checkpoint(), {"step": 1}, {})
        await saver.aput(config, empty_checkpoint(), {"step": 2}, {})  # told once; the saver goes on


async def test_a_failed_last_commit_at_close_is_raised(tmp_path):
    """The commit made as the saver closes has a caller to tell: it raises, never passes silently."""
    from langgraph.checkpoint.base import empty_checkpoint

    from scireflect.rundata.checkpoints import open_checkpointer

    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        async with open_checkpointer(tmp_path / "checkpoints.sqlite") as saver:
            await saver.aput({"configurable": {"thread_id": "q", "checkpoint_ns": ""}}, empty_checkpoint(), {"step": 0}, {})
            saver.conn = FullDisk(saver.conn)  # the write is pending; the commit on close fails
