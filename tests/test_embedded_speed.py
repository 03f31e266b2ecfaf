"""The embedded server's speed settings: slot affinity (prompt-cache reuse), slots/threads from the
machine, speculative decoding's settings, and the request options reaching the embedded endpoint only."""

from __future__ import annotations

import pytest

from scireflect.agents.prompts import ANSWER_PROMPTS
from scireflect.agents.roles import Agent
from scireflect.embedded import ServerTuning, SlotAffinity, default_slots, parse_prometheus
from scireflect.run.config import ConfigError, LLMSettings, load_settings
from scireflect.run.endpoints import _with_slot, chat_model
from scireflect.testing.mock_openai import MockOpenAI

QUESTION = {"id": "q1", "subject": "math", "question": "What is 6 x 7?", "answer": "42"}


def test_a_question_keeps_its_slot_between_calls():
    affinity = SlotAffinity(2)
    with affinity.request_options("a") as first:
        pass
    with affinity.request_options("b") as other:
        pass
    with affinity.request_options("a") as again:
        pass
    assert first == again == {"id_slot": first["id_slot"], "cache_prompt": True}
    assert other["id_slot"] != first["id_slot"]


def test_concurrent_calls_never_share_a_slot():
    # With at most `slots` calls at once there is always a free slot: a call never gets a slot that
    # another question's call holds (llama.cpp would queue it behind that call).
    affinity = SlotAffinity(2)
    with affinity.request_options("a") as a:
        with affinity.request_options("b") as b:
            assert a["id_slot"] != b["id_slot"]
        with affinity.request_options("c") as c:  # b finished its call: c takes b's slot, not a's
            assert c["id_slot"] == b["id_slot"]
    with affinity.request_options("c"):  # b's slot is now c's: b, back for its next call, takes the free one
        with affinity.request_options("b") as b2:
            assert b2["id_slot"] == a["id_slot"]


def test_a_new_question_takes_the_slot_idle_longest():
    affinity = SlotAffinity(3)
    for key in ("a", "b", "c"):
        with affinity.request_options(key):
            pass
    with affinity.request_options("b"):
        pass
    with affinity.request_options("d") as d:  # a's slot was used longest ago
        pass
    with affinity.request_options("a") as a:  # a lost its slot to d: it gets the idle-longest one (c's)
        pass
    assert d["id_slot"] == 0
    assert a["id_slot"] == 2


@pytest.mark.parametrize("cores, slots", [(1, 2), (2, 2), (4, 2), (8, 4), (16, 8), (64, 8)])
def test_default_slots_grow_with_cores(cores, slots):
    assert default_slots(cores) == slots
    tuning = ServerTuning.for_machine(cores=cores)
    assert (tuning.slots, tuning.threads) == (slots, cores)
    assert ServerTuning.for_machine(cores=cores, slots=3, threads=1).slots == 3


def test_prometheus_counters_are_parsed():
    text = ("# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
            "# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 1234\n"
            "llamacpp:prompt_seconds_total 12.5\nllamacpp:labelled{slot=\"0\"} 3\nbroken line here\nx nan-ish\n")
    assert parse_prometheus(text) == {"prompt_tokens_total": 1234.0, "prompt_seconds_total": 12.5}


def test_speculative_setting_is_checked(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert load_settings().speculative == "off"
    assert load_settings(speculative="Auto").speculative == "auto"
    assert load_settings(speculative="0.5b").speculative == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    with pytest.raises(ConfigError, match="unknown embedded model 'huge'.*speculative also takes auto or off"):
        load_settings(speculative="huge")


def test_concurrency_default_follows_the_cores_only_for_the_embedded_model(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr("scireflect.embedded.available_cores", lambda: 2)
    assert load_settings().concurrency == default_slots(2)
    assert load_settings(concurrency=3).concurrency == 3
    remote = load_settings(base_url="http://127.0.0.1:9/v1", model="m")
    assert remote.concurrency == 2


async def test_slot_options_reach_the_embedded_endpoint_only():
    with MockOpenAI() as server:
        llm = chat_model(LLMSettings(base_url=server.base_url, model="mock"), server.base_url, "mock")
        embedded = Agent("solver", llm, "mock", llm_for_affinity=_with_slot(SlotAffinity(2)))
        remote = Agent("solver", llm, "mock")
        await embedded.ainvoke(*ANSWER_PROMPTS.solve(QUESTION, "math"), affinity="q1")
        await embedded.ainvoke(*ANSWER_PROMPTS.solve(QUESTION, "math"))  # no question: no slot
        reply = await remote.ainvoke(*ANSWER_PROMPTS.solve(QUESTION, "math"), affinity="q1")
        bodies = server.bodies
        await llm.aclose()
    assert (bodies[0]["id_slot"], bodies[0]["cache_prompt"]) == (0, True)
    assert "id_slot" not in bodies[1] and "id_slot" not in bodies[2]
    assert "\\boxed{" in reply.text
    assert not llm.extra_body  # the per-call copy never changes the shared model


async def test_the_draft_is_the_small_model_when_both_are_installed(monkeypatch, tmp_path):
    from scireflect.embedded import embedded_draft

    small, default = "qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m"
    joined = []
    monkeypatch.setattr("scireflect.embedded.choice.materialise_embedded_model", lambda name: joined.append(name) or tmp_path / f"{name}.gguf")
    monkeypatch.setattr("scireflect.embedded.choice.available_embedded_models", lambda: [default, small])
    draft = await embedded_draft("auto", default, None)
    assert (draft.name, draft.path) == (small, tmp_path / f"{small}.gguf")
    assert await embedded_draft("off", default, None) is None
    assert await embedded_draft("auto", small, None) is None  # nothing smaller drafts for the 0.5B
    assert await embedded_draft("auto", default, tmp_path / "own.gguf") is None  # a user's GGUF: no guessing
    assert (await embedded_draft(small, "own", tmp_path / "own.gguf")).name == small  # named: always
    monkeypatch.setattr("scireflect.embedded.choice.available_embedded_models", lambda: [default])
    assert await embedded_draft("auto", default, None) is None  # the 0.5B is not installed
    assert joined == [small, small]
