"""Answer-verifier benchmark: our verifier vs math-verify on a labelled equivalence suite (a script, not a test).

    python benchmarks/bench_verifier.py --build     # (re)build benchmarks/data/equivalence_suite.jsonl
    python benchmarks/bench_verifier.py             # run both checkers on the suite, print the table

The suite is built from real answers (SciBench, TheoremQA, MATH, GSM8K, MMLU-STEM, JEEBench; MIT,
see benchmarks/data/README.md) by transformations whose truth is known by construction: the same
quantity in another unit of the same dimension (true), a prefix slip by 10^3 (false), the number with
a unit of another dimension (false), a value that rounds to the reference at its last written digit
(true) or is off by 2 units in that digit / 10 % (false), equivalent LaTeX forms of MATH answers
(true) and a changed digit (false), option letters written differently (true) or another option
(false), plus the known hard cases of math-verify. Labels are what is mathematically/physically
true, never what either checker says.

Since issue 14 the suite also has JEEBench Numeric answers at the exam's 2 decimals, SciBench
measured quantities (integers with a unit, results to 4 significant figures), Unicode and Ångström
notation, and whole responses (category ``extraction``) that state an answer or do not (an empty
last box, cut off by the token limit, a loop over the options, a number only in the reasoning).

Each pair is ``{"id", "category" (numeric|units|symbolic|choice|extraction), "reference", "unit"?,
"candidate", "equal", "question"? (extra fields such as choices, subject, source), "response"? (the
whole model output, instead of ``\\boxed{candidate}``), "finish_reason"?, "note"}``. Our verifier
gets the question mapping (reference + unit field) and the finish reason; math-verify gets the
reference with its unit appended as LaTeX (the same information), through ``parse``/``verify`` with
its timeouts disabled, and a cut-off response counts as rejected by it. Both run in this process
on one core; "checks/s/core" is pairs per second of CPU time.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import re
import sys
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

from scireflect.rundata.jsonl import read_jsonl

HERE = Path(__file__).resolve().parent
SUITE = HERE / "data" / "equivalence_suite.jsonl"
DATA = Path("/work/shared/data")


# ------------------------------------------------------------------------------------------------
# building the suite
# ------------------------------------------------------------------------------------------------

def _rows(name: str) -> list[dict]:
    return read_jsonl(DATA / name)


def _latex_unit(unit) -> str:
    """A pint unit written as LaTeX our parser and a human both read: ``\\mathrm{kg}\\,\\mathrm{m}^{2}``."""
    from scireflect.verifiers.units import get_registry

    ureg = get_registry()
    parts = []
    for name, exp in unit._units.items():
        sym = ureg.get_symbol(name)
        e = int(exp) if float(exp).is_integer() else exp
        parts.append(f"\\mathrm{{{sym}}}" + (f"^{{{e}}}" if e != 1 else ""))
    return "\\,".join(parts)


def _sci(x: float, digits: int = 6) -> str:
    if x == 0:
        return "0"
    m, e = f"{x:.{digits - 1}e}".split("e")
    e = int(e)
    return m if e == 0 else f"{m}\\times10^{{{e}}}"


def _build_units(rng: random.Random) -> list[dict]:
    from scireflect.verifiers.answer import parse_number
    from scireflect.verifiers.units import get_registry, parse_unit

    ureg = get_registry()
    out = []
    other_dim = {"[length]": "\\mathrm{s}", "[time]": "\\mathrm{m}"}
    items = [r for r in _rows("scibench/scibench_dev.jsonl") if r.get("unit")]
    rng.shuffle(items)
    n_items = 0
    for r in items:
        spec = parse_unit(r["unit"])
        pn = parse_number(r["answer"])
        if spec is None or not spec.physical or pn is None or pn.unit or pn.value == 0 or "°" in spec.pretty:
            continue
        if n_items >= 45:
            break
        n_items += 1
        ref = float(pn.value)
        base = dict(reference=r["answer"], unit=r["unit"], category="units", source=r["id"])
        q = ureg.Quantity(ref * float(spec.scale), spec.unit).to_base_units()
        cand_unit = _latex_unit(q.units) if q.units != ureg.dimensionless else ""
        written = _latex_unit(spec.unit)
        exp10 = round(__import__("math").log10(float(spec.scale)))
        sc = "" if spec.scale == 1 else f"\\times10^{{{exp10}}}\\,"
        out.append({**base, "candidate": r["answer"], "equal": True, "note": "number in the requested unit"})
        out.append({**base, "candidate": f"{r['answer']}\\ {sc}{written}", "equal": True, "note": "number with the requested unit"})
        if cand_unit and q.units != spec.unit or spec.scale != 1:
            out.append({**base, "candidate": f"{_sci(q.magnitude)}\\ {cand_unit}", "equal": True,
                        "note": "converted to SI base units (6 significant digits)"})
            out.append({**base, "candidate": f"{_sci(q.magnitude * 1000)}\\ {cand_unit}", "equal": False,
                        "note": "converted, with a factor-1000 prefix slip"})
        dims = str(spec.unit.dimensionality)
        wrong = other_dim.get(dims, "\\mathrm{m}")
        if dims == "[length]":
            wrong = "\\mathrm{s}"
        out.append({**base, "candidate": f"{r['answer']}\\ {sc}{wrong}", "equal": False,
                    "note": "the reference number with a unit of another dimension"})
        out.append({**base, "candidate": f"{r['answer']}\\ {sc}{written}\\,\\mathrm{{s}}^{{-1}}", "equal": False,
                    "note": "the requested unit per second (another dimension)"})
    return out


def _build_numeric(rng: random.Random) -> list[dict]:
    from scireflect.verifiers.answer import parse_number

    out = []
    tq = [r for r in _rows("theoremqa/theoremqa_dev.jsonl") if r.get("answer_type") == "float"]
    rng.shuffle(tq)
    for r in tq[:30]:
        pn = parse_number(str(r["answer"]))
        if pn is None or pn.value == 0 or pn.ulp is None or (pn.sig_figs or 0) < 3:
            continue
        ref = str(r["answer"])
        base = dict(reference=ref, category="numeric", source=r["id"], question={"answer_type": "float"})
        ulp = float(pn.ulp)
        val = float(pn.value)
        dec = max(0, -int(round(__import__("math").log10(ulp))))
        out.append({**base, "candidate": f"{val + 0.3 * ulp:.{dec + 1}f}", "equal": True,
                    "note": "rounds to the reference at its last written digit"})
        out.append({**base, "candidate": f"{val + 2 * ulp:.{dec}f}", "equal": False, "note": "off by 2 in the last digit"})
        out.append({**base, "candidate": f"{val * 1.1:.{dec}f}", "equal": False, "note": "10 % off"})
        out.append({**base, "candidate": f"{val:.{dec}f}0", "equal": True, "note": "trailing zero"})
    gsm = _rows("gsm8k/train.jsonl")[:40]
    for r in gsm:
        a = r["answer"]
        base = dict(reference=a, category="numeric", source=r["id"])
        out.append({**base, "candidate": f"{a}.0", "equal": True, "note": "integer written as a decimal"})
        n = int(a.replace(",", ""))
        out.append({**base, "candidate": f"{n:,}" if n >= 1000 else f"\\${a}", "equal": True, "note": "thousands separator / dollar sign"})
        out.append({**base, "candidate": str(n + 1), "equal": False, "note": "off by one"})
    return out


_FRAC = re.compile(r"^\\[dt]?frac\{(\d+)\}\{(\d+)\}$")


def _build_symbolic(rng: random.Random) -> list[dict]:
    out = []
    rows = _rows("math/math_dev.jsonl")
    rng.shuffle(rows)
    n = 0
    for r in rows:
        a = r["answer"].strip()
        if len(a) > 40 or "\\text" in a or not re.search(r"\d", a):
            continue
        base = dict(reference=a, category="symbolic", source=r["id"])
        variants = []
        m = _FRAC.match(a)
        if m:
            p, q = int(m.group(1)), int(m.group(2))
            variants.append((f"{p}/{q}", True, "a/b for \\frac{a}{b}"))
            variants.append((f"\\frac{{{2 * p}}}{{{2 * q}}}", True, "unreduced equivalent fraction"))
            if Fraction(p, q).denominator in (2, 4, 5, 8, 10, 20, 25):
                variants.append((str(float(Fraction(p, q))), True, "exact decimal of the fraction"))
            variants.append((f"\\frac{{{p + 1}}}{{{q}}}", False, "numerator changed"))
        elif "\\sqrt" in a:
            variants.append((a.replace("\\frac", "\\dfrac"), True, "\\dfrac for \\frac"))
            if "," not in a:  # ((1, 2)) would be a tuple inside parentheses
                variants.append((f"\\left({a}\\right)", True, "wrapped in \\left( \\right)"))
            sq = re.sub(r"\\sqrt\{(\d+)\}", r"(\1)^{1/2}", a, count=1)
            if sq != a:
                variants.append((sq, True, "\\sqrt{n} as n^{1/2}"))
            d = re.search(r"\d", a)
            variants.append((a[: d.start()] + str((int(a[d.start()]) + 1) % 10 or 2) + a[d.end():], False, "a digit changed"))
        elif "\\pi" in a or re.search(r"[a-z]", a.replace("\\pi", "")):
            variants.append((a.replace(" ", ""), True, "spaces removed"))
            variants.append((f"{{{a}}}", True, "braced"))
            d = re.search(r"\d", a)
            variants.append((a[: d.start()] + str((int(a[d.start()]) + 1) % 10 or 2) + a[d.end():], False, "a digit changed"))
        else:
            continue
        n += 1
        out += [{**base, "candidate": c, "equal": e, "note": note} for c, e, note in variants]
        if n >= 45:
            break
    return out


def _build_choice(rng: random.Random) -> list[dict]:
    out = []
    mmlu = _rows("mmlu_stem/highschool_phys_chem_math_test.jsonl")
    rng.shuffle(mmlu)
    for r in mmlu[:25]:
        a, choices = r["answer"], r["choices"]
        other = "ABCD"[("ABCD".index(a) + 1) % 4]
        base = dict(reference=a, category="choice", source=r["id"], question={"choices": choices})
        out.append({**base, "candidate": f"({a})", "equal": True, "note": "letter in parentheses"})
        out.append({**base, "candidate": f"\\text{{({a})}}", "equal": True, "note": "\\text{(B)} form"})
        out.append({**base, "candidate": f"{a}) {choices['ABCD'.index(a)]}", "equal": True, "note": "letter with the option text"})
        out.append({**base, "candidate": other, "equal": False, "note": "another option"})
    jee = [r for r in _rows("jeebench/jee_adv_2016_2020.jsonl") if r.get("question_type") == "MCQ(multiple)" and len(r["answer"]) >= 2]
    for r in jee[:15]:
        a = r["answer"]
        base = dict(reference=a, category="choice", source=r["id"], question={"question_type": "MCQ(multiple)"})
        out.append({**base, "candidate": ", ".join(a), "equal": True, "note": "letters separated by commas"})
        out.append({**base, "candidate": a[0], "equal": False, "note": "a strict subset of the options"})
    return out


def _build_jee_numeric() -> list[dict]:
    """JEEBench Numeric answers, which the exam asks "correct up to the 2nd decimal digit" (0.50 is stored as "0.5")."""
    out = []
    rows = [r for r in _rows("jeebench/jee_adv_2016_2020.jsonl") if r.get("question_type") == "Numeric"]
    for r in rows[:20]:
        a, v = r["answer"], Fraction(r["answer"])
        base = dict(reference=a, category="numeric", source=r["id"], question={"question_type": "Numeric"})
        out.append({**base, "candidate": f"{float(v):.2f}", "equal": True, "note": "JEE: written to 2 decimals"})
        out.append({**base, "candidate": f"{float(v + Fraction(4, 1000)):.3f}", "equal": True, "note": "JEE: within 0.005"})
        out.append({**base, "candidate": f"{float(v + Fraction(5, 100)):.2f}", "equal": False, "note": "JEE: 0.05 off (0.55 for 0.5)"})
        out.append({**base, "candidate": f"{float(v - Fraction(1, 100)):.2f}", "equal": False, "note": "JEE: 1 off in the 2nd decimal"})
    return out


def _build_measured() -> list[dict]:
    """SciBench quantities: integers with a unit are measurements; long decimals may be given to 4 s.f."""
    from scireflect.verifiers.answer import parse_number
    from scireflect.verifiers.units import parse_unit

    out = []
    rows = _rows("scibench/scibench_dev.jsonl")
    ints = [r for r in rows if re.fullmatch(r"-?\d+", r["answer"]) and r["answer"].lstrip("-") != "0"
            and (spec := parse_unit(r["unit"])) is not None and spec.physical and "°" not in spec.pretty]
    for r in ints[:15]:
        n = int(r["answer"])
        base = dict(reference=r["answer"], unit=r["unit"], category="units", source=r["id"])
        out.append({**base, "candidate": f"{n - 0.3:.1f}", "equal": True, "note": "an integer with a unit is measured: rounds to it"})
        out.append({**base, "candidate": f"{n + 0.6:.1f}", "equal": False, "note": "rounds to the next integer"})
        out.append({**base, "candidate": str(n + 1), "equal": False, "note": "off by one"})
    longs = [r for r in rows if (pn := parse_number(r["answer"])) is not None and pn.sig_figs and pn.sig_figs >= 6 and pn.value]
    for r in longs[:15]:
        x = float(Fraction(r["answer"]))
        dec = 3 - math.floor(math.log10(abs(x)))  # decimals that keep 4 significant figures
        if dec < 1:
            continue  # 4 figures of a large number end in zeros whose significance is unclear
        four = f"{x:.{dec}f}"
        base = dict(reference=r["answer"], category="units" if r["unit"] else "numeric", source=r["id"],
                    question={"subject": r["subject"], "source": r["source"]})
        if r["unit"]:
            base["unit"] = r["unit"]
        out.append({**base, "candidate": four, "equal": True, "note": "SciBench: the reference to 4 significant figures"})
        out.append({**base, "candidate": f"{float(four) + 2 * 10 ** -dec:.{dec}f}", "equal": False,
                    "note": "SciBench: 2 off in the 4th figure"})
    return out


def _build_extraction() -> list[dict]:
    """Whole responses: a final answer stated as such (true) or none at all (false, whatever number is in it)."""
    out = []
    for r in _rows("gsm8k/train.jsonl")[100:110]:
        a = r["answer"]
        base = dict(reference=a, category="extraction", source=r["id"], candidate=a)
        out.append({**base, "response": f"Adding up the amounts gives {a}.\n\nSo the total is {a} dollars.", "equal": True,
                    "note": "the concluding line states the answer"})
        out.append({**base, "response": f"There are {a} cases to count.\n\nSo the answer is \\boxed{{}}", "equal": False,
                    "note": "the last box is empty"})
        out.append({**base, "response": f"We get {a}, so \\boxed{{{a}}}. To double-check, {a} - 1 = ", "finish_reason": "length",
                    "equal": False, "note": "cut off by the token limit"})
        out.append({**base, "response": f"Case 1 gives {a}.\n\nNext we check the other cases in the same way.", "equal": False,
                    "note": "no answer in the concluding line"})
    jee = [r for r in _rows("jeebench/jee_adv_2016_2020.jsonl") if r.get("question_type") == "MCQ"]
    for r in jee:
        opts = re.findall(r"\(([A-D])\) ([-\d.]+)\s*$", r["question"], re.M)
        if len(opts) != 4:
            continue
        listing = "".join(f"({k}) {v}\n" for k, v in opts)
        value = dict(opts)[r["answer"]]
        base = dict(reference=r["answer"], category="extraction", source=r["id"], candidate=value,
                    question={"question_type": "MCQ", "question": r["question"]})
        out.append({**base, "response": f"The result is {value}.\n" + ("Let's recheck the options:\n" + listing) * 25,
                    "equal": False, "note": "loops over the options (degenerate)"})
        out.append({**base, "response": f"The result is {value}.\n\nLet's recheck the options: " + listing.replace("\n", " "),
                    "equal": False, "note": "ends in the option listing"})
        out.append({**base, "response": f"The result is {value}, option ({r['answer']}).\n\n\\boxed{{{r['answer']}}}",
                    "equal": True, "note": "boxed option letter"})
    return out


NOTATION = [
    ("0.000216", None, "2.16 × 10⁻⁴", True, "numeric", "Unicode times and superscript exponent"),
    ("6.02e23", None, "6.02 × 10²³", True, "numeric", "Unicode superscript exponent"),
    ("0.000216", None, "2.16 × 10⁻³", False, "numeric", "Unicode exponent, wrong power"),
    ("100.1", None, "\\approx 100.1", True, "numeric", "\\approx inside the box"),
    ("100.1", None, "≈ 100.1", True, "numeric", "≈ inside the box"),
    ("100.1", None, "\\approx 101.1", False, "numeric", "\\approx inside the box, wrong value"),
    ("0.368", None, "e^{-1}", True, "numeric", "Euler's number against a decimal reference"),
    ("0.5", None, "e^{-1}", False, "numeric", "Euler's number, wrong value"),
    ("1.54", "$\\AA$", "1.54\\ Å", True, "units", "Angstrom sign U+00C5"),
    ("1.54", "$\\AA$", "1.54\\ \u212b", True, "units", "Angstrom sign U+212B"),
    ("1.54", "$\\AA$", "1.54\\,\\mathring{A}", True, "units", "\\mathring{A}"),
    ("1.54", "$\\AA$", "1.54\\,\\text{Å}", True, "units", "\\text{Å}"),
    ("1.54", "$\\AA$", "154\\ \\mathrm{pm}", True, "units", "Angstrom converted"),
    ("1.54", "$\\AA$", "1.54\\ \\mathrm{A}", False, "units", "A is the ampere"),
    ("1.54", "$\\AA$", "1.64\\ Å", False, "units", "Angstrom, wrong value"),
]


HARD = [
    ("5 km", None, "5\\ \\mathrm{m}", False, "units", "math-verify strips units"),
    ("5 km", None, "5000\\ \\mathrm{m}", True, "units", "math-verify strips units"),
    ("9.81", "m/s^2", "9.8\\ \\mathrm{m/s^2}", False, "units", "9.8 is outside 9.81's rounding allowance"),
    ("50.7", "$\\mathrm{atm}$", "5.137\\times10^{6}\\ \\mathrm{Pa}", True, "units", "SciBench: converted"),
    ("50.7", "$\\mathrm{atm}$", "50.7\\ \\mathrm{m}", False, "units", "SciBench: wrong dimension"),
    ("+65.49", "$\\mathrm{kJ} \\mathrm{mol}^{-1}$", "65.49\\ \\mathrm{J/mol}", False, "units", "kJ/mol vs J/mol"),
    ("+65.49", "$\\mathrm{kJ} \\mathrm{mol}^{-1}$", "65490\\ \\mathrm{J\\,mol^{-1}}", True, "units", "kJ/mol vs J/mol"),
    ("30", "$^{\\circ}$", "\\frac{\\pi}{6}\\ \\mathrm{rad}", True, "units", "degrees vs radians"),
    ("30", "$^{\\circ}$", "30\\ \\mathrm{rad}", False, "units", "degrees vs radians"),
    ("\\frac{1}{2004!}", None, "\\frac{1}{2006!}", False, "symbolic", "math-verify: equal"),
    ("2.0", "$10^4 \\mathrm{~N} / \\mathrm{C}$", "2.0\\times10^{4}\\ \\mathrm{V/m}", True, "units", "N/C = V/m"),
    ("1.6", "$10^{-19}$ J", "1.6\\times10^{-19}\\ \\mathrm{J}", True, "units", "scale in the unit field"),
    ("1.6", "$10^{-19}$ J", "1.6\\ \\mathrm{J}", False, "units", "scale in the unit field ignored"),
]


def _hand(cases: list[tuple]) -> list[dict]:
    """Pairs from hand-written ``(reference, unit, candidate, equal, category, note)`` rows."""
    return [{"reference": ref, "unit": unit, "candidate": cand, "equal": eq, "category": cat, "source": "hard-case",
             "note": note} for ref, unit, cand, eq, cat, note in cases]


def build(path: Path = SUITE, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    pairs = _build_units(rng) + _build_numeric(rng) + _build_symbolic(rng) + _build_choice(rng) + _hand(HARD)
    # issue 14: false accepts and rejects of the verifier (appended, so the first 758 pairs keep their ids)
    pairs += _build_jee_numeric() + _build_measured() + _build_extraction() + _hand(NOTATION)
    for i, p in enumerate(pairs):
        p["id"] = f"eq-{i:04d}"
        if p.get("unit") is None:
            p.pop("unit", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    return pairs


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------

def _response(pair: dict) -> str:
    """The model output a pair stands for: its whole ``response`` when it has one, else the boxed candidate."""
    return pair.get("response") or f"\\boxed{{{pair['candidate']}}}"


def _ours(pair: dict, verify_answer) -> bool:
    q = {"answer": pair["reference"], **(pair.get("question") or {})}
    if pair.get("unit"):
        q["unit"] = pair["unit"]
    return verify_answer(_response(pair), q, finish_reason=pair.get("finish_reason")).ok is True


def _mv(pair: dict, mv) -> bool:
    ref = pair["reference"]
    unit = pair.get("unit")
    if unit:
        ref = f"{ref}\\ {unit.strip().strip('$')}"
    if pair.get("finish_reason") == "length":
        return False  # cut off: math-verify has no notion of it, so it is given the benefit of the doubt
    try:
        gold = mv.parse(f"${ref}$", parsing_timeout=None)
        pred = mv.parse(_response(pair), parsing_timeout=None)
        return bool(mv.verify(gold, pred, timeout_seconds=None))
    except Exception:  # noqa: BLE001
        return False


def _score(preds: list[bool], pairs: list[dict]) -> dict:
    n = len(pairs)
    pos = [p for p, x in zip(preds, pairs, strict=True) if x["equal"]]
    neg = [p for p, x in zip(preds, pairs, strict=True) if not x["equal"]]
    correct = sum(p == x["equal"] for p, x in zip(preds, pairs, strict=True))
    return {"n": n, "acc": correct / n if n else 0.0, "far": (sum(neg) / len(neg)) if neg else 0.0,
            "frr": (sum(not p for p in pos) / len(pos)) if pos else 0.0, "neg": len(neg), "pos": len(pos)}


def run(pairs: list[dict], show_errors: bool = False) -> dict:
    import math_verify

    from scireflect.verifiers.answer import verify_answer

    for name in ("math_verify", "math_verify.parser", "math_verify.grader", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _ours(pairs[0], verify_answer)  # warm up (grammar, pint registry)
    results = {}
    for name, fn in (("ours", lambda p: _ours(p, verify_answer)), ("math-verify", lambda p: _mv(p, math_verify))):
        t0 = time.process_time()
        preds = [fn(p) for p in pairs]
        cpu = time.process_time() - t0
        cats = defaultdict(list)
        for p, x in zip(preds, pairs, strict=True):
            cats[x["category"]].append((p, x))
        results[name] = {"overall": _score(preds, pairs), "rate": len(pairs) / cpu if cpu else 0.0,
                         "cats": {c: _score([p for p, _ in v], [x for _, x in v]) for c, v in sorted(cats.items())},
                         "errors": [(x["id"], x["reference"], x.get("unit"), x["candidate"], x["equal"])
                                    for p, x in zip(preds, pairs, strict=True) if p != x["equal"]]}
    print(f"equivalence suite: {len(pairs)} pairs ({SUITE.relative_to(HERE.parent)})")
    header = f"{'category':<10} {'n':>4} | {'ours acc':>8} {'FAR':>6} {'FRR':>6} | {'m-v acc':>8} {'FAR':>6} {'FRR':>6}"
    print(header)
    print("-" * len(header))
    for cat in [*sorted(results["ours"]["cats"]), "overall"]:
        a = results["ours"]["overall"] if cat == "overall" else results["ours"]["cats"][cat]
        b = results["math-verify"]["overall"] if cat == "overall" else results["math-verify"]["cats"][cat]
        print(f"{cat:<10} {a['n']:>4} | {a['acc']:>8.3f} {a['far']:>6.3f} {a['frr']:>6.3f} | {b['acc']:>8.3f} {b['far']:>6.3f} {b['frr']:>6.3f}")
    print(f"checks/s/core: ours {results['ours']['rate']:.1f}, math-verify {results['math-verify']['rate']:.1f} (in-process, CPU time)")
    if show_errors:
        for name in results:
            print(f"\n{name} errors:")
            for e in results[name]["errors"]:
                print("  ", e)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="store_true", help="rebuild the suite from /work/shared/data first")
    ap.add_argument("--errors", action="store_true", help="list every misjudged pair")
    args = ap.parse_args(argv)
    pairs = build() if args.build or not SUITE.exists() else read_jsonl(SUITE)
    res = run(pairs, args.errors)
    units = res["ours"]["cats"].get("units", {"far": 0.0})
    ok = units["far"] == 0.0 and res["ours"]["overall"]["acc"] > res["math-verify"]["overall"]["acc"]
    print("claims (units FAR = 0, ours above math-verify):", "hold" if ok else "DO NOT HOLD")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
