"""Hardening of the run layer against careless and hostile input (issue 14): one writer per run
directory, secrets never recorded, bad strings and bad settings refused up front, compaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scireflect.graphs.budget import Budget
from scireflect.run.config import ConfigError, RunSettings, load_settings
from scireflect.rundata.errors import RunError
from scireflect.rundata.jsonl import read_jsonl
from scireflect.rundata.lock import run_dir_lock
from scireflect.agents.endpoints import redact_url
from scireflect.rundata.questions import QuestionFileError, load_questions
from scireflect.run.runner import annotate
from scireflect.testing.mock_openai import MockOpenAI
from tests.fakes import REFLECTION_LOOP
from tests.test_graph import CRITIQUE, RIGHT, WRONG, ExactBoxedVerifier
from tests.test_runner import questions_file, scripted_team

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    """These tests read the CLI's messages whole (the subprocesses inherit it): at 80 columns an error line
    naming a long temporary path wraps at words. tests/test_terminal_width.py checks the wrapping."""
    monkeypatch.setenv("COLUMNS", "300")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "scireflect.cli", *args]


# -- 3. one writer per run directory -------------------------------------------------------------


def test_the_run_directory_lock_names_its_holder(tmp_path):
    with run_dir_lock(tmp_path), pytest.raises(RunError, match=rf"in use by another scireflect process \(pid {os.getpid()}\)"):
        with run_dir_lock(tmp_path):
            pass
    with run_dir_lock(tmp_path):  # released: taken again
        pass


def test_two_annotate_processes_on_one_directory_make_each_model_call_once(tmp_path, spawn):
    questions = questions_file(tmp_path, 6)
    run_dir = tmp_path / "run"
    # Each call takes 4 s, so the first run holds the lock for ~12 s: long enough for a second process to start.
    with MockOpenAI(latency_s=4.0, default_answer="72") as mock:
        args = _cli("annotate", str(questions), "--out", str(run_dir), "--base-url", mock.base_url, "--model", mock.model,
                    "--concurrency", "2")
        first = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while mock.stats.chat_requests == 0 and time.monotonic() < deadline:  # the first holds the lock and runs
            time.sleep(0.05)
        second = subprocess.run(args, capture_output=True, text=True, timeout=120)
        out, _ = first.communicate(timeout=120)
        assert first.returncode == 0, out
        assert second.returncode == 1 and f"in use by another scireflect process (pid {first.pid})" in second.stderr
        assert mock.stats.chat_requests == 6  # one accepted attempt per question, each made once
    ids = [r["id"] for r in read_jsonl(run_dir / "traces.jsonl")]
    assert sorted(ids) == [f"q{i}" for i in range(6)]


# -- 2. credentials are never recorded ---------------------------------------------------------------


def test_urls_are_recorded_without_credentials():
    assert redact_url("http://user:s3cret@host:8000/v1?api_key=abc&x=1") == "http://***@host:8000/v1?api_key=***&x=1"
    assert redact_url("https://api.example.com/v1?token=t0k&model=m") == "https://api.example.com/v1?token=***&model=m"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_credentials_in_the_url_reach_no_file_and_no_output(tmp_path):
    """A URL with user:pass@ is refused at preflight (issue 25, finding 8), and neither the message
    nor any file of the run directory holds the credentials."""
    questions = questions_file(tmp_path, 1)
    with MockOpenAI(default_answer="72") as mock:
        url = mock.base_url.replace("http://", "http://alice:s3cret-pw@")
        done = subprocess.run(_cli("annotate", str(questions), "--out", str(tmp_path / "run"), "--base-url", url,
                                   "--model", mock.model), capture_output=True, text=True, timeout=120)
        assert mock.requests == []
    assert done.returncode == 1 and "***@127.0.0.1" in done.stderr and "user name or password" in done.stderr, done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr and "alice" not in done.stdout + done.stderr
    for path in (tmp_path / "run").rglob("*") if (tmp_path / "run").exists() else ():
        if path.is_file():
            assert b"s3cret-pw" not in path.read_bytes() and b"alice" not in path.read_bytes(), path


# -- 5. bad strings ----------------------------------------------------------------------------------


async def test_a_lone_surrogate_in_a_reply_is_kept_exactly_and_other_questions_go_on(tmp_path):
    questions = questions_file(tmp_path, 3)
    odd = "Step 1: 48/2 = 24 \ud800 then 48 + 24.\n\\boxed{72}"
    team, _ = scripted_team([odd, RIGHT, WRONG], [CRITIQUE], [RIGHT])
    result = await annotate(load_questions(questions), tmp_path / "run", RunSettings(budget=REFLECTION_LOOP, concurrency=2), team=team,
                            verifier=ExactBoxedVerifier())
    assert result.summary["all"].accepted == 3
    traces = {r["id"]: r for r in read_jsonl(tmp_path / "run" / "traces.jsonl")}
    responses = [s["response"] for r in traces.values() for s in r["steps"]]
    assert odd in responses
    assert odd in [p["response"] for p in read_jsonl(tmp_path / "run" / "sft.jsonl")]


def test_checkpoints_keep_a_lone_surrogate_unchanged():
    from scireflect.rundata.checkpoints import PlainDataSerializer

    serde = PlainDataSerializer()
    value = {"steps": [{"response": "a \ud800 b", "n": 1}], "ok": "ünï"}
    assert serde.loads_typed(serde.dumps_typed(value)) == value
    with pytest.raises(TypeError, match="not plain data"):
        serde.dumps_typed({"s": {1, 2}})


def test_an_id_with_a_lone_surrogate_is_refused_with_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "ok", "question": "q", "answer": "1"}\n{"id": "bad\\ud800", "question": "q", "answer": "1"}\n')
    with pytest.raises(QuestionFileError, match=r"q.jsonl:2: field 'id' holds a lone surrogate"):
        load_questions(path)


# -- 7. non-finite values ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["seconds=nan", "seconds=inf", "seconds=-inf", "seconds=NaN"])
def test_non_finite_budgets_are_refused(spec):
    with pytest.raises(ValueError, match="bad value for seconds"):
        Budget.parse(spec)


@pytest.mark.parametrize("answer", ["NaN", "Infinity", "-Infinity", '"nan"', '"inf"'])
def test_non_finite_reference_answers_are_refused(tmp_path, answer):
    path = tmp_path / "q.jsonl"
    path.write_text(f'{{"id": "a", "question": "q", "answer": {answer}}}\n')
    with pytest.raises(QuestionFileError, match=r"q.jsonl:1: field 'answer' is .*not a finite reference answer"):
        load_questions(path)


# -- 8. settings and paths: one-line errors before anything is created ------------------------------------


@pytest.mark.parametrize("toml, message", [
    ('[llm]\nmax_tokens = "abc"\n', "[llm]: max_tokens must be an integer >= 16, not 'abc'"),
    ("llm = 5\n", "[llm] must be a table"),
    ("[llm]\nmax_retries = -3\n", "[llm]: max_retries must be an integer >= 0, not -3"),
    ("[verifier]\ntimeout_s = 0\n", "[verifier]: timeout_s must be a number > 0, not 0"),
    ('[verifier]\ndefault = "no-such-plugin"\n', "unknown verifier 'no-such-plugin'"),
    ('[llm]\nbase_url = "ftp://x"\n', "base_url must be an http(s):// URL"),
])
def test_bad_settings_are_one_line_errors(tmp_path, toml, message):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_settings_and_bad_out_paths_stop_the_cli_before_anything_is_created(tmp_path):
    questions = questions_file(tmp_path, 1)
    config = tmp_path / "c.toml"
    config.write_text('[llm]\nmax_tokens = "abc"\n')
    done = subprocess.run(_cli("annotate", str(questions), "--out", str(tmp_path / "run"), "--config", str(config)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "max_tokens must be an integer" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        done = subprocess.run(_cli("annotate", str(questions), "--out", str(out), "--base-url", "http://127.0.0.1:9/v1",
                                   "--model", "m"), capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "exists and is not a directory" in done.stderr, done.stderr
        assert "saved in" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_out_directory_is_refused(tmp_path):  # pragma: no cover - CI runs as root
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    done = subprocess.run(_cli("annotate", str(questions_file(tmp_path, 1)), "--out", str(ro / "run"), "--base-url",
                               "http://127.0.0.1:9/v1", "--model", "m"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot create the run directory" in done.stderr


# -- 9. size caps, compaction, leftovers -------------------------------------------------------------------


def test_an_oversized_question_is_refused_with_its_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "x" * 2_000, "answer": "1"}) + "\n")
    with pytest.raises(QuestionFileError, match=r"q.jsonl:1: the line is 2,0\d\d bytes; the limit is 1,000"):
        load_questions(path, max_question_bytes=1_000)
    assert len(load_questions(path)) == 1  # the default limit is 1 MB


async def test_a_finished_run_leaves_no_checkpoint_database_and_no_temporary_files(tmp_path):
    questions = questions_file(tmp_path, 2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".sft.jsonl.12345.tmp").write_text("left by a killed run")
    team, _ = scripted_team([RIGHT, RIGHT])
    await annotate(load_questions(questions), run_dir, RunSettings(budget=REFLECTION_LOOP, concurrency=1), team=team, verifier=ExactBoxedVerifier())
    assert not (run_dir / "checkpoints.sqlite").exists()
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "run.json", "sft.jsonl", "summary.json", "traces.jsonl"]
