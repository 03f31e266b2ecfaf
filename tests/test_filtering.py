"""Decontamination, leakage flags, dedup and held-out metrics of scireflect.filtering (no models)."""

from __future__ import annotations

import json

import pytest

from scireflect.filtering.decontam import EvalIndex, EvalSetError, build_index, normalise
from scireflect.filtering.dedup import QuestionGroups, equation_list, select_diverse
from scireflect.filtering.examples import classifier_input, record_attempts
from scireflect.filtering.leakage import leakage_flags
from scireflect.filtering.metrics import evaluate, expected_calibration_error, roc_auc, threshold_for_precision

GSM = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
       "How many clips did Natalia sell altogether in April and May?")


def test_normalise_drops_latex_commands_case_and_punctuation():
    assert normalise(r"Simplify $\frac{18}{14}$ to  Lowest terms.") == "simplify 18 14 to lowest terms"


def test_exact_and_13gram_overlap_are_found_and_clean_text_is_not(tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"id": "gsm-test-7", "question": GSM}) + "\n"
                         + json.dumps({"id": "short-1", "question": "What is 2+2?"}) + "\n")
    index = build_index([eval_file])
    assert index.files == {str(eval_file): 2}
    exact = index.match(GSM.upper().replace(",", " ,"))
    assert exact and exact.kind == "exact" and exact.eval_id == "gsm-test-7"
    # a paraphrased prefix with a 13-word run in common
    hit = index.match("Story problem. " + GSM[40:] + " Show your work.")
    assert hit and hit.kind == "ngram" and len(hit.ngram.split()) == 13
    # a short eval question is caught when it appears whole inside a training question
    short = index.match("Warm-up: what is 2 + 2? Then compute 3+3.")
    assert short and short.eval_id == "short-1"
    assert index.match("Natalia sold clips to 30 friends; how many clips did she sell in June?") is None


def test_ngram_length_is_configurable():
    index = EvalIndex(n=5)
    index.add("the quick brown fox jumps over the lazy dog", "e", "1")
    assert index.match("a quick brown fox jumps over it") is not None
    assert index.match("quick brown fox sleeps") is None


def test_bad_eval_file_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "question": "ok?"}) + "\n" + json.dumps({"id": "b", "answer": "1"}) + "\n")
    with pytest.raises(EvalSetError, match="bad.jsonl:2: no question text"):
        build_index([bad])
    with pytest.raises(EvalSetError, match="cannot read"):
        build_index([tmp_path / "missing.jsonl"])


def test_choices_are_part_of_the_matched_text():
    index = EvalIndex(n=13)
    index.add("Which is a noble gas?\nneon\nsodium\niron\ncarbon", "e", "mc-1")
    assert index.match("Which is a noble gas?\nneon\nsodium\niron\ncarbon") is not None


Q = {"question": "A car starts from rest and accelerates at 3 m/s^2 for 4 s. How far does it travel?", "answer": "24"}
DERIVED = ("1. The car starts from rest, so the initial speed is v0 = 0 m/s.\n2. Under uniform acceleration the distance is "
           "d = v0 t + (1/2) a t^2 = 0 + (1/2)(3)(4^2) = 24 m.\n\nThe car travels \\boxed{24} metres.")


def test_derived_answer_guided_solution_is_not_flagged():
    assert leakage_flags(DERIVED, Q) == []


@pytest.mark.parametrize("response, flag", [
    ("The correct answer is 24, as the problem states. Therefore the distance is \\boxed{24}.", "given_phrase"),
    ("\\boxed{24}. To see this, note that the car travels with constant acceleration for the whole time, and "
     "d = (1/2) a t^2 = (1/2)(3)(16) = 24 so the distance travelled over the four seconds is 24 metres in total.", "answer_first"),
    ("The distance is \\boxed{24}.", "too_short"),
    ("The distance travelled by the car is exactly twenty four metres, which we box below as the final result of this "
     "short problem about motion. \\boxed{24}", "no_steps"),
])
def test_restating_the_answer_is_flagged(response, flag):
    assert flag in leakage_flags(response, Q)


