r"""String normalisation of answers and bracket-aware scanning (no parsing, no sympy).

:func:`normalize_latex` gives the canonical string form used for a cheap first equality test
(the idea of Hendrycks et al. 2021, MATH ``_strip_string``); :func:`light_normalize` keeps single
spaces so its output can still be fed to the LaTeX parser. The scanners split on commas outside
brackets and find matching brackets; all run in linear time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from ..extract import strip_answer_delimiters
from ..symbols import canonical_symbols

WRAPPER_CMDS = ("text", "textbf", "textit", "textrm", "mathrm", "mathbf", "mathit", "mbox", "boldsymbol", "textnormal")
"""LaTeX commands whose argument is the answer itself (``\\text{(B)}`` is ``(B)``)."""


def replace_command(s: str, names: Sequence[str], repl: Callable[[str, str], str]) -> str:
    r"""Replace every ``\name{arg}`` (nested braces matched) by ``repl(name, arg)``."""
    pat = re.compile(r"\\(" + "|".join(map(re.escape, names)) + r")\s*\{")
    out = []
    pos = 0
    while True:
        m = pat.search(s, pos)
        if not m:
            out.append(s[pos:])
            return "".join(out)
        depth, i = 1, m.end()
        while i < len(s) and depth:
            if s[i] == "\\":
                i += 2
                continue
            if s[i] == "{":
                depth += 1
            elif s[i] == "}":
                depth -= 1
            i += 1
        if depth:  # unbalanced: leave the rest alone
            out.append(s[pos:])
            return "".join(out)
        out.append(s[pos : m.start()])
        out.append(repl(m.group(1), s[m.end() : i - 1]))
        pos = i


def unwrap_text(s: str) -> str:
    r"""``\text{(B)}`` -> ``(B)`` for every wrapper command (``\text``, ``\mathrm``, ``\textbf``, ...)."""
    for _ in range(3):  # nested wrappers
        new = replace_command(s, WRAPPER_CMDS, lambda _n, a: a)
        if new == s:
            break
        s = new
    return s


def fix_shorthand(s: str) -> str:
    r"""``\frac34`` -> ``\frac{3}{4}``, ``\frac3{x}`` -> ``\frac{3}{x}``, ``\sqrt3`` -> ``\sqrt{3}``."""
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*([a-zA-Z])\s*([a-zA-Z\d])", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d|[a-zA-Z](?![a-zA-Z]))", r"\\sqrt{\1}", s)  # one token, as in TeX
    return s


def light_normalize(s: str) -> str:
    r"""Normalisation that keeps single spaces (safe to feed to the LaTeX parser).

    Strips delimiters, ``\left``/``\right``, ``\!``/``\,``/``\;``/``~`` spacing, ``\displaystyle``,
    degree marks (``^\circ``, ``°``), ``\$``; maps ``\dfrac``/``\tfrac``/``\cfrac`` to ``\frac``,
    Unicode symbols to one spelling (:func:`~scireflect.verifiers.symbols.canonical_symbols`); fixes ``\frac34`` and ``\sqrt3`` shorthands.
    """
    s = canonical_symbols(strip_answer_delimiters(s))
    s = s.replace("\\right.", "").replace("\\left.", "")
    s = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\(?:displaystyle|textstyle|quad|qquad)(?![a-zA-Z])", " ", s)
    s = s.replace("\\!", "").replace("{,}", ",")
    s = re.sub(r"\\[,;: ]|~", " ", s)
    s = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\u00b0|\\degree", "", s)
    s = s.replace("\\$", "").replace("$", "")
    s = fix_shorthand(s)
    s = re.sub(r"\s+", " ", s).strip()
    while len(s) >= 2 and s[0] == "{" and _closing_brace(s) == len(s) - 1:  # {a, b}: invisible TeX grouping
        s = s[1:-1].strip()
    return strip_answer_delimiters(s)


def _closing_brace(s: str) -> int | None:
    depth = 0
    for i, ch in enumerate(s):
        if ch == "{" and (i == 0 or s[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or s[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return i
    return None


def normalize_latex(s: str) -> str:
    r"""Canonical string form of an answer for a cheap first equality test.

    Args:
        s: an answer in LaTeX or plain text, e.g. ``\left( \dfrac{1}{4}, -2 \right)``.

    Returns:
        The string with delimiters, ``\left``/``\right``, ``\!``, all whitespace, ``\text{}``-like
        wrappers, ``^\circ`` and ``\$`` removed and ``\dfrac``->``\frac``, e.g. ``(\frac{1}{4},-2)``.
        Two answers with equal normal forms are equal; unequal forms prove nothing.

    Source: the string normalisation of Hendrycks et al. (2021) MATH ``_strip_string``.
    """
    s = light_normalize(unwrap_text(s))
    return re.sub(r"\s+", "", s)


def split_top(s: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets/braces (``[0,7)``-style half-open intervals are fine)."""
    out, depth, cur, i = [], 0, [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            if s[i + 1] in "{}":
                depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [x.strip() for x in out]


def _bracket_depths(s: str, start: int = 0) -> Iterator[tuple[int, int]]:
    """``(index, depth after it)`` for every bracket of ``s`` from ``start`` on; escaped characters are skipped."""
    depth = 0
    i = start
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "([{":
            depth += 1
            yield i, depth
        elif ch in ")]}":
            depth -= 1
            yield i, depth
        i += 1


def closing_index(s: str, open_idx: int) -> int | None:
    """Index of the bracket closing the one at ``open_idx`` (any of ``([{``; types may differ), or ``None``."""
    for i, depth in _bracket_depths(s, open_idx):
        if depth == 0 and s[i] in ")]}":
            return i
    return None


def balanced(s: str) -> bool:
    """Whether every bracket of ``s`` is closed and none closes early (escaped ones are skipped)."""
    depth = 0
    for _, depth in _bracket_depths(s):
        if depth < 0:
            return False
    return depth == 0
