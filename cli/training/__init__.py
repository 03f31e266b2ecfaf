"""``scireflect train``, ``scireflect eval`` and ``scireflect convert``: typer-annotated command functions.

They are registered on the main app in :mod:`scireflect.cli` (``app.command("train")(train_command)``,
``app.command("eval")(eval_command)``, ``app.add_typer(convert_app)``); the work is done in
:mod:`scireflect.training`. This package also has its own small app, run by ``__main__.py``, so the DeepSpeed launcher can
start it as a module on every rank::

    deepspeed --hostfile hostfile --no_local_rank --module scireflect.cli.training train --data sft.jsonl ...
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from ..untrusted import untrusted

console = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> None:
    console.print(Text("error: ", style="bold red") + untrusted(message), highlight=False)
    raise typer.Exit(code)


# -- eval -----------------------------------------------------------------------------------------


def eval_progress_line(row: dict, done: int, total: int) -> Text:
    """The line ``scireflect eval`` prints for one finished question: its mark, file and id, the
    extracted and reference answers, tokens and seconds. The file, id and answers come from input
    files and the model: shown with control characters made visible, never read as markup."""
    mark = Text("right", "green") if row["correct"] else (Text("error", "yellow") if row["status"] == "error" else Text("wrong", "red"))
    return (Text(f"[{done}/{total}] ") + mark + Text(" ") + untrusted(f"{row['file']}/{row['id']}")
            + untrusted(f" answer {row['extracted']!r}, reference {row['reference']!r}, {row['output_tokens']} tokens, "
                        f"{row['seconds']:.0f} s", "dim"))


def eval_command(
    benchmarks: list[Path] | None = typer.Argument(None, help="Benchmark JSONL files (id, subject, question, answer, unit?, choices?).", metavar="FILE"),
    out_dir: Path | None = typer.Option(None, "--out", "-o", help="Directory for per-question results JSONL [default: runs/eval-<time>].", metavar="DIR"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (key from $OPENAI_API_KEY).", metavar="URL"),
    model: list[str] | None = typer.Option(None, "--model", "-m", help="Model name at --base-url (repeat to compare two).", metavar="NAME"),
    hf_model: list[Path] | None = typer.Option(None, "--hf-model", help="Local transformers model directory (repeat to compare, e.g. base then fine-tuned).", metavar="DIR"),
    embedded_model: list[str] | None = typer.Option(None, "--embedded-model", help="Embedded model name (see 'scireflect models'); the default model when nothing else is given.", metavar="NAME"),
    gguf: Path | None = typer.Option(None, "--gguf", help="Serve this GGUF file as the embedded model.", metavar="FILE"),
    chat_template: Path | None = typer.Option(None, "--chat-template", help="Jinja chat template for --hf-model tokenizers without one.", metavar="FILE"),
    subject: list[str] | None = typer.Option(None, "--subject", "-s", help="Only questions of this subject (repeatable).", metavar="NAME"),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most this many questions per file.", metavar="N"),
    concurrency: int = typer.Option(2, "--concurrency", "-k", min=1, help="Requests in flight at once (endpoint/embedded).", metavar="N"),
    max_tokens: int = typer.Option(1536, "--max-tokens", min=16, help="Completion tokens per question.", metavar="N"),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="Sampling temperature (0: greedy).", metavar="X"),
    compare: tuple[Path, Path] | None = typer.Option(None, "--compare", help="Compare two results files (before, after) instead of running a model.", metavar="FILE FILE"),
    figures: str = typer.Option("image", "--figures", help="Questions' figures as: image (the pixels), text (caption, OCR text, mentions; text-only models) or both.", metavar="MODE"),
    mmproj: Path | None = typer.Option(None, "--mmproj", help="Projector GGUF for the embedded model (--gguf / --embedded-model), so that it takes figures.", metavar="FILE"),
) -> None:
    """Evaluate a model on benchmark files with the Solver prompt and the project's verifier; or compare two runs."""
    from ...training import evaluate as E
    from ..eval_tables import accuracy_table, compare_table, figure_table

    if compare:
        try:
            before, after = E.read_results(compare[0]), E.read_results(compare[1])
        except E.EvalError as exc:
            _fail(str(exc))
        bname = _run_name(before, compare[0])
        aname = _run_name(after, compare[1])
        if bname == aname:
            bname, aname = f"{bname} (A)", f"{aname} (B)"
        out.print(compare_table(before, after, before_name=bname, after_name=aname))
        return
    if not benchmarks:
        _fail("give benchmark JSONL files, or --compare RESULTS_A RESULTS_B")
    specs: list[E.ModelSpec] = []
    for path in hf_model or []:
        specs.append(E.ModelSpec(hf_path=path, chat_template=chat_template))
    if model and not base_url:
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            _fail("--model needs --base-url (or $OPENAI_BASE_URL)")
    for name in model or []:
        specs.append(E.ModelSpec(base_url=base_url, model=name))
    from ...embedded import EmbeddedModelError, resolve_embedded_model

    for name in embedded_model or []:
        try:
            specs.append(E.ModelSpec(embedded_model=resolve_embedded_model(name)))
        except EmbeddedModelError as exc:
            _fail(str(exc))
    if gguf is not None:
        specs.append(E.ModelSpec(gguf=gguf))
    from ...agents.figures import FIGURE_MODES

    if figures not in FIGURE_MODES:
        _fail(f"--figures must be one of {', '.join(FIGURE_MODES)}")
    if mmproj is not None:
        embedded = [s for s in specs if s.kind == "embedded"] or ([] if specs else [E.ModelSpec()])
        if not embedded:
            _fail("--mmproj goes with the embedded model (--gguf or --embedded-model)")
        specs = [E.ModelSpec(**{**s.__dict__, "mmproj": mmproj}) if s.kind == "embedded" else s for s in (specs or embedded)]
    if base_url and not model:
        _fail("--base-url needs --model")
    if not specs:
        specs.append(E.ModelSpec())
    try:
        items = E.load_benchmarks(list(benchmarks), limit=limit, subjects=set(subject) if subject else None)
    except E.EvalError as exc:
        _fail(str(exc))
    if not items:
        _fail("no question matches --subject")
    out_dir = out_dir or Path("runs") / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    settings = E.GenerationSettings(temperature=temperature, max_tokens=max_tokens, concurrency=concurrency, figures=figures)
    runs: list[tuple[str, list[dict]]] = []
    names = _unique_names([s.display_name() for s in specs])
    for spec, name in zip(specs, names, strict=True):
        spec = E.ModelSpec(**{**spec.__dict__, "label": name})
        results_path = out_dir / f"{E._slug(name)}.results.jsonl"
        console.print(untrusted(f"evaluating {name} on {len(items)} questions ({spec.kind}); results in {results_path}", "dim"))
        done = [0]
        t0 = time.perf_counter()

        def on_result(row: dict, _done: list[int] = done, _n: int = len(items)) -> None:
            _done[0] += 1
            console.print(eval_progress_line(row, _done[0], _n), highlight=False)

        try:
            rows = asyncio.run(E.evaluate(items, spec, settings, results_path=results_path, on_result=on_result, log_dir=out_dir))
        except E.EvalError as exc:
            _fail(str(exc), code=1)
        except Exception as exc:  # noqa: BLE001 - a clear message for a model that cannot start
            from ...embedded import EmbeddedModelError

            if isinstance(exc, EmbeddedModelError):
                _fail(str(exc), code=1)
            raise
        out.print(accuracy_table(rows, f"scireflect eval: {name} ({time.perf_counter() - t0:.0f} s)"))
        if any(r.get("figures") for r in rows):
            out.print(figure_table(rows, f"{name}: questions with and without a figure (figures sent as {figures})"))
        out.print(f"per-question results: {results_path}")
        runs.append((name, rows))
    if len(runs) >= 2:
        out.print(compare_table(runs[0][1], runs[1][1], before_name=runs[0][0], after_name=runs[1][0]))


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        result.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return result


