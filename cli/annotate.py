"""``scireflect annotate``: the main job, with a live progress display and a per-subject summary.

Order of checks, so that a mistake costs nothing: settings (config file and flags), then the question
file (every line), then the run directory; only then is a model started. Every error is one line,
exit status 2; a failure during the run exits 1, an interrupt 130, each with the summary so far.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from ..rundata.untrusted import untrusted, visible

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)

SAMPLES = {"quickstart": "quickstart.jsonl", "full": "questions.jsonl"}
"""The question files shipped with scireflect (``data/sample``, installed as ``scireflect.samples``)."""


def sample_path(name: str) -> Path:
    """The path of a shipped sample (``quickstart``: 6 questions of mixed subjects; ``full``: 40)."""
    from importlib.resources import files

    return Path(str(files("scireflect.samples") / SAMPLES[name]))


def _fail(message: str, code: int = 2) -> None:
    console.print(Text("error: ", style="bold red") + untrusted(message))
    raise typer.Exit(code)


def _summary(run_dir: Path, title: str) -> None:
    """Print the run directory's summary table (all finished questions, earlier runs included)."""
    from ..rundata.store import load_traces
    from ..rundata.summary import summarize
    from .render import SUMMARY_LEGEND, summary_table

    try:
        records = load_traces(run_dir)
    except (FileNotFoundError, ValueError):
        return
    if records:
        out.print(summary_table(summarize(records), title))
        out.print(Text(SUMMARY_LEGEND, style="dim"))


