"""Final-answer extraction: find the answer a model response commits to, or say why there is none.

The extraction order follows the conventions of the MATH benchmark (Hendrycks et al. 2021, the last
``\\boxed{}`` of a solution is its answer) and of the Qwen2.5-Math / math-evaluation-harness
graders: the last ``\\boxed{...}`` (or ``\\fbox{...}``), else a last "Answer: ..." line, else the
last number of the response's concluding line. A response has no final answer when it was cut off
by the token limit, ends in a loop (:mod:`.repetition`), or its last box is empty or unclosed; the
last-number fallback never reads option listings (``(A) 50 (B) 75``). Everything here is plain
string scanning (linear time, no regex with nested quantifiers), so it is safe to run in the parent
process on untrusted text of any length. The rules: ``docs/verifiers.md``, "Extraction".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .repetition import repeating_tail

__all__ = [
    "LOOP_FINISH_REASON",
    "TRUNCATED_FINISH_REASONS",
    "Extraction",
    "NoFinalAnswer",
    "extract_final_answer",
    "find_final_answer",
    "last_box_span",
    "strip_answer_delimiters",
]

TRUNCATED_FINISH_REASONS = frozenset({"length", "max_tokens", "cut"})
"""``finish_reason`` values that mean the response was stopped before it finished: by the token limit
(OpenAI / llama.cpp ``length``; ``max_tokens`` in other APIs) or part-way by the question's time
budget (``cut``, :mod:`scireflect.graphs.nodes`)."""

LOOP_FINISH_REASON = "loop"
"""The ``finish_reason`` of a reply the client stopped while it streamed because it had fallen into a
loop (:data:`scireflect.agents.roles.LOOP`): ``degenerate``, like a response that ends in one."""



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


@dataclass(frozen=True)
class NoFinalAnswer:
    """Why a response states no final answer.

    Attributes:
        kind: ``truncated`` (cut off by the token limit or the time budget), ``degenerate`` (it ends in a loop),
            ``empty_box`` / ``unclosed_box`` (its last box is empty / not closed), ``none``
            (no box, no answer line, no number in its concluding line).
        explanation: one sentence about the response (never about a reference answer).
    """

    kind: str
    explanation: str


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


def _last_box_parts(text: str) -> tuple[int, int, int, int] | tuple[int, int, None, None] | None:
    """``(box start, content start, content end, box end)`` of the last ``\\boxed``/``\\fbox`` of
    ``text`` (``\\boxed 5`` without braces: its next token is the content); the two ends are ``None``
    when the box's brace is not closed; ``None`` when there is no box. Linear time."""
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    m = matches[-1]
    j = m.end()
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        end = _matching_braces(text).get(j)
        return (m.start(), j + 1, None, None) if end is None else (m.start(), j + 1, end, end + 1)
    tok = re.match(r"[^\s$]+", text[j:])
    stop = j + (tok.end() if tok else 0)
    return m.start(), j, stop, stop


def _last_box(text: str) -> str | NoFinalAnswer | None:
    """The content of the last ``\\boxed``/``\\fbox``; ``NoFinalAnswer`` when that box is empty or
    unclosed (the response's own last statement of an answer is missing or cut off); ``None``
    when there is no box."""
    parts = _last_box_parts(text)
    if parts is None:
        return None
    _, start, end, _ = parts
    if end is None:
        return NoFinalAnswer("unclosed_box", "the last \\boxed{ of the response is not closed: its final answer is cut off")
    content = strip_answer_delimiters(text[start:end].strip())
    if not content:
        return NoFinalAnswer("empty_box", "the last \\boxed{} of the response is empty: it states no final answer")
    return content


def last_box_span(text: str) -> tuple[int, int] | None:
    """``(start, end)`` of the last ``\\boxed{...}``/``\\fbox{...}`` of ``text``: from the backslash to
    just after its closing brace (``\\boxed 5``: after the token); ``None`` when there is no box or
    the last one is not closed. Linear time."""
    parts = _last_box_parts(text)
    return None if parts is None or parts[3] is None else (parts[0], parts[3])


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


