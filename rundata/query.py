"""Looking up finished questions: a flat row per question, filters, and lookup by id or prefix.

Shared by ``scireflect traces`` and the web viewer.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..graphs.state import FINAL_STATUSES, STAGES, solution_steps
from .records import last_verdict
from .summary import subject_of


def trace_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One question as a flat row for tables and the viewer's JSON.

    Keys: ``id``, ``subject``, ``status``, ``stage`` (accepted stage or ``None``), ``stop_reason``,
    ``reason`` (last attempt's verifier reason), ``attempts``, ``tokens``, ``seconds``,
    ``reference`` (the reference answer), ``extracted`` (the last extracted answer), ``finished_at``.
    """
    verdict = last_verdict(record) or {}
    question = record.get("question") or {}
    return {
        "id": record.get("id"),
        "subject": subject_of(record),
        "status": record.get("status"),
        "stage": record.get("accepted_stage"),
        "stop_reason": record.get("stop_reason"),
        "reason": verdict.get("reason"),
        "attempts": int(record.get("n_attempts") or len(solution_steps(record.get("steps") or []))),
        "tokens": int(record.get("tokens") or 0),
        "seconds": float(record.get("seconds") or 0.0),
        "reference": question.get("answer"),
        "extracted": verdict.get("extracted"),
        "finished_at": record.get("finished_at"),
    }


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    values = {value} if isinstance(value, str) else set(value)
    return values or None


def filter_traces(
    records: Iterable[Mapping[str, Any]],
    *,
    subject: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = None,
    stage: str | Iterable[str] | None = None,
    reason: str | Iterable[str] | None = None,
) -> list[Mapping[str, Any]]:
    """The records matching every given filter; each filter is one value or several (any of them).

    Args:
        subject: question subjects (``math``, ``physics``, ...).
        status: final statuses: ``accepted``, ``rejected``, ``invalid``, ``error``, ``unverified``.
        stage: the stage that succeeded: ``cot``, ``reflection``, ``answer_guided`` (so only accepted
            questions match).
        reason: verifier reason codes of the last attempt (``numeric_mismatch``, ``no_answer``, ...).

    Raises:
        ValueError: an unknown status or stage (the message lists the valid ones).
    """
    subjects, statuses, stages, reasons = map(_as_set, (subject, status, stage, reason))
    if statuses and not statuses <= set(FINAL_STATUSES):
        raise ValueError(f"unknown status {', '.join(sorted(statuses - set(FINAL_STATUSES)))}; use {', '.join(FINAL_STATUSES)}")
    if stages and not stages <= set(STAGES):
        raise ValueError(f"unknown stage {', '.join(sorted(stages - set(STAGES)))}; use {', '.join(STAGES)}")
    out = []
    for record in records:
        row = trace_row(record)
        if subjects and row["subject"] not in subjects:
            continue
        if statuses and row["status"] not in statuses:
            continue
        if stages and row["stage"] not in stages:
            continue
        if reasons and row["reason"] not in reasons:
            continue
        out.append(record)
    return out


def find_trace(records: Sequence[Mapping[str, Any]], qid: str) -> Mapping[str, Any]:
    """The record with id ``qid``, else the only record whose id starts with ``qid``.

    Raises:
        KeyError: no such record, or the prefix is ambiguous (the message suggests ids).
    """
    by_id = {r["id"]: r for r in records}
    if qid in by_id:
        return by_id[qid]
    matches = [i for i in by_id if i.startswith(qid)]
    if len(matches) == 1:
        return by_id[matches[0]]
    if matches:
        raise KeyError(f"'{qid}' matches several questions: {', '.join(matches[:10])}")
    close = difflib.get_close_matches(qid, list(by_id), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no question '{qid}' in the traces{hint}")


__all__ = ["filter_traces", "find_trace", "trace_row"]
