"""`scireflect export`: formats, the datasets folder, the dataset card, decontamination of a planted eval question."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scireflect.filtering.cli import classify_app, export_command
from scireflect.filtering.export import ExportError, ExportOptions, build_training_set

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FIXTURE = Path(__file__).parent / "fixtures" / "traces" / "sample_run" / "traces.jsonl"

app = typer.Typer()
app.add_typer(classify_app, name="classify")
app.command("export")(export_command)


def _records() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """Two runs: the 6-question fixture, and a second run of two of its questions (one solution a copy)."""
    first = tmp_path / "run1"
    first.mkdir()
    (first / "traces.jsonl").write_text(FIXTURE.read_text())
    second = tmp_path / "run2"
    second.mkdir()
    recs = {r["id"]: r for r in _records()}
    frac = copy.deepcopy(recs["math-frac-0001"])  # same question, same solution: an exact duplicate path
    alg = copy.deepcopy(recs["math-algebra-0105"])  # same question, a different derivation: a second path
    alg["steps"][0]["response"] = ("Move the constant: 2x = 11 - 3 = 8. Divide by two: x = 8/2 = 4. Check: 2*4 + 3 = 11. "
                                   "So the solution is \\boxed{4}.")
    (second / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (frac, alg)))
    return [first, second]


def _eval_file(tmp_path: Path) -> Path:
    """An evaluation set holding a planted copy of one fixture question (reworded case/punctuation) + another."""
    gsm = next(r for r in _records() if r["id"] == "gsm8k-train-0000")["question"]["question"]
    path = tmp_path / "eval_gsm8k_test.jsonl"
    path.write_text(json.dumps({"id": "eval-planted", "question": "  " + gsm.upper().rstrip("?") + " ?"}) + "\n"
                    + json.dumps({"id": "eval-other", "question": "What is the boiling point of water at sea level in kelvin?"}) + "\n")
    return path


def test_hf_export_loads_and_its_card_counts_every_step(tmp_path, runs):
    datasets = pytest.importorskip("datasets")
    eval_file = _eval_file(tmp_path)
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["export", *map(str, runs), "--out", str(out), "--format", "hf",
                                      "--decontaminate", str(eval_file), "--answer-guided", "downweight"])
    assert result.exit_code == 0, result.output
    assert "decontaminated gsm8k-train-0000" in result.output

    ds = datasets.load_from_disk(str(out))
    ids = sorted(ds["id"])
    # accepted: frac (2 runs, one an exact copy), algebra (2 distinct paths), scibench (answer-guided); gsm8k decontaminated
    assert ids == ["math-algebra-0105", "math-algebra-0105", "math-frac-0001", "scibench-class-0007"]
    assert {"prompt", "response", "messages", "weight", "stage", "leakage"} <= set(ds.column_names)
    row = ds[ids.index("math-frac-0001")]
    assert row["messages"][0]["role"] == "user" and row["messages"][1]["content"] == row["response"]

    report = json.loads((out / "filter_report.json").read_text())
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == ["candidates", "decontaminate", "answer_guided", "classifier", "dedup"]
    assert steps["candidates"]["kept"] == 6 and steps["decontaminate"]["dropped"] == 1 and steps["dedup"]["dropped"] == 1
    assert steps["dedup"]["kept"] == len(ds) == 4
    card = (out / "README.md").read_text()
    for s in report["steps"]:  # every step appears in the card's table with its counts
        assert re.search(rf"^\| {s['step']} \| {s['in']} \| {s['kept']} \| {s['dropped']} \|", card, re.M), s["step"]
    assert "eval-planted" in card and str(eval_file) in card and "exact match" in card
    assert "qwen2.5-coder-1.5b-instruct-q4_k_m" in card and "2026-11-23.1" in card and "answer/1" in card
    assert "No classifier filter was applied." in card
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    decon = [d for d in dropped if d["filter"] == "decontaminate"]
    assert [(d["id"], d["eval_id"], d["kind"]) for d in decon] == [("gsm8k-train-0000", "eval-planted", "exact")]
    assert [d["reason"] for d in dropped if d["filter"] == "dedup"] == ["duplicate_solution"]


def test_planted_eval_question_inside_a_longer_question_is_dropped_by_13grams(tmp_path, runs):
    gsm = next(r for r in _records() if r["id"] == "gsm8k-train-0000")["question"]["question"]
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"id": "e1", "question": "Context first. " + gsm.split("?")[0] + ". Extra."}) + "\n")
    res = build_training_set(runs, ExportOptions(eval_sets=[str(eval_file)]))
    (drop,) = [d for d in res.dropped if d["filter"] == "decontaminate"]
    assert drop["id"] == "gsm8k-train-0000" and drop["kind"] == "ngram" and len(drop["ngram"].split()) == 13
    assert "gsm8k-train-0000" not in {i.attempt.qid for i in res.kept}


@pytest.mark.parametrize("fmt, key", [("jsonl", "content"), ("messages", "messages"), ("sharegpt", "conversations")])
def test_jsonl_formats(tmp_path, runs, fmt, key):
    out = tmp_path / fmt
    result = CliRunner().invoke(app, ["export", str(runs[0]), "--out", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(key in r for r in rows)
    if fmt == "jsonl":
        assert all(set(r) >= {"content", "summary", "weight"} for r in rows)
    if fmt == "sharegpt":
        assert [t["from"] for t in rows[0]["conversations"]] == ["human", "gpt"]
    assert "**the data is not decontaminated**" in (out / "README.md").read_text()


def test_answer_guided_policies(runs):
    def ag(policy: str):
        res = build_training_set(runs[:1], ExportOptions(answer_guided=policy, leaky_weight=0.25, answer_guided_weight=0.5))
        return [i for i in res.kept if i.attempt.stage == "answer_guided"], res
    # the fixture's answer-guided trace derives d = 1/2 a t^2 = 24: not flagged, weight 0.5 under every policy
    for policy in ("include", "downweight", "drop"):
        items, _ = ag(policy)
        assert [(i.attempt.qid, i.weight, i.leakage) for i in items] == [("scibench-class-0007", 0.5, [])]


def test_leaky_answer_guided_trace_is_downweighted_or_dropped(tmp_path):
    rec = next(r for r in _records() if r["id"] == "scibench-class-0007")
    rec["steps"][-1]["response"] = "The correct answer is 24. \\boxed{24}"
    run = tmp_path / "leaky"
    run.mkdir()
    (run / "traces.jsonl").write_text(json.dumps(rec) + "\n")
    inc = build_training_set([run], ExportOptions(answer_guided="include")).kept
    down = build_training_set([run], ExportOptions(answer_guided="downweight", leaky_weight=0.2)).kept
    drop = build_training_set([run], ExportOptions(answer_guided="drop"))
    assert inc[0].weight == 1.0 and "given_phrase" in inc[0].leakage and "too_short" in inc[0].leakage
    assert down[0].weight == 0.2
    assert drop.kept == [] and drop.dropped[0]["reason"].startswith("leakage:")


def test_bad_options_and_non_empty_output_fail_cleanly(tmp_path, runs):
    with pytest.raises(ExportError, match="unknown format"):
        build_training_set(runs, ExportOptions(format="parquet"))
    out = tmp_path / "busy"
    out.mkdir()
    (out / "x").write_text("x")
    result = CliRunner().invoke(app, ["export", str(runs[0]), "--out", str(out)])
    assert result.exit_code == 2 and "not empty" in result.output
    result = CliRunner().invoke(app, ["export", str(runs[0]), "--out", str(tmp_path / "o"), "--decontaminate", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "cannot read evaluation set" in result.output


def test_classifier_step_drops_items_below_the_threshold_and_the_card_records_it(tmp_path, runs, monkeypatch):
    import numpy as np

    from scireflect.filtering import classifier as C
    from scireflect.filtering import features
    from scireflect.filtering.examples import Attempt

    class LengthFeaturizer:  # a stand-in encoder: the response length decides (long = correct in training)
        encoder = "test-length"
        tail_chars = 0

        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, texts):
            return np.array([[len(t.split("### Solution\n", 1)[-1]) / 100.0] for t in texts], dtype=np.float32)

    train = [Attempt(qid=f"q{i}", step=j, subject="math", stage="cot", question={"question": f"Q{i}?"},
                     response=("x" * (280 + 5 * i)) if j == 0 else ("x" * (120 + 5 * i)), label=j == 0) for i in range(20) for j in range(2)]
    model = C.train_classifier(train, featurizer=LengthFeaturizer(), folds=4, target_precision=0.9, seed=2)
    model_dir = model.save(tmp_path / "clf")
    monkeypatch.setattr(features, "EmbeddingFeaturizer", LengthFeaturizer)
    res = build_training_set(runs[:1], ExportOptions(classifier_dir=str(model_dir)))
    step = next(s for s in res.steps if s["step"] == "classifier")
    th = model.config["threshold"]["threshold"]
    scored = [d for d in res.dropped if d["filter"] == "classifier"]
    assert step["dropped"] == len(scored) and all(d["score"] < th for d in scored)
    assert all(i.score is not None and i.score >= th for i in res.kept)
    assert res.classifier["threshold"]["threshold"] == th and res.classifier["heldout_roc_auc"] == model.metrics["roc_auc"]
    # the threshold sits near the longest wrong training answers (~210 characters): the 296-character
    # fixture solution passes, the 115- and 187-character ones do not
    assert {i.attempt.qid for i in res.kept} == {"math-frac-0001"}
    assert {d["id"] for d in scored} == {"math-algebra-0105", "gsm8k-train-0000", "scibench-class-0007"}


def test_a_probe_classifier_is_named_by_its_model_in_the_card(tmp_path, runs, monkeypatch):
    import numpy as np

    from scireflect.filtering import classifier as C
    from scireflect.filtering import features
    from scireflect.filtering.examples import Attempt

    class LengthStates:  # stands in for the llama.cpp hidden states: the response length decides
        model, pooling, context, head_tokens = "0.5b", "last", 4096, 512

        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, texts):
            return np.array([[len(t.split("### Solution\n", 1)[-1]) / 100.0] for t in texts], dtype=np.float32)

    train = [Attempt(qid=f"q{i}", step=j, subject="math", stage="cot", question={"question": f"Q{i}?"},
                     response="x" * ((280 if j == 0 else 120) + 5 * i), label=j == 0) for i in range(20) for j in range(2)]
    model_dir = C.train_classifier(train, head="probe", featurizer=LengthStates(), folds=4, seed=2).save(tmp_path / "clf")
    monkeypatch.setattr(features, "GeneratorStateFeaturizer", LengthStates)
    res = build_training_set(runs[:1], ExportOptions(classifier_dir=str(model_dir)))
    assert res.classifier["head"] == "probe"
    assert res.classifier["encoder"] == "llama.cpp 0.5b hidden states, last pooling"
    assert {i.attempt.qid for i in res.kept} == {"math-frac-0001"}  # scored through the probe path
