"""The ``invalid`` verdict and status (issue 23, item 5): a response cut by ``max_tokens``, a looping
response and a response whose text concludes another result than its box are never accepted, never
read for a fallback answer, and counted on their own in traces, ``summary.json`` and ``traces stats``.
"""

from __future__ import annotations

import copy
import json

import pytest
from rich.console import Console

from scireflect.cli.render import SUMMARY_LEGEND, stats_tables, summary_table
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import Budget, decide
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.state import FINAL_STATUSES, initial_state
from scireflect.rundata.outputs import write_outputs
from scireflect.rundata.query import filter_traces
from scireflect.rundata.summary import summarize, trace_stats
from scireflect.verifiers import Verdict, verify_answer
from scireflect.verifiers.answer import consistency
from scireflect.verifiers.answer.consistency import apply_consistency_check, concluding_statement, find_contradiction
from scireflect.verifiers.base import INVALID, NUMERIC_MISMATCH, SELF_CONTRADICTION, TIMEOUT, critic_evidence
from scireflect.verifiers.extract import Extraction
from scireflect.verifiers.registry import InProcessAnswerVerifier
from tests.test_graph import QUESTION, team

LOOP = "May: 48/2 = 24, so the total is \\boxed{72}.\n" + "Wait, let me recheck: 48 + 24 = 72. Hmm, and 48/2 = 24.\n" * 20


def boxed(text: str) -> Extraction:
    return Extraction(text, "boxed")


# ------------------------------------------------------------------------------------- verdicts


def test_truncated_and_looping_responses_are_invalid_and_never_read_for_an_answer() -> None:
    cut = verify_answer("48/2 = 24 and 48 + 24 = 72, so \\boxed{72}. Let me double-check 4", {"answer": "72"},
                        finish_reason="length")
    loop = verify_answer(LOOP, {"answer": "72"})
    for v, kind in ((cut, "truncated"), (loop, "degenerate")):
        assert v.ok is False and v.reason == INVALID and v.status == "invalid" and v.details["invalid"] == kind
        assert v.extracted is None and v.to_dict()["status"] == "invalid"
    # the empty box and "no answer at all" stay no_answer (ok=None), not invalid
    assert verify_answer("There are 3 cases, so \\boxed{}", {"answer": "3"}).reason == "no_answer"


def test_old_traces_still_read_and_show_what_they_said() -> None:
    old = {"ok": None, "reason": "no_answer", "explanation": "cut off", "extracted": None, "details": {"no_answer": "truncated"},
           "status": "unparseable", "checker": "precheck", "elapsed_s": 0.0}
    v = Verdict.from_dict(old)
    assert v.status == "unparseable" and v.reason == "no_answer"
    assert "cut off by the token limit" in critic_evidence(old)
    new = verify_answer(LOOP, {"answer": "72"}).to_dict()
    assert Verdict.from_dict(new).status == "invalid" and Verdict.from_dict(new).ok is False


# ---------------------------------------------------------------------------- self-contradiction

# the example: the body re-derives 3, boxes 3, then concludes 6
REDERIVES = ("We need the number of real roots of x^3 - 3x + 1 = 0.\n"
             "f(-2) = -1 < 0, f(0) = 1 > 0, f(1) = -1 < 0, f(2) = 3 > 0, so there is a root in each of three intervals.\n"
             "Re-deriving with the discriminant: -4(-3)^3 - 27(1)^2 = 108 - 27 = 81 > 0, so three real roots.\n\n"
             "$$\\boxed{3}$$\n\nThe correct final answer is: 6")


@pytest.mark.parametrize(("response", "box", "question", "stated"), [
    (REDERIVES, "3", {"answer": "3"}, "6"),
    (REDERIVES, "3", {"answer": "6"}, "6"),  # whatever the reference: the response states two answers
    ("So the answer is (B).\n\\boxed{C}", "C", {"answer": "B", "choices": ["1 m", "5 m", "7 m", "9 m"]}, "(B)"),
    ("v = 5 m/s.\n\\boxed{5 m/s}\n\n**Final answer:** 7 m/s", "5 m/s", {"answer": "5", "unit": "m/s", "subject": "physics"},
     "7 m/s"),
    ("Expanding, $(x+1)^2 = x^2 + 2x + 1$.\n\\boxed{x^2+2x+1}\nThe final answer is $x^2 + 1$.", "x^2+2x+1",
     {"answer": "(x+1)^2"}, "x^2 + 1"),
    ("The statement holds for every n.\n\\boxed{True}\nThe answer is False.", "True", {"answer": "True"}, "False"),
    ("Thus the final answer is 12.\n$\\boxed{13}$", "13", {"answer": "13"}, "12"),  # the box's own paragraph
])
def test_a_text_that_concludes_another_result_than_its_box_is_invalid(response, box, question, stated) -> None:
    v = find_contradiction(response, boxed(box), question)
    assert v is not None and v.ok is False and v.reason == INVALID and v.status == "invalid"
    assert v.details["invalid"] == SELF_CONTRADICTION and v.details["stated"] == stated and v.extracted == box
    evidence = v.evidence_for_critic()
    assert f"The text concludes {stated} but the box says {box}: state one final answer" in evidence


