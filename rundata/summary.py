"""Counting a run: outcomes per subject (``summary.json``, the summary table) and the detailed stats
of ``scireflect traces stats`` and the viewer. Both count with :class:`Outcomes`, and every token
and second comes from :func:`scireflect.graphs.state.total_tokens` / ``step_seconds``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..graphs.state import STAGES, solution_steps, step_seconds, step_tokens, strategy_of
from ..verifiers.base import INVALID
from .records import last_verdict


@dataclass
class Outcomes:
    """How the questions of one subject (or ``all``) ended, and what they cost.

    Attributes:
        questions: questions counted.
        accepted_cot / accepted_fresh / accepted_reflection / accepted_answer_guided: accepted, by the
            strategy of the attempt that succeeded: the first chain of thought; a fresh attempt
            after it (``program``, ``resample``: stage ``cot``, no earlier text or reference shown);
            reflection (Critic, then Reviser); the answer-guided revision.
        rejected / invalid / error / unverified: the other final statuses (``invalid``: the last
            attempt was cut off, a loop or contradicted its box; ``unverified``: formal proofs no
            Lean checked).
        attempts: solution attempts made.
        tokens: prompt + completion tokens.
        seconds: model and verifier seconds.
    """

    questions: int = 0
    accepted_cot: int = 0
    accepted_fresh: int = 0
    accepted_reflection: int = 0
    accepted_answer_guided: int = 0
    rejected: int = 0
    invalid: int = 0
    error: int = 0
    unverified: int = 0
    attempts: int = 0
    tokens: int = 0
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        """Accepted at any stage."""
        return self.accepted_cot + self.accepted_fresh + self.accepted_reflection + self.accepted_answer_guided

    def add(self, record: Mapping[str, Any]) -> None:
        """Count one trace record."""
        self.questions += 1
        status = record.get("status")
        solutions = solution_steps(record.get("steps") or [])
        if status == "accepted":
            strategy = strategy_of(solutions[-1] if solutions else {"stage": record.get("accepted_stage")})
            counter = _ACCEPTED_BY_STRATEGY.get(strategy, "accepted_fresh")  # a trace file's strategy is untrusted text
            setattr(self, counter, getattr(self, counter) + 1)
        elif status in ("invalid", "error", "unverified"):
            setattr(self, status, getattr(self, status) + 1)
        else:
            self.rejected += 1
        self.attempts += int(record.get("n_attempts") or len(solutions))
        self.tokens += int(record.get("tokens") or 0)
        self.seconds += float(record.get("seconds") or 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Every counter plus ``accepted``, seconds rounded to ms."""
        return {**asdict(self), "seconds": round(self.seconds, 3), "accepted": self.accepted}


_ACCEPTED_BY_STRATEGY = {"cot": "accepted_cot", "reflect": "accepted_reflection", "answer_guided": "accepted_answer_guided"}
"""The :class:`Outcomes` counter of an accepted attempt's strategy (:data:`~scireflect.graphs.state.FRESH_STRATEGIES`,
and any other: ``accepted_fresh``)."""


