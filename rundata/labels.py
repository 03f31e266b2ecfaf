"""``labels.jsonl``: people's (and model judges') verdicts on accepted traces, and the precision they measure.

An accepted trace is training data, so the question a user asks of 50,000 of them is how many are
really right. A reviewer labels a sample (``scireflect view RUN --review``); each label is one
appended line of ``RUN/labels.jsonl``::

    {"id": "gsm8k-train-0001", "trace_hash": "3f2a...", "label": "invalid", "reason": "wrong_reasoning",
     "note": "", "reviewer": "ana", "time": "2026-12-07T15:40:02+00:00"}

- ``trace_hash`` is :func:`trace_hash` of the record the reviewer saw: a label never applies to a
  trace that changed afterwards (a re-run, a merge that replaced it); such labels are *stale*.
- Labels are only appended (``write`` + ``fsync`` each): a kill loses nothing already labelled, and
  re-labelling keeps the history. For each trace and kind of reviewer, the last label wins.
- ``skip`` is recorded (the reviewer saw it) but is no judgement.
- Reviewers named ``model:<name>`` are model judges; :func:`precision` counts people by default.

Precision is the share of labelled accepted traces that are valid, with the Wilson score interval
(Wilson 1927; ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``), overall and by subject,
stage and strategy, and the number of labels that would narrow the interval to a given half-width.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..graphs.state import solution_steps, strategy_of
from .jsonl import JsonlError, append_lines, dumps_line, read_complete_lines
from .summary import subject_of

LABELS = "labels.jsonl"
"""The labels file of a run directory."""

VERDICTS = ("valid", "invalid", "skip")
"""What a label says: the trace's reasoning and answer are right, are not, or the reviewer skipped it."""

INVALID_REASONS = ("wrong_reasoning", "wrong_answer", "leaked_answer", "unreadable", "other")
"""Why a trace is ``invalid`` (the review page offers these, in this order)."""

MODEL_REVIEWER = "model:"
"""Prefix of a model judge's reviewer name (``model:qwen2.5-coder-1.5b``)."""

_MAX_TEXT = 2000


class LabelError(ValueError):
    """A label that cannot be recorded (unknown verdict or reason, no trace, an empty reviewer)."""


def trace_hash(record: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a trace record's canonical JSON (sorted keys, no spaces): what a label was given to."""
    data = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def labels_path(run_dir: str | Path) -> Path:
    """``run_dir/labels.jsonl`` (``run_dir`` may also be the run's ``traces.jsonl``, as wherever runs are named)."""
    path = Path(run_dir)
    return (path.parent if path.is_file() else path) / LABELS


def make_label(record: Mapping[str, Any], verdict: str, *, reviewer: str, reason: str | None = None, note: str = "",
               now: datetime | None = None) -> dict[str, Any]:
    """A label of ``record`` (the trace as the reviewer saw it).

    Raises:
        LabelError: ``verdict`` not in :data:`VERDICTS`; an ``invalid`` label without a reason of
            :data:`INVALID_REASONS` (or a reason on another verdict); an empty reviewer; a record without an id.
    """
    if verdict not in VERDICTS:
        raise LabelError(f"unknown label {verdict!r}; use {', '.join(VERDICTS)}")
    if verdict == "invalid" and reason not in INVALID_REASONS:
        raise LabelError(f"an invalid label needs a reason: {', '.join(INVALID_REASONS)}")
    if verdict != "invalid" and reason:
        raise LabelError(f"only an invalid label has a reason (got {reason!r} on {verdict!r})")
    reviewer = str(reviewer or "").strip()
    if not reviewer or len(reviewer) > 200:
        raise LabelError("a label needs a reviewer name (at most 200 characters)")
    if not isinstance(record.get("id"), str):
        raise LabelError("a label needs a trace with an id")
    return {"id": record["id"], "trace_hash": trace_hash(record), "label": verdict, "reason": reason,
            "note": str(note or "")[:_MAX_TEXT], "reviewer": reviewer,
            "time": (now or datetime.now(UTC)).isoformat(timespec="seconds")}


def append_label(run_dir: str | Path, label: Mapping[str, Any]) -> None:
    """Append one label to ``run_dir/labels.jsonl``, durable (``fsync``) when this returns."""
    append_lines(labels_path(run_dir), [dumps_line(dict(label))])


def read_labels(run_dir: str | Path) -> tuple[list[dict[str, Any]], list[JsonlError]]:
    """Every label of a run, in file order, and one error (naming file and line) per line that is not a
    label. A last line cut by a kill is ignored. No file: no labels."""
    path = labels_path(run_dir)
    if not path.is_file():
        return [], []
    lines, _ = read_complete_lines(path)
    labels, problems = [], []
    for lineno, value in lines:
        if isinstance(value, JsonlError):
            problems.append(value)
        elif not (isinstance(value.get("id"), str) and isinstance(value.get("trace_hash"), str)
                  and value.get("label") in VERDICTS and isinstance(value.get("reviewer"), str)):
            problems.append(JsonlError(path, lineno, "not a label (id, trace_hash, label and reviewer are needed)"))
        else:
            labels.append(value)
    return labels, problems


def is_model_reviewer(reviewer: str) -> bool:
    """Whether ``reviewer`` names a model judge (``model:...``)."""
    return str(reviewer).startswith(MODEL_REVIEWER)


def current_labels(records: Iterable[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]], *,
                   models: bool = False) -> tuple[dict[str, dict[str, Any]], int]:
    """The label in force for each trace: the last one, of people (``models=False``) or of model judges,
    whose ``trace_hash`` is the trace's current hash. ``skip`` labels count as seen, not as judged: a
    later skip does not undo an earlier judgement.

    Returns:
        ``({id: label}, number of stale labels)``: stale labels were given to a trace that has changed
        since (or that is no longer in the run) and are not counted.
    """
    return _in_force({r["id"]: trace_hash(r) for r in records}, labels, models)