@pytest.mark.parametrize(("response", "box", "question"), [
    ("So the answer is $\\boxed{3}$.", "3", {"answer": "3"}),  # the statement is the box
    ("x = 1/3.\n\\boxed{\\frac{1}{3}}\nThe final answer is 0.333", "\\frac{1}{3}", {"answer": "1/3"}),  # equal as measured
    ("\\boxed{3}\nThe answer is 6 times larger than the first estimate.", "3", {"answer": "3"}),  # prose, not an answer
    ("\\boxed{3}\nThe answer is $6$ times larger.", "3", {"answer": "3"}),
    ("\\boxed{3}\nThe answer is not 6.", "3", {"answer": "3"}),
    ("So the answer is option B, 5 m.\n\\boxed{B}", "B", {"answer": "B", "choices": ["1 m", "5 m", "7 m", "9 m"]}),
    ("(a) \\boxed{5}\n(b) \\boxed{7}\nAnswer: (a) 5 (b) 7", "7", {"answer": "7"}),  # earlier boxes never count
    ("(a) The answer is 5.\n\n(b) The total is \\boxed{7}", "7", {"answer": "7"}),  # another paragraph, another part
    ("Thus the answer is 6.\n\nChecking again, 2 + 1 = 3.\n\n\\boxed{3}", "3", {"answer": "3"}),  # corrected earlier
    ("\\boxed{5 km}\nAnswer: 5000 m", "5 km", {"answer": "5", "unit": "km", "subject": "physics"}),  # units agree
    ("\\boxed{50.7}\nThe answer is 50.68", "50.7", {"answer": "50.7"}),
    ("\\boxed{x^2+1}\nThe final answer is $1 + x^2$", "x^2+1", {"answer": "x^2+1"}),
    ("\\boxed{6}\nThe answer is 3 - 1 = 2, checked.", "6", {"answer": "6"}),  # not an answer the check can read
])
def test_agreeing_or_unreadable_statements_are_not_a_contradiction(response, box, question) -> None:
    assert find_contradiction(response, boxed(box), question) is None


def test_only_a_boxed_answer_is_compared() -> None:
    assert find_contradiction("Answer: 3\nThe answer is 6", Extraction("3", "answer_line"), {"answer": "3"}) is None
    assert concluding_statement("no box here. The answer is 6") is None
    assert concluding_statement(REDERIVES) == ("6", "The correct final answer is: 6")


def test_the_post_check_replaces_only_decided_verdicts_and_never_raises(monkeypatch) -> None:
    accepted = verify_answer(REDERIVES.replace("The correct final answer is: 6", ""), {"answer": "3"})
    assert accepted.ok is True
    v = apply_consistency_check(accepted, REDERIVES, boxed("3"), {"answer": "3"})
    assert v.ok is False and v.status == "invalid" and v.details["answer_check"] == accepted.reason
    wrong = Verdict(ok=False, reason=NUMERIC_MISMATCH, explanation="wrong", extracted="3")
    assert apply_consistency_check(wrong, REDERIVES, boxed("3"), {"answer": "9"}).reason == INVALID
    timeout = Verdict(ok=None, reason=TIMEOUT, explanation="slow", extracted="3")
    assert apply_consistency_check(timeout, REDERIVES, boxed("3"), {"answer": "3"}) is timeout
    same = apply_consistency_check(accepted, "\\boxed{3}", boxed("3"), {"answer": "3"})
    assert same is accepted

    def boom(response: str) -> None:
        raise RecursionError("deeply nested")

    monkeypatch.setattr(consistency, "concluding_statements", boom)
    broken = apply_consistency_check(accepted, REDERIVES, boxed("3"), {"answer": "3"})
    assert broken.ok is True and broken.details["consistency_error"] == "RecursionError"


# ------------------------------------------------------------------------------- the loop's end


