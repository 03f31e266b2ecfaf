"""The step gate: a matching final answer after a false calculation is not accepted (``step_error``),
the claims are recorded in the verdict, the trace, ``sft.jsonl`` and the export, and the Critic is told
which claim is false; ``[verifier] steps`` switches it between gate, flag and off."""

from __future__ import annotations

import json

import pytest

from scireflect.run.config import ConfigError, load_settings
from scireflect.rundata.records import sft_pair, step_check_counts, trace_record
from scireflect.verifiers import InProcessAnswerVerifier, SandboxedAnswerVerifier, verify_answer
from scireflect.verifiers.base import STEP_ERROR, critic_evidence

# GSM8K train #0 (github:openai/grade-school-math, MIT): the reference solution, and the same with one
# intermediate result slipped (48/2 written as 42) while the final answer stays right.
QUESTION = {"id": "gsm8k-train-0000", "answer": "72", "subject": "math",
            "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                        "How many clips did Natalia sell altogether in April and May?"}
RIGHT = "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n\\boxed{72}"
SLIPPED = "Natalia sold 48/2 = 42 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n\\boxed{72}"


def test_a_right_answer_after_a_false_calculation_is_a_step_error():
    good = verify_answer(RIGHT, QUESTION)
    assert good.ok is True and good.details["steps"]["checked"] == 2 and good.details["steps"]["n_errors"] == 0
    bad = verify_answer(SLIPPED, QUESTION)
    assert bad.ok is False and bad.reason == STEP_ERROR and bad.status == "rejected"
    assert bad.details["answer_reason"] == "equal"  # the final answer itself matched
    first = bad.details["steps"]["errors"][0]
    assert first["line"] == 1 and first["written"].startswith("42") and first["computed"].startswith("24")
    assert "line 1" in bad.explanation and "48/2" in bad.explanation


def test_flag_records_and_off_skips():
    flagged = verify_answer(SLIPPED, QUESTION, steps="flag")
    assert flagged.ok is True and flagged.details["steps"]["n_errors"] == 1
    off = verify_answer(SLIPPED, QUESTION, steps="off")
    assert off.ok is True and "steps" not in off.details
    with pytest.raises(ValueError, match="steps must be one of"):
        verify_answer(RIGHT, QUESTION, steps="strict")


def test_a_wrong_answer_carries_the_step_report_too():
    """The Critic's evidence: the first false claim, never the reference answer."""
    wrong = SLIPPED.replace("48+24 = 72", "48+42 = 90").replace("\\boxed{72}", "\\boxed{90}")
    verdict = verify_answer(wrong, QUESTION)
    assert verdict.ok is False and verdict.reason == "numeric_mismatch"
    evidence = critic_evidence(verdict.to_dict())
    assert "line 1" in evidence and "48/2" in evidence and "not 42" in evidence and "72" not in evidence


def test_the_critic_learns_the_claim_but_not_that_the_answer_matched():
    evidence = critic_evidence(verify_answer(SLIPPED, QUESTION).to_dict())
    assert evidence.startswith("verifier: rejected (calculation_error). A calculation is false: line 1: '48/2 = 42")
    assert "step_error" not in evidence and "72" not in evidence and "matches" not in evidence


def test_all_checked_claims_right_points_at_the_setup():
    wrong = RIGHT.replace("48/2 = 24", "48*2 = 96").replace("48+24 = 72", "48+96 = 144").replace("\\boxed{72}", "\\boxed{144}")
    evidence = critic_evidence(verify_answer(wrong, QUESTION).to_dict())
    assert "All 2 calculations that could be checked are right" in evidence


def test_the_sandbox_runs_the_step_check_in_its_worker():
    with SandboxedAnswerVerifier(workers=1) as sandbox:
        assert sandbox.verify(SLIPPED, QUESTION).reason == STEP_ERROR
        assert sandbox.verify(RIGHT, QUESTION).ok is True
    with SandboxedAnswerVerifier(workers=1, steps="flag") as sandbox:
        assert sandbox.verify(SLIPPED, QUESTION).ok is True
    assert InProcessAnswerVerifier(steps="off").verify(SLIPPED, QUESTION).ok is True


def test_the_sandbox_survives_a_hostile_calculation():
    """The step checker parses model text: a power tower in a claim must not hang the worker."""
    hostile = "So 9^(9^(9^9)) = 5 and 2+2 = 4.\n" * 50 + "\\boxed{72}"
    with SandboxedAnswerVerifier(workers=1, timeout_s=10) as sandbox:
        verdict = sandbox.verify(hostile, QUESTION)
    assert verdict.ok is not True or verdict.details["steps"]["n_errors"] == 0
    assert verdict.reason != "timeout"


def _state(response: str, verdict) -> dict:
    step = {"index": 0, "role": "solver", "stage": "cot", "attempt": 1, "kind": "solution", "messages": [],
            "response": response, "input_tokens": 10, "output_tokens": 20, "discarded_tokens": 0, "tokens_estimated": False,
            "latency_s": 1.0, "model": "m", "finish_reason": "stop", "started_at": "2026-12-07T00:00:00+00:00", "error": None,
            "transport_failures": [], "tool_calls": [], "parsed_answer": verdict.extracted, "verdict": verdict.to_dict()}
    status = "accepted" if verdict.ok else "rejected"
    return {"question": QUESTION, "variant": "math", "steps": [step], "status": status, "stop_reason": status,
            "budget_stop": None, "accepted_stage": "cot" if verdict.ok else None, "error_kind": None}


def test_traces_and_sft_pairs_carry_the_counts():
    record = trace_record(_state(RIGHT, verify_answer(RIGHT, QUESTION)), verifier="answer/3")
    assert (record["step_claims_checked"], record["step_errors"]) == (2, 0)
    pair = sft_pair(json.loads(json.dumps(record)))
    assert (pair["step_claims_checked"], pair["step_errors"]) == (2, 0)
    flagged = trace_record(_state(SLIPPED, verify_answer(SLIPPED, QUESTION, steps="flag")), verifier="answer/3")
    assert flagged["status"] == "accepted" and flagged["step_errors"] == 1
    rejected = trace_record(_state(SLIPPED, verify_answer(SLIPPED, QUESTION)), verifier="answer/3")
    assert rejected["status"] == "rejected" and rejected["step_errors"] == 1  # the last judged attempt's
    off = trace_record(_state(RIGHT, verify_answer(RIGHT, QUESTION, steps="off")), verifier="answer/3")
    assert (off["step_claims_checked"], off["step_errors"]) == (None, None)
    assert step_check_counts({"details": {"steps": {"checked": "x"}}}) == (None, None)  # a hand-edited trace


def test_the_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert load_settings().verifier.steps == "gate"
    path = tmp_path / "c.toml"
    path.write_text('[verifier]\nsteps = "flag"\n')
    assert load_settings(path).verifier.steps == "flag"
    assert load_settings(path, steps="off").verifier.steps == "off"
    path.write_text('[verifier]\nsteps = "strict"\n')
    with pytest.raises(ConfigError, match=r"c.toml \[verifier\]: steps must be one of gate, flag, off, not \'strict\'"):
        load_settings(path)


def test_the_export_carries_the_counts(tmp_path):
    from scireflect.filtering.export import ExportOptions, export_training_set

    run = tmp_path / "run"
    run.mkdir()
    flagged = trace_record(_state(SLIPPED, verify_answer(SLIPPED, QUESTION, steps="flag")), verifier="answer/3")
    (run / "traces.jsonl").write_text(json.dumps(flagged) + "\n")
    export_training_set([run], tmp_path / "out", ExportOptions(format="messages"))
    (row,) = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert (row["step_claims_checked"], row["step_errors"]) == (2, 1)
