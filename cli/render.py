"""Runs in the terminal: rich renderables of traces, stats and the annotate summary, readable at 80 columns.

Model output and every other value from a trace is untrusted text: it is always rendered through
:func:`~scireflect.cli.untrusted.untrusted` (a :class:`rich.text.Text` with control characters made
visible), never parsed as rich markup nor passed raw to the terminal.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..agents.figures import content_figures, content_text, figure_refs
from ..graphs.state import attempt_notes
from ..rundata.query import trace_row
from ..rundata.records import execution_status, tool_call_parts
from .untrusted import untrusted as _t
from .untrusted import visible

_STATUS_STYLE = {"accepted": "green", "rejected": "red", "invalid": "dark_orange", "error": "magenta", "running": "yellow",
                 "unverified": "yellow"}


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def traces_table(records: Iterable[Mapping[str, Any]], title: str | None = None) -> Table:
    """The questions as a rich table: id, subject, status, stage, last verifier reason, attempts, tokens."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("id", no_wrap=True)
    table.add_column("subject", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("stage", overflow="fold")
    table.add_column("reason", overflow="fold")
    table.add_column("att", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    for record in records:
        row = trace_row(record)
        table.add_row(
            _t(row["id"]), _t(row["subject"]), _t(row["status"], _STATUS_STYLE.get(row["status"] or "", "")),
            _t(row["stage"]), _t(row["reason"]), str(row["attempts"]), f"{row['tokens']:,}",
        )
    return table


_LABEL = {"overflow": "ellipsis", "min_width": 6}  # wraps at words; a word wider than the column is cut with "…"
_NUMBER = {"justify": "right", "no_wrap": True}  # a number is never split


def _stats_table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False,
                 padding=(0, 1, 0, 0))


def _least_width(table: Table) -> int:
    """The fewest cells ``table`` fits in without splitting a word: its labels wrapped at words (its numbers
    and headers are single words)."""
    return Console(width=10_000, file=io.StringIO(), color_system=None).measure(table).minimum


def _fitted(build: Callable[[frozenset[str]], Table], droppable: Sequence[str], width: int) -> Table:
    """``build(left_out)``'s table, leaving out the columns of ``droppable`` in order until it fits ``width``
    cells, so that rich need not split a number or a word to fit it."""
    left_out: frozenset[str] = frozenset()
    table = build(left_out)
    for name in droppable:
        if _least_width(table) <= width:
            break
        left_out |= {name}
        table = build(left_out)
    return table


def precision_tables(result: Mapping[str, Any]) -> list[Table]:
    """:func:`scireflect.rundata.labels.precision` output as rich tables: overall, then by subject, stage and
    strategy; each row gives valid / labelled, the precision and its Wilson 95% interval, and the labels
    still needed for the planned half-width. Numbers never wrap."""
    tables = []
    groups = [("overall", {"all": result["overall"]})] + [(by, result["by"][by]) for by in ("subject", "stage", "strategy")]
    for by, group in groups:
        table = _stats_table("Precision of accepted traces" if by == "overall" else f"By {by}")
        table.add_column(by if by != "overall" else "", **_LABEL)
        for header in ("valid", "labelled", "precision", "95% interval", "more"):
            table.add_column(header, **_NUMBER)
        for name, p in group.items():
            table.add_row(_t(name), str(p.valid), str(p.labelled), _pct(p.value), f"{100 * p.low:.0f}-{100 * p.high:.0f}%",
                          str(p.more_for))
        tables.append(table)
    return tables


def stats_tables(stats: Mapping[str, Any], width: int = 80) -> list[Table]:
    """:func:`trace_stats` output as rich tables: by subject, by subject and stage, failure reasons, top reasons by
    subject, and (when there are any) invalid attempts by kind.

    Every table fits ``width`` cells (the console's) without splitting a number or a word: numbers never
    wrap (tokens are compact, ``12.3k``; time is ``H:MM:SS``), labels wrap at words or end in ``…``, the
    ``inv``/``err``/``unv`` columns appear only when not all zero, and the least needed columns are left
    out when the rest would not fit. Headers as in :data:`SUMMARY_LEGEND`; a failure reason's
    ``rejected`` counts the rejected questions whose last attempt failed for it.
    """
    from .progress import clock, compact

    subjects = list(stats["subjects"].items())
    counts = [("n", "questions"), ("ok", "accepted"), ("cot", "accepted_cot"), ("new", "accepted_fresh"),
              ("refl", "accepted_reflection"), ("guid", "accepted_answer_guided"), ("rej", "rejected"), ("inv", "invalid"),
              ("err", "error"), ("unv", "unverified")]
    empty = frozenset(h for h, key in counts[7:] if not any(s.get(key, 0) for _, s in subjects))

    def by_subject_table(left_out: frozenset[str]) -> Table:
        table = _stats_table("Questions by subject")
        table.add_column("subject", **_LABEL)
        shown = [(h, key) for h, key in counts if h not in left_out | empty]
        for header, _ in shown[:2]:
            table.add_column(header, **_NUMBER)
        table.add_column("rate", **_NUMBER)
        for header, _ in shown[2:]:
            table.add_column(header, **_NUMBER)
        extra = [h for h in ("tokens", "time") if h not in left_out]
        for header in extra:
            table.add_column(header, **_NUMBER)
        for name, s in subjects:
            if name == "all":
                table.add_section()
            values = [str(s.get(key, 0)) for _, key in shown]
            values.insert(2, _pct(s["acceptance_rate"]))
            values += [compact(int(s["tokens"])) if h == "tokens" else clock(s["seconds"]) for h in extra]
            table.add_row(_t(name), *values, style="bold" if name == "all" else None)
        return table

    def by_stage_table(left_out: frozenset[str]) -> Table:
        table = _stats_table("Attempts by subject and stage")
        table.add_column("subject", **_LABEL)
        table.add_column("stage", **_LABEL)
        columns = [c for c in ("questions", "attempts", "passed", "rate", "tokens", "time") if c not in left_out]
        for name in columns:
            table.add_column(name, **_NUMBER)
        last = None
        for st in stats["stages"]:
            if last is not None and st["subject"] != last:
                table.add_section()
            last = st["subject"]
            cells = {"questions": str(st["questions"]), "attempts": str(st["attempts"]), "passed": str(st["accepted"]),
                     "rate": _pct(st["pass_rate"]), "tokens": compact(int(st["tokens"])), "time": clock(st["seconds"])}
            table.add_row(_t(st["subject"]), _t(st["stage"]), *(cells[c] for c in columns),
                          style="bold" if st["subject"] == "all" else None)
        return table

    def reasons_table(left_out: frozenset[str]) -> Table:
        table = _stats_table("Verifier failure reasons (failed attempts)")
        table.add_column("reason", **_LABEL)
        columns = [c for c in ("attempts", "share", "by stage", "rejected") if c not in left_out]
        for name in columns:
            table.add_column(name, **(_LABEL if name == "by stage" else _NUMBER))
        for item in stats["failure_reasons"]:
            cells = {"attempts": str(item["count"]), "share": _pct(item["share"]),
                     "by stage": _t(", ".join(f"{k} {v}" for k, v in item["by_stage"].items())),
                     "rejected": str(stats["final_reasons"].get(item["reason"], 0))}
            table.add_row(_t(item["reason"]), *(cells[c] for c in columns))
        return table

    top = _stats_table("Most common failure reasons by subject")
    top.add_column("subject", **_LABEL)
    top.add_column("failed attempts: reason (count)", **_LABEL)
    for name, s in subjects:
        if name != "all":
            top.add_row(_t(name), _t(", ".join(f"{r} ({c})" for r, c in s["top_failures"]) or "-"))
    tables = [_fitted(by_subject_table, ("cot", "new", "refl", "guid", "time", "tokens", "unv", "inv", "err", "rej"), width),
              _fitted(by_stage_table, ("time", "questions", "tokens"), width),
              _fitted(reasons_table, ("rejected", "share"), width), top]
    if stats.get("invalid_attempts"):
        invalid = _stats_table("Invalid attempts by kind")
        invalid.add_column("kind", **_LABEL)
        invalid.add_column("attempts", **_NUMBER)
        for kind, count in stats["invalid_attempts"].items():
            invalid.add_row(_t(kind), str(count))
        tables.append(invalid)
    return tables


def tool_calls_renderable(calls: Sequence[Any]) -> RenderableType:
    """A step's ``tool_calls`` as one small panel per call (name, arguments, output); code run in the
    sandbox also shows how it ended (exit status or killed reason, time) and its stderr."""
    parts: list[RenderableType] = []
    for call in calls:
        name, args, output = tool_call_parts(call)
        ran = execution_status(call)
        body = Text()
        body.append("code: " if ran else "args: ", style="bold")
        body.append(visible(args))
        if output:
            body.append("\noutput: ", style="bold")
            body.append(visible(output))
        if ran and ran[1].strip() and ran[1].strip() not in output:
            body.append("\nstderr: ", style="bold")
            body.append(visible(ran[1].strip()[-2000:]))
        title = visible(f"tool call: {name}" + (f" ({ran[0]})" if ran else ""))
        style = "red" if ran and not ran[0].startswith("exit 0") else "cyan"
        parts.append(Panel(body, title=Text(title), title_align="left", border_style=style, box=box.SQUARE))
    return Group(*parts)


def verdict_renderable(verdict: Mapping[str, Any] | None) -> RenderableType:
    """The verifier's evidence for one attempt: outcome, reason, explanation, answers, details."""
    if not verdict:
        return Text("verifier: no verdict", style="dim")
    ok = verdict.get("ok")
    mark, style = ("✓ accepted", "bold green") if ok is True else (("✗ rejected", "bold red") if ok is False else ("? undecided", "bold yellow"))
    if verdict.get("reason") == "invalid":
        mark, style = "✗ invalid", "bold dark_orange"
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    head = Text(mark, style=style)
    head.append(visible(f"  {verdict.get('reason', '-')}"), style="bold")
    if verdict.get("checker"):
        head.append(f"  ({visible(verdict['checker'])} check, {float(verdict.get('elapsed_s') or 0):.2f}s)", style="dim")
    grid.add_row("verifier", head)
    if verdict.get("explanation"):
        grid.add_row("why", _t(verdict["explanation"]))
    answers = Text()
    for key in ("extracted", "candidate", "reference"):
        if verdict.get(key) is not None:
            if answers:
                answers.append("  ")
            answers.append(f"{key} ", style="dim")
            answers.append(visible(verdict[key]), style="bold")
    if answers:
        grid.add_row("answers", answers)
    details = verdict.get("details") or {}
    if details:
        grid.add_row("details", _t(", ".join(f"{k}={v}" for k, v in details.items())))
    return grid


def _step_meta(step: Mapping[str, Any]) -> Text:
    meta = Text(style="dim")
    meta.append(f"{visible(step.get('model') or '?')} · {int(step.get('input_tokens') or 0):,} in / "
                f"{int(step.get('output_tokens') or 0):,} out tokens · {float(step.get('latency_s') or 0):.1f}s")
    if step.get("finish_reason") not in (None, "stop"):
        meta.append(f" · finish {visible(step['finish_reason'])}", style="yellow")
    failures = step.get("transport_failures") or []
    if failures:
        meta.append(f" · {len(failures)} transport failure(s) retried", style="yellow")
    return meta


def render_trace(record: Mapping[str, Any], *, prompts: bool = False) -> RenderableType:
    """One question's whole loop as a rich renderable, readable at 80 columns.

    Shows a header (status, stage, stop reason, attempts, tokens, time), the question with its
    choices, the reference answer, then every step in order: each attempt's response with its
    verifier evidence, each critique, tool calls (steps with ``tool_calls``), errors; with
    ``prompts`` also the messages sent for each step. Model text is rendered verbatim (no markup).
    """
    row = trace_row(record)
    question = record.get("question") or {}
    status = row["status"] or "running"
    head = Table.grid(padding=(0, 2))
    head.add_column(style="dim", no_wrap=True)
    head.add_column(overflow="fold")
    head.add_row("status", _t(status, style="bold " + _STATUS_STYLE.get(status, "")))
    head.add_row("stage", _t(row["stage"]))
    if record.get("mc_path"):
        head.add_row("multiple choice", _t(record["mc_path"]))
    head.add_row("stop reason", _t(row["stop_reason"]))
    head.add_row("subject", _t(" / ".join(str(x) for x in (row["subject"], question.get("topic")) if x)))
    head.add_row("cost", Text(f"{row['attempts']} attempt(s) · {row['tokens']:,} tokens · {row['seconds']:.1f}s"))
    parts: list[RenderableType] = [Panel(head, title=_t(row["id"], style="bold"), title_align="left", box=box.ROUNDED)]

    qtext = _t(question.get("question"))
    for i, choice in enumerate(question.get("choices") or []):
        qtext.append(f"\n({chr(65 + i)}) ", style="bold")
        qtext.append(visible(choice))
    for n, ref in enumerate(figure_refs(question), start=1):
        qtext.append(f"\nfigure {n}: ", style="bold")
        qtext.append(visible(f"{ref.get('path') or 'inline data URL'} (sha256 {str(ref.get('sha256') or '?')[:12]}, "
                             f"{ref.get('width', '?')}x{ref.get('height', '?')} {ref.get('mime') or ''})"))
    for name in ("caption", "ocr"):
        if question.get(name):
            qtext.append(f"\n{name}: ", style="bold")
            qtext.append(visible(question[name]))
    parts.append(Panel(qtext, title="question", title_align="left", box=box.ROUNDED, border_style="blue"))
    ref = Text("reference answer: ", style="bold")
    ref.append(visible(question.get("answer")), style="bold green")
    if question.get("unit"):
        ref.append(f"  (unit: {visible(question['unit'])})", style="dim")
    parts.append(ref)

    for step in record.get("steps") or []:
        role, stage, attempt = step.get("role", "?"), step.get("stage", "?"), step.get("attempt", "?")
        critique = step.get("kind") == "critique"
        notes = "".join(f" · {note}" for note in attempt_notes(step))  # a fresh attempt's strategy, a repeat
        title = f"critique of attempt {attempt} · {role} · {stage}" if critique else f"attempt {attempt} · {role} · {stage}{notes}"
        parts.append(Rule(_t(title, style="bold magenta" if critique else "bold"), align="left", style="dim"))
        parts.append(_step_meta(step))
        if prompts:
            for message in step.get("messages") or []:
                content = message.get("content")
                body = Text(visible("".join(f"[figure {f.get('path') or 'inline'}, sha256 {str(f.get('sha256') or '?')[:12]}]\n"
                                            for f in content_figures(content))), style="dim") + _t(content_text(content))
                parts.append(Panel(body, title=_t(f"prompt: {message.get('role', '?')}"),
                                   title_align="left", box=box.SQUARE, border_style="dim"))
        if step.get("tool_calls"):
            parts.append(tool_calls_renderable(step["tool_calls"]))
        if step.get("error"):
            parts.append(Text("error: ", style="bold red") + _t(step["error"]))
        if step.get("response"):
            parts.append(Panel(_t(step["response"]), box=box.ROUNDED, border_style="magenta" if critique else "white"))
        if not critique:
            parts.append(verdict_renderable(step.get("verdict")))
        if step.get("samples") is not None:
            picked = ", ".join(f"{s.get('parsed_answer')} ({'ok' if (s.get('verdict') or {}).get('ok') is True else 'not ok'})"
                               for s in step["samples"])
            parts.append(Text("samples: ", style="bold") + _t(picked or "none drawn"))
    parts.append(Rule(Text("end: ", style="bold") + _t(row["stop_reason"]), align="left", style="dim"))
    return Group(*parts)


_SUMMARY_COLUMNS = (  # (header, Outcomes field, always shown)
    ("n", "questions", True), ("ok", "accepted", True), ("cot", "accepted_cot", True),
    ("new", "accepted_fresh", True), ("refl", "accepted_reflection", True), ("guid", "accepted_answer_guided", True), ("rej", "rejected", True),
    ("inv", "invalid", False), ("err", "error", False), ("unv", "unverified", False),
)
SUMMARY_LEGEND = ("ok accepted (cot: first chain of thought, new: a fresh attempt (program, resample), refl: after "
                  "reflection, guid: answer-guided), "
                  "rej rejected, inv invalid (cut off, a loop, or contradicts its box), err endpoint errors, "
                  "unv proofs not checked")


def summary_table(summary: Mapping[str, Any], title: str | None = None) -> Table:
    """The per-subject outcome table (``{subject: Outcomes}``, ``all`` last), within 80 columns.

    Short headers (see :data:`SUMMARY_LEGEND`); the ``inv``, ``err`` and ``unv`` columns appear only
    when some subject has invalid questions, errors or unverified proofs; tokens are compact (``12.3k``), time is ``H:MM:SS``
    of model and verifier time. Subjects are untrusted text.
    """
    rows = list(summary.items())
    columns = [c for c in _SUMMARY_COLUMNS if c[2] or any(getattr(o, c[1]) for _, o in rows)]
    from .progress import clock, compact

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("subject", no_wrap=True, width=min(16, max(len("subject"), *(len(str(k)) for k, _ in rows))),
                     overflow="ellipsis")
    for header, field, _ in columns:
        width = max(len(header), *(len(str(getattr(o, field))) for _, o in rows))
        table.add_column(header, justify="right", no_wrap=True, width=width)
    table.add_column("tokens", justify="right", no_wrap=True, width=6)
    table.add_column("time", justify="right", no_wrap=True, width=8)
    for subject, outcomes in rows:
        if subject == "all" and len(rows) > 1:
            table.add_section()
        table.add_row(_t(subject), *(str(getattr(outcomes, field)) for _, field, _ in columns), compact(outcomes.tokens),
                      clock(outcomes.seconds),
                      style="bold" if subject == "all" else None)
    return table
