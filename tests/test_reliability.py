"""Reliability against a faulty endpoint and against kills (issue: fault injection, crash-resume).

Both tests run the real runner with ``ChatOpenAI`` against the loopback fault-injecting mock server.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from scireflect.run.config import LLMSettings, RunSettings
from scireflect.graphs.budget import Budget
from scireflect.graphs.nodes import EndpointError
from scireflect.testing.mock_openai import FaultPlan, MockOpenAI
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate


def make_questions(path: Path, n: int) -> Path:
    rows = [{"id": f"r{i:03d}", "subject": ["math", "physics", "chemistry"][i % 3],
             "question": f"Item {i:03d}: compute the value.", "answer": "42" if i % 4 else str(i)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def wait_for_new_trace(traces: Path, n_before: int, proc: subprocess.Popen, deadline_s: float) -> None:
    """Wait until ``traces`` holds more than ``n_before`` records, ``proc`` exits, or ``deadline_s`` passes."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and proc.poll() is None:
        if traces.exists() and len(read_ids(traces)) > n_before:
            return
        time.sleep(0.05)


async def test_twenty_percent_faults_every_question_accounted_for(tmp_path):
    questions = load_questions(make_questions(tmp_path / "q.jsonl", 40))
    faults = FaultPlan(rate=0.2, seed=3, retry_after_s=0.01, hang_s=4.0)
    with MockOpenAI(latency_s=0.01, faults=faults) as mock:
        llm = LLMSettings(base_url=mock.base_url, model=mock.model, request_timeout_s=3.0, max_retries=4, retry_backoff_s=0.02)
        settings = RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, concurrency=8,
                               budget=Budget(max_attempts=3, max_reflections=1))
        result = await annotate(questions, tmp_path / "run", settings)
        fault_counts = dict(mock.stats.faults)
    records = [json.loads(line) for line in (tmp_path / "run" / "traces.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == sorted(q["id"] for q in questions.questions)
    assert set(fault_counts) == {"rate_limit", "server_error", "hang", "drop", "truncated", "non_json", "empty"}
    statuses = Counter(r["status"] for r in records)
    assert statuses["accepted"] >= 36, statuses  # with 4 retries, a 20% fault rate rarely sinks a call
    failures = [f for r in records for s in r["steps"] for f in s["transport_failures"]]
    assert len(failures) >= sum(fault_counts.values()) * 0.9  # each fault is recorded where it hit
    kinds = Counter(f["kind"] for f in failures)
    assert {"rate_limit", "server_error", "timeout", "connection", "bad_body", "empty"} <= set(kinds), kinds
    assert result.summary["all"].questions == 40


async def test_endpoint_down_stops_the_run_and_keeps_the_rest_pending(tmp_path):
    questions = load_questions(make_questions(tmp_path / "q.jsonl", 12))
    with MockOpenAI(faults=FaultPlan(rate=1.0, kinds=("server_error",))) as mock:
        llm = LLMSettings(base_url=mock.base_url, model=mock.model, max_retries=1, retry_backoff_s=0.0)
        settings = replace(RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, concurrency=1),
                           abort_after_transport_errors=3)
        with pytest.raises(EndpointError, match="3 questions in a row failed on the endpoint"):
            await annotate(questions, tmp_path / "run", settings)
    # Two questions are recorded as errors; the third (which tripped the breaker) and the rest stay pending.
    records = [json.loads(line) for line in (tmp_path / "run" / "traces.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["error", "error"]
    assert records[0]["error_kind"] == "transport" and "failed after 2 tries" in records[0]["stop_reason"]
    assert [f["kind"] for f in records[0]["steps"][0]["transport_failures"]] == ["server_error", "server_error"]


@pytest.mark.slow  # kills and restarts the CLI twenty times (about a minute)
def test_twenty_random_kills_then_resume_every_question_exactly_once(tmp_path, spawn):
    # Enough work (100 questions, 0.25 s a call, 4 at a time) that most of the twenty kills land mid-run: each
    # of those waits for the process's first finished question, so start-up time does not matter. A finished
    # question must never call the model again, and the last resume finishes the rest.
    n_questions = 100
    questions = make_questions(tmp_path / "q.jsonl", n_questions)
    run_dir = tmp_path / "run"
    traces = run_dir / "traces.jsonl"
    rng = random.Random(20261123)
    env = dict(os.environ, OPENAI_API_KEY="test")
    kills_mid_run = 0
    with MockOpenAI(latency_s=0.25) as mock:
        cmd = [sys.executable, "-m", "scireflect.cli", "annotate", str(questions), "--out", str(run_dir),
               "--base-url", mock.base_url, "--model", mock.model, "--concurrency", "4",
               "--budget", "attempts=3,reflections=1"]
        for kill in range(20):
            done_before = set(read_ids(traces)) if traces.exists() else set()
            n_requests = len(mock.requests)
            proc = spawn(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if kill % 4 == 3:  # some kills land before any work: while the interpreter imports (~1.5 s)
                time.sleep(rng.uniform(0.2, 1.2))
            else:  # the rest shortly after this process has finished its first question, whatever start-up costs
                wait_for_new_trace(traces, len(done_before), proc, deadline_s=60)
                time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            done_after = set(read_ids(traces)) if traces.exists() else set()
            kills_mid_run += len(done_before) < len(done_after) < n_questions
            later = "\n".join(m["content"] for req in mock.requests[n_requests:] for m in req)
            for qid in done_before:  # a finished question never calls the model again
                assert f"Item {qid[1:]}:" not in later, (kill, qid)
            assert sorted(done_after) == sorted(read_ids(traces)) if traces.exists() else True  # no duplicates
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
    ids = read_ids(traces)
    assert kills_mid_run >= 5, kills_mid_run  # the kills really interrupted work in progress
    assert len(ids) == n_questions and len(set(ids)) == n_questions  # every question exactly once
    assert traces.read_bytes().endswith(b"\n")
