"""Vision-language SFT data: figure rows and traces with images, tokenised by a processor, prompts and images masked.

SciTune (Horawalavithana et al. 2023, arXiv 2307.01139) tunes a LLaVA-style model in two stages;
each reads its own rows here:

``align``     concept alignment: a figure and a fixed instruction (:data:`ALIGN_PROMPT`); the
              target is the figure's caption, OCR text and mentions (each can be left out,
              ``targets``, as in SciTune's ablations). Rows: any JSONL with ``images`` and the text
              modalities (``scireflect convert scicap``, a question file with figures). A missing
              ``ocr`` is read with Tesseract (:mod:`scireflect.rundata.ocr`).
``instruct``  instruction tuning on verified traces: the question with its figure, the accepted
              solution as the target. Rows: a run's ``sft.jsonl`` (figure references, read from
              the run's question-file directory) or a ``messages``/``jsonl`` export (``images``
              paths inside the export folder).

Every image is read as untrusted input (:func:`scireflect.rundata.images.load_figure`: inside the data
file's folder, decoded by Pillow, size-limited; references checked against their sha256).

Encoding (:func:`encode_example`): the processor's chat template renders the conversation with one
``{"type": "image"}`` part per figure; the processor expands each image into its image tokens. The
rendered prompt (the user turn and the generation prompt, image tokens included) is labelled
``-100``, and so is every image token anywhere: the loss is on response tokens only.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agents.figures import FigureError, content_text
from ..rundata.images import figure_root, load_figure, read_figure
from ..rundata.jsonl import JsonlError, iter_jsonl
from .data import IGNORE_INDEX, ChatTemplateError, SFTDataError, parse_stages

VISION_STAGES = ("align", "instruct")
ALIGN_TARGETS = ("caption", "ocr", "mentions")
ALIGN_PROMPT = "Describe this scientific figure: its caption, the text written in it, and what the paper says about it."
_TARGET_LABELS = {"caption": "Caption", "ocr": "Text in the figure", "mentions": "The paper says"}


@dataclass
class VisionRow:
    """One training conversation with figures: ``prompt`` (user text), ``response`` (target), ``images`` (bytes)."""

    id: str
    prompt: str
    response: str
    images: list[bytes]
    stage: str | None = None
    subject: str | None = None


@dataclass
class VisionLoadReport:
    """What the loaders read: rows kept, rows without images or target, OCR filled, stages left out."""

    rows: int = 0
    kept: int = 0
    without_images: int = 0
    without_target: int = 0
    ocr_filled: int = 0
    filtered_out: Counter = field(default_factory=Counter)


def parse_targets(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"caption,ocr"`` -> ``("caption", "ocr")``; ``None`` -> all of :data:`ALIGN_TARGETS`.

    Raises:
        ValueError: an unknown target or none at all.
    """
    items = ALIGN_TARGETS if spec is None else [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in items if s not in ALIGN_TARGETS]
    if bad or not items:
        raise ValueError(f"unknown alignment target(s) {', '.join(bad) or '(none)'}; choose from {', '.join(ALIGN_TARGETS)}")
    return tuple(dict.fromkeys(items))


def _row_images(row: Mapping[str, Any], path: Path, where: str) -> list[bytes]:
    """The bytes of a row's figures: path strings relative to the data file, or references read
    from the run's question-file directory (``sft.jsonl`` beside a ``run.json``) and sha256-checked."""
    out = []
    root = None
    for item in row.get("images") or []:
        try:
            if isinstance(item, str):
                out.append(load_figure(item, path.parent)[1])
            elif isinstance(item, Mapping):
                root = root or figure_root(path.parent) or path.parent
                out.append(read_figure(root, item))
            else:
                raise FigureError("an image must be a path or a figure reference")
        except FigureError as exc:
            raise SFTDataError(f"{where}: image {item if isinstance(item, str) else item.get('path')!r}: {exc}") from None
    return out


