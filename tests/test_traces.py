"""``scireflect traces``: loading, filtering, stats, the terminal rendering and the CLI shape."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from scireflect.cli.render import render_trace, stats_tables
from scireflect.cli.traces import traces_app
from scireflect.rundata.query import filter_traces, find_trace, trace_row
from scireflect.rundata.store import TraceFileError, load_traces, read_traces
from scireflect.rundata.summary import trace_stats

FIXTURE = Path(__file__).parent / "fixtures" / "traces" / "sample_run"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def records(run_dir: Path) -> list[dict]:
    return load_traces(run_dir)


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(traces_app, name="traces")

    @app.command()
    def other() -> None:  # a second command, so that "traces" is a real subcommand as in scireflect's CLI
        pass

    return app


def invoke(*args: str):
    return CliRunner().invoke(cli(), ["traces", *map(str, args)], env={"COLUMNS": "100"})


# ----------------------------------------------------------------------------------------- loading


def test_fixture_covers_every_outcome(records):
    rows = {r["id"]: trace_row(r) for r in records}
    assert len(rows) == 6
    assert (rows["math-frac-0001"]["status"], rows["math-frac-0001"]["stage"]) == ("accepted", "cot")
    assert (rows["gsm8k-train-0000"]["stage"], rows["gsm8k-train-0000"]["attempts"]) == ("reflection", 3)
    assert rows["scibench-class-0007"]["stage"] == "answer_guided"
    assert (rows["mmlu-hs-chem-0042"]["status"], rows["mmlu-hs-chem-0042"]["reason"]) == ("rejected", "choice_mismatch")
    assert rows["scibench-thermo-0003"]["status"] == "error" and rows["scibench-thermo-0003"]["reason"] is None
    assert rows["gsm8k-train-0000"]["reference"] == "72" and rows["gsm8k-train-0000"]["extracted"] == "72"


def test_read_traces_is_incremental_and_ignores_a_write_in_progress(tmp_path):
    path = tmp_path / "traces.jsonl"
    lines = (FIXTURE / "traces.jsonl").read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1][:100])  # the second line is still being written
    records, offset, problems = read_traces(path)
    assert [r["id"] for r in records] == ["math-frac-0001"] and offset == len(lines[0]) and not problems
    with open(path, "ab") as fh:
        fh.write(lines[1][100:] + lines[2])
    records, offset2, problems = read_traces(path, offset)
    assert [r["id"] for r in records] == ["gsm8k-train-0000", "scibench-class-0007"]
    assert offset2 == sum(map(len, lines[:3])) and not problems
    assert read_traces(path, offset2) == ([], offset2, [])


def test_bad_line_is_reported_with_its_line(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_text('{"id": "a", "steps": []}\nnot json\n[1, 2]\n', encoding="utf-8")
    records, _, problems = read_traces(path)
    assert [r["id"] for r in records] == ["a"]
    assert [(p.path, p.line) for p in problems] == [(path, 2), (path, 3)] and "traces.jsonl:2: not valid JSON" in str(problems[0])
    with pytest.raises(TraceFileError, match=r"traces.jsonl:2: "):
        load_traces(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_traces(tmp_path / "missing")


def test_load_keeps_the_first_record_of_a_duplicate_id(tmp_path):
    (tmp_path / "traces.jsonl").write_text('{"id": "a", "status": "accepted"}\n{"id": "a", "status": "rejected"}\n')
    assert [r["status"] for r in load_traces(tmp_path / "traces.jsonl")] == ["accepted"]


# --------------------------------------------------------------------------------------- filtering


def test_filters(records):
    ids = lambda rs: sorted(r["id"] for r in rs)  # noqa: E731
    assert ids(filter_traces(records, status="rejected")) == ["mmlu-hs-chem-0042"]
    assert ids(filter_traces(records, subject="physics")) == ["scibench-class-0007", "scibench-thermo-0003"]
    assert ids(filter_traces(records, stage="reflection")) == ["gsm8k-train-0000"]
    assert ids(filter_traces(records, stage=["cot", "answer_guided"], subject="math")) == ["math-algebra-0105", "math-frac-0001"]
    assert ids(filter_traces(records, reason="choice_mismatch")) == ["mmlu-hs-chem-0042"]
    assert ids(filter_traces(records, reason="equal", status=["accepted", "error"])) == [
        "gsm8k-train-0000", "math-algebra-0105", "math-frac-0001", "scibench-class-0007"]
    assert filter_traces(records, subject="biology") == []
    with pytest.raises(ValueError, match="unknown status bogus"):
        filter_traces(records, status="bogus")
    with pytest.raises(ValueError, match="unknown stage"):
        filter_traces(records, stage="reflexion")


def test_last_reason_is_that_of_the_last_attempt_with_a_verdict(records):
    rejected = find_trace(records, "mmlu-hs-chem-0042")
    reasons = [s["verdict"]["reason"] for s in rejected["steps"] if s["kind"] == "solution"]
    assert reasons == ["choice_mismatch", "choice_mismatch", "no_answer", "choice_mismatch"]
    assert trace_row(rejected)["reason"] == "choice_mismatch"


def test_find_trace_by_prefix_and_helpful_errors(records):
    assert find_trace(records, "gsm8k")["id"] == "gsm8k-train-0000"
    with pytest.raises(KeyError, match="several"):
        find_trace(records, "scibench")
    with pytest.raises(KeyError, match="did you mean math-frac-0001"):
        find_trace(records, "math-frac-0002")


# ------------------------------------------------------------------------------------------- stats


def test_stats_by_subject_stage_and_reason(records):
    stats = trace_stats(records)
    assert stats["questions"] == 6
    assert list(stats["subjects"]) == ["chemistry", "math", "physics", "all"]
    total = stats["subjects"]["all"]
    assert (total["accepted"], total["accepted_cot"], total["accepted_reflection"], total["accepted_answer_guided"],
            total["rejected"], total["error"]) == (4, 2, 1, 1, 1, 1)
    assert total["acceptance_rate"] == round(4 / 6, 4)
    assert total["tokens"] == sum(r["tokens"] for r in records)
    assert total["seconds"] == pytest.approx(sum(r["seconds"] for r in records), abs=0.01)
    assert stats["subjects"]["physics"]["acceptance_rate"] == 0.5
    assert stats["subjects"]["math"]["top_failures"] == [["numeric_mismatch", 2]]

    rows = {(s["subject"], s["stage"]): s for s in stats["stages"]}
    refl = rows[("all", "reflection")]
    # reflection attempts: clips 2 (1 passed), car 2, chemistry 2; critiques count in its tokens.
    assert (refl["questions"], refl["attempts"], refl["accepted"]) == (3, 6, 1)
    assert refl["tokens"] == sum(s["input_tokens"] + s["output_tokens"] for r in records for s in r["steps"]
                                 if s["stage"] == "reflection")
    assert rows[("all", "cot")]["attempts"] == 6 and rows[("all", "cot")]["accepted"] == 2
    assert rows[("physics", "answer_guided")]["pass_rate"] == 1.0
    assert [s["subject"] for s in stats["stages"]][-1] == "all"

    reasons = {r["reason"]: r for r in stats["failure_reasons"]}
    assert [r["reason"] for r in stats["failure_reasons"]][0] == "numeric_mismatch"
    assert reasons["numeric_mismatch"]["count"] == 5 and reasons["numeric_mismatch"]["by_stage"] == {"cot": 2, "reflection": 3}
    assert reasons["no_answer"]["by_stage"] == {"reflection": 1}
    assert stats["final_reasons"] == {"choice_mismatch": 1}
    json.dumps(stats)  # JSON-serialisable


def test_stats_of_nothing():
    stats = trace_stats([])
    assert stats["questions"] == 0 and list(stats["subjects"]) == ["all"]
    assert stats["subjects"]["all"]["acceptance_rate"] is None and stats["subjects"]["all"]["mean_tokens"] is None
    assert stats["failure_reasons"] == [] and stats["stages"] == []


# ---------------------------------------------------------------------------------------- rendering


def rendered(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text().splitlines()


def test_three_attempt_question_renders_readably_at_80_columns(records):
    lines = rendered(render_trace(find_trace(records, "gsm8k-train-0000")))
    assert max(cell_len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for needle in ("gsm8k-train-0000", "reflection", "reference answer: 72", "attempt 1 · solver · cot",
                   "critique of attempt 1 · critic · reflection", "attempt 2 · reviser · reflection",
                   "attempt 3 · reviser · reflection", "critique of attempt 2", "numeric_mismatch",
                   "extracted 144", "extracted 24", "✓ accepted", "\\(\\boxed{72}\\)", "\\frac{48}{2} = 24",
                   "half as many"):
        assert needle in text, needle
    assert text.index("attempt 1 ·") < text.index("critique of attempt 1") < text.index("attempt 2 ·") < text.index("attempt 3 ·")
    assert text.count("✗ rejected") == 2


def test_render_shows_tool_calls_errors_prompts_and_choices(records):
    text = "\n".join(rendered(render_trace(find_trace(records, "math-algebra-0105"))))
    assert "tool call: python" in text and "sp.solve(x**2 - 5*x + 6, x)" in text and "output: [2, 3]" in text
    text = "\n".join(rendered(render_trace(find_trace(records, "scibench-thermo-0003"))))
    assert "status       error" in text and "BadRequestError" in text and "verifier: no verdict" in text
    lines = rendered(render_trace(find_trace(records, "mmlu-hs-chem-0042"), prompts=True))
    text = "\n".join(lines)
    assert max(cell_len(line) for line in lines) <= 80
    assert "(B) HCl" in text and "prompt: system" in text and "Answer checker's evidence" in text
    assert "<script>alert('x')</script>" in text  # verbatim in a terminal
    assert "attempt 4 · reviser · answer_guided" in text and "no_answer" in text


def test_model_text_is_never_rich_markup(records):
    record = json.loads(json.dumps(find_trace(records, "math-frac-0001")))
    record["steps"][0]["response"] = "[bold red]not markup[/bold red] [link=http://x]y[/link] \\boxed{[1, 2]}"
    text = "\n".join(rendered(render_trace(record)))
    assert "[bold red]not markup[/bold red] [link=http://x]y[/link] \\boxed{[1, 2]}" in text


def test_stats_tables_fit_80_columns(records):
    for table in stats_tables(trace_stats(records)):
        lines = rendered(table)
        assert max(cell_len(line) for line in lines) <= 80


# --------------------------------------------------------------------------------------------- CLI


def test_cli_lists_by_default_with_filters_after_the_run_dir(run_dir):
    result = invoke(run_dir)
    assert result.exit_code == 0, result.output
    assert all(qid in result.output for qid in ("math-frac-0001", "gsm8k-train-0000", "scibench-thermo-0003"))
    assert "6 of 6 question(s)" in result.output
    result = invoke(run_dir, "--status", "rejected")
    assert result.exit_code == 0, result.output
    assert "mmlu-hs-chem-0042" in result.output and "gsm8k-train-0000" not in result.output
    assert "1 of 6 question(s)" in result.output


def test_cli_list_json_and_repeatable_filters(run_dir):
    result = invoke(run_dir, "list", "--subject", "math", "--subject", "physics", "--stage", "cot", "--stage", "answer_guided", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(r["id"] for r in rows) == ["math-algebra-0105", "math-frac-0001", "scibench-class-0007"]
    result = invoke(run_dir / "traces.jsonl", "--reason", "choice_mismatch", "--json")  # a traces file works too
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == ["mmlu-hs-chem-0042"]


def test_cli_show(run_dir):
    result = invoke(run_dir, "show", "gsm8k-train-0000")
    assert result.exit_code == 0, result.output
    assert "attempt 3 · reviser · reflection" in result.output and "reference answer: 72" in result.output
    result = invoke(run_dir, "show", "math-alg", "--prompts")
    assert result.exit_code == 0 and "tool call: python" in result.output and "prompt: user" in result.output
    result = invoke(run_dir, "show", "nope")
    assert result.exit_code == 1 and "no question 'nope'" in result.output


def test_cli_stats(run_dir):
    result = invoke(run_dir, "stats")
    assert result.exit_code == 0, result.output
    for needle in ("Questions by subject", "Attempts by subject and stage", "Verifier failure reasons", "numeric_mismatch",
                   "chemistry", "67%"):
        assert needle in result.output, needle
    result = invoke(run_dir, "--subject", "physics", "stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert list(stats["subjects"]) == ["physics", "all"] and stats["questions"] == 2
    result = invoke(run_dir, "stats", "--status", "accepted", "--json")
    assert json.loads(result.output)["subjects"]["all"]["acceptance_rate"] == 1.0


def test_cli_errors(run_dir, tmp_path):
    result = invoke(run_dir, "--status", "bogus")
    assert result.exit_code == 2 and "unknown status bogus" in result.output
    result = invoke(tmp_path / "empty")
    assert result.exit_code == 2 and "no traces.jsonl" in result.output
    (run_dir / "traces.jsonl").open("a").write("garbage\n")
    result = invoke(run_dir, "stats")
    assert result.exit_code == 2 and "traces.jsonl:7: not valid JSON" in result.output.replace("\n", "")
