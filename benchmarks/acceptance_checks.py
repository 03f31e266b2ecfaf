"""What the acceptance checks of issue 23 stopped in a real run, and how it compares with a run before them.

    python benchmarks/acceptance_checks.py RUN_AFTER [--before RUN_BEFORE] [--show N]

Reads ``traces.jsonl`` of one run made with the checks (``RUN_AFTER``) and, optionally, one run of the
same questions made without them (``RUN_BEFORE``: an older scireflect, or ``--steps off``), and prints:

* accepts before and after, by stage, and per question where the two runs differ;
* per check, the attempts it stopped: attempts that the answer check alone would have accepted
  (``step_error``: the final answer matched but a calculation was false; ``sample_disagreement``:
  the first sample's letter was right but another sample's was not), attempts the ``invalid``
  verdict took out (cut by the token limit, looping, self-contradicting), and options-free attempts
  whose derived value matched no option or a wrong one;
* the multiple-choice path of every question (``options_free`` / ``k_sample``);
* with ``--show N``, N examples of stopped attempts (the claim or the reason, and the response's tail).

Only reads run directories; nothing is re-verified.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from scireflect.graphs.state import solution_steps
from scireflect.rundata.store import load_traces


def stopped_by(verdict: dict[str, Any]) -> str | None:
    """The new check that stopped an attempt, or ``None`` (accepted, or an ordinary wrong answer)."""
    reason = verdict.get("reason")
    details = verdict.get("details") or {}
    if reason == "step_error":
        return "step_error"
    if reason == "sample_disagreement":
        return "sample_disagreement"
    if reason == "invalid" or verdict.get("status") == "invalid":
        return f"invalid:{details.get('invalid', '?')}"
    if details.get("mc_path") == "options_free" and verdict.get("ok") is not True:
        return f"options_free:{reason}"
    return None


def summarize(run: Path) -> tuple[dict[str, dict[str, Any]], Counter, list[tuple[str, str, dict[str, Any]]]]:
    """``(per question: status, stage, path; stops by check; examples)`` of one run directory."""
    per_q: dict[str, dict[str, Any]] = {}
    stops: Counter = Counter()
    examples: list[tuple[str, str, dict[str, Any]]] = []
    for record in load_traces(run):
        per_q[record["id"]] = {"status": record["status"], "stage": record.get("accepted_stage"),
                               "path": record.get("mc_path"), "attempts": record.get("n_attempts")}
        for step in solution_steps(record.get("steps") or []):
            check = stopped_by(step.get("verdict") or {})
            if check:
                stops[check] += 1
                examples.append((record["id"], check, step))
    return per_q, stops, examples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("after", type=Path, help="the run made with the checks")
    ap.add_argument("--before", type=Path, help="a run of the same questions without them")
    ap.add_argument("--show", type=int, default=2, help="examples of stopped attempts to print")
    args = ap.parse_args(argv)
    after, stops, examples = summarize(args.after)
    before = summarize(args.before)[0] if args.before else {}

    def accepts(run: dict[str, dict[str, Any]]) -> str:
        n = sum(1 for q in run.values() if q["status"] == "accepted")
        stages = Counter(q["stage"] for q in run.values() if q["status"] == "accepted")
        return f"{n} of {len(run)} accepted ({', '.join(f'{k} {v}' for k, v in sorted(stages.items())) or 'none'})"

    print(f"after:  {accepts(after)}; statuses {dict(Counter(q['status'] for q in after.values()))}")
    if before:
        print(f"before: {accepts(before)}; statuses {dict(Counter(q['status'] for q in before.values()))}")
    print(f"multiple-choice paths: {dict(Counter(q['path'] for q in after.values()))}")
    print("attempts stopped, by check: " + (", ".join(f"{k} {v}" for k, v in stops.most_common()) or "none"))
    print("\nquestion                                   before               after (path)")
    for qid in sorted(set(after) | set(before)):
        b, a = before.get(qid, {}), after.get(qid, {})
        fmt = lambda q: f"{q.get('status', '-')}" + (f"@{q['stage']}" if q.get("stage") else "")  # noqa: E731
        mark = "  <- differs" if before and b.get("status") != a.get("status") else ""
        print(f"{qid:42} {fmt(b):20} {fmt(a)} ({a.get('path')}){mark}")
    for qid, check, step in examples[: args.show]:
        verdict = step.get("verdict") or {}
        print(f"\n--- {qid}, attempt {step.get('attempt')} ({step.get('stage')}), stopped by {check}")
        print(f"verdict: {verdict.get('explanation')}")
        print("response tail: ..." + " ".join(str(step.get("response") or "").split())[-600:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
