"""Reading a run directory's traces: load, filter, summarise, and show them in the terminal.

The pure functions here (:func:`read_traces`, :func:`load_traces`, :func:`filter_traces`,
:func:`trace_row`, :func:`trace_stats`, :func:`render_trace`) are shared by the ``scireflect traces``
commands (:data:`traces_app`) and the web viewer (:mod:`scireflect.viewer`).

Command shape (``traces_app`` is registered as ``scireflect traces``)::

    scireflect traces RUN_DIR [--subject S] [--status accepted|rejected|error]
                              [--stage cot|reflection|answer_guided] [--reason CODE] [--json]
    scireflect traces RUN_DIR list  [same filters]       # the default command
    scireflect traces RUN_DIR show ID [--prompts]        # one question's whole loop
    scireflect traces RUN_DIR stats [same filters] [--json]

``RUN_DIR`` may also be a ``traces.jsonl`` file. The traces file may be growing (a run in progress):
a last line without its newline is a write in progress and is ignored.

Model output is untrusted text: it is always rendered as :class:`rich.text.Text`, never parsed as
rich markup.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

TRACES_FILE = "traces.jsonl"
STATUSES = ("accepted", "rejected", "error", "unverified")
STAGES = ("cot", "reflection", "answer_guided")


class TraceFileError(ValueError):
    """A complete line of ``traces.jsonl`` is not a trace record (the message names file and line)."""


# --------------------------------------------------------------------------------------------- loading


def traces_path(run_dir: str | Path) -> Path:
    """The ``traces.jsonl`` of ``run_dir`` (or ``run_dir`` itself when it is a file)."""
    path = Path(run_dir)
    return path if path.is_file() else path / TRACES_FILE


def read_traces(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int, list[str]]:
    """Read the complete trace lines of ``path`` that start at byte ``offset`` or later.

    Made for incremental reading of a file that a run is appending to: only lines ending in a
    newline are read, so a write in progress is left for the next call.

    Args:
        path: a ``traces.jsonl`` file.
        offset: the byte offset to start at (a value returned by an earlier call, or 0).

    Returns:
        ``(records, new_offset, problems)``: the records parsed (file order; dicts with at least
        ``id``), the offset just after the last complete line read, and one message per complete
        line that is not a trace record (``"FILE line N: ..."``; line numbers count from ``offset``'s line).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for lineno, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            problems.append(f"{path} line {lineno}: not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            problems.append(f"{path} line {lineno}: not a trace record (no 'id')")
            continue
        records.append(record)
    return records, offset + end, problems


def load_traces(run_dir: str | Path) -> list[dict[str, Any]]:
    """All finished questions of a run directory (or of a ``traces.jsonl`` file), in file order.

    A question id that appears twice keeps its first record (as the runner does).

    Raises:
        FileNotFoundError: no ``traces.jsonl`` there.
        TraceFileError: a complete line is not a trace record (the file was edited by hand).
    """
    path = traces_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no {TRACES_FILE} in {run_dir}")
    records, _, problems = read_traces(path)
    if problems:
        raise TraceFileError(problems[0])
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        seen.setdefault(record["id"], record)
    return list(seen.values())


# ------------------------------------------------------------------------------------ record helpers


def solution_steps(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The solution attempts of a record (Solver and Reviser steps), in order."""
    return [s for s in record.get("steps") or [] if s.get("kind", "solution") == "solution"]


def last_verdict(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The verdict of the last solution attempt that has one, or ``None``."""
    for step in reversed(solution_steps(record)):
        if step.get("verdict"):
            return step["verdict"]
    return None


def last_reason(record: Mapping[str, Any]) -> str | None:
    """The verifier reason code of the last attempt (``equal``, ``numeric_mismatch``, ...), or ``None``."""
    verdict = last_verdict(record)
    return verdict.get("reason") if verdict else None


def trace_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One question as a flat row for tables and the viewer's JSON.

    Keys: ``id``, ``subject``, ``status``, ``stage`` (accepted stage or ``None``), ``stop_reason``,
    ``reason`` (last attempt's verifier reason), ``attempts``, ``tokens``, ``seconds``,
    ``reference`` (the reference answer), ``extracted`` (the last extracted answer), ``finished_at``.
    """
    verdict = last_verdict(record) or {}
    question = record.get("question") or {}
    return {
        "id": record.get("id"),
        "subject": record.get("subject") or question.get("subject") or "general",
        "status": record.get("status"),
        "stage": record.get("accepted_stage"),
        "stop_reason": record.get("stop_reason"),
        "reason": verdict.get("reason"),
        "attempts": int(record.get("n_attempts") or len(solution_steps(record))),
        "tokens": int(record.get("tokens") or 0),
        "seconds": float(record.get("seconds") or 0.0),
        "reference": question.get("answer"),
        "extracted": verdict.get("extracted"),
        "finished_at": record.get("finished_at"),
    }


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    values = {value} if isinstance(value, str) else set(value)
    return values or None


def filter_traces(
    records: Iterable[Mapping[str, Any]],
    *,
    subject: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = None,
    stage: str | Iterable[str] | None = None,
    reason: str | Iterable[str] | None = None,
) -> list[Mapping[str, Any]]:
    """The records matching every given filter; each filter is one value or several (any of them).

    Args:
        subject: question subjects (``math``, ``physics``, ...).
        status: final statuses: ``accepted``, ``rejected``, ``error``.
        stage: the stage that succeeded: ``cot``, ``reflection``, ``answer_guided`` (so only accepted
            questions match).
        reason: verifier reason codes of the last attempt (``numeric_mismatch``, ``no_answer``, ...).

    Raises:
        ValueError: an unknown status or stage (the message lists the valid ones).
    """
    subjects, statuses, stages, reasons = map(_as_set, (subject, status, stage, reason))
    if statuses and not statuses <= set(STATUSES):
        raise ValueError(f"unknown status {', '.join(sorted(statuses - set(STATUSES)))}; use {', '.join(STATUSES)}")
    if stages and not stages <= set(STAGES):
        raise ValueError(f"unknown stage {', '.join(sorted(stages - set(STAGES)))}; use {', '.join(STAGES)}")
    out = []
    for record in records:
        row = trace_row(record)
        if subjects and row["subject"] not in subjects:
            continue
        if statuses and row["status"] not in statuses:
            continue
        if stages and row["stage"] not in stages:
            continue
        if reasons and row["reason"] not in reasons:
            continue
        out.append(record)
    return out


def find_trace(records: Sequence[Mapping[str, Any]], qid: str) -> Mapping[str, Any]:
    """The record with id ``qid``, else the only record whose id starts with ``qid``.

    Raises:
        KeyError: no such record, or the prefix is ambiguous (the message suggests ids).
    """
    by_id = {r["id"]: r for r in records}
    if qid in by_id:
        return by_id[qid]
    matches = [i for i in by_id if i.startswith(qid)]
    if len(matches) == 1:
        return by_id[matches[0]]
    if matches:
        raise KeyError(f"'{qid}' matches several questions: {', '.join(matches[:10])}")
    close = difflib.get_close_matches(qid, list(by_id), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"no question '{qid}' in the traces{hint}")


# ------------------------------------------------------------------------------------------- stats


def _step_seconds(step: Mapping[str, Any]) -> float:
    return float(step.get("latency_s") or 0.0) + float((step.get("verdict") or {}).get("elapsed_s") or 0.0)


def _step_tokens(step: Mapping[str, Any]) -> int:
    return int(step.get("input_tokens") or 0) + int(step.get("output_tokens") or 0)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def trace_stats(records: Iterable[Mapping[str, Any]], *, top: int = 3) -> dict[str, Any]:
    """Counts, acceptance rates, tokens, time and verifier failure reasons of a set of questions.

    Returns a JSON-serialisable dict:

    ``subjects``: ``{subject: row}`` sorted by name plus ``"all"``; a row has ``questions``,
    ``accepted``, ``accepted_cot``, ``accepted_reflection``, ``accepted_answer_guided``, ``rejected``,
    ``error``, ``acceptance_rate`` (accepted / questions), ``tokens``, ``seconds``, ``mean_tokens``,
    ``mean_seconds``, ``mean_attempts``, ``top_failures`` (``[[reason, count], ...]``, the ``top``
    most common reasons of failed attempts).

    ``stages``: one row per (subject, stage) with attempts at that stage, subjects sorted, then
    ``"all"``: ``subject``, ``stage``, ``questions`` (questions with an attempt at that stage),
    ``attempts``, ``accepted`` (attempts the verifier accepted), ``pass_rate`` (accepted / attempts),
    ``tokens`` and ``seconds`` spent in the stage (critiques count in ``reflection``), ``top_failures``.

    ``failure_reasons``: every failed attempt's verifier reason (``ok`` not true), most common
    first: ``{"reason", "count", "share", "by_stage": {stage: count}}``.

    ``final_reasons``: ``{reason: count}`` of the last attempt of rejected questions.

    Rates are ``None`` when the denominator is 0. Records lacking fields count as zeros.
    """
    records = list(records)
    subjects: dict[str, dict[str, Any]] = {}
    stage_rows: dict[tuple[str, str], dict[str, Any]] = {}
    failures_by_subject: dict[str, Counter] = defaultdict(Counter)
    failures_by_stage: dict[tuple[str, str], Counter] = defaultdict(Counter)
    failure_stages: dict[str, Counter] = defaultdict(Counter)
    final_reasons: Counter = Counter()
    attempts_by_subject: Counter = Counter()

    def subject_row(name: str) -> dict[str, Any]:
        return subjects.setdefault(name, {
            "questions": 0, "accepted": 0, "accepted_cot": 0, "accepted_reflection": 0, "accepted_answer_guided": 0,
            "rejected": 0, "error": 0, "tokens": 0, "seconds": 0.0,
        })

    subject_row("all")
    for record in records:
        row = trace_row(record)
        for name in (row["subject"], "all"):
            s = subject_row(name)
            s["questions"] += 1
            if row["status"] == "accepted":
                s["accepted"] += 1
                stage = row["stage"] if row["stage"] in STAGES else "cot"
                s[f"accepted_{stage}"] += 1
            elif row["status"] == "error":
                s["error"] += 1
            else:
                s["rejected"] += 1
            s["tokens"] += row["tokens"]
            s["seconds"] += row["seconds"]
            attempts_by_subject[name] += row["attempts"]
        if row["status"] == "rejected" and row["reason"]:
            final_reasons[row["reason"]] += 1
        seen_stages: set[str] = set()
        for step in record.get("steps") or []:
            stage = step.get("stage") or "cot"
            for name in (row["subject"], "all"):
                st = stage_rows.setdefault((name, stage), {"subject": name, "stage": stage, "questions": 0, "attempts": 0,
                                                           "accepted": 0, "tokens": 0, "seconds": 0.0})
                st["tokens"] += _step_tokens(step)
                st["seconds"] += _step_seconds(step)
                if stage not in seen_stages:
                    st["questions"] += 1
                if step.get("kind", "solution") == "solution":
                    st["attempts"] += 1
                    verdict = step.get("verdict") or {}
                    if verdict.get("ok") is True:
                        st["accepted"] += 1
                    elif verdict.get("reason"):
                        failures_by_subject[name][verdict["reason"]] += 1
                        failures_by_stage[(name, stage)][verdict["reason"]] += 1
                        if name == "all":
                            failure_stages[verdict["reason"]][stage] += 1
            seen_stages.add(stage)

    def stage_key(item: tuple[tuple[str, str], Any]) -> tuple:
        (name, stage), _ = item
        order = STAGES.index(stage) if stage in STAGES else len(STAGES)
        return (name == "all", name, order, stage)

    out_subjects = {}
    for name in sorted(subjects, key=lambda n: (n == "all", n)):
        s = subjects[name]
        s["acceptance_rate"] = _rate(s["accepted"], s["questions"])
        s["seconds"] = round(s["seconds"], 3)
        s["mean_tokens"] = round(s["tokens"] / s["questions"], 1) if s["questions"] else None
        s["mean_seconds"] = round(s["seconds"] / s["questions"], 3) if s["questions"] else None
        s["mean_attempts"] = round(attempts_by_subject[name] / s["questions"], 2) if s["questions"] else None
        s["top_failures"] = [list(x) for x in failures_by_subject[name].most_common(top)]
        out_subjects[name] = s
    out_stages = []
    for (name, stage), st in sorted(stage_rows.items(), key=stage_key):
        st["pass_rate"] = _rate(st["accepted"], st["attempts"])
        st["seconds"] = round(st["seconds"], 3)
        st["top_failures"] = [list(x) for x in failures_by_stage[(name, stage)].most_common(top)]
        out_stages.append(st)
    total_failures = sum(failures_by_subject["all"].values())
    failure_reasons = [
        {"reason": reason, "count": count, "share": _rate(count, total_failures), "by_stage": dict(failure_stages[reason])}
        for reason, count in failures_by_subject["all"].most_common()
    ]
    return {
        "questions": len(records),
        "subjects": out_subjects,
        "stages": out_stages,
        "failure_reasons": failure_reasons,
        "final_reasons": dict(final_reasons.most_common()),
    }


# --------------------------------------------------------------------------------------- rendering

_STATUS_STYLE = {"accepted": "green", "rejected": "red", "error": "magenta", "running": "yellow", "unverified": "yellow"}


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def _t(value: Any, style: str = "") -> Text:
    """Untrusted text as a rich Text (never parsed as markup)."""
    return Text("-" if value is None or value == "" else str(value), style=style)


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


def stats_tables(stats: Mapping[str, Any]) -> list[Table]:
    """:func:`trace_stats` output as four rich tables: by subject, by subject and stage, failure reasons, top reasons by subject."""
    subjects = Table(title="Questions by subject", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("subject", "n", "acc", "rate", "cot", "refl", "guided", "rej", "err", "tokens", "time"):
        subjects.add_column(name, justify="left" if name == "subject" else "right", overflow="fold")
    for name, s in stats["subjects"].items():
        if name == "all":
            subjects.add_section()
        subjects.add_row(
            _t(name), str(s["questions"]), str(s["accepted"]), _pct(s["acceptance_rate"]), str(s["accepted_cot"]),
            str(s["accepted_reflection"]), str(s["accepted_answer_guided"]), str(s["rejected"]), str(s["error"]),
            f"{s['tokens']:,}", f"{s['seconds']:,.0f}s", style="bold" if name == "all" else None,
        )
    stages = Table(title="Attempts by subject and stage", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("subject", "stage", "questions", "attempts", "passed", "rate", "tokens", "time"):
        stages.add_column(name, justify="left" if name in ("subject", "stage") else "right", overflow="fold")
    last = None
    for st in stats["stages"]:
        if last is not None and st["subject"] != last:
            stages.add_section()
        last = st["subject"]
        stages.add_row(
            _t(st["subject"]), _t(st["stage"]), str(st["questions"]), str(st["attempts"]), str(st["accepted"]),
            _pct(st["pass_rate"]), f"{st['tokens']:,}", f"{st['seconds']:,.0f}s",
            style="bold" if st["subject"] == "all" else None,
        )
    reasons = Table(title="Verifier failure reasons (failed attempts)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("reason", "attempts", "share", "by stage", "last of rejected"):
        reasons.add_column(name, justify="left" if name in ("reason", "by stage") else "right", overflow="fold")
    for item in stats["failure_reasons"]:
        by_stage = ", ".join(f"{k} {v}" for k, v in item["by_stage"].items())
        reasons.add_row(_t(item["reason"]), str(item["count"]), _pct(item["share"]), _t(by_stage),
                        str(stats["final_reasons"].get(item["reason"], 0)))
    by_subject = Table(title="Most common failure reasons by subject", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    by_subject.add_column("subject", overflow="fold")
    by_subject.add_column("failed attempts: reason (count)", overflow="fold")
    for name, s in stats["subjects"].items():
        if name != "all":
            by_subject.add_row(_t(name), _t(", ".join(f"{r} ({c})" for r, c in s["top_failures"]) or "-"))
    return [subjects, stages, reasons, by_subject]


def tool_call_parts(call: Any) -> tuple[str, str, str]:
    """``(name, arguments, output)`` of a recorded tool call, in any of the common shapes."""
    if not isinstance(call, Mapping):
        return "tool", str(call), ""
    function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
    name = call.get("name") or function.get("name") or call.get("type") or "tool"
    args = call.get("args", call.get("arguments", function.get("arguments", call.get("input"))))
    if isinstance(args, Mapping) and len(args) == 1 and isinstance(next(iter(args.values())), str):
        args_text = next(iter(args.values()))  # e.g. {"code": "..."}: show the code itself
    elif isinstance(args, str):
        args_text = args
    else:
        args_text = json.dumps(args, ensure_ascii=False, indent=1) if args is not None else ""
    output = call.get("output", call.get("result", call.get("content")))
    out_text = output if isinstance(output, str) else ("" if output is None else json.dumps(output, ensure_ascii=False))
    return str(name), args_text, out_text


def tool_calls_renderable(calls: Sequence[Any]) -> RenderableType:
    """A step's ``tool_calls`` as one small panel per call (name, arguments, output)."""
    parts: list[RenderableType] = []
    for call in calls:
        name, args, output = tool_call_parts(call)
        body = Text()
        body.append("args: ", style="bold")
        body.append(args)
        if output:
            body.append("\noutput: ", style="bold")
            body.append(output)
        parts.append(Panel(body, title=Text(f"tool call: {name}"), title_align="left", border_style="cyan", box=box.SQUARE))
    return Group(*parts)


def verdict_renderable(verdict: Mapping[str, Any] | None) -> RenderableType:
    """The verifier's evidence for one attempt: outcome, reason, explanation, answers, details."""
    if not verdict:
        return Text("verifier: no verdict", style="dim")
    ok = verdict.get("ok")
    mark, style = ("✓ accepted", "bold green") if ok is True else (("✗ rejected", "bold red") if ok is False else ("? undecided", "bold yellow"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    head = Text(mark, style=style)
    head.append(f"  {verdict.get('reason', '-')}", style="bold")
    if verdict.get("checker"):
        head.append(f"  ({verdict['checker']} check, {float(verdict.get('elapsed_s') or 0):.2f}s)", style="dim")
    grid.add_row("verifier", head)
    if verdict.get("explanation"):
        grid.add_row("why", _t(verdict["explanation"]))
    answers = Text()
    for key in ("extracted", "candidate", "reference"):
        if verdict.get(key) is not None:
            if answers:
                answers.append("  ")
            answers.append(f"{key} ", style="dim")
            answers.append(str(verdict[key]), style="bold")
    if answers:
        grid.add_row("answers", answers)
    details = verdict.get("details") or {}
    if details:
        grid.add_row("details", _t(", ".join(f"{k}={v}" for k, v in details.items())))
    return grid


def _step_meta(step: Mapping[str, Any]) -> Text:
    meta = Text(style="dim")
    meta.append(f"{step.get('model') or '?'} · {int(step.get('input_tokens') or 0):,} in / "
                f"{int(step.get('output_tokens') or 0):,} out tokens · {float(step.get('latency_s') or 0):.1f}s")
    if step.get("finish_reason") not in (None, "stop"):
        meta.append(f" · finish {step['finish_reason']}", style="yellow")
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
    head.add_row("status", Text(status, style="bold " + _STATUS_STYLE.get(status, "")))
    head.add_row("stage", _t(row["stage"]))
    head.add_row("stop reason", _t(row["stop_reason"]))
    head.add_row("subject", _t(" / ".join(str(x) for x in (row["subject"], question.get("topic")) if x)))
    head.add_row("cost", Text(f"{row['attempts']} attempt(s) · {row['tokens']:,} tokens · {row['seconds']:.1f}s"))
    parts: list[RenderableType] = [Panel(head, title=Text(str(row["id"]), style="bold"), title_align="left", box=box.ROUNDED)]

    qtext = _t(question.get("question"))
    for i, choice in enumerate(question.get("choices") or []):
        qtext.append(f"\n({chr(65 + i)}) ", style="bold")
        qtext.append(str(choice))
    parts.append(Panel(qtext, title="question", title_align="left", box=box.ROUNDED, border_style="blue"))
    ref = Text("reference answer: ", style="bold")
    ref.append(str(question.get("answer")), style="bold green")
    if question.get("unit"):
        ref.append(f"  (unit: {question['unit']})", style="dim")
    parts.append(ref)

    for step in record.get("steps") or []:
        role, stage, attempt = step.get("role", "?"), step.get("stage", "?"), step.get("attempt", "?")
        critique = step.get("kind") == "critique"
        title = f"critique of attempt {attempt} · {role} · {stage}" if critique else f"attempt {attempt} · {role} · {stage}"
        parts.append(Rule(Text(title, style="bold magenta" if critique else "bold"), align="left", style="dim"))
        parts.append(_step_meta(step))
        if prompts:
            for message in step.get("messages") or []:
                parts.append(Panel(_t(message.get("content")), title=Text(f"prompt: {message.get('role', '?')}"),
                                   title_align="left", box=box.SQUARE, border_style="dim"))
        if step.get("tool_calls"):
            parts.append(tool_calls_renderable(step["tool_calls"]))
        if step.get("error"):
            parts.append(Text("error: ", style="bold red") + _t(step["error"]))
        if step.get("response"):
            parts.append(Panel(_t(step["response"]), box=box.ROUNDED, border_style="magenta" if critique else "white"))
        if not critique:
            parts.append(verdict_renderable(step.get("verdict")))
    parts.append(Rule(Text("end: ", style="bold") + _t(row["stop_reason"]), align="left", style="dim"))
    return Group(*parts)


# --------------------------------------------------------------------------------------------- CLI

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
    help="Browse a run's traces: list questions with filters (default), show one question's loop, stats.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SUBJECT = typer.Option(None, "--subject", "-s", help="Only this subject (repeatable).")
_STATUS = typer.Option(None, "--status", help="Only this final status: accepted, rejected, error (repeatable).")
_STAGE = typer.Option(None, "--stage", help="Only questions accepted at this stage: cot, reflection, answer_guided (repeatable).")
_REASON = typer.Option(None, "--reason", "-r", help="Only questions whose last attempt got this verifier reason, e.g. numeric_mismatch (repeatable).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")


def _console() -> Console:
    return Console(highlight=False)


def _fail(message: str, code: int = 1) -> None:
    Console(stderr=True, highlight=False).print(Text("error: ", style="bold red") + Text(message))
    raise typer.Exit(code)


def _load(ctx: typer.Context) -> list[dict[str, Any]]:
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
    records = _load(ctx)
    try:
        return filter_traces(records, **_filters(ctx, **extra))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _print_list(records: Sequence[Mapping[str, Any]], total: int, as_json: bool) -> None:
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
    run_dir: Path = typer.Argument(..., help="Run directory (or its traces.jsonl)."),
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
    records = _filtered(ctx, subject=subject, status=status, stage=stage, reason=reason)
    stats = trace_stats(records)
    if as_json or ctx.obj["as_json"]:
        typer.echo(json.dumps(stats, indent=2, ensure_ascii=False))
        return
    console = _console()
    for table in stats_tables(stats):
        console.print(table)


__all__ = [
    "STAGES",
    "STATUSES",
    "TraceFileError",
    "filter_traces",
    "find_trace",
    "last_reason",
    "last_verdict",
    "load_traces",
    "read_traces",
    "render_trace",
    "solution_steps",
    "stats_tables",
    "trace_row",
    "trace_stats",
    "traces_app",
    "traces_path",
    "tool_call_parts",
    "traces_table",
]
