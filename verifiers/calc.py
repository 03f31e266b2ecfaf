r"""Tool functions for the agents: a safe calculator, a unit converter and an answer format check.

These are plain functions returning JSON-serialisable dicts; :mod:`scireflect.agents.tools` wraps
them as LangChain tools and runs each call in a killable worker
(:class:`~scireflect.verifiers.workers.SandboxedRunner`, wall-clock and memory limits).

Safety: model text is never evaluated. Plain expressions (``2*(3+4)^2``, ``sqrt(2)/2``,
``sin(pi/6)``) are read by the small recursive-descent parser :func:`parse_plain` below into sympy
objects built with ``evaluate=False`` (so ``10^(10^10)`` is not expanded at parse time); LaTeX
(``\frac{1}{2}``, ``\sqrt{2}``) goes through sympy's ANTLR LaTeX grammar, as in the answer checks.
Only whitelisted function names are callable; any other name becomes a ``Symbol``; there is no
attribute access, indexing, string literal or keyword. Huge powers and factorials are evaluated
numerically only (``is_large``). No ``eval``, ``exec``, ``sympify`` or ``parse_expr``.

Sources: sympy (https://docs.sympy.org), pint (https://pint.readthedocs.io).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

__all__ = ["MAX_EXPRESSION_CHARS", "calculate", "check_answer_format", "convert_units", "parse_plain"]

MAX_EXPRESSION_CHARS = 2000
"""Longer calculator inputs are refused without parsing."""

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z][A-Za-z0-9_]{0,15})|(?P<op>\*\*|[-+*/^(),!]))")
_FUNCS = {
    "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos", "atan": "atan", "arcsin": "asin",
    "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "exp": "exp", "log": "log",
    "ln": "log", "log10": "log10", "sqrt": "sqrt", "abs": "Abs", "factorial": "factorial", "gamma": "gamma",
    "floor": "floor", "ceil": "ceiling", "ceiling": "ceiling",
}


class CalcError(ValueError):
    """The expression is not one the calculator reads (the message says why)."""


def parse_plain(text: str):
    """Parse a plain-text arithmetic expression into an unevaluated sympy expression.

    Grammar: ``expr := term (("+"|"-") term)*``; ``term := unary (("*"|"/"|implicit) unary)*``;
    ``unary := ("+"|"-") unary | power``; ``power := postfix (("^"|"**") unary)?``;
    ``postfix := atom "!"*``; ``atom := number | name | func "(" expr ("," expr)* ")" | "(" expr ")"``.
    Names ``pi`` and ``e`` are the constants; other names are symbols.

    Raises:
        CalcError: unknown characters, unbalanced parentheses, a function name used as a value.
    """
    import sympy as sp

    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CalcError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    i = 0

    def peek():
        return tokens[i] if i < len(tokens) else ("end", "")

    def take(value=None):
        nonlocal i
        tok = peek()
        if value is not None and tok[1] != value:
            raise CalcError(f"expected {value!r}, found {tok[1] or 'the end'!r}")
        i += 1
        return tok

    def expr():
        left = term()
        while peek()[1] in ("+", "-"):
            op = take()[1]
            right = term()
            left = sp.Add(left, right if op == "+" else sp.Mul(-1, right, evaluate=False), evaluate=False)
        return left

    def term():
        left = unary()
        while True:
            kind, val = peek()
            if val in ("*", "/"):
                take()
                right = unary()
                left = sp.Mul(left, right if val == "*" else sp.Pow(right, -1, evaluate=False), evaluate=False)
            elif kind in ("num", "name") or val == "(":  # implicit product: 2x, 2(x+1)
                left = sp.Mul(left, unary(), evaluate=False)
            else:
                return left

    def unary():
        if peek()[1] in ("+", "-"):
            op = take()[1]
            inner = unary()
            return inner if op == "+" else sp.Mul(-1, inner, evaluate=False)
        return power()

    def power():
        base = postfix()
        if peek()[1] in ("^", "**"):
            take()
            return sp.Pow(base, unary(), evaluate=False)
        return base

    def postfix():
        node = atom()
        while peek()[1] == "!":
            take()
            node = sp.factorial(node, evaluate=False)
        return node

    def atom():
        kind, val = take()
        if kind == "num":
            return sp.Rational(str(Fraction(val))) if len(val) < 40 else sp.Float(val, 30)
        if kind == "name":
            if val in _FUNCS:
                take("(")
                args = [expr()]
                while peek()[1] == ",":
                    take()
                    args.append(expr())
                take(")")
                return getattr(sp, _FUNCS[val])(*args, evaluate=False)
            if val == "pi":
                return sp.pi
            if val == "e":
                return sp.E
            return sp.Symbol(val)
        if val == "(":
            inner = expr()
            take(")")
            return inner
        raise CalcError(f"unexpected {val or 'end of input'!r}")

    if not tokens:
        raise CalcError("empty expression")
    result = expr()
    if i != len(tokens):
        raise CalcError(f"unexpected {tokens[i][1]!r} after a complete expression")
    return result


def _parse(expression: str):
    from .answer.common import Unparseable
    from .answer.latex import latex_to_sympy

    if "\\" in expression or "{" in expression:
        try:
            return latex_to_sympy(expression), "latex"
        except Unparseable as exc:
            raise CalcError(f"not a LaTeX expression sympy's grammar reads ({exc})") from exc
    return parse_plain(expression), "plain"


def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic or symbolic expression (plain text or LaTeX) exactly and numerically.

    Args:
        expression: ``"2*(3+4)^2"``, ``"sqrt(2)/2"``, ``"\\frac{1}{3}+\\frac{1}{6}"``, ``"(x+1)^2 - x^2"``.

    Returns:
        ``{"expression", "parsed_as" ("plain"|"latex"), "result" (simplified exact form, a string),
        "value" (15 significant digits, when constant), "free_symbols"}``.

    Raises:
        CalcError: unreadable input or longer than ``MAX_EXPRESSION_CHARS``.
    """
    from .answer.latex import evalf, is_large, sympy_module

    if not isinstance(expression, str) or not expression.strip():
        raise CalcError("empty expression")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalcError(f"expression is {len(expression)} characters long (limit {MAX_EXPRESSION_CHARS})")
    sp = sympy_module()
    expr, how = _parse(expression)
    out: dict[str, Any] = {"expression": expression, "parsed_as": how, "free_symbols": sorted(str(s) for s in expr.free_symbols)}
    if is_large(expr):
        val = evalf(expr)
        out["result"] = str(expr)
        out["value"] = None if val is None else sp.N(val, 15).__str__()
        out["note"] = "too large to evaluate exactly; value is a 15-digit approximation"
        return out
    exact = expr.doit()
    if sp.count_ops(exact) <= 200:
        exact = sp.simplify(exact)
    out["result"] = str(exact)
    if not exact.free_symbols:
        val = evalf(exact)
        out["value"] = None if val is None else str(sp.N(val, 15))
    return out


