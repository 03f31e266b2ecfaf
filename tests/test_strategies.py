"""Attempt strategies as data (issue 24): the budget's order, ``decide`` on repeated answers, the
``resample`` node, the Critic's earlier failed answers, and the answer-guided prompt that derives.

Graph tests use the scripted chat model and the exact-``\\boxed{}`` verifier of ``test_graph``; the
repeat check through the real verifier (``0.5`` repeats ``1/2``) uses the answer verifier in-process.
"""

from __future__ import annotations

import json

import pytest

from scireflect.agents.code_loop import CodeExecution
from scireflect.agents.prompts import ANSWER_PROMPTS
from scireflect.filtering.leakage import leakage_flags
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import DEFAULT_ORDER, Budget, decide
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.formal import formal_context
from scireflect.graphs.nodes import failed_answers, repeated_attempt, strategy_of
from scireflect.graphs.state import initial_state
from scireflect.verifiers.base import failed_answers_evidence, wrong_answer
from scireflect.rundata.jsonl import read_jsonl
from scireflect.sandbox import sandbox_available
from scireflect.verifiers.registry import InProcessAnswerVerifier
from tests.test_graph import CRITIQUE, QUESTION, RIGHT, WRONG, ExactBoxedVerifier, context, run, team

WRONG_145 = WRONG.replace("144", "145")


def attempt(n: int, ok: bool | None = False, *, answer: str = "144", stage: str = "cot", repeated: int | None = None,
            reason: str = "numeric_mismatch", **extra) -> dict:
    return {"index": n, "attempt": n + 1, "kind": "solution", "stage": stage, "input_tokens": 1, "output_tokens": 1,
            "latency_s": 0.1, "repeated": repeated,
            "verdict": {"ok": ok, "reason": "equal" if ok else reason, "extracted": answer}, **extra}


# -- the budget's order ---------------------------------------------------------------------------

def test_default_order_is_the_benchmarks_pick_and_explicit_orders_parse():
    assert Budget().order == DEFAULT_ORDER == ("cot", "program", "resample", "answer_guided")
    assert not Budget().reflection_loop
    # the round count (or answer_guided) without a strategy asks for SciGLM's reflection loop
    assert Budget.parse("reflections=2").order == ("cot", "reflect", "reflect", "answer_guided")
    assert Budget.from_table({"answer_guided": False}).order == ("cot", "reflect", "reflect")
    assert Budget(max_reflections=1, answer_guided=False).order == ("cot", "reflect")
    assert Budget(max_reflections=0).order == ("cot", "answer_guided")
    b = Budget.parse("attempts=5,strategy=cot/reflect/resample/reflect/answer_guided")
    assert b.strategy == ("cot", "reflect", "resample", "reflect", "answer_guided") and b.order == b.strategy
    assert Budget(strategy=["cot", "resample"]).strategy == ("cot", "resample")  # a TOML list becomes a tuple


@pytest.mark.parametrize(("spec", "why"), [
    ("strategy=cot/think", "unknown strategy 'think'"),
    ("strategy=reflect/cot", "first strategy must be 'cot'"),
    ("strategy=cot/answer_guided/reflect", "'answer_guided' only as the last"),
    ("strategy=cot/cot", "'cot' only as the first"),
    ("strategy=cot/pot", "unknown strategy 'pot'; use cot, reflect, resample, program, answer_guided"),
])
def test_bad_strategy_orders_are_refused_with_the_reason(spec, why):
    with pytest.raises(ValueError, match=why):
        Budget.parse(spec)


def test_a_toml_strategy_list_reaches_the_budget(tmp_path):
    from scireflect.run.config import load_settings

    toml = tmp_path / "run.toml"
    toml.write_text('[budget]\nattempts = 5\nstrategy = ["cot", "reflect", "resample", "reflect", "answer_guided"]\n')
    settings = load_settings(config_path=toml)
    assert settings.budget.order == ("cot", "reflect", "resample", "reflect", "answer_guided")


def test_reflections_on_the_command_line_ask_for_sciglms_loop_over_the_files_order(tmp_path):
    from scireflect.run.config import load_settings

    toml = tmp_path / "run.toml"
    toml.write_text('[budget]\nstrategy = ["cot", "program", "resample", "answer_guided"]\n')
    assert load_settings(config_path=toml).budget.order == DEFAULT_ORDER
    assert load_settings(config_path=toml, budget="reflections=2").budget.order == ("cot", "reflect", "reflect", "answer_guided")
    assert load_settings(config_path=toml, budget="attempts=3").budget.order == DEFAULT_ORDER  # other keys keep the file's order


