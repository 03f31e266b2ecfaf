"""SFT data path: reading rows, stage filter, prompt masking, over-length policy, packing, collation.

Uses a tiny word-level tokenizer built offline (``tests/fixtures/training/tiny_model.py``) and SFT
rows from a real annotation run (``tests/fixtures/training/sft_rows.jsonl``: 3 accepted traces of
the embedded Qwen2.5-Coder-1.5B on data/sample, 7 built from data/sample reference solutions).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.fixtures.training import tiny_model  # noqa: E402
from scireflect.training.data import (  # noqa: E402
    IGNORE_INDEX,
    ChatTemplateError,
    SFTCollator,
    SFTDataError,
    encode_messages,
    encode_rows,
    load_sft_rows,
    pack_examples,
    parse_stages,
)

ROWS = tiny_model.SFT_ROWS


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_model.build_tokenizer(tiny_model.sft_texts())


def test_prompt_tokens_are_masked_and_response_tokens_kept(tokenizer):
    rows, _ = load_sft_rows(ROWS)
    row = rows[0]
    enc = encode_messages(tokenizer, row.messages)
    ids, labels = enc["input_ids"], enc["labels"]
    assert len(ids) == len(labels)
    n_prompt = labels.index(next(x for x in labels if x != IGNORE_INDEX))
    # Everything up to the assistant header is masked, every later token is trained on.
    assert all(x == IGNORE_INDEX for x in labels[:n_prompt])
    assert labels[n_prompt:] == ids[n_prompt:]
    prompt_text = tokenizer.decode(ids[:n_prompt])
    response_text = tokenizer.decode(ids[n_prompt:])
    assert prompt_text.startswith("<s>") and "<|user|>" in prompt_text and prompt_text.rstrip().endswith("<|assistant|>")
    assert row.messages[0]["content"].split()[0] in prompt_text
    assert "<|user|>" not in response_text and "boxed" in response_text
    assert response_text.rstrip().endswith("<|end|>")  # the model learns to stop
    # The tokenisation matches rendering the whole conversation at once.
    whole = tokenizer(tokenizer.apply_chat_template(row.messages, tokenize=False), add_special_tokens=False)["input_ids"]
    assert whole == ids


def test_every_assistant_turn_is_trained_and_every_user_turn_masked(tokenizer):
    messages = [
        {"role": "system", "content": "Be exact ."},
        {"role": "user", "content": "What is 2 + 2 ?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3 ?"},
        {"role": "assistant", "content": "6"},
    ]
    enc = encode_messages(tokenizer, messages)
    trained = tokenizer.convert_ids_to_tokens([i for i, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab != IGNORE_INDEX])
    assert trained == ["4", "<|end|>", "6", "<|end|>"]


def test_template_without_prefix_property_is_rejected(tokenizer):
    tok = tiny_model.build_tokenizer(["a b"])
    # A template that puts the generation prompt somewhere the full conversation does not.
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}ANSWER: {% endif %}"
    with pytest.raises(ChatTemplateError):
        encode_messages(tok, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    tok.chat_template = None
    with pytest.raises(ChatTemplateError, match="no chat template"):
        encode_messages(tok, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])


def test_overlength_items_are_reported_and_skipped_or_kept_whole_never_cut(tokenizer):
    rows, _ = load_sft_rows(ROWS)
    lengths = {r.id: len(encode_messages(tokenizer, r.messages)["input_ids"]) for r in rows}
    limit = sorted(lengths.values())[len(lengths) // 2]  # about half the rows are too long
    too_long = sorted(i for i, n in lengths.items() if n > limit)
    assert too_long

    kept, report = encode_rows(tokenizer, rows, max_length=limit, overlength="skip")
    assert sorted(report.overlength_ids) == too_long
    assert report.examples == len(rows) - len(too_long) == len(kept)
    assert all(len(e["input_ids"]) <= limit for e in kept)
    assert f"{len(too_long)} over-length" in report.describe() and too_long[0] in report.describe()

    whole, report = encode_rows(tokenizer, rows, max_length=limit, overlength="keep")
    assert sorted(report.overlength_ids) == too_long and len(whole) == len(rows)
    assert {e["id"]: len(e["input_ids"]) for e in whole} == lengths  # nothing truncated

    with pytest.raises(ValueError, match="exceed"):
        encode_rows(tokenizer, rows, max_length=limit, overlength="error")


def test_stage_filter_and_row_formats(tmp_path):
    rows, report = load_sft_rows(ROWS, parse_stages("cot,reflection"))
    assert {r.stage for r in rows} == {"cot", "reflection"}
    assert report.filtered_out == {"answer_guided": 2}
    assert report.rows == 10 and len(rows) == 8
    with pytest.raises(ValueError, match="unknown stage"):
        parse_stages("cot,guessing")

    export = tmp_path / "export.jsonl"
    export.write_text(
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}) + "\n"
        + json.dumps({"id": "p1", "prompt": "q2", "response": "a2", "stage": "cot"}) + "\n"
    )
    rows, _ = load_sft_rows(export)
    assert [r.id for r in rows] == ["export:1", "p1"]
    assert rows[1].messages[1] == {"role": "assistant", "content": "a2"}
    # An export row without a stage is kept only when every stage is wanted.
    rows, report = load_sft_rows(export, ["cot"])
    assert [r.id for r in rows] == ["p1"] and report.filtered_out == {"unknown": 1}

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "messages": [{"role": "user", "content": "q"}]}) + "\n")
    with pytest.raises(SFTDataError, match=r"bad.jsonl:1: no non-empty assistant"):
        load_sft_rows(bad)


def test_collator_pads_right_with_masked_labels(tokenizer):
    rows, _ = load_sft_rows(ROWS)
    examples, _ = encode_rows(tokenizer, rows[:3], max_length=4096)
    batch = SFTCollator(pad_token_id=tokenizer.pad_token_id, pad_to_multiple_of=8)(examples)
    lengths = [len(e["input_ids"]) for e in examples]
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["input_ids"].shape[1] % 8 == 0 and batch["input_ids"].shape[1] >= max(lengths)
    for r, n in enumerate(lengths):
        assert batch["attention_mask"][r].sum().item() == n
        assert (batch["labels"][r, n:] == IGNORE_INDEX).all()
        assert (batch["input_ids"][r, n:] == tokenizer.pad_token_id).all()
        assert batch["labels"][r, :n].tolist() == examples[r]["labels"]


def test_packing_keeps_masks_and_restarts_positions(tokenizer):
    import torch
    from transformers.masking_utils import find_packed_sequence_indices

    rows, _ = load_sft_rows(ROWS)
    examples, _ = encode_rows(tokenizer, rows, max_length=4096)
    limit = max(len(e["input_ids"]) for e in examples) * 2
    packed = pack_examples(examples, limit)
    assert len(packed) < len(examples)
    assert sum(len(p["input_ids"]) for p in packed) == sum(len(e["input_ids"]) for e in examples)
    assert all(len(p["input_ids"]) <= limit for p in packed)
    # Each example's labels survive as they were; positions restart at each example start.
    all_labels = sorted(tuple(e["labels"]) for e in examples)
    found = []
    for p in packed:
        starts = [i for i, pos in enumerate(p["position_ids"]) if pos == 0] + [len(p["position_ids"])]
        found += [tuple(p["labels"][a:b]) for a, b in zip(starts, starts[1:], strict=False)]
        assert all(p["labels"][a] == IGNORE_INDEX for a in starts[:-1])  # no label crosses an example boundary
    assert sorted(found) == all_labels
    batch = SFTCollator(pad_token_id=tokenizer.pad_token_id)(packed[:2])
    assert "attention_mask" not in batch and batch["position_ids"].shape == batch["input_ids"].shape
    seq = find_packed_sequence_indices(batch["position_ids"])
    assert seq is not None  # transformers sees separate sequences, so it builds a block-diagonal mask
    n_first = sum(1 for pos in packed[0]["position_ids"] if pos == 0)
    assert int(seq[0, len(packed[0]["input_ids"]) - 1]) == n_first - 1
    assert torch.equal(batch["labels"][0, : len(packed[0]["labels"])], torch.tensor(packed[0]["labels"]))
