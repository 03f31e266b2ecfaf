"""SFT data: read verified traces, tokenise them with a chat template, mask prompts, pack, collate.

Input rows come from ``scireflect annotate``'s ``sft.jsonl`` (``prompt``/``response``/``messages``,
``stage``, ``id``) or from any exported file whose rows carry OpenAI-style ``messages``
(``[{"role": "system"|"user"|"assistant"|"tool", "content": str}, ...]``; assistant messages may carry
``tool_calls``, tool messages ``tool_call_id`` and ``name``) or ``prompt`` + ``response``.

Tokenisation (:func:`encode_messages`) renders the conversation with the tokenizer's chat template
(or one supplied) and computes the loss on assistant tokens only: every token of the rendered
prompt (system and user turns, the template's role headers, the generation prompt) is labelled
``-100``, as in SciGLM's SFT and the HF ``DataCollatorForCompletionOnlyLM`` recipe. The assistant
turn keeps its end-of-turn tokens, so the model learns to stop.

Tool output is never trained on: ``tool`` messages (tool-calling results) are prompt-side, like user
turns, and inside an assistant message every ```output block of the plain-text Python format is
labelled ``-100`` from the newline after its fence to its closing fence (the sandbox wrote it; the
model wrote the code and the fence that asked for it, which stay trained;
:func:`scireflect.agents.code_blocks.tool_output_spans`).

SciGLM cut questions at 128 tokens and answers at 512 without saying so; here nothing is ever cut:
an example longer than ``max_length`` is reported (count and ids) and skipped (``overlength="skip"``,
the default), kept whole (``"keep"``), or stops the run (``"error"``).

Packing (:func:`pack_examples`, optional) puts several examples in one row of at most ``max_length``
tokens with ``position_ids`` that restart at 0 for each example and no ``attention_mask``; from
transformers 5 the models' mask builders turn restarting position ids into a block-diagonal causal
mask (``masking_utils.find_packed_sequence_indices``), so packed examples never attend to each other.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agents.code_blocks import tool_output_spans
from ..graphs.state import STAGES
from ..rundata.jsonl import JsonlError, iter_jsonl

IGNORE_INDEX = -100
OVERLENGTH_POLICIES = ("skip", "keep", "error")


class SFTDataError(ValueError):
    """An SFT file or row cannot be used; the message names the file and 1-based line."""


class ChatTemplateError(ValueError):
    """The chat template is missing, or does not render conversations as prefix-extending text."""


@dataclass
class SFTRow:
    """One training conversation: ``messages`` (role/content dicts), ``id``, ``stage`` (or ``None``)."""

    id: str
    messages: list[dict[str, Any]]
    stage: str | None = None
    subject: str | None = None


def parse_stages(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"cot,reflection"`` -> ``("cot", "reflection")``; ``None``/``"all"`` -> every stage.

    Raises:
        ValueError: an unknown stage name.
    """
    if spec is None:
        return STAGES
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items or items == ["all"]:
        return STAGES
    bad = [s for s in items if s not in STAGES]
    if bad:
        raise ValueError(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(STAGES)}")
    return tuple(dict.fromkeys(items))


