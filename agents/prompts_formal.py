"""Prompts of the formal-proof loop (Lean 4): Solver, Critic and Reviser for a given theorem statement.

Same roles as :mod:`scireflect.agents.prompts` (SciGLM's self-reflective annotation, arXiv
2401.07950), for SciInstruct's formal-proof subject:

* **Solver**: given the informal problem and the Lean 4 statement (ending ``:= by sorry``), sketches
  the argument and writes the full theorem with a proof in one final ```` ```lean ```` block.
* **Critic**: given the proof and the Lean checker's output (errors with line, column and goal
  state, ``sorry`` goals, integrity findings), names the first failing step and how to fix it.
* **Reviser**: rewrites the whole proof from the critique and the checker's output.

There is no answer-guided stage: miniF2F has no reference proof to show. The extraction rule is
fixed: the last complete ```` ```lean ```` block of the response. ``FORMAL_PROMPT_VERSION`` is recorded
in traces; bump it when a text changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.prompts import ChatPromptTemplate

from ..verifiers.lean.judge import lean_evidence
from .prompts import Prompt

FORMAL_PROMPT_VERSION = "2026-11-24.1"

_RULES = (
    "Rules for the proof:\n"
    "- Keep the theorem exactly as given: the same name, binders, hypotheses and conclusion. Only replace "
    "`sorry` by a proof.\n"
    "- Lean 4 and Mathlib syntax only (no Lean 3: use `fun x => ...`, `rcases`, `obtain`, `norm_num`, `linarith`, "
    "`nlinarith`, `omega`, `decide`, `simp`, `field_simp`, `ring_nf`, `positivity`, `interval_cases`).\n"
    "- Never use `sorry`, `admit`, `stop`, `native_decide`, `decide +native`, new `axiom`s, `implemented_by`, "
    "`#eval`, macros or notation: the checker rejects them.\n"
    "- Do not write import lines; the header below is already loaded. Helper lemmas before the theorem are allowed.\n"
    "- End the answer with exactly one ```lean code block holding the complete theorem with its proof."
)

FORMAL_SOLVER_SYSTEM = (
    "You are an expert in competition mathematics and in the Lean 4 theorem prover with Mathlib. You write "
    "proofs that Lean accepts.\n" + _RULES
)

FORMAL_CRITIC_SYSTEM = (
    "You are an expert reviewer of Lean 4 / Mathlib proofs. The Lean checker rejected the proof you are given; "
    "its output (errors with line and column numbers counted in the proof, the goal state at the error, "
    "integrity findings) is shown. Find the FIRST failing step: a tactic that does not close its goal, a wrong "
    "lemma name or argument order, a Lean 3 idiom, a type mismatch (ℕ subtraction or division, coercions), "
    "a changed statement, a forbidden construct. Quote the failing line, explain precisely why Lean rejects it "
    "using the goal state, and say how to fix it (which tactic or lemma to use instead). Be brief. Do not write "
    "the full corrected proof."
)

FORMAL_REVISER_SYSTEM = FORMAL_SOLVER_SYSTEM + (
    "\nYou are revising a proof that Lean rejected. Write the complete corrected theorem and proof, not only the fix."
)

FORMAL_SOLVER_USER = (
    "Problem (informal):\n{informal}\n\n"
    "Lean 4 header (already loaded):\n```lean\n{header}\n```\n\n"
    "Formal statement to prove:\n```lean\n{statement}\n```\n\n"
    "Sketch the mathematical argument in a few lines, then give the Lean proof."
)

FORMAL_CRITIC_USER = (
    "Problem (informal):\n{informal}\n\n"
    "Formal statement:\n```lean\n{statement}\n```\n\n"
    "Proof to review:\n```lean\n{proof}\n```\n\n"
    "Lean checker output:\n{evidence}\n\n"
    "Name the first failing step, explain why Lean rejects it, and say how to fix it."
)

FORMAL_REVISER_USER = (
    "Problem (informal):\n{informal}\n\n"
    "Lean 4 header (already loaded):\n```lean\n{header}\n```\n\n"
    "Formal statement to prove:\n```lean\n{statement}\n```\n\n"
    "Previous proof (rejected):\n```lean\n{proof}\n```\n\n"
    "Lean checker output:\n{evidence}\n\n"
    "Reviewer's critique:\n{critique}\n\n"
    "Write the corrected complete proof, ending with one ```lean block."
)

FORMAL_SOLVER_PROMPT = ChatPromptTemplate.from_messages([("system", FORMAL_SOLVER_SYSTEM), ("human", FORMAL_SOLVER_USER)])
FORMAL_CRITIC_PROMPT = ChatPromptTemplate.from_messages([("system", FORMAL_CRITIC_SYSTEM), ("human", FORMAL_CRITIC_USER)])
FORMAL_REVISER_PROMPT = ChatPromptTemplate.from_messages([("system", FORMAL_REVISER_SYSTEM), ("human", FORMAL_REVISER_USER)])


def render_formal_problem(question: Mapping[str, Any]) -> str:
    """The instruction of a formal-proof SFT pair: informal problem, header and statement.

    Shape: one string, the Solver's user message (so training data never depends on the stage that
    produced the proof).
    """
    return FORMAL_SOLVER_USER.format(**formal_prompt_variables(question))


def formal_prompt_variables(question: Mapping[str, Any]) -> dict[str, str]:
    """Template variables shared by the three roles: ``informal``, ``header``, ``statement``.

    ``informal`` falls back to a neutral line when the row has no informal statement.
    """
    return {
        "informal": str(question.get("question") or "(no informal statement; prove the formal statement)").strip(),
        "header": str(question.get("header") or "").strip(),
        "statement": str(question["statement"]).strip(),
    }


def _proof(attempt: Mapping[str, Any]) -> str:
    verdict = attempt.get("verdict") or {}
    return verdict.get("extracted") or "(no ```lean block found in the previous answer)"


class FormalPrompts:
    """:class:`~scireflect.agents.prompts.PromptSet` of formal proofs: the checker's output (errors
    with line, column and goal state; :func:`~scireflect.verifiers.lean.judge.lean_evidence`) is the
    Critic's and the Reviser's evidence. There is no answer-guided prompt (no reference proof)."""

    version = FORMAL_PROMPT_VERSION

    def problem(self, question: Mapping[str, Any]) -> str:
        return render_formal_problem(question)

    def solve(self, question: Mapping[str, Any], variant: str) -> Prompt:
        return FORMAL_SOLVER_PROMPT, formal_prompt_variables(question)

    def critique(self, question: Mapping[str, Any], variant: str, attempt: Mapping[str, Any],
                 failed: Sequence[str] = ()) -> Prompt:
        # ``failed`` (earlier wrong final answers) does not apply: a proof has no final answer
        return FORMAL_CRITIC_PROMPT, {**formal_prompt_variables(question), "proof": _proof(attempt),
                                      "evidence": lean_evidence(attempt.get("verdict") or {})}

    def revise(self, question: Mapping[str, Any], variant: str, attempt: Mapping[str, Any],
               critique: Mapping[str, Any], failed: Sequence[str] = ()) -> Prompt:
        return FORMAL_REVISER_PROMPT, {**formal_prompt_variables(question), "proof": _proof(attempt),
                                       "evidence": lean_evidence(attempt.get("verdict") or {}),
                                       "critique": critique["response"]}

    def resample(self, question: Mapping[str, Any], variant: str, failed: Sequence[str]) -> Prompt:
        """A fresh proof attempt: the Solver's prompt (a proof has no final answer to name as wrong)."""
        return self.solve(question, variant)

    def program(self, question: Mapping[str, Any], variant: str, failed: Sequence[str]) -> Prompt:
        raise NotImplementedError("formal proofs have no program strategy: a proof is Lean, not Python")

    def answer_guided(self, question: Mapping[str, Any], variant: str, attempt: Mapping[str, Any],
                      failed: Sequence[str] = ()) -> Prompt:
        raise NotImplementedError("formal proofs have no answer-guided stage: there is no reference proof")


FORMAL_PROMPTS = FormalPrompts()

__all__ = [
    "FORMAL_CRITIC_PROMPT", "FORMAL_PROMPTS", "FORMAL_PROMPT_VERSION", "FORMAL_REVISER_PROMPT", "FORMAL_SOLVER_PROMPT",
    "FormalPrompts", "formal_prompt_variables", "render_formal_problem",
]