def subject_of(record: Mapping[str, Any]) -> str:
    """A record's subject (``general`` when it has none)."""
    return record.get("subject") or (record.get("question") or {}).get("subject") or "general"


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Outcomes]:
    """:class:`Outcomes` per subject, subjects sorted by name, then ``all``."""
    by_subject: dict[str, Outcomes] = defaultdict(Outcomes)
    total = Outcomes()
    for record in records:
        by_subject[subject_of(record)].add(record)
        total.add(record)
    return {**dict(sorted(by_subject.items())), "all": total}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def trace_stats(records: Iterable[Mapping[str, Any]], *, top: int = 3) -> dict[str, Any]:
    """Counts, acceptance rates, tokens, time and verifier failure reasons of a set of questions.

    Returns a JSON-serialisable dict:

    ``subjects``: ``{subject: row}`` sorted by name plus ``"all"``: the :class:`Outcomes` counters
    plus ``accepted``, ``acceptance_rate`` (accepted / questions), ``mean_tokens``, ``mean_seconds``,
    ``mean_attempts``, ``top_failures`` (``[[reason, count], ...]``, the ``top`` most common
    reasons of failed attempts).

    ``stages``: one row per (subject, stage) with attempts at that stage, subjects sorted, then
    ``"all"``: ``subject``, ``stage``, ``questions`` (questions with a step at that stage),
    ``attempts``, ``accepted`` (attempts the verifier accepted), ``pass_rate`` (accepted / attempts),
    ``tokens`` and ``seconds`` spent in the stage (critiques count in ``reflection``), ``top_failures``.

    ``failure_reasons``: every failed attempt's verifier reason (``ok`` not true), most common
    first: ``{"reason", "count", "share", "by_stage": {stage: count}}``.

    ``final_reasons``: ``{reason: count}`` of the last attempt of rejected questions.

    ``invalid_attempts``: ``{kind: count}`` of the attempts whose verdict is ``invalid``, by kind
    (``truncated``, ``degenerate``, ``self_contradiction``), most common first, over all questions.

    Rates are ``None`` when the denominator is 0. Records lacking fields count as zeros.
    """
    records = list(records)
    stage_rows: dict[tuple[str, str], dict[str, Any]] = {}
    failures_by_subject: dict[str, Counter] = defaultdict(Counter)
    failures_by_stage: dict[tuple[str, str], Counter] = defaultdict(Counter)
    failure_stages: dict[str, Counter] = defaultdict(Counter)
    final_reasons: Counter = Counter()
    invalid_attempts: Counter = Counter()

    for record in records:
        subject = subject_of(record)
        if record.get("status") == "rejected" and (reason := (last_verdict(record) or {}).get("reason")):
            final_reasons[reason] += 1
        seen_stages: set[str] = set()
        for step in record.get("steps") or []:
            stage = step.get("stage") or "cot"
            verdict = step.get("verdict") or {}
            failed = step.get("kind", "solution") == "solution" and verdict.get("ok") is not True and verdict.get("reason")
            for name in (subject, "all"):
                row = stage_rows.setdefault((name, stage), {"subject": name, "stage": stage, "questions": 0, "attempts": 0,
                                                            "accepted": 0, "tokens": 0, "seconds": 0.0})
                row["tokens"] += step_tokens(step)
                row["seconds"] += step_seconds(step)
                row["questions"] += stage not in seen_stages
                if step.get("kind", "solution") == "solution":
                    row["attempts"] += 1
                    row["accepted"] += verdict.get("ok") is True
                if failed:
                    failures_by_subject[name][verdict["reason"]] += 1
                    failures_by_stage[(name, stage)][verdict["reason"]] += 1
            if failed:
                failure_stages[verdict["reason"]][stage] += 1
                if verdict["reason"] == INVALID:
                    invalid_attempts[str((verdict.get("details") or {}).get("invalid") or "invalid")] += 1
            seen_stages.add(stage)

    subjects = {}
    for name, outcomes in summarize(records).items():
        n = outcomes.questions
        subjects[name] = {
            **outcomes.to_dict(),
            "acceptance_rate": _rate(outcomes.accepted, n),
            "mean_tokens": round(outcomes.tokens / n, 1) if n else None,
            "mean_seconds": round(outcomes.seconds / n, 3) if n else None,
            "mean_attempts": round(outcomes.attempts / n, 2) if n else None,
            "top_failures": [list(x) for x in failures_by_subject[name].most_common(top)],
        }

    def stage_key(item: tuple[tuple[str, str], Any]) -> tuple:
        (name, stage), _ = item
        return (name == "all", name, STAGES.index(stage) if stage in STAGES else len(STAGES), stage)

    stages = []
    for key, row in sorted(stage_rows.items(), key=stage_key):
        row.update(pass_rate=_rate(row["accepted"], row["attempts"]), seconds=round(row["seconds"], 3),
                   top_failures=[list(x) for x in failures_by_stage[key].most_common(top)])
        stages.append(row)
    total_failures = sum(failures_by_subject["all"].values())
    return {
        "questions": len(records),
        "subjects": subjects,
        "stages": stages,
        "failure_reasons": [
            {"reason": reason, "count": count, "share": _rate(count, total_failures), "by_stage": dict(failure_stages[reason])}
            for reason, count in failures_by_subject["all"].most_common()
        ],
        "final_reasons": dict(final_reasons.most_common()),
        "invalid_attempts": dict(invalid_attempts.most_common()),
    }


__all__ = ["Outcomes", "subject_of", "summarize", "trace_stats"]