def _in_force(hashes: Mapping[str, str], labels: Iterable[Mapping[str, Any]],
              models: bool) -> tuple[dict[str, dict[str, Any]], int]:
    """:func:`current_labels` from the traces' hashes (``{id: trace_hash}``), computed once by the caller."""
    current: dict[str, dict[str, Any]] = {}
    stale = 0
    for label in labels:
        if is_model_reviewer(label["reviewer"]) != models:
            continue
        if hashes.get(label["id"]) != label["trace_hash"]:
            stale += 1
            continue
        if label["label"] != "skip":
            current[label["id"]] = dict(label)
    return current, stale


def accepted_strategy(record: Mapping[str, Any]) -> str:
    """The strategy of a trace's accepted (last) attempt (``cot`` for traces recorded before strategies)."""
    steps = solution_steps(record.get("steps") or [])
    return strategy_of(steps[-1]) if steps else "cot"


@dataclass(frozen=True)
class Precision:
    """Precision of one group of labelled accepted traces.

    Attributes:
        valid: traces labelled valid.
        labelled: traces labelled valid or invalid.
        low, high: the Wilson score 95% interval of ``valid / labelled`` (0 and 1 when nothing is labelled).
        more_for: labels still needed for the interval's half-width to reach the target (see :func:`labels_needed`).
    """

    valid: int
    labelled: int
    low: float
    high: float
    more_for: int

    @property
    def value(self) -> float | None:
        """``valid / labelled``, or ``None`` when nothing is labelled."""
        return self.valid / self.labelled if self.labelled else None


def wilson_interval(valid: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``valid`` successes in ``n`` trials (``(0, 1)`` for ``n == 0``), from scipy."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(valid, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def labels_needed(valid: int, n: int, half_width: float = 0.05, confidence: float = 0.95) -> int:
    """How many more labels would narrow the Wilson interval to ``half_width`` on each side, if the share
    of valid traces stays what it is (0.5, the worst case, when nothing is labelled yet). 0 if it already is."""
    p = valid / n if n else 0.5
    z = _z(confidence)
    # Wilson half-width: z / (1 + z^2/m) * sqrt(p(1-p)/m + z^2/(4m^2)); it falls as m grows.
    def width(m: int) -> float:
        return z / (1 + z * z / m) * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    if n and width(n) <= half_width:
        return 0
    low, high = max(n, 1), max(n, 1)
    while width(high) > half_width:
        high *= 2
    while low < high:
        mid = (low + high) // 2
        if width(mid) <= half_width:
            high = mid
        else:
            low = mid + 1
    return max(0, high - n)


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def precision(records: Iterable[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]], *, models: bool = False,
              half_width: float = 0.05) -> dict[str, Any]:
    """The precision of a run's accepted traces from its labels.

    Args:
        records: the run's trace records (only ``accepted`` ones are counted).
        labels: :func:`read_labels`' labels.
        models: count model judges' labels instead of people's.
        half_width: the interval half-width :attr:`Precision.more_for` aims at (0.05: +-5 points).

    Returns:
        ``{"overall": Precision, "by": {"subject"|"stage"|"strategy": {value: Precision}}, "accepted": n,
        "labelled": n, "stale": n, "reasons": {reason: n}}``.
    """
    accepted = [r for r in records if r.get("status") == "accepted"]
    current, stale = current_labels(accepted, labels, models=models)
    groups: dict[str, dict[str, list[bool]]] = {"subject": {}, "stage": {}, "strategy": {}}
    overall: list[bool] = []
    reasons: dict[str, int] = {}
    for record in accepted:
        label = current.get(record["id"])
        if label is None:
            continue
        ok = label["label"] == "valid"
        overall.append(ok)
        if not ok:
            reasons[label.get("reason") or "other"] = reasons.get(label.get("reason") or "other", 0) + 1
        keys = {"subject": subject_of(record), "stage": record.get("accepted_stage") or "-", "strategy": accepted_strategy(record)}
        for by, value in keys.items():
            groups[by].setdefault(value, []).append(ok)

    def summarize(oks: list[bool]) -> Precision:
        valid, n = sum(oks), len(oks)
        low, high = wilson_interval(valid, n)
        return Precision(valid, n, low, high, labels_needed(valid, n, half_width))

    return {"overall": summarize(overall), "by": {by: {v: summarize(o) for v, o in sorted(g.items())} for by, g in groups.items()},
            "accepted": len(accepted), "labelled": len(overall), "stale": stale, "reasons": reasons}