def _tool_calls(calls: Any, where: str) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` in the form chat templates render: ``arguments`` as a dict
    (OpenAI files hold it as JSON text, parsed here with ``json``, never evaluated)."""
    if not isinstance(calls, list):
        raise SFTDataError(f"{where}: 'tool_calls' must be a list")
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise SFTDataError(f"{where}: each tool call needs a 'function' with a string 'name'")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                raise SFTDataError(f"{where}: tool call '{function['name']}': 'arguments' is not JSON") from None
        if not isinstance(arguments, Mapping):
            raise SFTDataError(f"{where}: tool call '{function['name']}': 'arguments' must be an object")
        entry = {"type": "function", "function": {"name": function["name"], "arguments": dict(arguments)}}
        if isinstance(call.get("id"), str):
            entry["id"] = call["id"]
        out.append(entry)
    return out


def _row_messages(row: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    msgs = row.get("messages")
    if msgs is not None:
        if not isinstance(msgs, list) or not msgs:
            raise SFTDataError(f"{where}: 'messages' must be a non-empty list")
        out = []
        for m in msgs:
            if isinstance(m, Mapping) and isinstance(m.get("content"), list):
                raise SFTDataError(f"{where}: the messages carry image parts: train a vision-language model on them "
                                   "(scireflect train --stage instruct)")
            if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
                raise SFTDataError(f"{where}: each message needs string 'role' and 'content'")
            content = "" if m.get("content") is None and m.get("tool_calls") else m.get("content")
            if not isinstance(content, str):
                raise SFTDataError(f"{where}: each message needs string 'role' and 'content'")
            message: dict[str, Any] = {"role": m["role"], "content": content}
            if m["role"] == "assistant" and m.get("tool_calls"):
                message["tool_calls"] = _tool_calls(m["tool_calls"], where)
            if m["role"] == "tool":
                message.update({k: m[k] for k in ("tool_call_id", "name") if isinstance(m.get(k), str)})
            out.append(message)
        if not any(m["role"] == "assistant" and (m["content"].strip() or m.get("tool_calls")) for m in out):
            raise SFTDataError(f"{where}: no non-empty assistant message to train on")
        return out
    prompt, response = row.get("prompt"), row.get("response")
    if not isinstance(prompt, str) or not isinstance(response, str) or not prompt.strip() or not response.strip():
        raise SFTDataError(f"{where}: needs 'messages', or non-empty 'prompt' and 'response'")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


@dataclass
class LoadReport:
    """What :func:`load_sft_rows` read: rows per stage, and rows left out by the stage filter."""

    rows: int = 0
    by_stage: Counter = field(default_factory=Counter)
    filtered_out: Counter = field(default_factory=Counter)


def load_sft_rows(paths: Path | Sequence[Path], stages: Sequence[str] | None = None) -> tuple[list[SFTRow], LoadReport]:
    """Read SFT JSONL files, keeping rows of the given stages.

    Args:
        paths: one or more JSONL files (``sft.jsonl`` of a run, or exports with ``messages``).
        stages: stages to keep (default: all). A row without ``stage`` (an external export) is kept
            only when every stage is kept, since its provenance is unknown.

    Returns:
        ``(rows, report)``; rows in file order.

    Raises:
        SFTDataError: unreadable file, bad JSON, a row without usable messages, or a duplicate id.
    """
    if isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    keep = set(parse_stages(stages))
    all_stages = keep == set(STAGES)
    rows: list[SFTRow] = []
    report = LoadReport()
    seen: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        try:
            lines = list(iter_jsonl(path))
        except JsonlError as exc:
            raise SFTDataError(f"SFT file {exc}") from None
        for lineno, row in lines:
            where = f"{path}:{lineno}"
            messages = _row_messages(row, where)
            rid = str(row.get("id") or f"{path.stem}:{lineno}")
            if rid in seen:
                raise SFTDataError(f"{where}: duplicate id '{rid}' (first at {seen[rid]})")
            seen[rid] = where
            stage = row.get("stage")
            report.rows += 1
            if (stage is None and not all_stages) or (stage is not None and stage not in keep):
                report.filtered_out[stage or "unknown"] += 1
                continue
            report.by_stage[stage or "unknown"] += 1
            rows.append(SFTRow(id=rid, messages=messages, stage=stage, subject=row.get("subject")))
    return rows, report


def _render(tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _response_pieces(text: str) -> list[tuple[str, bool]]:
    """``text`` (an assistant turn as rendered) as ``(piece, trained)``: the ```output blocks' bodies untrained."""
    pieces, at = [], 0
    for start, end in tool_output_spans(text):
        pieces += [(text[at:start], True), (text[start:end], False)]
        at = end
    pieces.append((text[at:], True))
    return [(p, trained) for p, trained in pieces if p]