def test_choice_letter_stated_first_is_flagged():
    q = {"question": "Which is a noble gas?", "choices": ["neon", "sodium"], "answer": "A"}
    text = "The answer is A. " + "Neon has a full outer shell of electrons, so it does not react; 2 + 8 = 10 electrons. " * 3 + "\\boxed{A}"
    assert "answer_first" in leakage_flags(text, q)


# JEEBench-shaped rows (our own questions, not copied from JEEBench): `question_type` MCQ or MCQ(multiple),
# the options written inside the question text, no `choices`; the answer is the letter(s).
JEE_MCQ = {"subject": "physics", "question_type": "MCQ", "answer": "C",
           "question": "A block of mass $2 \\mathrm{~kg}$ slides from rest down a frictionless incline of height $5 \\mathrm{~m}$. "
                       "Its speed at the bottom ($g=10 \\mathrm{~m} \\mathrm{~s}^{-2}$) is\n\n(A) $5 \\mathrm{~m} \\mathrm{~s}^{-1}$\n\n"
                       "(B) $8 \\mathrm{~m} \\mathrm{~s}^{-1}$\n\n(C) $10 \\mathrm{~m} \\mathrm{~s}^{-1}$\n\n(D) $12 \\mathrm{~m} \\mathrm{~s}^{-1}$"}
JEE_MULTI = {"subject": "chemistry", "question_type": "MCQ(multiple)", "answer": "ABD",
             "question": "An ideal gas expands reversibly and isothermally. Which of the following statement(s) is(are) correct?\n\n"
                         "(A) Its internal energy does not change\n\n(B) The heat it absorbs equals the work it does\n\n"
                         "(C) Its pressure stays constant\n\n(D) The product $p V$ stays constant"}
MCQ_STEPS = " For an ideal gas U depends on T only, and T is fixed, so the change in U is 0 and the first law gives Q = W. pV = nRT is constant."
SPEED_STEPS = (" Energy is conserved on a frictionless incline. The potential energy m g h turns into (1/2) m v^2, "
               "so v = sqrt(2 g h) = sqrt(2 * 10 * 5) = sqrt(100) = 10 m/s.")


@pytest.mark.parametrize("question, response", [
    (JEE_MCQ, "The answer is (C)." + SPEED_STEPS),
    (JEE_MCQ, "**Answer:** C" + SPEED_STEPS),
    (JEE_MCQ, "(C) 10 m/s." + SPEED_STEPS),
    (JEE_MULTI, "The correct options are (A), (B) and (D)." + MCQ_STEPS),
    (JEE_MULTI, "\\boxed{ABD}." + MCQ_STEPS),
    (JEE_MULTI, "Statements A, B and D are true." + MCQ_STEPS),
])
def test_jee_option_letters_stated_first_are_flagged(question, response):
    assert "answer_first" in leakage_flags(response, question)


@pytest.mark.parametrize("question, response", [
    (JEE_MCQ, SPEED_STEPS.strip() + " That is option (C), so the answer is \\boxed{C}."),
    (JEE_MCQ, "The answer is (B)." + SPEED_STEPS),  # not the reference: not a restatement of the given answer
    (JEE_MULTI, "(A) is true: U depends on T only." + MCQ_STEPS + " (C) is false. The answer is \\boxed{ABD}."),
    (JEE_MULTI, "The correct option is (A)." + MCQ_STEPS),  # part of the set only
])
def test_jee_derived_or_other_letters_are_not_answer_first(question, response):
    assert "answer_first" not in leakage_flags(response, question)


def test_option_letters_are_capitals_not_the_article_a():
    q = {"question": "Which ratio is dimensionless?", "choices": ["strain", "stress"], "answer": "A"}
    text = ("The answer is a ratio of two lengths, so it has no unit: strain = dL / L = 0.2 / 10 = 0.02. Stress is a force per area, "
            "measured in pascals. So the dimensionless one is strain, \\boxed{A}.")
    assert "answer_first" not in leakage_flags(text, q)


