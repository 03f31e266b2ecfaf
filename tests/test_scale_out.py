"""Scale-out on one machine: replicas of an endpoint and shards of a question file."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from scireflect.cli import app
from scireflect.testing.mock_openai import MockOpenAI
from scireflect.rundata.questions import load_questions, select_shard


def write_questions(path, n):
    path.write_text("".join(json.dumps({"id": f"s{i:03d}", "subject": "math", "question": f"Item {i:03d}: 6 x 7?",
                                        "answer": "42" if i % 2 else "7"}) + "\n" for i in range(n)))
    return path


def test_questions_spread_over_replicas_each_question_on_one(tmp_path):
    questions = write_questions(tmp_path / "q.jsonl", 16)
    with MockOpenAI() as a, MockOpenAI() as b:
        result = CliRunner().invoke(app, ["annotate", str(questions), "--out", str(tmp_path / "run"), "--base-url", a.base_url,
                                          "--base-url", b.base_url, "--model", "mock-model", "--concurrency", "4",
                                          "--budget", "attempts=2,reflections=1"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        seen = []
        for server in (a, b):
            items = {m for req in server.requests for msg in req for m in re.findall(r"Item (\d{3}):", msg["content"])}
            seen.append(items)
    assert seen[0] and seen[1], "both replicas served questions"
    assert not seen[0] & seen[1], "all calls of a question go to one replica"
    assert len(seen[0] | seen[1]) == 16
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["runs"][0]["settings"]["roles"]["solver"]["replicas"] == [b.base_url]


def test_shards_are_disjoint_and_cover_the_file(tmp_path):
    qs = load_questions(write_questions(tmp_path / "q.jsonl", 50))
    shards = [select_shard(qs, f"{k}/3") for k in range(3)]
    ids = [q["id"] for s in shards for q in s.questions]
    assert sorted(ids) == sorted(q["id"] for q in qs.questions) and all(len(s) > 5 for s in shards)
    result = CliRunner().invoke(app, ["annotate", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "r"), "--shard", "3/3"])
    assert result.exit_code == 2 and "--shard: expected K/N with 0 <= K < N, got '3/3'" in result.output
