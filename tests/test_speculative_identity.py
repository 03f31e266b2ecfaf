"""Speculative decoding keeps the target model's greedy choices: with and without a draft model, the
embedded server's greedy completions of five real Solver prompts (the first question of each source
in the shipped sample: GSM8K, MATH, SciBench, ...) agree token for token, except where the plain run
itself had a near-tie between its two best tokens.

Why not byte-identical: with a draft, the target scores the drafted tokens in one batch instead of
one at a time, and llama.cpp's CPU kernels are not batch-invariant (a batch of N tokens runs other
matrix and attention kernels than a single token, which round differently in the last bits). Where
the two best next tokens are within rounding of each other, the choice can flip, and the texts then
go their own ways. Measured with the 0.5B drafting for itself: a prompt diverged after 476
characters where the plain run's best token led its runner-up by 0.23 nats, and the draft run took
the runner-up; it stays so with CPU weight repacking off. Continuous batching of two
slots changes the batch a sequence is scored in just the same, so greedy output in a run with
several questions in flight was never reproducible to the byte either.

Two pairs:

* the 0.5B as its own draft (wherever the test extra is installed, CI included): drafts are almost
  always accepted, so this isolates the batched scoring of drafted tokens.
* the default pair, 1.5B target with the 0.5B draft, when the 1.5B is installed (``.[embedded]``):
  drafts are also rejected part-way, which exercises the rollback of the target's cache.
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


def _greedy(target: Path, draft: DraftSettings | None, prompts: list[list[dict[str, str]]],
            max_tokens: int) -> tuple[list[str], list[list[dict]], int]:
    """Greedy completions, one request at a time: texts, per-token top-2 log-probabilities (plain
    runs only: llama.cpp does not draft for requests that ask for them) and the drafted token count."""
    server = EmbeddedServer(target, parallel=1, context_per_slot=2048, draft=draft).start()
    try:
        texts, tokens, drafted = [], [], 0
        with httpx.Client(timeout=900.0) as client:
            for messages in prompts:
                body = {"model": "m", "messages": messages, "temperature": 0.0, "max_tokens": max_tokens, "cache_prompt": False}
                if draft is None:
                    body.update(logprobs=True, top_logprobs=2)
                reply = client.post(f"{server.base_url}/chat/completions", json=body).raise_for_status().json()
                texts.append(reply["choices"][0]["message"]["content"])
                tokens.append(((reply["choices"][0].get("logprobs") or {}).get("content")) or [])
                drafted += int(reply.get("timings", {}).get("draft_n", 0))
        return texts, tokens, drafted
    finally:
        server.stop()


def _choice_at(tokens: list[dict], offset: int) -> tuple[int, list[tuple[str, float]]]:
    """Where the token holding character ``offset`` of the text starts, and the plain run's
    candidates for it, best first: ``(start, [(text, logprob), ...])``."""
    seen = 0
    for token in tokens:
        if seen + len(token["token"]) > offset:
            return seen, sorted(((t["token"], t["logprob"]) for t in token["top_logprobs"]), key=lambda c: -c[1])
        seen += len(token["token"])
    return seen, []


#: Largest lead of the plain run's best token over its runner-up that a draft may flip. Scoring in a
#: batch changes the logits by rounding only, but the activations are quantized to 8 bits before
#: each quantized matrix product, so a last-bit change can move a value by one quantization step
#: and the logits by a few tenths of a nat: the flip measured here was at 0.23 nats. A real choice
#: leads by whole nats; a draft accepted against the target's choice would show one.
NEAR_TIE = 0.5
@pytest.mark.parametrize("target_name, max_tokens", [(SMALL, 128), (DEFAULT, 96)])
def test_greedy_choices_are_the_targets_with_and_without_a_draft(target_name, max_tokens):
    installed = available_embedded_models()
    if SMALL not in installed or target_name not in installed:
        pytest.skip(f"needs {target_name} and the 0.5B draft installed")
    target = materialise_embedded_model(target_name)
    draft = DraftSettings(path=materialise_embedded_model(SMALL), name=SMALL)
    prompts = _prompts()
    plain, tokens, none_drafted = _greedy(target, None, prompts, max_tokens)
    speculative, _, drafted = _greedy(target, draft, prompts, max_tokens)
    assert none_drafted == 0
    assert drafted > 0, "the draft model proposed no token: speculative decoding did not run"
    assert all(len(t) > 50 for t in plain) and all(tokens)
    for i, (a, b) in enumerate(zip(plain, speculative, strict=True)):
        if a == b:
            continue
        offset = len(os.path.commonprefix([a, b]))
        start, candidates = _choice_at(tokens[i], offset)
        where = f"prompt {i}, character {offset}: {a[offset - 40:offset + 40]!r} vs {b[offset - 40:offset + 40]!r}"
        assert len(candidates) == 2, where
        (_, best), (runner_up, second) = candidates
        assert b[start:].startswith(runner_up), f"with a draft the text took a token the plain run did not rank second; {where}"
        assert best - second < NEAR_TIE, f"the plain run's best token led by {best - second:.3f} nats (not a tie); {where}"
