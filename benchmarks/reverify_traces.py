"""Re-verify the solution attempts of real runs and count what the last-number fallback accepts (a script).

    python benchmarks/reverify_traces.py                      # the real attempts kept in the repository
    python benchmarks/reverify_traces.py RUN/traces.jsonl ... # any run's traces (or SFT rows)

Reads ``traces.jsonl`` files (one question a line, its ``steps``) and SFT export rows (``response``
with ``reference_answer``), re-checks every solution attempt with the in-process answer verifier
(with the step's ``finish_reason`` when the verifier takes it) and prints, per extraction method,
how many attempts were accepted, rejected or left undecided, and why answers were missing. The
last-number fallback is the row to watch: an accept there is a number the response never stated
as its answer. Model text is checked in this process: run it on traces you produced.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections import Counter
from pathlib import Path

from scireflect.rundata.jsonl import read_jsonl

HERE = Path(__file__).resolve().parent
REAL = [
    # 33 solution attempts of the embedded Qwen2.5-Coder-0.5B on 16 GSM8K/MATH/SciBench/MMLU questions
    HERE.parent / "tests" / "fixtures" / "filtering" / "real_run" / "traces.jsonl",
    # SFT rows: the first 3 are accepted attempts of the embedded 1.5B (the other 7 are reference solutions)
    HERE.parent / "tests" / "fixtures" / "training" / "sft_rows.jsonl",
]
_SFT_REAL_ROWS = 3


def attempts(path: Path) -> list[tuple[str, str, dict, str | None]]:
    """``(id, response, question, finish_reason)`` of every real solution attempt in a file."""
    rows = read_jsonl(path)
    out = []
    if rows and "steps" not in rows[0]:  # SFT export rows
        for r in rows[:_SFT_REAL_ROWS] if path.name == "sft_rows.jsonl" else rows:
            q = {"answer": r["reference_answer"], "subject": r.get("subject"), "id": r["id"]}
            out.append((r["id"], r["response"], q, None))
        return out
    for r in rows:
        for s in r["steps"]:
            if s.get("kind") == "solution" and not s.get("error"):
                out.append((r["id"], s["response"], r["question"], s.get("finish_reason")))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="traces.jsonl or SFT rows (default: the real runs in the repository)")
    ap.add_argument("--show", action="store_true", help="print every last-number extraction")
    args = ap.parse_args(argv)
    from scireflect.verifiers import verify_answer

    takes_finish_reason = "finish_reason" in inspect.signature(verify_answer).parameters
    table: Counter = Counter()
    missing: Counter = Counter()
    n = 0
    for path in args.paths or REAL:
        for qid, response, question, finish_reason in attempts(path):
            kw = {"finish_reason": finish_reason} if takes_finish_reason else {}
            v = verify_answer(response, question, **kw)
            n += 1
            table[(v.extraction_method or "-", v.status)] += 1
            if v.reason in ("no_answer", "invalid"):  # invalid: cut off or a loop (no fallback answer either)
                missing[v.details.get("no_answer") or v.details.get("invalid") or "none"] += 1
            if args.show and v.extraction_method == "last_number":
                print(f"{qid}: extracted {v.extracted!r}, {v.status} ({v.reason}), finish_reason={finish_reason}")
    print(f"{n} real solution attempts re-verified (finish_reason passed: {'yes' if takes_finish_reason else 'no'})")
    print(f"{'extraction':<12} {'accepted':>8} {'rejected':>8} {'invalid':>8} {'undecided':>9}")
    for method in sorted({m for m, _ in table}):
        print(f"{method:<12} {table[(method, 'accepted')]:>8} {table[(method, 'rejected')]:>8} {table[(method, 'invalid')]:>8} "
              f"{table[(method, 'unparseable')]:>9}")
    print("no final answer:", ", ".join(f"{k} {v}" for k, v in sorted(missing.items())) or "none")
    print(f"last-number fallback accepts: {table[('last_number', 'accepted')]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
