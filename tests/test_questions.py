"""Question-file validation: every bad line is reported with its file and line, before any model call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scireflect.rundata.questions import QuestionFileError, load_questions

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "questions.jsonl"


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def row(**kw) -> str:
    base = {"id": "a", "subject": "math", "question": "1+1?", "answer": "2"}
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_shipped_sample_is_valid_and_mixed():
    qs = load_questions(SAMPLE)
    assert len(qs) == 40
    subjects = {q["subject"] for q in qs.questions}
    assert {"math", "physics", "chemistry"} <= subjects
    assert sum(1 for q in qs.questions if q.get("choices")) == 10
    assert sum(1 for q in qs.questions if q["id"].startswith("scibench-")) == 10
    assert len(qs.sha256) == 64


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"id": "b", "question": "x?", "answer": "1"', "not valid JSON"),
        ('["a list"]', "expected a JSON object"),
        (row(id="b", answer=...), "missing required field 'answer'"),
        (row(id="b", question=...), "missing required field 'question'"),
        (row(id=...), "missing required field 'id'"),
        (row(id="b", question="  "), "'question' must be a non-empty string"),
        (row(id="b", answer=""), "'answer' must be a non-empty string"),
        (row(id="b", choices="A"), "'choices' must be a list of strings"),
        (row(id="a"), "duplicate id 'a' (first seen on line 1)"),
    ],
)
def test_bad_line_is_reported_with_file_and_line(tmp_path, bad, message):
    path = write(tmp_path, [row(), "", bad, row(id="c")])
    with pytest.raises(QuestionFileError) as info:
        load_questions(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert message in str(info.value)
    assert info.value.line == 3


def test_numbers_and_booleans_become_strings_and_filters_apply(tmp_path):
    path = write(tmp_path, [row(id="a", answer=7), row(id="b", answer=True, subject="physics"), row(id="c", answer=[4, 1])])
    qs = load_questions(path)
    assert [q["answer"] for q in qs.questions] == ["7", "true", "[4, 1]"]
    assert [q["id"] for q in load_questions(path, subjects={"physics"}).questions] == ["b"]
    assert [q["id"] for q in load_questions(path, limit=2).questions] == ["a", "b"]


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(QuestionFileError, match="cannot read question file"):
        load_questions(tmp_path / "nope.jsonl")
    path = tmp_path / "bin.jsonl"
    path.write_bytes(row().encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(QuestionFileError, match=r"bin.jsonl:2: not UTF-8"):
        load_questions(path)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("field, depth", [("extra", 40), ("unknown_field", 300), ("question_meta", 5000), ("extra", 100_000)])
def test_deeply_nested_rows_get_a_file_line_error(tmp_path, field, depth):
    """Issue 25, finding 4: at depth ~1000 the loader died with a RecursionError; at depth 300, in
    any field, the row passed and every run then crashed when it checkpointed that question. A row
    nested past MAX_QUESTION_DEPTH levels is refused with one file:line message."""
    from scireflect.rundata.questions import MAX_QUESTION_DEPTH

    path = write(tmp_path, [row(), row(id="b")[:-1] + f', "{field}": ' + "[" * depth + "]" * depth + "}"])
    with pytest.raises(QuestionFileError) as info:
        load_questions(path)
    assert str(info.value).startswith(f"{path}:2: lists or objects nested ") and "\n" not in str(info.value)
    assert f"the limit is {MAX_QUESTION_DEPTH}" in str(info.value) and info.value.line == 2


def test_nesting_up_to_the_limit_is_kept_and_checkpointed(tmp_path):
    """A row at exactly MAX_QUESTION_DEPTH levels loads, and its state is a checkpoint msgpack can hold."""
    from scireflect.graphs.state import initial_state
    from scireflect.rundata.checkpoints import PlainDataSerializer
    from scireflect.rundata.questions import MAX_QUESTION_DEPTH

    path = write(tmp_path, [json.dumps({"id": "b", "question": "x?", "answer": "1", "extra": _nested(MAX_QUESTION_DEPTH - 1)})])
    [question] = load_questions(path).questions
    serde = PlainDataSerializer()
    assert serde.loads_typed(serde.dumps_typed({"channel_values": initial_state(question, None)}))


@pytest.mark.parametrize("line, message", [
    ('{"id": "b", "question": "x?", "answer": ' + "9" * 5000 + "}", "not readable JSON (an integer of more than 4300 digits)"),
    (json.dumps({"id": "b", "question": "x?", "answer": "1", "images": ["figs/a\u0000.png"]}),
     "image 1 ('figs/a\\x00.png'): the path holds a NUL character"),
], ids=["5000-digit-answer", "nul-in-image-path"])
def test_rows_python_cannot_read_get_their_file_line_and_cause(tmp_path, line, message):
    """Issue 25, finding 7: these raised a bare ValueError (labelled '--shard:' by the CLI); now a
    QuestionFileError names the file, the line and the real cause."""
    path = write(tmp_path, [row(), line])
    with pytest.raises(QuestionFileError) as info:
        load_questions(path)
    assert str(info.value).startswith(f"{path}:2: {message}") and info.value.line == 2
