"""The run-data layer: one JSONL reader/writer, lossless text, and a reply with Unicode line separators
that goes annotate -> sft.jsonl -> export -> ``scireflect train``'s data path unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scireflect.run.config import RunSettings
from scireflect.rundata.jsonl import JsonlError, append_line, dumps_line, read_complete_lines, read_jsonl, write_jsonl_atomic
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.rundata.store import load_traces
from tests.test_graph import ExactBoxedVerifier
from tests.test_runner import scripted_team

SEPARATORS = "\u2028 \u2029 \u0085 \x1c \x1d \x1e \x0b \x0c \r"


def test_lines_end_at_the_newline_byte_only(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"id": "a", "text": f"before{SEPARATORS}after"}, {"id": "b", "text": "plain"}]
    assert write_jsonl_atomic(path, rows) == 2
    assert read_jsonl(path) == rows
    assert path.read_text(encoding="utf-8").count("\n") == 2
    assert len(path.read_text(encoding="utf-8").splitlines()) > 2  # what str.splitlines() would have done
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_lone_surrogate_is_stored_losslessly(tmp_path):
    path = tmp_path / "rows.jsonl"
    row = {"id": "a", "response": "bad \ud800 text", "ok": "ünïcode"}
    append_line(path, row)
    assert read_jsonl(path) == [row]
    assert dumps_line({"x": "ü"}) == '{"x": "ü"}\n'.encode()  # non-ASCII stays readable when it can


def test_bad_lines_name_the_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"id": 1}\n\n[1]\n')
    with pytest.raises(JsonlError, match=r"rows.jsonl:3: expected a JSON object, got list"):
        read_jsonl(path)
    path.write_bytes(b'{"id": 1}\n\xff\xfe\n')
    with pytest.raises(JsonlError, match=r"rows.jsonl:2: not UTF-8"):
        read_jsonl(path)
    with pytest.raises(JsonlError, match=r"missing.jsonl: cannot read file"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_incremental_reading_leaves_a_partial_last_line(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b'{"id": "a"}\nnot json\n{"id": "b"')
    lines, end = read_complete_lines(path)
    assert [type(v).__name__ for _, v in lines] == ["dict", "JsonlError"] and end == len(b'{"id": "a"}\nnot json\n')
    with open(path, "ab") as fh:
        fh.write(b"}\n")
    more, end2 = read_complete_lines(path, end)
    assert [v for _, v in more] == [{"id": "b"}] and end2 == os.path.getsize(path)


async def test_unicode_line_separators_survive_annotate_export_and_the_training_data_path(tmp_path):
    from scireflect.cli import app
    from scireflect.training.data import load_sft_rows

    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "sep-1", "subject": "math", "question": "48 and half as many: total?",
                                     "answer": "72"}) + "\n", encoding="utf-8")
    reply = f"Step 1: 48/2 = 24.{SEPARATORS}Step 2: 48 + 24 = 72.\n\\boxed{{72}}"
    team, _ = scripted_team([reply])
    run_dir = tmp_path / "run"
    result = await annotate(load_questions(questions), run_dir, RunSettings(concurrency=1), team=team,
                            verifier=ExactBoxedVerifier())
    assert result.sft_count == 1
    assert load_traces(run_dir)[0]["steps"][0]["response"] == reply

    rows, _ = load_sft_rows(run_dir / "sft.jsonl")  # the run's own file
    assert rows[0].messages[-1]["content"] == reply

    out = tmp_path / "export"
    exported = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(out), "--format", "messages"])
    assert exported.exit_code == 0, exported.output
    [export_file] = [p for p in out.glob("*.jsonl") if p.name not in ("dropped.jsonl",)]
    rows, _ = load_sft_rows(export_file)
    assert rows[0].messages[-1]["content"] == reply


def test_every_jsonl_reader_of_the_project_is_the_one_reader():
    """No module splits a JSONL file by str.splitlines() or loads JSON lines itself."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in ("scireflect", "agents", "graphs", "verifiers", "training", "filtering"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "jsonl.py":
                continue
            text = path.read_text(encoding="utf-8")
            if ".jsonl" in text and ("splitlines()" in text and "json.loads" in text):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []
