r"""The symbolic check (MATH-style answers): expressions, equations, tuples, intervals, sets, unions, matrices.

Structure is split by a bracket-aware scanner (:func:`structure`), scalars are compared as
normalised strings, then parsed by sympy's ANTLR LaTeX grammar (:mod:`.latex`) and compared
structurally, numerically (constants) or at random points (expressions in variables), with
``simplify(a - b) == 0`` last. Rules: ``docs/verifiers.md``, "Symbolic answers".

Sources: Hendrycks et al. (2021) MATH string normalisation; equivalence by sympy
``simplify(a - b) == 0`` and random-point evaluation as in math-verify (Hugging Face).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

import mpmath

from ..base import EQUAL, SYMBOLIC_MISMATCH, TEXT_MISMATCH, UNDECIDED, UNPARSEABLE, Verdict
from ..extract import strip_answer_delimiters
from .common import Unparseable, verdict
from .latex import close_rel_error, evalf, is_large, latex_to_sympy, sympy_module, to_mpc
from .normalize import balanced, closing_index, light_normalize, normalize_latex, split_top
from .numbers import SINGLE_SYMBOL, parse_number
from .tolerance import SYMBOLIC_REL_TOL, NumericTolerance, rel_error

_MAX_SIMPLIFY_OPS = 250
_SAMPLE_SEED = 20240531
_N_SAMPLES = 8
_MIN_VALID_SAMPLES = 3


@dataclass(frozen=True)
class _Node:
    """An answer's top-level structure: ``kind``, its parts (``items``), brackets, or the scalar ``text``."""

    kind: str  # union, set, list, seq, eq, expr
    items: tuple = ()
    brackets: str = ""
    text: str = ""


_MATRIX = re.compile(r"^\s*\\begin\{([pbvB]?matrix)\}(?P<body>.*)\\end\{\1\}\s*$", re.S)


def _matrix(s: str) -> _Node | None:
    r"""``\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}`` -> an ordered node tagged with its shape."""
    m = _MATRIX.match(strip_answer_delimiters(s))
    if not m:
        return None
    rows = [r for r in re.split(r"\\\\|\\(?=\s)", m.group("body")) if r.strip()]
    cells = [[c.strip() for c in r.split("&")] for r in rows]
    if not cells or any(not c for row in cells for c in row):
        return None
    shape = f"matrix {len(cells)}x{len(cells[0])}"
    if any(len(row) != len(cells[0]) for row in cells):
        return None
    return _Node("seq", tuple(structure(c) for row in cells for c in row), brackets=shape)


def structure(s: str) -> _Node:
    r"""Split an answer into its structure: a matrix, a union (``\cup``), a set ``\{...\}``, a bracketed
    tuple/interval, a bare comma list, an equation ``lhs = rhs``, or a single expression."""
    mat = _matrix(s)
    if mat is not None:
        return mat
    t = light_normalize(s)
    t = re.sub(r"\\text\s*\{\s*(?:and|or)\s*\}|\s+(?:and)\s+", ",", t)
    if "\\cup" in t:
        pieces = [p.strip() for p in re.split(r"\\cup", t)]
        if len(pieces) > 1 and all(pieces):
            # only split when \cup is at top level
            if all(balanced(p) for p in pieces):
                return _Node("union", tuple(structure(p) for p in pieces))
    if t.startswith("\\{") and t.endswith("\\}") and balanced(t[2:-2]):
        return _Node("set", tuple(structure(x) for x in split_top(t[2:-2]) if x))
    if len(t) >= 2 and t[0] in "([" and t[-1] in ")]":
        # closing bracket of the first opener must be the last char (type may differ: [0, 7))
        if closing_index(t, 0) == len(t) - 1:
            inner = split_top(t[1:-1])
            if len(inner) >= 2:
                return _Node("seq", tuple(structure(x) for x in inner), brackets=t[0] + t[-1])
    top = split_top(t)
    if len(top) >= 2 and not re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        return _Node("list", tuple(structure(x) for x in top if x))
    eq = [p for p in re.split(r"(?<![<>!\\])=", t)]
    if len(eq) == 2 and eq[0].strip() and eq[1].strip():
        return _Node("eq", (eq[0].strip(), eq[1].strip()))
    return _Node("expr", text=t)