# -- decide, a pure function ----------------------------------------------------------------------

def test_decide_follows_the_order_by_attempt():
    budget = Budget(max_attempts=5, strategy=("cot", "reflect", "resample", "reflect", "answer_guided"))
    steps = [attempt(0)]
    assert decide(steps, budget).route == "critique"
    steps.append(attempt(1, answer="145", stage="reflection"))
    assert decide(steps, budget).route == "resample"
    steps.append(attempt(2, answer="146", strategy="resample"))
    assert decide(steps, budget).route == "critique"
    steps.append(attempt(3, answer="147", stage="reflection"))
    assert decide(steps, budget).route == "answer_guided"
    steps.append(attempt(4, answer="148", stage="answer_guided"))
    assert decide(steps, budget)[:3] == ("end", "rejected", "budget: attempts (5)")
    ended = decide(steps, Budget(max_attempts=9, strategy=budget.strategy))
    assert (ended.route, ended.reason) == ("end", "answer-guided revision failed")
    no_guide = decide(steps[:3], Budget(max_attempts=9, strategy=("cot", "reflect", "resample")))
    assert no_guide.reason == "strategies exhausted (cot/reflect/resample)"


def test_a_repeated_answer_skips_reflect_for_the_next_other_strategy():
    budget = Budget.parse("reflections=2")  # cot, reflect, reflect, answer_guided
    steps = [attempt(0), attempt(1, stage="reflection", repeated=1)]
    assert decide(steps, budget).route == "answer_guided"  # not one more edit of the same text
    order = Budget(max_attempts=5, strategy=("cot", "reflect", "reflect", "resample", "answer_guided"))
    assert decide(steps, order).route == "resample"
    assert decide([attempt(0), attempt(1, stage="reflection", repeated=None)], budget).route == "critique"
    # whichever strategy repeated the answer, reflecting on it is skipped
    resampled = [attempt(0), attempt(1, strategy="resample", repeated=1)]
    assert decide(resampled, Budget(max_attempts=5, strategy=("cot", "resample", "reflect", "answer_guided"))).route == "answer_guided"
    assert decide(resampled, Budget(max_attempts=5, strategy=("cot", "resample", "resample"))).route == "resample"


def test_a_repeated_answer_with_only_reflect_left_ends_the_loop_and_says_why():
    steps = [attempt(0), attempt(1, stage="reflection", repeated=1)]
    ended = decide(steps, Budget(max_reflections=3, answer_guided=False))
    assert (ended.route, ended.status) == ("end", "rejected")
    assert ended.reason == "repeated answer (attempt 2 repeats attempt 1); no other strategy left"
    assert decide(steps, Budget(max_reflections=1, answer_guided=False)).reason == "reflection failed (1 rounds)"


def test_old_steps_without_strategy_decide_as_before():
    # a trace or checkpoint written before strategies were data: stages, no strategy, no repeated
    steps = [{k: v for k, v in attempt(0).items() if k != "repeated"}]
    assert decide(steps, Budget.parse("reflections=2")).route == "critique"
    assert decide(steps, Budget()).route == "program"  # the default order, by position
    assert strategy_of({"stage": "reflection"}) == "reflect" and strategy_of({"stage": "cot"}) == "cot"
    assert strategy_of({"stage": "cot", "strategy": "resample"}) == "resample"


# -- failed answers: only answers found wrong, never one that matched ------------------------------

def test_only_answers_found_wrong_are_named():
    assert wrong_answer({"ok": False, "reason": "numeric_mismatch", "extracted": "5.2"}) == "5.2"
    for verdict in ({"ok": False, "reason": "step_error", "extracted": "72"},  # matched: naming it leaks
                    {"ok": False, "reason": "sample_disagreement", "extracted": "B"},
                    {"ok": False, "reason": "invalid", "extracted": None},
                    {"ok": None, "reason": "no_answer", "extracted": None},
                    {"ok": True, "reason": "equal", "extracted": "72"}, None):
        assert wrong_answer(verdict) is None
    assert failed_answers_evidence(["5.2", "7", "5.2"]) == "Final answers already found wrong: 5.2 (twice), 7."
    assert failed_answers_evidence(["1"] * 3) == "Final answers already found wrong: 1 (3 times)."
    assert failed_answers_evidence([]) == ""
    steps = [attempt(0, answer="5.2"), attempt(1, reason="step_error", answer="72")]
    assert failed_answers(steps, QUESTION) == ["5.2"]
    # a few possible answers: the wrong ones are never named (three wrong letters of four tell the fourth)
    letters = [attempt(0, answer="A", reason="choice_mismatch"), attempt(1, answer="B", reason="choice_mismatch")]
    assert failed_answers(letters, {"question": "Which?", "choices": ["1", "2", "3", "4"], "answer": "D"}) == []
    assert failed_answers([attempt(0, answer="False", reason="text_mismatch")], {"question": "Is it?", "answer": "True"}) == []
    assert failed_answers(letters, {"question": "Which?", "choices": ["1", "2", "3", "4"], "answer": "D",
                                    "mc_path": "options_free"}) == []


