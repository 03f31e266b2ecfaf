"""The model reviewer on GSM8K reference solutions: correct ones, and ones with one planted reasoning error.

Issue 26 (item 6). The labelled set is built from the GSM8K train reference solutions in
``../shared/data/gsm8k`` (their ``<<a*b=c>>`` calculator notes give each step's calculation):

- half are the reference solutions as they are (correct);
- the other half have one planted reasoning error *with right arithmetic*: in one step that is not the
  last, an operand taken from the problem is replaced by a number that is not in the problem, that
  step's result is recomputed, and the later steps are left as they are, so the final answer stays
  right (and the step checker finds nothing false). The judge should name that step.

Each solution becomes an accepted trace whose attempt is the solution's lines and ``\\boxed{answer}``;
``scireflect judge`` (:func:`scireflect.run.judging.judge_run`) then judges them all, and the script
reports the judge's accuracy on each half: correct solutions judged valid, planted ones judged invalid
(and with the planted step named), and replies without a verdict.

    python benchmarks/bench_judge.py [--n 20] [--seed 26] [--base-url URL --model M]   # default: the embedded model
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import operator
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path("/work/shared/data/gsm8k/train.jsonl")
_NOTE = re.compile(r"<<([^<>=]+)=([^<>]+)>>([^\s<]*)")
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.])")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def arithmetic(expr: str) -> float:
    """The value of a calculator note's expression: numbers, + - * / and parentheses only (parsed with
    :mod:`ast`, never evaluated as code). Raises ``ValueError`` on anything else."""
    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        raise ValueError(f"not plain arithmetic: {expr!r}")
    try:
        return value(ast.parse(expr.strip(), mode="eval").body)
    except (SyntaxError, ZeroDivisionError) as exc:
        raise ValueError(str(exc)) from None


def _fmt(x: float) -> str:
    return str(int(round(x))) if abs(x - round(x)) < 1e-9 else f"{x:.2f}".rstrip("0").rstrip(".")


def visible(raw_line: str) -> str:
    """A reference solution line without its calculator notes."""
    return _NOTE.sub(lambda m: m.group(3), raw_line)


def plant(row: dict[str, Any], rng: random.Random) -> tuple[list[str], int] | None:
    """The solution's visible lines with one planted reasoning error, and the 1-based planted line; ``None``
    when no step qualifies (see the module docstring)."""
    lines = [line for line in row["solution_raw"].splitlines() if line.strip() and not line.startswith("####")]
    problem_numbers = set(_NUMBER.findall(row["question"].replace(",", "")))
    candidates = []
    for i, line in enumerate(lines[:-1]):  # a step that is not the last: the later steps keep the final answer right
        for note in _NOTE.finditer(line):
            operands = [n for n in _NUMBER.findall(note.group(1)) if n in problem_numbers]
            if operands:
                candidates.append((i, note, operands))
    rng.shuffle(candidates)
    for i, note, operands in candidates:
        old = rng.choice(operands)
        choices = [str(int(float(old)) + d) for d in (1, 2, 3, -1, -2, 5, 10) if int(float(old)) + d > 0]
        new = next((c for c in choices if c not in problem_numbers), None)
        if new is None:
            continue
        expr = re.sub(rf"(?<![\d.]){re.escape(old)}(?![\d.])", new, note.group(1), count=1)
        try:
            result = _fmt(arithmetic(expr))
        except ValueError:
            continue
        line = lines[i]
        before = line[: note.start()]
        shown_expr = re.sub(rf"(?<![\d.]){re.escape(old)}(?![\d.])", new, before, count=1) if old in before else before
        lines[i] = shown_expr + f"<<{expr}={result}>>{result}" + line[note.end():]
        return [visible(line) for line in lines], i + 1
    return None


def trace(qid: str, row: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    response = "\n".join(lines) + f"\n\\boxed{{{row['answer']}}}"
    return {"id": qid, "subject": "math", "status": "accepted", "accepted_stage": "cot",
            "question": {"id": row["id"], "question": row["question"], "answer": row["answer"]},
            "steps": [{"kind": "solution", "stage": "cot", "strategy": "cot", "response": response,
                       "verdict": {"ok": True, "reason": "equal", "extracted": row["answer"]}}]}


def build(n: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``n`` correct and ``n`` planted traces from seeded GSM8K train rows; and ``{planted id: planted step}``."""
    from scireflect.rundata.jsonl import read_jsonl

    rows = read_jsonl(DATA)
    rng = random.Random(seed)
    rng.shuffle(rows)
    traces, planted = [], {}
    correct_rows, planted_rows = rows[:n], rows[n:]
    for row in correct_rows:
        lines = [visible(line) for line in row["solution_raw"].splitlines() if line.strip() and not line.startswith("####")]
        traces.append(trace(f"correct-{row['id']}", row, lines))
    for row in planted_rows:
        if len(planted) == n:
            break
        made = plant(row, rng)
        if made is not None:
            qid = f"planted-{row['id']}"
            traces.append(trace(qid, row, made[0]))
            planted[qid] = made[1]
    return traces, planted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=20, help="correct and planted solutions, each")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    parser.add_argument("--max-tokens", type=int, default=768)
    parser.add_argument("--keep", type=Path, help="run directory to keep (default: a temporary one)")
    parser.add_argument("--show", action="store_true", help="print the planted solutions and exit")
    args = parser.parse_args(argv)
    traces, planted = build(args.n, args.seed)
    if args.show:
        for t in traces:
            if t["id"] in planted:
                print(f"--- {t['id']} (planted in step {planted[t['id']]})\n{t['question']['question']}\n{t['steps'][0]['response']}")
        return 0
    from scireflect.agents.judge import number_steps
    from scireflect.run.config import load_settings
    from scireflect.run.judging import judge_run
    from scireflect.rundata.labels import read_labels

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.keep or Path(tmp) / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
        settings = load_settings(base_url=[args.base_url] if args.base_url else None, model=args.model, max_tokens=args.max_tokens, temperature=0.0)
        started = time.perf_counter()
        summary = asyncio.run(judge_run(run_dir, settings))
        seconds = time.perf_counter() - started
        labels = {label["id"]: label for label in read_labels(run_dir)[0]}
    steps_of = {t["id"]: number_steps(t["steps"][0]["response"]) for t in traces}
    correct = [t["id"] for t in traces if t["id"] not in planted]
    got = {qid: labels.get(qid, {}).get("label") for qid in steps_of}
    named = sum(1 for qid, k in planted.items() if got[qid] == "invalid" and f"step {k} " in labels[qid].get("note", ""))
    print(f"judge {summary.reviewer}: {len(correct)} correct and {len(planted)} planted GSM8K solutions (seed {args.seed}), "
          f"{seconds:.0f} s, {summary.tokens} completion tokens, faults {len(summary.faults)}")
    print(f"correct solutions judged valid:   {sum(got[q] == 'valid' for q in correct)}/{len(correct)} "
          f"(invalid {sum(got[q] == 'invalid' for q in correct)}, no verdict {sum(got[q] == 'skip' for q in correct)})")
    print(f"planted errors judged invalid:    {sum(got[q] == 'invalid' for q in planted)}/{len(planted)} "
          f"(the planted step named {named}; valid {sum(got[q] == 'valid' for q in planted)}, "
          f"no verdict {sum(got[q] == 'skip' for q in planted)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
