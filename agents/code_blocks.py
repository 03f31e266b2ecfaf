"""The plain-text tool format: ```python blocks the model writes, ```output blocks the sandbox fills.

Qwen's tool-integrated reasoning format (Qwen2.5-Math TIR; ToRA, Gou et al. 2023, arXiv 2309.17452)
interleaves prose, code and the code's output inside one assistant message::

    The pressure is p = nRT/V.
    ```python
    print(10.0 * 0.08206 * 300.15 / 4.860)
    ```
    ```output
    50.679...
    ```
    So p = 50.7 atm. \\boxed{50.7}

The model writes the ```python block and the ```output fence; generation stops at that fence (a stop
sequence) and the real output, from the sandbox, is written after it
(:mod:`scireflect.agents.code_loop`). Everything between ``OUTPUT_FENCE + "\\n"`` and the closing
fence is therefore tool output, not model text: :func:`tool_output_spans` finds it (training masks it
from the loss, :mod:`scireflect.training.data`) and :func:`without_tool_output` removes it (the
verifier reads only what the model wrote, :func:`model_text`). Pure text functions; nothing here runs code.

Tool output is never mistaken for model text, whatever it prints: code that prints a line of three
backticks would close the ```output block early and let the rest of its output (``\\boxed{42}``)
pass for the model's own words. :func:`fence_safe` indents every line of the output that could
close a fence (CommonMark: up to three spaces, then ````` or ``~~~``) by four spaces, so that neither
CommonMark nor :func:`tool_output_spans` reads it as a fence; :func:`output_block` applies it, and
:func:`without_tool_output` strips the recorded outputs themselves rather than re-parsing fences.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["OUTPUT_FENCE", "PYTHON_FENCE", "STOP_SEQUENCES", "fence_safe", "last_code_block", "model_text", "output_block",
           "split_at_output_fence", "tool_output_spans", "without_code", "without_tool_output"]

PYTHON_FENCE = "```python"
"""Opens a code block the model wants run."""

OUTPUT_FENCE = "```output"
"""Opens the block that holds the code's real output; the model writes it, the sandbox fills it."""

STOP_SEQUENCES = (OUTPUT_FENCE,)
"""Stop sequences of a generation round: the endpoint stops where the model asks for the output."""

