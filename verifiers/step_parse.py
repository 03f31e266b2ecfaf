r"""Read one member of a calculation chain (tokens from :mod:`.step_claims`) into an expression tree,
and a written result with its precision. The computing half is :mod:`.step_arith`.

:func:`parse_member` builds a small expression tree by recursive descent; :func:`parse_value` reads a
written result (``24``, ``$1,200``, ``2.5 \times 10^{3} \text{ J}``, ``33.3\%``, ``\frac{3}{4}``)
with its precision (one unit in its last written place).

Grammar (LaTeX and plain text alike)::

    expr    := term (("+" | "-") term)*
    term    := factor (("*" | "/") factor | implicit factor)*     # 2\sqrt{3}, 3(4), 2\pi
    factor  := ("+" | "-") factor | power
    power   := postfix ("^" exponent)? ("^\circ")? unit*          # unit: \mathrm{m}, "miles", "/hour"
    postfix := atom ("!" | "%")*
    atom    := number | "(" expr ")" | "{" expr "}" | \frac G G | \sqrt[n] G | \binom G G
             | func ("_" G)? arg | \pi | e | symbol

Readings that a text leaves open are *ambiguities* recorded on the tree (``trig``: radians or
degrees; ``log``: base e, 10 or 2; ``pct``: ``20%`` as 0.2 or 20; ``mixed``: ``2\frac{1}{2}`` as 2.5
or 1; ``star``: ``*`` inside LaTeX may be an operation the problem defined); :func:`.step_arith.evaluate`
takes a choice for each.

Safety: string and token work only, no ``eval``, no sympy parsing; nesting deeper than
``MAX_DEPTH`` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .step_claims import Token

__all__ = ["MAX_DEPTH", "Member", "Refused", "UnknownUnit", "Written", "parse_member", "parse_value"]

MAX_DEPTH = 60
"""Deeper nesting is refused (recursion stays far below Python's limit)."""


class Refused(ValueError):
    """The member is not one the checker evaluates; the message says why (``unknown symbol x``)."""


class UnknownUnit(Refused):
    """A unit (or label such as ``apples``) that pint does not know."""


@dataclass
class Member:
    r"""A parsed chain member.

    Attributes:
        kind: ``expr`` (evaluable, with at least one operation), ``value`` (a bare number),
            ``sym`` (has unknown symbols), ``name`` (no number at all: ``x``, ``\Delta H``),
            ``bad`` (not readable; ``why`` says why), ``empty``.
        tree: the expression tree (``expr``/``value``/``sym``).
        text: the member as written (source slice).
        why: for ``sym``/``bad``.
        features: the ambiguities met while parsing (``trig``, ``log``, ``pct``, ``mixed``, ``star``).
        decimals: whether it has decimal literals (measured values).
    """

    kind: str
    tree: Any = None
    text: str = ""
    why: str | None = None
    features: set[str] = field(default_factory=set)
    units: bool = False


@dataclass(frozen=True)
class Written:
    """A written result: ``value`` exactly, ``ulp`` one unit in its last written place (0 for exact
    fractions), ``integer`` (written without a decimal point or exponent), ``percent``, ``unit``
    text (or ``None``), ``text`` as written, ``start`` its offset in the solution, ``trailing_zeros``
    of an integer (``17000`` -> 3)."""

    value: Fraction
    ulp: Fraction
    integer: bool
    percent: bool
    unit: str | None
    text: str
    start: int
    trailing_zeros: int = 0


def _num_value(tok: Token) -> tuple[Fraction, Fraction, bool, int]:
    """(value, ulp, integer literal, trailing zeros) of a ``num``/``mixed``/``ufrac`` token."""
    t = tok.text
    if tok.kind == "ufrac":
        return {"½": Fraction(1, 2), "¼": Fraction(1, 4), "¾": Fraction(3, 4), "⅓": Fraction(1, 3), "⅔": Fraction(2, 3)}[t], Fraction(0), False, 0
    if tok.kind == "mixed":
        whole, frac = t.split(" ")
        a, b = frac.split("/")
        return int(whole) + Fraction(int(a), int(b)), Fraction(0), False, 0
    t = t.replace("{,}", "").replace("\\,", "").replace(",", "").replace(" ", "").replace("...", "").replace("…", "")
    exp = 0
    if "e" in t or "E" in t:
        t, e = t.replace("E", "e").split("e")
        exp = int(e)
        if abs(exp) > 400:
            raise Refused("exponent too large")
    decimals = len(t.split(".", 1)[1]) if "." in t else 0
    value = Fraction(t) * Fraction(10) ** exp
    integer = "." not in t and exp == 0
    tz = len(t) - len(t.rstrip("0")) if integer and t.strip("0") else 0
    return value, Fraction(10) ** (exp - decimals), integer, tz


class _Parser:
    def __init__(self, toks: list[Token], source: str):
        self.toks = [t for t in toks if t.kind not in ("cur", "skipword", "dnl", "amp")]
        self.src = source
        self.i = 0
        self.depth = 0
        self.features: set[str] = set()
        self.syms: list[str] = []
        self.ops = 0
        self.units = False

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise Refused("expression ends early")
        self.i += 1
        return t

    def is_op(self, *ops: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "op" and t.text in ops

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Refused("nested too deeply")

    def expr(self):
        self.enter()
        left = self.term()
        while self.is_op("+", "-"):
            op = self.take().text
            right = self.term()
            self.ops += 1
            left = ("+", left, right if op == "+" else ("neg", right))
        self.depth -= 1
        return left

    def term(self):
        left = self.implicit()
        while True:
            t = self.peek()
            if t is None:
                return left
            if t.kind == "op" and t.text == "/" and self._tight_fraction_follows(t):
                self.take()  # "25 / 1/3 = 75": the writer may mean 25 / (1/3)
                a, _slash, b = self.take(), self.take(), self.take()
                self.features.add("slash")
                self.ops += 1
                left = self.units_after(("slash", left, ("n", _num_value(a)[0]), ("n", _num_value(b)[0])))
            elif t.kind == "op" and t.text in ("*", "/", "ast"):
                self.take()
                if t.text == "ast" or (t.math and self.src[t.start:t.end] == "*"):
                    self.features.add("star")
                if self.is_op("+", "*", "/"):
                    raise Refused("two operators in a row")
                right = self.implicit()
                self.ops += 1
                left = ("/", left, right) if t.text == "/" else ("*", left, right, False)
            else:
                return left

    def implicit(self):
        """Juxtaposed factors (``2\\sqrt{3}``, ``3(4)``, ``6\\pi``) bind tighter than ``*`` and ``/``:
        ``19404\\pi \\div 6\\pi`` is 19404 pi / (6 pi)."""
        left = self.factor()
        while True:
            t = self.peek()
            if t is None:
                return left
            if t.kind in ("lp", "frac", "sqrt", "const", "func", "sym", "binom", "lb") or (
                t.kind == "num" and self.peek(-1) is not None and self.peek(-1).kind in ("rp", "rb") and not t.space and t.math
            ):
                if (t.kind == "lb" and not t.math) or (t.kind == "lp" and t.space and not t.math):
                    return left  # "5 cents (.05) x 100": a remark in parentheses, not a product
                self.ops += 1
                left = ("*", left, self.factor(), False)
            else:
                return left

    def _tight_fraction_follows(self, slash: Token) -> bool:
        a, s2, b, after = self.peek(1), self.peek(2), self.peek(3), self.peek(4)
        return (not slash.math and a is not None and s2 is not None and b is not None and a.kind == "num" and b.kind == "num"
                and s2.kind == "op" and s2.text == "/" and not s2.space and not b.space
                and (a.space or slash.space) and "." not in a.text + b.text
                and (after is None or not (after.kind == "op" and after.text == "^")))

    def factor(self):
        if self.is_op("+", "-"):
            op = self.take().text
            self.enter()
            inner = self.factor()
            self.depth -= 1
            return inner if op == "+" else ("neg", inner)
        return self.power()

    def power(self):
        base = self.postfix()
        t = self.peek()
        if t is not None and t.kind == "sup":
            self.take()
            self.ops += 1
            base = ("^", base, ("n", Fraction(2 if t.text == "²" else 3)))
        elif self.is_op("^"):
            self.take()
            self.ops += 1
            base = ("^", base, self.exponent())
        if self.peek() is not None and self.peek().kind == "deg":
            self.take()
            base = ("deg", base)
        return self.units_after(base)

    def exponent(self):
        t = self.peek()
        if t is None:
            raise Refused("power without exponent")
        if t.kind == "lb":
            return self.group()
        if t.math and t.kind == "num" and len(t.text) > 1:
            raise Refused(f"ambiguous exponent ^{t.text}")
        if t.math:
            return self.atom()
        self.enter()
        e = self.factor()
        self.depth -= 1
        return e

    def units_after(self, node):
        start = end = None
        while True:
            t = self.peek()
            if t is None:
                break
            if t.kind == "label":
                self.take()
                start = t.start if start is None else start
                end = t.end
                if self.is_op("^"):
                    nxt = self.peek(1)
                    if nxt is not None and nxt.kind in ("num", "lb", "op"):
                        self.take()
                        e = self.exponent()
                        end = self.toks[self.i - 1].end
                        del e
                continue
            if t.kind == "op" and t.text == "/" and start is not None:
                nxt = self.peek(1)
                if nxt is not None and nxt.kind == "label":
                    self.take()
                    continue
            if t.kind == "deg" and start is not None:
                self.take()
                end = t.end
                continue
            break
        if start is None:
            return node
        self.units = True
        return ("u", node, self.src[start:end])

    def postfix(self):
        node = self.atom()
        while True:
            if self.is_op("!"):
                self.take()
                self.ops += 1
                node = ("!", node)
            elif self.is_op("%"):
                self.take()
                self.features.add("pct")
                node = ("%", node)
            else:
                return node

    def group(self):
        t = self.take()
        if t.kind == "lb":
            inner = self.expr()
            if self.take().kind != "rb":
                raise Refused("unbalanced braces")
            return inner
        if t.kind == "num" and len(t.text) == 1:
            return ("n", Fraction(int(t.text)))
        if t.kind in ("sym", "const"):
            self.i -= 1
            return self.atom()
        raise Refused(f"unexpected {t.text!r}")

    def atom(self):
        t = self.take()
        k = t.kind
        if k in ("num", "mixed", "ufrac"):
            value = _num_value(t)[0]
            nxt = self.peek()
            if k == "num" and t.math and nxt is not None and nxt.kind == "frac" and not nxt.space:
                save = self.i
                self.take()
                frac = self.frac_args()
                if frac[1][0] == "n" and frac[2][0] == "n" and frac[1][1] < frac[2][1]:
                    self.features.add("mixed")
                    return ("mixed", ("n", value), frac)
                self.i = save
            return ("n", value)
        if k == "lp":
            self.enter()
            inner = self.expr()
            self.depth -= 1
            if self.take().kind != "rp":
                raise Refused("unbalanced parentheses")
            return inner
        if k == "lb":
            self.i -= 1
            return self.group()
        if k == "frac":
            self.ops += 1
            return self.frac_args()
        if k == "sqrt":
            self.ops += 1
            index = None
            if self.peek() is not None and self.peek().kind == "lp" and self.peek().text == "[":
                self.take()
                index = self.expr()
                if self.take().kind != "rp":
                    raise Refused("unbalanced root index")
            arg = self.group() if self.peek() is not None and self.peek().kind == "lb" or t.text != "√" else self.postfix()
            return ("sqrt", arg, index)
        if k == "binom":
            self.ops += 1
            return ("binom", self.group(), self.group())
        if k == "const":
            self.ops += 1  # pi and e are computed values: "\pi \approx 3.14" is a claim
            return ("c", t.text)
        if k == "func":
            self.ops += 1
            base = None
            if self.peek() is not None and self.peek().kind == "sub":
                self.take()
                base = self.group()
            if self.is_op("^"):
                raise Refused(f"power of \\{t.text}")
            if t.text in ("log",) and base is None:
                self.features.add("log")
            if t.text in ("sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan"):
                self.features.add("trig")
            self.enter()
            arg = self.power()
            self.depth -= 1
            return ("fn", t.text, arg, base)
        if k == "sym":
            if t.text == "e" and self.is_op("^"):
                return ("c", "e")
            if self.peek() is not None and self.peek().kind == "lp" and not self.peek().space:
                raise Refused(f"unknown function {t.text}")
            self.syms.append(t.text)
            return ("sym", t.text)
        if k == "unk":
            raise Refused(f"unknown command {t.text}")
        if k == "bar":
            raise Refused("absolute value or norm bars")
        if k == "sub":
            raise Refused("subscript (a base or an index)")
        if k == "poison":
            raise Refused("modular arithmetic")
        if k == "label":
            raise Refused(f"a unit without a number: {t.text}")
        raise Refused(f"unexpected {t.text!r}")

    def frac_args(self):
        t = self.peek()
        if t is not None and t.kind == "num" and len(t.text) == 2 and t.text.isdigit():  # \frac12
            self.take()
            return ("/", ("n", Fraction(int(t.text[0]))), ("n", Fraction(int(t.text[1]))))
        return ("/", self.group(), self.group())


def parse_member(toks: list[Token], source: str) -> Member:
    """Parse a chain member. Never raises; ``Member.kind`` says what it is."""
    if not toks:
        return Member("empty")
    lead = next((t for t in toks if t.kind not in ("cur", "skipword", "amp", "dnl")), toks[0])
    text = source[lead.start : toks[-1].end]
    if not any(t.kind in ("num", "mixed", "ufrac", "const", "frac") for t in toks):
        return Member("name", text=text)
    p = _Parser(toks, source)
    try:
        tree = p.expr()
        if p.i != len(p.toks):
            raise Refused(f"unexpected {p.toks[p.i].text!r} after the expression")
    except Refused as exc:
        return Member("bad", text=text, why=str(exc))
    except (RecursionError, ValueError, ZeroDivisionError, KeyError, IndexError) as exc:
        return Member("bad", text=text, why=type(exc).__name__)
    if p.syms:
        return Member("sym", tree, text, f"unknown symbol {p.syms[0]}", p.features, p.units)
    return Member("expr" if p.ops else "value", tree, text, None, p.features, p.units)


def parse_value(toks: list[Token], source: str) -> Written | None:
    r"""A written result, or ``None`` when the member is more than one number (an expression).

    Reads ``[sign] number [\times 10^{n}] [%] [unit...]`` and single fractions of integers
    (``\frac{3}{4}``, ``3/4``; exact, ``ulp`` 0). Braces around it (``\boxed{17}``) are dropped.
    """
    ts = [t for t in toks if t.kind not in ("cur", "skipword", "dnl", "amp")]
    while len(ts) >= 2 and ts[0].kind == "lb" and ts[-1].kind == "rb":
        ts = ts[1:-1]
    if not ts:
        return None
    i, neg = 0, False
    if ts[0].kind == "op" and ts[0].text in ("-", "+"):
        neg, i = ts[0].text == "-", 1
        while i < len(ts) and ts[i].kind == "cur":
            i += 1
    if i >= len(ts):
        return None
    t = ts[i]
    start = ts[0].start
    tz = 0
    if t.kind in ("num", "mixed", "ufrac"):
        value, ulp, integer, tz = _num_value(t)
        i += 1
        if (t.kind == "num" and i + 1 < len(ts) and ts[i].kind == "op" and ts[i].text == "/" and ts[i + 1].kind == "num" and integer
                and source[ts[i].start:ts[i].end] == "/" and not ts[i].space and not ts[i + 1].space):
            v2, _u, int2, _tz = _num_value(ts[i + 1])
            if not int2 or v2 == 0:
                return None
            value, ulp, integer, i = value / v2, Fraction(0), False, i + 2
        elif (i + 2 < len(ts) and ts[i].kind == "op" and ts[i].text == "*" and ts[i + 1].kind == "num" and ts[i + 1].text == "10"
              and i + 2 < len(ts) and ts[i + 2].kind == "op" and ts[i + 2].text == "^"):
            j = i + 3
            sign = 1
            if j < len(ts) and ts[j].kind == "lb":
                j += 1
                if j < len(ts) and ts[j].kind == "op" and ts[j].text in ("-", "+"):
                    sign, j = (-1 if ts[j].text == "-" else 1), j + 1
                if j + 1 < len(ts) and ts[j].kind == "num" and ts[j].text.isdigit() and ts[j + 1].kind == "rb":
                    e = sign * int(ts[j].text)
                    j += 2
                else:
                    return None
            elif j < len(ts) and ts[j].kind == "num" and ts[j].text.isdigit() and (len(ts[j].text) == 1 or not ts[j].math):
                e, j = int(ts[j].text), j + 1
            elif j + 1 < len(ts) and ts[j].kind == "op" and ts[j].text == "-" and ts[j + 1].kind == "num" and ts[j + 1].text.isdigit():
                e, j = -int(ts[j + 1].text), j + 2
            else:
                return None
            if abs(e) > 400:
                return None
            value, ulp, integer, tz, i = value * Fraction(10) ** e, ulp * Fraction(10) ** e, False, 0, j
    elif t.kind == "frac":
        i += 1
        nums = []
        for _ in range(2):
            if i + 2 < len(ts) and ts[i].kind == "lb" and ts[i + 1].kind == "num" and ts[i + 2].kind == "rb":
                nums.append(_num_value(ts[i + 1]))
                i += 3
            elif i < len(ts) and ts[i].kind == "num" and len(ts[i].text) == 2 and not nums:
                nums = [(Fraction(int(ts[i].text[0])), 0, True, 0), (Fraction(int(ts[i].text[1])), 0, True, 0)]
                i += 1
                break
            else:
                return None
        if not (nums[0][2] and nums[1][2]) or nums[1][0] == 0:
            return None
        value, ulp, integer = nums[0][0] / nums[1][0], Fraction(0), False
    else:
        return None
    percent = False
    if i < len(ts) and ts[i].kind == "op" and ts[i].text == "%":
        percent, i = True, i + 1
    unit_start = ts[i].start if i < len(ts) else None
    while i < len(ts):
        u = ts[i]
        if u.kind in ("label", "deg") or (u.kind == "op" and u.text == "/" and i + 1 < len(ts) and ts[i + 1].kind == "label"):
            i += 1
        elif u.kind == "op" and u.text == "^" and unit_start is not None and i > 0 and ts[i - 1].kind == "label":
            i += 1
            if i < len(ts) and ts[i].kind == "lb":
                while i < len(ts) and ts[i].kind != "rb":
                    i += 1
                i += 1
            elif i < len(ts) and ts[i].kind == "op" and ts[i].text == "-":
                i += 2
            else:
                i += 1
        else:
            return None
    unit = source[unit_start : ts[-1].end].strip() if unit_start is not None else None
    return Written(-value if neg else value, ulp, integer, percent, unit or None, source[start : ts[-1].end], start, tz)
