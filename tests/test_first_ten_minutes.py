"""What a new user meets first (issue 15): slow endpoints that still finish, counted tokens, a display
and a summary that fit 80 columns, safe rendering of ids, resume counts and a fast --help."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

from rich.cells import cell_len
from rich.console import Console

from scireflect.cli.progress import LiveProgress
from scireflect.cli.render import summary_table
from scireflect.graphs.budget import Budget
from scireflect.run.config import LLMSettings, RunSettings
from scireflect.rundata.jsonl import read_jsonl
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.rundata.summary import Outcomes
from scireflect.testing.mock_openai import MockOpenAI
from tests.test_runner import questions_file


def _settings(mock: MockOpenAI, **llm) -> RunSettings:
    role = LLMSettings(base_url=mock.base_url, model=mock.model, max_retries=0, **llm)
    return RunSettings(roles={r: role for r in ("solver", "critic", "reviser")}, concurrency=1)


async def test_a_long_slow_generation_is_not_cut_by_the_request_timeout_and_its_tokens_count(tmp_path):
    # 10 words streamed 0.4 s apart: 3.6 s in all, over three times the 1 s request timeout.
    with MockOpenAI(default_answer="72", token_latency_s=0.4) as mock:
        result = await annotate(load_questions(questions_file(tmp_path, 1)), tmp_path / "run",
                                _settings(mock, request_timeout_s=1.0))
    [record] = read_jsonl(tmp_path / "run" / "traces.jsonl")
    [step] = record["steps"]
    assert record["status"] == "accepted" and step["transport_failures"] == []
    words = len(step["response"].split(" "))
    assert step["latency_s"] > 3.0 and step["output_tokens"] == words == 10
    assert result.summary["all"].tokens == record["tokens"] == step["input_tokens"] + words


async def test_silence_is_a_timeout_retried_and_recorded(tmp_path):
    from scireflect.testing.mock_openai import FaultPlan

    # The first request hangs 2 s before its first token (past the 0.5 s silence timeout); the retry answers.
    with MockOpenAI(default_answer="72", faults=FaultPlan(rate=0.5, kinds=("hang",), seed=3, hang_s=2.0)) as mock:
        role = LLMSettings(base_url=mock.base_url, model=mock.model, max_retries=3, retry_backoff_s=0.0, request_timeout_s=0.5)
        settings = RunSettings(roles={r: role for r in ("solver", "critic", "reviser")}, concurrency=1)
        await annotate(load_questions(questions_file(tmp_path, 2)), tmp_path / "run", settings)
        hangs = mock.stats.faults["hang"]
    records = read_jsonl(tmp_path / "run" / "traces.jsonl")
    kinds = [f["kind"] for r in records for s in r["steps"] for f in s["transport_failures"]]
    assert hangs >= 1 and kinds.count("timeout") == hangs
    assert all(r["status"] == "accepted" for r in records)


async def test_a_call_cut_by_the_time_budget_keeps_its_text_and_tokens(tmp_path):
    with MockOpenAI(default_answer="72", token_latency_s=0.3) as mock:
        settings = _settings(mock)
        settings = RunSettings(roles=settings.roles, concurrency=1, budget=Budget(max_seconds=1.5))
        await annotate(load_questions(questions_file(tmp_path, 1)), tmp_path / "run", settings)
    [record] = read_jsonl(tmp_path / "run" / "traces.jsonl")
    [step] = record["steps"]
    assert record["status"] == "rejected" and record["budget_stop"]["limit"] == "seconds"
    assert step["finish_reason"] == "cut" and "cut by the time budget" in step["error"]
    assert 2 <= step["output_tokens"] < 10 and step["response"].startswith("Step 1:")
    assert record["tokens"] >= step["output_tokens"]


def _record(qid: str, status: str = "accepted", stage: str | None = "cot") -> dict:
    return {"id": qid, "status": status, "accepted_stage": stage, "stop_reason": "accepted" if stage else "budget: attempts (4)",
            "n_attempts": 3, "tokens": 123_456, "seconds": 4_000.0, "subject": "physics"}


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=80, force_terminal=True, color_system="truecolor", record=True), buffer


def _visible_lines(console: Console) -> list[str]:
    return console.export_text(styles=False).split("\n")


def test_the_live_lines_and_the_summary_fit_80_columns():
    console, _ = _console()
    display = LiveProgress(console, total=40)
    display.on_event("start", {"total": 40, "pending": 38, "skipped": 2, "earlier": {"accepted": 1, "rejected": 1}})
    long_id = "scibench-atkins-" + "e3.7_a_a" * 12
    for i, role in enumerate(("solver", "critic", "reviser")):
        display.on_event("call", {"id": f"{long_id}-{i}", "role": role, "attempt": i + 1, "stage": "cot", "phase": "start"})
        display.on_event("tokens", {"id": f"{long_id}-{i}", "role": role, "attempt": i + 1, "tokens": 1234, "seconds": 60})
    display.on_event("retry", {"id": long_id, "role": "solver", "attempt": 1, "kind": "timeout", "wait_s": 1.5, "try": 1,
                               "tries": 5, "output_tokens": 77, "error": "APITimeoutError: " + "x" * 200})
    display.on_event("done", _record(long_id, "rejected", None))
    display.on_event("done", _record("short-1"))
    display.started -= 600  # ten minutes in: rate and ETA are shown
    display.on_event("done", _record("short-2"))
    console.print(display.render())  # the live region as it is drawn
    summary = {"a-very-long-subject-name-indeed": Outcomes(questions=12, accepted_cot=5, rejected=7, tokens=1_234_567, seconds=7_300),
               "math": Outcomes(questions=40, accepted_cot=20, accepted_fresh=4, accepted_reflection=5, accepted_answer_guided=3, rejected=6, error=2,
                                unverified=1, tokens=9_876_543, seconds=86_399)}
    summary["all"] = Outcomes(questions=52, accepted_cot=25, accepted_fresh=4, accepted_reflection=5, accepted_answer_guided=3, rejected=13,
                              error=2, unverified=1, tokens=11_111_110, seconds=93_699)
    console.print(summary_table(summary, "scireflect annotate: runs/" + "x" * 60))
    lines = _visible_lines(console)
    assert max(cell_len(line) for line in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    assert "resuming: 2 of 40 questions already done (1 accepted, 1 rejected)" in text
    assert "5/40" in text and "✓3" in text and "✗2" in text  # earlier results counted in the bar
    assert "timeout" in text and "1,234t" in text and "q/h" in text and "ETA" in text and "123k tok" in text
    for header in ("ok", "cot", "new", "refl", "guid", "rej", "err", "unv", "tokens"):
        assert f" {header} " in text or f" {header}\n" in text


def test_a_question_rescued_by_a_fresh_attempt_says_which_strategy():
    console, _ = _console()
    display = LiveProgress(console, total=2)
    steps = [{"kind": "solution", "stage": "cot", "strategy": "cot"}, {"kind": "solution", "stage": "cot", "strategy": "program"}]
    display.on_event("done", {**_record("rescued"), "steps": steps})
    display.on_event("done", _record("first"))
    text = "\n".join(_visible_lines(console))
    assert "rescued" in text and "· cot (program)" in text and text.count("(program)") == 1


def test_ids_with_rich_markup_print_as_they_are():
    console, buffer = _console()
    display = LiveProgress(console, total=2)
    for qid in ("closing-[/]-tag", "[link=http://x.io]y[/link]"):
        display.on_event("call", {"id": qid, "role": "solver", "attempt": 1, "phase": "start"})
        display.on_event("done", _record(qid))
    console.print(display.render())
    raw = buffer.getvalue()
    assert "\x1b]8;" not in raw  # no terminal hyperlink escape
    text = "\n".join(_visible_lines(console))
    assert "closing-[/]-tag" in text and "[link=http://x.io]y[/link]" in text


def test_help_is_fast_and_free_of_type_noise():
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scireflect.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    # Not a timing assertion (those belong in benchmarks): --help must not load the heavy layers.
    probe = subprocess.run([sys.executable, "-c", "import sys, scireflect.cli; "
                            "print(sorted(m for m in ('langchain_core', 'langgraph', 'torch', 'openai') if m in sys.modules))"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
    annotate = subprocess.run([sys.executable, "-m", "scireflect.cli", "annotate", "--help"], capture_output=True, text=True,
                              timeout=60, env={"COLUMNS": "80", "PATH": ""})
    assert annotate.returncode == 0 and not re.search(r"<(list|str|int|float|bool)", annotate.stdout), annotate.stdout
    names = re.findall(r"^  (\w+) ", done.stdout.split("Commands:")[1], re.M)
    assert names[:4] == ["annotate", "traces", "view", "export"], names
    print(f"scireflect --help took {time.perf_counter() - started:.2f} s")


def test_without_a_question_file_the_shipped_quick_start_sample_runs(tmp_path):
    from importlib.resources import files

    shipped = [row["id"] for row in read_jsonl(files("scireflect.samples") / "quickstart.jsonl")]
    assert len(shipped) == 6 and len({i.split("-")[0] for i in shipped}) == 2  # GSM8K and MMLU rows
    with MockOpenAI(default_answer="72") as mock:
        env = {"OPENAI_API_KEY": "test", "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-m", "scireflect.cli", "annotate", "--out", str(tmp_path / "run"),
                               "--base-url", mock.base_url, "--model", mock.model, "--budget", "attempts=1"],
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    traced = [row["id"] for row in read_jsonl(tmp_path / "run" / "traces.jsonl")]
    assert sorted(traced) == sorted(shipped)
    assert "quickstart.jsonl" in (tmp_path / "run" / "run.json").read_text()
