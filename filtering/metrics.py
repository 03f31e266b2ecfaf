"""Held-out metrics for a scorer of solution attempts: ROC-AUC, ECE, precision/recall, shortcut audit.

All functions take plain sequences: ``labels`` (bool, 1 = the verifier accepted the attempt) and
``scores`` (P(correct) in [0, 1]) of the same length ``n``.

The shortcut audit asks whether something other than the solution's content predicts the label: the
response length alone (characters), the stage alone (``cot``/``reflection``/``answer_guided``; an
answer-guided revision saw the reference answer, so it is right far more often) and the subject alone.
For each it gives the ROC-AUC of that feature used as a score, in its better direction for length and
with each category scored by its in-sample positive rate for stage and subject: upper bounds on what
the shortcut alone achieves on this data. A classifier whose AUC is not clearly above them has
learned little beyond the shortcut (SciGLM's released classifier data shows the failure: its
positives carried human exam markers that its negatives lacked). ``within_stage_auc`` (the
classifier's AUC inside each stage) and ``pairwise_accuracy`` (for questions with both a correct and
a wrong attempt, how often the correct one scores higher) remove the stage and the question's
difficulty from the comparison.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

STAGE_ORDER = {"cot": 0, "reflection": 1, "answer_guided": 2}


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """ROC-AUC (:func:`sklearn.metrics.roc_auc_score`; tied scores count half); ``None`` when one class is missing."""
    from sklearn.metrics import roc_auc_score

    if len(set(map(bool, labels))) < 2:
        return None
    return float(roc_auc_score([bool(y) for y in labels], scores))


def expected_calibration_error(labels: Sequence[bool], scores: Sequence[float], bins: int = 10) -> float | None:
    """ECE with ``bins`` equal-width bins on [0, 1] (a score of 1 falls in the last): the sum over bins of
    |share correct - mean score| weighted by the bin's share of items (Guo et al. 2017, arXiv 1706.04599).
    scikit-learn has no ECE; :func:`sklearn.calibration.calibration_curve` gives the per-bin means but
    not the bin sizes. ``None`` for no items."""
    import numpy as np

    if not len(scores):
        return None
    s = np.asarray(scores, dtype=np.float64)
    b = np.minimum((s * bins).astype(np.int64), bins - 1)
    gap = np.bincount(b, weights=np.asarray(labels, dtype=np.float64), minlength=bins) - np.bincount(b, weights=s, minlength=bins)
    return float(np.abs(gap).sum() / len(s))


def brier(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Mean squared error of the scores against the 0/1 labels (:func:`sklearn.metrics.brier_score_loss`)."""
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss([int(bool(y)) for y in labels], scores, labels=[0, 1])) if len(scores) else None


def precision_recall(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, Any]:
    """Precision, recall and kept share when attempts with ``score >= threshold`` are kept."""
    kept = [y for y, s in zip(labels, scores, strict=True) if s >= threshold]
    tp = sum(kept)
    pos = sum(labels)
    return {
        "threshold": threshold,
        "kept": len(kept),
        "precision": tp / len(kept) if kept else None,
        "recall": tp / pos if pos else None,
        "base_rate": pos / len(labels) if labels else None,
    }


def threshold_for_precision(labels: Sequence[bool], scores: Sequence[float], target: float, min_kept: int = 5) -> dict[str, Any]:
    """The lowest threshold whose kept set (``score >= t``) reaches precision ``target`` (most recall).

    Only thresholds that keep at least ``min_kept`` items (or all items, when fewer) are considered,
    so that one lucky item cannot set the threshold. When no threshold reaches ``target``, the one of
    highest precision is returned with ``reachable: False``.

    Returns:
        :func:`precision_recall`'s dict at the chosen threshold plus ``target`` and ``reachable``.
    """
    if not scores:
        return {"threshold": 0.5, "kept": 0, "precision": None, "recall": None, "base_rate": None, "target": target, "reachable": False}
    floor = min(min_kept, len(scores))
    candidates = sorted(set(scores))
    best: dict[str, Any] | None = None
    for t in candidates:  # ascending: the first that reaches the target keeps the most
        pr = precision_recall(labels, scores, t)
        if pr["kept"] < floor or pr["precision"] is None:
            continue
        if pr["precision"] >= target:
            return {**pr, "target": target, "reachable": True}
        if best is None or pr["precision"] > best["precision"]:
            best = pr
    best = best or precision_recall(labels, scores, candidates[0])
    return {**best, "target": target, "reachable": False}


def _rate_scores(values: Sequence[Any], labels: Sequence[bool]) -> list[float]:
    by: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for v, y in zip(values, labels, strict=True):
        by[v][0] += int(y)
        by[v][1] += 1
    return [by[v][0] / by[v][1] for v in values]


def _best_direction(auc: float | None) -> float | None:
    return None if auc is None else max(auc, 1 - auc)


def pairwise_accuracy(labels: Sequence[bool], scores: Sequence[float], groups: Sequence[str]) -> dict[str, Any]:
    """Within-question ranking: over (correct, wrong) attempt pairs of one question, the share where
    the correct one scores higher (ties half). ``questions``: questions with both kinds of attempt."""
    by: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for y, s, g in zip(labels, scores, groups, strict=True):
        by[g].append((y, s))
    wins = pairs = 0.0
    questions = 0
    for items in by.values():
        pos = [s for y, s in items if y]
        neg = [s for y, s in items if not y]
        if pos and neg:
            questions += 1
            for p in pos:
                for q in neg:
                    pairs += 1
                    wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return {"questions": questions, "pairs": int(pairs), "accuracy": wins / pairs if pairs else None}


