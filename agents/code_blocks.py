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
verifier reads only what the model wrote). Pure text functions; nothing here runs code.
"""

from __future__ import annotations

import re

__all__ = ["OUTPUT_FENCE", "PYTHON_FENCE", "STOP_SEQUENCES", "last_code_block", "output_block", "split_at_output_fence",
           "tool_output_spans", "without_tool_output"]

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
    """The ```output block that follows a code block: fence, the output, closing fence, newline.

    Examples:
        >>> output_block("4\\n")
        '```output\\n4\\n```\\n'
    """
    body = output if output.endswith("\n") or not output else output + "\n"
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


def without_tool_output(text: str) -> str:
    """``text`` with every ```output block removed (fence included): what the model itself wrote.

    Examples:
        >>> without_tool_output("```python\\nprint(4)\\n```\\n```output\\n\\\\boxed{4}\\n```\\nSo 4.")
        '```python\\nprint(4)\\n```\\nSo 4.'
    """
    return _OUTPUT_BODY.sub("", text).replace(OUTPUT_FENCE, "")
