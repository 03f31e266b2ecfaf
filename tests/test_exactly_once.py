"""Exactly once across processes: group-committed traces, shard leases (fencing), and ``scireflect merge``."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scireflect.cli import app
from scireflect.graphs.budget import Budget
from scireflect.run.config import LLMSettings, RunSettings
from scireflect.rundata.questions import load_questions, select_shard
from scireflect.run.runner import annotate
from scireflect.run.lease import LeaseLost, ShardLease
from scireflect.rundata.store import TraceStore
from scireflect.testing.mock_openai import MockOpenAI
from tests.test_scale_out import write_questions


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_group_commit_writes_every_line_once_in_fewer_fsyncs(tmp_path):
    store = TraceStore(tmp_path / "traces.jsonl")
    results = await asyncio.gather(*(store.append({"id": f"q{i % 40}", "n": i}) for i in range(60)))
    assert sum(results) == 40  # the 20 repeated ids are refused, even while their first line is queued
    assert 1 <= store.commits < 40  # lines finished together share one write + fsync
    assert [r["id"] for r in lines(store.path)] == [f"q{i}" for i in range(40)]
    assert TraceStore(store.path).records.keys() == store.records.keys()


async def test_a_superseded_lease_holder_cannot_commit(tmp_path):
    lease = ShardLease(tmp_path / "shards" / "3")
    first = lease.grant()
    lease.accept(first)
    assert lease.holder()[0] == first and lease.holder()[1] > 0
    store = TraceStore(tmp_path / "traces.jsonl", fence=lease.fence(first))
    assert await store.append({"id": "a"})
    second = lease.grant()  # the driver presumed the holder dead and gave the shard to a new worker
    assert second == first + 1
    with pytest.raises(LeaseLost, match="superseded"):
        await store.append({"id": "b"})
    with pytest.raises(LeaseLost):
        lease.accept(first)  # the old holder cannot take the shard back either
    assert [r["id"] for r in lines(store.path)] == ["a"]  # nothing of the zombie's commit was written
    newer = TraceStore(store.path, fence=lease.fence(second))
    assert await newer.append({"id": "b"})


async def test_merge_commits_hand_made_shards_once_and_refuses_conflicts(tmp_path):
    questions = load_questions(write_questions(tmp_path / "q.jsonl", 12))
    with MockOpenAI() as mock:
        llm = LLMSettings(base_url=mock.base_url, model=mock.model)
        settings = RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, budget=Budget(max_attempts=2, max_reflections=1))
        for k in range(3):  # what three `scireflect annotate --shard K/3` processes leave
            await annotate(select_shard(questions, f"{k}/3"), tmp_path / f"s{k}", settings)
    merged = tmp_path / "merged"
    result = CliRunner().invoke(app, ["merge", *(str(tmp_path / f"s{k}") for k in range(3)), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    ids = [r["id"] for r in lines(merged / "traces.jsonl")]
    assert sorted(ids) == [f"s{i:03d}" for i in range(12)]
    assert sorted(r["id"] for r in lines(merged / "sft.jsonl")) == sorted(r["id"] for r in lines(merged / "traces.jsonl")
                                                                           if r["status"] == "accepted")
    assert json.loads((merged / "summary.json").read_text())["all"]["questions"] == 12
    assert [run["merged_from"] for run in json.loads((merged / "run.json").read_text())["runs"]] == [str(tmp_path / f"s{k}") for k in range(3)]
    assert "12 questions merged now (0 already there)" in result.output

    again = CliRunner().invoke(app, ["merge", str(tmp_path / "s0"), str(tmp_path / "s0"), "--out", str(merged)])
    assert again.exit_code == 0 and "0 questions merged now" in again.output
    assert len(lines(merged / "traces.jsonl")) == 12

    # Another annotation of one question (a shard run twice by hand) is a conflict: nothing is written.
    shutil.copytree(tmp_path / "s1", tmp_path / "s1-again")
    redo = tmp_path / "s1-again" / "traces.jsonl"
    records = lines(redo)
    records[0]["steps"][0]["latency_s"] += 1.0
    redo.write_text("".join(json.dumps(r) + "\n" for r in records))
    before = (merged / "traces.jsonl").read_bytes()
    clash = CliRunner().invoke(app, ["merge", str(tmp_path / "s1-again"), "--out", str(merged)])
    assert clash.exit_code == 1
    assert f"question '{records[0]['id']}'" in clash.output and "hold different records" in clash.output
    assert str(redo) in clash.output.replace("\n", "")
    assert (merged / "traces.jsonl").read_bytes() == before


def test_ray_flag_without_ray_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    questions = write_questions(tmp_path / "q.jsonl", 2)
    result = CliRunner().invoke(app, ["annotate", str(questions), "--out", str(tmp_path / "run"), "--ray", "auto"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --ray needs Ray: pip install 'scireflect[ray]'"
    assert not (tmp_path / "run").exists()
