"""Measure the step checker (`scireflect.verifiers.steps.check_steps`) on real reference solutions.

    python benchmarks/bench_step_checker.py [--data ../shared/data] [--limit N] [--seed 0] [--examples 10]

Figures printed (issue 23, item 2):

- GSM8K train (7,473 reference solutions, calculator notes stripped): solutions with at least one
  false flag (goal <= 0.5%), claims checked/skipped per solution, and coverage: of the calculator
  notes ``<<48/2=24>>`` (Cobbe et al. 2021), the share whose written result the checker judged.
- MATH and SciBench dev reference solutions: false-flag rate (goal <= 1%), every flag printed.
- Planted slips: in a GSM8K solution, one calculator note whose result is an intermediate result
  (not the final ``####`` answer) is chosen (seeded); the value written right after it is changed
  (two digits swapped, x10, sign flipped), every later use and the final answer left alone.
  Caught = a false claim on that line (goal >= 90%). The same on MATH, at claims the checker judged
  true (so conditional on the claim being found).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

from scireflect.verifiers.steps import check_steps

_NOTE = re.compile(r"<<([^<>]*)>>")
_LITERAL = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
KINDS = ("swap", "x10", "sign")


def _rows(path: Path, limit: int | None) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
                if limit and len(rows) >= limit:
                    break
    return rows


def _value(lit: str) -> Fraction:
    return Fraction(lit.replace(",", ""))


def plant(lit: str, kind: str, rng: random.Random) -> str | None:
    """The literal with one slip of ``kind``, or ``None`` when that slip would not change the value."""
    if _value(lit) == 0:
        return None
    if kind == "sign":
        return lit[1:] if lit.startswith("-") else "-" + lit
    if kind == "x10":
        v = _value(lit) * 10
        decimals = len(lit.split(".")[1]) if "." in lit else 0
        out = f"{float(v):.{max(decimals - 1, 0)}f}" if decimals else str(int(v))
        return out
    digits = [i for i, ch in enumerate(lit) if ch.isdigit()]
    pairs = [(a, b) for a, b in zip(digits, digits[1:], strict=False) if lit[a] != lit[b]]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    s = list(lit)
    s[a], s[b] = s[b], s[a]
    out = "".join(s)
    if re.match(r"-?0\d", out):  # "05" is not how anyone writes a number
        return None
    return out


def gsm8k_notes(row: dict) -> list[tuple[int, str, str]]:
    """(offset in ``solution`` of the written result, note expression, note result) per calculator note."""
    raw = row["solution_raw"].split("\n####")[0]
    out, removed = [], 0
    for m in _NOTE.finditer(raw):
        removed += len(m.group(0))
        expr, _, res = m.group(1).rpartition("=")
        out.append((m.end() - removed, expr, res))
    return out


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def bench_gsm8k(rows: list[dict], examples: int, rng: random.Random) -> None:
    t0 = time.perf_counter()
    flagged, checked, skipped, notes, covered = [], 0, 0, 0, 0
    for row in rows:
        rep = check_steps(row["solution"])
        checked += rep.checked
        skipped += rep.skipped
        judged = {c.offset for c in rep.claims if c.verdict != "skipped"}
        for off, _expr, _res in gsm8k_notes(row):
            notes += 1
            covered += off in judged
        if rep.false:
            flagged.append((row, rep.false))
    dt = time.perf_counter() - t0
    n = len(rows)
    print(f"GSM8K train: {n} reference solutions in {dt:.1f} s ({n / dt:.0f} solutions/s)")
    print(f"  solutions with >= 1 false flag: {len(flagged)} ({100 * len(flagged) / n:.2f}%; goal <= 0.5%)")
    print(f"  claims per solution: {checked / n:.2f} checked, {skipped / n:.2f} skipped")
    print(f"  calculator notes whose result was judged: {covered}/{notes} ({100 * covered / max(notes, 1):.1f}%)")
    for row, false in flagged[:examples]:
        for c in false:
            print(f"    {row['id']} line {c.line}: {c.text!r} -> computed {c.computed} ({c.why})")

    # planted slips
    t0 = time.perf_counter()
    caught, total, eligible = Counter(), Counter(), 0
    missed = []
    for row in rows:
        sol = row["solution"]
        final = row["answer"].replace(",", "").strip()
        cands = []
        for off, _expr, res in gsm8k_notes(row):
            m = _LITERAL.match(sol, off)
            if not m:
                continue
            try:
                if _value(m.group(0)) != Fraction(res.strip().replace(",", "")) or _value(m.group(0)) == Fraction(final):
                    continue
            except (ValueError, ZeroDivisionError):
                continue
            cands.append((off, m.group(0)))
        if not cands:
            continue
        eligible += 1
        off, lit = rng.choice(cands)
        for kind in KINDS:
            slip = plant(lit, kind, rng)
            if slip is None:
                continue
            text = sol[:off] + slip + sol[off + len(lit):]
            total[kind] += 1
            line = _line_of(text, off)
            if any(c.line == line for c in check_steps(text).false):
                caught[kind] += 1
            elif len(missed) < examples:
                missed.append((row["id"], kind, text.splitlines()[line - 1]))
    dt = time.perf_counter() - t0
    all_c, all_t = sum(caught.values()), sum(total.values())
    print(f"GSM8K planted slips: {eligible} eligible solutions, {all_t} slips in {dt:.1f} s")
    print(f"  caught: {all_c}/{all_t} ({100 * all_c / max(all_t, 1):.1f}%; goal >= 90%); "
          + ", ".join(f"{k} {caught[k]}/{total[k]} ({100 * caught[k] / max(total[k], 1):.1f}%)" for k in KINDS))
    for rid, kind, line in missed:
        print(f"    missed {rid} {kind}: {line[:160]!r}")


def bench_reference(name: str, rows: list[dict], examples: int, rng: random.Random, slips: bool) -> None:
    rows = [r for r in rows if r.get("solution")]
    t0 = time.perf_counter()
    flagged, checked, skipped, reasons = [], 0, 0, Counter()
    reports = []
    for row in rows:
        rep = check_steps(row["solution"])
        reports.append(rep)
        checked += rep.checked
        skipped += rep.skipped
        reasons.update((c.why or "").split(" ")[0] + " " + " ".join((c.why or "").split(" ")[1:2]) for c in rep.claims if c.verdict == "skipped")
        if rep.false:
            flagged.append((row, rep.false))
    dt = time.perf_counter() - t0
    n = len(rows)
    print(f"{name}: {n} reference solutions in {dt:.1f} s ({n / dt:.0f} solutions/s)")
    print(f"  solutions with >= 1 false flag: {len(flagged)} ({100 * len(flagged) / max(n, 1):.2f}%; goal <= 1%)")
    print(f"  claims per solution: {checked / n:.2f} checked, {skipped / n:.2f} skipped "
          f"(top reasons: {', '.join(f'{k.strip()} {v}' for k, v in reasons.most_common(4))})")
    for row, false in flagged:
        for c in false:
            print(f"    {row['id']} line {c.line}: {c.text!r} -> computed {c.computed} ({c.why})")
    if not slips:
        return
    caught, total = Counter(), Counter()
    for row, rep in zip(rows, reports, strict=True):
        sol = row["solution"]
        trues = [c for c in rep.claims if c.verdict == "true" and _LITERAL.fullmatch(sol[c.offset:c.offset + len(c.written)].split(" ")[0] or "")]
        if not trues:
            continue
        c = rng.choice(trues)
        lit = _LITERAL.match(sol, c.offset).group(0)
        for kind in KINDS:
            slip = plant(lit, kind, rng)
            if slip is None:
                continue
            text = sol[:c.offset] + slip + sol[c.offset + len(lit):]
            total[kind] += 1
            caught[kind] += any(f.line == c.line for f in check_steps(text).false)
    all_c, all_t = sum(caught.values()), sum(total.values())
    print(f"  planted slips at claims judged true: caught {all_c}/{all_t} ({100 * all_c / max(all_t, 1):.1f}%); "
          + ", ".join(f"{k} {caught[k]}/{total[k]}" for k in KINDS))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--limit", type=int, default=None, help="at most this many rows per data set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--examples", type=int, default=10, help="example flags and missed slips to print")
    ap.add_argument("--only", choices=("gsm8k", "math", "scibench"), default=None)
    args = ap.parse_args(argv)
    data = args.data.resolve()
    print(f"bench_step_checker: {datetime.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    t0 = time.perf_counter()
    if args.only in (None, "gsm8k"):
        bench_gsm8k(_rows(data / "gsm8k" / "train.jsonl", args.limit), args.examples, random.Random(args.seed))
    if args.only in (None, "math"):
        bench_reference("MATH dev", _rows(data / "math" / "math_dev.jsonl", args.limit), args.examples, random.Random(args.seed), True)
    if args.only in (None, "scibench"):
        bench_reference("SciBench dev", _rows(data / "scibench" / "scibench_dev.jsonl", None), args.examples, random.Random(args.seed), True)
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