_OPTION_LABEL = re.compile(r"\(\s*[A-H]\s*\)|\[\s*[A-H]\s*\]|(?:^|(?<=\s))[A-H]\)")
_MATH_DELIMS = re.compile(r"\\[\[\]()]|\$")


def _concluding_line(text: str) -> str:
    """The last line with content besides math delimiters (``\\]``, ``$$``): the response's conclusion."""
    for line in reversed(text.splitlines()):
        if _MATH_DELIMS.sub("", line).strip():
            return line
    return ""


def _last_number(text: str) -> str | None:
    """The last number of the concluding line, before any option label (``(A) 50 (B) 75`` lists options);
    none when the line ends with a colon (``Step 1:`` announces what was to follow: a "master key"
    reply, arXiv 2507.08794)."""
    line = _concluding_line(text)
    if line.strip().strip("*#_ \t").endswith((":", "\uff1a")):  # "Step 1:", "Case 2:": a heading of what was to come
        return None
    label = _OPTION_LABEL.search(line)
    if label is not None:
        line = line[: label.start()]
    numbers = list(_LAST_NUMBER_RE.finditer(line))
    return numbers[-1].group(0).replace("\u2212", "-") if numbers else None


_NONE = NoFinalAnswer(
    "none", "no final answer (\\boxed{...}, 'Answer: ...' or a number in the concluding line) was found in the response"
)


def find_final_answer(text: str, *, finish_reason: str | None = None) -> Extraction | NoFinalAnswer:
    """Find the final answer of a model response, or why it has none.

    Args:
        text: the full model output (any length; plain text, Markdown and LaTeX).
        finish_reason: why generation stopped, as the model server reported it (``stop``,
            ``length``...); ``None`` when unknown. ``length``/``max_tokens``/``cut`` mean truncated.

    Returns:
        An :class:`Extraction`, or a :class:`NoFinalAnswer` when the response was truncated by the
        token limit, ends in a loop (:func:`~scireflect.verifiers.repetition.repeating_tail`), its
        last box is empty or unclosed, or it has no box, answer line or number in its concluding
        line. Order: the LAST ``\\boxed{...}``/``\\fbox{...}`` (nested braces matched; ``\\boxed 5``
        without braces is read), else the last line like ``Answer: ...``, ``Final answer: ...``,
        ``... the answer is ...``, else the last number (integers, decimals, ``1,000``, ``3/4``) of
        the concluding line, before any option label. Never raises for ``str`` input.

    Sources: the last-``\\boxed`` convention of Hendrycks et al. (2021) MATH and of the
    Qwen2.5-Math evaluation harness; the answer-line fallback as in lm-evaluation-harness.
    """
    if not isinstance(text, str) or not text.strip():
        return _NONE
    if finish_reason in TRUNCATED_FINISH_REASONS:
        by = "the time budget" if finish_reason == "cut" else "the token limit"
        return NoFinalAnswer("truncated", f"the response was cut off by {by} (finish_reason '{finish_reason}') "
                                          "before it finished: it states no final answer")
    if finish_reason == LOOP_FINISH_REASON:
        return NoFinalAnswer("degenerate", "the response fell into a loop and was stopped while it streamed "
                                           "(finish_reason 'loop'): it states no final answer")
    loop = repeating_tail(text)
    if loop is not None:
        return NoFinalAnswer("degenerate", f"the response ends in a loop (a passage of {loop.period} characters repeated "
                                           f"{loop.copies:.0f} times): it states no final answer")
    boxed = _last_box(text)
    if isinstance(boxed, NoFinalAnswer):
        return boxed
    if boxed is not None:
        return Extraction(boxed, "boxed")
    line = _answer_line(text)
    if line is not None:
        return Extraction(line, "answer_line")
    number = _last_number(text)
    return Extraction(number, "last_number") if number is not None else _NONE


def extract_final_answer(text: str, *, finish_reason: str | None = None) -> Extraction | None:
    """The final answer of a model response (:func:`find_final_answer`), or ``None`` when it has none.

    Never raises for any input (non-strings give ``None``).
    """
    found = find_final_answer(text, finish_reason=finish_reason)
    return found if isinstance(found, Extraction) else None
