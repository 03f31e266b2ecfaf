"""Supervised fine-tuning of a causal LM on verified traces, through the HF Trainer and DeepSpeed ZeRO.

The default recipe is SciGLM's (Zhang et al. 2024, arXiv 2401.07950, section 4: ChatGLM3-6B-Base
fine-tuned with DeepSpeed ZeRO-2, learning rate 3e-6, linear schedule without warmup, 2 epochs,
global batch 32). Its faults are fixed: SciGLM cut questions at 128 tokens and answers at 512 without
a word; here over-length examples are reported and skipped (or kept whole), the loss is on response
tokens only, and answer-guided pairs can be left out (``stages``).

Pieces: :mod:`.data` (tokenise, mask, pack, collate); :class:`SFTConfig` (every setting);
:func:`run_sft` (one rank's training: data, model, ``transformers.Trainer`` with a DeepSpeed config,
checkpoints, resume, logs); :class:`MetricsLogger` (loss, learning rate, tokens/s to the console, a
JSON-lines file and TensorBoard when installed).

Distributed runs are started by the ``deepspeed`` launcher (one process per GPU, ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE`` set by it); :func:`single_process_env` sets the same variables for a
plain single process (CPU or one GPU).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .data import STAGES, ListDataset, SFTCollator, encode_rows, load_sft_rows, pack_examples

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEEPSPEED_CONFIGS = {
    "zero2": CONFIG_DIR / "zero2.json",
    "zero3-offload": CONFIG_DIR / "zero3_offload.json",
    "zero2-cpu": CONFIG_DIR / "zero2_cpu.json",
}
METRICS_FILE = "metrics.jsonl"


class TrainError(RuntimeError):
    """Training cannot start: bad data, no chat template, a batch size that does not divide, ..."""


@dataclass
class SFTConfig:
    """Every setting of one SFT run (defaults: SciGLM's recipe).

    Attributes:
        model: a transformers model directory or hub id (a causal LM).
        data: SFT JSONL files.
        output_dir: checkpoints (``checkpoint-<step>``), ``final/`` model, ``metrics.jsonl``,
            ``tensorboard/``, ``train_report.json``.
        deepspeed: ``auto`` (``zero2`` on GPU, ``zero2-cpu`` on CPU), a shipped config name
            (``zero2``, ``zero3-offload``, ``zero2-cpu``), a JSON file path, or ``none`` (plain Trainer).
        learning_rate: peak learning rate (SciGLM: 3e-6).
        epochs: passes over the data (SciGLM: 2).
        global_batch_size: examples per optimizer step over all ranks (SciGLM: 32); must equal
            ``micro_batch_size * world_size * gradient_accumulation``.
        micro_batch_size: examples per rank per forward pass.
        lr_scheduler: HF scheduler name (SciGLM: ``linear``), ``warmup_steps`` 0 (SciGLM: none).
        max_length: longest example in tokens (prompt + response); longer ones follow ``overlength``.
        overlength: ``skip`` (default, reported), ``keep`` (trained whole) or ``error``.
        stages: which trace stages to train on (default all three).
        packing: pack examples into rows of ``max_length`` tokens.
        chat_template: a Jinja chat template file replacing the tokenizer's.
        gguf_file: load model and tokenizer from this GGUF file inside ``model`` (transformers
            dequantises it to full precision).
        bf16: bf16 mixed precision (``None``: on when the GPU supports it; never on CPU).
        max_steps: stop after this many optimizer steps (-1: run ``epochs``).
        save_steps: checkpoint every N steps (``None``: at the end of each epoch).
        resume: ``True`` (latest checkpoint in ``output_dir``), a checkpoint path, or ``None``.
        use_cpu: train on CPU (DeepSpeed's CPU accelerator with the gloo backend).
    """

    model: str
    data: list[Path]
    output_dir: Path
    deepspeed: str = "auto"
    learning_rate: float = 3e-6
    epochs: float = 2.0
    global_batch_size: int = 32
    micro_batch_size: int = 1
    lr_scheduler: str = "linear"
    warmup_steps: float = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 2048
    overlength: str = "skip"
    stages: tuple[str, ...] = STAGES
    packing: bool = False
    chat_template: Path | None = None
    gguf_file: str | None = None
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    max_steps: int = -1
    save_steps: int | None = None
    save_total_limit: int | None = 2
    logging_steps: int = 1
    seed: int = 42
    resume: bool | str | None = None
    use_cpu: bool = False
    attn_implementation: str | None = None
    stage: str | None = None
    """A vision-language stage (SciTune): ``align`` or ``instruct`` (:mod:`.vision_sft`); ``None`` for a causal LM."""
    align_targets: tuple[str, ...] = ("caption", "ocr", "mentions")
    """What the ``align`` stage learns to say about a figure."""
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for ``MASTER_PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_process_env(use_cpu: bool) -> dict[str, str]:
    """Set the environment of a one-process "distributed" run and return what was set.

    ``RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=<free port>``; with
    ``use_cpu`` also ``DS_ACCELERATOR=cpu`` (must happen before DeepSpeed is imported: it picks
    its accelerator once). Variables already set are kept.
    """
    values = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    if use_cpu:
        values["DS_ACCELERATOR"] = "cpu"
    for k, v in values.items():
        os.environ.setdefault(k, v)
    return {k: os.environ[k] for k in values}


def deepspeed_config_name(name: str, *, cuda: bool) -> str:
    """``auto`` -> ``zero2`` with CUDA, ``zero2-cpu`` without; other names unchanged."""
    if name == "auto":
        return "zero2" if cuda else "zero2-cpu"
    return name


def resolve_deepspeed_config(name: str, *, cuda: bool) -> dict[str, Any] | None:
    """The DeepSpeed config as a dict (``None`` for ``none``); ``auto`` as in :func:`deepspeed_config_name`.

    Raises:
        TrainError: unknown name, missing or invalid JSON file.
    """
    if name == "none":
        return None
    name = deepspeed_config_name(name, cuda=cuda)
    path = DEEPSPEED_CONFIGS.get(name, Path(name))
    try:
        return json.loads(Path(path).read_text())
    except OSError:
        raise TrainError(f"DeepSpeed config '{name}': no such file; shipped: {', '.join(DEEPSPEED_CONFIGS)}") from None
    except ValueError as exc:
        raise TrainError(f"DeepSpeed config {path}: not valid JSON ({exc})") from None


def gradient_accumulation(global_batch: int, micro_batch: int, world_size: int) -> int:
    """``global_batch / (micro_batch * world_size)``.

    Raises:
        TrainError: when it is not a positive whole number (the global batch would silently change).
    """
    per_step = micro_batch * world_size
    if global_batch < per_step or global_batch % per_step:
        raise TrainError(f"global batch {global_batch} is not a multiple of micro batch {micro_batch} x {world_size} rank(s)")
    return global_batch // per_step


class MetricsLogger:
    """A ``TrainerCallback`` writing each log to the console, ``metrics.jsonl`` and TensorBoard.

    Each record: ``step``, ``epoch``, ``loss``, ``learning_rate``, ``grad_norm``, ``tokens`` (input
    tokens seen, all ranks, padding excluded), ``tokens_per_s`` (since the previous log, all ranks),
    ``elapsed_s``; the final record has the Trainer's ``train_*`` summary. Only rank 0 writes.
    TensorBoard scalars go under ``output_dir/tensorboard`` when ``tensorboard`` is installed.
    """

    def __init__(self, output_dir: Path, console: Any = None):
        from transformers import TrainerCallback

        self.path = Path(output_dir) / METRICS_FILE
        self.console = console
        self._writer = None
        self._last: tuple[float, int] | None = None
        self._t0 = time.perf_counter()
        self.records: list[dict[str, Any]] = []
        logger = self

        class _CB(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
                logger._last = (time.perf_counter(), state.num_input_tokens_seen)
                if state.is_world_process_zero:
                    logger._open_tb()

            def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
                if state.is_world_process_zero:
                    logger.log(state, logs or {})

            def on_train_end(self, args, state, control, **kw):  # noqa: ANN001
                if logger._writer is not None:
                    logger._writer.flush()

        self.callback = _CB()

    def _open_tb(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: JSON lines only
            return
        self._writer = SummaryWriter(log_dir=str(self.path.parent / "tensorboard"))

    def log(self, state: Any, logs: dict[str, Any]) -> None:
        """Record one Trainer log (called on rank 0)."""
        now = time.perf_counter()
        tokens = int(state.num_input_tokens_seen)
        rec: dict[str, Any] = {"step": state.global_step, "epoch": round(float(state.epoch or 0), 4)}
        for key in ("loss", "learning_rate", "grad_norm"):
            if key in logs:
                rec[key] = float(logs[key])
        if "loss" in logs:
            t_prev, n_prev = self._last or (self._t0, 0)
            rec["tokens"] = tokens
            rec["tokens_per_s"] = round((tokens - n_prev) / max(now - t_prev, 1e-9), 1)
            self._last = (now, tokens)
        if "loss" not in logs:  # the end-of-training summary
            rec.update({k: v for k, v in logs.items() if k.startswith("train_") and isinstance(v, (int, float))})
        rec["elapsed_s"] = round(now - self._t0, 2)
        self.records.append(rec)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        if self._writer is not None:
            for key in ("loss", "learning_rate", "grad_norm", "tokens_per_s"):
                if key in rec:
                    self._writer.add_scalar(f"train/{key}", rec[key], rec["step"])
        if self.console is not None and "loss" in rec:
            self.console.print(
                f"step {rec['step']} epoch {rec['epoch']:.2f} loss {rec['loss']:.4f} lr {rec.get('learning_rate', 0):.3g} "
                f"tokens/s {rec['tokens_per_s']:,.0f}", highlight=False)


@dataclass
class SFTResult:
    """What :func:`run_sft` did: data counts, the metrics records, where the model went."""

    output_dir: Path
    final_dir: Path | None
    load_report: Any
    encode_report: Any
    metrics: list[dict[str, Any]]
    train_metrics: dict[str, Any]
    world_size: int
    gradient_accumulation_steps: int


def _checkpointing_kwargs(enabled: bool) -> dict[str, Any]:
    """``activation_checkpointing`` (transformers >= 5) or ``gradient_checkpointing`` (older)."""
    if not enabled:
        return {}
    from transformers import TrainingArguments

    name = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ else "gradient_checkpointing"
    return {name: True}


def _skip_shm_comm_build() -> None:
    """Keep DeepSpeed from JIT-compiling its shared-memory all-reduce op on CPU in a one-process run.

    DeepSpeed's torch comm backend builds ``deepspeed_shm_comm`` (a C++ extension, minutes on a
    small CPU) whenever a compiler is present; with one process there is nothing to all-reduce, so
    the op is marked unavailable and DeepSpeed falls back to plain ``torch.distributed`` (gloo).
    """
    try:
        import deepspeed.ops
    except ImportError:  # pragma: no cover - deepspeed is part of the train extra
        return
    compatible = getattr(deepspeed.ops, "__compatible_ops__", None)
    if isinstance(compatible, dict):
        compatible["deepspeed_shm_comm"] = False


def _as_dense_model(model: Any) -> None:
    """Make a model loaded from GGUF trainable: transformers dequantises the weights to full precision
    but keeps its GGUF quantizer attached, and the Trainer refuses to fine-tune a "quantized" model.

    Raises:
        TrainError: some weights are still packed (a GGUF matmul kernel kept them quantized).
    """
    packed = [name for name, p in model.named_parameters() if not p.is_floating_point()]
    if packed:
        raise TrainError(f"the GGUF weights were kept quantized ({packed[0]}, ...); uninstall 'kernels' so transformers dequantises them")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.is_quantized = False


def training_arguments(cfg: SFTConfig, out: Path, ga: int, ds_config: dict[str, Any] | None, *, bf16: bool, cuda: bool) -> Any:
    """The ``transformers.TrainingArguments`` of a run (text or vision-language): batch sizes,
    schedule, precision, DeepSpeed config, checkpoints and logging from ``cfg``."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=ga,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=bf16,
        deepspeed=ds_config,
        use_cpu=not cuda,
        ddp_backend="gloo" if not cuda else None,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if cfg.save_steps else "epoch",
        save_steps=cfg.save_steps or 500,
        save_total_limit=cfg.save_total_limit,
        report_to="none",
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=cfg.seed,
        disable_tqdm=True,
        **_checkpointing_kwargs(cfg.gradient_checkpointing),
        **cfg.extra,
    )


