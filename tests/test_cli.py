"""``scireflect annotate`` through the CLI against a loopback OpenAI-compatible mock server.

Covers the run directory (traces, SFT pairs, summary), resume, kill-and-resume, and the clear
errors (malformed input before any model call, unreachable endpoint, unknown model, bad config).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scireflect.cli import app
from scireflect.testing.mock_openai import MockOpenAI

ROWS = [
    {"id": "q1", "subject": "math", "question": "What is six times seven?", "answer": "42"},
    {"id": "q2", "subject": "physics", "question": "A 2 kg mass moves at 3 m/s. What is its momentum?", "answer": "6", "unit": "$\\mathrm{kg\\,m/s}$"},
    {"id": "q3", "subject": "chemistry", "question": "What is the answer to everything?", "answer": "42"},
    {"id": "q4", "subject": "math", "question": "Which is prime?", "choices": ["4", "7", "9", "15"], "answer": "B"},
]


def write_questions(path: Path, rows=ROWS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture()
def mock():
    with MockOpenAI() as server:
        yield server


def invoke(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args), catch_exceptions=False)  # content, not width: see test_terminal_width


def test_annotate_writes_traces_sft_and_summary(tmp_path, mock):
    questions = write_questions(tmp_path / "q.jsonl")
    run_dir = tmp_path / "run"
    result = invoke("annotate", str(questions), "--out", str(run_dir), "--base-url", mock.base_url,
                    "--model", "mock-model", "--budget", "attempts=3,reflections=1")
    assert result.exit_code == 0, result.output
    traces = {r["id"]: r for r in read_jsonl(run_dir / "traces.jsonl")}
    assert set(traces) == {"q1", "q2", "q3", "q4"}
    assert traces["q1"]["status"] == "accepted" and traces["q1"]["accepted_stage"] == "cot"
    # q2: wrong at CoT (42), critique, wrong revision, then answer-guided derivation of 6.
    q2 = traces["q2"]
    assert q2["status"] == "accepted" and q2["accepted_stage"] == "answer_guided"
    assert [(s["role"], s["stage"]) for s in q2["steps"]] == [
        ("solver", "cot"), ("critic", "reflection"), ("reviser", "reflection"), ("reviser", "answer_guided")]
    assert [s["verdict"]["ok"] if s["verdict"] else None for s in q2["steps"]] == [False, None, False, True]
    assert q2["steps"][0]["verdict"]["reason"] == "numeric_mismatch"
    assert "kg m/s" in q2["steps"][0]["messages"][1]["content"]  # the unit instruction
    assert traces["q4"]["accepted_stage"] == "answer_guided"
    assert all(s["model"] == "mock-model" and s["input_tokens"] > 0 for r in traces.values() for s in r["steps"])

    sft = {p["id"]: p for p in read_jsonl(run_dir / "sft.jsonl")}
    assert set(sft) == {"q1", "q2", "q3", "q4"}
    assert sft["q2"]["stage"] == "answer_guided" and "correct final answer" not in sft["q2"]["prompt"]
    assert sft["q1"]["messages"][1]["content"].endswith("\\boxed{42}")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["all"]["accepted_cot"] == 2 and summary["all"]["accepted_answer_guided"] == 2
    assert summary["physics"]["questions"] == 1
    assert "scireflect annotate" in result.output and "4 annotated now" in result.output
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["runs"][0]["settings"]["roles"]["solver"]["model"] == "mock-model"

    # Re-running the finished run makes no model call and keeps every question once.
    before = len(mock.requests)
    again = invoke("annotate", str(questions), "--out", str(run_dir), "--base-url", mock.base_url, "--model", "mock-model")
    assert again.exit_code == 0, again.output
    assert len(mock.requests) == before
    assert "0 annotated now, 4 already done" in again.output
    assert len(read_jsonl(run_dir / "traces.jsonl")) == 4


def test_malformed_line_stops_before_any_model_call(tmp_path, mock):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n" + '{"id": "q3", "question": "x"\n')
    result = invoke("annotate", str(path), "--out", str(tmp_path / "run"), "--base-url", mock.base_url, "--model", "mock-model")
    assert result.exit_code == 2
    assert f"{path}:3: not valid JSON" in result.output
    assert mock.requests == []
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("line, message", [
    ('{"id": "q3", "question": "x?", "answer": "1", "meta": ' + "[" * 300 + "]" * 300 + "}", "lists or objects nested more than 32 levels"),
    ('{"id": "q3", "question": "x?", "answer": "1", "meta": ' + "[" * 5000 + "]" * 5000 + "}", "lists or objects nested too deeply"),
    ('{"id": "q3", "question": "x?", "answer": ' + "7" * 5000 + "}", "not readable JSON (an integer of more than 4300 digits)"),
    (json.dumps({"id": "q3", "question": "x?", "answer": "1", "images": ["fig\0.png"]}),
     "image 1 ('fig\\x00.png'): the path holds a NUL character"),
], ids=["depth-300", "depth-5000", "5000-digit-answer", "nul-in-image-path"])
def test_a_bad_row_gets_one_file_line_error_before_any_model_call(tmp_path, mock, line, message):
    """Issue 25, findings 4 and 7: a bad row is named by file and line, with its real cause, in
    one line; no traceback, no model call, no run directory."""
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n" + line + "\n")
    result = invoke("annotate", str(path), "--out", str(tmp_path / "run"), "--base-url", mock.base_url, "--model", "mock-model")
    assert result.exit_code == 2, result.output
    [error] = [ln for ln in result.output.splitlines() if ln.strip()]
    assert error.startswith(f"error: {path}:3: ") and message in error and "--shard" not in error, result.output
    assert mock.requests == [] and not (tmp_path / "run").exists()


def test_credentials_in_the_base_url_are_refused_at_preflight(tmp_path, mock):
    """Issue 25, finding 8: http://user:pass@host/v1 passed the preflight, then every call failed
    ("Cannot combine AUTHORIZATION header with AUTH argument"), retried 5 times as if transient.
    It is now refused before any call, with the URL redacted."""
    questions = write_questions(tmp_path / "q.jsonl")
    url = mock.base_url.replace("http://", "http://alice:s3cret@")
    result = invoke("annotate", str(questions), "--out", str(tmp_path / "run"), "--base-url", url, "--model", "mock-model")
    assert result.exit_code == 1, result.output
    assert "has a user name or password in its URL" in result.output and "OPENAI_API_KEY" in result.output
    assert "s3cret" not in result.output and "alice" not in result.output
    assert mock.requests == []


def test_unreachable_endpoint_and_unknown_model_and_bad_budget(tmp_path, mock):
    questions = write_questions(tmp_path / "q.jsonl")
    result = invoke("annotate", str(questions), "--out", str(tmp_path / "r1"), "--base-url", "http://127.0.0.1:9/v1", "--model", "x")
    assert result.exit_code == 1 and "endpoint unreachable: http://127.0.0.1:9/v1" in result.output
    result = invoke("annotate", str(questions), "--out", str(tmp_path / "r2"), "--base-url", mock.base_url, "--model", "gpt-9")
    assert result.exit_code == 1 and "model not found: gpt-9" in result.output and "mock-model" in result.output
    result = invoke("annotate", str(questions), "--out", str(tmp_path / "r3"), "--budget", "turns=3")
    assert result.exit_code == 2 and "bad settings: budget: unknown item 'turns=3'" in result.output
    assert mock.requests == []


@pytest.mark.slow  # kills and restarts the CLI many times (about a minute)
def test_killed_run_resumes_with_every_question_exactly_once(tmp_path, spawn):
    rows = [{"id": f"k{i}", "subject": "math", "question": f"Question number {i}: what is 40 + 2?", "answer": "42" if i % 3 else "41"}
            for i in range(10)]
    questions = write_questions(tmp_path / "q.jsonl", rows)
    run_dir = tmp_path / "run"
    traces = run_dir / "traces.jsonl"
    with MockOpenAI(latency_s=0.15) as mock:
        cmd = [sys.executable, "-m", "scireflect.cli", "annotate", str(questions), "--out", str(run_dir),
               "--base-url", mock.base_url, "--model", "mock-model", "--concurrency", "3"]
        env = dict(os.environ, OPENAI_API_KEY="test")
        proc = spawn(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not traces.exists() or len(traces.read_text().splitlines()) < 3):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = {r["id"] for r in read_jsonl(traces)}
        assert 3 <= len(done_before) < 10, "the kill should land mid-run"
        n_before = len(mock.requests)
        finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
        later_prompts = "\n".join(m["content"] for req in mock.requests[n_before:] for m in req)
    ids = [r["id"] for r in read_jsonl(traces)]
    assert sorted(ids) == sorted(r["id"] for r in rows)  # each exactly once
    for qid in done_before:  # finished questions made no new model call after the restart
        number = qid[1:]
        assert f"Question number {number}:" not in later_prompts
    assert traces.read_bytes().endswith(b"\n")
    assert len(read_jsonl(run_dir / "sft.jsonl")) == 10  # every question is accepted, some answer-guided


def test_unknown_embedded_model_fails_before_the_run_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    questions = write_questions(tmp_path / "q.jsonl")
    result = invoke("annotate", str(questions), "--out", str(tmp_path / "run"), "--embedded-model", "tiny")
    assert result.exit_code == 2
    assert "unknown embedded model 'tiny'" in result.output and "0.5b" in result.output
    assert "annotating" not in result.output  # no progress bar
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_models_lists_aliases_and_install_extras():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "0.5b, small" in result.output and "scireflect[embedded-small]" in result.output
