"""Verifiers: deterministic checks of model answers against reference answers.

Every check returns a :class:`Verdict` (``ok`` True/False/None, a reason code, an explanation that
never contains the reference answer, and :meth:`Verdict.evidence_for_critic`, what the Critic may
learn: the kind of error and the candidate side only). The pieces:

* :func:`find_final_answer` (``extract.py``): the last ``\\boxed{}``, else an "Answer:" line,
  else the last number of the concluding line; or why there is none (truncated, a loop, an empty
  last box).
* :func:`verify_answer` (``answer/``, one module per job): the checks, in-process: numeric
  (tolerances, percent, units converted with pint), multiple choice (letters, letter sets, option
  texts), symbolic LaTeX via sympy's ANTLR parser (simplify + random-point sampling; tuples,
  intervals, sets, equations), TheoremQA booleans and lists. The rules: ``docs/verifiers.md``.
* units (``units.py``): LaTeX/plain unit text -> pint units, conversion, dimension checks.
* math-verify as an ensemble fallback for symbolic forms we cannot parse (``mathverify_backend.py``).
* the registry (``registry.py``): verifiers by name, plugins through the ``scireflect.verifiers``
  entry point group, per-subject routing (:func:`build_verifier`).
* tool functions for agents (``calc.py``): a safe sympy calculator, a unit converter, an answer
  format check; wrapped as LangChain tools in :mod:`scireflect.agents.tools`.
* :class:`SandboxedAnswerVerifier` (``workers.py``): the :class:`AnswerVerifier` to use on model
  text: every check in a ``spawn``-ed ``pebble`` worker with a wall-clock and a memory limit, with
  a sync ``verify`` and an asyncio ``averify``.

Import as ``scireflect.verifiers``.
"""

from .answer import verify_answer
from .base import AnswerVerifier, Verdict, Verifier, averify_response, verify_response
from .extract import Extraction, NoFinalAnswer, extract_final_answer, find_final_answer
from .registry import (
    InProcessAnswerVerifier,
    SubjectRouter,
    UnknownVerifier,
    available_verifiers,
    build_verifier,
    get_verifier,
    register_verifier,
)
from .workers import SandboxedAnswerVerifier, SandboxedRunner
from .units import DimensionMismatch, UnitSpec, parse_unit

__all__ = [
    "AnswerVerifier",
    "DimensionMismatch",
    "Extraction",
    "InProcessAnswerVerifier",
    "NoFinalAnswer",
    "SandboxedAnswerVerifier",
    "SandboxedRunner",
    "SubjectRouter",
    "UnitSpec",
    "UnknownVerifier",
    "Verdict",
    "Verifier",
    "available_verifiers",
    "averify_response",
    "build_verifier",
    "extract_final_answer",
    "find_final_answer",
    "get_verifier",
    "parse_unit",
    "register_verifier",
    "verify_answer",
    "verify_response",
]