def align_target(row: Mapping[str, Any], targets: Sequence[str]) -> str:
    """The alignment target of a figure row: ``Caption: ...``, ``Text in the figure: ...``,
    ``The paper says: ...`` lines for the ``targets`` it has (empty when it has none)."""
    lines = []
    for name in targets:
        value = row.get(name)
        text = " ".join(str(v).strip() for v in value) if isinstance(value, list) else str(value or "").strip()
        if text:
            lines.append(f"{_TARGET_LABELS[name]}: {text}")
    return "\n".join(lines)


def load_align_rows(paths: Sequence[Path], targets: Sequence[str] = ALIGN_TARGETS, *,
                    ocr_timeout_s: float = 30.0) -> tuple[list[VisionRow], VisionLoadReport]:
    """Rows of the ``align`` stage from JSONL files of figures (see the module docstring).

    Raises:
        SFTDataError: unreadable file or bad JSON, a bad image (file and line named), a duplicate id.
        scireflect.rundata.ocr.OcrUnavailable: ``ocr`` is a target, a row lacks it and Tesseract is missing.
    """
    from ..rundata.ocr import ocr_image

    rows, report, seen = [], VisionLoadReport(), set()
    for path in map(Path, paths):
        for lineno, row in _lines(path):
            where = f"{path}:{lineno}"
            report.rows += 1
            if not row.get("images"):
                report.without_images += 1
                continue
            images = _row_images(row, path, where)
            if "ocr" in targets and not str(row.get("ocr") or "").strip():
                row = {**row, "ocr": " ".join(filter(None, (ocr_image(data, timeout_s=ocr_timeout_s) for data in images)))}
                report.ocr_filled += 1
            target = align_target(row, targets)
            if not target:
                report.without_target += 1
                continue
            rid = _unique_id(row, path, lineno, seen, where)
            rows.append(VisionRow(rid, ALIGN_PROMPT, target, images, stage="align", subject=row.get("subject")))
    report.kept = len(rows)
    return rows, report


def load_instruct_rows(paths: Sequence[Path], stages: Sequence[str] | None = None) -> tuple[list[VisionRow], VisionLoadReport]:
    """Rows of the ``instruct`` stage from ``sft.jsonl`` files or exports (see the module docstring);
    ``stages`` filters trace stages as :func:`scireflect.training.data.load_sft_rows` does.

    Raises:
        SFTDataError: unreadable file or bad JSON, no prompt and response, a bad image, a duplicate id.
    """
    keep = set(parse_stages(stages))
    rows, report, seen = [], VisionLoadReport(), set()
    for path in map(Path, paths):
        for lineno, row in _lines(path):
            where = f"{path}:{lineno}"
            report.rows += 1
            stage = row.get("stage")
            if stage is not None and stage not in keep:
                report.filtered_out[stage] += 1
                continue
            prompt, response = _prompt_response(row, where)
            images = _row_images(row, path, where)
            if not images:
                report.without_images += 1
            rid = _unique_id(row, path, lineno, seen, where)
            rows.append(VisionRow(rid, prompt, response, images, stage=stage, subject=row.get("subject")))
    report.kept = len(rows)
    return rows, report


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        return list(iter_jsonl(path))
    except JsonlError as exc:
        raise SFTDataError(f"data file {exc}") from None


def _unique_id(row: Mapping[str, Any], path: Path, lineno: int, seen: set[str], where: str) -> str:
    rid = str(row.get("id") or f"{path.stem}:{lineno}")
    if rid in seen:
        raise SFTDataError(f"{where}: duplicate id '{rid}'")
    seen.add(rid)
    return rid


