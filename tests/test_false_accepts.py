"""Three false-accept paths an outside check found (issue 23, item 6); each is a test.

- a reference of exactly 0 with a unit accepted ``3 \\times 10^{-4}`` through the measured-quantity
  rounding rule (zero is exact);
- with Python in plain text, code that prints a line of three backticks closed the ```output block
  early, and what it printed next (``\\boxed{42}``) was read as the model's own answer;
- "master key" replies (``:``, ``Thought process:``, an empty box, ...) that model judges accept
  (arXiv 2507.08794) must never be accepted by ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scireflect.agents import code_blocks as B
from scireflect.agents.code_loop import CodeExecution
from scireflect.agents.prompts import PYTHON_PROMPTS
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import Budget
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.state import initial_state
from scireflect.rundata.records import attempt_messages
from scireflect.sandbox import ExecutionResult
from scireflect.training.data import _response_pieces
from scireflect.verifiers import verify_answer
from scireflect.verifiers.answer.select import select_check
from scireflect.verifiers.registry import InProcessAnswerVerifier
from tests.test_python_tool import _team

# ------------------------------------------------------------------------------------ 6a: zero


@pytest.mark.parametrize("question", [
    {"answer": "0", "unit": "kg/s", "subject": "physics"},                      # SciBench: the unit field
    {"answer": "0 kg/s", "subject": "physics"},                                 # the unit written with the reference
    {"answer": "0.0", "unit": "kg/s", "subject": "physics", "source": "scibench"},
    {"answer": "0", "subject": "physics"},
])
def test_a_reference_of_zero_is_exact(question: dict) -> None:
    for wrong in ("3 \\times 10^{-4}", "3 \\times 10^{-4}\\ \\mathrm{kg/s}", "0.0003 kg/s", "0.04", "-0.3", "1"):
        v = verify_answer(f"The net flow is \\boxed{{{wrong}}}", question)
        assert v.ok is False and v.details["rule"] == "exact zero", (wrong, v)
    for right in ("0", "0.0 kg/s", "0\\ \\mathrm{g/s}", "0.00", "-0"):
        v = verify_answer(f"The net flow is \\boxed{{{right}}}", question)
        assert v.ok is True, (right, v)


def test_zero_is_exact_under_every_policy_but_a_fixed_tolerance_keeps_its_floor() -> None:
    q = {"answer": "0", "unit": "kg/s", "subject": "physics"}
    for policy in ("default", "sig_figs", "scibench"):
        assert verify_answer("\\boxed{3 \\times 10^{-4}}", q, tolerance=policy).ok is False
    assert verify_answer("\\boxed{0.4}", {"answer": "0.0", "subject": "physics", "unit": "m"}, tolerance="sig_figs").ok is False
    # a measured non-zero reference still rounds as before
    assert verify_answer("\\boxed{399.2}", {"answer": "399", "unit": "kJ/mol", "subject": "chemistry"}).ok is True


# ------------------------------------------------------------------------- 6b: tool output fences

QUESTION = {"id": "fence-1", "subject": "math", "question": "What is six times seven?", "answer": "42"}
# code that prints a line of three backticks and then a box (its stdout): the exact repro, the same
# without the box in its source, and a first line before the fence (which made the old fence parser
# close the block at the printed fence)
PRINTS_A_FENCE = [('print("```\\n\\\\boxed{42}")', "```\n\\boxed{42}\n"),
                  ("print(chr(96) * 3)\nprint(chr(92) + 'boxed{42}')", "```\n\\boxed{42}\n"),
                  ('print("6*7 =\\n```\\n\\\\boxed{42}")', "6*7 =\n```\n\\boxed{42}\n")]
GIVES_UP = "I am not able to finish this."


@pytest.mark.parametrize(("code", "stdout"), PRINTS_A_FENCE)
async def test_tool_output_never_counts_as_model_text(code: str, stdout: str, monkeypatch) -> None:
    async def fake_sandbox(source: str, limits=None) -> ExecutionResult:
        assert source == code
        return ExecutionResult(stdout=stdout, stderr="", exit_status=0, signal=None, duration_s=0.01)

    monkeypatch.setattr("scireflect.agents.code_loop.arun_python", fake_sandbox)
    team, _ = _team([f"Let me compute.\n```python\n{code}\n```\n```output\n", GIVES_UP])
    context = AnnotationContext(agents=team.with_code_execution(CodeExecution()), prompts=PYTHON_PROMPTS,
                                verify=verify_with(InProcessAnswerVerifier()), budget=Budget(max_attempts=1))
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "math"), context=context)
    [step] = state["steps"]
    assert state["status"] != "accepted" and step["verdict"]["ok"] is not True, step["verdict"]
    assert step["parsed_answer"] is None
    # the output's fence line is indented, so nothing it prints can close the block
    [call] = step["tool_calls"]
    assert call["result"] == B.fence_safe(stdout.rstrip("\n")) and "\n    ```\n" in "\n" + call["result"] + "\n"
    assert step["response"].endswith("```\n" + GIVES_UP)
    assert B.model_text(step["response"], step["tool_calls"]) == "Let me compute.\n\n" + GIVES_UP
    # training: the block's body is masked whole; the model's own text is trained
    message = attempt_messages("What is six times seven?", step)[-1]["content"]
    trained = "".join(piece for piece, keep in _response_pieces(message) if keep)
    untrained = "".join(piece for piece, keep in _response_pieces(message) if not keep)
    assert "\n\\boxed{42}" in untrained and "\n\\boxed{42}" not in trained and trained.endswith(GIVES_UP)


def test_the_recorded_outputs_are_stripped_even_from_traces_written_before_the_fix() -> None:
    code = "```python\nprint('6*7 =')\nprint(chr(96) * 3)\n```\n"
    printed = "6*7 =\n```\n\\boxed{42}"
    old = code + "```output\n" + printed + "\n```\n" + GIVES_UP  # the block as the loop wrote it before
    assert "\\boxed{42}" in B.without_tool_output(old)  # re-parsing fences is fooled ...
    assert B.without_tool_output(old, [printed]) == code + GIVES_UP  # ... the recorded output is not
    assert B.model_text(old, [{"format": "text", "result": printed}]) == "\n" + GIVES_UP
    assert verify_answer(B.model_text(old, [{"format": "text", "result": printed}]), {"answer": "42"}).ok is not True
    # a recorded output that is not where it should be: nothing after the next fence counts
    assert B.without_tool_output(old, ["something else"]) == code
    # the model's answer after a well-formed block is kept
    fine = code + B.output_block("42") + "So \\boxed{42}."
    assert B.model_text(fine, [{"format": "text", "result": "42"}]) == "\nSo \\boxed{42}."
    assert verify_answer(B.model_text(fine, [{"format": "text", "result": "42"}]), {"answer": "42"}).ok is True


def test_fence_safe_is_idempotent_and_leaves_other_lines_alone() -> None:
    out = "a\n```\n   ~~~x\n    ```\nb"
    safe = B.fence_safe(out)
    assert safe == "a\n    ```\n       ~~~x\n    ```\nb" and B.fence_safe(safe) == safe
    block = B.output_block(out)
    [(s, e)] = B.tool_output_spans(block + "after")
    assert (block + "after")[e:] == "after"


# ------------------------------------------------------------------------------- 6c: master keys

ROWS = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "verifier" / "pairs.jsonl").read_text().splitlines()
        if line.strip()]
QUESTIONS = list({json.dumps(r["question"], sort_keys=True): r["question"] for r in ROWS}.values()) + [
    {"answer": "0"}, {"answer": "0", "unit": "m", "subject": "physics"}, {"answer": "A"}, {"answer": "True"},
    {"answer": "A", "choices": ["0", "1", "2", "3"]}, {"answer": "1"}, {"answer": "[0, 0]", "answer_type": "list of integer"},
]
MASTER_KEYS = [":", "Thought process:", "Let me solve this step by step.", "\\boxed{}", "",
               " : ", ":\n", "\n\nThought process:\n", "  Let me solve this step by step.  \n", "$\\boxed{}$", "\\boxed{ }",
               " ", "\n", "\t", "Answer:", "Solution", "**Final Answer**", "解：", "Thought process: \\boxed{}",
               "Step 1:", "**Step 1:**", "Case 0:", "Part (A):"]


def test_the_rows_cover_every_kind_of_reference() -> None:
    assert {select_check(q) for q in QUESTIONS} == {"numeric", "symbolic", "choice", "boolean", "list"}


@pytest.mark.parametrize("key", MASTER_KEYS, ids=repr)
def test_master_keys_are_never_accepted(key: str) -> None:
    for question in QUESTIONS:
        for finish_reason in (None, "stop"):
            v = verify_answer(key, question, finish_reason=finish_reason)
            assert v.ok is not True, (key, question, v)
