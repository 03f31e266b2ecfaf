"""benchmarks/bench_reflection.py, smoke-tested against the mock endpoint (never a real model).

The mock answers 42 to every Solver and Reviser prompt and the given answer to an answer-guided one,
so every chain of thought fails, every reflection and resample repeats 42, and the answer-guided
revision rescues: the report must show exactly that, per order.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from scireflect.rundata.jsonl import read_jsonl
from scireflect.testing.mock_openai import MockOpenAI

_SPEC = importlib.util.spec_from_file_location("bench_reflection", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_reflection.py")
bench_reflection = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_reflection)

ROWS = [{"id": "gsm8k-train-0001", "subject": "math", "question": "How many apples are 3 and 4 apples?", "answer": "7"},
        {"id": "scibench-atkins-0002", "subject": "chemistry", "question": "How many moles are 9 moles?", "answer": "9"}]


def test_selection_is_seeded_and_numeric():
    data = Path("/work/shared/data")
    if not (data / "gsm8k" / "train.jsonl").exists():
        pytest.skip("benchmark extracts not present")
    ids = bench_reflection.select(data, {"gsm8k": 3, "math": 2, "scibench": 2, "theoremqa": 2})
    assert ids == bench_reflection.select(data, {"gsm8k": 3, "math": 2, "scibench": 2, "theoremqa": 2})
    assert len(ids) == 9 and [bench_reflection.source_of(i) for i in ids][:3] == ["gsm8k"] * 3
    rows = bench_reflection.questions(data, ids)
    assert [r["id"] for r in rows] == ids and all(bench_reflection._numeric(r["answer"]) for r in rows)


async def test_orders_side_by_side_against_the_mock_endpoint(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    orders = {"sciglm": bench_reflection.ORDERS["sciglm"], "resample": bench_reflection.ORDERS["resample"]}
    with MockOpenAI(default_answer="42") as mock:
        dirs = await bench_reflection.run_orders(questions, tmp_path / "runs", orders, base_url=mock.base_url,
                                                 model=mock.model, concurrency=1)
    rows = [bench_reflection.summarize(d.name, read_jsonl(d / "traces.jsonl")) for d in dirs]
    sciglm, resample = rows
    for r in rows:
        assert r["questions"] == 2 and r["accepted"] == 2 and r["rescued_by_strategy"] == {"answer_guided": 2}
        assert r["rescued_without_answer_guided"] == 0 and r["gsm8k"] == (0, 1) and r["science"] == (0, 1)
        assert r["tokens_on_failed"] == 0 and r["failed"] == 0 and r["verified_per_hour"] > 0
    # SciGLM's loop: cot 42, reflect 42 (repeated: the second reflect is skipped), answer-guided
    assert sciglm["repeated"] == 2 and sciglm["attempts_by_strategy"] == {"cot": 2, "reflect": 2, "answer_guided": 2}
    # resample: cot 42, resample 42 (repeated), resample 42 (repeated), answer-guided
    assert resample["repeated"] == 4
    traces = read_jsonl(dirs[1] / "traces.jsonl")
    assert [s["strategy"] for s in traces[0]["steps"]] == ["cot", "resample", "resample", "answer_guided"]
    text = bench_reflection.table(rows)
    assert text.splitlines()[0].startswith("| run | questions | rescued |") and "| sciglm | 2 | 2 | 0/1 | 0/1 | answer_guided 2/2, reflect 0/2 |" in text
    assert bench_reflection.failures(traces) == ["gsm8k-train-0001", "scibench-atkins-0002"]