# A closed ```python block: its body is group 1. The closing fence is ``` alone on its line.
_CODE_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)\n?[ \t]*```[ \t]*(?=\n|$)", re.DOTALL)

# The body of an ```output block (from the newline after the fence to the end of the closing fence and
# its newline): the span a tool wrote. An output block left open runs to the end of the text.
_OUTPUT_BODY = re.compile(r"```output[ \t]*(\n(?:.*?\n)?```[ \t]*(?:\n|\Z)|\n.*\Z|\Z)", re.DOTALL)

# A line that CommonMark could read as a fence: up to three spaces, then ``` or ~~~.
_FENCE_LINE = re.compile(r"^(?= {0,3}(?:```|~~~))", re.MULTILINE)


def fence_safe(output: str) -> str:
    """Tool output with every line that could close a fence (up to three spaces, then ````` or ``~~~``)
    indented by four spaces: inside an ```output block it is then plain text (CommonMark reads a
    fence only with at most three spaces before it). Idempotent; other lines are unchanged.

    Examples:
        >>> fence_safe("```\\n\\\\boxed{42}\\n")
        '    ```\\n\\\\boxed{42}\\n'
        >>> fence_safe("4\\n") == "4\\n"
        True
    """
    return _FENCE_LINE.sub("    ", output)


def last_code_block(text: str) -> str | None:
    """The body of the last closed ```python block of ``text`` (``None`` if there is none).

    Examples:
        >>> last_code_block("Compute:\\n```python\\nprint(2 + 2)\\n```\\n")
        'print(2 + 2)'
        >>> last_code_block("no code here") is None
        True
    """
    blocks = _CODE_BLOCK.findall(text)
    return blocks[-1] if blocks else None


def split_at_output_fence(text: str) -> tuple[str, bool]:
    """``text`` up to its first ```output fence, and whether it had one.

    An endpoint that ignores stop sequences lets the model write the output itself; what follows the
    fence is then invented and is dropped.

    Examples:
        >>> split_at_output_fence("```python\\nprint(1)\\n```\\n```output\\n7\\n```")
        ('```python\\nprint(1)\\n```\\n', True)
    """
    at = text.find(OUTPUT_FENCE)
    return (text, False) if at < 0 else (text[:at], True)


def output_block(output: str) -> str:
    """The ```output block that follows a code block: fence, the output (:func:`fence_safe`), closing
    fence, newline.

    Examples:
        >>> output_block("4\\n")
        '```output\\n4\\n```\\n'
        >>> output_block("```\\nhi")
        '```output\\n    ```\\nhi\\n```\\n'
    """
    return _block(fence_safe(output))


def _block(body: str) -> str:
    body = body if body.endswith("\n") or not body else body + "\n"
    return f"{OUTPUT_FENCE}\n{body}```\n"


def tool_output_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of the tool-written parts of ``text``: each ```output
    block's body, from the newline after its fence through its closing fence and newline.

    The fence itself is the model's (it is the model asking for the output), so it is outside the span.

    Examples:
        >>> t = "```python\\nprint(4)\\n```\\n```output\\n4\\n```\\nSo 4."
        >>> [t[s:e] for s, e in tool_output_spans(t)]
        ['\\n4\\n```\\n']
    """
    return [m.span(1) for m in _OUTPUT_BODY.finditer(text)]


def without_tool_output(text: str, outputs: Sequence[str] | None = None) -> str:
    """``text`` with every ```output block removed (fence included): what the model itself wrote.

    Args:
        text: an assistant message of the plain-text format.
        outputs: the recorded outputs the loop inserted, in order (the ``result`` of each ``format:
            "text"`` tool call). When given, each block is found as the exact text the loop wrote
            (:func:`output_block`, or the raw block of traces written before :func:`fence_safe`), so
            that nothing the code printed can end a block early; when a recorded output cannot be
            found, everything from the next ```output fence on is left out (what follows it cannot be
            told apart from tool output). Without ``outputs``, the blocks are found by their fences.

    Examples:
        >>> without_tool_output("```python\\nprint(4)\\n```\\n```output\\n\\\\boxed{4}\\n```\\nSo 4.")
        '```python\\nprint(4)\\n```\\nSo 4.'
        >>> without_tool_output("```output\\n```\\n\\\\boxed{42}\\n```\\nI give up.", ["```\\n\\\\boxed{42}"])
        'I give up.'
    """
    if outputs is None:
        return _OUTPUT_BODY.sub("", text).replace(OUTPUT_FENCE, "")
    kept, pos = [], 0
    for output in outputs:
        found = [(at, len(block)) for block in dict.fromkeys((output_block(output), _block(output)))
                 if (at := _find_block(text, block, pos)) >= 0]
        if not found:
            fence = text.find(OUTPUT_FENCE, pos)
            kept.append(text[pos:] if fence < 0 else text[pos:fence])
            pos = len(text)
            break
        at, length = min(found)
        kept.append(text[pos:at])
        pos = at + length
    kept.append(text[pos:])
    return without_tool_output("".join(kept))  # a fence the loop did not write: its block is left out too


def _find_block(text: str, block: str, start: int) -> int:
    """Where ``block`` starts in ``text`` at or after ``start`` (at the very end, its last newline may be missing)."""
    at = text.find(block, start)
    if at < 0 and text.endswith(block[:-1]) and len(text) - len(block) + 1 >= start:
        at = len(text) - len(block) + 1
    return at


def without_code(text: str) -> str:
    """``text`` without its closed ```python blocks: the code the model wrote is not a statement of
    its answer (``print("\\\\boxed{42}")`` states nothing).

    Examples:
        >>> without_code("Compute:\\n```python\\nprint('\\\\\\\\boxed{42}')\\n```\\nSo 42.")
        'Compute:\\n\\nSo 42.'
    """
    return _CODE_BLOCK.sub("", text)


def model_text(response: str, tool_calls: Sequence[Mapping[str, Any]] | None) -> str:
    """What the verifier reads of a solution attempt: the model's own statements.

    With Python in plain text (tool calls recorded with ``format: "text"``): the response without
    the ```output blocks the loop inserted (:func:`without_tool_output` with the recorded
    ``result`` of each call) and without the code blocks (:func:`without_code`). With tool calling,
    the response without any ```output block. Without tool calls, the response as it is.
    """
    calls = [c for c in tool_calls or [] if isinstance(c, Mapping)]
    if not calls:
        return response
    text_calls = [c for c in calls if c.get("format") == "text"]
    if not text_calls:
        return without_tool_output(response)
    return without_code(without_tool_output(response, [str(c.get("result") or "") for c in text_calls]))
