r"""Find the calculation claims of a solution: ``expression = value`` chains in plain text and LaTeX.

This is the extraction half of the step checker (:mod:`scireflect.verifiers.steps` evaluates). A
solution is cut into tokens once (:func:`tokenize`: numbers, operators, LaTeX commands, words,
relations, line breaks), then into *runs*: maximal stretches of tokens that can belong to one
calculation, broken by sentence punctuation, line ends, comparison signs and words that are not the
label of a number. A run with ``=``/``\approx``/``≈`` in it is a :class:`Chain` of members
(``48/2 = 24 clips`` has the members ``48/2`` and ``24 clips``).

Text conventions it knows, from the data it is measured on:

- GSM8K reference solutions (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems"):
  plain text, ``$`` as currency, ``x`` as a times sign (``0.2 x 50 = $10``), labels after numbers
  (``16 giraffes * $150/giraffe = $2400``), thousands commas (``$1,200``).
- MATH and SciBench (Hendrycks et al. 2021; Wang et al. 2024): LaTeX in ``$...$``/``$$...$$``/
  ``\[...\]``/``align`` blocks, where a row that starts with ``&=`` continues the previous row, letters
  are variables, and units are wrapped (``\mathrm{~J}``, ``\text{ m/s}``).

Words that a text uses as math (``mod``), clock times (``3:45``), ordinals (``3rd``) and unknown
LaTeX commands never become numbers; they end a run or make its member unreadable, so that the
evaluator skips rather than guesses. Pure regular expressions and string work: no evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["MAX_TEXT_CHARS", "Chain", "Token", "extract_chains", "tokenize"]

MAX_TEXT_CHARS = 100_000
"""Only the first this many characters of a solution are read (a 2k-token solution is ~8k)."""

_TOKEN = re.compile(
    r"(?P<nl>\r\n|\n|\r)"
    r"|(?P<sp>[ \t\f\v\u00a0\u2009\u202f]+|\\[,;:!> ]|~|\\(?:left|right)\s*\."
    r"|\\(?:displaystyle|textstyle|limits|nonumber|notag|big|Big|bigg|Bigg)[lr]?(?![A-Za-z]))"
    r"|(?P<rowsep>\\\\(?:\[[^\]\n]{0,20}\])?)"
    r"|(?P<envb>\\begin\s*\{[A-Za-z*]{1,20}\}|\\end\s*\{[A-Za-z*]{1,20}\})"
    r"|(?P<cur>\\\$|\$|€|£)"
    r"|(?P<mdelim>\\[()\[\]])"  # \( \) \[ \]: where math begins or ends, a break between calculations
    r"|(?P<lp>\\left\s*(?:[(\[]|\\\{|\\lbrace(?![A-Za-z]))|[(\[]|\\\{|\\lbrace(?![A-Za-z]))"
    r"|(?P<rp>\\right\s*(?:[)\]]|\\\}|\\rbrace(?![A-Za-z]))|[)\]]|\\\}|\\rbrace(?![A-Za-z]))"
    r"|(?P<bar>\\left\s*\||\\right\s*\||\\[lr]vert(?![A-Za-z])|\\\||\|)"
    r"|(?P<deg>\^\s*\{?\s*\\circ\s*\}?|\^\s*\{\s*\\circ\s*\}|°|\\degree(?![A-Za-z]))"
    r"|(?P<tgroup>\\(?:text|mathrm|textrm|mbox|operatorname|mathit|textit|rm|textbf|mathbf|mathsf|textnormal)\s*\{(?:[^{}]|\{[^{}]*\})*\})"
    r"|(?P<cmp><=|>=|(?<![\d)}])!=|={2,}|:=|=>|=<|[<>≤≥≠≡→⇒⟹↔∈]"
    r"|\\(?:le|ge|leq|geq|leqslant|geqslant|ne|neq|lt|gt|equiv|cong|sim|propto|to|rightarrow|Rightarrow|implies|iff"
    r"|Longrightarrow|longrightarrow|mapsto|ll|gg|subset|subseteq|in|notin|mid|nmid|perp|parallel|approxeq|q?quad|text\s*\{\s*(?:and|or|where|so|if|for)\s*\})(?![A-Za-z]))"
    r"|(?P<rel>=|\\approx(?![A-Za-z])|≈|\\simeq(?![A-Za-z])|≃|\\doteq(?![A-Za-z]))"
    r"|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<ordinal>\d+(?:st|nd|rd|th)(?![A-Za-z]))"
    r"|(?P<clock>\d+:\d+)"
    r"|(?P<repeat>\d*\.?\d*\\(?:overline|dot|bar)\s*\{?\d*\}?)"
    r"|(?P<mixed>\d+ \d+/\d+(?![\d./]))"
    r"|(?P<zeros>0\d+(?![.\d]))"
    r"|(?P<num>(?:\d{1,3}(?:(?:,\\!|,|\{,\}|\\,| (?=\d{3}(?![\d/])))\d{3})+(?![\d])|\d+)(?:\.\d+)?(?:[eE][-+]?\d+(?![A-Za-z\d.]))?(?:\.\.\.|…)?|\.\d+)"
    r"|(?P<ufrac>[½¼¾⅓⅔])"
    r"|(?P<sup>[²³])"
    r"|(?P<op>\*\*|[-+*/^%×÷·−–]|\\%)"
    r"|(?P<bang>!)"
    r"|(?P<lb>\{)|(?P<rb>\})"
    r"|(?P<sub>_)"
    r"|(?P<amp>&)"
    r"|(?P<word>[A-Za-z]+(?:'[A-Za-z]+)?|π|√)"
    r"|(?P<punct>[.,;:?])"
    r"|(?P<other>.)",
    re.S,
)
_OPS = {"**": "^", "×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "\\%": "%"}
_CMD_OPS = {"times": "*", "cdot": "*", "div": "/", "ast": "ast"}
_CMD_FUNCS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp", "lg",
}
_CMD_KIND = {
    "frac": "frac", "dfrac": "frac", "tfrac": "frac", "cfrac": "frac", "sqrt": "sqrt", "binom": "binom", "dbinom": "binom",
    "tbinom": "binom", "pi": "const", "circ": "deg", "pmod": "poison", "bmod": "poison", "mod": "poison", "pm": "poison",
    "mp": "poison", "infty": "poison", "ldots": "other", "cdots": "other", "dots": "other", "vdots": "other",
    "and": "other", "text": "other", "hline": "other", "label": "other", "tag": "other", "boxed": "boxed",
}
_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma",
    "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega", "hbar", "ell",
}
_WORD_OPS = {"times": "*", "plus": "+", "minus": "-"}
STOPWORDS = frozenset(
    "a an the and or but so then in on at to for from with of by is are was were be been being will would each that this "
    "these those it he she they we you i his her their our its as if than more less left which who what when where there "
    "here now also after before into over under about all only just every not no has have had do does did can could "
    "should may might must per how many much total get gets got makes make made give gives gave need needs needed "
    "altogether together therefore thus hence because since while both other another same one's".split()
)
"""Words that end a run: the run's numbers never take them as labels."""
ID_WORDS = frozenset(
    "day days step steps night week month year page chapter part level grade question equation problem room number no "
    "case round game lap floor row table figure section unit lesson test quiz trial".split()
)
"""Words that name the number after them (``day 1 * 2``, ``Step 2 - 3``): it is an identifier, not a quantity."""
CONTINUATION_WORDS = frozenset(
    "of times by with plus minus per at than over into divided multiplied from twice half double triple thrice and".split()
)
"""Words after which a calculation may have begun earlier (``half of 48/2``, ``3 packs with 4 each + 2``)."""
_PLAIN_UNIT_LETTERS = frozenset("mgsKNJWVACTFLhMlB")
_MATH_UNITS = frozenset(
    "cm mm km nm kg mg Pa kPa MPa hPa atm bar mol mmol kJ MJ eV keV MeV Hz kHz MHz GHz kW MW mA mV kV mL dm min hr "
    "ms ns ps Torr torr cal kcal Wb Ohm ohm lb ft in mi mph yd oz gal".split()
)
_DISPLAY = re.compile(
    r"\$\$.*?\$\$|\\\[.*?\\\]|\\begin\{(align|aligned|equation|gather|gathered|eqnarray|multline|split|flalign)\*?\}.*?\\end\{\1\*?\}",
    re.S,
)
_TABLE = re.compile(r"\\begin\{(array|tabular|matrix|pmatrix|bmatrix|vmatrix|cases|smallmatrix)\*?\}.*?\\end\{\1\*?\}", re.S)
_INLINE = re.compile(r"(?<!\\)\$(?!\$)((?:[^$\\\n]|\\.|\n(?!\s*\n))+?)(?<!\\)\$|\\\((.+?)\\\)", re.S)
_HAS_LATEX = re.compile(r"\\[A-Za-z]{2,}|\\[\[(]|\^\{|_\{|\$\$")


