"""Cheap answers are checked in the runner's process with the sandbox's own function and settings;
anything that parses LaTeX, has a unit, or goes to a plugin verifier still goes to its verifier."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scireflect.run.quick_check import InlineCheapAnswers, is_cheap
from scireflect.verifiers import SandboxedAnswerVerifier, SubjectRouter, Verdict

CHOICES = ["4", "7", "9", "15"]


@pytest.mark.parametrize(("response", "question", "cheap"), [
    ("so the total is \\boxed{72}.", {"answer": "72"}, True),
    ("\\boxed{-3.50}", {"answer": "-3.5"}, True),
    ("\\boxed{B}", {"answer": "B", "choices": CHOICES}, True),
    ("\\boxed{\\frac{9}{7}}", {"answer": "9/7"}, False),  # LaTeX: the sandbox
    ("\\boxed{72}", {"answer": "\\dfrac{144}{2}"}, False),
    ("\\boxed{5}", {"answer": "5", "unit": "m"}, False),  # units: pint, in the sandbox
    ("\\boxed{1e400}", {"answer": "1"}, False),
    ("\\boxed{B}", {"answer": "B"}, False),  # a letter without choices is not an option
    ("no answer here", {"answer": "3"}, False),
])
def test_what_is_cheap(response, question, cheap):
    assert is_cheap(response, question) is cheap


class Recording:
    """A stand-in for a plugin verifier: records what reaches it."""

    name, version = "plugin", "1"

    def __init__(self):
        self.seen = []

    def verify(self, response, question):
        self.seen.append(response)
        return Verdict(ok=True, reason="equal", explanation="plugin", checker="plugin")


async def test_cheap_checks_stay_in_process_and_give_the_sandboxs_verdict():
    with SandboxedAnswerVerifier(workers=1, steps="off") as sandbox:
        inline = InlineCheapAnswers(sandbox)
        cases = [("\\boxed{72}", {"answer": "72"}), ("\\boxed{71}", {"answer": "72"}), ("\\boxed{C}", {"answer": "B", "choices": CHOICES})]
        for response, question in cases:
            here, there = await inline.averify(response, question), await sandbox.averify(response, question)
            assert replace(here, elapsed_s=0) == replace(there, elapsed_s=0)
        assert inline.inline == 3
        latex = await inline.averify("\\boxed{\\frac{144}{2}}", {"answer": "72"})
        assert latex.ok and inline.inline == 3  # went to the sandbox
        assert (inline.name, inline.version) == (sandbox.name, sandbox.version)


async def test_a_plugin_route_is_never_bypassed():
    plugin = Recording()
    with SandboxedAnswerVerifier(workers=1, steps="off") as sandbox:
        inline = InlineCheapAnswers(SubjectRouter({"physics": plugin}, sandbox))
        await inline.averify("\\boxed{5}", {"answer": "5", "subject": "physics"})
        await inline.averify("\\boxed{5}", {"answer": "5", "subject": "math"})
    assert plugin.seen == ["\\boxed{5}"] and inline.inline == 1


async def test_with_the_step_checker_on_every_check_goes_to_the_sandbox():
    """The step checker parses the whole response, which only the sandbox may do."""
    with SandboxedAnswerVerifier(workers=1) as sandbox:
        inline = InlineCheapAnswers(sandbox)
        verdict = await inline.averify("48/2 = 24, so \\boxed{72}", {"answer": "72"})
    assert inline.inline == 0 and verdict.ok is True and verdict.details["steps"]["checked"] >= 1


@pytest.mark.parametrize("steps", ["off", "gate"])
async def test_a_response_cut_by_the_token_limit_is_never_accepted(steps):
    """The run's verifier passes the server's finish_reason on (it was dropped here, so a response cut
    by max_tokens whose last number happened to be the reference was accepted)."""
    cut = "We need 48 + 24. Let me list the cases again: 12, 24, 48, 72"
    with SandboxedAnswerVerifier(workers=1, steps=steps) as sandbox:
        inline = InlineCheapAnswers(sandbox)
        assert (await inline.averify(cut, {"answer": "72"})).ok is True  # no finish_reason: the last number counts
        assert (await inline.averify(cut, {"answer": "72"}, finish_reason="length")).ok is not True
        assert inline.verify(cut, {"answer": "72"}, finish_reason="length").ok is not True
