"""`scireflect export`: formats, the datasets folder, the dataset card, decontamination of a planted eval question,
and the atomic write (the real CLI killed at random points)."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scireflect.cli.filtering import classify_app, export_command
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
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", *map(str, runs), "--out", str(out), "--format", "hf",
                                      "--decontaminate", str(eval_file), "--answer-guided", "downweight"])
    assert result.exit_code == 0, result.output
    assert "decontaminated gsm8k-train-0000" in result.output

    ds = datasets.load_from_disk(str(out))
    ids = sorted(ds["id"])
    # accepted: frac (2 runs, one an exact copy), algebra (2 distinct paths), scibench (answer-guided); gsm8k decontaminated
    assert ids == ["math-algebra-0105", "math-algebra-0105", "math-frac-0001", "scibench-class-0007"]
    assert {"prompt", "response", "messages", "weight", "stage", "leakage"} <= set(ds.column_names)
    row = ds[ds["id"].index("math-frac-0001")]
    assert row["messages"][0]["role"] == "user" and row["messages"][1]["content"] == row["response"]
    # the algebra attempt called the python tool: its turns sit between the problem and the answer
    tool_row = ds[ds["id"].index("math-algebra-0105")]
    assert [m["role"] for m in tool_row["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert tool_row["messages"][2]["content"] == "[2, 3]" and tool_row["messages"][3]["content"] == tool_row["response"]

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
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", str(runs[0]), "--out", str(out), "--format", fmt])
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
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", str(runs[0]), "--out", str(out)])
    assert result.exit_code == 2 and "not empty" in result.output
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", str(runs[0]), "--out", str(tmp_path / "o"), "--decontaminate", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "evaluation set" in result.output and "nope.jsonl: cannot read file" in result.output


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


# ------------------------------------------------------------------------------------ atomic export


def _synthetic_run(run_dir: Path, n: int) -> Path:
    """A run of ``n`` accepted questions with distinct random words (nothing merges in dedup), so the
    export writes ``n`` rows and its write phase takes long enough to be hit by a kill."""
    import random

    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(4000)]
    run_dir.mkdir()
    with open(run_dir / "traces.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            question = {"id": f"syn-{i:05d}", "subject": "math", "answer": str(2 * i + 1),
                        "question": " ".join(rng.choices(words, k=25)) + f" What is {i} + {i + 1}?"}
            response = " ".join(rng.choices(words, k=150)) + f"\n{i} + {i + 1} = {2 * i + 1}. \\boxed{{{2 * i + 1}}}"
            fh.write(json.dumps({"id": question["id"], "subject": "math", "status": "accepted", "question": question,
                                 "steps": [{"index": 0, "stage": "cot", "kind": "solution", "response": response, "model": "m",
                                            "verdict": {"ok": True, "reason": "equal"}}]}) + "\n")
    return run_dir


def _export_cli(run: Path, out: Path, fmt: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scireflect.cli", "export", str(run), "--out", str(out), "--format", fmt, *extra]


def _ids_in(out: Path, fmt: str) -> list[str]:
    """The row ids of a complete export in ``out`` (fails when it is not one)."""
    report = json.loads((out / "filter_report.json").read_text())
    assert (out / "README.md").read_text().startswith("---") and (out / "dropped.jsonl").is_file()
    if fmt == "hf":
        import datasets

        ids = datasets.load_from_disk(str(out))["id"]
    else:
        ids = [json.loads(line)["id"] for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(ids) == report["examples"]
    return ids


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _inside(out: Path) -> set[tuple[str, int]]:
    """The entries of ``out`` with their modification times (empty when absent): writing into it changes this."""
    try:
        return {(p.name, p.stat().st_mtime_ns) for p in out.iterdir()}
    except (FileNotFoundError, NotADirectoryError):  # absent, or renamed under us
        return set()


def _writing(proc: subprocess.Popen, out: Path, before: set[tuple[str, int]]) -> bool:
    """Whether ``proc`` has started writing the export: its ``.OUT.partial-PID`` exists, or ``out`` changed."""
    return (out.parent / f".{out.name}.partial-{proc.pid}").exists() or _inside(out) != before


def _timed_run(cmd: list[str], out: Path) -> tuple[float, float]:
    """Run ``cmd`` to the end, watching ``out``: (seconds in all, seconds of its write phase: from its first
    write until its partial folder is renamed into place, or its card is written)."""
    before = _inside(out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out.parent / f".{out.name}.partial-{proc.pid}"
    start, seen, gone = time.monotonic(), None, None
    while proc.poll() is None and gone is None:
        if seen is None and _writing(proc, out, before):
            seen = time.monotonic()
        if seen is not None and not partial.exists() and (out / "README.md").exists():
            gone = time.monotonic()
        time.sleep(0.0005)
    assert proc.wait() == 0 and seen is not None
    return time.monotonic() - start, (gone or time.monotonic()) - seen


def _kill_at(cmd: list[str], out: Path, delay: float, *, after_write_starts: bool) -> str:
    """Start ``cmd`` and SIGKILL it ``delay`` seconds after its start, or after its write starts; return
    where the kill landed: ``done`` (it had exited), ``writing`` (its partial folder has no card yet),
    ``publishing`` (the card is written: fsync and rename) or ``outside``."""
    before = _inside(out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out.parent / f".{out.name}.partial-{proc.pid}"
    start = time.monotonic()
    if after_write_starts:
        while proc.poll() is None and not _writing(proc, out, before):
            time.sleep(0.0005)
        start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < delay:
        time.sleep(0.0005)
    if proc.poll() is not None:
        return "done"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not partial.exists():
        return "outside"
    return "publishing" if (partial / "README.md").exists() else "writing"


@pytest.mark.parametrize("fmt, random_kills, write_kills", [("hf", 3, 4), ("jsonl", 1, 2)])
def test_an_export_killed_at_random_points_leaves_no_half_written_folder(tmp_path, fmt, random_kills, write_kills):
    """The real CLI in a subprocess, SIGKILLed at random delays across its whole run and then during its
    write (until ``write_kills`` kills landed there); after each kill OUT is absent or a complete export
    with every row, and the next run, a re-run of the same command, goes on from there. The delays are
    seeded (``SCIREFLECT_KILL_SEED``) and listed on failure."""
    if fmt == "hf":
        pytest.importorskip("datasets")
    seed = int(os.environ.get("SCIREFLECT_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    run = _synthetic_run(tmp_path / "run", 1000)
    reference = tmp_path / "reference"
    duration, window = _timed_run(_export_cli(run, reference, fmt), reference)
    expected = _ids_in(reference, fmt)
    assert len(expected) == 1000

    out = tmp_path / "out"
    landed: list[tuple[float, bool, str]] = []

    def kill(delay: float, after_write_starts: bool) -> str:
        cmd = _export_cli(run, out, fmt, *(["--overwrite"] if out.exists() else []))
        landed.append((round(delay, 3), after_write_starts, _kill_at(cmd, out, delay, after_write_starts=after_write_starts)))
        if out.exists():
            try:
                assert _ids_in(out, fmt) == expected, "rows differ"
            except (AssertionError, OSError, ValueError) as exc:
                pytest.fail(f"{out} is neither absent nor a complete export ({exc!r}); seed {seed}; "
                            f"kills (delay, after write start, where): {landed}")
        return landed[-1][2]

    for _ in range(random_kills):
        kill(rng.uniform(0.0, duration), False)
    in_write = 0
    for _ in range(3 * write_kills):  # timing varies with the machine's load: retry until enough land in the write
        in_write += kill(rng.uniform(0.0, window), True) in ("writing", "publishing")
        if in_write == write_kills:
            break
    assert in_write, f"no kill landed in the write phase ({window:.3f} s); seed {seed}: {landed}"

    left = _leftovers(out)
    final = subprocess.run(_export_cli(run, out, fmt, *(["--overwrite"] if out.exists() else [])), capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "300"})  # a long tmp path is folded at 80 columns
    assert final.returncode == 0, final.stderr
    assert _ids_in(out, fmt) == expected and _leftovers(out) == []
    for name in left:  # each leftover of a killed run is named when it is removed
        assert name in final.stderr and "is not running" in final.stderr


@pytest.mark.parametrize("kind", ["partial", "replaced"])
def test_a_leftover_of_a_running_export_is_left_alone_and_a_dead_ones_is_removed(tmp_path, runs, kind):
    out = tmp_path / "out"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f".out.{kind}-{live.pid}").mkdir()
        result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", str(runs[0]), "--out", str(out)])
        assert result.exit_code == 2 and f"another export (pid {live.pid})" in result.output
    finally:
        live.kill()
        live.wait()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", str(runs[0]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f".out.{kind}-{live.pid}" in result.output and _leftovers(out) == [] and len(_ids_in(out, "jsonl")) == 4


def test_overwrite_replaces_a_previous_export_but_not_another_folder(tmp_path, runs):
    out = tmp_path / "out"
    assert CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", str(runs[0]), "--out", str(out)]).exit_code == 0
    (out / "stale.txt").write_text("from an older export")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", *map(str, runs), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not (out / "stale.txt").exists() and len(_ids_in(out, "jsonl")) == 5 and _leftovers(out) == []
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("mine")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["export", str(runs[0]), "--out", str(mine), "--overwrite"])
    assert result.exit_code == 2 and "only replaces a previous export" in result.output and (mine / "todo.txt").exists()