def attempt(stage: str, verdict: dict) -> dict:
    return {"index": 0, "kind": "solution", "stage": stage, "verdict": verdict, "input_tokens": 1, "output_tokens": 1,
            "latency_s": 0.1}


def test_decide_ends_invalid_when_the_last_attempt_was_invalid() -> None:
    invalid = {"ok": False, "reason": INVALID, "details": {"invalid": "truncated"}}
    ended = decide([attempt("cot", invalid)], Budget(max_attempts=1))
    assert (ended.route, ended.status) == ("end", "invalid")
    assert ended.reason == "invalid (truncated); budget: attempts (1)" and ended.budget_stop["limit"] == "attempts"
    ended = decide([attempt("cot", invalid)], Budget(max_reflections=0, answer_guided=False))
    assert (ended.status, ended.reason) == ("invalid", "invalid (truncated); reflection failed (0 rounds)")
    # not the end yet: the loop goes on and the Critic sees the evidence
    assert decide([attempt("cot", invalid)], Budget(max_reflections=2)).route == "critique"
    # an earlier invalid attempt does not make the question invalid: the last one decides
    wrong = {"ok": False, "reason": NUMERIC_MISMATCH}
    steps = [attempt("cot", invalid), {**attempt("reflection", wrong), "index": 1}]
    assert decide(steps, Budget(max_attempts=2)).status == "rejected"
    assert decide([attempt("cot", {"ok": True, "reason": "equal"})], Budget(max_attempts=1)).status == "accepted"
    assert "invalid" in FINAL_STATUSES


async def test_a_question_whose_attempts_all_loop_ends_invalid() -> None:
    agents, _ = team([LOOP], ["The solution repeats itself."] * 2, [LOOP, LOOP, LOOP])
    graph = build_annotation_graph(None)
    ctx = AnnotationContext(agents=agents, verify=verify_with(InProcessAnswerVerifier()),
                            budget=Budget(max_reflections=2))  # the Critic is shown the loop
    state = await graph.ainvoke(initial_state(QUESTION, "math"), None, context=ctx)
    assert state["status"] == "invalid" and state["stop_reason"].startswith("invalid (degenerate)")
    attempts = [s for s in state["steps"] if s["kind"] == "solution"]
    assert all(s["verdict"]["status"] == "invalid" and s["parsed_answer"] is None for s in attempts)
    critic_prompt = "\n".join(m["content"] for m in state["steps"][1]["messages"])
    assert "ends in a loop" in critic_prompt


# ----------------------------------------------------------------------------- counts and views


def records() -> list[dict]:
    base = {"id": "q", "subject": "math", "status": "rejected", "n_attempts": 1, "tokens": 10, "seconds": 1.0,
            "question": {"id": "q", "answer": "72"},
            "steps": [{"index": 0, "kind": "solution", "stage": "cot", "verdict": {"ok": False, "reason": NUMERIC_MISMATCH}}]}
    out = [copy.deepcopy(base)]
    for i, kinds in enumerate([("truncated", "degenerate"), ("self_contradiction",)]):
        r = copy.deepcopy(base)
        r.update(id=f"inv-{i}", status="invalid", n_attempts=len(kinds), subject="physics")
        r["steps"] = [{"index": j, "kind": "solution", "stage": "cot" if j == 0 else "reflection",
                       "verdict": {"ok": False, "reason": INVALID, "details": {"invalid": k}}} for j, k in enumerate(kinds)]
        out.append(r)
    return out


def test_summary_and_stats_count_invalid_on_its_own(tmp_path) -> None:
    summary = summarize(records())
    assert (summary["all"].invalid, summary["all"].rejected, summary["physics"].invalid) == (2, 1, 2)
    write_outputs(tmp_path, records())
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["all"]["invalid"] == 2 and on_disk["all"]["rejected"] == 1 and on_disk["all"]["accepted"] == 0
    stats = trace_stats(records())
    assert stats["subjects"]["all"]["invalid"] == 2
    assert stats["invalid_attempts"] == {"truncated": 1, "degenerate": 1, "self_contradiction": 1}
    assert [r["id"] for r in filter_traces(records(), status="invalid")] == ["inv-0", "inv-1"]


def test_tables_show_invalid() -> None:
    console = Console(width=80, record=True)
    for table in stats_tables(trace_stats(records())):
        console.print(table)
    console.print(summary_table(summarize(records())))
    text = console.export_text()
    assert "Invalid attempts by kind" in text and "self_contradiction" in text and " inv " in text
    assert "inv invalid" in SUMMARY_LEGEND
    assert max(len(line) for line in text.splitlines()) <= 80
