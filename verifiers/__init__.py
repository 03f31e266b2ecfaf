"""Verifiers: deterministic checks of model answers against reference answers.

Every check returns a :class:`Verdict` (``ok`` True/False/None, a reason code, an explanation that
is safe to show to the Critic because it never contains the reference answer). The pieces:

* :func:`extract_final_answer` (``extract.py``): the last ``\\boxed{}``, else an "Answer:" line,
  else the last number of a model response.
* :func:`verify_answer` (``answer.py``): the checks, in-process: numeric (tolerances, percent,
  units ignored), multiple choice (letters, letter sets, option texts), symbolic LaTeX via sympy's
  ANTLR parser (simplify + random-point sampling; tuples, intervals, sets, equations), TheoremQA
  booleans and lists. The documented rules are in the docstring of ``answer.py``.
* :class:`SandboxedAnswerVerifier` (``sandbox.py``): the :class:`AnswerVerifier` to use on model
  text: every check in a ``spawn``-ed ``pebble`` worker with a wall-clock and a memory limit, with
  a sync ``verify`` and an asyncio ``averify``.

Import as ``scireflect.verifiers``.
"""

from .answer import verify_answer
from .base import AnswerVerifier, Verdict
from .extract import Extraction, extract_final_answer
from .sandbox import SandboxedAnswerVerifier

__all__ = [
    "AnswerVerifier",
    "Extraction",
    "SandboxedAnswerVerifier",
    "Verdict",
    "extract_final_answer",
    "verify_answer",
]