def _describe(node: _Node) -> str:
    return {
        "union": "a union of sets",
        "set": "a set",
        "list": "a comma-separated list",
        "seq": "a tuple, interval or matrix",
        "eq": "an equation",
        "expr": "a single expression",
    }[node.kind]


class _Cmp:
    """Result of comparing two nodes: ok True/False/None, method, and a note."""

    __slots__ = ("ok", "method", "note", "cand_unparsed", "ref_unparsed")

    def __init__(self, ok, method, note="", cand_unparsed=False, ref_unparsed=False):
        self.ok, self.method, self.note = ok, method, note
        self.cand_unparsed, self.ref_unparsed = cand_unparsed, ref_unparsed


def _parse_pair(parse, c, r):
    """``(parse(c), parse(r))``, or the comparison result when one side does not parse (reference first:
    an unparseable reference is a text comparison, an unparseable candidate leaves it undecided)."""
    try:
        er = parse(r)
    except Unparseable:
        return _Cmp(False, "text", ref_unparsed=True)
    try:
        ec = parse(c)
    except Unparseable:
        return _Cmp(None, "parse", cand_unparsed=True)
    return ec, er


def _scalar_equiv(c: str, r: str, tol: float) -> _Cmp:
    """Compare two scalar answers (strings): string forms, plain numbers, then sympy (``docs/verifiers.md``)."""
    nc, nr = normalize_latex(c), normalize_latex(r)
    if nc == nr:
        return _Cmp(True, "string")
    if nc.lower() == nr.lower() and not re.search(r"\d", nr):
        return _Cmp(True, "string (case-insensitive)")
    # base-n numerals and text answers: string comparison only
    if re.fullmatch(r"\d+_\{?\d+\}?", nr) or re.fullmatch(r"\\(?:text|textbf|mathrm)\{[^{}]*[A-Za-z]{2}[^{}]*\}", light_normalize(r)):
        nn = lambda x: re.sub(r"[{}\s]", "", x).lower()  # noqa: E731
        return _Cmp(nn(nc) == nn(nr), "text")
    pc, pr = parse_number(c), parse_number(r)
    if pc is not None and pr is not None and not pc.percent and not pr.percent:
        if pc.value == pr.value:
            return _Cmp(True, "exact number")
        err = rel_error(pc.value, pr.value)
        return _Cmp(err <= tol, "number", f"relative error {err:.3g}")
    sp = sympy_module()
    parsed = _parse_pair(latex_to_sympy, c, r)
    if isinstance(parsed, _Cmp):
        return parsed
    ec, er = parsed
    if ec == er:
        return _Cmp(True, "structural")
    large = is_large(ec) or is_large(er)
    syms = sorted(ec.free_symbols | er.free_symbols, key=lambda x: x.name)
    if not syms:
        vc, vr = evalf(ec), evalf(er)
        if vc is not None and vr is not None:
            with mpmath.workdps(30):
                err = close_rel_error(to_mpc(vc), to_mpc(vr))
            return _Cmp(err <= tol, "numeric evaluation", f"relative error {err:.3g}")
        if vr is not None and vc is None:
            return _Cmp(False, "numeric evaluation", "the answer has no finite value")
        if not large and _simplify_zero(ec, er):
            return _Cmp(True, "simplify")
        return _Cmp(None, "undecided", "the values could not be evaluated")
    # free symbols: sample random points, then try simplify
    rng = random.Random(_SAMPLE_SEED)
    valid, agree = 0, 0
    for k in range(_N_SAMPLES):
        sign = 1 if k < _N_SAMPLES - 3 else -1
        subs = {x: sp.Float(sign * rng.uniform(0.3, 2.9), 30) for x in syms}
        vc, vr = evalf(ec, subs), evalf(er, subs)
        if vc is None or vr is None:
            continue
        with mpmath.workdps(30):
            err = close_rel_error(to_mpc(vc), to_mpc(vr))
        valid += 1
        if err <= SYMBOLIC_REL_TOL:  # expressions in variables are never compared loosely
            agree += 1
        else:
            return _Cmp(False, "sampling", f"differs at a random point (relative error {err:.3g})")
    if valid >= _MIN_VALID_SAMPLES and agree == valid:
        return _Cmp(True, "sampling", f"agrees at {valid} random points")
    if not large and _simplify_zero(ec, er):
        return _Cmp(True, "simplify")
    return _Cmp(None, "undecided", "equivalence could not be established")


