"""A run on a two-node Ray cluster survives a lost worker node, a killed actor and a killed driver,
with every question exactly once and no new model call for a finished one.

Each test re-executes ``tests/ray_cluster_run.py`` in a network namespace of its own with only
loopback up (:mod:`scireflect.testing.netns`): there Ray, which otherwise advertises the host's
interface address, uses 127.0.0.1, so the cluster, the mock endpoint and PostgreSQL (on a unix
socket) talk over loopback only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scireflect.testing.netns import loopback_only, why_no_netns

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
HELPER = Path(__file__).with_name("ray_cluster_run.py")
ROOT = HELPER.parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_no_netns() is not None, reason=f"no loopback-only namespace: {why_no_netns()}")]


def run_scenario(tmp_path: Path, fault: str, *extra: str) -> dict:
    report = tmp_path / "report.json"
    done = subprocess.run(loopback_only([sys.executable, str(HELPER), "--fault", fault, "--report", str(report), *extra]),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and report.exists(), done.stderr[-3000:]
    return json.loads(report.read_text())


def check_exactly_once(r: dict, *, first_finished: bool = True) -> None:
    every = sorted(f"c{i:03d}" for i in range(r["n_questions"]))
    assert sorted(r["traces_ids"]) == every, r["again"]["stderr"][-2000:]  # each id once in traces.jsonl
    assert sorted(r["sft_ids"]) == every  # the mock's answers are all accepted, some answer-guided
    assert r["again"]["rc"] == 0, r["again"]["stderr"][-2000:]
    if first_finished:
        assert r["counts_final"] == r["counts_after_first"]  # the re-run of a finished run calls no model
    assert r["finished_at_fault"], "the fault should strike after some questions finished"
    for qid in r["finished_at_fault"]:  # a finished question makes no new model call after the fault
        assert r["counts_final"].get(qid[1:]) == r["counts_at_fault"].get(qid[1:]), qid
    assert len(r["finished_at_fault"]) < r["n_questions"], "the fault should strike mid-run"
    assert not r["shards_left"]  # every question committed: the shard directories are gone


def test_a_lost_worker_node_is_replaced_and_every_question_lands_once(tmp_path):
    r = run_scenario(tmp_path, "kill-node")
    assert r["first"]["rc"] == 0, r["first"]["stderr"][-3000:]
    assert "worker unreachable" in r["first"]["stderr"] or "worker lost" in r["first"]["stderr"]
    check_exactly_once(r)


def test_a_killed_actor_restarts_its_shard_from_its_checkpoints(tmp_path):
    r = run_scenario(tmp_path, "kill-actor")
    assert r["first"]["rc"] == 0, r["first"]["stderr"][-3000:]
    assert "worker lost" in r["first"]["stderr"] or "worker unreachable" in r["first"]["stderr"]
    check_exactly_once(r)


def test_a_killed_driver_loses_nothing_and_the_rerun_commits_the_shards(tmp_path):
    r = run_scenario(tmp_path, "kill-driver")
    assert r["first"]["rc"] == -9
    check_exactly_once(r, first_finished=False)


def test_postgres_checkpoints_a_lost_worker_node_and_every_question_lands_once(tmp_path):
    pytest.importorskip("langgraph.checkpoint.postgres", reason="the postgres extra is not installed")
    from scireflect.testing.postgres import postgres_bin

    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)")
    r = run_scenario(tmp_path, "kill-node", "--postgres")
    assert r["first"]["rc"] == 0, r["first"]["stderr"][-3000:]
    check_exactly_once(r)
