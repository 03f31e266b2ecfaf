"""A generated run directory of many finished questions, for testing and benchmarking the viewer at scale.

The records have the shape the runner writes (``id``, ``subject``, ``status``, ``accepted_stage``,
``steps`` with a verdict, ``tokens``, ``seconds``, ``question``), with made-up text padded to about
``trace_bytes`` bytes a line: 100,000 of them at the default size make a ``traces.jsonl`` of about
140 MB, the size of the 100k-question run the outside review measured.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SUBJECTS = ("math", "physics", "chemistry", "biology")
_OUTCOMES = (("accepted", "cot", "equal"), ("accepted", "reflection", "equal"), ("rejected", None, "numeric_mismatch"),
             ("rejected", None, "step_error"), ("invalid", None, "truncated"), ("error", None, None))


def large_run_record(n: int, rng: random.Random, trace_bytes: int = 1400) -> dict:
    """The ``n``-th question's trace record (id ``q-000000`` ...), its text padded to about ``trace_bytes``."""
    status, stage, reason = _OUTCOMES[rng.randrange(len(_OUTCOMES))]
    subject = SUBJECTS[n % len(SUBJECTS)]
    answer = str(rng.randint(1, 999))
    words = " ".join(rng.choice(("so", "the", "mass", "is", "2 + 3 = 5", "energy", "\\frac{1}{2}", "then")) for _ in range(40))
    record = {
        "id": f"q-{n:06d}", "subject": subject, "status": status, "accepted_stage": stage,
        "stop_reason": "accepted" if status == "accepted" else "budget", "n_attempts": 1 + (stage == "reflection"),
        "tokens": rng.randint(200, 8000), "seconds": round(rng.uniform(2, 400), 2),
        "question": {"id": f"q-{n:06d}", "subject": subject, "question": f"Question {n}: {words}", "answer": answer},
        "steps": [{"index": 0, "role": "solver", "stage": "cot", "attempt": 1, "kind": "solution", "strategy": "cot",
                   "response": f"{words}\n\\boxed{{{answer}}}",
                   "verdict": {"ok": status == "accepted", "reason": reason, "extracted": answer, "status": status}}],
    }
    pad = trace_bytes - len(json.dumps(record))
    if pad > 0:
        record["steps"][0]["response"] = "." * pad + record["steps"][0]["response"]
    return record


def write_large_run(run_dir: str | Path, n: int, *, seed: int = 0, trace_bytes: int = 1400) -> Path:
    """Write ``n`` generated trace records to ``run_dir/traces.jsonl`` (the directory is created);
    returns the run directory. Deterministic for a ``seed``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with open(run_dir / "traces.jsonl", "w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps(large_run_record(i, rng, trace_bytes)) + "\n")
    return run_dir


__all__ = ["SUBJECTS", "large_run_record", "write_large_run"]
