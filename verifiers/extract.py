"""Final-answer extraction: find the answer a model response commits to.

The extraction order follows the conventions of the MATH benchmark (Hendrycks et al. 2021, the last
``\\boxed{}`` of a solution is its answer) and of the Qwen2.5-Math / math-evaluation-harness
graders: first the last ``\\boxed{...}`` (or ``\\fbox{...}``), then a last "Answer: ..." line, then
the last number in the text. Everything here is plain string scanning (linear time, no regex with
nested quantifiers), so it is safe to run in the parent process on untrusted text of any length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "extract_final_answer", "strip_answer_delimiters"]


@dataclass(frozen=True)
class Extraction:
    """A final answer taken from a model response.

    Attributes:
        text: the answer text, stripped of surrounding ``$``, ``\\(`` ``\\)``, ``\\[`` ``\\]``,
            Markdown bold and a trailing period (e.g. ``\\frac{9}{7}`` from ``$\\boxed{\\frac{9}{7}}$.``).
        method: how it was found: ``boxed`` (last ``\\boxed``/``\\fbox``), ``answer_line``
            ("Answer: ...", "Final answer: ...", "The answer is ...") or ``last_number``.
    """

    text: str
    method: str


_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_ANSWER_LINE_RE = re.compile(
    r"^[\s>*#_\-]*(?:\*\*)?\s*(?:final\s+answer|answer)\s*(?:\*\*)?\s*[:\uff1a]\s*(?:\*\*)?(?P<rest>.*)$",
    re.IGNORECASE,
)
_ANSWER_IS_RE = re.compile(r"the\s+(?:final\s+)?answer\s+is\s*[:\uff1a]?", re.IGNORECASE)
_LAST_NUMBER_RE = re.compile(
    r"(?<![\w.])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?"
)


def _matching_braces(text: str) -> dict[int, int]:
    """Map the index of every ``{`` to the index of its matching ``}`` in one linear pass.

    Escaped braces (``\\{``, ``\\}``) are skipped. Unbalanced braces are simply left out.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def strip_answer_delimiters(text: str) -> str:
    """Strip math delimiters and decoration around an answer.

    Removes, repeatedly, surrounding whitespace, ``$...$``/``$$...$$``, ``\\(...\\)``, ``\\[...\\]``,
    Markdown ``**...**``, and a trailing period/comma (a sentence end, never the digits of a
    decimal: ``5.`` becomes ``5``, ``0.5`` stays). Returns the cleaned string (possibly empty).
    """
    s = text.strip()
    while True:
        before = s
        if s.startswith("**") and s.endswith("**") and len(s) >= 4:
            s = s[2:-2].strip()
        if s.startswith("$$") and s.endswith("$$") and len(s) >= 4:
            s = s[2:-2].strip()
        elif s.startswith("$") and s.endswith("$") and len(s) >= 2:
            s = s[1:-1].strip()
        if (s.startswith("\\(") and s.endswith("\\)")) or (s.startswith("\\[") and s.endswith("\\]")):
            s = s[2:-2].strip()
        while s.endswith((".", ",", ";")) and not s.endswith(("..", "\\.", "\\,", "\\;")):
            s = s[:-1].rstrip()
        if s.endswith("$") and s.count("$") == 1:  # "... is $5$." cut to "5$"
            s = s[:-1].rstrip()
        if s.startswith("$") and s.count("$") == 1:
            s = s[1:].lstrip()
        if s == before:
            return s


def _last_boxed(text: str) -> str | None:
    """The content of the last balanced, non-empty ``\\boxed``/``\\fbox`` in ``text``, or ``None``."""
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    pairs = _matching_braces(text)
    for m in reversed(matches):
        j = m.end()
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            end = pairs.get(j)
            if end is None:  # unbalanced (e.g. a truncated response): skip it
                continue
            content = text[j + 1 : end].strip()
        else:  # "\boxed 5" without braces: the next token
            tok = re.match(r"[^\s$]+", text[j:])
            content = tok.group(0) if tok else ""
        content = strip_answer_delimiters(content)
        if content:
            return content
    return None


def _answer_line(text: str) -> str | None:
    """The answer of the last "Answer: ..." / "The answer is ..." line, or ``None``."""
    lines = text.splitlines()
    for idx in range(len(lines) - 1, -1, -1):
        line = lines[idx]
        rest: str | None = None
        hits = list(_ANSWER_IS_RE.finditer(line))
        if hits:
            rest = line[hits[-1].end() :]
        else:
            m = _ANSWER_LINE_RE.match(line)
            if m:
                rest = m.group("rest")
        if rest is None:
            continue
        rest = strip_answer_delimiters(rest)
        if not rest:  # "Answer:" with the answer on the next non-empty line
            for nxt in lines[idx + 1 :]:
                if nxt.strip():
                    rest = strip_answer_delimiters(nxt)
                    break
        if rest:
            return rest
    return None


def extract_final_answer(text: str) -> Extraction | None:
    """Extract the final answer of a model response.

    Args:
        text: the full model output (any length; plain text, Markdown and LaTeX).

    Returns:
        An :class:`Extraction`, or ``None`` when the text has no boxed answer, no answer line and
        no number. Order: the LAST balanced ``\\boxed{...}``/``\\fbox{...}`` (nested braces are
        matched; ``\\boxed 5`` without braces is accepted; unbalanced/empty boxes are skipped), else
        the last line like ``Answer: ...``, ``Final answer: ...``, ``... the answer is ...``, else
        the last number (integers, decimals, ``1,000``, ``3/4``). Never raises for ``str`` input.

    Sources: the last-``\\boxed`` convention of Hendrycks et al. (2021) MATH and of the
    Qwen2.5-Math evaluation harness; the answer-line fallback as in lm-evaluation-harness.
    """
    if not isinstance(text, str) or not text:
        return None
    boxed = _last_boxed(text)
    if boxed is not None:
        return Extraction(boxed, "boxed")
    line = _answer_line(text)
    if line is not None:
        return Extraction(line, "answer_line")
    numbers = list(_LAST_NUMBER_RE.finditer(text))
    if numbers:
        return Extraction(numbers[-1].group(0).replace("\u2212", "-"), "last_number")
    return None
