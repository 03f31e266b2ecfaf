"""Loops cut while the reply streams (issue 24, item 5): finish reason ``loop``, the tokens saved
counted in the step, and the verifier reading such a reply as ``invalid`` (``degenerate``)."""

from __future__ import annotations

from dataclasses import replace
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool

from scireflect.agents.openai_chat import OpenAIStreamingChat
from scireflect.agents.retry import RetryPolicy
from scireflect.agents.roles import LOOP, STREAM_LOOP_MIN_CHARS, Agent, CallProgress, LoopCut
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.context import AnnotationContext, verify_with
from scireflect.graphs.state import initial_state
from scireflect.testing.mock_openai import MockOpenAI
from scireflect.verifiers.answer import verify_answer
from scireflect.verifiers.extract import find_final_answer
from scireflect.verifiers.registry import InProcessAnswerVerifier
from tests.fakes import REFLECTION_LOOP, ScriptedChatModel
from tests.test_graph import QUESTION, RIGHT, team

PASSAGE = "Let me recheck the sum of the values once more: 12 + 7 = 19, and 19 + 5 = 24. "  # 78 characters
LOOPING = "Step 1: add the values.\n" + PASSAGE * 60
PROMPT = ChatPromptTemplate.from_messages([("human", "{problem}")])


class StreamingScripted(ScriptedChatModel):
    """The scripted model, streamed in chunks of 8 characters (as a server streams tokens)."""

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        message = self._next(messages, stop, **kwargs).generations[0].message
        text = str(message.content)
        for start in range(0, len(text), 8):
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[start:start + 8]))
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=message.response_metadata,
                                                         usage_metadata=message.usage_metadata))


def stream(text: str, progress: CallProgress, chunk: int = 4) -> int:
    """Feed ``text`` to ``progress`` in chunks of ``chunk`` characters; the characters fed before a cut."""
    for start in range(0, len(text), chunk):
        try:
            progress.add(text[start:start + chunk])
        except LoopCut:
            return start + chunk
    return len(text)


def test_a_streaming_loop_is_cut_soon_after_it_is_long_enough():
    progress = CallProgress(loop_check_chars=512)
    progress.start_try()
    fed = stream(LOOPING, progress)
    assert fed < len(LOOPING) // 2  # stopped well before the end
    assert STREAM_LOOP_MIN_CHARS <= fed <= 24 + STREAM_LOOP_MIN_CHARS + 2 * 512 + 2 * len(PASSAGE)


def test_plain_text_a_short_repetition_and_checks_off_are_never_cut():
    lines = "".join(f"Step {i}: {i} * 3 = {i * 3}, which we carry to the next line.\n" for i in range(200))
    short = "Step 1.\n" + "| 0 | 0 | 0 |\n" * 60 + lines  # 840 repeated characters, then the reply goes on
    for text in (lines, short):
        progress = CallProgress(loop_check_chars=512)
        progress.start_try()
        assert stream(text, progress) == len(text)
    off = CallProgress()
    off.start_try()
    assert stream(LOOPING, off) == len(LOOPING)


def test_a_loop_that_numbers_its_copies_is_cut_and_a_numbered_list_is_not():
    # the 1.5B's own loop (GSM8K train 1387, the reflection benchmark): each copy a new list item, so the
    # text never repeats as written; it ran to max_tokens before list numbers were masked
    item = ("{n}. If the problem is asking for the number of pieces of gum each person will get in terms of the total "
            "number of pieces of gum per person, the answer is:\n    \\[\n    \\boxed{{36.3333}}\n    \\]\n\n")
    looping = "Let us count the gum.\n\n" + "".join(item.format(n=n) for n in range(1, 60))
    progress = CallProgress(loop_check_chars=512)
    progress.start_try()
    assert stream(looping, progress) < len(looping) // 2
    assert getattr(find_final_answer(looping), "kind", None) == "degenerate"  # read afterwards: a loop, not an answer
    listing = "".join(f"{n}. Day {n} adds {n * 7} pages, so the total is {n * (n + 1) * 7 // 2} pages.\n" for n in range(1, 120))
    progress = CallProgress(loop_check_chars=512)
    progress.start_try()
    assert stream(listing, progress) == len(listing)