def test_question_groups_merge_exact_and_near_duplicates():
    groups = QuestionGroups(threshold=0.8)
    assert groups.assign("r1:q1", GSM) == ("r1:q1", None)
    assert groups.assign("r2:q1", GSM.lower()) == ("r1:q1", "exact")
    gid, how = groups.assign("r2:q9", GSM + " Answer in clips.")  # 3 new shingles of 35: Jaccard 0.91
    assert (gid, how) == ("r1:q1", "near")
    assert groups.assign("r3:q2", "Simplify 18/14 to lowest terms.")[1] is None


def test_question_groups_without_datasketch_give_the_same_answer():
    groups = QuestionGroups(threshold=0.8, use_minhash=False)
    groups.assign("a", GSM)
    assert groups.assign("b", GSM + " Answer in clips.") == ("a", "near")


def test_equation_list_and_diverse_paths_rft_style():
    a = "Step 1: 48 / 2 = 24 clips in May. Step 2: 48 + 24 = 72. \\boxed{72}"
    a_reworded = "First, May: 48/2 = 24. Then the total is 48 + 24 = 72 clips. \\boxed{72}"
    b = "April and May together: 48 * 1.5 = 72. \\boxed{72}"
    assert equation_list(a) == ("48/2=24", "48+24=72")
    kept, dropped = select_diverse([a, a, a_reworded, b], lambda t: t, max_per_question=4)
    assert kept == [a, b]
    assert [r for _, r in dropped] == ["duplicate_solution", "same_equations"]
    kept, dropped = select_diverse([a, b], lambda t: t, max_per_question=1)
    assert kept == [a] and dropped == [(b, "over_limit")]


def test_roc_auc_ece_and_threshold_for_precision():
    labels = [True, True, False, True, False, False]
    scores = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1]
    assert roc_auc(labels, scores) == pytest.approx(8 / 9)
    assert roc_auc([True, True], [0.1, 0.2]) is None
    assert expected_calibration_error([True, False], [1.0, 0.0]) == 0.0
    assert expected_calibration_error([False, False], [0.9, 0.9]) == pytest.approx(0.9)
    t = threshold_for_precision(labels, scores, 1.0, min_kept=2)
    assert t["threshold"] == 0.8 and t["precision"] == 1.0 and t["recall"] == pytest.approx(2 / 3) and t["reachable"]
    t = threshold_for_precision(labels, scores, 0.75, min_kept=2)
    assert t["threshold"] == 0.6 and t["recall"] == 1.0
    assert threshold_for_precision([False, False], [0.3, 0.4], 0.9)["reachable"] is False


def test_shortcut_audit_sees_a_stage_shortcut():
    labels = [True, True, False, False, True, False]
    stages = ["answer_guided", "answer_guided", "cot", "cot", "cot", "reflection"]
    m = evaluate(labels, [0.5] * 6, threshold=0.5, subjects=["math"] * 6, stages=stages,
                 lengths=[10, 20, 30, 40, 50, 60], groups=["a", "b", "c", "d", "e", "f"])
    assert m["roc_auc"] == 0.5
    assert m["shortcuts"]["stage"] > 0.8
    assert set(m["per_stage"]) == {"answer_guided", "cot", "reflection"}


def test_classifier_input_is_one_template_without_the_answer():
    record = {"id": "q", "subject": "math", "question": {"question": "Pick one.", "choices": ["x", "y"], "answer": "B"},
              "steps": [{"kind": "solution", "stage": "answer_guided", "response": "y fits. \\boxed{B}",
                         "verdict": {"ok": True, "reason": "equal"}},
                        {"kind": "critique", "stage": "reflection", "response": "wrong"}]}
    (attempt,) = record_attempts(record)
    assert attempt.text == classifier_input(record["question"], "y fits. \\boxed{B}")
    assert attempt.text.startswith("### Problem\nPick one.\n\nOptions:\n(A) x\n(B) y")
    assert "answer_guided" not in attempt.text and "The correct final answer" not in attempt.text


def test_eval_file_with_a_unicode_line_separator_inside_a_string(tmp_path):
    # GSM8K's train.jsonl has a U+2028 inside a question: str.splitlines() would cut that JSON line in two
    path = tmp_path / "eval.jsonl"
    path.write_text(json.dumps({"id": "u", "question": "First line\u2028second line of a question"}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    index = build_index([path])
    assert index.files == {str(path): 1} and index.match("first line second line of a question").kind == "exact"
