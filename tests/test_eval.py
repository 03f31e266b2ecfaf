"""``scireflect eval``: the Solver prompt + the project's verifier on benchmark files, tables, --compare.

The fast tests use the loopback mock endpoint (:mod:`scireflect.testing.mock_openai`) on real questions of
``data/sample``; the slow one runs the embedded Qwen2.5-Coder-0.5B on 3 real questions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scireflect.cli.eval_tables import accuracy_table, compare_table
from scireflect.cli.training import eval_command
from scireflect.testing.mock_openai import MockOpenAI
from scireflect.training.evaluate import score, solver_messages

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "questions.jsonl"
SMALL = "qwen2.5-coder-0.5b-instruct-q4_k_m"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps "eval" a sub-command, as in scireflect's app
        pass

    return app


def _pick(ids):
    rows = {r["id"]: r for r in map(json.loads, SAMPLE.read_text().splitlines())}
    return [rows[i] for i in ids]


THREE = ["gsm8k-train-1235", "scibench-fund-Question_22.55", "mmlu-high_school_physics-test-036"]


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def bench(tmp_path):
    rows = _pick(THREE)
    assert {r["subject"] for r in rows} == {"math", "physics"} and any(r.get("choices") for r in rows)
    return _write(tmp_path / "bench.jsonl", rows), rows


def _run(args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return CliRunner().invoke(_app(), ["eval", *map(str, args)], env={**env, "COLUMNS": "160"})


def test_eval_on_an_endpoint_prints_per_subject_accuracy_and_writes_results(bench, tmp_path):
    path, rows = bench
    gsm, fund, mmlu = rows
    # Right answers for the GSM8K and the MMLU question (its letter), a wrong number for SciBench.
    answers = {gsm["question"][:40]: gsm["answer"], mmlu["question"][:40]: mmlu["answer"], fund["question"][:40]: "123456"}
    with MockOpenAI(answers=answers) as server:
        result = _run([path, "--base-url", server.base_url, "--model", server.model, "--out", tmp_path / "out"])
        sent = server.requests
    assert result.exit_code == 0, result.output
    # The Solver prompt, subject variant included, is what the model saw.
    assert len(sent) == 3
    assert any(m["role"] == "system" and "physics teacher" in m["content"] for req in sent for m in req)
    assert sent[0] == solver_messages(next(r for r in rows if r["question"][:40] in sent[0][-1]["content"]))

    results = [json.loads(line) for line in (tmp_path / "out" / "mock-model.results.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in results}
    assert set(by_id) == set(THREE)
    assert by_id[gsm["id"]]["correct"] and by_id[mmlu["id"]]["correct"] and not by_id[fund["id"]]["correct"]
    assert by_id[fund["id"]]["status"] == "rejected" and by_id[fund["id"]]["extracted"] == "123456"
    assert by_id[gsm["id"]]["verdict"]["reason"] == "equal" and by_id[gsm["id"]]["model"] == "mock-model"

    lines = [line.split("│") for line in result.output.splitlines() if "│" in line]
    cells = [[c.strip() for c in line[1:-1]] for line in lines]
    assert ["bench", "math", "1", "1", "100.0%", "0", "0"] in cells
    assert ["bench", "physics", "2", "1", "50.0%", "0", "0"] in cells
    assert ["all", "all", "3", "2", "66.7%", "0", "0"] in cells


def test_compare_two_results_files(bench, tmp_path):
    path, rows = bench
    right = {r["question"][:40]: r["answer"] for r in rows}
    with MockOpenAI(model="base", default_answer="999") as server:
        assert _run([path, "--base-url", server.base_url, "--model", "base", "--out", tmp_path / "a"]).exit_code == 0
    with MockOpenAI(model="tuned", answers=right) as server:
        assert _run([path, "--base-url", server.base_url, "--model", "tuned", "--out", tmp_path / "b"]).exit_code == 0
    result = _run(["--compare", tmp_path / "a" / "base.results.jsonl", tmp_path / "b" / "tuned.results.jsonl"])
    assert result.exit_code == 0, result.output
    assert "base -> tuned: 3 common questions" in result.output
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    assert ["all", "all", "3", "0.0%", "100.0%", "+100.0 pp", "3", "0"] in cells
    assert ["bench", "physics", "2", "0.0%", "100.0%", "+100.0 pp", "2", "0"] in cells


def test_eval_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q"}\n')
    result = _run([bad, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output and "answer" in result.output
    result = _run([SAMPLE, "--base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 2 and "--base-url needs --model" in result.output
    result = _run(["--compare", tmp_path / "none.jsonl", bad])
    assert result.exit_code == 2 and "results file" in result.output and "none.jsonl: cannot read file" in result.output


def test_score_and_tables_group_by_file_and_subject():
    rows = [
        {"file": "a", "id": "1", "subject": "math", "correct": True, "status": "accepted"},
        {"file": "a", "id": "2", "subject": "math", "correct": False, "status": "unparseable"},
        {"file": "a", "id": "3", "subject": "chemistry", "correct": False, "status": "error"},
        {"file": "b", "id": "1", "subject": "math", "correct": True, "status": "accepted"},
    ]
    s = score(rows)
    assert list(s) == [("a", "chemistry"), ("a", "math"), ("a", "all"), ("b", "math"), ("b", "all"), ("all", "all")]
    assert (s[("a", "math")].n, s[("a", "math")].correct, s[("a", "math")].unparseable) == (2, 1, 1)
    assert s[("a", "chemistry")].errors == 1 and s[("all", "all")].accuracy == pytest.approx(0.5)
    assert accuracy_table(rows, "t").row_count == 6
    after = [dict(r, correct=not r["correct"]) for r in rows[:3]]  # b/1 is missing: left out of the comparison
    table = compare_table(rows, after)
    assert "3 common questions (1 unmatched left out)" in str(table.title)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eval_with_the_small_embedded_model_on_three_real_questions(bench, tmp_path):
    from scireflect.embedded import available_embedded_models

    if SMALL not in available_embedded_models():
        pytest.skip("embedded-small extra not installed")
    path, _ = bench
    result = _run([path, "--embedded-model", SMALL, "--out", tmp_path / "out", "--concurrency", "2", "--max-tokens", "384"])
    assert result.exit_code == 0, result.output
    results = [json.loads(line) for line in (tmp_path / "out" / f"{SMALL}.results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in results) == sorted(THREE)
    assert all(r["response"].strip() and r["output_tokens"] > 0 and r["verdict"] for r in results)
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    assert [c[:3] for c in cells if c[1] in ("math", "physics", "all")] == [["bench", "math", "1"], ["bench", "physics", "2"],
                                                                            ["bench", "all", "3"], ["all", "all", "3"]]
    n_right = sum(r["correct"] for r in results)
    assert [c for c in cells if c[:2] == ["all", "all"]][0][3] == str(n_right)


def test_two_local_transformers_models_in_one_call_print_a_comparison(bench, tmp_path):
    pytest.importorskip("torch")
    from tests.fixtures.training import tiny_model as tiny

    path, rows = bench
    texts = [r["question"] for r in rows]
    base = tiny.build_tiny_model(tmp_path / "base", texts, seed=0)
    tuned = tiny.build_tiny_model(tmp_path / "tuned", texts, seed=1)
    result = _run([path, "--hf-model", base, "--hf-model", tuned, "--max-tokens", "16", "--out", tmp_path / "out"])
    assert result.exit_code == 0, result.output
    for name in ("base", "tuned"):
        results = [json.loads(line) for line in (tmp_path / "out" / f"{name}.results.jsonl").read_text().splitlines()]
        assert sorted(r["id"] for r in results) == sorted(THREE)
        assert all(r["model"] == name and 0 < r["output_tokens"] <= 16 and r["input_tokens"] > 0 for r in results)
        assert all(r["status"] in ("rejected", "unparseable") for r in results)  # random weights answer nothing right
    assert "base -> tuned: 3 common questions" in result.output