def agreement(records: Iterable[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """How far model judges agree with people on the accepted traces both have labelled (labels in force,
    :func:`current_labels`): ``{"n", "matrix": {people's label: {model's label: n}}, "kappa"}`` with
    Cohen's kappa (scikit-learn's ``cohen_kappa_score``; ``None`` when it is undefined: fewer than two
    traces, or one label only on both sides)."""
    hashes = {r["id"]: trace_hash(r) for r in records if r.get("status") == "accepted"}
    labels = list(labels)
    people, _ = _in_force(hashes, labels, models=False)
    models, _ = _in_force(hashes, labels, models=True)
    both = sorted(set(people) & set(models))
    pairs = [(people[q]["label"], models[q]["label"]) for q in both]
    matrix = {h: {m: sum(1 for p in pairs if p == (h, m)) for m in ("valid", "invalid")} for h in ("valid", "invalid")}
    kappa = None
    if len(pairs) >= 2 and len({p for pair in pairs for p in pair}) > 1:
        from sklearn.metrics import cohen_kappa_score

        value = cohen_kappa_score([h for h, _ in pairs], [m for _, m in pairs], labels=["valid", "invalid"])
        kappa = None if math.isnan(value) else round(float(value), 4)
    return {"n": len(pairs), "matrix": matrix, "kappa": kappa}


def review_order(rows: Iterable[Mapping[str, Any]], seed: int = 0) -> list[str]:
    """The ids of the accepted traces among ``rows`` (trace records or :func:`~scireflect.rundata.query.trace_row`
    rows) in review order: a proportional stratified sample by subject and stage. Each stratum's ids are
    shuffled with ``random.Random(seed)`` and spread evenly over the order (systematic allocation), so
    any prefix holds each stratum in about its share of the run and a prefix's precision estimates the
    run's. The same rows and seed give the same order."""
    import random
    from collections import defaultdict

    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        if row.get("status") == "accepted":
            stage = row["stage"] if "stage" in row else row.get("accepted_stage")
            strata[(subject_of(row), str(stage))].append(row["id"])
    rng = random.Random(seed)
    keyed: list[tuple[float, str]] = []
    for name in sorted(strata):
        ids = strata[name]
        rng.shuffle(ids)
        offset = rng.random()
        keyed += [((i + offset) / len(ids), qid) for i, qid in enumerate(ids)]
    return [qid for _, qid in sorted(keyed)]


def people_labels(run_dir: str | Path) -> dict[str, dict[str, Any]] | None:
    """People's labels in force on a run's traces (:func:`current_labels`), as ``{id: label}``; ``None``
    when the run has no labels at all. ``run_dir`` may also be its ``traces.jsonl``.

    Raises:
        FileNotFoundError: the run has no ``traces.jsonl``.
        scireflect.rundata.store.TraceFileError: a complete line of it is not a trace record.
    """
    from .store import load_traces

    labels, _ = read_labels(run_dir)
    if not labels:
        return None
    return current_labels(load_traces(run_dir), labels)[0]


def invalid_by_review(run_dir: str | Path) -> dict[str, dict[str, Any]] | None:
    """The traces of a run that people labelled ``invalid`` (:func:`people_labels`), as ``{id: label}``;
    ``None`` when the run has no labels at all (then nothing is left out). Raises as :func:`people_labels`."""
    current = people_labels(run_dir)
    return None if current is None else {qid: label for qid, label in current.items() if label["label"] == "invalid"}


__all__ = ["INVALID_REASONS", "agreement", "LABELS", "MODEL_REVIEWER", "VERDICTS", "LabelError", "Precision", "accepted_strategy",
           "append_label", "current_labels", "invalid_by_review", "is_model_reviewer", "labels_needed", "labels_path", "make_label", "people_labels", "precision",
           "read_labels", "review_order", "trace_hash", "wilson_interval"]