async def test_the_agent_stops_a_looping_reply_and_counts_the_tokens_saved():
    model = StreamingScripted(replies=[LOOPING], max_tokens=4000)
    reply = await Agent("solver", model, "m", retry=RetryPolicy(max_retries=0)).ainvoke(PROMPT, {"problem": "Add."})
    assert reply.finish_reason == LOOP and reply.tokens_estimated and len(reply.text) < len(LOOPING) // 2
    assert reply.output_tokens > 0 and reply.loop_saved_tokens == 4000 - reply.output_tokens
    # a model that answers in one piece has nothing left to save: its reply is judged as it is
    whole = ScriptedChatModel(replies=[LOOPING], max_tokens=4000)
    reply = await Agent("solver", whole, "m", retry=RetryPolicy(max_retries=0)).ainvoke(PROMPT, {"problem": "Add."})
    assert reply.finish_reason == "stop" and reply.text == LOOPING and reply.loop_saved_tokens == 0


async def test_the_lean_client_stops_reading_a_looping_stream():
    with MockOpenAI(answers={"Add": PASSAGE * 80}) as mock:
        chat = OpenAIStreamingChat(base_url=mock.base_url, model=mock.model, api_key="k", temperature=0.0,
                                   max_tokens=4096, timeout_s=5.0)
        try:
            agent = Agent("solver", chat, "m", retry=RetryPolicy(max_retries=0))  # type: ignore[arg-type]
            reply = await agent.ainvoke(PROMPT, {"problem": "Add the values."})
        finally:
            await chat.aclose()
    full = mock.reply([{"role": "user", "content": "Add the values."}])
    assert reply.finish_reason == LOOP and len(reply.text) < len(full) // 2 and full.startswith(reply.text)
    assert reply.loop_saved_tokens == 4096 - reply.output_tokens > 3000


def test_the_verifier_reads_a_loop_stop_as_degenerate_invalid():
    found = find_final_answer("Step 1: 2 + 2 = 4.\n\\boxed{4}", finish_reason=LOOP)
    assert found.kind == "degenerate"
    verdict = verify_answer("Step 1: 2 + 2 = 4.\n\\boxed{4}", {"answer": "4"}, finish_reason=LOOP)
    assert verdict.ok is False and verdict.reason == "invalid" and verdict.details["invalid"] == "degenerate"


async def test_a_looping_attempt_in_the_graph_records_loop_and_goes_on():
    agents, models = team([], ["Step 1 loops."], [RIGHT])
    agents = replace(agents, solver=Agent("solver", StreamingScripted(replies=[LOOPING], max_tokens=3000), "solver-model",
                                          retry=RetryPolicy(max_retries=0)))
    context = AnnotationContext(agents=agents, verify=verify_with(InProcessAnswerVerifier()), budget=REFLECTION_LOOP)
    state = await build_annotation_graph().ainvoke(initial_state(QUESTION, "math"), context=context)
    first = state["steps"][0]
    assert first["finish_reason"] == LOOP and first["loop_saved_tokens"] == 3000 - first["output_tokens"]
    assert first["verdict"]["reason"] == "invalid" and first["verdict"]["details"]["invalid"] == "degenerate"
    assert "loop" in state["steps"][1]["messages"][-1]["content"]  # the Critic hears of it
    assert state["status"] == "accepted" and "loop_saved_tokens" not in state["steps"][2]


async def test_tool_rounds_are_not_checked():
    model = StreamingScripted(replies=[LOOPING], max_tokens=4000)
    agent = Agent("solver", model, "m", retry=RetryPolicy(max_retries=0)).with_tools([_noop])
    reply = await agent.ainvoke(PROMPT, {"problem": "Add."})
    assert reply.finish_reason == "stop" and reply.loop_saved_tokens == 0


@tool
def _noop(x: str) -> str:
    """Does nothing."""
    return x
