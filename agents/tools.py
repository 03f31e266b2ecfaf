"""LangChain tools: a sympy calculator, a unit converter, an answer format check, and Python in a sandbox.

Opt-in, by name (``scireflect annotate --tools python,calculator``; :data:`TOOL_NAMES`, :func:`tools_named`):
small local models call tools poorly. ``python`` runs the model's program in the code sandbox
(:mod:`scireflect.sandbox`: bubblewrap, seccomp, rlimits) and is offered only where that sandbox
starts; it returns what the program printed and keeps the whole execution (exit status, stderr,
killed reason, time) as the tool message's artifact, which the agent records in the trace.
The other tools run their function from :mod:`scireflect.verifiers.calc` in a killable worker process
(:class:`~scireflect.verifiers.workers.SandboxedRunner`: ``TOOL_TIMEOUT_S`` seconds wall clock,
``TOOL_MEMORY_MB`` MiB), so a sympy bomb in a tool call times out instead of stalling the run. No
tool evaluates model text as code, and the answer check never sees the reference answer (it
reports how the verifier will read the answer: extracted text, parsed form, unit and dimension).

Tool errors are returned to the model as text (``"error: ..."``) rather than raised, and recorded
in the trace's ``tool_calls`` (name, args, result, error).
"""

from __future__ import annotations

import atexit
import json
import threading
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, tool

from ..verifiers import calc
from ..verifiers.workers import SandboxedRunner
from .code_loop import CodeExecution, execute_code

__all__ = ["BASIC_TOOLS", "PYTHON_DESCRIPTION", "TOOL_MEMORY_MB", "TOOL_NAMES", "TOOL_TIMEOUT_S", "answer_format_check", "calculator", "default_tools",
           "parse_tool_names", "python", "python_tool", "set_runner", "tools_named", "unit_converter"]

TOOL_TIMEOUT_S = 10.0
TOOL_MEMORY_MB = 1024

_runner: SandboxedRunner | None = None
_runner_lock = threading.Lock()


def _get_runner() -> SandboxedRunner:
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = SandboxedRunner(timeout_s=TOOL_TIMEOUT_S, memory_mb=TOOL_MEMORY_MB, workers=1)
            atexit.register(_runner.close)
        return _runner


def set_runner(runner: SandboxedRunner | None) -> SandboxedRunner | None:
    """Replace the shared sandbox (e.g. with a shorter timeout in tests); returns the previous one."""
    global _runner
    with _runner_lock:
        old, _runner = _runner, runner
    return old


async def _run(fn, *args: Any) -> str:
    try:
        result = await _get_runner().arun(fn, *args)
    except TimeoutError:
        return f"error: timeout (the computation ran past {_get_runner().timeout_s:g} s and was stopped)"
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the model as text
        return f"error: {type(exc).__name__}: {exc}"[:500]
    return json.dumps(result, ensure_ascii=False)


@tool
async def calculator(expression: str) -> str:
    """Evaluate a math expression exactly and numerically with sympy.

    Accepts plain text (2*(3+4)^2, sqrt(2)/2, sin(pi/6), 5!, (x+1)^2 - x^2) or LaTeX (\\frac{1}{3}+\\frac{1}{6}).
    Returns JSON with the simplified exact result and a 15-digit value.
    """
    return await _run(calc.calculate, expression)


@tool
async def unit_converter(value: str, from_unit: str, to_unit: str) -> str:
    """Convert a number between units (pint), e.g. value="5.137e6", from_unit="Pa", to_unit="atm".

    Units may be plain (kJ/mol, m/s^2, degC) or LaTeX (\\mathrm{kJ}\\,\\mathrm{mol}^{-1}).
    Units of different dimensions give an error naming both dimensions.
    """
    return await _run(calc.convert_units, value, from_unit, to_unit)


@tool
async def answer_format_check(answer: str, unit: str = "") -> str:
    """Check how the grader will read your final answer (no reference answer is used).

    Give the final answer (e.g. \\boxed{50.7\\ \\mathrm{atm}}) and optionally the unit the question asks for.
    Returns JSON: the extracted answer, its parsed value or expression, its unit and dimension, and
    whether the unit has the requested dimension.
    """
    return await _run(calc.check_answer_format, answer, unit or None)


PYTHON_DESCRIPTION = (
    "Run a Python 3 program and return what it prints (stdout; the error's last lines if it fails). "
    "Use it for arithmetic, unit conversions and solving equations: sympy, numpy, scipy and pint are "
    "installed. Print every value you need, e.g. print(10.0 * 0.08206 * 300.15 / 4.860). Each call is a "
    "fresh program (nothing is kept between calls), with no files and no network."
)


def python_tool(settings: CodeExecution | None = None) -> BaseTool:
    """The ``python`` tool: runs ``code`` in a fresh sandbox with ``settings.limits``; the model gets
    :func:`~scireflect.agents.code_loop.feedback`, the artifact is ``{"error", "execution"}``."""
    settings = settings or CodeExecution()

    async def run(code: str) -> tuple[str, dict[str, Any]]:
        shown, error, execution = await execute_code(code, settings)
        return shown, {"error": error, "execution": execution}

    return StructuredTool.from_function(coroutine=run, name="python", description=PYTHON_DESCRIPTION,
                                        response_format="content_and_artifact")


python = python_tool()
"""The ``python`` tool with the default limits (:data:`~scireflect.agents.code_loop.CODE_LIMITS`)."""


BASIC_TOOLS = ("calculator", "unit_converter", "answer_format_check")
"""The tools of the old ``--tools`` switch (and of ``--tools basic``): the Solver and the Critic get them."""

TOOL_NAMES = (*BASIC_TOOLS, "python")
"""Every tool by name; ``--tools all`` is all of them, ``--tools none`` none."""

_TOOLS: dict[str, BaseTool] = {"calculator": calculator, "unit_converter": unit_converter,
                               "answer_format_check": answer_format_check, "python": python}


def parse_tool_names(spec: str | bool | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Tool names from ``"python,calculator"``, a list of names, ``"all"``, ``"basic"``, ``"none"``, or a
    boolean (the old switch: ``True`` is ``basic``, ``False`` none). Order of :data:`TOOL_NAMES`.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if spec is None or spec is False:
        return ()
    if spec is True:
        return BASIC_TOOLS
    items = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else spec)]
    names: set[str] = set()
    for item in filter(None, items):
        if item == "all":
            names.update(TOOL_NAMES)
        elif item == "basic":
            names.update(BASIC_TOOLS)
        elif item in _TOOLS:
            names.add(item)
        elif item != "none":
            raise ValueError(f"unknown tool '{item}'; known: {', '.join(TOOL_NAMES)}, or all, basic, none")
    return tuple(n for n in TOOL_NAMES if n in names)


def tools_named(names: tuple[str, ...] | list[str], code: CodeExecution | None = None) -> list[BaseTool]:
    """The LangChain tools of ``names`` (see :data:`TOOL_NAMES`), in that order; ``python`` runs with
    the limits of ``code`` when given."""
    return [python_tool(code) if n == "python" and code is not None else _TOOLS[n] for n in names]


def default_tools() -> list[BaseTool]:
    """The basic tools given to the Solver and the Critic: calculator, unit_converter, answer_format_check."""
    return tools_named(BASIC_TOOLS)
