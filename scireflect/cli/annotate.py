"""``scireflect annotate``: the main job, with a live progress display and a per-subject summary."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def summary_table(summary: Mapping[str, Any], title: str) -> Table:
    """The per-subject summary as a rich table (questions, accepted by stage, rejected, tokens, time)."""
    table = Table(title=title, title_justify="left")
    for name, justify in [("subject", "left"), ("questions", "right"), ("accepted", "right"), ("CoT", "right"),
                          ("reflection", "right"), ("answer-guided", "right"), ("rejected", "right"),
                          ("unverified", "right"), ("error", "right"), ("tokens", "right"), ("time (s)", "right")]:
        table.add_column(name, justify=justify)
    for subject, s in summary.items():
        row = [subject, s.questions, s.accepted, s.accepted_cot, s.accepted_reflection, s.accepted_answer_guided,
               s.rejected, s.unverified, s.error, f"{s.tokens:,}", f"{s.seconds:,.0f}"]
        if subject == "all":
            table.add_section()
        table.add_row(*map(str, row), style="bold" if subject == "all" else None)
    return table


def annotate_command(
    questions: Path = typer.Argument(..., help="JSONL file, one question per line (id, subject, question, answer, ...)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run directory; re-run the same command to resume."),
    subject: list[str] | None = typer.Option(None, "--subject", "-s", help="Only questions of this subject (repeatable)."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="At most this many questions (after --subject)."),
    concurrency: int | None = typer.Option(None, "--concurrency", "-k", min=1, help="Questions in flight at once [default: 2]."),
    budget: str | None = typer.Option(None, "--budget", help="Per-question budget, e.g. 'attempts=4,reflections=2,answer_guided=yes,tokens=24000,seconds=900'."),
    base_url: list[str] | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for every role (default: $OPENAI_BASE_URL, else the embedded model). Repeat it for replicas of one model: questions are spread over them."),
    shard: str | None = typer.Option(None, "--shard", help="Only shard K of N ('K/N', 0-based) of the questions, by a stable hash of their ids: run N processes or machines with their own --out, then export them together."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name at the endpoint."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, help="Sampling temperature [default: 0.2]."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=16, help="Completion tokens per model call [default: 1536]."),
    prompt_variant: str | None = typer.Option(None, "--prompt-variant", help="Force one prompt variant: math, physics, chemistry, general [default: from each question's subject]."),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML file: per-role endpoints and models, budget, verifier."),
    embedded_model: str | None = typer.Option(None, "--embedded-model", help="Embedded model: a name from 'scireflect models' or an alias (1.5b, 0.5b, small)."),
    gguf: Path | None = typer.Option(None, "--gguf", help="Serve this GGUF file as the embedded model instead."),
    rel_tol: float | None = typer.Option(None, "--rel-tol", min=0.0, help="A fixed relative tolerance of numeric answers (SciBench grades with 0.05)."),
    tolerance: str | None = typer.Option(None, "--tolerance", help="Numeric tolerance policy: default, sig_figs, scibench."),
    lean_project: Path | None = typer.Option(None, "--lean-project", help="Lean 4 project with Mathlib built, for rows with a Lean `statement` (see docs/lean.md)."),
    lean_backend: str | None = typer.Option(None, "--lean-backend", help="Lean checker: auto, repl, lake, leandojo, none [default: auto]."),
    tools: str | None = typer.Option(None, "--tools", help="Tools by name, comma-separated: python (the Solver and Reviser run Python in a sandbox), calculator, unit_converter, answer_format_check (the Solver and Critic); 'basic' is the last three, 'all' every tool, 'none' none [default: none]."),
    tool_format: str | None = typer.Option(None, "--tool-format", help="How python reaches the model: text (```python/```output blocks), calls (tool calling), auto (text on the embedded model) [default: auto]."),
) -> None:
    """Annotate questions with the self-reflective loop: solve, verify, critique, revise, answer-guided revision."""
    from ..graphs.nodes import EndpointError
    from ..run.config import ConfigError, load_settings
    from ..run.errors import RunError
    from ..run.questions import QuestionFileError, load_questions, select_shard
    from ..run.runner import annotate as run_annotate

    try:
        questions_set = load_questions(questions, subjects=set(subject) if subject else None, limit=limit)
        if shard:
            questions_set = select_shard(questions_set, shard)
    except QuestionFileError as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"--shard: {exc}")
    if not questions_set.questions:
        _fail(f"{questions}: no question matches --subject {', '.join(subject or [])}")
    try:
        settings = load_settings(
            config,
            cli_llm={"base_url": base_url or None, "model": model, "temperature": temperature, "max_tokens": max_tokens},
            budget_spec=budget,
            concurrency=concurrency,
            prompt_variant=prompt_variant,
            embedded_model=embedded_model,
            gguf_path=gguf,
            rel_tol=rel_tol,
            tolerance=tolerance,
            tools=tools,
            tool_format=tool_format,
            lean={"project_dir": str(lean_project) if lean_project else None, "backend": lean_backend},
        )
        from ..agents.prompts import subject_variant

        subject_variant(None, settings.prompt_variant)
    except (ConfigError, ValueError) as exc:
        _fail(f"bad config: {exc}")

    progress = Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("[green]accepted {task.fields[accepted]}[/] [red]rejected {task.fields[rejected]}[/] [yellow]error {task.fields[error]}[/]"
                   " [dim]unverified {task.fields[unverified]}[/]"),
        TimeElapsedColumn(), console=console, transient=False,
    )
    task_id = progress.add_task("annotating", total=len(questions_set), accepted=0, rejected=0, error=0, unverified=0, start=False)
    counts = {"accepted": 0, "rejected": 0, "error": 0, "unverified": 0}

    def on_event(kind: str, data: Mapping[str, Any] | None) -> None:
        if kind == "status":
            progress.console.print(f"[dim]{data['message']}[/]")
        elif kind == "warning":
            progress.console.print(f"[yellow]warning:[/] {data['message']}")
        elif kind == "start":
            if data["skipped"]:
                progress.console.print(f"resuming: {data['skipped']} of {data['total']} questions already done")
            progress.start_task(task_id)
            progress.update(task_id, completed=data["skipped"])
        elif kind == "done":
            counts[data["status"]] = counts.get(data["status"], 0) + 1
            progress.update(task_id, advance=1, **counts)
            colour = {"accepted": "green", "rejected": "red"}.get(data["status"], "yellow")
            if data["accepted_stage"]:
                stage = f" at {data['accepted_stage']}"
            elif data["status"] == "unverified":
                stage = ""  # the reason was said once, at the start of the run
            else:
                stage = f" ({data['stop_reason']})"
            progress.console.print(
                f"[{colour}]{data['status']}[/]{stage}: {data['id']} [dim]{data['n_attempts']} attempt(s), "
                f"{data['tokens']:,} tokens, {data['seconds']:.0f} s[/]", highlight=False, soft_wrap=True)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        # SIGTERM behaves like Ctrl-C: cancel, close the server and the checkpointer cleanly.
        loop.add_signal_handler(signal.SIGTERM, lambda: current.cancel() if current else None)
        return await run_annotate(questions_set, out_dir, settings, on_event=on_event)

    try:
        with progress:
            result = asyncio.run(main())
    except (RunError, EndpointError) as exc:
        _fail(f"{exc}\nFinished questions are saved in {out_dir}; re-run the same command to continue.", code=1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print(f"[yellow]interrupted[/]: finished questions are saved in {out_dir}; re-run the same command to continue.")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - a clear message beats a traceback for users
        from ..embedded import EmbeddedModelError

        if isinstance(exc, EmbeddedModelError):
            _fail(str(exc), code=1)
        raise

    out.print(summary_table(result.summary, f"scireflect annotate: {result.run_dir}"))
    out.print(
        f"{result.finished_now} annotated now, {result.skipped} already done; "
        f"{result.sft_count} SFT pairs in {result.run_dir / 'sft.jsonl'}, all attempts in {result.run_dir / 'traces.jsonl'}"
    )
