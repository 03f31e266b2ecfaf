"""``scireflect traces``: browse a run's traces in the terminal.

Command shape::

    scireflect traces RUN_DIR [--subject S] [--status accepted|rejected|invalid|error|unverified]
                              [--stage cot|reflection|answer_guided] [--reason CODE] [--json]
    scireflect traces RUN_DIR list  [same filters]       # the default command
    scireflect traces RUN_DIR show ID [--prompts]        # one question's whole loop
    scireflect traces RUN_DIR stats [same filters] [--json]
    scireflect traces RUN_DIR precision [--models] [--json]  # from labels.jsonl (scireflect view --review)

``RUN_DIR`` may also be a ``traces.jsonl`` file. The file may be growing (a run in progress): a
last line without its newline is a write in progress and is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from .untrusted import untrusted


class _RunDirFirstGroup(TyperGroup):
    """A group whose options may follow its ``RUN_DIR`` argument: ``traces RUN --status rejected stats``.

    Click groups stop parsing their own options at the first positional argument. Here the tokens
    before the subcommand name (the first known command name after ``RUN_DIR``) are parsed with
    interspersed options, and everything from the subcommand name on is left to the subcommand.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {name for p in self.params if isinstance(p, click.Option) and not p.is_flag for name in p.opts + p.secondary_opts}
        split, positionals, i = len(args), 0, 0
        while i < len(args):
            token = args[i]
            if token == "--":
                break
            if token.startswith("-") and token != "-":
                if token in takes_value:
                    i += 1  # skip the option's value
            else:
                positionals += 1
                if positionals > 1 and token in self.commands:
                    split = i
                    break
            i += 1
        if split == len(args):
            ctx.allow_interspersed_args = True
            return super().parse_args(ctx, args)
        ctx.allow_interspersed_args = True
        return super().parse_args(ctx, args[:split] + ["--"] + args[split:])


traces_app = typer.Typer(
    cls=_RunDirFirstGroup,
    rich_markup_mode=None,
    help="Browse a run's traces: list questions with filters (default), show one question's loop, stats.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SUBJECT = typer.Option(None, "--subject", "-s", metavar="NAME", help="Only this subject (repeatable).")
_STATUS = typer.Option(None, "--status", metavar="STATUS", help="Only this final status: accepted, rejected, invalid, error, unverified (repeatable).")
_STAGE = typer.Option(None, "--stage", metavar="STAGE", help="Only questions accepted at this stage: cot, reflection, answer_guided (repeatable).")
_REASON = typer.Option(None, "--reason", "-r", metavar="CODE", help="Only questions whose last attempt got this verifier reason, e.g. numeric_mismatch (repeatable).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")


def _console() -> Console:
    return Console(highlight=False)


def _fail(message: str, code: int = 1) -> None:
    Console(stderr=True, highlight=False).print(Text("error: ", style="bold red") + untrusted(message))
    raise typer.Exit(code)


def _load(ctx: typer.Context) -> list[dict[str, Any]]:
    from ..rundata.store import TraceFileError, load_traces

    run_dir = ctx.obj["run_dir"]
    try:
        return load_traces(run_dir)
    except (FileNotFoundError, TraceFileError) as exc:
        _fail(str(exc), 2)
        raise  # unreachable


def _filters(ctx: typer.Context, **extra: list[str] | None) -> dict[str, list[str] | None]:
    merged = dict(ctx.obj["filters"])
    for key, value in extra.items():
        if value:
            merged[key] = list(merged.get(key) or []) + list(value)
    return merged


def _filtered(ctx: typer.Context, **extra: list[str] | None) -> list[Mapping[str, Any]]:
    from ..rundata.query import filter_traces

    records = _load(ctx)
    try:
        return filter_traces(records, **_filters(ctx, **extra))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _print_list(records: Sequence[Mapping[str, Any]], total: int, as_json: bool) -> None:
    from ..rundata.query import trace_row
    from .render import traces_table

    if as_json:
        for record in records:
            typer.echo(json.dumps(trace_row(record), ensure_ascii=False))
        return
    console = _console()
    console.print(traces_table(records))
    console.print(Text(f"{len(records)} of {total} question(s)", style="dim"))


@traces_app.callback(invoke_without_command=True)
def traces_main(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="Run directory (or its traces.jsonl).", metavar="RUN_DIR"),
    subject: list[str] | None = _SUBJECT,
    status: list[str] | None = _STATUS,
    stage: list[str] | None = _STAGE,
    reason: list[str] | None = _REASON,
    as_json: bool = _JSON,
) -> None:
    """Browse a run's traces. Without a command: list the questions (same as 'list')."""
    ctx.obj = {"run_dir": run_dir, "as_json": as_json,
               "filters": {"subject": subject, "status": status, "stage": stage, "reason": reason}}
    if ctx.invoked_subcommand is None:
        records = _load(ctx)
        _print_list(_filtered(ctx), len(records), as_json)


