r"""Compute a parsed member of a calculation chain (:mod:`.step_parse`): exactly where it can, else to 30 digits.

:func:`evaluate` computes the tree exactly with :class:`~fractions.Fraction` where the operations are
rational (``+ - * /``, integer powers, factorials, binomials) and to 30 digits with mpmath (sympy's
numeric engine) otherwise (``\sqrt``, ``\pi``, ``e``, logarithms, trigonometry, fractional powers),
taking one choice for each ambiguity the parser recorded. :func:`evaluate_units` computes the same
tree with pint quantities when every operand's unit is one pint knows
(:func:`scireflect.verifiers.units.parse_unit`).

Safety and cost: exponents beyond ``MAX_EXPONENT`` or exact results beyond ``MAX_BITS`` bits are
refused or computed as floats, factorials beyond 2000 refused.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath

from .step_parse import Refused, UnknownUnit

__all__ = ["MAX_BITS", "MAX_EXPONENT", "evaluate", "evaluate_units", "unit_quantity"]

MAX_EXPONENT = 100_000
"""A power whose exponent is larger than this in size is refused (``9^{9^{9^9}}``)."""
MAX_BITS = 20_000
"""Exact rational results larger than this many bits continue as 30-digit floats."""
_DPS = 30


_TRIG = {"sin": mpmath.sin, "cos": mpmath.cos, "tan": mpmath.tan, "cot": mpmath.cot, "sec": mpmath.sec, "csc": mpmath.csc,
         "arcsin": mpmath.asin, "arccos": mpmath.acos, "arctan": mpmath.atan, "sinh": mpmath.sinh, "cosh": mpmath.cosh,
         "tanh": mpmath.tanh, "exp": mpmath.exp}


def _mp(v) -> mpmath.mpf:
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    return v


def _check_size(v):
    if isinstance(v, Fraction) and (v.numerator.bit_length() > MAX_BITS or v.denominator.bit_length() > MAX_BITS):
        return _mp(v)
    if not isinstance(v, Fraction) and not mpmath.isfinite(v):
        raise Refused("not a finite number")
    return v


def evaluate(tree, choice: dict[str, str] | None = None):
    """The value of a tree: a ``Fraction`` when exact, else an ``mpmath.mpf`` (30 digits).

    Args:
        tree: from :func:`parse_member`.
        choice: readings of the ambiguities (``{"trig": "deg", "log": "10", "pct": "plain",
            "mixed": "product"}``); the defaults are radians, natural log, ``20% = 0.2``, mixed numbers.

    Raises:
        Refused: unknown symbols, division by zero, huge powers/factorials, complex results.
    """
    with mpmath.workdps(_DPS):
        return _ev(tree, choice or {})


def _ev(n, ch):
    op = n[0]
    if op == "n":
        return n[1]
    if op == "c":
        return +mpmath.pi if n[1] == "pi" else mpmath.e
    if op == "sym":
        raise Refused(f"unknown symbol {n[1]}")
    if op == "+":
        return _check_size(_add(_ev(n[1], ch), _ev(n[2], ch)))
    if op == "neg":
        return -_ev(n[1], ch)
    if op == "*":
        a, b = _ev(n[1], ch), _ev(n[2], ch)
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            return _check_size(a * b)
        return _mp(a) * _mp(b)
    if op == "/":
        a, b = _ev(n[1], ch), _ev(n[2], ch)
        if b == 0:
            raise Refused("division by zero")
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            return _check_size(a / b)
        return _mp(a) / _mp(b)
    if op == "^":
        return _pow(_ev(n[1], ch), _ev(n[2], ch))
    if op == "%":
        v = _ev(n[1], ch)
        return v if ch.get("pct") == "plain" else v / 100
    if op == "!":
        v = _ev(n[1], ch)
        if not (isinstance(v, Fraction) and v.denominator == 1 and 0 <= v <= 2000):
            raise Refused("factorial of a non-integer or of a number above 2000")
        return Fraction(math.factorial(int(v)))
    if op == "binom":
        a, b = _ev(n[1], ch), _ev(n[2], ch)
        if not all(isinstance(v, Fraction) and v.denominator == 1 and 0 <= v <= 10_000 for v in (a, b)):
            raise Refused("binomial of non-integers or of numbers above 10000")
        return Fraction(math.comb(int(a), int(b)))
    if op == "mixed":
        whole, frac = _ev(n[1], ch), _ev(n[2], ch)
        return whole * frac if ch.get("mixed") == "product" else whole + frac
    if op == "sqrt":
        v = _ev(n[1], ch)
        if n[2] is None:
            return _pow(v, Fraction(1, 2))
        idx = _ev(n[2], ch)
        if idx == 0:
            raise Refused("root of index 0")
        return _pow(v, 1 / idx if isinstance(idx, Fraction) else 1 / _mp(idx))
    if op == "deg":
        return _ev(n[1], ch)
    if op == "slash":
        a, b, c = _ev(n[1], ch), n[2][1], n[3][1]
        if b == 0 or c == 0:
            raise Refused("division by zero")
        d = b / c if ch.get("slash") == "group" else b * c
        return a / d if isinstance(a, Fraction) else _mp(a) / _mp(d)
    if op == "u":
        return _ev(n[1], ch)
    if op == "fn":
        return _fn(n, ch)
    raise Refused(f"cannot evaluate {op}")  # pragma: no cover


def _add(a, b):
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        return a + b
    return _mp(a) + _mp(b)


def _pow(a, b):
    if isinstance(b, Fraction) and b.denominator == 1:
        e = b.numerator
        if abs(e) > MAX_EXPONENT:
            raise Refused("exponent too large")
        if isinstance(a, Fraction):
            if a == 0 and e < 0:
                raise Refused("division by zero")
            bits = max(a.numerator.bit_length(), a.denominator.bit_length())
            if bits * abs(e) <= MAX_BITS:
                return a**e
            return _mp(a) ** e
        return a**e
    if isinstance(b, Fraction) and isinstance(a, Fraction) and a >= 0 and b.denominator <= 10:  # exact roots: 8^(1/3) = 2
        root = _int_root(a.numerator, b.denominator), _int_root(a.denominator, b.denominator)
        if root[0] is not None and root[1] is not None:
            return _pow(Fraction(root[0], root[1]), Fraction(b.numerator))
    bf, af = _mp(b), _mp(a)
    if abs(bf) > MAX_EXPONENT:
        raise Refused("exponent too large")
    if af < 0:
        raise Refused("fractional power of a negative number")
    if af == 0 and bf < 0:
        raise Refused("division by zero")
    return _check_size(af**bf)


def _int_root(n: int, k: int) -> int | None:
    if n.bit_length() > 4000:
        return None
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else None
    if r is None:
        return None
    for c in (r - 1, r, r + 1):
        if c >= 0 and c**k == n:
            return c
    return None


def _fn(n, ch):
    _op, name, arg, base = n
    has_deg = arg[0] == "deg"
    v = _mp(_ev(arg, ch))
    if name in ("ln", "log", "lg"):
        if v <= 0:
            raise Refused("logarithm of a non-positive number")
        if base is not None:
            b = _mp(_ev(base, ch))
            if b <= 0 or b == 1:
                raise Refused("bad logarithm base")
            return mpmath.log(v) / mpmath.log(b)
        if name == "lg":
            return mpmath.log10(v)
        if name == "log":
            return {"10": mpmath.log10(v), "2": mpmath.log(v, 2)}.get(ch.get("log", "e"), mpmath.log(v))
        return mpmath.log(v)
    if name in ("sin", "cos", "tan", "cot", "sec", "csc") and (has_deg or ch.get("trig") == "deg"):
        v = v * mpmath.pi / 180
    if name == "exp" and abs(v) > 10**6:
        raise Refused("exponent too large")
    try:
        out = _TRIG[name](v)
    except (ValueError, ZeroDivisionError) as exc:
        raise Refused(f"{name} undefined here") from exc
    if isinstance(out, mpmath.mpc):
        raise Refused("complex value")
    if name in ("arcsin", "arccos", "arctan") and ch.get("trig") == "deg":
        out = out * 180 / mpmath.pi
    return out


def evaluate_units(tree, choice: dict[str, str] | None = None):
    """The value of a tree as a pint ``Quantity`` (float magnitude), every unit read by
    :func:`~scireflect.verifiers.units.parse_unit`.

    Raises:
        Refused: a unit pint does not know, or an operation pint refuses (adding metres to
            seconds); any other failure of :func:`evaluate`.
    """
    from .units import get_registry

    ureg = get_registry()
    try:
        with mpmath.workdps(_DPS):
            return _evu(tree, choice or {}, ureg)
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - pint's DimensionalityError, OffsetUnitCalculusError...
        raise Refused(f"units: {type(exc).__name__}") from exc


def unit_quantity(text: str):
    """A pint ``Quantity`` of 1 in the unit ``text`` (scale included). Raises :class:`Refused`."""
    from .units import get_registry, parse_unit

    import re

    text = re.sub(r"\b(square|sq\.?|cubic|cu\.?)\s+([A-Za-z]+)", lambda m: m.group(2) + ("^2" if m.group(1)[0] == "s" else "^3"), text)
    spec = parse_unit(text)
    if spec is None or not spec.physical:
        raise UnknownUnit(f"unit {text!r} not known")
    return get_registry().Quantity(float(spec.scale), spec.unit)


def _evu(n, ch, ureg):
    op = n[0]
    if op == "u":
        return _evu(n[1], ch, ureg) * unit_quantity(n[2])
    if op == "+":
        return _evu(n[1], ch, ureg) + _evu(n[2], ch, ureg)
    if op == "neg":
        return -_evu(n[1], ch, ureg)
    if op == "*":
        return _evu(n[1], ch, ureg) * _evu(n[2], ch, ureg)
    if op == "/":
        return _evu(n[1], ch, ureg) / _evu(n[2], ch, ureg)
    if op == "slash":
        frac = float(n[2][1] / n[3][1]) if ch.get("slash") == "group" else float(n[2][1] * n[3][1])
        return _evu(n[1], ch, ureg) / frac
    if op == "^":
        base = _evu(n[1], ch, ureg)
        e = float(_mp(evaluate(n[2], ch)))
        if abs(e) > 50 and hasattr(base, "units") and not base.dimensionless:
            raise Refused("unit power too large")
        return base**e
    if op == "sqrt" and n[2] is None:
        return _evu(n[1], ch, ureg) ** 0.5
    return ureg.Quantity(float(_mp(evaluate(n, ch))))
