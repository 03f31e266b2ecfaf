r"""One spelling for the symbols that models write several ways (Unicode or LaTeX).

:func:`canonical_symbols` maps the Unicode minus and dash to ``-``, ``×``/``·`` to ``\times``/``\cdot``,
``≈`` to ``\approx``, superscript runs (``10⁻⁴``, ``m²``) to ``^{-4}``/``^{2}``, and every spelling of
the Ångström (U+212B, ``A`` with a combining ring, ``\mathring{A}``) to ``Å`` (U+00C5, which
the unit reader knows). Plain string work in linear time; used by the number reader, the LaTeX
normalisation and the unit reader, so that all three agree.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["canonical_symbols"]

_SUPERSCRIPT_RUN = re.compile("[\u2070\u00b9\u00b2\u00b3\u2074-\u2079\u207a\u207b]+")
_SUPERSCRIPT_DIGITS = str.maketrans("\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207a\u207b", "0123456789+-")
_MATHRING_A = re.compile(r"\\mathring\s*(?:\{\s*A\s*\}|A(?![A-Za-z]))")
_REPLACE = (("\u2212", "-"), ("\u2013", "-"), ("\u00d7", "\\times "), ("\u00b7", "\\cdot "), ("\u2248", "\\approx "))


def canonical_symbols(s: str) -> str:
    r"""``s`` with symbols in one spelling: ``2.16 × 10⁻⁴`` -> ``2.16 \times  10^{-4}``, ``\mathring{A}`` -> ``Å``.

    Unicode is put in NFC form first (U+212B ANGSTROM SIGN and ``A`` + U+030A become U+00C5;
    U+2126 OHM SIGN becomes Ω). Never raises for ``str`` input.
    """
    if s.isascii():
        if "\\mathring" not in s:
            return s
    else:
        s = unicodedata.normalize("NFC", s)
        for old, new in _REPLACE:
            s = s.replace(old, new)
        s = _SUPERSCRIPT_RUN.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPT_DIGITS) + "}", s)
    return _MATHRING_A.sub("\u00c5", s)
