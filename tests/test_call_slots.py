"""Call slots and look-ahead: at most K model calls at once, and more questions prepared meanwhile."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from scireflect.graphs.call_slots import CallSlots
from scireflect.run.config import LLMSettings, RunSettings, load_settings
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.testing.mock_openai import MockOpenAI
from tests.test_graph import ExactBoxedVerifier


async def test_slots_never_exceed_the_limit_and_serve_continuing_calls_first():
    slots = CallSlots(2)
    order: list[str] = []
    release = asyncio.Event()

    async def call(name: str, continuing: bool) -> None:
        async with slots.hold(continuing=continuing):
            order.append(name)
            assert slots.in_flight <= 2
            await release.wait()

    holders = [asyncio.create_task(call(f"h{i}", False)) for i in range(2)]
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(call("first-a", False)), asyncio.create_task(call("first-b", False))]
    await asyncio.sleep(0)
    waiters.append(asyncio.create_task(call("continuing", True)))  # arrives last, served first
    await asyncio.sleep(0)
    assert order == ["h0", "h1"] and slots.waiting == 3 and slots.in_flight == 2
    release.set()
    await asyncio.gather(*holders, *waiters)
    assert order == ["h0", "h1", "continuing", "first-a", "first-b"]
    assert slots.in_flight == 0 and slots.peak == 2 and slots.waiting == 0


async def test_a_cancelled_waiter_gives_up_its_place_and_never_leaks_a_slot():
    slots = CallSlots(1)
    gate = asyncio.Event()

    async def hold() -> None:
        async with slots.hold():
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter.cancel()  # cancelled while waiting
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    await holder
    assert slots.in_flight == 0 and slots.waiting == 0

    # Handed a slot and cancelled before it ran: the slot passes on, not lost.
    gate.clear()
    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    handed, after = asyncio.create_task(hold()), asyncio.create_task(hold())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.sleep(0)  # the holder releases: its slot goes to `handed`, which has not run yet
    handed.cancel()
    await asyncio.gather(holder, handed, after, return_exceptions=True)
    assert after.done() and not after.cancelled() and slots.in_flight == 0


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        CallSlots(0)


def _questions(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "subject": "math", "question": f"Item {i}: 6 x 7?", "answer": "42"}) + "\n"
                            for i in range(n)))
    return path


class GatedVerifier(ExactBoxedVerifier):
    """Checks only once ``gate`` is set: holds every finished call's question in its checking step."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0

    async def averify(self, response, question):
        self.waiting += 1
        await self.gate.wait()
        return self.verify(response, question)


def _settings(url: str, concurrency: int, lookahead: int | None) -> RunSettings:
    llm = LLMSettings(base_url=url, model="mock-model", max_retries=0)
    return RunSettings(roles={r: llm for r in ("solver", "critic", "reviser")}, concurrency=concurrency, lookahead=lookahead)


@pytest.mark.parametrize("lookahead, calls_while_checking", [(None, 4), (0, 2)])
async def test_lookahead_questions_call_while_finished_ones_are_checked(tmp_path, lookahead, calls_while_checking):
    """K=2: while the first two questions are held in their checking step, the look-ahead (K more
    questions by default against an endpoint) has already sent its calls; without it, nothing more."""
    verifier = GatedVerifier()
    with MockOpenAI(latency_s=0.05) as server:
        run = asyncio.create_task(annotate(load_questions(_questions(tmp_path, 8)), tmp_path / "run", _settings(server.base_url, 2, lookahead),
                                           verifier=verifier))
        for _ in range(400):  # until the look-ahead questions are checked too, or nothing moves
            await asyncio.sleep(0.01)
            if verifier.waiting >= calls_while_checking and server.stats.in_flight == 0:
                break
        await asyncio.sleep(0.3)  # time for any call that should not be made
        assert server.stats.chat_requests == calls_while_checking
        verifier.gate.set()
        result = await run
        assert server.stats.peak_in_flight == 2  # the endpoint never saw more than K calls
    assert result.finished_now == 8 and result.status_counts["accepted"] == 8
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["runs"][-1]["settings"]
    assert recorded["concurrency"] == 2 and recorded["questions_in_flight"] == 2 + calls_while_checking - 2


def test_lookahead_defaults_and_settings(tmp_path):
    assert _settings("http://127.0.0.1:9/v1", 8, None).questions_in_flight == 16  # an endpoint: K more
    embedded = RunSettings(concurrency=2)  # no base_url: the embedded model
    assert embedded.uses_embedded and embedded.questions_in_flight == 2  # keeps each question on its server slot
    config = tmp_path / "s.toml"
    config.write_text("[run]\nconcurrency = 4\nlookahead = 1\n")
    assert load_settings(config).questions_in_flight == 5
    assert load_settings(config, lookahead=0).questions_in_flight == 4
    config.write_text("[run]\nlookahead = -1\n")
    with pytest.raises(Exception, match="lookahead"):
        load_settings(config)
    with pytest.raises(Exception, match="lookahead"):
        load_settings(lookahead=-1)  # a value from Python, not the TOML file, is checked too
