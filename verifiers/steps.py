r"""The step checker: re-compute every calculation a solution writes, and flag those that are wrong.

A verifier beside the answer verifier (issue 23): it checks the *intermediate* results of a chain of
thought, the way the calculator notes of GSM8K (``48/2 = <<48/2=24>>24``; Cobbe et al. 2021,
"Training Verifiers to Solve Math Word Problems") give each step its ground truth, and in the spirit
of process supervision (Lightman et al. 2023, "Let's Verify Step by Step"), where a solution is only
as good as its worst step. Entry point: :func:`check_steps`.

How a claim is judged (conservative: a false flag rejects good training data):

1. :mod:`.step_claims` finds ``expression = value`` chains (plain text and LaTeX); in a chain
   ``a = b = c`` each written value is checked against the last expression before it.
2. :mod:`.step_parse` reads each member into a tree; :mod:`.step_arith` computes it exactly
   (fractions) or to 30 digits (mpmath).
3. The value agrees when the computed value *rounds or truncates* to it at its written precision:
   ``|computed - written| <= ulp/2``, or ``written`` is ``computed`` cut toward zero
   (``0 <= |computed| - |written| < ulp``), where ``ulp`` is one unit in the last written place
   (``3.14`` -> 0.01, ``2.5 \times 10^{3}`` -> 100). So ``\approx 3.14`` for pi is true and ``3.15``
   false, ``1/3 = 0.33`` and ``1/3 = 0.3`` true, ``2/3 = 0.66`` true (cut) and ``0.65`` false. An
   integer written for a non-integer value may be rounded up as well (``10/3 = 4`` trips:
   ``|computed - written| < 1``), as word problems round to whole people and buses. Exact fractions
   (``\frac{3}{4}``) must be equal. After ``\approx``/``≈`` an integer's trailing zeros are not
   significant (``\approx 17000`` covers 16500..17500). A percentage may be read as a fraction or as
   the number of percent (``25/100 = 25%`` and ``1/4 * 100 = 25%`` both hold).
4. When the numbers disagree but both sides carry units pint knows, the claim is computed again with
   units (``1.5 km + 300 m = 1800 m``, ``... = 17 kN mol^{-1}``) and judged in the written unit.
   When the numbers agree, units overrule them only where every number of the left side carries its
   unit and the two sides have one dimension (``3.0 atm \times 1.0 L = 3.0 J`` is false: 304 J), never
   where a bare number stands for a conversion factor (``2 hours * 60 = 120 minutes``).
5. Readings a text leaves open (degrees or radians in ``\sin 30``, the base of ``\log``, ``*``
   inside LaTeX, which the problem may have defined as an operation) are all tried: the claim is
   true when one reading fits; when none fits it is false, or skipped where the open reading is an
   operation we cannot know.

A claim the checker cannot read (unknown symbols ``x``, functions ``f(2)``, ``\pmod``, subscripts,
units it cannot reconcile) is skipped and counted, never guessed. Model text is never evaluated:
no ``eval``, ``exec``, ``sympify`` or ``parse_expr``; powers, factorials and nesting are bounded
(:mod:`.step_arith`), and the whole check stops after ``TIME_BUDGET_S``.
"""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from typing import Any

import mpmath

from .step_arith import evaluate, evaluate_units, unit_quantity
from .step_parse import Member, Refused, UnknownUnit, Written, parse_member, parse_value
from .step_claims import MAX_TEXT_CHARS, Chain, Token, extract_chains, tokenize

__all__ = ["MAX_CLAIM_CHARS", "TIME_BUDGET_S", "StepClaim", "StepReport", "check_steps"]

MAX_CLAIM_CHARS = 400
"""An expression longer than this is skipped (``too long``)."""
TIME_BUDGET_S = 3.0
"""Claims after this many seconds of checking are not examined (the worker's limit is ~10 s)."""
_ALTERNATIVES = {"trig": ("deg",), "log": ("10", "2"), "pct": ("plain",), "mixed": ("product",), "slash": ("group",)}


