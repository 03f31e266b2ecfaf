"""The ``program`` strategy's prompt: program of thought (the strategy itself: :func:`scireflect.graphs.nodes.program`).

PoT (Chen et al. 2022, arXiv 2211.12588) and PAL (Gao et al. 2022, arXiv 2211.10435): the reply is a
program, its reasoning in comments; the sandbox runs it (:mod:`scireflect.agents.code_loop`) and the
model then states the printed result as its answer. Asked to mix prose and code (the Python-tool
prompts of :mod:`.prompts`), the 1.5B coder model wrote prose only (0 of 10 program attempts held code
in the reflection benchmark); asked for the program alone, it wrote code for 12 of those 12
questions, and 4 printed the reference. Recorded under :data:`~scireflect.agents.prompts.PROMPT_VERSION`.

Only the texts live here; :mod:`.prompts` puts them together with the rules every solver shares
(``SOLVER_PROGRAM_PROMPT``), so the import goes one way.
"""

from __future__ import annotations

_PROGRAM_RULES = (
    "Solve the problem by writing a Python program (program of thought). Write one ```python block: a "
    "short program whose comments explain each step of the reasoning, which computes every value in "
    "code (sympy, numpy, scipy and pint are installed), never by hand, and prints the final answer. "
    "Then write ```output on the next line and stop. The real output of the program is inserted after "
    "that line; you then continue from it. Never write an output yourself. If the program fails, fix "
    "it and run it again. After the output, round only the final answer, to the precision of the data. "
)

PROGRAM_SYSTEM_HEAD = (
    "You are an expert {subject_name} teacher who solves problems with short, correct Python programs.\n"
    "{advice}\n" + _PROGRAM_RULES
)
"""The system message of the ``program`` strategy, before the answer-form rules every solver shares."""

PROGRAM_ASK = "\n\nWrite the Python program that solves this problem and prints the final answer."

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

__all__ = ["PROGRAM_ASK", "PROGRAM_EXAMPLE_ASSISTANT", "PROGRAM_SYSTEM_HEAD"]