def annotate_command(
    questions: Path | None = typer.Argument(None, metavar="QUESTIONS", show_default=False,
                                            help="JSONL file, one question per line (id, question, answer, subject, ...). "
                                                 "Default: the shipped quick-start sample (6 questions)."),
    out_dir: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Run directory; re-run the same command to resume."),
    sample: str | None = typer.Option(None, "--sample", metavar="NAME",
                                      help="A shipped sample instead of QUESTIONS: quickstart (6 questions) or full (40)."),
    subject: list[str] | None = typer.Option(None, "--subject", "-s", metavar="NAME", help="Only questions of this subject (repeatable)."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, metavar="N", help="At most N questions (after --subject)."),
    concurrency: int | None = typer.Option(None, "--concurrency", "-k", min=1, metavar="K", help="Model calls in flight at once; with the embedded model also its server slots "
                                                  "[default: 2; embedded model on 6+ cores: one per 2 cores, at most 8]."),
    lookahead: int | None = typer.Option(None, "--lookahead", min=0, metavar="L",
                                         help="Questions admitted beyond K, prepared, checked and recorded while the K calls run "
                                              "[default: K with an endpoint, 0 with the embedded model]."),
    budget: str | None = typer.Option(None, "--budget", metavar="SPEC",
                                      help="Per-question limits, e.g. attempts=4,reflections=2,answer_guided=yes,tokens=24000 "
                                           "(seconds=S adds a time limit; off by default; mc_samples=3: samples that must agree on the "
                                           "letter of a multiple-choice question that needs its options; "
                                           "strategy=cot/reflect/resample/program/answer_guided: the order of attempts)."),
    judge: str | None = typer.Option(None, "--judge", metavar="MODE",
                                     help="Model reviewer on accepted attempts (the Critic's model names the earliest wrong step): "
                                          "off, flag (recorded) or gate (accepted only when no step is wrong) [default: off]."),
    base_url: list[str] | None = typer.Option(None, "--base-url", metavar="URL",
                                              help="OpenAI-compatible endpoint for every role (default: $OPENAI_BASE_URL, else the "
                                                   "embedded model). Repeat it for replicas of one model."),
    model: str | None = typer.Option(None, "--model", "-m", metavar="NAME", help="Model name at the endpoint."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, metavar="T", help="Sampling temperature [default: 0.2]."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=16, metavar="N", help="Completion tokens per model call [default: 1536]."),
    request_timeout: float | None = typer.Option(None, "--request-timeout", min=1.0, metavar="SECONDS",
                                                 help="Give up on a call after this long without a new token (time to the first "
                                                      "token included); a long generation is never cut [default: 600]."),
    shard: str | None = typer.Option(None, "--shard", metavar="K/N",
                                     help="Only shard K of N (0-based) of the questions, by a stable hash of their ids."),
    prompt_variant: str | None = typer.Option(None, "--prompt-variant", metavar="NAME",
                                              help="Force a prompt variant: math, physics, chemistry, general [default: by subject]."),
    config: Path | None = typer.Option(None, "--config", "-c", metavar="FILE", help="TOML file: per-role endpoints and models, budget, verifier."),
    embedded_model: str | None = typer.Option(None, "--embedded-model", metavar="NAME",
                                              help="Embedded model: a name from 'scireflect models' or an alias (1.5b, 0.5b)."),
    gguf: Path | None = typer.Option(None, "--gguf", metavar="FILE", help="Serve this GGUF file as the embedded model instead."),
    speculative: str | None = typer.Option(None, "--speculative", metavar="MODE",
                                           help="Embedded model's speculative decoding: auto (the 0.5B drafts for the 1.5B when both "
                                                "are installed), off, or a draft model name; greedy output can differ at near-ties "
                                                "[default: off]."),
    embedded_threads: int | None = typer.Option(None, "--embedded-threads", min=1, metavar="N",
                                                help="CPU threads of the embedded server [default: one per core]."),
    mmproj: Path | None = typer.Option(None, "--mmproj", metavar="FILE",
                                       help="Multimodal projector GGUF served beside the embedded model, so that it takes the "
                                            "questions' figures (e.g. SmolVLM's or Qwen2.5-VL's mmproj file)."),
    figures: str | None = typer.Option(None, "--figures", metavar="MODE",
                                       help="How figures reach the models: image (the pixels), text (caption, OCR text and "
                                            "mentions, for text-only models) or both [default: image]."),
    ocr: bool | None = typer.Option(None, "--ocr/--no-ocr", help="Read a figure question's missing 'ocr' text with Tesseract [default: on]."),
    rel_tol: float | None = typer.Option(None, "--rel-tol", min=0.0, metavar="X", help="A fixed relative tolerance of numeric answers."),
    tolerance: str | None = typer.Option(None, "--tolerance", metavar="POLICY", help="Numeric tolerance policy: default, sig_figs, scibench."),
    steps: str | None = typer.Option(None, "--steps", metavar="MODE", help="Step checker: gate (default: a false calculation in the reasoning rejects a matching answer), flag (recorded only), off."),
    lean_project: Path | None = typer.Option(None, "--lean-project", metavar="DIR",
                                             help="Lean 4 project with Mathlib built, for rows with a Lean statement."),
    lean_backend: str | None = typer.Option(None, "--lean-backend", metavar="NAME", help="Lean checker: auto, repl, lake, leandojo, none."),
    tools: str | None = typer.Option(None, "--tools", metavar="NAMES",
                                     help="Tools by name, comma-separated: python (the Solver and Reviser run Python in a sandbox), "
                                          "calculator, unit_converter, answer_format_check (the Solver and Critic); 'basic' is the "
                                          "last three, 'all' every tool, 'none' none [default: none]."),
    tool_format: str | None = typer.Option(None, "--tool-format", metavar="FORMAT",
                                           help="How python reaches the model: text (```python/```output blocks), calls (tool "
                                                "calling), auto (text on the embedded model) [default: auto]."),
    ray: str | None = typer.Option(None, "--ray", metavar="ADDRESS",
                                   help="Run on Ray: auto (the cluster of RAY_ADDRESS or of 'ray start' here, else a local one), "
                                        "local, or a cluster address; shards run in restartable actors (needs scireflect[ray])."),
    shards: int | None = typer.Option(None, "--shards", min=1, metavar="N",
                                      help="With --ray: split a new run into N shards [default: 4 per cluster CPU]."),
    checkpoints: str | None = typer.Option(None, "--checkpoints", metavar="URL",
                                           help="LangGraph checkpoints in PostgreSQL (postgresql://...) instead of SQLite in the run "
                                                "directory (needs scireflect[postgres])."),
) -> None:
    """Annotate questions with the self-reflective loop: solve, verify, critique, revise, answer-guided revision."""
    from ..run.config import ConfigError, load_settings
    from ..rundata.errors import RunError
    from ..rundata.questions import QuestionFileError, load_questions, select_shard
    from ..run.runner import make_run_dir

    if ray:
        try:
            import ray as _ray  # noqa: F401
        except ImportError:
            _fail("--ray needs Ray: pip install 'scireflect[ray]'")
    if sample is not None and (sample not in SAMPLES or questions is not None):
        _fail(f"--sample takes {' or '.join(SAMPLES)}, instead of a QUESTIONS file")
    questions = questions or sample_path(sample or "quickstart")
    try:
        settings = load_settings(
            config,
            cli_llm={"base_url": base_url or None, "model": model, "temperature": temperature, "max_tokens": max_tokens,
                     "request_timeout_s": request_timeout},
            budget_spec=budget, concurrency=concurrency, lookahead=lookahead, prompt_variant=prompt_variant, embedded_model=embedded_model,
            gguf_path=gguf, rel_tol=rel_tol, tolerance=tolerance, steps=steps, tools=tools, tool_format=tool_format, speculative=speculative,
            embedded_threads=embedded_threads, judge=judge,
            lean={"project_dir": str(lean_project) if lean_project else None, "backend": lean_backend},
            checkpoints=checkpoints,
            mmproj_path=mmproj,
            figures=figures,
            ocr=ocr,
        )
        from ..agents.prompts import subject_variant

        subject_variant(None, settings.prompt_variant)
    except (ConfigError, ValueError) as exc:
        _fail(f"bad settings: {exc}")
    try:
        question_set = load_questions(questions, subjects=set(subject) if subject else None, limit=limit,
                                      max_question_bytes=settings.max_question_bytes)
    except QuestionFileError as exc:  # names the file, the line and the cause
        _fail(str(exc))
    if shard:
        try:
            question_set = select_shard(question_set, shard)
        except ValueError as exc:  # only a bad K/N: a question file's errors never read "--shard"
            _fail(f"--shard: {exc}")
    if not question_set.questions:
        _fail(f"{questions}: no question matches --subject {', '.join(subject or [])}")
    try:
        make_run_dir(out_dir)
    except RunError as exc:
        _fail(str(exc))
    _run(question_set, out_dir, settings, ray=ray, shards=shards)