# -- the graph ------------------------------------------------------------------------------------

async def test_a_repeated_wrong_answer_is_marked_and_the_second_reflection_is_skipped():
    agents, models = team([WRONG], [CRITIQUE], [WRONG, RIGHT])
    state = await run(agents)
    steps = state["steps"]
    assert [(s["role"], s["stage"], s["strategy"]) for s in steps] == [
        ("solver", "cot", "cot"), ("critic", "reflection", "reflect"), ("reviser", "reflection", "reflect"),
        ("reviser", "answer_guided", "answer_guided")]
    assert steps[0]["repeated"] is None and steps[2]["repeated"] == 1
    assert state["status"] == "accepted" and state["accepted_stage"] == "answer_guided"
    assert len(models["critic"].calls) == 1  # one critique, not two


async def test_resample_is_a_fresh_solver_attempt_told_the_failed_answers_at_a_higher_temperature():
    agents, models = team([WRONG, WRONG_145, RIGHT], [CRITIQUE], [WRONG])
    budget = Budget(max_attempts=5, strategy=("cot", "resample", "reflect", "resample"))
    state = await run(agents, budget)
    assert [(s["role"], s["strategy"]) for s in state["steps"]] == [
        ("solver", "cot"), ("solver", "resample"), ("critic", "reflect"), ("reviser", "reflect"), ("solver", "resample")]
    assert state["status"] == "accepted" and state["accepted_stage"] == "cot"
    first_resample, second_resample = models["solver"].calls[1], models["solver"].calls[2]
    shown = first_resample[-1].content
    assert shown.startswith(QUESTION["question"]) and "Final answers already found wrong: 144." in shown
    assert WRONG not in shown and "72" not in shown  # no earlier text, never the reference
    assert "144 (twice), 145" in second_resample[-1].content  # attempts 1 and 4 gave 144, attempt 2 gave 145
    assert models["solver"].options[1].get("temperature") == pytest.approx(0.8)
    assert state["steps"][3]["repeated"] == 1  # the revision repeated attempt 1's 144


async def test_the_critic_hears_of_earlier_failed_answers_never_the_reference():
    agents, models = team([WRONG], [CRITIQUE, CRITIQUE], [WRONG_145, RIGHT])
    state = await run(agents)
    first_critique = state["steps"][1]["messages"][-1]["content"]
    second_critique = state["steps"][3]["messages"][-1]["content"]
    assert "already found wrong" not in first_critique  # nothing earlier yet
    assert "Final answers of earlier attempts, also found wrong: 144." in second_critique
    assert "extracted final answer: 145" in second_critique
    for text in (first_critique, second_critique):
        assert "72" not in text
    # the Reviser is told too: the first revision of 144, the second of 144 and 145
    revisions = [state["steps"][i]["messages"][-1]["content"] for i in (2, 4)]
    assert "Final answers already found wrong: 144.\n\nSolve the problem again" in revisions[0]
    assert "Final answers already found wrong: 144, 145." in revisions[1] and "72" not in revisions[1]


async def test_the_answer_guided_prompt_has_the_problem_and_the_reference_not_the_failed_solution():
    agents, models = team([WRONG], [CRITIQUE], [WRONG_145, RIGHT])
    state = await run(agents, Budget(max_reflections=1))
    guided = state["steps"][-1]
    assert guided["strategy"] == "answer_guided" and state["accepted_stage"] == "answer_guided"
    text = guided["messages"][-1]["content"]
    assert text.startswith("Problem:\n" + QUESTION["question"])
    assert "The correct final answer is: 72" in text
    assert "Final answers already found wrong: 144, 145." in text  # named as wrong ...
    assert WRONG not in text and WRONG_145 not in text and "48*2" not in text  # ... but no text to copy