def grouped_bootstrap_auc(labels: Sequence[bool], scores: Sequence[float], groups: Sequence[str], *, rounds: int = 500,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """A percentile bootstrap interval for ROC-AUC that resamples whole questions (``groups``), since
    attempts of one question are not independent (the cluster bootstrap; Field & Welsh 2007).
    ``None`` when fewer than 2 rounds have both classes. Seeded: the same input gives the same interval."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    by: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        by[g].append(i)
    members = [np.asarray(by[g]) for g in sorted(by)]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(rounds):
        idx = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
        if y[idx].any() and not y[idx].all():
            aucs.append(roc_auc_score(y[idx], s[idx]))
    if len(aucs) < 2:
        return None
    lo, hi = np.quantile(aucs, [(1 - level) / 2, (1 + level) / 2], method="lower")
    return (float(lo), float(hi))


def evaluate(
    labels: Sequence[bool],
    scores: Sequence[float],
    *,
    threshold: float,
    subjects: Sequence[str],
    stages: Sequence[str],
    lengths: Sequence[int],
    groups: Sequence[str],
) -> dict[str, Any]:
    """Every held-out figure for one scorer: overall, per subject, per stage, pairwise, shortcut audit.

    Args:
        labels, scores: verifier labels and P(correct) of ``n`` held-out attempts.
        threshold: the keep threshold (``score >= threshold``).
        subjects, stages, lengths, groups: per attempt: subject, stage, response length in characters,
            question id.

    Returns:
        ``{"n", "positives", "roc_auc", "ece", "brier", "at_threshold", "per_subject", "per_stage",
        "pairwise", "shortcuts": {"length", "stage", "subject"}}``; AUCs are ``None`` where a class is missing.
        (The embedding head adds ``shortcuts["problem"]``: the same head on the problem text alone.)
    """
    labels = [bool(y) for y in labels]
    out: dict[str, Any] = {
        "n": len(labels),
        "positives": sum(labels),
        "roc_auc": roc_auc(labels, scores),
        "roc_auc_ci95": grouped_bootstrap_auc(labels, scores, groups),
        "ece": expected_calibration_error(labels, scores),
        "brier": brier(labels, scores),
        "at_threshold": precision_recall(labels, scores, threshold),
    }
    for name, keys in (("per_subject", subjects), ("per_stage", stages)):
        table = {}
        for key in sorted(set(keys)):
            idx = [i for i, k in enumerate(keys) if k == key]
            ys = [labels[i] for i in idx]
            ss = [scores[i] for i in idx]
            table[key] = {"n": len(idx), "positives": sum(ys), "roc_auc": roc_auc(ys, ss),
                          "ece": expected_calibration_error(ys, ss), **{
                              k: v for k, v in precision_recall(ys, ss, threshold).items() if k in ("kept", "precision", "recall")}}
        out[name] = table
    out["pairwise"] = pairwise_accuracy(labels, scores, groups)
    out["shortcuts"] = {
        "length": _best_direction(roc_auc(labels, [float(n) for n in lengths])),
        "length_ci95": grouped_bootstrap_auc(labels, [float(n) for n in lengths], groups),
        "stage": roc_auc(labels, _rate_scores(stages, labels)),
        "subject": roc_auc(labels, _rate_scores(subjects, labels)),
    }
    return out


def summary_lines(metrics: Mapping[str, Any], name: str = "classifier") -> list[str]:
    """Human-readable lines: the classifier's AUC/ECE/precision/recall beside the shortcut AUCs."""
    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    def ci(pair: Any) -> str:
        return "n/a" if not pair else f"{pair[0]:.3f}-{pair[1]:.3f}"

    at = metrics["at_threshold"]
    sc = metrics["shortcuts"]
    lines = [
        f"held-out attempts: {metrics['n']} ({metrics['positives']} correct, base rate {f(at['base_rate'])})",
        f"{name:<24} ROC-AUC {f(metrics['roc_auc'])} (95% CI over questions {ci(metrics.get('roc_auc_ci95'))})   "
        f"ECE {f(metrics['ece'])}   Brier {f(metrics['brier'])}",
        f"{'length alone':<24} ROC-AUC {f(sc['length'])} (better direction; raw-length CI {ci(sc.get('length_ci95'))})",
        f"{'stage alone':<24} ROC-AUC {f(sc['stage'])}",
        f"{'subject alone':<24} ROC-AUC {f(sc['subject'])}",
        *([f"{'problem alone':<24} ROC-AUC {f(sc['problem'])} (same head on the problem text: question difficulty)"]
          if "problem" in sc else []),
        f"at threshold {at['threshold']:.3f}: kept {at['kept']}, precision {f(at['precision'])}, recall {f(at['recall'])}",
        f"pairwise (same question, correct vs wrong): {f(metrics['pairwise']['accuracy'])} over "
        f"{metrics['pairwise']['pairs']} pairs in {metrics['pairwise']['questions']} questions",
    ]
    for title, key in (("per stage", "per_stage"), ("per subject", "per_subject")):
        for k, v in metrics[key].items():
            lines.append(f"{title:<12} {k:<14} n={v['n']:<4} correct={v['positives']:<4} ROC-AUC {f(v['roc_auc'])}  "
                         f"ECE {f(v['ece'])}  precision {f(v['precision'])}  recall {f(v['recall'])}")
    return lines