def _run(question_set: Any, out_dir: Path, settings: Any, *, ray: str | None = None, shards: int | None = None) -> None:
    """Run the annotation with the live display; print the summary however it ends."""
    from ..embedded import EmbeddedModelError
    from ..graphs.nodes import EndpointError
    from ..rundata.errors import RunError
    from ..run.runner import annotate
    from .progress import LiveProgress

    title = f"scireflect annotate: {out_dir}"
    display = LiveProgress(console, total=len(question_set))

    async def main() -> Any:
        current = asyncio.current_task()
        # SIGTERM behaves like Ctrl-C: cancel, stop the embedded server and close the checkpointer cleanly.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: current.cancel() if current else None)
        if ray:
            from ..run.cluster import annotate_on_ray

            return await annotate_on_ray(question_set, out_dir, settings, address=ray, shards=shards, on_event=display.on_event)
        return await annotate(question_set, out_dir, settings, on_event=display.on_event)

    resume = Text("Finished questions are saved in ") + Text(str(out_dir)) + Text("; re-run the same command to continue.")
    try:
        with display:
            result = asyncio.run(main())
    except (RunError, EndpointError, EmbeddedModelError) as exc:
        console.print(Text("error: ", style="bold red") + untrusted(exc))
        _summary(out_dir, f"{title} (stopped)")
        if (out_dir / "traces.jsonl").is_file() and (out_dir / "traces.jsonl").stat().st_size:
            console.print(resume)
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print(Text("interrupted", style="yellow"))
        _summary(out_dir, f"{title} (interrupted)")
        console.print(resume)
        raise typer.Exit(130) from None
    _summary(out_dir, title)
    out.print(closing_line(result))


def closing_line(result: Any) -> Text:
    """The line a finished run ends with (counts and where its files are); printed wrapped at words to the
    terminal's width, never wider."""
    line = Text(f"{result.finished_now} annotated now, {result.skipped} already done; {result.sft_count} SFT pairs in ")
    line.append(visible(result.run_dir / "sft.jsonl"))
    line.append(", every attempt in ")
    line.append(visible(result.run_dir / "traces.jsonl"))
    return line


__all__ = ["SAMPLES", "annotate_command", "closing_line", "sample_path"]