def prepare_training(cfg: SFTConfig, ga: int, ds_config: dict[str, Any] | None, *, cuda: bool,
                     world_size: int) -> tuple[Path, Any, bool]:
    """The output folder (made), the ``TrainingArguments`` and whether bf16 is on; call it before
    loading the model (with ZeRO-3 the arguments enable ``zero.Init``). On CPU with one process,
    DeepSpeed's shared-memory op is kept from compiling (:func:`_skip_shm_comm_build`)."""
    import torch

    bf16 = cfg.bf16 if cfg.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = training_arguments(cfg, out, ga, ds_config, bf16=bf16, cuda=cuda)
    if not cuda and world_size == 1:
        _skip_shm_comm_build()
    return out, args, bf16


def train_and_save(trainer: Any, cfg: SFTConfig, out: Path, processing_class: Any, say: Any) -> tuple[Any, Path]:
    """Train (resuming from the latest checkpoint when ``cfg.resume`` asks and one exists), then save the
    model to ``out/final`` and, on rank 0, its tokenizer or processor; returns ``(train output, final dir)``."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # MetricsLogger prints a shorter line
    resume = cfg.resume
    if resume is True and not any(out.glob("checkpoint-*")):
        say("--resume: no checkpoint in the output directory; starting from the beginning")
        resume = None
    result = trainer.train(resume_from_checkpoint=resume)
    final = out / "final"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        processing_class.save_pretrained(str(final))
    return result, final


def config_record(cfg: SFTConfig) -> dict[str, Any]:
    """``{"config": every setting but the data, "data": [paths]}`` as ``train_report.json`` records them."""
    return {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "data"},
            "data": [str(p) for p in cfg.data]}


def _rank0() -> bool:
    return os.environ.get("RANK", "0") == "0"


def run_sft(cfg: SFTConfig, console: Any = None) -> SFTResult:
    """Run SFT on this rank (the launcher starts one process per GPU; all run this function).

    Steps: read and filter rows; load the tokenizer (chat template from ``cfg.chat_template`` if
    given); tokenise with prompt masking and the over-length policy; build ``TrainingArguments``
    with the DeepSpeed config (HF fills its ``"auto"`` values: batch sizes, accumulation, clipping,
    precision, optimizer hyper-parameters); load the model; train (resuming when asked); save the
    final model and tokenizer to ``output_dir/final``; write ``train_report.json``.

    A vision-language stage (``cfg.stage``) trains with :func:`scireflect.training.vision_sft.run_vision_sft`
    (``scireflect train`` picks it), which builds on this module.

    Raises:
        TrainError: no data left after filtering, bad batch sizes, unknown DeepSpeed config, or a
            vision-language ``cfg.stage`` (not trained here).
        scireflect.training.data.SFTDataError / ChatTemplateError: bad data or template.
    """
    if cfg.stage is not None:
        raise TrainError(f"stage {cfg.stage!r} is a vision-language stage: train it with scireflect.training.vision_sft.run_vision_sft")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    say = console.print if (console is not None and _rank0()) else (lambda *a, **k: None)
    cuda = torch.cuda.is_available() and not cfg.use_cpu
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    ga = gradient_accumulation(cfg.global_batch_size, cfg.micro_batch_size, world_size)
    ds_config = resolve_deepspeed_config(cfg.deepspeed, cuda=cuda)

    rows, load_report = load_sft_rows(cfg.data, cfg.stages)
    if load_report.filtered_out:
        say(f"stage filter {','.join(cfg.stages)}: left out {dict(load_report.filtered_out)}")
    if not rows:
        raise TrainError(f"no SFT rows left in {', '.join(map(str, cfg.data))} after the stage filter {','.join(cfg.stages)}")

    tok_kwargs: dict[str, Any] = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(cfg.model, **tok_kwargs)
    if cfg.chat_template is not None:
        tokenizer.chat_template = Path(cfg.chat_template).read_text()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    examples, enc_report = encode_rows(tokenizer, rows, max_length=cfg.max_length, overlength=cfg.overlength)
    say(enc_report.describe(), highlight=False)
    if not examples:
        raise TrainError("no example left to train on (all over-length? raise --max-length or use --overlength keep)")
    items = pack_examples(examples, cfg.max_length) if cfg.packing else [
        {"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples]
    if cfg.packing:
        say(f"packing: {len(examples)} examples in {len(items)} rows of <= {cfg.max_length} tokens")
    # TrainingArguments before the model: with ZeRO-3 it enables zero.Init so weights load sharded.
    out, args, bf16 = prepare_training(cfg, ga, ds_config, cuda=cuda, world_size=world_size)
    # DeepSpeed keeps fp32 master weights of a bf16 model; without it, load fp32 and let autocast do bf16.
    model_kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if (bf16 and ds_config is not None) else torch.float32, **tok_kwargs}
    if cfg.attn_implementation:
        model_kwargs["attn_implementation"] = cfg.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(cfg.model, **model_kwargs)
    if cfg.gguf_file:
        _as_dense_model(model)
    logger = MetricsLogger(out, console if _rank0() else None)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ListDataset(items),
        data_collator=SFTCollator(pad_token_id=int(tokenizer.pad_token_id)),
        processing_class=tokenizer,
        callbacks=[logger.callback],
    )
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model {cfg.model}: {n_params / 1e6:.1f} M parameters; {len(items)} training rows, {world_size} rank(s), "
        f"micro batch {cfg.micro_batch_size}, accumulation {ga}, global batch {cfg.global_batch_size}, "
        f"DeepSpeed {deepspeed_config_name(cfg.deepspeed, cuda=cuda) if ds_config is not None else 'off'}, lr {cfg.learning_rate:g} {cfg.lr_scheduler}, "
        f"{'bf16' if bf16 else 'fp32'} on {'GPU' if cuda else 'CPU'}")
    result, final = train_and_save(trainer, cfg, out, tokenizer, say)
    if trainer.is_world_process_zero():
        report = {
            **config_record(cfg),
            "rows": load_report.rows,
            "rows_by_stage": dict(load_report.by_stage),
            "rows_filtered_out": dict(load_report.filtered_out),
            "examples": enc_report.examples,
            "overlength_ids": enc_report.overlength_ids,
            "tokens": enc_report.tokens,
            "response_tokens": enc_report.response_tokens,
            "world_size": world_size,
            "gradient_accumulation_steps": ga,
            "train_metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)},
        }
        (out / "train_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        say(f"final model and tokenizer in {final}; metrics in {out / METRICS_FILE}")
    return SFTResult(out, final, load_report, enc_report, logger.records, dict(result.metrics), world_size, ga)