def encode_messages(tokenizer: Any, messages: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Token ids and labels of one conversation; loss on assistant turns only, never on tool output.

    For each assistant message at index ``i``, the text the template renders for ``messages[:i]``
    with the generation prompt is the prompt part (labels ``-100``) and what ``messages[:i+1]``
    adds to it is the response part (labels = ids), less its ```output blocks' bodies (tool output,
    labels ``-100``). Each part is tokenised on its own (``add_special_tokens=False``; the template
    writes BOS and role tokens), so the boundaries are exact; ``tool`` messages fall in the next
    assistant message's prompt part.

    Returns:
        ``{"input_ids": [int], "labels": [int]}`` of equal length (no truncation).

    Raises:
        ChatTemplateError: no chat template, or a template whose rendering of a longer conversation
            does not start with the rendering of the shorter one (then prompt and response cannot be
            told apart by text).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError("the tokenizer has no chat template; supply one (--chat-template FILE)")
    ids: list[int] = []
    labels: list[int] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], True)
        full = _render(tokenizer, messages[: i + 1], False)
        if not prefix.startswith(done) or not full.startswith(prefix):
            raise ChatTemplateError(
                "the chat template does not render the conversation as growing prefixes "
                "(e.g. it rewrites earlier turns); use a template that does (--chat-template FILE)"
            )
        p_ids = tokenizer(prefix[len(done):], add_special_tokens=False)["input_ids"]
        ids += p_ids
        labels += [IGNORE_INDEX] * len(p_ids)
        for piece, trained in _response_pieces(full[len(prefix):]):
            r_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
            ids += r_ids
            labels += list(r_ids) if trained else [IGNORE_INDEX] * len(r_ids)
        done = full
    return {"input_ids": ids, "labels": labels}


@dataclass
class EncodeReport:
    """Counts of :func:`encode_rows`: examples kept, over-length ids, tokens (prompt + response)."""

    examples: int = 0
    overlength_ids: list[str] = field(default_factory=list)
    overlength_policy: str = "skip"
    max_length: int = 0
    longest: int = 0
    tokens: int = 0
    response_tokens: int = 0
    by_stage: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        """One paragraph for the console: examples, tokens, and the over-length items by id."""
        text = (f"{self.examples} examples, {self.tokens:,} tokens ({self.response_tokens:,} trained response tokens), "
                f"longest {self.longest} tokens; by stage: {dict(self.by_stage) or '-'}")
        if self.overlength_ids:
            verb = "skipped" if self.overlength_policy == "skip" else "kept whole"
            ids = ", ".join(self.overlength_ids[:20]) + (" ..." if len(self.overlength_ids) > 20 else "")
            text += f"\n{len(self.overlength_ids)} over-length (> {self.max_length} tokens) {verb}: {ids}"
        return text


def encode_rows(tokenizer: Any, rows: Iterable[SFTRow], *, max_length: int, overlength: str = "skip") -> tuple[list[dict[str, Any]], EncodeReport]:
    """Tokenise rows, apply the over-length policy, and count.

    Args:
        max_length: the longest example, in tokens (prompt + response).
        overlength: ``skip`` (default; reported), ``keep`` (trained whole, never cut) or ``error``.

    Returns:
        ``(examples, report)``; each example ``{"id", "stage", "input_ids", "labels"}``.

    Raises:
        ValueError: unknown policy, or ``overlength="error"`` and an example is too long (ids listed).
        ChatTemplateError: see :func:`encode_messages`.
    """
    if overlength not in OVERLENGTH_POLICIES:
        raise ValueError(f"overlength must be one of {', '.join(OVERLENGTH_POLICIES)}")
    if max_length < 2:
        raise ValueError("max_length must be >= 2")
    report = EncodeReport(overlength_policy=overlength, max_length=max_length)
    examples = []
    for row in rows:
        enc = encode_messages(tokenizer, row.messages)
        n = len(enc["input_ids"])
        n_resp = sum(1 for x in enc["labels"] if x != IGNORE_INDEX)
        if n_resp == 0:
            continue  # nothing to learn (empty assistant turn after rendering)
        if n > max_length:
            report.overlength_ids.append(row.id)
            if overlength == "skip":
                continue
        report.examples += 1
        report.tokens += n
        report.response_tokens += n_resp
        report.longest = max(report.longest, n)
        report.by_stage[row.stage or "unknown"] += 1
        examples.append({"id": row.id, "stage": row.stage, **enc})
    if overlength == "error" and report.overlength_ids:
        raise ValueError(f"{len(report.overlength_ids)} examples exceed {max_length} tokens: {', '.join(report.overlength_ids[:20])}")
    return examples, report


def pack_examples(examples: Sequence[Mapping[str, Any]], max_length: int) -> list[dict[str, list[int]]]:
    """Pack examples into rows of at most ``max_length`` tokens (first-fit decreasing).

    Each packed row: ``input_ids``, ``labels`` (each example's own masks), ``position_ids``
    restarting at 0 at each example start (the signal transformers uses to keep packed examples
    from attending to each other). An example longer than ``max_length`` (kept by
    ``overlength="keep"``) gets a row of its own. Labels are never shifted across examples: the
    first token of each example is a prompt token labelled ``-100``.
    """
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
    bins: list[list[int]] = []
    sizes: list[int] = []
    for i in order:
        n = len(examples[i]["input_ids"])
        for b, size in enumerate(sizes):
            if size + n <= max_length:
                bins[b].append(i)
                sizes[b] += n
                break
        else:
            bins.append([i])
            sizes.append(n)
    packed = []
    for b in bins:
        row: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
        for i in sorted(b):
            ex = examples[i]
            row["input_ids"] += list(ex["input_ids"])
            row["labels"] += list(ex["labels"])
            row["position_ids"] += list(range(len(ex["input_ids"])))
        packed.append(row)
    return packed


class ListDataset:
    """A map-style dataset over a list of dicts (``len`` and indexing), as the HF Trainer accepts."""

    def __init__(self, items: Sequence[Mapping[str, Any]]):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        return self.items[i]


@dataclass
class SFTCollator:
    """Right-pads a batch of examples into tensors.

    Output (``B`` examples, ``T`` = longest in batch, rounded up to ``pad_to_multiple_of``):
    ``input_ids`` ``[B, T]`` long (pad: ``pad_token_id``), ``labels`` ``[B, T]`` (pad: -100),
    and ``attention_mask`` ``[B, T]`` (1 on real tokens) for unpacked batches; packed batches
    (items with ``position_ids``) get ``position_ids`` ``[B, T]`` instead of an attention mask,
    the padding continuing as its own position run so that it forms a separate block.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(x["input_ids"]) for x in batch)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        packed = "position_ids" in batch[0]
        ids = torch.full((len(batch), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), longest), IGNORE_INDEX, dtype=torch.long)
        extra = torch.zeros((len(batch), longest), dtype=torch.long)
        for r, x in enumerate(batch):
            n = len(x["input_ids"])
            ids[r, :n] = torch.tensor(x["input_ids"], dtype=torch.long)
            labels[r, :n] = torch.tensor(x["labels"], dtype=torch.long)
            if packed:
                extra[r, :n] = torch.tensor(x["position_ids"], dtype=torch.long)
                extra[r, n:] = torch.arange(longest - n, dtype=torch.long)
            else:
                extra[r, :n] = 1
        out = {"input_ids": ids, "labels": labels}
        out["position_ids" if packed else "attention_mask"] = extra
        return out
