"""Tool-integrated reasoning in plain text: run the model's ```python blocks in the sandbox, give it the output.

One agent call becomes a few generation rounds of the same assistant message (ToRA, Gou et al. 2023,
arXiv 2309.17452; PAL, Gao et al. 2022; the format is in :mod:`scireflect.agents.code_blocks`):

1. generate with the stop sequence ``"```output"``: the model writes prose and a ```python block,
   then asks for the output and the endpoint stops;
2. run the block in the sandbox (:func:`scireflect.sandbox.arun_python`: bubblewrap, seccomp, rlimits;
   never anywhere else), append ```output + the real output + ``` to the message;
3. continue the same assistant message (the partial message is sent as the last, assistant, message:
   llama.cpp continues it in place; servers that open a new assistant turn instead still see it),
   until the model answers, or ``max_executions`` blocks have run.

Each execution is recorded like a tool call (``round``, ``id``, ``name="python"``, ``format="text"``,
``args={"code"}``, ``result`` = what the model was shown (:func:`~.code_blocks.fence_safe`), ``error``, ``execution`` =
:meth:`ExecutionResult.to_dict`), so a trace keeps the code, stdout/stderr, exit status, killed reason
and time of each. The verifier still decides; the output only informs the model.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from ..sandbox import ExecutionResult, SandboxLimits, SandboxUnavailable, arun_python
from .code_blocks import STOP_SEQUENCES, fence_safe, last_code_block, output_block, split_at_output_fence

__all__ = ["CODE_LIMITS", "CodeExecution", "CodeTurn", "execute_code", "feedback", "generate_with_code"]

CODE_LIMITS = SandboxLimits(wall_s=20.0, cpu_s=15, max_output_bytes=200_000)
"""Limits of one execution of model code: importing scipy and pint takes 1-3 s on a loaded machine,
a numeric solve well under a second; output past 200 kB is cut (the model is shown far less).
Memory is the default: 512 MiB per process, 3 processes, at most 2 GiB for the whole sandbox."""


@dataclass(frozen=True)
class CodeExecution:
    """Settings of the plain-text tool loop.

    Attributes:
        max_executions: code blocks run per agent call (more requests are answered with a note and
            the model must finish without code).
        limits: sandbox limits of each execution (:class:`~scireflect.sandbox.SandboxLimits`).
        output_chars: characters of output shown to the model per execution (head and tail kept).
    """

    max_executions: int = 4
    limits: SandboxLimits = CODE_LIMITS
    output_chars: int = 2000

    @classmethod
    def with_timeout(cls, max_executions: int, timeout_s: float) -> CodeExecution:
        """Settings whose executions have ``timeout_s`` of wall clock and three quarters of it (at
        least 1 s) of CPU time, the other limits as in :data:`CODE_LIMITS`."""
        limits = replace(CODE_LIMITS, wall_s=float(timeout_s), cpu_s=max(1, int(timeout_s * 0.75)))
        return cls(max_executions=max_executions, limits=limits)

    def __post_init__(self) -> None:
        if self.max_executions < 1:
            raise ValueError("max_executions must be >= 1")
        if self.output_chars < 100:
            raise ValueError("output_chars must be >= 100")


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3):]
    return f"{head}\n... [{len(text) - len(head) - len(tail)} characters left out] ...\n{tail}"


def feedback(result: ExecutionResult, output_chars: int = 2000) -> tuple[str, str | None]:
    """What the model is shown of one execution, and the execution's error in one line (``None`` if it ran cleanly).

    Shown: stdout; for a failed run the end of stderr (the traceback's last lines) and why it was
    stopped; ``(no output: print the values you need)`` for a clean run that printed nothing. At most
    ``output_chars`` characters (the head and the tail of longer output).
    """
    error = None
    if result.killed_reason:
        error = f"killed: {result.killed_reason}"
    elif result.exit_status not in (0, None):
        last = [line for line in result.stderr.strip().splitlines() if line.strip()]
        error = last[-1].strip()[:300] if last else f"exit status {result.exit_status}"
    elif result.signal:
        error = f"signal {result.signal}"
    parts = [result.stdout.rstrip("\n")] if result.stdout.strip() else []
    if error and result.stderr.strip():
        parts.append(_clip(result.stderr.strip(), output_chars // 2))
    if error and error.startswith("killed:"):
        parts.append(f"[{error}]")
    if not parts:
        parts.append("(no output: print the values you need)")
    return _clip("\n".join(parts), output_chars), error


async def execute_code(code: str, settings: CodeExecution) -> tuple[str, str | None, dict[str, Any] | None]:
    """Run ``code`` in a fresh sandbox: ``(shown to the model, error or None, ExecutionResult.to_dict() or None)``.

    Never runs the code outside the sandbox: when the sandbox cannot start, the model is told so and
    the result is ``None``.
    """
    try:
        result = await arun_python(code, limits=settings.limits)
    except SandboxUnavailable as exc:
        error = f"sandbox unavailable: {exc}"
        return f"error: the code was not run ({error})", error, None
    shown, error = feedback(result, settings.output_chars)
    return shown, error, result.to_dict()


CallFn = Callable[[list[BaseMessage], Any, Any], Awaitable[tuple[Any, float, list[dict[str, Any]]]]]
"""``await call(messages, llm, progress) -> (response, seconds, failures)``: one streamed model call with
retries (:meth:`scireflect.agents.roles.Agent._call_with_retries`)."""


@dataclass
class CodeTurn:
    """One agent call of the loop: the whole assistant message and what it cost.

    ``input_tokens``/``output_tokens`` are totals over every round (each round's prompt includes the
    message so far); ``tokens_estimated`` is set when a round's endpoint reported no usage (4
    characters a token). ``response`` is the last round's reply (its finish reason and model name).
    """

    response: Any
    text: str
    latency_s: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_estimated: bool = False


def _content(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                   if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))


def _wants_output(new: str, fenced: bool, finish_reason: str | None) -> str | None:
    """The code block a round asks to run, or ``None``: the round's last closed ```python block,
    when the round stopped at (or wrote) the output fence, or ended without a final answer after it."""
    if finish_reason == "length":
        return None
    code = last_code_block(new)
    if code is None or not code.strip():
        return None
    after = new[new.rfind("```") + 3:]
    return code if fenced or "\\boxed" not in after else None


async def generate_with_code(call: CallFn, llm: Any, messages: list[BaseMessage], progress: Any,
                             settings: CodeExecution) -> CodeTurn:
    """Generate one assistant message, running its code blocks in the sandbox as it goes.

    Args:
        call: one model call with retries (see :data:`CallFn`).
        llm: the chat model; each round is ``llm.bind(stop=["```output"], max_tokens=left)`` where
            ``left`` is what the model's ``max_tokens`` leaves after the earlier rounds (so a call
            writes no more than without the tool).
        messages: the prompt (system and user messages).
        progress: the call's :class:`~scireflect.agents.roles.CallProgress`; ``prefix``,
            ``prefix_tokens`` and ``tool_calls`` are kept up to date so that a call cut by the time
            budget keeps its text and executions.
        settings: :class:`CodeExecution`.

    Returns:
        A :class:`CodeTurn` whose ``text`` interleaves the model's rounds and the ```output blocks.

    Raises:
        whatever ``call`` raises (transport faults after retries, refused requests).
    """
    turn = CodeTurn(response=None, text="")
    max_tokens = getattr(llm, "max_tokens", None)
    executions = 0
    rounds = settings.max_executions + 2  # each execution, one request past the limit (answered with a note), the answer
    for round_no in range(rounds):
        kwargs: dict[str, Any] = {"stop": list(STOP_SEQUENCES)}
        if isinstance(max_tokens, int):
            kwargs["max_tokens"] = max_tokens - turn.output_tokens
            if kwargs["max_tokens"] < 1:
                break
        convo = [*messages, AIMessage(content=turn.text)] if turn.text else messages
        progress.prefix, progress.prefix_tokens = turn.text, turn.output_tokens
        response, seconds, failures = await call(convo, llm.bind(**kwargs), progress)
        turn.response, turn.latency_s, turn.failures = response, turn.latency_s + seconds, turn.failures + failures
        new = _content(response)
        usage = getattr(response, "usage_metadata", None) or {}
        turn.tokens_estimated = turn.tokens_estimated or not usage
        turn.input_tokens += int(usage.get("input_tokens", 0)) if usage else sum(len(_content(m)) for m in convo) // 4
        turn.output_tokens += int(usage.get("output_tokens", 0)) if usage else max(progress.tokens, len(new) // 4)
        if turn.text and new.startswith(turn.text):  # llama.cpp echoes the message it was asked to continue
            new = new[len(turn.text):]
        new, fenced = split_at_output_fence(new)
        turn.text += new
        finish = (getattr(response, "response_metadata", None) or {}).get("finish_reason")
        code = _wants_output(new, fenced, finish)
        if code is None or round_no == rounds - 1:
            break
        if executions >= settings.max_executions:
            shown, error, execution = (f"not run: the limit of {settings.max_executions} executions per answer is reached; "
                                       "finish the solution without code"), "execution limit reached", None
        else:
            executions += 1
            started = time.perf_counter()
            shown, error, execution = await execute_code(code, settings)
            turn.latency_s += time.perf_counter() - started
        if not turn.text.endswith("\n"):
            turn.text += "\n"
        shown = fence_safe(shown)  # a line of backticks it printed must not close the block: the rest would pass for model text
        turn.text += output_block(shown)
        record = {"round": len(turn.tool_calls) + 1, "id": f"python-{len(turn.tool_calls) + 1}", "name": "python",
                  "format": "text", "args": {"code": code}, "result": shown, "error": error, "execution": execution}
        turn.tool_calls.append(record)
        progress.tool_calls = list(turn.tool_calls)
        progress.report("tool", {"name": "python", "round": record["round"], "error": error,
                                 "seconds": (execution or {}).get("duration_s")})
    progress.prefix, progress.prefix_tokens = "", 0
    return turn