@dataclass(frozen=True)
class StepClaim:
    """One calculation claim of a solution and its verdict.

    Attributes:
        line: 1-based line of the solution text where the written value is.
        text: the claim as written (at most 200 characters), e.g. ``"48/2 = 24 clips"``.
        expression: the left side that was evaluated, e.g. ``"48/2"``.
        written: the value as written, e.g. ``"24 clips"``, ``"2.5 \times 10^{3} J"``.
        computed: the computed value, a few digits beyond the written precision (in the written unit
            when units were used); ``None`` when skipped.
        verdict: ``"true"``, ``"false"`` or ``"skipped"``.
        why: for ``skipped``, why (``"unknown symbol x"``); for ``false``, how it is off
            (``"off by 10x"``, ``"wrong sign"``, ``"relative error 12%"``).
        offset: character offset of the written value in the solution text.
        relation: ``"="`` or ``"≈"`` (``\approx``).
    """

    line: int
    text: str
    expression: str
    written: str
    computed: str | None
    verdict: str
    why: str | None = None
    offset: int = 0
    relation: str = "="

    def to_dict(self) -> dict[str, Any]:
        """The claim as plain JSON."""
        return asdict(self)


@dataclass(frozen=True)
class StepReport:
    """All claims of one solution, in text order.

    Examples:
        >>> r = check_steps("Natalia sold 48/2 = 24 clips in May.\\nShe sold 48+24 = 70 clips.")
        >>> r.checked, r.skipped, [(c.line, c.written, c.computed) for c in r.false]
        (2, 0, [(2, '70 clips', '72')])
    """

    claims: tuple[StepClaim, ...] = ()

    @property
    def checked(self) -> int:
        """Claims judged true or false."""
        return sum(c.verdict != "skipped" for c in self.claims)

    @property
    def false(self) -> tuple[StepClaim, ...]:
        """The claims judged false."""
        return tuple(c for c in self.claims if c.verdict == "false")

    @property
    def skipped(self) -> int:
        """Claims found but not judged (unreadable, unknown symbols)."""
        return sum(c.verdict == "skipped" for c in self.claims)

    def to_dict(self) -> dict[str, Any]:
        """``{"checked", "skipped", "errors": [false claims], "claims": [all claims]}`` (plain JSON)."""
        return {"checked": self.checked, "skipped": self.skipped, "errors": [c.to_dict() for c in self.false],
                "claims": [c.to_dict() for c in self.claims]}


def check_steps(text: str, *, max_claims: int = 200) -> StepReport:
    r"""Find and check the calculation claims of a solution.

    Args:
        text: the solution (plain text, Markdown or LaTeX); only the first 100,000 characters are read.
        max_claims: stop after this many claims.

    Returns:
        A :class:`StepReport`. Never raises for any ``str``; a claim whose check fails in an
        unexpected way is ``skipped`` with the error's name as ``why``.

    Examples:
        >>> check_steps("Weng earns 12/60 = $0.2 per minute.").claims[0].verdict
        'true'
        >>> c = check_steps(r"$v = 3.0 \times 10^{8} \text{ m/s} \times 2 \text{ s} = 6.0 \times 10^{7} \text{ m}$").false[0]
        >>> c.written, c.computed, c.why
        ('6.0 \\times 10^{7} \\text{ m}', '6.0e+8 (in the written unit)', 'off by 1/10')
    """
    if not isinstance(text, str) or not text:
        return StepReport(())
    try:
        source = text[:MAX_TEXT_CHARS]
        chains = extract_chains(tokenize(source))
    except Exception:  # noqa: BLE001 - never raise on model text; nothing found is the honest answer
        return StepReport(())
    newlines = [i for i, ch in enumerate(source) if ch == "\n"]
    claims: list[StepClaim] = []
    deadline = time.monotonic() + TIME_BUDGET_S
    for chain in chains:
        if len(claims) >= max_claims or time.monotonic() > deadline:
            break
        try:
            _check_chain(chain, source, newlines, claims, max_claims)
        except Exception as exc:  # noqa: BLE001 - one odd chain must not cost the others
            claims.append(StepClaim(_line(newlines, chain.rels[0].start), _snippet(source, chain.rels[0].start, chain.rels[0].end),
                                    "", "", None, "skipped", type(exc).__name__, chain.rels[0].start))
    return StepReport(tuple(claims[:max_claims]))


