"""``scireflect judge``: a model reviews a run's accepted traces and writes its labels to ``labels.jsonl``.

The judge (:mod:`scireflect.agents.judge`) reads each accepted trace in review order
(:func:`~scireflect.rundata.labels.review_order`) and names the earliest wrong step of its accepted
attempt, or none. Its labels go to the same ``labels.jsonl`` as people's, as reviewer
``model:<name>``: ``valid`` (no step wrong), ``invalid`` with reason ``wrong_reasoning`` and the step in
the note, or ``skip`` with the reply's fault when the reply held no verdict (no verdict is never
``valid``). A trace the same judge already labelled, as it is now, is not judged again, so a stopped
run goes on where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agents.judge import JUDGE_VERSION, ask_judge
from ..rundata.labels import MODEL_REVIEWER, append_label, make_label, read_labels, review_order, trace_hash
from ..rundata.store import load_traces
from .config import RunSettings
from .endpoints import open_teams


@dataclass
class JudgeSummary:
    """What a judge run did: traces judged, of them ``valid``/``invalid``/``no_verdict``, traces skipped as
    already judged, and completion tokens spent."""

    reviewer: str = ""
    judged: int = 0
    valid: int = 0
    invalid: int = 0
    no_verdict: int = 0
    already: int = 0
    tokens: int = 0
    faults: list[str] = field(default_factory=list)


async def judge_run(run_dir: str | Path, settings: RunSettings, *, limit: int | None = None, seed: int = 0,
                    on_label: Callable[[dict[str, Any]], None] | None = None) -> JudgeSummary:
    """Judge the accepted traces of ``run_dir`` with the run's Critic model (``settings``: the endpoint, or
    the embedded model), ``settings.concurrency`` at once, in review order, at most ``limit`` new ones.

    Raises:
        FileNotFoundError, scireflect.rundata.store.TraceFileError: no or a bad ``traces.jsonl``.
        scireflect.rundata.errors.RunError: the endpoint fails its preflight.
    """
    run_dir = Path(run_dir)
    records = {r["id"]: r for r in load_traces(run_dir)}
    order = review_order(records.values(), seed)
    summary = JudgeSummary()

    async with open_teams(settings, run_dir, lambda kind, data: None) as (teams, names):
        agent = teams[0].critic
        summary.reviewer = reviewer = f"{MODEL_REVIEWER}{names['critic']}"
        labels, _ = read_labels(run_dir)
        done = {(label["id"], label["trace_hash"]) for label in labels if label["reviewer"] == reviewer}
        todo = [qid for qid in order if (qid, trace_hash(records[qid])) not in done]
        summary.already = len(order) - len(todo)
        todo = todo[:limit] if limit is not None else todo
        gate = asyncio.Semaphore(max(1, settings.concurrency))

        async def judge_one(qid: str) -> None:
            record = records[qid]
            async with gate:
                verdict, steps, reply = await ask_judge(agent, record)
            summary.tokens += reply.output_tokens
            summary.judged += 1
            if verdict.valid is None:
                summary.no_verdict += 1
                label = make_label(record, "skip", reviewer=reviewer, note=f"{JUDGE_VERSION}: no verdict: {verdict.why}")
            elif verdict.valid:
                summary.valid += 1
                label = make_label(record, "valid", reviewer=reviewer, note=f"{JUDGE_VERSION}: {verdict.why}")
            else:
                summary.invalid += 1
                wrong = steps[verdict.step - 1]
                label = make_label(record, "invalid", reviewer=reviewer, reason="wrong_reasoning",
                                   note=f"{JUDGE_VERSION}: {verdict.why}: {wrong[:300]}")
            append_label(run_dir, label)
            if on_label is not None:
                on_label(label)

        results = await asyncio.gather(*(judge_one(qid) for qid in todo), return_exceptions=True)
        summary.faults = [f"{qid}: {type(r).__name__}: {r}" for qid, r in zip(todo, results, strict=True) if isinstance(r, BaseException)]
    return summary


__all__ = ["JudgeSummary", "judge_run"]
