"""LaTeX to sympy: the only place sympy sees answer text, through its ANTLR grammar (never ``eval``).

:func:`latex_to_sympy` parses one scalar answer with ``sympy.parsing.latex.parse_latex`` (strict
mode) after light normalisation; :func:`sympy_number` evaluates a constant exactly when it is
rational and to 30 digits otherwise. Pathological input (``9^{9^{9^{9}}}``) is only guarded by
:func:`is_large` here; the wall-clock limit comes from the sandbox worker.
"""

from __future__ import annotations

import re
from fractions import Fraction

import mpmath

from .common import NotANumber, Unparseable
from .normalize import light_normalize, unwrap_text


_sympy = None
_parse_latex = None


def sympy_module():
    """Import sympy and its ANTLR LaTeX parser lazily (``import sympy`` takes ~1 s)."""
    global _sympy, _parse_latex
    if _sympy is None:
        import sympy
        from sympy.parsing.latex import parse_latex

        _sympy, _parse_latex = sympy, parse_latex
    return _sympy


_TRAILING_WRAPPED_UNIT = re.compile(
    r"(?:\s|\\[,;: ]|~)*\\(?:mathrm|text|textrm|mbox)\s*\{[^{}\d]*[A-Za-z][^{}\d]*\}(?:\s*\^\s*\{?-?\d+\}?)?\s*$"
)


def prep_latex(s: str) -> tuple[str, str | None]:
    """Prepare an answer for ``parse_latex``: light normalisation, strip a trailing wrapped unit."""
    s = light_normalize(s)
    unit = None
    for _ in range(4):
        m = _TRAILING_WRAPPED_UNIT.search(s)
        if not m or m.start() == 0:
            break
        unit = (s[m.start() :].strip() + (" " + unit if unit else "")).strip()
        s = s[: m.start()].rstrip()
    s = unwrap_text(s).strip()
    m = re.fullmatch(r"([-+]?)\s*(\d+)\s*\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}", s)
    if m and int(m.group(4)) != 0 and int(m.group(3)) < int(m.group(4)):  # mixed number
        s = f"{m.group(1)}({m.group(2)}+\\frac{{{m.group(3)}}}{{{m.group(4)}}})"
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s)  # 17,280 -> 17280
    return s, unit


def latex_to_sympy(s: str):
    """Parse one scalar LaTeX answer with sympy's ANTLR grammar. Raises :class:`Unparseable`."""
    sp = sympy_module()
    text, _unit = prep_latex(s)
    if not text:
        raise Unparseable("empty")
    if re.search(r"[_'\"`;]{2}|__|\\(?:begin|end|def|input|include)\b", text):
        raise Unparseable("not an answer")
    try:
        expr = _parse_latex(text, strict=True)  # type: ignore[misc]
    except Exception as exc:  # LaTeXParsingError, antlr errors, TypeError on odd trees
        raise Unparseable(type(exc).__name__) from exc
    if not isinstance(expr, sp.Basic) or isinstance(expr, (sp.Eq, sp.Ne)) or expr.is_Relational:
        raise Unparseable("not an expression")
    pi_sym = sp.Symbol("pi")
    if pi_sym in expr.free_symbols:  # the ANTLR grammar returns \pi as a plain symbol
        expr = expr.subs(pi_sym, sp.pi)
    # the grammar reads "2x(x+1)" as a function x applied to x+1: in answers it is a product
    from sympy.core.function import AppliedUndef

    if expr.has(AppliedUndef):
        expr = expr.replace(
            lambda e: isinstance(e, AppliedUndef) and len(e.args) == 1,
            lambda e: sp.Symbol(e.func.__name__) * e.args[0],
        )
    return expr


def is_large(expr) -> bool:
    """True when exact evaluation could explode (huge numeric powers, towers, big factorials)."""
    sp = sympy_module()
    for node in sp.preorder_traversal(expr):
        if node.is_Pow:
            exp = node.args[1]
            if exp.is_Number and abs(exp) > 10_000:
                return True
            if not exp.is_Number and not exp.free_symbols and exp.has(sp.Pow):
                return True  # a power tower such as 10^{10^{10}}: only float evaluation is safe
        elif isinstance(node, (sp.factorial, sp.gamma, sp.binomial)):
            if any(a.is_Number and abs(a) > 1000 for a in node.args):
                return True
    return False


def evalf(expr, subs=None):
    """A 30-digit numeric value (sympy Float/complex) of ``expr``, or ``None`` if not a finite number."""
    sp = sympy_module()
    try:
        val = expr.evalf(30, subs=subs) if subs else expr.evalf(30)
    except (TypeError, ValueError, ArithmeticError, RecursionError, AttributeError):
        return None
    if not getattr(val, "is_number", False) or val.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    if val.free_symbols:
        return None
    return val


_ABS_NOISE = mpmath.mpf(10) ** -25


def close_rel_error(a, b) -> float:
    """Relative difference of two mpmath numbers (0 vs. a value below 1e-25 counts as equal)."""
    diff = abs(a - b)
    scale = max(abs(a), abs(b))
    if scale == 0 or (min(abs(a), abs(b)) == 0 and scale <= _ABS_NOISE):
        return 0.0  # exactly equal, or 0 against round-off such as sin(pi) = 1e-31
    return float(diff / scale)


def to_mpc(val) -> mpmath.mpc | mpmath.mpf:
    """A sympy number as an mpmath real (or complex, when it has an imaginary part), 30 digits."""
    sp = sympy_module()
    re_, im_ = val.as_real_imag()
    re_v = mpmath.mpf(sp.Float(re_, 30)._mpf_) if re_ != 0 else mpmath.mpf(0)
    im_v = mpmath.mpf(sp.Float(im_, 30)._mpf_) if im_ != 0 else mpmath.mpf(0)
    return mpmath.mpc(re_v, im_v) if im_v != 0 else re_v


def sympy_number(text: str, *, euler: bool = False):
    """The value of a constant LaTeX expression: ``Fraction`` if rational, else an mpmath number.

    With ``euler``, a free ``e`` is Euler's number (``e^{-1}`` = 0.3679...): for a numeric reference,
    where the answer cannot be an expression in a variable ``e``.

    Raises :class:`Unparseable` when it does not parse, ``NotANumber`` when it has free symbols.
    """
    expr = latex_to_sympy(text)
    if euler and expr.free_symbols == {sympy_module().Symbol("e")}:
        expr = expr.subs(sympy_module().Symbol("e"), sympy_module().E)
    if expr.free_symbols:
        raise NotANumber(", ".join(sorted(str(x) for x in expr.free_symbols)))
    if not is_large(expr):
        try:
            exact = expr.doit()
        except Exception:  # noqa: BLE001 - evaluation errors of odd input
            exact = None
        if exact is not None and exact.is_Rational:
            return Fraction(int(exact.p), int(exact.q))
    val = evalf(expr)
    if val is None:
        raise NotANumber("no finite value")
    with mpmath.workdps(30):
        return to_mpc(val)

