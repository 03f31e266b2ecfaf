"""Attempt-strategy orders side by side on questions whose chain of thought fails (issue 24; a script).

The question set is fixed in two steps. ``select`` draws candidates with ``random.Random(SEED)``
from the benchmark extracts (``--data``, by default ``/work/shared/data``: GSM8K train, MATH dev,
SciBench dev, TheoremQA dev, numeric answers) and writes their ids to
``benchmarks/data/reflection_candidates.txt``; one chain-of-thought run of the model on them
(``--budget attempts=1``) and ``failures`` keep the ids whose first attempt failed, in
``benchmarks/data/reflection_ids.txt`` (found once, then committed). Each order of :data:`ORDERS`
then runs on those questions, one run directory each, against the same endpoint:

    python benchmarks/bench_reflection.py select                        # (re)draw the candidates (seed 24)
    python benchmarks/bench_reflection.py questions --ids benchmarks/data/reflection_candidates.txt -o cand.jsonl
    scireflect annotate cand.jsonl -o runs/cot --budget attempts=1     # the embedded model by default
    python benchmarks/bench_reflection.py failures runs/cot            # -> reflection_ids.txt
    python benchmarks/bench_reflection.py questions -o q.jsonl
    python benchmarks/bench_reflection.py run q.jsonl -o runs/reflection [--base-url URL --model M] [--orders sciglm,program_resample]
    python benchmarks/bench_reflection.py report runs/reflection/*      # the table for README

``report`` prints one Markdown row per run: questions, rescued (accepted after the first attempt)
in all, by GSM8K and by the science sources, without answer-guided revision and split by the
strategy of the accepted attempt out of the attempts that strategy made (answer-guided apart),
rescued with clean step checks (the step checker checked claims and found none false), tokens and
seconds per accepted question (every question's, divided by the accepted), tokens and seconds per
question that ended without an accepted attempt, repeated answers and loops cut (with the tokens they saved), and
verified traces per hour of model and verifier time (the steps' seconds, summed: sequential).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scireflect.graphs.budget import Budget
from scireflect.graphs.nodes import strategy_of
from scireflect.graphs.state import solution_steps, total_seconds, total_tokens
from scireflect.rundata.jsonl import read_jsonl

SEED = 24
HERE = Path(__file__).resolve().parent
CANDIDATES = HERE / "data" / "reflection_candidates.txt"
IDS = HERE / "data" / "reflection_ids.txt"
SOURCES = {"gsm8k": "gsm8k/train.jsonl", "math": "math/math_dev.jsonl", "scibench": "scibench/scibench_dev.jsonl",
           "theoremqa": "theoremqa/theoremqa_dev.jsonl"}
PER_SOURCE = {"gsm8k": 40, "math": 20, "scibench": 20, "theoremqa": 20}
"""Candidates drawn per source: about half of the embedded 1.5B's chains of thought fail, so some 40
GSM8K and 40 science failures remain."""

ORDERS: dict[str, str] = {
    "sciglm": "attempts=4,reflections=2",  # cot, reflect, reflect, answer_guided: SciGLM's loop, the default until 2026-12-07
    "reflect_resample": "attempts=5,strategy=cot/reflect/resample/reflect/answer_guided",
    "resample": "attempts=4,strategy=cot/resample/resample/answer_guided",
    "program": "attempts=5,strategy=cot/reflect/program/resample/answer_guided",  # needs the code sandbox
    "program_resample": "attempts=4,strategy=cot/program/resample/answer_guided",  # the default order it picked
}
"""The orders compared, each a ``--budget`` spec (:meth:`~scireflect.graphs.budget.Budget.parse`)."""


def source_of(question_id: str) -> str:
    """``gsm8k``, ``math``, ``scibench`` or ``theoremqa`` from a row id (``gsm8k-train-0000`` ...)."""
    return question_id.split("-", 1)[0]


def _rows(data: Path, source: str) -> list[dict]:
    return read_jsonl(data / SOURCES[source])


def _numeric(text: Any) -> bool:
    try:
        float(str(text).replace(",", ""))
    except ValueError:
        return False
    return True


def select(data: Path, per_source: Mapping[str, int] = PER_SOURCE, seed: int = SEED) -> list[str]:
    """Ids of candidates with numeric answers, ``per_source[s]`` from each source, drawn with
    ``random.Random(seed)`` (sources in :data:`SOURCES` order, each list sorted)."""
    rng = random.Random(seed)
    ids: list[str] = []
    for source in SOURCES:
        pool = sorted(r["id"] for r in _rows(data, source) if _numeric(r.get("answer")) and not r.get("choices"))
        ids += sorted(rng.sample(pool, min(per_source.get(source, 0), len(pool))))
    return ids


def questions(data: Path, ids: list[str]) -> list[dict]:
    """The rows of ``ids``, in that order.

    Raises:
        KeyError: an id that no source file holds.
    """
    by_id = {r["id"]: r for source in {source_of(i) for i in ids} for r in _rows(data, source)}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise KeyError(f"{len(missing)} ids not found in {data}: {', '.join(missing[:5])}")
    return [by_id[i] for i in ids]


def failures(traces: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of the records whose first solution attempt was not accepted (a chain-of-thought run)."""
    out = []
    for record in traces:
        attempts = solution_steps(record.get("steps") or [])
        if attempts and (attempts[0].get("verdict") or {}).get("ok") is not True:
            out.append(record["id"])
    return sorted(out)