def convert_units(value: str, from_unit: str, to_unit: str) -> dict[str, Any]:
    """Convert a number from one unit to another with pint (units in LaTeX or plain text).

    Args:
        value: the number (``"5.137e6"``, ``"5.137\\times10^{6}"``, ``"3/4"``).
        from_unit / to_unit: e.g. ``"Pa"``, ``"atm"``, ``"\\mathrm{kJ}\\,\\mathrm{mol}^{-1}"``, ``"m/s"``, ``"degC"``.

    Returns:
        ``{"value", "from_unit", "to_unit", "result" (10 significant digits), "dimension"}``.

    Raises:
        CalcError: the value is not a number or a unit is not known.
        DimensionMismatch: the units have different dimensions (message names both).
    """
    from .answer import parse_number
    from .units import conversion, parse_unit

    pn = parse_number(str(value))
    if pn is None or pn.unit:
        raise CalcError(f"{value!r} is not a plain number")
    got, want = parse_unit(from_unit), parse_unit(to_unit)
    for text, spec in ((from_unit, got), (to_unit, want)):
        if spec is None or not spec.physical:
            raise CalcError(f"{text!r} is not a unit pint knows")
    result = conversion(pn.value, got, want)
    return {"value": str(value), "from_unit": got.pretty, "to_unit": want.pretty, "result": f"{float(result):.10g}",
            "dimension": want.dimensionality}


def check_answer_format(answer: str, unit: str | None = None) -> dict[str, Any]:
    """Check how the verifier will read a final answer, WITHOUT any reference answer (a format check).

    Args:
        answer: a final answer (``"\\boxed{5.1\\ \\mathrm{m/s}}"``) or a whole solution text.
        unit: the unit the question asks for (optional), e.g. SciBench's ``unit`` field.

    Returns:
        ``{"extracted", "extraction_method", "kind" ("number"|"expression"|"unparseable"|"none"),
        "value", "unit", "dimension", "parsed", "unit_check"}``: ``unit_check`` is ``ok``,
        ``converted`` (same dimension, other unit), ``dimension mismatch: got ..., expected ...``,
        ``no unit given (read in the requested unit)`` or ``unknown unit``.
    """
    from .answer.common import NotANumber, Unparseable
    from .answer.numbers import fmt_short
    from .answer.numeric import candidate_value
    from .extract import extract_final_answer
    from .units import parse_unit

    if not isinstance(answer, str) or len(answer) > 20_000:
        return {"extracted": None, "kind": "none", "note": "no answer text, or longer than 20,000 characters"}
    text = answer if ("\\boxed" in answer or "\n" in answer or "answer" in answer.lower()) else f"\\boxed{{{answer}}}"
    ex = extract_final_answer(text)
    if ex is None:
        return {"extracted": None, "kind": "none", "note": "no final answer found"}
    out: dict[str, Any] = {"extracted": ex.text, "extraction_method": ex.method}
    try:
        val, _pn, c_unit = candidate_value(ex.text)
        out.update(kind="number", value=fmt_short(val), unit=c_unit)
    except NotANumber as exc:
        out.update(kind="expression", free_symbols=str(exc))
        c_unit = None
        try:
            out["parsed"] = str(_parse(ex.text)[0])
        except CalcError:
            pass
    except (Unparseable, CalcError):
        out.update(kind="unparseable")
        return out
    c_spec = parse_unit(c_unit) if c_unit else None
    if c_spec is not None and c_spec.physical:
        out["dimension"] = c_spec.dimensionality
    if unit:
        r_spec = parse_unit(unit)
        if r_spec is None or not r_spec.physical:
            out["unit_check"] = "the requested unit is not one pint knows"
        elif c_unit is None:
            out["unit_check"] = "no unit given (read in the requested unit)"
        elif c_spec is None or not c_spec.physical:
            out["unit_check"] = "unknown unit"
        elif c_spec.unit.dimensionality != r_spec.unit.dimensionality:
            out["unit_check"] = (f"dimension mismatch: got {c_spec.pretty} ({c_spec.dimensionality}), "
                                 f"expected {r_spec.pretty} ({r_spec.dimensionality})")
        else:
            out["unit_check"] = "ok" if c_spec.unit == r_spec.unit and c_spec.scale == r_spec.scale else "converted"
    return out