def _line(newlines: list[int], offset: int) -> int:
    return bisect.bisect_left(newlines, offset) + 1


def _snippet(source: str, a: int, b: int, limit: int = 200) -> str:
    s = " ".join(source[a:b].split())
    return s if len(s) <= limit else "…" + s[-(limit - 1) :]


def _check_chain(chain: Chain, source: str, newlines: list[int], claims: list[StepClaim], max_claims: int) -> None:
    ref: Member | None = None
    ref_start = 0
    last: Written | None = None  # the last value written in this chain
    last_approx = False  # and whether it came after "\approx"
    for i, toks in enumerate(chain.members):
        if len(claims) >= max_claims:
            return
        if i == 0:
            m = parse_member(toks, source)
            if m.kind in ("expr", "sym", "bad"):
                ref, ref_start = m, _first(toks).start
                if chain.truncated:
                    ref = Member("bad", text=m.text, why="the calculation may begin before the words in front of it")
            continue
        rel = chain.rels[i - 1]
        w = parse_value(toks, source) if toks else None
        if w is not None:
            if ref is not None:
                claim = _judge(ref, w, rel, source, newlines, ref_start)
                if claim.verdict == "false" and last is not None and last.unit and last.unit != w.unit and (
                        w.unit or last.unit.startswith("cent")):
                    claim = _judge_conversion(claim, last, w)  # "4-2 = 2 hours = 120 minutes"
                elif claim.verdict == "false" and last is not None and last_approx and _agrees(last.value, w, rel.text != "="):
                    claim = replace(claim, verdict="true", why=None, expression=last.text)  # "\pi \approx 22/7 = 3.1428"
                last_approx = rel.text != "="
                claims.append(claim)
                last = w
            continue
        m = parse_member(toks, source)
        if m.kind == "expr" and ref is not None and ref.kind == "expr":
            lead = _leading_number(toks, source)
            if lead is not None:
                c = _judge(ref, lead, rel, source, newlines, ref_start)
                if c.verdict == "true":  # "20 + 5 = 25 x 2 = 50": 25 is the value of 20 + 5
                    claims.append(c)
        if m.kind in ("expr", "sym", "bad"):
            ref, ref_start, last = m, _first(toks).start, None
        elif m.kind == "name":
            ref, last = None, None


def _first(toks: list[Token]) -> Token:
    return next((t for t in toks if t.kind not in ("cur", "skipword", "amp", "dnl")), toks[0])


def _leading_number(toks: list[Token], source: str) -> Written | None:
    ts = [t for t in toks if t.kind not in ("cur", "skipword", "amp", "dnl")]
    if len(ts) >= 2 and ts[0].kind == "num" and ts[1].kind == "op" and ts[1].text in ("*", "+", "-") and not ts[0].math:
        return parse_value([ts[0]], source)
    return None


def _judge(ref: Member, w: Written, rel: Token, source: str, newlines: list[int], ref_start: int) -> StepClaim:
    end = w.start + len(w.text)
    base = {"line": _line(newlines, w.start), "text": _snippet(source, ref_start, end), "expression": _snippet(source, ref_start, ref_start + len(ref.text)),
            "written": w.text, "offset": w.start, "relation": "=" if rel.text == "=" else "≈"}
    if ref.kind != "expr":
        return StepClaim(computed=None, verdict="skipped", why=ref.why or "not an expression", **base)
    if len(ref.text) > MAX_CLAIM_CHARS:
        return StepClaim(computed=None, verdict="skipped", why="too long", **base)
    approx = rel.text != "="
    try:
        value = evaluate(ref.tree)
    except Refused as exc:
        return StepClaim(computed=None, verdict="skipped", why=str(exc), **base)
    if _agrees(value, w, approx):
        if w.unit and ref.units and _every_number_has_a_unit(ref.tree):
            # "3.0 atm × 1.0 L = 3.0 J": the numbers agree, the quantities do not (3.0 atm L is 304 J)
            verdict = _judge_units(ref, w, approx)
            if verdict is not None and verdict[0] is False:
                return StepClaim(computed=verdict[1], verdict="false", why=verdict[2], **base)
        return StepClaim(computed=_fmt(value, w), verdict="true", **base)
    for choice in _choices(ref.features):
        try:
            if _agrees(evaluate(ref.tree, choice), w, approx):
                return StepClaim(computed=_fmt(evaluate(ref.tree, choice), w), verdict="true", **base)
        except Refused:
            continue
    if w.unit and ref.units:
        verdict = _judge_units(ref, w, approx)
        if verdict is not None:
            ok, computed, why = verdict
            return StepClaim(computed=computed, verdict="true" if ok is True else "false" if ok is False else "skipped", why=why, **base)
    if w.unit is None and ref.units and any(t for t in [ref.text] if "\\" in t):
        return StepClaim(computed=_fmt(value, w), verdict="skipped", why="units on the left side only", **base)
    if "star" in ref.features:
        return StepClaim(computed=_fmt(value, w), verdict="skipped", why="'*' may be an operation the problem defines", **base)
    return StepClaim(computed=_fmt(value, w), verdict="false", why=_how_off(value, w), **base)