@dataclass(slots=True)
class Token:
    """One token: ``kind`` (``num``, ``op``, ``rel``, ``word``, ``cmd``...), ``text`` as written (for
    ``op``/``rel``: one spelling, ``*``, ``=``, ``~``), its character span, and whether space came
    before it and whether it lies in LaTeX math."""

    kind: str
    text: str
    start: int
    end: int
    space: bool = False
    math: bool = False


@dataclass
class Chain:
    """A run with relation signs: ``members[0] rels[0] members[1] rels[1] ...``.

    Attributes:
        members: token lists (a member may be empty: ``= 5`` after a word).
        rels: the relation tokens (``text`` ``=`` or ``~`` for ``\approx``/``≈``/"about").
        truncated: the first member may have begun before the run (a continuation word such as
            ``of``/``with`` right before it, with a number shortly before that).
    """

    members: list[list[Token]] = field(default_factory=list)
    rels: list[Token] = field(default_factory=list)
    truncated: bool = False


def _math_spans(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
    """(math spans, display spans, table spans) of a text; none unless it shows LaTeX."""
    if not _HAS_LATEX.search(text):
        return [], [], []
    display = [m.span() for m in _DISPLAY.finditer(text)]
    tables = [m.span() for m in _TABLE.finditer(text)]
    spans = list(display)
    pos = 0
    for a, b in display + [(len(text), len(text))]:
        for m in _INLINE.finditer(text, pos, a):
            spans.append(m.span())
        pos = b
    spans.sort()
    return spans, display, tables


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    lo, hi = 0, len(spans)
    while lo < hi:
        mid = (lo + hi) // 2
        if spans[mid][1] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(spans) and spans[lo][0] <= pos < spans[lo][1]


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` (at most ``MAX_TEXT_CHARS`` read), spaces folded into ``Token.space``.

    Line breaks are kept as ``nl`` tokens, except inside display math where they are dropped when
    the expression visibly continues across them (an operator or relation at the break); inside
    tables (``array``, ``cases``...) every token is ``other``. Never raises.
    """
    text = text[:MAX_TEXT_CHARS]
    math, display, tables = _math_spans(text)
    out: list[Token] = []
    pos, space, n = 0, False, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the last alternative matches any character
            break
        kind, tok, start = m.lastgroup or "other", m.group(0), pos
        pos = m.end()
        if kind == "sp":
            space = True
            continue
        in_math = bool(math) and _inside(math, start)
        if kind == "num" and ("e" in tok or "E" in tok) and math and _inside(math, start):
            tok = re.split("[eE]", tok)[0]  # in LaTeX, 2e+9 is 2 times e plus 9
            pos = start + len(tok)
        if kind == "repeat":  # 0.\overline{7}: a repeating decimal is not read
            kind = "other"
        if kind == "zeros":  # "0900" (a clock time), "0000" (a typo): not a number to compute with
            kind = "other"
        elif kind == "mixed":
            whole, frac = tok.split(" ")
            a, b = frac.split("/")
            if int(a) >= int(b) or int(b) == 0:  # "10 12/4" is not a mixed number: read the first number only
                tok = whole
                pos = start + len(whole)
                kind = "num"
        elif kind == "op":
            tok = _OPS.get(tok, tok)
        elif kind == "rel":
            tok = "=" if tok == "=" else "~"
        elif kind == "cmd":
            name = tok[1:]
            if name in _CMD_OPS:
                kind, tok = "op", _CMD_OPS[name]
            elif name in _CMD_FUNCS:
                kind, tok = "func", name
            elif name in _CMD_KIND:
                kind = _CMD_KIND[name]
                tok = "pi" if name == "pi" else tok
            elif name in _GREEK:
                kind = "sym"
            else:
                kind = "unk"
        elif kind == "bang":
            prev = out[-1] if out else None
            kind, tok = ("op", "!") if prev and not space and prev.kind in ("num", "rp", "rb") else ("punct", "!")
        elif kind == "word":
            if tok == "π":
                kind, tok = "const", "pi"
            elif tok == "√":
                kind = "sqrt"
            elif tok.lower() in ("mod", "modulo"):
                kind = "poison"
            elif in_math:
                kind = "sym"
                prev = out[-1] if out else None
                if tok in _MATH_UNITS and space and prev is not None and prev.kind in ("num", "rp", "rb"):
                    kind = "label"
        elif kind == "tgroup":
            kind = _text_group_kind(tok)
            if re.match(r"\\(?:mathbf|textbf|mathit|textit|mathsf)", tok) and kind in ("label", "const"):
                kind = "sym"  # \mathbf{M}, \mathbf{e}: a vector or matrix, not a unit
            tok = "e" if kind == "const" else tok
        elif kind == "nl" and math and _inside(math, start):  # a line break inside $...$ or a display
            kind = "dnl"
        if tables and _inside(tables, start):
            kind = "other"
        out.append(Token(kind, tok, start, pos, space, in_math))
        space = False
    _classify_words(out)
    return out


def _text_group_kind(tok: str) -> str:
    """``\\text{...}``/``\\mathrm{...}``: a unit or label (``label``), ``e`` (``const``), a word (``word``)."""
    inner = tok[tok.index("{") + 1 : -1].replace("~", " ").replace("\\,", " ").strip()
    if not inner:
        return "skipword"
    if inner == "e":
        return "const"
    if inner.lower() in ("mod", "modulo"):
        return "poison"
    words = re.findall(r"[A-Za-z]+", inner)
    if re.search(r"\d", re.sub(r"\^\s*\{?\s*-?\d+\s*\}?", "", inner)):
        return "other"
    if len(words) > 4 or any(w.lower() in STOPWORDS for w in words) or re.search(r"[.,;:?!]", inner):
        return "word"
    return "label" if words or "%" in inner or "\\circ" in inner else "other"


def _ends_operand(t: Token | None) -> bool:
    return t is not None and (t.kind in ("num", "mixed", "rp", "label", "ufrac") or (t.kind == "op" and t.text in ("%", "!")))


def _starts_operand(t: Token | None) -> bool:
    return t is not None and t.kind in ("num", "mixed", "lp", "cur", "frac", "sqrt", "ufrac", "const")


def _classify_words(toks: list[Token]) -> None:
    """Plain-text words become labels (``24 clips``), times signs (``0.2 x 50``), symbols (``n``) or breaks."""
    labels = 0  # consecutive labels so far
    for i, t in enumerate(toks):
        if t.kind != "word":
            labels = labels if t.kind == "label" or (t.kind == "op" and t.text == "/") else 0
            continue
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        low = t.text.lower()
        after_label = prev is not None and (
            _ends_operand(prev)
            or (prev.kind == "op" and prev.text == "/" and not t.space and i >= 2 and _ends_operand(toks[i - 2]))
        )
        if t.text in ("x", "X") and _ends_operand(prev) and _starts_operand(nxt):
            t.kind, t.text = "op", "*"
        elif low in _WORD_OPS and _ends_operand(prev) and _starts_operand(nxt):
            t.kind, t.text = "op", _WORD_OPS[low]
        elif low in ("divided", "multiplied") and nxt is not None and nxt.text.lower() == "by" \
                and _ends_operand(prev) and _starts_operand(toks[i + 2] if i + 2 < len(toks) else None):
            t.kind, t.text = "op", "/" if low == "divided" else "*"
            nxt.kind = "skipword"
        elif low == "per" and after_label and labels < 3 and nxt is not None and nxt.kind == "word" \
                and nxt.text.lower() not in STOPWORDS:
            t.kind = "label"
        elif t.text in ("a", "I") or (low in STOPWORDS and len(t.text) > 1):
            pass
        elif len(t.text) == 1 and (t.text not in _PLAIN_UNIT_LETTERS or not after_label or not t.space):
            t.kind = "sym"
        elif after_label and labels < 3:
            t.kind = "label"
        labels = labels + 1 if t.kind == "label" else 0


_BREAK = frozenset(("nl", "envb", "mdelim", "punct", "cmp", "poison", "other", "ordinal", "clock", "word", "boxed_end"))
_TRANSPARENT = frozenset(("amp", "skipword"))


def _continues(toks: list[Token], i: int) -> bool:
    """Whether a row break (``\\``) or display line break at ``i`` sits inside one calculation."""
    j = i + 1
    while j < len(toks) and toks[j].kind in ("amp", "dnl"):
        j += 1
    nxt = toks[j] if j < len(toks) else None
    if nxt is not None and (nxt.kind == "rel" or (nxt.kind == "op" and nxt.text in ("+", "-"))):
        return True  # "&= ..." or "& - 1.207 ..." on the next row continues the calculation
    if toks[i].kind == "rowsep":
        return False
    prev = toks[i - 1] if i else None
    return (prev is not None and (prev.kind in ("rel", "lp", "lb", "frac", "sqrt") or (prev.kind == "op" and prev.text not in ("%", "!")))) or (
        nxt is not None and (nxt.kind in ("rp", "rb") or (nxt.kind == "op" and nxt.text in ("+", "*", "/", "^")))
    )


def extract_chains(toks: list[Token]) -> list[Chain]:
    """Cut tokens into runs and return the runs with at least one relation sign, as chains.

    The first member of a chain is marked ``truncated`` (its claims are skipped, not judged) when
    the calculation may have begun before the run: a continuation word (``of``, ``with``, ``and``)
    after a number, a run earlier on the line with an operator but no relation (``add 20 + 10
    decorations to the 29 + 24 decorations = 83``), a leading binary operator (``24 crayons total
    - 8 red - 6 blue = 6``), or a clock time, ordinal or odd number glued to it (``Day 4:2(50+100)``).
    """
    chains: list[Chain] = []
    run: list[Token] = []
    before = -1  # index of the break token before the current run
    dangling = False  # an earlier run on this line has an operator and no relation

    def close(end: int) -> None:
        nonlocal run, dangling
        has_rel = any(t.kind == "rel" for t in run)
        has_op = any(t.kind == "op" and t.text not in ("%", "!") and not t.math for t in run)
        if has_rel:
            chain = Chain()
            cur: list[Token] = []
            for t in run:
                if t.kind == "rel":
                    chain.members.append(cur)
                    chain.rels.append(t)
                    cur = []
                else:
                    cur.append(t)
            chain.members.append(cur)
            chain.truncated = dangling or _truncated(toks, before, chain.members[0])
            if end < len(toks) and toks[end].kind == "poison":
                chain.members[-1] = chain.members[-1] + [toks[end]]  # "= 1 \pmod{7}": the last member is no value
            chains.append(chain)
        elif has_op:
            dangling = True
        run = []

    for i, t in enumerate(toks):
        kind = t.kind
        if kind in ("rowsep", "dnl"):
            if _continues(toks, i):
                continue
            kind = "nl"
        if kind == "boxed" or kind in _TRANSPARENT:  # \boxed{...}: its braces stay, the command goes
            continue
        if kind in _BREAK:
            close(i)
            before = i
            if kind == "nl":
                dangling = False
            elif kind == "word" and t.text.lower() == "base":  # "in base 7, 44 x 55 = 3506"
                dangling = True
            continue
        if kind in ("num", "cur") and run and run[-1].kind == "label" and not any(x.kind == "rel" for x in run):
            close(i)  # "30 megabytes take 30/10 = 3": a label followed by a number starts afresh
            before = i - 1
        run.append(t)
    close(len(toks))
    return chains


def _truncated(toks: list[Token], before: int, first: list[Token]) -> bool:
    lead = next((t for t in first if t.kind not in ("cur", "amp", "skipword")), None)
    prev = toks[before] if before >= 0 else None
    if lead is None:
        return False
    if lead.kind == "op" and lead.text in ("*", "/", "^", "+", "ast"):
        return True
    if lead.kind == "op" and lead.text == "-" and not lead.math and prev is not None and prev.kind not in ("nl", "punct"):
        return True
    if prev is None:
        return False
    if prev.kind in ("clock", "ordinal", "other") and not first[0].space:
        return True
    if prev.kind in ("word", "label") and prev.text.lower() in ID_WORDS and lead.kind == "num":
        return True
    if prev.kind == "punct" and prev.text == "," and before >= 1 and toks[before - 1].kind == "num" and toks[before - 1].end == prev.start:
        return True  # "14, 400 / 80": a thousands separator written with a space
    if prev.kind == "poison":
        return True
    if prev.kind in ("word", "skipword", "label") and prev.text.lower() in CONTINUATION_WORDS and not lead.math:
        return any(toks[k].kind in ("num", "mixed") for k in range(max(0, before - 4), before))
    return False
