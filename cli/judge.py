"""``scireflect judge``: a model reviews the accepted traces of a run (the process judge, :mod:`scireflect.run.judging`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from .untrusted import untrusted
from ..run.config import LLMSettings, RunSettings
from .options import setting_option


def judge_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="Run directory whose accepted traces to judge."),
    base_url: list[str] | None = setting_option(LLMSettings, "base_url", metavar="URL",
                                                help="OpenAI-compatible endpoint of the judge (default: $OPENAI_BASE_URL, else the embedded model)."),
    model: str | None = setting_option(LLMSettings, "model", "-m", metavar="NAME"),
    embedded_model: str | None = setting_option(RunSettings, "embedded_model", metavar="NAME", help="Embedded model (1.5b, 0.5b)."),
    limit: int | None = typer.Option(None, "--limit", min=1, metavar="N", help="Judge at most N traces not judged yet."),
    seed: int = typer.Option(0, "--seed", help="Seed of the review order (the same stratified order as 'view --review')."),
    concurrency: int | None = setting_option(RunSettings, "concurrency", metavar="K", help="Judge calls at once [default: 2]."),
    max_tokens: int | None = setting_option(LLMSettings, "max_tokens", metavar="N", help="Completion tokens per judgement [default: 1536]."),
    config: Path | None = typer.Option(None, "--config", "-c", metavar="FILE", help="TOML file: the critic role's endpoint and model judge."),
) -> None:
    """Have a model name the earliest wrong step of each accepted trace (or none); its labels go to
    RUN_DIR/labels.jsonl as reviewer model:NAME ('scireflect traces RUN_DIR precision --models' reads them)."""
    from ..run.config import ConfigError, load_settings
    from ..rundata.errors import RunError
    from ..run.judging import judge_run
    from ..rundata.store import TraceFileError

    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False)
    try:
        settings = load_settings(config, base_url=base_url or None, model=model, max_tokens=max_tokens, temperature=0.0,
                                 concurrency=concurrency, embedded_model=embedded_model)
    except (ConfigError, ValueError) as exc:
        err.print(Text("error: ", style="bold red") + untrusted(f"bad settings: {exc}"))
        raise typer.Exit(2) from None

    def shown(label: dict) -> None:
        mark = {"valid": Text("valid", "green"), "invalid": Text("invalid", "red")}.get(label["label"], Text("no verdict", "yellow"))
        out.print(mark + Text(" ") + untrusted(label["id"]) + Text(" ") + untrusted(label.get("note") or "", "dim"))

    try:
        summary = asyncio.run(judge_run(run_dir, settings, limit=limit, seed=seed, on_label=shown))
    except (FileNotFoundError, TraceFileError, RunError) as exc:
        err.print(Text("error: ", style="bold red") + untrusted(exc))
        raise typer.Exit(2) from None
    for fault in summary.faults:
        err.print(Text("failed: ", style="yellow") + untrusted(fault))
    out.print(untrusted(f"{summary.reviewer}: {summary.judged} judged ({summary.valid} valid, {summary.invalid} with a wrong step, "
                        f"{summary.no_verdict} without a verdict), {summary.already} judged before; {summary.tokens} completion tokens. "
                        f"Labels in {run_dir / 'labels.jsonl'}"))
    if summary.faults:
        raise typer.Exit(1)


__all__ = ["judge_command"]