def _run_name(rows: list[dict], path: Path) -> str:
    models = {r.get("model") for r in rows if r.get("model")}
    return models.pop() if len(models) == 1 else Path(path).stem


# -- train ----------------------------------------------------------------------------------------


def train_command(
    data: list[Path] = typer.Argument(..., help="SFT JSONL files: a run's sft.jsonl, or exports with 'messages'.", metavar="DATA"),
    model: str = typer.Option(..., "--model", "-m", help="Causal LM to fine-tune: a transformers model directory or hub id.", metavar="NAME"),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output directory: checkpoints, final/ model, metrics.jsonl, tensorboard/.", metavar="DIR"),
    deepspeed: str = typer.Option("auto", "--deepspeed", help="DeepSpeed config: auto (zero2 on GPU, zero2-cpu on CPU), zero2, zero3-offload, zero2-cpu, a JSON file, or none.", metavar="CONFIG"),
    learning_rate: float = typer.Option(3e-6, "--lr", min=0.0, help="Peak learning rate (SciGLM: 3e-6).", metavar="X"),
    epochs: float = typer.Option(2.0, "--epochs", min=0.0, help="Epochs (SciGLM: 2).", metavar="X"),
    global_batch: int = typer.Option(32, "--global-batch", min=1, help="Examples per optimizer step over all ranks (SciGLM: 32).", metavar="N"),
    micro_batch: int = typer.Option(1, "--micro-batch", min=1, help="Examples per rank per forward pass; accumulation = global / (micro x ranks).", metavar="N"),
    scheduler: str = typer.Option("linear", "--scheduler", help="Learning-rate schedule (HF name; SciGLM: linear).", metavar="NAME"),
    warmup_steps: float = typer.Option(0, "--warmup-steps", min=0.0, help="Warmup steps, or a ratio when < 1 (SciGLM: none).", metavar="X"),
    max_length: int = typer.Option(2048, "--max-length", min=2, help="Longest example in tokens (prompt + response); nothing is ever truncated.", metavar="N"),
    overlength: str = typer.Option("skip", "--overlength", help="Examples longer than --max-length: skip (reported), keep (whole), or error.", metavar="POLICY"),
    stages: str = typer.Option("cot,reflection,answer_guided", "--stages", help="Trace stages to train on, e.g. 'cot,reflection' to leave out answer-guided pairs.", metavar="LIST"),
    packing: bool = typer.Option(False, "--packing/--no-packing", help="Pack several examples per row of --max-length tokens (no cross-attention)."),
    chat_template: Path | None = typer.Option(None, "--chat-template", help="Jinja chat template file replacing the tokenizer's.", metavar="FILE"),
    gguf_file: str | None = typer.Option(None, "--gguf-file", help="Load the model from this GGUF file in --model (dequantised).", metavar="FILE"),
    bf16: bool | None = typer.Option(None, "--bf16/--no-bf16", help="bf16 mixed precision [default: on when the GPU supports it]."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations to save memory."),
    max_steps: int = typer.Option(-1, "--max-steps", help="Stop after this many optimizer steps (-1: all epochs).", metavar="N"),
    save_steps: int | None = typer.Option(None, "--save-steps", min=1, help="Checkpoint every N steps [default: each epoch].", metavar="N"),
    save_total_limit: int = typer.Option(2, "--save-total-limit", min=1, help="Checkpoints kept.", metavar="N"),
    logging_steps: int = typer.Option(1, "--logging-steps", min=1, help="Log every N optimizer steps.", metavar="N"),
    seed: int = typer.Option(42, "--seed", metavar="N"),
    resume: bool = typer.Option(False, "--resume", help="Resume from the latest checkpoint in --out."),
    resume_from: Path | None = typer.Option(None, "--resume-from", help="Resume from this checkpoint directory.", metavar="DIR"),
    single_process: bool = typer.Option(False, "--single-process", help="Train in this one process (CPU or one GPU), without the deepspeed launcher."),
    cpu: bool = typer.Option(False, "--cpu", help="Train on CPU even when a GPU is present."),
    hostfile: Path | None = typer.Option(None, "--hostfile", help="DeepSpeed hostfile ('host slots=N' lines) for multi-node runs.", metavar="FILE"),
    num_gpus: int | None = typer.Option(None, "--num-gpus", min=1, help="GPUs per node for the launcher [default: all].", metavar="N"),
    num_nodes: int | None = typer.Option(None, "--num-nodes", min=1, help="Nodes for the launcher [default: all in --hostfile].", metavar="N"),
    master_port: int | None = typer.Option(None, "--master-port", help="Rendezvous port for the launcher.", metavar="N"),
    stage: str | None = typer.Option(None, "--stage", help="Vision-language model (AutoModelForImageTextToText), SciTune's stage: align (adapter only, on figures' caption, OCR, mentions) or instruct (adapter + LLM, on traces with figures).", metavar="STAGE"),
    align_targets: str = typer.Option("caption,ocr,mentions", "--align-targets", help="What --stage align learns to say about a figure (SciTune's ablations leave one out).", metavar="LIST"),
) -> None:
    """Fine-tune a causal LM, or a vision-language model (--stage), on verified traces (SFT, loss on responses only) with the HF Trainer and DeepSpeed ZeRO."""
    import subprocess

    from ...training.data import OVERLENGTH_POLICIES, parse_stages
    from ...training.vision_data import VISION_STAGES, parse_targets

    try:
        stage_tuple = parse_stages(stages)
        target_tuple = parse_targets(align_targets)
    except ValueError as exc:
        _fail(str(exc))
    if stage is not None and stage not in VISION_STAGES:
        _fail(f"--stage must be one of {', '.join(VISION_STAGES)}")
    if overlength not in OVERLENGTH_POLICIES:
        _fail(f"--overlength must be one of {', '.join(OVERLENGTH_POLICIES)}")
    for path in data:
        if not path.is_file():
            _fail(f"{path}: no such SFT file")
    if chat_template is not None and not chat_template.is_file():
        _fail(f"--chat-template {chat_template}: no such file")

    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ  # by the deepspeed launcher or torchrun
    if not launched and not single_process:
        import torch

        n_gpu = 0 if cpu else torch.cuda.device_count()
        if hostfile is not None or (num_gpus or n_gpu) > 1:
            argv = sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else sys.argv[1:]
            cmd = [sys.executable, "-m", "deepspeed.launcher.runner"]
            if hostfile is not None:
                cmd += ["--hostfile", str(hostfile)]
            if num_gpus:
                cmd += ["--num_gpus", str(num_gpus)]
            if num_nodes:
                cmd += ["--num_nodes", str(num_nodes)]
            if master_port:
                cmd += ["--master_port", str(master_port)]
            cmd += ["--no_local_rank", "--module", "scireflect.cli.training", "train", *argv]
            console.print(untrusted(f"launching: {' '.join(cmd)}", "dim"), highlight=False)
            raise typer.Exit(subprocess.call(cmd))
        single_process = True
        console.print("[dim]one device: training in this process (--single-process)[/]")
    use_cpu = cpu
    if single_process:
        import torch

        use_cpu = cpu or not torch.cuda.is_available()
        if not launched:
            from ...training.sft import single_process_env

            single_process_env(use_cpu)
    from ...rundata.ocr import OcrUnavailable
    from ...training.data import ChatTemplateError, SFTDataError
    from ...training.sft import SFTConfig, TrainError, run_sft
    from ...training.vision_sft import run_vision_sft

    cfg = SFTConfig(
        model=model, data=list(data), output_dir=out_dir, deepspeed=deepspeed, learning_rate=learning_rate, epochs=epochs,
        global_batch_size=global_batch, micro_batch_size=micro_batch, lr_scheduler=scheduler, warmup_steps=warmup_steps,
        max_length=max_length, overlength=overlength, stages=stage_tuple, packing=packing, chat_template=chat_template,
        gguf_file=gguf_file, bf16=bf16, gradient_checkpointing=gradient_checkpointing, max_steps=max_steps,
        save_steps=save_steps, save_total_limit=save_total_limit, logging_steps=logging_steps, seed=seed,
        resume=str(resume_from) if resume_from else (True if resume else None), use_cpu=use_cpu,
        stage=stage, align_targets=target_tuple,
    )
    try:
        result = (run_sft if cfg.stage is None else run_vision_sft)(cfg, console=out)
    except (TrainError, SFTDataError, ChatTemplateError, ValueError, OcrUnavailable) as exc:
        _fail(str(exc), code=1)
    if os.environ.get("RANK", "0") == "0":
        m = result.train_metrics
        out.print(f"done: {m.get('train_runtime', 0):.0f} s, final loss {m.get('train_loss', float('nan')):.4f}; model in {result.final_dir}")


# -- convert --------------------------------------------------------------------------------------

convert_app = typer.Typer(name="convert", no_args_is_help=True, add_completion=False,
                          help="Convert downloaded ScienceQA or SciCap files (non-commercial licences: never shipped) for scireflect.")


@convert_app.command("scienceqa")
def convert_scienceqa_command(
    root: Path = typer.Argument(..., help="ScienceQA folder with problems.json and images/ (captions.json optional).", metavar="ROOT"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Question file to write [default: ROOT/scienceqa-SPLIT.jsonl]; the images must be below its folder.", metavar="DIR"),
    split: str = typer.Option("test", "--split", help="train, val, minival or test.", metavar="TEXT"),
    with_images_only: bool = typer.Option(False, "--with-images-only", help="Only questions with an image."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most this many questions.", metavar="N"),
) -> None:
    """ScienceQA -> a question file (multiple choice; lecture and solution kept) for annotate, eval and train --stage instruct."""
    from ...training.convert import ConvertError, convert_scienceqa

    try:
        path, n = convert_scienceqa(root, out, split=split, with_images_only=with_images_only, limit=limit)
    except ConvertError as exc:
        _fail(str(exc))
    console.print(f"{n} ScienceQA questions in {path}")


@convert_app.command("scicap")
def convert_scicap_command(
    json_file: Path = typer.Argument(..., help="A SciCap Challenge split file (e.g. train.json) with 'images' and 'annotations'.", metavar="JSON_FILE"),
    images: Path | None = typer.Option(None, "--images", help="Folder of the split's images [default: the JSON's name without .json, beside it].", metavar="PATH"),
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write [default: scicap-SPLIT.jsonl beside the JSON]; the images must be below its folder.", metavar="DIR"),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most this many figures.", metavar="N"),
) -> None:
    """SciCap -> figure rows (caption, OCR, mentions) for train --stage align."""
    from ...training.convert import ConvertError, convert_scicap

    try:
        path, n = convert_scicap(json_file, out, images=images, limit=limit)
    except ConvertError as exc:
        _fail(str(exc))
    console.print(f"{n} SciCap figures in {path}")


app = typer.Typer(name="scireflect-training", add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="scireflect train / eval (also reachable as 'scireflect train' and 'scireflect eval').")
app.command("train")(train_command)
app.command("eval")(eval_command)