def summarize(name: str, traces: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One run's figures (see the module docstring); ``traces``: its ``traces.jsonl`` records."""
    accepted = [r for r in traces if r.get("status") == "accepted"]
    failed = [r for r in traces if r.get("status") != "accepted"]
    by_strategy: Counter = Counter()
    rescued_by_group: Counter = Counter()
    clean = 0
    for record in accepted:
        attempts = solution_steps(record["steps"])
        last = next(s for s in reversed(attempts) if (s.get("verdict") or {}).get("ok") is True)
        if last["attempt"] == 1:
            continue
        strategy = strategy_of(last)
        by_strategy[strategy] += 1
        if strategy != "answer_guided":
            rescued_by_group["gsm8k" if source_of(record["id"]) == "gsm8k" else "science"] += 1
        report = (last["verdict"].get("details") or {}).get("steps") or {}
        clean += bool(report.get("checked")) and not report.get("n_errors")
    steps = [s for r in traces for s in r.get("steps") or []]
    seconds = sum(total_seconds(r.get("steps") or []) for r in traces)
    groups = Counter("gsm8k" if source_of(r["id"]) == "gsm8k" else "science" for r in traces)
    return {
        "run": name, "questions": len(traces), "accepted": len(accepted),
        "rescued": sum(by_strategy.values()), "rescued_by_strategy": dict(by_strategy),
        "rescued_without_answer_guided": sum(n for s, n in by_strategy.items() if s != "answer_guided"),
        "gsm8k": (rescued_by_group["gsm8k"], groups["gsm8k"]), "science": (rescued_by_group["science"], groups["science"]),
        "rescued_clean_steps": clean,
        "tokens_per_accepted": sum(total_tokens(r.get("steps") or []) for r in traces) / max(1, len(accepted)),
        "seconds_per_accepted": seconds / max(1, len(accepted)),
        "tokens_on_failed": sum(total_tokens(r.get("steps") or []) for r in failed),
        "seconds_on_failed": sum(total_seconds(r.get("steps") or []) for r in failed),
        "failed": len(failed),
        "attempts_by_strategy": dict(Counter(strategy_of(s) for r in traces for s in solution_steps(r.get("steps") or []))),
        "repeated": sum(1 for s in steps if s.get("repeated")),
        "loops_cut": sum(1 for s in steps if s.get("finish_reason") == "loop"),
        "loop_saved_tokens": sum(int(s.get("loop_saved_tokens") or 0) for s in steps),
        "verified_per_hour": len(accepted) / seconds * 3600 if seconds else 0.0,
    }


def table(rows: list[Mapping[str, Any]]) -> str:
    """The summaries as a Markdown table."""
    head = ("| run | questions | rescued | GSM8K w/o AG | science w/o AG | rescued by strategy (of attempts) | clean steps "
            "| tokens/acc | s/acc | tokens/failed | s/failed | repeated | loops cut (saved) | verified/h |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        made = r["attempts_by_strategy"]
        strategies = ", ".join(f"{k} {r['rescued_by_strategy'].get(k, 0)}/{n}" for k, n in sorted(made.items()) if k != "cot") or "-"
        per_failed = max(1, r["failed"])
        g, s = r["gsm8k"], r["science"]
        lines.append(f"| {r['run']} | {r['questions']} | {r['rescued']} | {g[0]}/{g[1]} | {s[0]}/{s[1]} | {strategies} "
                     f"| {r['rescued_clean_steps']} | {r['tokens_per_accepted']:.0f} | {r['seconds_per_accepted']:.1f} "
                     f"| {r['tokens_on_failed'] / per_failed:.0f} | {r['seconds_on_failed'] / per_failed:.1f} | {r['repeated']} "
                     f"| {r['loops_cut']} ({r['loop_saved_tokens']}) | {r['verified_per_hour']:.1f} |")
    return "\n".join(lines)


async def run_orders(question_file: Path, out: Path, orders: Mapping[str, str], *, base_url: str | None = None,
                     model: str | None = None, concurrency: int | None = None, max_tokens: int | None = None) -> list[Path]:
    """Annotate ``question_file`` once per order (``OUT/<name>``), one after the other, against the same
    endpoint (``base_url``/``model``; none: the embedded model, as ``scireflect annotate``). Returns the run dirs."""
    from scireflect.run.config import load_settings
    from scireflect.rundata.questions import load_questions
    from scireflect.run.runner import annotate

    dirs = []
    for name, spec in orders.items():
        Budget.parse(spec)  # a bad order fails before any model call
        settings = load_settings(base_url=base_url, model=model, max_tokens=max_tokens,
                                 budget=spec, concurrency=concurrency)
        run_dir = out / name
        await annotate(load_questions(question_file), run_dir, settings)
        dirs.append(run_dir)
    return dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("select", help=f"draw the candidates into {CANDIDATES.name}")
    q = sub.add_parser("questions", help="write the rows of an id list")
    q.add_argument("--ids", type=Path, default=IDS)
    q.add_argument("-o", "--output", type=Path, required=True)
    f = sub.add_parser("failures", help=f"ids whose first attempt failed, from a chain-of-thought run, into {IDS.name}")
    f.add_argument("run_dir", type=Path)
    f.add_argument("-o", "--output", type=Path, default=IDS)
    r = sub.add_parser("run", help="annotate the questions once per strategy order")
    r.add_argument("questions", type=Path)
    r.add_argument("-o", "--output", type=Path, required=True)
    r.add_argument("--orders", default=",".join(ORDERS), help=f"names of {', '.join(ORDERS)}")
    r.add_argument("--base-url")
    r.add_argument("--model")
    r.add_argument("--concurrency", type=int)
    r.add_argument("--max-tokens", type=int)
    p = sub.add_parser("report", help="the table of run directories")
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument("--json", action="store_true", help="the figures as JSON lines instead")
    args = parser.parse_args(argv)

    if args.command == "select":
        ids = select(args.data)
        CANDIDATES.write_text("\n".join(ids) + "\n")
        print(f"{len(ids)} candidates -> {CANDIDATES}")
    elif args.command == "questions":
        ids = [line.strip() for line in args.ids.read_text().splitlines() if line.strip()]
        with open(args.output, "w", encoding="utf-8") as out:
            for row in questions(args.data, ids):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{len(ids)} questions -> {args.output}")
    elif args.command == "failures":
        ids = failures(read_jsonl(args.run_dir / "traces.jsonl"))
        args.output.write_text("\n".join(ids) + "\n")
        print(f"{len(ids)} failed at chain of thought -> {args.output}")
    elif args.command == "run":
        names = [n.strip() for n in args.orders.split(",") if n.strip()]
        unknown = [n for n in names if n not in ORDERS]
        if unknown:
            parser.error(f"unknown order(s) {', '.join(unknown)}; use {', '.join(ORDERS)}")
        asyncio.run(run_orders(args.questions, args.output, {n: ORDERS[n] for n in names}, base_url=args.base_url,
                               model=args.model, concurrency=args.concurrency, max_tokens=args.max_tokens))
    else:
        rows = [summarize(d.name, read_jsonl(d / "traces.jsonl")) for d in args.run_dirs]
        print("\n".join(json.dumps(r) for r in rows) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
