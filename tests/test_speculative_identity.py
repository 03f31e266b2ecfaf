"""Speculative decoding never changes greedy output: the embedded server with and without a draft model
gives byte-identical completions of five real Solver prompts (the first five questions of the shipped
sample: GSM8K, MATH, SciBench, ...).

Two pairs:

* the 0.5B as its own draft (runs wherever the test extra is installed, CI included). The draft is
  accepted almost always, so this checks the part of speculative decoding that could change output
  without any rejection: the target scores drafted tokens in one batch instead of one by one, and
  llama.cpp's CPU kernels must give the same argmax either way (batch invariance), with the
  verification's accept/append bookkeeping on top.
* the default pair, 1.5B target with the 0.5B draft, when the 1.5B is installed (``.[embedded]``):
  here drafts are also rejected part-way, which exercises the rollback of the target's KV cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from scireflect.agents.prompts import ANSWER_PROMPTS, subject_variant
from scireflect.embedded import DraftSettings, EmbeddedServer, available_embedded_models, materialise_embedded_model

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "questions.jsonl"
SMALL, DEFAULT = "qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m"


def _prompts(n: int = 5) -> list[list[dict[str, str]]]:
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    picked, seen = [], set()
    for row in rows:  # one question per source, so the five prompts differ in kind
        source = row["id"].split("-")[0]
        if source not in seen:
            seen.add(source)
            picked.append(row)
    picked = (picked + [r for r in rows if r not in picked])[:n]
    out = []
    for row in picked:
        template, variables = ANSWER_PROMPTS.solve(row, subject_variant(row.get("subject")))
        roles = {"system": "system", "human": "user"}
        out.append([{"role": roles[m.type], "content": str(m.content)} for m in template.format_messages(**variables)])
    return out


def _greedy(target: Path, draft: DraftSettings | None, prompts: list[list[dict[str, str]]], max_tokens: int) -> tuple[list[str], int]:
    """Greedy completions, one request at a time; and the number of drafted tokens."""
    server = EmbeddedServer(target, parallel=1, context_per_slot=2048, draft=draft).start()
    try:
        texts, drafted = [], 0
        with httpx.Client(timeout=600.0) as client:
            for messages in prompts:
                body = {"model": "m", "messages": messages, "temperature": 0.0, "max_tokens": max_tokens, "cache_prompt": False}
                reply = client.post(f"{server.base_url}/chat/completions", json=body).raise_for_status().json()
                texts.append(reply["choices"][0]["message"]["content"])
                drafted += int(reply.get("timings", {}).get("draft_n", 0))
        return texts, drafted
    finally:
        server.stop()


@pytest.mark.parametrize("target_name, max_tokens", [(SMALL, 128), (DEFAULT, 96)])
def test_greedy_output_is_identical_with_and_without_a_draft(target_name, max_tokens):
    installed = available_embedded_models()
    if SMALL not in installed or target_name not in installed:
        pytest.skip(f"needs {target_name} and the 0.5B draft installed")
    target = materialise_embedded_model(target_name)
    draft = DraftSettings(path=materialise_embedded_model(SMALL), name=SMALL)
    prompts = _prompts()
    plain, none_drafted = _greedy(target, None, prompts, max_tokens)
    speculative, drafted = _greedy(target, draft, prompts, max_tokens)
    assert none_drafted == 0
    assert drafted > 0, "the draft model proposed no token: speculative decoding did not run"
    assert all(len(t) > 50 for t in plain)
    for i, (a, b) in enumerate(zip(plain, speculative, strict=True)):
        assert a == b, f"prompt {i}: outputs differ from character {len(os.path.commonprefix([a, b]))}: {a!r} vs {b!r}"