def _judge_conversion(claim: StepClaim, prev: Written, w: Written) -> StepClaim:
    """A value in another unit than the value before it: a unit conversion of that value."""
    if w.unit is None:  # "100 cents = $1"
        ok = _agrees(prev.value / 100, w, False)
        return replace(claim, expression=prev.text, computed=_fmt(prev.value / 100, w), verdict="true" if ok else "false",
                       why=None if ok else _how_off(prev.value / 100, w))
    try:
        q = prev.value * unit_quantity(prev.unit) / unit_quantity(w.unit)
        if q.dimensionality:
            return replace(claim, verdict="skipped", computed=None, why=f"units: {prev.unit} is not {w.unit}")
        mag = mpmath.mpf(float(q.to("dimensionless").magnitude))
    except Refused:
        return replace(claim, verdict="skipped", computed=None, why=f"a conversion from {prev.unit} to {w.unit}")
    ok = _agrees(mag, w, claim.relation != "=", rel_floor=1e-9)
    return replace(claim, expression=prev.text, computed=_fmt(mag, w), verdict="true" if ok else "false",
                   why=None if ok else _how_off(mag, w))


def _choices(features: set[str]):
    keys = [k for k in _ALTERNATIVES if k in features]
    options = [(None, *_ALTERNATIVES[k]) for k in keys]
    for combo in itertools.islice(itertools.product(*options), 1, 24):  # the first is the default, tried already
        yield {k: v for k, v in zip(keys, combo, strict=True) if v is not None}


def _every_number_has_a_unit(tree: Any) -> bool:
    """Whether every number of an expression tree carries a unit (``("u", node, unit)`` nodes).

    Only then may units overrule numbers that agree: ``2 hours * 60 = 120 minutes`` writes a bare 60
    for 60 min/h (sloppy, not wrong), while in ``3.0 atm * 1.0 L = 3.0 J`` every quantity has its unit
    and the claim is off by a factor of 101.325."""
    if not isinstance(tree, tuple) or not tree:
        return True
    if tree[0] == "u":
        return True
    if tree[0] == "n":
        return False
    return all(_every_number_has_a_unit(child) for child in tree[1:] if isinstance(child, tuple))


def _judge_units(ref: Member, w: Written, approx: bool):
    """(True | False | None, computed, why) from a computation with units, or ``None`` when units
    cannot explain a difference (a unit pint does not know, or arithmetic pint refuses): then the
    numbers alone decide. ``None`` as verdict (skipped) when the dimensions differ and the written
    unit is not one of the left side's (a conversion we may have misread)."""
    try:
        unit = unit_quantity(w.unit)
        q = evaluate_units(ref.tree)
    except (UnknownUnit, Refused):
        return None
    if not hasattr(q, "dimensionality") or q.dimensionality != unit.dimensionality:
        if w.unit.split()[-1].lower() in ref.text.lower():
            return None
        return None, None, f"units: {getattr(q, 'units', 'a number')} is not {w.unit}"
    mag = mpmath.mpf(float((q / unit).to("dimensionless").magnitude))
    if _agrees(mag, w, approx, rel_floor=1e-12):
        return True, _fmt(mag, w), None
    return False, _fmt(mag, w) + " (in the written unit)", _how_off(mag, w)