def _simplify_zero(a, b) -> bool:
    sp = sympy_module()
    try:
        if sp.count_ops(a) + sp.count_ops(b) > _MAX_SIMPLIFY_OPS:
            return False
        return sp.simplify(a - b) == 0
    except Exception:  # noqa: BLE001 - simplify can fail on odd trees
        return False


def _eq_expr(node: _Node):
    """``lhs - rhs`` of an equation node, parsed."""
    lhs, rhs = node.items
    return latex_to_sympy(lhs) - latex_to_sympy(rhs)


def _compare(cn: _Node, rn: _Node, tol: float, ordered: bool = False) -> _Cmp:
    # "x = 5" vs "5": drop a single-symbol left-hand side
    if cn.kind == "eq" and rn.kind != "eq" and SINGLE_SYMBOL.match(normalize_latex(cn.items[0])):
        return _compare(structure(cn.items[1]), rn, tol, ordered)
    if rn.kind == "eq" and cn.kind != "eq" and SINGLE_SYMBOL.match(normalize_latex(rn.items[0])):
        return _compare(cn, structure(rn.items[1]), tol, ordered)
    if cn.kind == "expr" and rn.kind == "expr":
        return _scalar_equiv(cn.text, rn.text, tol)
    if ordered and rn.kind == "list" and cn.kind == "list":
        cn, rn = replace(cn, kind="seq", brackets="()"), replace(rn, kind="seq", brackets="()")
    unordered = {"set", "list", "union"}
    if rn.kind in unordered and cn.kind in unordered and (rn.kind == "union") == (cn.kind == "union"):
        if len(cn.items) != len(rn.items):
            return _Cmp(False, "multiset", f"{len(cn.items)} element(s), a different number than the reference")
        remaining = list(cn.items)
        for r_item in rn.items:
            found = None
            for j, c_item in enumerate(remaining):
                res = _compare(c_item, r_item, tol)
                if res.ok:
                    found = j
                    break
                if res.cand_unparsed:
                    return res
            if found is None:
                return _Cmp(False, "multiset", "an element of the reference has no equal element in the answer")
            remaining.pop(found)
        return _Cmp(True, "multiset")
    if rn.kind == "seq" and cn.kind == "seq":
        if len(cn.items) != len(rn.items):
            return _Cmp(False, "ordered", f"{len(cn.items)} element(s), a different number than the reference")
        if cn.brackets != rn.brackets:
            if "matrix" in cn.brackets + rn.brackets:
                return _Cmp(False, "ordered", "the matrix shape or brackets differ from the reference's")
            return _Cmp(False, "ordered", f"the brackets {cn.brackets[0]} {cn.brackets[1]} differ from the reference's")
        for i, (c_item, r_item) in enumerate(zip(cn.items, rn.items, strict=True)):
            res = _compare(c_item, r_item, tol)
            if not res.ok:
                res.note = f"element {i + 1} differs" + (f" ({res.note})" if res.note else "")
                return res
        return _Cmp(True, "ordered")
    if rn.kind == "eq" and cn.kind == "eq":
        if normalize_latex("=".join(cn.items)) == normalize_latex("=".join(rn.items)):
            return _Cmp(True, "string")
        parsed = _parse_pair(_eq_expr, cn, rn)
        if isinstance(parsed, _Cmp):
            return parsed
        return _equation_equiv(*parsed, tol)
    return _Cmp(False, "structure", f"the answer is {_describe(cn)}, which does not have the reference's form")


