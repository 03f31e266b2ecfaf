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

from .untrusted import untrusted, visible
from ..run.config import LLMSettings, RunSettings, VerifierSettings
from .options import setting_option

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
    concurrency: int | None = setting_option(RunSettings, "concurrency", "-k", metavar="K"),
    lookahead: int | None = setting_option(RunSettings, "lookahead", metavar="L"),
    budget: str | None = setting_option(RunSettings, "budget", metavar="SPEC"),
    judge: str | None = setting_option(RunSettings, "judge", metavar="MODE"),
    base_url: list[str] | None = setting_option(LLMSettings, "base_url", metavar="URL"),
    model: str | None = setting_option(LLMSettings, "model", "-m", metavar="NAME"),
    temperature: float | None = setting_option(LLMSettings, "temperature", metavar="T"),
    max_tokens: int | None = setting_option(LLMSettings, "max_tokens", metavar="N"),
    request_timeout: float | None = setting_option(LLMSettings, "request_timeout_s", metavar="SECONDS"),
    shard: str | None = typer.Option(None, "--shard", metavar="K/N",
                                     help="Only shard K of N (0-based) of the questions, by a stable hash of their ids."),
    prompt_variant: str | None = setting_option(RunSettings, "prompt_variant", metavar="NAME"),
    config: Path | None = typer.Option(None, "--config", "-c", metavar="FILE", help="TOML file: per-role endpoints and models, budget, verifier."),
    embedded_model: str | None = setting_option(RunSettings, "embedded_model", metavar="NAME"),
    gguf: Path | None = setting_option(RunSettings, "gguf_path", metavar="FILE"),
    speculative: str | None = setting_option(RunSettings, "speculative", metavar="MODE"),
    embedded_threads: int | None = setting_option(RunSettings, "embedded_threads", metavar="N"),
    mmproj: Path | None = setting_option(RunSettings, "mmproj_path", metavar="FILE"),
    figures: str | None = setting_option(RunSettings, "figures", metavar="MODE"),
    ocr: bool | None = setting_option(RunSettings, "ocr"),
    rel_tol: float | None = setting_option(VerifierSettings, "rel_tol", metavar="X"),
    tolerance: str | None = setting_option(VerifierSettings, "tolerance", metavar="POLICY"),
    steps: str | None = setting_option(VerifierSettings, "steps", metavar="MODE"),
    lean_project: Path | None = typer.Option(None, "--lean-project", metavar="DIR",
                                             help="Lean 4 project with Mathlib built, for rows with a Lean statement."),
    lean_backend: str | None = typer.Option(None, "--lean-backend", metavar="NAME", help="Lean checker: auto, repl, lake, leandojo, none."),
    tools: str | None = setting_option(RunSettings, "tools", metavar="NAMES"),
    tool_format: str | None = setting_option(RunSettings, "tool_format", metavar="FORMAT"),
    ray: str | None = typer.Option(None, "--ray", metavar="ADDRESS",
                                   help="Run on Ray: auto (the cluster of RAY_ADDRESS or of 'ray start' here, else a local one), "
                                        "local, or a cluster address; shards run in restartable actors (needs scireflect[ray])."),
    shards: int | None = typer.Option(None, "--shards", min=1, metavar="N",
                                      help="With --ray: split a new run into N shards [default: 4 per cluster CPU]."),
    checkpoints: str | None = setting_option(RunSettings, "checkpoints", metavar="URL"),
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
            config, base_url=base_url, model=model, temperature=temperature, max_tokens=max_tokens, request_timeout_s=request_timeout,
            budget=budget, concurrency=concurrency, lookahead=lookahead, prompt_variant=prompt_variant, embedded_model=embedded_model,
            gguf_path=gguf, rel_tol=rel_tol, tolerance=tolerance, steps=steps, tools=tools, tool_format=tool_format, speculative=speculative,
            embedded_threads=embedded_threads, judge=judge, checkpoints=checkpoints, mmproj_path=mmproj, figures=figures, ocr=ocr,
            lean={"project_dir": str(lean_project) if lean_project else None, "backend": lean_backend},
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