@traces_app.command("list")
def traces_list(
    ctx: typer.Context,
    subject: list[str] | None = _SUBJECT,
    status: list[str] | None = _STATUS,
    stage: list[str] | None = _STAGE,
    reason: list[str] | None = _REASON,
    as_json: bool = _JSON,
) -> None:
    """List the questions (id, subject, status, stage, last verifier reason, attempts, tokens)."""
    records = _load(ctx)
    _print_list(_filtered(ctx, subject=subject, status=status, stage=stage, reason=reason), len(records),
                as_json or ctx.obj["as_json"])


@traces_app.command("show")
def traces_show(
    ctx: typer.Context,
    qid: str = typer.Argument(..., metavar="ID", help="Question id (or a unique prefix)."),
    prompts: bool = typer.Option(False, "--prompts", help="Also show the prompt messages sent at each step."),
) -> None:
    """Show one question's whole loop: attempts, critiques, tool calls, verifier evidence, reference answer."""
    from ..rundata.query import find_trace
    from .render import render_trace

    try:
        record = find_trace(_load(ctx), qid)
    except KeyError as exc:
        _fail(exc.args[0])
        return
    _console().print(render_trace(record, prompts=prompts))


@traces_app.command("stats")
def traces_stats(
    ctx: typer.Context,
    subject: list[str] | None = _SUBJECT,
    status: list[str] | None = _STATUS,
    stage: list[str] | None = _STAGE,
    reason: list[str] | None = _REASON,
    as_json: bool = _JSON,
) -> None:
    """Per subject and stage: counts, acceptance rates, tokens, time, most common verifier failure reasons."""
    from ..rundata.summary import trace_stats
    from .render import stats_tables

    records = _filtered(ctx, subject=subject, status=status, stage=stage, reason=reason)
    stats = trace_stats(records)
    if as_json or ctx.obj["as_json"]:
        typer.echo(json.dumps(stats, indent=2, ensure_ascii=False))
        return
    console = _console()
    for table in stats_tables(stats, width=console.width):
        console.print(table)



@traces_app.command("precision")
def traces_precision(
    ctx: typer.Context,
    models: bool = typer.Option(False, "--models", help="Count model judges' labels (reviewer model:NAME) instead of people's."),
    half_width: float = typer.Option(0.05, "--half-width", min=0.005, max=0.5,
                                     help="Interval half-width to plan for: how many more labels would reach it."),
    as_json: bool = _JSON,
) -> None:
    """Precision of the accepted traces from RUN_DIR/labels.jsonl, with Wilson 95% intervals, overall and
    by subject, stage and strategy (label traces with 'scireflect view RUN_DIR --review')."""
    from ..rundata.labels import agreement, precision, read_labels

    records = _load(ctx)
    labels, problems = read_labels(ctx.obj["run_dir"])
    for problem in problems:
        Console(stderr=True, highlight=False).print(Text("warning: ", style="yellow") + untrusted(f"{problem} (line skipped)"))
    result = precision(records, labels, models=models, half_width=half_width)
    result["agreement"] = agreement(records, labels)
    if as_json or ctx.obj["as_json"]:
        def plain(p: Any) -> dict[str, Any]:
            return {"precision": p.value, "valid": p.valid, "labelled": p.labelled, "low": p.low, "high": p.high,
                    "more_labels_for_half_width": p.more_for}
        typer.echo(json.dumps({**result, "overall": plain(result["overall"]),
                               "by": {k: {v: plain(p) for v, p in g.items()} for k, g in result["by"].items()}},
                              indent=2, ensure_ascii=False))
        return
    from .render import precision_tables

    console = _console()
    who = "model judges'" if models else "people's"
    overall = result["overall"]
    if not overall.labelled:
        console.print(Text(f"no {who} labels on the {result['accepted']} accepted traces yet "
                           f"({result['stale']} stale): label some with 'scireflect view RUN --review'"))
        return
    for table in precision_tables(result):
        console.print(table)
    console.print(Text(f"{overall.labelled} of {result['accepted']} accepted traces labelled ({who} labels); "
                       f"{result['stale']} stale label(s) of changed traces not counted. About {overall.more_for} more "
                       f"label(s) would narrow the overall interval to ±{half_width * 100:g} points.", style="dim"))
    agree = result["agreement"]
    if agree["n"]:
        m = agree["matrix"]
        kappa = "undefined" if agree["kappa"] is None else f"{agree['kappa']:.2f}"
        console.print(Text(f"model judges vs people on {agree['n']} traces labelled by both: both valid {m['valid']['valid']}, "
                           f"both invalid {m['invalid']['invalid']}, people valid/model invalid {m['valid']['invalid']}, "
                           f"people invalid/model valid {m['invalid']['valid']}; Cohen's kappa {kappa}"))


__all__ = ["traces_app"]