def _prompt_response(row: Mapping[str, Any], where: str) -> tuple[str, str]:
    """The user text and the assistant text of an SFT row (``messages`` with text or image parts, or ``prompt``/``response``)."""
    messages = row.get("messages")
    if isinstance(messages, list):
        users = [content_text(m.get("content")) for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
        answers = [content_text(m.get("content")) for m in messages if isinstance(m, Mapping) and m.get("role") == "assistant"]
        prompt, response = (users[0] if users else ""), (answers[-1] if answers else "")
    else:
        prompt, response = str(row.get("prompt") or ""), str(row.get("response") or "")
    if not prompt.strip() or not response.strip():
        raise SFTDataError(f"{where}: needs a user prompt and an assistant response")
    return prompt, response


def _pil(data: bytes) -> Any:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def conversation(row: VisionRow) -> list[dict[str, Any]]:
    """The row as chat messages: the user turn holds one ``{"type": "image"}`` part per figure, then the text."""
    user = [*({"type": "image"} for _ in row.images), {"type": "text", "text": row.prompt}]
    return [{"role": "user", "content": user}, {"role": "assistant", "content": row.response}]


def encode_example(processor: Any, row: VisionRow) -> dict[str, Any]:
    """Processor outputs of one row (batch dimension 1) with ``labels``: the prompt and every image token ``-100``.

    Raises:
        ChatTemplateError: no chat template, or one that does not render the conversation as a
            prompt followed by the response.
    """
    if not getattr(processor, "chat_template", None):
        raise ChatTemplateError("the processor has no chat template (a vision-language model directory needs one)")
    messages = conversation(row)
    prompt = processor.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    full = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    if not full.startswith(prompt):
        raise ChatTemplateError("the chat template does not render the prompt as a prefix of the conversation")
    images = [_pil(data) for data in row.images] or None
    enc = processor(text=full, images=images, return_tensors="pt")
    n_prompt = processor(text=prompt, images=images, return_tensors="pt")["input_ids"].shape[1]
    labels = enc["input_ids"].clone()
    labels[:, :n_prompt] = IGNORE_INDEX
    labels[enc["input_ids"] == image_token_id(processor)] = IGNORE_INDEX
    return {**dict(enc), "labels": labels}


def image_token_id(processor: Any) -> int:
    """The id of the processor's image placeholder token (``<image>`` for LLaVA)."""
    token_id = getattr(processor, "image_token_id", None)
    if token_id is None:
        token_id = processor.tokenizer.convert_tokens_to_ids(getattr(processor, "image_token", "<image>"))
    return int(token_id)


class VisionDataset:
    """A map-style dataset encoding each row when it is read (pixel tensors are never all held at once)."""

    def __init__(self, processor: Any, rows: Sequence[VisionRow]):
        self.processor, self.rows = processor, list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return encode_example(self.processor, self.rows[i])


@dataclass
class VisionCollator:
    """Right-pads ``input_ids`` (``pad_token_id``), ``labels`` (-100) and ``attention_mask`` (0) to ``[B, T]``;
    concatenates every other tensor the processor made along its first dimension (``pixel_values``
    ``[n_images, C, H, W]`` for LLaVA; patch rows and ``image_grid_thw`` for Qwen2-VL)."""

    pad_token_id: int

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(x["input_ids"].shape[1] for x in batch)
        out = {"input_ids": torch.full((len(batch), longest), self.pad_token_id, dtype=torch.long),
               "labels": torch.full((len(batch), longest), IGNORE_INDEX, dtype=torch.long),
               "attention_mask": torch.zeros((len(batch), longest), dtype=torch.long)}
        for r, x in enumerate(batch):
            n = x["input_ids"].shape[1]
            out["input_ids"][r, :n] = x["input_ids"][0]
            out["labels"][r, :n] = x["labels"][0]
            out["attention_mask"][r, :n] = 1
        for key in sorted({k for x in batch for k in x} - set(out)):
            parts = [x[key] for x in batch if key in x and hasattr(x[key], "shape")]
            if parts:
                out[key] = torch.cat(parts, dim=0)
        return out


__all__ = ["ALIGN_PROMPT", "ALIGN_TARGETS", "VISION_STAGES", "VisionCollator", "VisionDataset", "VisionLoadReport", "VisionRow",
           "align_target", "conversation", "encode_example", "image_token_id", "load_align_rows", "load_instruct_rows", "parse_targets"]
