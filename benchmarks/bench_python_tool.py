"""Chain of thought with and without the Python tool, side by side (prints figures; not a test).

The question set is fixed: 15 SciBench and 15 TheoremQA dev questions with numeric answers (SciBench
rows keep their units), drawn with ``random.Random(SEED)`` and committed as
``benchmarks/data/python_tool_ids.txt``. The rows themselves come from the benchmark extracts
(``--data``, by default ``/work/shared/data``), not from this repository.

    python benchmarks/bench_python_tool.py select                 # (re)draw the ids (seed 18)
    python benchmarks/bench_python_tool.py questions -o q.jsonl   # the 30 rows, in id order
    scireflect annotate q.jsonl -o runs/plain --budget attempts=1
    scireflect annotate q.jsonl -o runs/python --budget attempts=1 --tools python
    python benchmarks/bench_python_tool.py compare runs/plain runs/python [--paired]

``compare`` prints, per run: questions, accepted at chain of thought, accepted by source, mean
completion tokens, mean and median tokens (prompt + completion, every round) and seconds per question, code executions (and how many failed or were killed), and
questions whose answer only one of the runs got right.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

SEED = 18
IDS = Path(__file__).parent / "data" / "python_tool_ids.txt"
SOURCES = {"scibench": "scibench/scibench_dev.jsonl", "theoremqa": "theoremqa/theoremqa_dev.jsonl"}


def _rows(data: Path, source: str) -> list[dict]:
    with open(data / SOURCES[source], encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _numeric(text: str) -> bool:
    try:
        float(str(text).replace("+", "", 1))
    except ValueError:
        return False
    return True


def select(data: Path, n_each: int = 15, seed: int = SEED) -> list[str]:
    """``n_each`` SciBench and ``n_each`` TheoremQA ids with numeric answers (TheoremQA: ``integer`` or
    ``float`` answer types), drawn with ``random.Random(seed)``, each list sorted."""
    rng = random.Random(seed)
    scibench = sorted(r["id"] for r in _rows(data, "scibench") if _numeric(r["answer"]))
    theoremqa = sorted(r["id"] for r in _rows(data, "theoremqa")
                       if r.get("answer_type") in ("integer", "float") and _numeric(r["answer"]))
    return sorted(rng.sample(scibench, n_each)) + sorted(rng.sample(theoremqa, n_each))


def questions(data: Path, ids: list[str]) -> list[dict]:
    """The rows of ``ids``, in that order."""
    by_id = {r["id"]: r for source in SOURCES for r in _rows(data, source)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        sys.exit(f"ids not found in {data}: {', '.join(missing)}")
    return [by_id[i] for i in ids]


def _records(spec: str) -> dict[str, dict]:
    """The trace records of ``DIR`` or ``DIR+DIR...`` (one configuration run in several pieces), by id."""
    records: dict[str, dict] = {}
    for run in spec.split("+"):
        with open(Path(run) / "traces.jsonl", encoding="utf-8") as f:
            records.update({r["id"]: r for r in map(json.loads, filter(str.strip, f))})
    return records


def _stats(records: dict[str, dict]) -> dict:
    recs = list(records.values())
    steps = [s for r in recs for s in r["steps"]]
    calls = [c for s in steps for c in s.get("tool_calls") or [] if c.get("name") == "python"]
    cot = {r["id"] for r in recs if r["status"] == "accepted" and r.get("accepted_stage") == "cot"}
    tokens = [r["tokens"] for r in recs]
    completion = [sum(int(s.get("output_tokens") or 0) for s in r["steps"]) for r in recs]
    seconds = [r["seconds"] for r in recs]
    return {
        "questions": len(recs), "accepted_cot": len(cot), "cot_ids": cot,
        "by_source": {src: sum(1 for i in cot if i.startswith(src)) for src in SOURCES},
        "completion_mean": statistics.mean(completion) if completion else 0,
        "tokens_mean": statistics.mean(tokens) if tokens else 0, "tokens_median": statistics.median(tokens) if tokens else 0,
        "seconds_mean": statistics.mean(seconds) if seconds else 0, "seconds_median": statistics.median(seconds) if seconds else 0,
        "questions_with_code": sum(1 for r in recs if any(s.get("tool_calls") for s in r["steps"])),
        "executions": len(calls), "failed": sum(1 for c in calls if c.get("error")),
        "killed": sum(1 for c in calls if (c.get("execution") or {}).get("killed_reason")),
        "no_answer": sum(1 for s in steps if (s.get("verdict") or {}).get("reason") in ("no_answer", "invalid")),
        "length": sum(1 for s in steps if s.get("finish_reason") == "length"),
    }


def compare(runs: list[str], paired: bool = False) -> None:
    """Print the runs side by side (markdown); ``paired``: only the questions every run finished."""
    records = {run: _records(run) for run in runs}
    if paired:
        common = set.intersection(*(set(r) for r in records.values()))
        records = {run: {i: r for i, r in recs.items() if i in common} for run, recs in records.items()}
    stats = {run: _stats(recs) for run, recs in records.items()}
    rows = [("questions", "questions"), ("accepted at CoT", "accepted_cot")]
    rows += [(f"  of {src}", f"by_source.{src}") for src in SOURCES]
    rows += [("completion tokens / question (mean)", "completion_mean"), ("tokens / question (mean, prompt + completion)", "tokens_mean"), ("tokens / question (median)", "tokens_median"),
             ("seconds / question (mean)", "seconds_mean"), ("seconds / question (median)", "seconds_median"),
             ("questions that ran code", "questions_with_code"), ("code executions", "executions"),
             ("  failed (exception or killed)", "failed"), ("  killed by a limit", "killed"),
             ("no final answer (or invalid)", "no_answer"), ("cut by max_tokens", "length")]
    print("| | " + " | ".join(stats) + " |")
    print("|---|" + "---:|" * len(stats))
    for label, key in rows:
        values = []
        for s in stats.values():
            v = s[key.split(".")[0]][key.split(".")[1]] if "." in key else s[key]
            values.append(f"{v:,.0f}" if isinstance(v, float) and v > 100 else f"{v:.1f}" if isinstance(v, float) else str(v))
        print(f"| {label} | " + " | ".join(values) + " |")
    if len(stats) == 2:
        (a, sa), (b, sb) = stats.items()
        print(f"\naccepted only in {a}: {', '.join(sorted(sa['cot_ids'] - sb['cot_ids'])) or '-'}")
        print(f"accepted only in {b}: {', '.join(sorted(sb['cot_ids'] - sa['cot_ids'])) or '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"), help="the benchmark extracts")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("select", help=f"draw the ids (seed {SEED}) into {IDS}")
    q = sub.add_parser("questions", help="write the rows of the committed ids")
    q.add_argument("-o", "--out", type=Path, required=True)
    c = sub.add_parser("compare", help="runs side by side (a run may be DIR+DIR: one configuration in pieces)")
    c.add_argument("runs", nargs="+")
    c.add_argument("--paired", action="store_true", help="only the questions that every run finished")
    args = parser.parse_args()
    if args.command == "select":
        IDS.write_text("\n".join(select(args.data)) + "\n")
        print(f"wrote {IDS}")
    elif args.command == "questions":
        ids = IDS.read_text().split()
        with open(args.out, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in questions(args.data, ids))
        print(f"wrote {len(ids)} questions to {args.out}")
    else:
        compare(args.runs, paired=args.paired)


if __name__ == "__main__":
    main()