def test_a_box_that_restates_the_given_answer_under_a_body_that_concludes_otherwise():
    # what the 1.5B wrote answer-guided (issue 24): its own result, then the given answer boxed
    verifier = InProcessAnswerVerifier()
    stated = "Step 1: May: 48*2 = 96.\nStep 2: total 48 + 96 = 144.\nSo the answer is 144.\n\\boxed{72}"
    verdict = verifier.verify(stated, QUESTION)
    assert verdict.ok is False and verdict.reason == "invalid" and verdict.details["invalid"] == "self_contradiction"
    restates = verifier.verify(stated + "\n\nThe correct final answer is: 72", QUESTION)  # the box's paragraph still says 144
    assert restates.reason == "invalid" and restates.details["stated"] == "144"
    derived = "Step 1: May: 48/2 = 24.\nStep 2: total 48 + 24 = 72.\nSo the answer is 72.\n\\boxed{72}"
    assert verifier.verify(derived, QUESTION).ok is True
    # A body whose result is no answer statement ("the total is 144") is not read by the consistency
    # check: the box is accepted, and the leakage flags mark the restatement for the export.
    restated = "Step 2: total 48 + 96 = 144.\nSo the total is 144.\n\nThe correct final answer is: 72\n\\boxed{72}"
    assert verifier.verify(restated, QUESTION).ok is True
    assert leakage_flags(restated, QUESTION)


async def test_repeats_are_found_by_the_verifiers_equivalence():
    ctx = AnnotationContext(agents=team([])[0], verify=verify_with(InProcessAnswerVerifier()))
    question = {"id": "q", "question": "Half of one?", "answer": "0.25"}
    earlier = [attempt(0, answer="1/2")]
    now = {"ok": False, "reason": "numeric_mismatch", "extracted": "0.5", "candidate": "0.5"}
    assert await repeated_attempt(ctx, now, earlier, question) == 1
    other = {"ok": False, "reason": "numeric_mismatch", "extracted": "0.3", "candidate": "0.3"}
    assert await repeated_attempt(ctx, other, earlier, question) is None
    matched = {"ok": False, "reason": "step_error", "extracted": "0.25"}  # its answer matched: not a repeat of a wrong one
    assert await repeated_attempt(ctx, matched, [attempt(0, answer="0.25")], question) is None


def test_the_graph_draws_every_strategy():
    edges = {(e.source, e.target) for e in build_annotation_graph().get_graph().edges}
    assert {("verify", "resample"), ("resample", "verify"), ("confirm", "resample"), ("resample", "__end__"),
            ("verify", "critique"), ("verify", "answer_guided")} <= edges


def test_the_formal_graph_keeps_only_its_strategies():
    agents = team([])[0]
    budget = Budget(max_attempts=5, strategy=("cot", "reflect", "resample", "reflect", "answer_guided"))
    assert formal_context(agents, verify_with(ExactBoxedVerifier()), budget).budget.order == ("cot", "reflect", "reflect")
    assert formal_context(agents, verify_with(ExactBoxedVerifier())).budget.order == ("cot", "reflect", "reflect")
    # the default order written out (no reflect in it): proofs still reflect on Lean's errors
    explicit = Budget(strategy=("cot", "program", "resample", "answer_guided"))
    assert formal_context(agents, verify_with(ExactBoxedVerifier()), explicit).budget.order == ("cot", "reflect", "reflect")
    assert formal_context(agents, verify_with(ExactBoxedVerifier()), Budget(strategy=("cot",))).budget.order == ("cot",)


def test_resample_prompt_without_failed_answers_is_the_solvers():
    assert ANSWER_PROMPTS.resample(QUESTION, "math", []) == ANSWER_PROMPTS.solve(QUESTION, "math")


async def test_a_multiple_choice_resample_is_not_told_which_letters_failed():
    mc = {"id": "mc-1", "subject": "physics", "question": "Which planet is largest?",
          "choices": ["Mars", "Venus", "Jupiter", "Earth"], "answer": "C"}
    agents, models = team(["\\boxed{A}", "\\boxed{B}", "\\boxed{C}"], [], [])
    graph = build_annotation_graph()
    budget = Budget(strategy=("cot", "resample", "resample"), mc_samples=1)
    state = await graph.ainvoke(initial_state(mc, "physics"), context=context(agents, budget))
    assert [s["strategy"] for s in state["steps"]] == ["cot", "resample", "resample"] and state["status"] == "accepted"
    for call in models["solver"].calls[1:]:
        assert "already found wrong" not in call[-1].content and "Earlier solutions" not in call[-1].content


