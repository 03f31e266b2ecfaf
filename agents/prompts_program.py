"""The ``program`` strategy's prompt: program of thought (the strategy itself: :func:`scireflect.graphs.nodes.program`).

PoT (Chen et al. 2022, arXiv 2211.12588) and PAL (Gao et al. 2022, arXiv 2211.10435): the reply is a
program, its reasoning in comments; the sandbox runs it (:mod:`scireflect.agents.code_loop`) and the
model then states the printed result as its answer. Asked to mix prose and code (the Python-tool
prompts of :mod:`.prompts`), the 1.5B coder model wrote prose only (0 of 10 program attempts held code
in the reflection benchmark); asked for the program alone, it wrote code for 12 of those 12
questions, and 4 printed the reference. Recorded under :data:`~scireflect.agents.prompts.PROMPT_VERSION`.
"""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate

from .prompts import _ANSWER_FORM, PYTHON_EXAMPLE_USER, SOLVER_USER

_PROGRAM_RULES = (
    "Solve the problem by writing a Python program (program of thought). Write one ```python block: a "
    "short program whose comments explain each step of the reasoning, which computes every value in "
    "code (sympy, numpy, scipy and pint are installed), never by hand, and prints the final answer. "
    "Then write ```output on the next line and stop. The real output of the program is inserted after "
    "that line; you then continue from it. Never write an output yourself. If the program fails, fix "
    "it and run it again. After the output, round only the final answer, to the precision of the data. "
)

SOLVER_PROGRAM_SYSTEM = (
    "You are an expert {subject_name} teacher who solves problems with short, correct Python programs.\n"
    "{advice}\n" + _PROGRAM_RULES + _ANSWER_FORM
)

_PROGRAM_ASK = "\n\nWrite the Python program that solves this problem and prints the final answer."

PROGRAM_EXAMPLE_ASSISTANT = (
    "```python\n"
    "# Uniform acceleration from rest: the distance is the average speed times the time.\n"
    "v = 27.0  # final speed, m/s\n"
    "t = 9.00  # time, s\n"
    "d = (0 + v) / 2 * t  # distance, m\n"
    "print(d)\n```\n"
    "```output\n121.5\n```\n"
    "The car travels 121.5 m, which is 122 m to the three significant figures of the data.\n\n"
    "\\boxed{{122}}"
)

SOLVER_PROGRAM_PROMPT = ChatPromptTemplate.from_messages([
    ("system", SOLVER_PROGRAM_SYSTEM), ("human", PYTHON_EXAMPLE_USER + _PROGRAM_ASK), ("ai", PROGRAM_EXAMPLE_ASSISTANT),
    ("human", SOLVER_USER + _PROGRAM_ASK)])
"""The ``program`` strategy's prompt (:meth:`AnswerPrompts.program`): one worked example as a previous turn."""


__all__ = ["PROGRAM_EXAMPLE_ASSISTANT", "SOLVER_PROGRAM_PROMPT", "SOLVER_PROGRAM_SYSTEM"]
