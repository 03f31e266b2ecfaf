"""LangChain tools for the Solver and the Critic: a sympy calculator, a unit converter, an answer format check.

Opt-in (``build_annotation_graph(..., tools=True)``): small local models call tools poorly. Each tool
runs its function from :mod:`scireflect.verifiers.calc` in a killable worker process
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

from langchain_core.tools import BaseTool, tool

from ..verifiers import calc
from ..verifiers.workers import SandboxedRunner

__all__ = ["TOOL_MEMORY_MB", "TOOL_TIMEOUT_S", "answer_format_check", "calculator", "default_tools", "set_runner", "unit_converter"]

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


def default_tools() -> list[BaseTool]:
    """The tools given to the Solver and the Critic: calculator, unit_converter, answer_format_check."""
    return [calculator, unit_converter, answer_format_check]
