"""Multiple choice, options-free first (issue 23, item 4): the rule that picks a question's path, the
mapping of a derived value to the options, and both paths through the annotation graph.

The rows are real MMLU and JEEBench questions, vendored with their ``source`` in
``tests/fixtures/verifier/multiple_choice.jsonl`` (licenses: that folder's README). The graph runs
with scripted chat models and the real answer verifier, in process (one test goes through the
sandboxed worker, to show that the question's path reaches it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from scireflect.agents.prompts import ANSWER_PROMPTS, OPTIONS_FREE_ASK, FigurePrompts, render_problem
from scireflect.agents.retry import RetryPolicy
from scireflect.agents.roles import AgentTeam
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import Budget, decide
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.nodes import SAMPLE_TEMPERATURE
from scireflect.graphs.state import initial_state, total_tokens
from scireflect.rundata.records import sft_pair, trace_record
from scireflect.verifiers.answer import verify_answer
from scireflect.verifiers.answer.options import (
    check_options_free,
    is_value_option,
    mc_path,
    options_free_stem,
    reference_option_text,
    refers_to_options,
    with_mc_path,
)
from scireflect.verifiers.base import critic_evidence
from tests.fakes import ScriptedChatModel

ROWS = {r["id"]: r for r in map(json.loads, (Path(__file__).parent / "fixtures/verifier/multiple_choice.jsonl").open())}
KSP = ROWS["mmlu-high_school_chemistry-test-051"]  # Fe(OH)3 solubility: A "8.8 × 10^-11 M"
CANNON = ROWS["mmlu-high_school_physics-test-081"]  # 5°, 41°, 45°, 49° (D)
MERCURY = ROWS["mmlu-high_school_physics-test-148"]  # "(1/25) AU" ... "(1/3) AU" (D); "approximate": k_sample
CAPACITOR = ROWS["mmlu-high_school_physics-test-000"]  # "0.005 C", "0.01 C", ...: two options equal by rounding
PLANCK = ROWS["jeebench-2016-p1-q01"]  # options written in the text, (B) 6.4 × 10^-34
HYDROCARBONS = ROWS["mmlu-high_school_chemistry-test-033"]  # options are statements (C)


# -- the rule ------------------------------------------------------------------------------------

EXPECTED_PATHS = {
    "mmlu-high_school_chemistry-test-051": "options_free",  # scientific notation with units
    "mmlu-high_school_mathematics-test-088": "options_free",  # plain numbers
    "mmlu-high_school_physics-test-081": "options_free",  # degrees
    "mmlu-high_school_mathematics-test-170": "options_free",  # complex numbers (expressions)
    "jeebench-2016-p1-q01": "options_free",  # options split off the question text
    "jeebench-2016-p2-q42": "options_free",  # equations of planes
    "mmlu-high_school_physics-test-148": "k_sample",  # "the approximate distance": nearest option, not an equal one
    "mmlu-high_school_chemistry-test-033": "k_sample",  # options are statements
    "mmlu-high_school_mathematics-test-041": "k_sample",  # "Which of the following must be a factor"
    "mmlu-high_school_physics-test-065": "k_sample",  # values, but "Which of the following measurements"
    "mmlu-high_school_physics-test-000": "k_sample",  # 0.005 C rounds to the option 0.01 C: two options equal
    "mmlu-high_school_chemistry-test-161": "k_sample",  # 1s, 2p, 3p, 3d: orbitals, not products (chemistry)
    "mmlu-high_school_mathematics-test-265": "k_sample",  # "Round your answer to the nearest dollar" options 16401/16400
    "mmlu-high_school_chemistry-test-008": "k_sample",  # "... except"
    "mmlu-high_school_physics-test-004": "k_sample",  # "I only", "II and III only"
    "jeebench-2020-p1-q38": "k_sample",  # "which of the following statements is TRUE"
    "jeebench-2017-p2-q03": "k_sample",  # options as $[\mathrm{A}]$: not split reliably
    "jeebench-2016-p1-q06": "k_sample",  # MCQ(multiple): several correct letters
}


@pytest.mark.parametrize("qid", sorted(EXPECTED_PATHS))
def test_the_rule_on_real_rows(qid):
    assert mc_path(ROWS[qid]) == EXPECTED_PATHS[qid]


def test_the_rule_leaves_other_questions_alone():
    assert mc_path({"id": "q", "question": "What is 6 x 7?", "answer": "42"}) is None
    assert mc_path({"id": "q", "question": "Is 7 prime?", "answer": "True", "answer_type": "bool"}) is None


def test_the_rule_needs_one_letter_and_distinct_options():
    q = {"question": "What is 6 x 7?", "choices": ["40", "42", "44", "48"], "answer": "B"}
    assert mc_path(q) == "options_free"
    assert mc_path({**q, "answer": "BD"}) == "k_sample"  # several correct letters
    assert mc_path({**q, "choices": ["42", "42.0", "44", "48"]}) == "k_sample"  # two options are one value
    assert mc_path({**q, "choices": ["0.5 kg", "500 g", "2 kg", "3 kg"]}) == "k_sample"  # one value in two units


@pytest.mark.parametrize("stem", [
    "Which of the following is a strong acid?", "All of the above", "none of the above is right",
    "Which statement is correct?", "I and II only", "All of these ions have the same charge except",
    "Which of these does NOT conduct?", "The speed is closest to", "approximately how long will it take?",
    "Which one is true?", "The fractional error is closest to",
])
def test_stems_that_refer_to_their_options(stem):
    assert refers_to_options(stem)


@pytest.mark.parametrize("stem", [
    "What is the molar solubility of this compound?", "A ball is thrown from 20 m above the ground. How long does it fall?",
    "For the following electrochemical cell at 298 K, the value of x is", "Find $p+q$.",
    "A wheel rotates about its axis at 3 rev/s. What is its angular speed?",
])
def test_stems_answerable_alone(stem):
    assert not refers_to_options(stem)


@pytest.mark.parametrize("option", ["8.8 × 10^-11 M", "41°", "(1/5) AU", "-2", "\\frac{1}{20}", "$6.4 \\times 10^{-34}$",
                                    "9.0 s", "4-4i", "(2, 2)", "2v", "$x+y-3 z=0$", "1 μm"])
def test_value_options(option):
    assert is_value_option(option)


@pytest.mark.parametrize("option", ["increasing mass of the compounds", "I and II only", "A", "CO2", "Fe", "0 or –1/3",
                                    "sin–1 (1/g)", "Zero", "3 apples"])
def test_options_that_are_not_values(option):
    assert not is_value_option(option)


def test_the_stem_without_options():
    assert options_free_stem(KSP) == KSP["question"]
    stem = options_free_stem(PLANCK)
    assert stem.endswith("found from such an experiment is") and "(A)" not in stem and "6.0 \\times" not in stem
    assert options_free_stem(ROWS["jeebench-2017-p2-q03"]) is None  # "[\mathrm{A}]": not split
    assert reference_option_text(PLANCK) == "$6.4 \\times 10^{-34}$" and reference_option_text(KSP) == "8.8 × 10^-11 M"


# -- the mapping -----------------------------------------------------------------------------------

def _mapped(answer: str, question: Mapping[str, Any]):
    return check_options_free(answer, question)


@pytest.mark.parametrize("answer", ["8.8 \\times 10^{-11} M", "8.79e-11 mol/L", "8.8 × 10^-11", "8.77 \\times 10^{-8}\\ \\mathrm{mM}"])
def test_a_value_in_other_units_and_notations_maps_to_the_correct_option(answer):
    v = _mapped(answer, KSP)
    assert v.ok is True and v.details["mapped_option"] == "A" and v.details["mc_path"] == "options_free"


def test_a_value_mapping_to_another_option_is_a_choice_mismatch():
    v = _mapped("2.0 \\times 10^{-10} M", KSP)
    assert (v.ok, v.reason, v.details["mapped_option"]) == (False, "choice_mismatch", "B")


def test_a_value_mapping_to_no_option_is_rejected_with_its_value():
    v = _mapped("42 kJ/mol", KSP)
    assert (v.ok, v.reason, v.explanation) == (False, "no_option", "no option equals 42 kJ/mol")
    v = _mapped("3.1 \\times 10^{-5} M", KSP)
    assert v.reason == "no_option" and "3.1" in v.explanation and "8.8" not in v.explanation


def test_degrees_and_radians_map_by_unit():
    assert _mapped("48.6^\\circ", CANNON).details["mapped_option"] == "D"
    assert _mapped("0.855 rad", CANNON).details["mapped_option"] == "D"
    assert _mapped("45°", CANNON).reason == "choice_mismatch"


def test_fractions_map_exactly():
    assert _mapped("\\frac{1}{3} AU", MERCURY).ok is True
    assert _mapped("0.2 AU", MERCURY).details["mapped_option"] == "C"  # 1/5: another option
    assert _mapped("0.342 AU", MERCURY).reason == "no_option"  # (1/5)^(2/3) is not 1/3 exactly


def test_a_value_equal_to_two_options_is_undecided():
    v = _mapped("0.005 C", CAPACITOR)
    assert v.ok is None and v.reason == "undecided" and v.details["mapped_options"] == ["A", "B"]


def test_options_written_in_the_question_text():
    assert _mapped("6.4 \\times 10^{-34}", PLANCK).details["mapped_option"] == "B"
    assert _mapped("6.4 \\times 10^{-34} J s", PLANCK).ok is True
    assert _mapped("6.6 \\times 10^{-34}", PLANCK).reason == "choice_mismatch"


def test_the_verifier_maps_only_questions_marked_options_free():
    marked = with_mc_path(KSP, "options_free")
    assert verify_answer("So \\boxed{8.79 \\times 10^{-11} M}", marked).ok is True
    assert verify_answer("The answer is \\boxed{A}", marked).reason == "no_option"  # a letter is not a value
    assert verify_answer("The answer is \\boxed{A}", KSP).ok is True  # unmarked: the letter check


def test_the_critic_hears_of_a_wrong_value_never_of_options():
    for answer in ("2.0 \\times 10^{-10} M", "42 kJ/mol"):
        evidence = critic_evidence(_mapped(answer, KSP).to_dict())
        assert "option" not in evidence.lower() and "The value of the answer is wrong." in evidence


def test_the_sandboxed_worker_receives_the_path():
    from scireflect.verifiers.workers import SandboxedAnswerVerifier

    with SandboxedAnswerVerifier(timeout_s=30) as verifier:
        v = verifier.verify("\\boxed{8.79 \\times 10^{-11} M}", with_mc_path(KSP, "options_free"))
    assert v.ok is True and v.details["mapped_option"] == "A", v


# -- prompts ---------------------------------------------------------------------------------------

OTHER_OPTIONS = ("2.0 × 10^-10", "7.4 × 10^-14", "9.4 × 10^-6")


def test_the_options_free_problem_has_no_options_nor_letters():
    text = render_problem(with_mc_path(KSP, "options_free"))
    assert text.startswith(KSP["question"]) and text.endswith(OPTIONS_FREE_ASK)
    assert not any(o in text for o in (*OTHER_OPTIONS, "8.8 × 10^-11")) and "(A)" not in text and "letter" not in text
    jee = render_problem(with_mc_path(PLANCK, "options_free"))
    assert "(A)" not in jee and "6.0 \\times 10^{-34}" not in jee
    assert "(A) 8.8 × 10^-11 M" in render_problem(KSP)  # unmarked: as before


def test_figure_prompts_keep_the_options_free_problem():
    question = {**with_mc_path(KSP, "options_free"), "images": [{"sha256": "0" * 64, "path": "fig.png"}],
                "caption": "A beaker of Fe(OH)3 at 25 °C."}
    template, variables = FigurePrompts(ANSWER_PROMPTS, mode="text").solve(question, "chemistry")
    assert variables["problem"].startswith(KSP["question"]) and "Figure caption: A beaker" in variables["problem"]
    assert not any(o in variables["problem"] for o in OTHER_OPTIONS)


# -- the graph -------------------------------------------------------------------------------------

class InProcessVerifier:
    name, version = "answer", "test"

    def verify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None):
        return verify_answer(response, question, finish_reason=finish_reason)


def team(solver: list, critic: list | None = None, reviser: list | None = None):
    models = {
        "solver": ScriptedChatModel(replies=list(solver), name_="solver-model"),
        "critic": ScriptedChatModel(replies=list(critic or []), name_="critic-model"),
        "reviser": ScriptedChatModel(replies=list(reviser or []), name_="reviser-model"),
    }
    agents = AgentTeam.from_models({r: (m, f"{r}-model") for r, m in models.items()}, retry=RetryPolicy(max_retries=0))
    return agents, models


async def run(question, agents, budget=Budget()):
    ctx = AnnotationContext(agents=agents, verify=verify_with(InProcessVerifier()), budget=budget)
    return await build_annotation_graph().ainvoke(initial_state(question, "chemistry"), context=ctx)


def _text(step) -> str:
    return "\n".join(m["content"] for m in step["messages"])


KSP_RIGHT = "1. Ksp = 27 s^4, so s = (Ksp/27)^(1/4).\n2. The molar solubility is \\boxed{8.8 \\times 10^{-11}\\ \\mathrm{M}}"
KSP_WRONG = "1. Ksp = s^2, so s = 4.0e-20.\n\\boxed{4.0 \\times 10^{-20} M}"


async def test_options_free_question_accepted_when_its_value_maps_to_the_correct_option():
    agents, models = team([KSP_RIGHT])
    state = await run(KSP, agents)
    assert state["status"] == "accepted" and state["mc_path"] == "options_free"
    [step] = state["steps"]
    assert step["verdict"]["details"]["mapped_option"] == "A" and step["verdict"]["checker"] == "options_free"
    prompt = _text(step)
    assert KSP["question"] in prompt and OPTIONS_FREE_ASK in prompt
    assert not any(o in prompt for o in (*OTHER_OPTIONS, "8.8 × 10^-11")) and "(A)" not in prompt
    assert trace_record(state, verifier="answer/test")["mc_path"] == "options_free"
    pair = sft_pair(trace_record(state, verifier="answer/test"))
    assert pair["prompt"] == render_problem(with_mc_path(KSP, "options_free")) and "(B)" not in pair["prompt"]
    assert pair["reference_answer"] == "8.8 × 10^-11 M"


async def test_options_free_loop_never_shows_options_and_rejects_the_right_letter():
    # the right letter without a value, a wrong option's value, no option, then the answer-guided revision
    agents, models = team(["The answer is \\boxed{A}"], ["c1", "c2"],
                          ["\\boxed{2.0 \\times 10^{-10} M}", "\\boxed{42 kJ/mol}", KSP_RIGHT])
    state = await run(KSP, agents, Budget(max_attempts=4, max_reflections=2))
    assert state["status"] == "accepted" and state["accepted_stage"] == "answer_guided"
    reasons = [s["verdict"]["reason"] for s in state["steps"] if s["kind"] == "solution"]
    assert reasons == ["no_option", "choice_mismatch", "no_option", "equal"]
    for step in state["steps"]:
        text = _text(step)
        assert not any(o in text for o in OTHER_OPTIONS) and "(A)" not in text and "Options:" not in text
        if step["role"] == "critic":
            assert "option" not in text.split("Answer checker's evidence:")[1].lower()
    guided = _text(state["steps"][-1])
    assert "The correct final answer is: 8.8 × 10^-11 M" in guided and "answer is: A" not in guided


HYDRO = "The melting point rises with the number of induced dipoles (London forces).\n\\boxed{C}"


async def test_k_sample_question_with_a_disagreeing_sample_is_not_accepted_at_that_attempt():
    agents, models = team([HYDRO, HYDRO, "Heavier molecules melt later.\n\\boxed{A}"], ["critique"], [HYDRO, HYDRO, HYDRO])
    state = await run(HYDROCARBONS, agents, Budget(mc_samples=3, max_reflections=2))
    assert state["mc_path"] == "k_sample"
    first, critique, revision = state["steps"]
    assert first["verdict"]["ok"] is False and first["verdict"]["reason"] == "sample_disagreement"
    assert first["verdict"]["details"]["letters"] == ["C", "C", "A"]
    assert first["verdict"]["details"]["first_verdict"]["ok"] is True
    assert [s["parsed_answer"] for s in first["samples"]] == ["C", "A"]
    assert [s["verdict"]["ok"] for s in first["samples"]] == [True, False]
    assert all(s["temperature"] == SAMPLE_TEMPERATURE and s["output_tokens"] > 0 for s in first["samples"])
    # the samples are the same prompt, at the sampling temperature
    assert models["solver"].calls[1] == models["solver"].calls[0] == models["solver"].calls[2]
    assert [o.get("temperature") for o in models["solver"].options] == [None, SAMPLE_TEMPERATURE, SAMPLE_TEMPERATURE]
    evidence = _text(critique).split("Answer checker's evidence:")[1]
    assert "(unconfirmed)" in evidence and "disagree" in evidence and "extracted final answer" not in evidence
    assert state["status"] == "accepted" and state["accepted_stage"] == "reflection"
    assert revision["verdict"]["ok"] is True and [s["parsed_answer"] for s in revision["samples"]] == ["C", "C"]
    own = sum(s["input_tokens"] + s["output_tokens"] for s in state["steps"])
    assert total_tokens(state["steps"]) == own + sum(x["input_tokens"] + x["output_tokens"]
                                                     for s in (first, revision) for x in s["samples"])
    record = trace_record(state, verifier="answer/test")
    assert record["mc_path"] == "k_sample" and record["steps"][0]["samples"] == first["samples"]
    # `scireflect traces show` and the viewer show the path and the samples
    from rich.console import Console

    from scireflect.cli.render import render_trace
    from scireflect.viewer.pages import question_html

    console = Console(width=200, record=True)
    console.print(render_trace(record))
    shown = console.export_text()
    assert "multiple choice  k_sample" in shown and "samples: C (ok), A (not ok)" in shown
    html = question_html(record)
    assert "<td>k_sample</td>" in html and 'independent samples: <ol><li class="ok">C</li><li class="bad">A</li></ol>' in html


async def test_k_sample_with_one_sample_accepts_the_attempt_alone():
    agents, models = team([HYDRO])
    state = await run(HYDROCARBONS, agents, Budget(mc_samples=1))
    assert state["status"] == "accepted" and "samples" not in state["steps"][0]


async def test_a_question_that_is_not_multiple_choice_records_no_path():
    agents, _ = team(["\\boxed{42}"])
    state = await run({"id": "q", "question": "What is 6 x 7?", "answer": "42"}, agents)
    assert state["status"] == "accepted" and state["mc_path"] is None
    assert trace_record(state, verifier="answer/test")["mc_path"] is None


def test_decide_routes_an_accepted_k_sample_attempt_to_confirm():
    ok = {"index": 0, "kind": "solution", "stage": "cot", "verdict": {"ok": True}}
    assert decide([ok], Budget(), "k_sample").route == "confirm"
    assert decide([ok], Budget(), "options_free").status == "accepted"
    assert decide([ok], Budget(mc_samples=1), "k_sample").status == "accepted"
    assert decide([{**ok, "samples": [{}, {}]}], Budget(), "k_sample").status == "accepted"
    assert decide([ok], Budget()).status == "accepted"


def test_budget_mc_samples():
    assert Budget.parse("mc_samples=5").mc_samples == 5 and Budget().mc_samples == 3
    with pytest.raises(ValueError, match="mc_samples must be >= 1"):
        Budget.parse("mc_samples=0")


def test_the_graph_has_the_confirm_loop():
    edges = {(e.source, e.target) for e in build_annotation_graph().get_graph().edges}
    assert {("verify", "confirm"), ("confirm", "critique"), ("confirm", "answer_guided"), ("confirm", "__end__")} <= edges


async def test_the_run_decides_the_path_in_a_sandboxed_worker():
    """Option texts come from an untrusted question file and the rule parses them with sympy: the runner
    decides the path in a killable worker, and a rule that fails or runs out of time gives the safe path."""
    from scireflect.graphs.context import choose_mc_path, mc_path_in
    from scireflect.verifiers.workers import SandboxedRunner

    with SandboxedRunner(timeout_s=10, workers=1) as runner:
        choose = mc_path_in(runner)
        assert await choose(KSP) == "options_free"
        assert await choose({"question": "Which of the following is prime?", "choices": ["4", "6", "7", "9"], "answer": "C"}) == "k_sample"

    class Stuck:
        async def arun(self, fn, *args):
            raise TimeoutError("the rule ran past its limit")

    assert await mc_path_in(Stuck())(KSP) == "k_sample"
    agents, _ = team([KSP_RIGHT])
    ctx = AnnotationContext(agents=agents, verify=verify_with(InProcessVerifier()), budget=Budget(max_attempts=1),
                            choose_mc_path=mc_path_in(Stuck()))
    assert await choose_mc_path(ctx, {"question": "What is 6 x 7?", "answer": "42"}) is None  # never reaches a worker
    state = await build_annotation_graph().ainvoke(initial_state(KSP, "chemistry"), context=ctx)
    assert state["mc_path"] == "k_sample" and "(B)" in _text(state["steps"][0])  # shown its options
