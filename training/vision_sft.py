"""Vision-language SFT in SciTune's two stages, through the HF Trainer and DeepSpeed ZeRO.

SciTune (Horawalavithana et al. 2023, arXiv 2307.01139) tunes a LLaVA-style model (vision encoder,
adapter, LLM): ``align`` trains the adapter alone on figures and their caption, OCR text and
mentions (concept alignment, SciCap); ``instruct`` trains the adapter and the LLM on instruction
data with figures (ScienceQA there; here the verified traces of figure questions). The vision
encoder stays frozen in both, as in SciTune and LLaVA.

The model is any ``AutoModelForImageTextToText`` with an ``AutoProcessor`` (LLaVA, Qwen2-VL,
Idefics3/SmolVLM, ...): the adapter is found by name (:data:`ADAPTER_NAMES`), the vision encoder
likewise (:data:`VISION_NAMES`). Data and masking are :mod:`.vision_data`'s; batch sizes, the
DeepSpeed config, checkpoints and metrics are the text path's (:mod:`.sft`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .data import IGNORE_INDEX
from .sft import (
    METRICS_FILE,
    MetricsLogger,
    SFTConfig,
    SFTResult,
    TrainError,
    _rank0,
    config_record,
    deepspeed_config_name,
    gradient_accumulation,
    prepare_training,
    resolve_deepspeed_config,
    train_and_save,
)
from .vision_data import VISION_STAGES, VisionCollator, VisionDataset, encode_example, load_align_rows, load_instruct_rows

ADAPTER_NAMES = ("multi_modal_projector", "mm_projector", "connector", "merger", "visual_projection")
"""Parameter-name parts of the vision-to-language adapter (LLaVA, LLaVA-1.5 checkpoints, Idefics3/SmolVLM, Qwen2-VL)."""
VISION_NAMES = ("vision_tower", "vision_model", "visual", "vision_encoder", "image_encoder")
"""Parameter-name parts of the vision encoder (frozen in both stages)."""


def _is(name: str, parts: tuple[str, ...]) -> bool:
    """Whether one of ``parts`` is a whole segment of the dotted parameter ``name``."""
    return any(f".{p}." in f".{name}." for p in parts)


def set_trainable(model: Any, stage: str) -> dict[str, int]:
    """Freeze the model for a stage: ``align`` trains the adapter only; ``instruct`` the adapter and
    the language model; the vision encoder never. Returns parameter counts ``{"trainable", "frozen",
    "adapter"}``.

    Raises:
        TrainError: an unknown stage, or no adapter parameters (a model this code cannot split).
    """
    if stage not in VISION_STAGES:
        raise TrainError(f"unknown stage '{stage}'; choose one of {', '.join(VISION_STAGES)}")
    counts = {"trainable": 0, "frozen": 0, "adapter": 0}
    for name, param in model.named_parameters():
        adapter = _is(name, ADAPTER_NAMES)
        vision = _is(name, VISION_NAMES) and not adapter
        param.requires_grad = adapter or (stage == "instruct" and not vision)
        counts["adapter"] += param.numel() if adapter else 0
        counts["trainable" if param.requires_grad else "frozen"] += param.numel()
    if not counts["adapter"]:
        raise TrainError(f"no adapter parameters (names with {', '.join(ADAPTER_NAMES)}) in the model: cannot train stage '{stage}'")
    return counts


def run_vision_sft(cfg: SFTConfig, console: Any = None) -> SFTResult:
    """Run one SciTune stage (``cfg.stage``) on this rank; the launcher starts one process per GPU.

    Steps: read the stage's rows (figures checked); load the processor and the model; freeze
    (:func:`set_trainable`); encode every row once to apply the over-length policy and count
    tokens (rows are encoded again when read, so pixel tensors are not all held in memory); train
    with the text path's ``TrainingArguments`` and DeepSpeed config; save the model and processor to
    ``output_dir/final``; write ``train_report.json``.

    Raises:
        TrainError: no rows, bad batch sizes, unknown DeepSpeed config, a model without an adapter.
        scireflect.training.data.SFTDataError / ChatTemplateError: bad data or template.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer

    say = console.print if (console is not None and _rank0()) else (lambda *a, **k: None)
    cuda = torch.cuda.is_available() and not cfg.use_cpu
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    ga = gradient_accumulation(cfg.global_batch_size, cfg.micro_batch_size, world_size)
    ds_config = resolve_deepspeed_config(cfg.deepspeed, cuda=cuda)
    if cfg.packing:
        raise TrainError("--packing is for text models; vision-language rows are not packed")

    if cfg.stage == "align":
        rows, load_report = load_align_rows(cfg.data, cfg.align_targets)
    else:
        rows, load_report = load_instruct_rows(cfg.data, cfg.stages)
    say(f"stage {cfg.stage}: {load_report.kept} of {load_report.rows} rows; {load_report.without_images} without images, "
        f"{load_report.without_target} without a target, {load_report.ocr_filled} OCR filled by Tesseract"
        + (f", left out by stage: {dict(load_report.filtered_out)}" if load_report.filtered_out else ""))
    if not rows:
        raise TrainError(f"no rows for stage {cfg.stage} in {', '.join(map(str, cfg.data))}")

    processor = AutoProcessor.from_pretrained(cfg.model)
    if cfg.chat_template is not None:
        processor.chat_template = Path(cfg.chat_template).read_text()
    tokenizer = processor.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    kept, overlength, tokens, response_tokens = [], [], 0, 0
    for row in rows:
        enc = encode_example(processor, row)
        n, n_resp = enc["input_ids"].shape[1], int((enc["labels"] != IGNORE_INDEX).sum())
        if n > cfg.max_length:
            overlength.append(row.id)
            if cfg.overlength == "skip":
                continue
        if n_resp:
            kept.append(row)
            tokens, response_tokens = tokens + n, response_tokens + n_resp
    if overlength and cfg.overlength == "error":
        raise TrainError(f"{len(overlength)} examples exceed {cfg.max_length} tokens: {', '.join(overlength[:20])}")
    say(f"{len(kept)} examples, {tokens:,} tokens ({response_tokens:,} trained response tokens)"
        + (f"; {len(overlength)} over-length (> {cfg.max_length} tokens) {'skipped' if cfg.overlength == 'skip' else 'kept whole'}: "
           f"{', '.join(overlength[:20])}" if overlength else ""), highlight=False)
    if not kept:
        raise TrainError("no example left to train on (all over-length? raise --max-length or use --overlength keep)")

    out, args, bf16 = prepare_training(cfg, ga, ds_config, cuda=cuda, world_size=world_size)
    model = AutoModelForImageTextToText.from_pretrained(
        cfg.model, dtype=torch.bfloat16 if (bf16 and ds_config is not None) else torch.float32)
    counts = set_trainable(model, cfg.stage)
    logger = MetricsLogger(out, console if _rank0() else None)
    trainer = Trainer(model=model, args=args, train_dataset=VisionDataset(processor, kept),
                      data_collator=VisionCollator(pad_token_id=int(tokenizer.pad_token_id)), processing_class=processor,
                      callbacks=[logger.callback])
    say(f"model {cfg.model}: stage {cfg.stage}, {counts['trainable'] / 1e6:.2f} M trainable of "
        f"{(counts['trainable'] + counts['frozen']) / 1e6:.2f} M parameters (adapter {counts['adapter'] / 1e6:.2f} M); "
        f"{len(kept)} rows, {world_size} rank(s), micro batch {cfg.micro_batch_size}, accumulation {ga}, global batch "
        f"{cfg.global_batch_size}, DeepSpeed {deepspeed_config_name(cfg.deepspeed, cuda=cuda) if ds_config is not None else 'off'}, "
        f"lr {cfg.learning_rate:g} {cfg.lr_scheduler}, {'bf16' if bf16 else 'fp32'} on {'GPU' if cuda else 'CPU'}")
    result, final = train_and_save(trainer, cfg, out, processor, say)
    if trainer.is_world_process_zero():
        report = {
            **config_record(cfg), "stage": cfg.stage, "rows": load_report.rows, "examples": len(kept),
            "without_images": load_report.without_images, "without_target": load_report.without_target,
            "ocr_filled": load_report.ocr_filled, "overlength_ids": overlength, "tokens": tokens, "response_tokens": response_tokens,
            "parameters": counts, "world_size": world_size, "gradient_accumulation_steps": ga,
            "train_metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
        }
        (out / "train_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        say(f"final model and processor in {final}; metrics in {out / METRICS_FILE}")
    return SFTResult(out, final, load_report, None, logger.records, dict(result.metrics), world_size, ga)


__all__ = ["ADAPTER_NAMES", "VISION_NAMES", "run_vision_sft", "set_trainable"]
