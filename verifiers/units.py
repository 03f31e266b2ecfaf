r"""Physical units: read units written in LaTeX or plain text into pint units, and convert between them.

The reference answer of a SciBench question is a number expressed in the question's ``unit`` field
(``$\mathrm{~kJ} \mathrm{~mol}^{-1}$``, ``$\mathrm{J} \mathrm{K}^{-1} \mathrm{~mol}^{-1}$``,
``$10^{-19}$ J``, ``$\mathrm{m} / \mathrm{s}$``, ``$\mathrm{~N} / \mathrm{C}$``, ``%``, ``$``); a model
may answer in that unit, in another unit of the same dimension (``5.137\times10^{6}\ \mathrm{Pa}``
for ``50.7 atm``) or in a unit of another dimension (``50.7\ \mathrm{m}``: wrong). This module turns
such text into a :class:`UnitSpec` (a power-of-ten scale times a pint unit) and gives the exact
conversion factor between two specs, or raises :class:`DimensionMismatch`.

Safety: unit text is never evaluated. It is tokenised here by regular expressions into words,
integer/fraction exponents, ``/`` and ``\cdot``; each word is looked up on its own in pint's
registry (``UnitRegistry.parse_unit_name`` -- a dictionary lookup with prefix/plural handling, no
expression evaluation), and the unit is built by multiplying pint ``Unit`` objects in Python.

Sources: pint (https://pint.readthedocs.io, its default registry of SI and common units, CODATA
constants); the SciBench ``unit`` field (Wang et al. 2024, github.com/mandyyyyii/scibench).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .symbols import canonical_symbols

__all__ = [
    "DimensionMismatch",
    "UnitSpec",
    "conversion",
    "get_registry",
    "parse_unit",
]

MAX_UNIT_CHARS = 300
"""Unit texts longer than this are not read (a unit is a few words)."""
_MAX_EXP10 = 400

_ureg: Any = None


def get_registry():
    """The shared pint ``UnitRegistry`` (created on first use, ~1 s; one per process)."""
    global _ureg
    if _ureg is None:
        import pint

        _ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    return _ureg


class DimensionMismatch(ValueError):
    """Two units have different physical dimensions (e.g. ``m`` vs ``m/s``).

    Attributes:
        got / expected: the two :class:`UnitSpec` (candidate, reference).
    """

    def __init__(self, got: UnitSpec, expected: UnitSpec):
        self.got, self.expected = got, expected
        super().__init__(
            f"dimension mismatch: got {got.pretty} ({got.dimensionality}), "
            f"expected {expected.pretty} ({expected.dimensionality})"
        )

    def __reduce__(self):  # pint units do not pickle across processes: send the message only
        return (ValueError, (str(self),))


@dataclass(frozen=True)
class UnitSpec:
    """A unit read from text.

    Attributes:
        text: the text it was read from (stripped).
        kind: ``physical`` (a pint unit, possibly dimensionless like ``rad``), ``percent`` (``%``),
            ``currency`` (``$``), ``count`` (only counted things: ``photons``, ``electrons``) or
            ``scale`` (only a power of ten: SciBench ``$10^3$``).
        scale: the power-of-ten prefix written before the unit (``$10^{-19}$ J`` -> 10**-19), else 1.
        unit: the pint ``Unit`` (``None`` unless ``kind == "physical"``).
        pretty: a short readable form (``kJ/mol``, ``m/s``, ``%``).
        dimensionality: pint's dimensionality (``[length] / [time]``; ``dimensionless``).
    """

    text: str
    kind: str
    scale: Fraction = Fraction(1)
    unit: Any = None
    pretty: str = ""
    dimensionality: str = "dimensionless"

    @property
    def physical(self) -> bool:
        """Whether this is a pint unit (so that conversion and dimension checks apply)."""
        return self.kind == "physical" and self.unit is not None


# Words that are units in scientific answers but not in pint, or typos seen in SciBench's unit field.
_ALIASES = {
    "Torr": "torr", "KJ": "kJ", "kPA": "kPa", "Year": "year", "Years": "year", "yr": "year", "yrs": "year",
    "sec": "second", "secs": "second", "hr": "hour", "hrs": "hour", "mins": "minute", "amu": "u",
    "ohm": "ohm", "ohms": "ohm", "Ohm": "ohm", "Omega": "ohm", "AA": "angstrom", "Å": "angstrom", "Ω": "ohm",
    "liter": "liter", "litre": "liter", "litres": "liter", "lbs": "pound", "mph": "mile/hour", "kmh": "km/hour",
    "cc": "cm**3", "degrees": "degree", "deg": "degree", "Kelvin": "kelvin", "Celsius": "degC",
}
# Counted things: a unit like "photons per second" is read as "1/s".
_COUNT_WORDS = {
    "photon", "photons", "electron", "electrons", "particle", "particles", "molecule", "molecules",
    "atom", "atoms", "ion", "ions", "nucleus", "nuclei", "alpha", "events", "event", "decays", "decay",
    "cycles", "cycle", "turns", "turn", "revolutions", "rev", "collisions", "collision", "people", "persons",
    "items", "times",
}
_BLOCKED = {
    "pi", "sqrt", "ln", "log", "sin", "cos", "tan", "exp", "and", "or", "to", "per", "frac", "infty", "x", "y", "z",
    "approx", "approximately", "about", "hat", "vec", "i", "j", "k", "n", "times", "cdot", "a", "b", "c",
}
_BLOCKED_CASELESS = {w for w in _BLOCKED if len(w) > 1}
_WRAPPERS = re.compile(r"\\(?:mathrm|text|textrm|mbox|operatorname|rm|mathit|textit|mathring|mathbf|textbf|hat|vec)\s*")
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<scale>10\s*\^\s*(?:\{\s*(?P<s1>[-+]?\s*\d+)\s*\}|(?P<s2>[-+]?\d)))"
    r"|(?P<deg>\^\s*\{?\s*\\circ\s*\}?|\{\s*\^?\s*\\circ\s*\}|\\circ|\u00b0|\\degree(?![A-Za-z]))"
    r"|(?P<exp>\^\s*(?:\{\s*(?P<e1>[-+]?\s*\d+(?:\s*/\s*\d+)?)\s*\}|(?P<e2>[-+]?\d)))"
    r"|(?P<div>/|\\over(?![A-Za-z])|\bper\b)"
    r"|(?P<mul>\\cdot|\\times|\*|\u00b7|\\,|\\;|\\:|\\!|\\ |~|-)"
    r"|(?P<mu>\\mu(?![A-Za-z])\s*)"
    r"|(?P<cmd>\\(?:Omega|AA|ohm|alpha|beta|gamma)(?![A-Za-z]))"
    r"|(?P<pct>\\%|%|\\text\{\s*\\?%\s*\}|\bpercent\b)"
    r"|(?P<cur>\\\$|\$)"
    r"|(?P<word>[A-Za-z\u00b5\u03bc\u03a9\u00c5]+)"
    r"|(?P<open>[({])|(?P<close>[)}])"
    r"|(?P<punct>[;,.])"
)


def _clean(text: str) -> str:
    s = canonical_symbols(text).replace("\r", " ").replace("\n", " ").strip()  # \mathring{A} -> Å before unwrapping
    # "$10^{16}$ photons", "$\mathrm{~kJ}$": the dollar signs of inline maths are delimiters unless a
    # lone "$" or "\$" is the whole unit (currency)
    if s not in ("$", "\\$") and s.count("$") % 2 == 0:
        s = s.replace("\\$", "\u0000").replace("$", " ").replace("\u0000", "\\$")
    s = _WRAPPERS.sub("", s)  # \mathrm{~kJ} -> {~kJ}; the braces become groups
    s = s.replace("{ }", " ").replace("\\left", "").replace("\\right", "")
    return s.strip()


def _lookup(word: str):
    """A pint unit for one word, or ``None``. Dictionary lookups only (no expression parsing)."""
    ureg = get_registry()
    cands = [word]
    if word in _ALIASES:
        cands.insert(0, _ALIASES[word])
    if word[:1] in "µμ":
        cands.append("u" + word[1:])
    for w in cands:
        if "*" in w or "/" in w:  # an alias that is a compound: build it from its parts
            unit = _compound_alias(w)
            if unit is not None:
                return unit
            continue
        try:
            names = ureg.parse_unit_name(w, case_sensitive=True)
        except Exception:  # noqa: BLE001 - pint raises several error types for odd names
            names = ()
        if names:
            prefix, name, _suffix = names[0]
            try:
                return ureg.Unit(prefix + name)
            except Exception:  # noqa: BLE001
                continue
    return None


def _compound_alias(text: str):
    # simple and explicit: "a/b" or "a**n"
    m = re.fullmatch(r"([A-Za-z]+)/([A-Za-z]+)", text)
    if m:
        a, b = _lookup(m.group(1)), _lookup(m.group(2))
        return a / b if a is not None and b is not None else None
    m = re.fullmatch(r"([A-Za-z]+)\*\*(\d)", text)
    if m:
        a = _lookup(m.group(1))
        return a ** int(m.group(2)) if a is not None else None
    return None


def _word_units(word: str) -> list | None:
    """Units for a word, splitting run-together symbols (``JK`` -> [J, K], ``Jmol`` -> [J, mol]).

    An exponent written after the word applies to the last part only (``JK^{-1}`` is J/K).
    """
    unit = _lookup(word)
    if unit is not None:
        return [unit]
    if len(word) > 12:
        return None
    for i in range(len(word) - 1, 0, -1):  # longest known head, then the rest
        head_txt = word[:i]
        if len(head_txt) == 1 and head_txt not in "JKNWVACmgsL":
            continue
        head = _lookup(head_txt)
        if head is None:
            continue
        tail = _word_units(word[i:])
        if tail is not None:
            return [head, *tail]
    return None


def _pretty(unit) -> str:
    try:
        return format(unit, "~C") or "1"
    except Exception:  # noqa: BLE001
        return str(unit)


def _dims(unit) -> str:
    d = str(unit.dimensionality)
    return d if d not in ("", "dimensionless") else "dimensionless"


def parse_unit(text: Any) -> UnitSpec | None:
    r"""Read a unit written in LaTeX or plain text.

    Args:
        text: e.g. ``"$\mathrm{~kJ} \mathrm{~mol}^{-1}$"``, ``"$\mathrm{J} \mathrm{K}^{-1} \mathrm{~mol}^{-1}$"``,
            ``"$10^{-19}$ J"``, ``"$\mathrm{m} / \mathrm{s}$"``, ``"m/s^2"``, ``"\,\mathrm{atm}"``, ``"^\circ"``,
            ``"$^{\circ} \mathrm{C}$"``, ``"\mu C"``, ``"%"``, ``"$"``, ``"$10^3$"``, ``"$10^{16}$ photons"``.

    Returns:
        A :class:`UnitSpec`, or ``None`` when the text is empty, longer than ``MAX_UNIT_CHARS`` or has
        a word that is neither a pint unit nor a counted thing (``"apples"``, ``"x"``). ``/`` divides
        by the next factor only (``N m^2 / C`` is N*m^2/C; ``J/mol K`` is J*K/mol, as written).
        ``°`` alone is the angle degree; ``°C``/``°F`` are temperatures (``delta_degC`` inside a
        compound such as ``J °C^{-1}``). Never raises; never evaluates the text.
    """
    if not isinstance(text, str):
        return None
    raw = text.strip()
    if not raw or len(raw) > MAX_UNIT_CHARS:
        return None
    s = _clean(raw)
    if not s:
        return None
    try:
        return _parse_clean(raw, s)
    except Exception:  # noqa: BLE001 - pint errors on exotic combinations: not a unit we can read
        return None


def _parse_clean(raw: str, s: str) -> UnitSpec | None:
    ureg = get_registry()
    pos = 0
    scale = Fraction(1)
    factors: list[list[Any]] = []  # [unit or None(count), exponent Fraction]
    pending_div = False
    pct = cur = count = False
    pending_deg = pending_mu = False
    depth_div: list[bool] = []  # a "/" before a group divides the whole group
    group_start: list[int] = []
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            return None
        kind = m.lastgroup
        tok = m.group(0)
        pos = m.end()
        if kind in ("space", "mul", "punct"):
            continue
        if kind == "scale" and not factors and not pending_deg:
            e = int((m.group("s1") or m.group("s2")).replace(" ", ""))
            if abs(e) > _MAX_EXP10:
                return None
            scale *= Fraction(10) ** e
            continue
        if kind == "scale":
            return None
        if kind == "pct":
            pct = True
            continue
        if kind == "cur":
            cur = True
            continue
        if kind == "div":
            pending_div = True
            continue
        if kind == "open":
            depth_div.append(pending_div)
            group_start.append(len(factors))
            pending_div = False
            continue
        if kind == "close":
            if not group_start:
                return None
            start, div = group_start.pop(), depth_div.pop()
            if div:
                for f in factors[start:]:
                    f[1] = -f[1]
            continue
        if kind == "exp":
            if not factors:
                return None
            e_txt = (m.group("e1") or m.group("e2")).replace(" ", "")
            e = Fraction(e_txt)
            factors[-1][1] *= e
            continue
        if kind == "deg":
            pending_deg = True
            continue
        if kind == "mu":
            pending_mu = True
            continue
        if kind == "cmd":
            word = tok.lstrip("\\")
        else:
            word = tok
        if pending_deg:
            pending_deg = False
            if word in ("C", "F"):
                factors.append([("degC" if word == "C" else "degF"), Fraction(-1 if pending_div else 1)])
                pending_div = False
                continue
            if word in ("N", "S", "E", "W"):  # a compass bearing: an angle
                factors.append([ureg.degree, Fraction(-1 if pending_div else 1)])
                pending_div = False
                continue
            factors.append([ureg.degree, Fraction(1)])
        if word in _BLOCKED or word.lower() in _BLOCKED_CASELESS:
            return None
        if word.lower() in _COUNT_WORDS:
            count = True
            factors.append([None, Fraction(-1 if pending_div else 1)])
            pending_div = False
            continue
        if pending_mu:
            word, pending_mu = "u" + word, False
        units = _word_units(word)
        if units is None:
            return None
        sign = Fraction(-1 if pending_div else 1)
        factors.extend([u, sign] for u in units)
        pending_div = False
    if pending_deg:
        factors.append([ureg.degree, Fraction(1)])
    if group_start:
        return None
    if pct or cur:
        if factors:
            return None
        return UnitSpec(raw, "percent" if pct else "currency", scale, None, "%" if pct else "$")
    physical = [f for f in factors if f[0] is not None]
    if not physical:
        if count:
            return UnitSpec(raw, "count", scale, None, "count")
        if scale != 1:
            return UnitSpec(raw, "scale", scale, None, "")
        return None
    temps = [f for f in physical if isinstance(f[0], str)]
    if temps:
        if len(physical) == 1 and physical[0][1] == 1:
            unit = ureg.Unit(physical[0][0])
            return UnitSpec(raw, "physical", scale, unit, "°C" if physical[0][0] == "degC" else "°F", _dims(unit))
        for f in temps:  # J/°C is a temperature difference
            f[0] = ureg.Unit("delta_" + f[0])
    unit = ureg.dimensionless
    for u, e in physical:
        unit = unit * (u ** (int(e) if e.denominator == 1 else float(e)))
    return UnitSpec(raw, "physical", scale, unit, _pretty(unit), _dims(unit))


def conversion(value: Fraction, got: UnitSpec, expected: UnitSpec) -> Fraction:
    """Convert ``value`` written in ``got`` (scale included) into ``expected`` (scale included).

    Args:
        value: the number as written before ``got`` (e.g. 5137000 for ``5.137e6 Pa``).
        got / expected: physical unit specs (see :meth:`UnitSpec.physical`).

    Returns:
        The value expressed in ``expected``: ``value * got.scale * factor / expected.scale`` where
        ``factor`` is pint's conversion factor, made exact as the shortest decimal of the float
        (``0.001`` for m -> km, ``4.184`` for cal -> J). Offset units (°C, °F) are converted
        as temperatures (25 °C -> 298.15 K).

    Raises:
        DimensionMismatch: the dimensions differ (``m`` vs ``m/s``; ``rad`` vs ``m``).
    """
    if got.unit.dimensionality != expected.unit.dimensionality:
        raise DimensionMismatch(got, expected)
    ureg = get_registry()
    v = value * got.scale
    if _is_offset(got.unit) or _is_offset(expected.unit):
        q = ureg.Quantity(float(v), got.unit).to(expected.unit)
        return Fraction(repr(float(q.magnitude))) / expected.scale
    factor = ureg.Quantity(1.0, got.unit).to(expected.unit).magnitude
    return v * Fraction(repr(float(factor))) / expected.scale


def _is_offset(unit) -> bool:
    try:
        return not unit._REGISTRY._units[str(unit)].is_multiplicative if len(unit._units) == 1 else False
    except (KeyError, AttributeError):
        return str(unit) in ("degree_Celsius", "degree_Fahrenheit")