def _equation_equiv(dc, dr, tol: float) -> _Cmp:
    """Equations ``dc = 0`` and ``dr = 0`` are equivalent if ``dc / dr`` is a non-zero constant."""
    sp = sympy_module()
    syms = sorted(dc.free_symbols | dr.free_symbols, key=lambda x: x.name)
    if not syms:
        return _Cmp(None, "undecided", "an equation without variables")
    rng = random.Random(_SAMPLE_SEED)
    ratios = []
    for k in range(_N_SAMPLES):
        subs = {x: sp.Float(rng.uniform(0.3, 2.9) * (1 if k % 2 else -1), 30) for x in syms}
        vc, vr = evalf(dc, subs), evalf(dr, subs)
        if vc is None or vr is None:
            continue
        with mpmath.workdps(30):
            a, b = to_mpc(vc), to_mpc(vr)
            if abs(b) < mpmath.mpf(10) ** -20:
                if abs(a) < mpmath.mpf(10) ** -20:
                    continue
                return _Cmp(False, "equation sampling", "the equations differ at a random point")
            ratios.append(a / b)
    if len(ratios) < _MIN_VALID_SAMPLES:
        return _Cmp(None, "undecided", "equivalence of the equations could not be established")
    with mpmath.workdps(30):
        r0 = ratios[0]
        if abs(r0) < mpmath.mpf(10) ** -20:
            return _Cmp(False, "equation sampling", "the equations are not equivalent")
        same = all(close_rel_error(q, r0) <= SYMBOLIC_REL_TOL for q in ratios)
    return _Cmp(same, "equation sampling", "" if same else "the equations are not equivalent")


def check_symbolic(
    candidate: str, reference: str, *, tol: NumericTolerance | None = None, ordered_lists: bool = False
) -> Verdict:
    r"""Compare LaTeX answers by meaning (MATH-style): expressions, tuples, intervals, sets, equations.

    Args:
        candidate: e.g. ``\dfrac{9}{7}``, ``(x+1)^2``, ``\left( -\frac14, -2 \right)``, ``y=2x``.
        reference: the reference answer in LaTeX.
        tol: its fixed ``rel_tol`` is the relative tolerance for numeric agreement of constants
            (default ``SYMBOLIC_REL_TOL`` = 1e-9, i.e. exact answers must be exact; a policy does
            not apply). Expressions with variables are always compared at ``SYMBOLIC_REL_TOL``.
        ordered_lists: compare bare comma lists in order (set by :func:`verify_answer` when the
            question asks for an order: "in increasing order", "in decreasing order", ...).

    Returns:
        A :class:`Verdict` with checker ``symbolic``: ``equal``, ``symbolic_mismatch``,
        ``text_mismatch`` (reference not parseable and strings differ), ``unparseable`` (the
        candidate does not parse) or ``undecided``. ``details['method']`` names what decided
        (``string``, ``structural``, ``numeric evaluation``, ``sampling``, ``simplify``,
        ``multiset``, ``ordered``, ``equation sampling``). Rules in ``docs/verifiers.md``.
    """
    rel_tol = tol.rel_tol if tol else None
    agree_tol = SYMBOLIC_REL_TOL if rel_tol is None else max(rel_tol, SYMBOLIC_REL_TOL)
    if normalize_latex(candidate) == normalize_latex(reference):
        return verdict(True, EQUAL, "the extracted answer is the reference up to formatting", "symbolic",
                       candidate=normalize_latex(candidate), reference=normalize_latex(reference),
                       details={"method": "string"})
    cn, rn = structure(candidate), structure(reference)
    res = _compare(cn, rn, agree_tol, ordered_lists)
    cand_s, ref_s = normalize_latex(candidate), normalize_latex(reference)
    details = {"method": res.method}
    if res.note:
        details["note"] = res.note
    if res.ok is True:
        return verdict(True, EQUAL, f"the extracted answer is equivalent to the reference (by {res.method})",
                       "symbolic", candidate=cand_s, reference=ref_s, details=details)
    if res.cand_unparsed:
        return verdict(None, UNPARSEABLE, "the extracted answer could not be parsed as a LaTeX expression",
                       "symbolic", candidate=cand_s, reference=ref_s, details=details)
    if res.ok is None:
        return verdict(None, UNDECIDED, f"equivalence to the reference could not be decided ({res.note or res.method})",
                       "symbolic", candidate=cand_s, reference=ref_s, details=details)
    if res.ref_unparsed or res.method == "text":
        details["reference_parsed"] = False
        return verdict(False, TEXT_MISMATCH, "the extracted answer differs from the reference as text", "symbolic",
                       candidate=cand_s, reference=ref_s, details=details)
    note = f" ({res.note})" if res.note else ""
    return verdict(False, SYMBOLIC_MISMATCH,
                   f"the extracted answer is not equivalent to the reference (checked by {res.method}){note}",
                   "symbolic", candidate=cand_s, reference=ref_s, details=details)