# -- program of thought ---------------------------------------------------------------------------

PROGRAM_ASK = "May: half of 48.\n```python\nprint(48 + 48 // 2)\n```\n```output\n"


def test_decide_skips_a_strategy_the_run_cannot_make():
    budget = Budget(strategy=("cot", "program", "reflect"))
    assert decide([attempt(0)], budget).route == "program"
    assert decide([attempt(0)], budget, available={"cot", "reflect", "resample", "answer_guided"}).route == "critique"
    only = Budget(strategy=("cot", "program"))
    ended = decide([attempt(0)], only, available={"cot", "reflect"})
    assert (ended.route, ended.reason) == ("end", "strategies exhausted (cot/program)")


async def test_without_the_sandbox_program_is_skipped():
    agents, models = team([WRONG])
    state = await run(agents, Budget(strategy=("cot", "program")))  # the context has no program settings
    assert state["status"] == "rejected" and len(state["steps"]) == 1


async def test_the_default_order_without_the_sandbox_resamples_in_programs_place():
    agents, models = team([WRONG, WRONG_145, WRONG.replace("144", "146")], [], [RIGHT])
    state = await run(agents, Budget())  # the context has no program settings: the next strategy takes its turn
    assert [(s["role"], s["strategy"]) for s in state["steps"]] == [
        ("solver", "cot"), ("solver", "resample"), ("solver", "resample"), ("reviser", "answer_guided")]
    assert state["status"] == "accepted" and state["accepted_stage"] == "answer_guided"
    assert not models["critic"].calls  # no reflection in the default order


@pytest.mark.skipif(not sandbox_available()[0], reason="the code sandbox cannot start here")
async def test_the_default_order_makes_program_of_thought_second_where_the_sandbox_starts():
    agents, models = team([WRONG, PROGRAM_ASK + "70\n```\n", "So the total is 72.\n\\boxed{72}"])
    ctx = AnnotationContext(agents=agents, verify=verify_with(ExactBoxedVerifier()), budget=Budget(), program=CodeExecution())
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "math"), context=ctx)
    assert [s["strategy"] for s in state["steps"]] == ["cot", "program"] and state["status"] == "accepted"
    assert state["steps"][1]["tool_calls"][0]["result"] == "72"  # the sandbox computed it


@pytest.mark.skipif(not sandbox_available()[0], reason="the code sandbox cannot start here")
async def test_program_runs_the_solvers_python_in_the_sandbox():
    def finish(messages):
        assert messages[-1].content.endswith("```output\n72\n```\n")  # the real output was inserted
        return "So the total is 72.\n\\boxed{72}"

    agents, models = team([WRONG, PROGRAM_ASK + "70\n```\n", finish])
    ctx = AnnotationContext(agents=agents, verify=verify_with(ExactBoxedVerifier()),
                            budget=Budget(strategy=("cot", "program")), program=CodeExecution())
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "math"), context=ctx)
    assert state["status"] == "accepted" and [s["strategy"] for s in state["steps"]] == ["cot", "program"]
    step = state["steps"][1]
    assert step["role"] == "solver" and step["stage"] == "cot" and step["tool_calls"][0]["result"] == "72"
    system, *_, problem = models["solver"].calls[1]
    assert "```output" in system.content and "Final answers already found wrong: 144." in problem.content
    assert "72" not in problem.content and "70" not in step["response"]
    # program of thought: the model is asked for the program alone, and its example reply is one
    example = models["solver"].calls[1][2]
    assert problem.content.endswith("prints the final answer.") and example.content.startswith("```python\n# ")


async def test_a_formal_proof_is_never_checked_as_a_reference():
    calls = []

    async def checker(response, question, *, finish_reason=None):
        calls.append(question)
        raise AssertionError("the Lean checker must not be called to compare two proofs")

    ctx = AnnotationContext(agents=team([])[0], verify=checker)
    formal = {"id": "f", "statement": "theorem t : 1 + 1 = 2 := by sorry", "answer": None}
    now = {"ok": False, "reason": "lean_error", "extracted": "by simp"}
    assert await repeated_attempt(ctx, now, [attempt(0, answer="by norm_num", reason="lean_error")], formal) is None
    assert await repeated_attempt(ctx, now, [attempt(0, answer="by simp", reason="lean_error")], formal) == 1
    assert not calls