def _agrees(value, w: Written, approx: bool, rel_floor: float = 0.0) -> bool:
    """Whether ``value`` (exact or 30-digit) rounds or cuts to the written value (see the module doc)."""
    candidates = [(w.value, w.ulp)]
    if w.percent:
        candidates = [(w.value / 100, w.ulp / 100), (w.value, w.ulp)]
    elif w.unit and (w.unit.startswith(("cent", "¢", "c ")) or w.unit == "c"):  # "2.50 - $2.24 = 26 cents"
        candidates.append((w.value / 100, w.ulp / 100))
    with mpmath.workdps(30):
        c = mpmath.mpf(value.numerator) / value.denominator if isinstance(value, Fraction) else mpmath.mpf(value)
        for wv, ulp in candidates:
            if isinstance(value, Fraction) and value == wv:
                return True
            wm = mpmath.mpf(wv.numerator) / wv.denominator
            um = mpmath.mpf(ulp.numerator) / ulp.denominator
            if approx and w.integer and w.trailing_zeros:
                um = um * 10**w.trailing_zeros
            tiny = max(abs(wm), abs(c)) * mpmath.mpf(max(rel_floor, 1e-20))
            diff = abs(c - wm)
            if um == 0 and approx and wv.denominator > 1:
                um = mpmath.mpf(1) / wv.denominator  # "\pi \approx 22/7": a fraction written as an approximation
            if um == 0:
                if diff <= tiny + max(abs(wm), 1) * mpmath.mpf(10) ** -20:
                    return True
                continue
            if diff <= um / 2 + tiny:
                return True
            same_sign = wm == 0 or (wm > 0) == (c > 0)
            if same_sign and abs(wm) <= abs(c) + tiny and abs(c) - abs(wm) < um + tiny:
                return True
            if w.integer and not w.percent and diff < um and wm != 0:
                return True
    return False


def _fmt(value, w: Written) -> str:
    """The computed value with two digits more than the written value has (its own digits if exact)."""
    if isinstance(value, Fraction) and value.denominator == 1 and abs(value.numerator) < 10**15:
        return str(value.numerator)
    with mpmath.workdps(30):
        v = mpmath.mpf(value.numerator) / value.denominator if isinstance(value, Fraction) else mpmath.mpf(value)
        if w.percent and abs(w.value) >= 1 and abs(v * 100 - w.value) < abs(v - w.value):
            v = v * 100
        if w.ulp == 0 or v == 0:
            return mpmath.nstr(v, 12)
        ulp = float(w.ulp)
        if 1e-12 <= ulp <= 1 and abs(v) < 1e15:
            decimals = max(0, round(-mpmath.log10(ulp))) + 2
            return f"{float(v):.{decimals}f}"
        sig = max(1, int(mpmath.floor(mpmath.log10(abs(v)) - mpmath.log10(ulp))) + 1) + 2
        return mpmath.nstr(v, min(sig, 20), min_fixed=-4, max_fixed=sig)


def _how_off(value, w: Written) -> str:
    with mpmath.workdps(30):
        c = mpmath.mpf(value.numerator) / value.denominator if isinstance(value, Fraction) else mpmath.mpf(value)
        wv = mpmath.mpf(w.value.numerator) / w.value.denominator
        if w.percent and abs(wv - c * 100) < abs(wv / 100 - c):
            c = c * 100
        if c == 0:
            return f"computed 0, written {w.text}"
        ratio = wv / c
        if abs(ratio + 1) < 0.02:
            return "wrong sign"
        for k in range(1, 10):
            for r, label in ((10**k, f"off by {10**k:,}x"), (mpmath.mpf(10) ** -k, f"off by 1/{10**k:,}")):
                if abs(abs(ratio) / r - 1) < 0.02:
                    return label + (" and wrong sign" if ratio < 0 else "")
        return f"relative error {float(abs(wv - c) / abs(c)):.3g}"