def test_the_summary_counts_a_rescue_by_a_fresh_attempt_apart_from_the_first_chain_of_thought():
    from scireflect.rundata.summary import summarize

    def record(*strategies: str, status: str = "accepted") -> dict:
        steps = [attempt(i, ok=(i == len(strategies) - 1), strategy=name) for i, name in enumerate(strategies)]
        return {"id": "q", "subject": "math", "status": status, "accepted_stage": "cot", "steps": steps}

    total = summarize([record("cot"), record("cot", "program"), record("cot", "program", "resample"),
                       record("cot", "reflect"), {"id": "old", "status": "accepted", "accepted_stage": "reflection"}])["all"]
    assert (total.accepted_cot, total.accepted_fresh, total.accepted_reflection) == (1, 2, 2)
    assert total.accepted == 5 and total.to_dict()["accepted_fresh"] == 2
    # a trace file is untrusted: fields that are not text are counted, never raised on
    odd = [{"status": "accepted", "accepted_stage": ["x"]},
           {"status": "accepted", "steps": [{"kind": "solution", "strategy": ["program"], "stage": {"a": 1}}]}]
    assert summarize(odd)["all"].accepted_cot == 2


def test_a_trace_shows_which_strategy_made_each_attempt():
    from rich.console import Console

    from scireflect.cli.render import render_trace
    from scireflect.graphs.state import attempt_notes

    steps = [attempt(0, strategy="cot", role="solver"), attempt(1, strategy="resample", repeated=1, role="solver"),
             attempt(2, strategy="program", role="solver")]
    assert [attempt_notes(s) for s in steps] == [[], ["resample", "repeats attempt 1"], ["program"]]
    record = {"id": "q", "question": QUESTION, "status": "rejected", "stop_reason": "x", "steps": steps,
              "n_attempts": 3, "tokens": 9, "seconds": 0.3}
    console = Console(record=True, width=200)
    console.print(render_trace(record))
    text = console.export_text()
    assert "attempt 2 · solver · cot · resample · repeats attempt 1" in text and "attempt 3 · solver · cot · program" in text
    from scireflect.viewer.pages import question_html

    assert "solver · cot · resample · repeats attempt 1</span>" in question_html(record)


@pytest.mark.skipif(not sandbox_available()[0], reason="the code sandbox cannot start here")
async def test_a_run_whose_order_has_program_sets_up_the_sandbox(tmp_path):
    from scireflect.run.config import RunSettings
    from scireflect.rundata.questions import load_questions
    from scireflect.run.runner import annotate

    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n")
    agents, models = team([WRONG, PROGRAM_ASK, "So the total is 72.\n\\boxed{72}"])
    settings = RunSettings(concurrency=1, budget=Budget(strategy=("cot", "program")))
    result = await annotate(load_questions(questions), tmp_path / "run", settings, team=agents, verifier=ExactBoxedVerifier())
    assert result.summary["all"].accepted == 1
    [record] = read_jsonl(tmp_path / "run" / "traces.jsonl")
    assert [s["strategy"] for s in record["steps"]] == ["cot", "program"]
    assert record["steps"][1]["tool_calls"][0]["result"] == "72"


@pytest.mark.skipif(not sandbox_available()[0], reason="the code sandbox cannot start here")
async def test_program_on_the_lean_streaming_client_sends_the_code_loops_stop(tmp_path):
    from scireflect.agents.openai_chat import OpenAIStreamingChat
    from scireflect.agents.retry import RetryPolicy
    from scireflect.agents.roles import AgentTeam
    from scireflect.testing.mock_openai import MockOpenAI

    with MockOpenAI(default_answer="144") as mock:
        chat = OpenAIStreamingChat(base_url=mock.base_url, model=mock.model, api_key="k", temperature=0.2, max_tokens=512,
                                   timeout_s=5.0)
        try:
            agents = AgentTeam.from_models({r: (chat, "m") for r in ("solver", "critic", "reviser")},
                                           retry=RetryPolicy(max_retries=0))
            ctx = AnnotationContext(agents=agents, verify=verify_with(ExactBoxedVerifier()),
                                    budget=Budget(strategy=("cot", "program")), program=CodeExecution())
            state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "math"), context=ctx)
        finally:
            await chat.aclose()
        bodies = mock.bodies
    assert [s["strategy"] for s in state["steps"]] == ["cot", "program"] and state["status"] == "rejected"
    assert "stop" not in bodies[0] and bodies[1]["stop"] == ["```output"] and bodies[1]["max_tokens"] == 512
    assert state["steps"][1]["repeated"] == 1  # the mock's 144 again
