"""The viewer's HTML: the questions page and one page per question (every piece of trace text escaped)."""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from ..run.files import MANIFEST
from ..run.jsonl import JsonlError, read_json
from ..run.records import execution_status, tool_call_parts
from ..run.query import trace_row

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"

_e = html.escape


def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def page(title: str, body: str, script: str, body_attrs: str = "") -> bytes:
    return _template("base.html").substitute(title=_e(title), body=body, script=_e(script), body_attrs=body_attrs).encode("utf-8")


def question_url(qid: str) -> str:
    """The viewer path of a question page (the id percent-encoded, ``/`` included)."""
    return "/q/" + quote(qid, safe="")


def _badge(text: Any, kind: str = "") -> str:
    if text is None or text == "":
        return ""
    return f'<span class="badge {_e(kind)}">{_e(str(text))}</span>'


def _kv(rows: list[tuple[str, Any]], cls: str = "kv") -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows if v not in (None, ""))
    return f'<table class="{cls}">{cells}</table>'


def _verdict_html(verdict: Mapping[str, Any] | None) -> str:
    if not verdict:
        return '<div class="verdict none">no verdict</div>'
    ok = verdict.get("ok")
    cls, label = ("ok", "✓ accepted") if ok is True else (("bad", "✗ rejected") if ok is False else ("undecided", "? undecided"))
    details = verdict.get("details") or {}
    rows = [
        ("reason", f"<code>{_e(str(verdict.get('reason')))}</code>"),
        ("why", _e(str(verdict.get("explanation") or ""))),
        ("extracted", f'<code class="no-math">{_e(str(verdict["extracted"]))}</code>' if verdict.get("extracted") is not None else ""),
        ("candidate", f'<code class="no-math">{_e(str(verdict["candidate"]))}</code>' if verdict.get("candidate") is not None else ""),
        ("reference", f'<code class="no-math">{_e(str(verdict["reference"]))}</code>' if verdict.get("reference") is not None else ""),
        ("method", _e(str(verdict.get("extraction_method") or ""))),
        ("checker", _e(f"{verdict.get('checker') or '-'} ({float(verdict.get('elapsed_s') or 0):.2f} s)")),
        ("details", f'<code class="no-math">{_e(json.dumps(details, ensure_ascii=False))}</code>' if details else ""),
    ]
    return f'<div class="verdict {cls}"><div class="verdict-head">{_e(label)}</div>{_kv(rows)}</div>'


def _tool_calls_html(calls: list[Any]) -> str:
    parts = []
    for call in calls:
        name, args, output = tool_call_parts(call)
        ran = execution_status(call)  # code run in the sandbox: how it ended, and its stderr
        status = f' <span class="{"ok" if ran[0].startswith("exit 0") else "warn"}">{_e(ran[0])}</span>' if ran else ""
        stderr = ran[1].strip() if ran and ran[1].strip() not in output else ""
        parts.append(
            f'<div class="tool-call"><div class="tool-name">tool call: <code>{_e(name)}</code>{status}</div>'
            f'<pre class="no-math">{_e(args)}</pre>'
            + (f'<div class="tool-out">output</div><pre class="no-math">{_e(output)}</pre>' if output else "")
            + (f'<div class="tool-out">stderr</div><pre class="no-math">{_e(stderr[-2000:])}</pre>' if stderr else "")
            + "</div>"
        )
    return '<div class="tool-calls">' + "".join(parts) + "</div>"


def _messages_html(step: Mapping[str, Any]) -> str:
    messages = step.get("messages") or []
    if not messages:
        return ""
    inner = "".join(
        f'<div class="msg"><div class="msg-role">{_e(str(m.get("role", "?")))}</div><pre class="no-math">{_e(str(m.get("content", "")))}</pre></div>'
        for m in messages
    )
    return f'<details class="prompt"><summary>prompt sent ({len(messages)} messages)</summary>{inner}</details>'


def _step_meta(step: Mapping[str, Any]) -> str:
    bits = [f"{_e(str(step.get('model') or '?'))}",
            f"{int(step.get('input_tokens') or 0):,} in / {int(step.get('output_tokens') or 0):,} out tokens",
            f"{float(step.get('latency_s') or 0):.1f} s"]
    if step.get("finish_reason") not in (None, "stop"):
        bits.append(f'<span class="warn">finish: {_e(str(step["finish_reason"]))}</span>')
    if step.get("transport_failures"):
        bits.append(f'<span class="warn">{len(step["transport_failures"])} transport failure(s) retried</span>')
    return '<div class="meta">' + " · ".join(bits) + "</div>"


def _step_body(step: Mapping[str, Any]) -> str:
    out = [_step_meta(step)]
    if step.get("tool_calls"):
        out.append(_tool_calls_html(step["tool_calls"]))
    if step.get("error"):
        out.append(f'<div class="error">error: {_e(str(step["error"]))}</div>')
    out.append(f'<div class="text math">{_e(str(step.get("response") or ""))}</div>')
    out.append(_messages_html(step))
    return "".join(out)


def _clean_for_diff(text: str) -> list[str]:
    # difflib marks changes with \0 and \1 characters: drop them from model text first.
    return str(text or "").replace("\0", "").replace("\1", "").splitlines()


def diff_html(before: str, after: str, before_label: str, after_label: str) -> str:
    """An HTML side-by-side diff table of two texts (escaped; long lines wrapped at 60 characters)."""
    table = difflib.HtmlDiff(wrapcolumn=60).make_table(
        _clean_for_diff(before), _clean_for_diff(after), _e(before_label), _e(after_label), context=False,
    )
    return table


def question_html(record: Mapping[str, Any]) -> str:
    """The body of a question page (see the module docstring); every trace string is HTML-escaped."""
    row = trace_row(record)
    question = record.get("question") or {}
    status = row["status"] or "running"
    steps = list(record.get("steps") or [])
    solutions = [s for s in steps if s.get("kind", "solution") == "solution"]
    critiques = {s.get("attempt"): s for s in steps if s.get("kind") == "critique"}

    header = (
        f'<div class="qhead"><nav><a href="/" class="back">← all questions</a></nav>'
        f'<h1><code>{_e(str(row["id"]))}</code></h1>'
        f'{_badge(status, "status-" + status)}{_badge(row["stage"], "stage")}{_badge(row["subject"], "subject")}'
        f'<span class="meta">{row["attempts"]} attempt(s) · {row["tokens"]:,} tokens · {row["seconds"]:.1f} s'
        + (f' · stop: {_e(str(row["stop_reason"]))}' if row["stop_reason"] else "")
        + f' · <a href="/api/question/{quote(str(row["id"]), safe="")}">JSON</a></span></div>'
    )
    choices = question.get("choices") or []
    choices_html = ("<ol class=\"choices\" type=\"A\">" + "".join(f'<li class="math">{_e(str(c))}</li>' for c in choices) + "</ol>") if choices else ""
    reference = _e(str(question.get("answer")))
    # The answer as written too, when KaTeX renders it (LaTeX).
    raw = f' <code class="no-math raw-answer">{reference}</code>' if "\\" in str(question.get("answer")) else ""
    unit = f' <span class="unit">({_e(str(question["unit"]))})</span>' if question.get("unit") else ""
    extra = _kv([("topic", _e(str(question.get("topic") or ""))), ("source", _e(str(question.get("source") or ""))),
                 ("prompt version", _e(str(record.get("prompt_version") or ""))),
                 ("verifier", _e(str(record.get("verifier") or ""))), ("finished", _e(str(record.get("finished_at") or "")))],
                cls="kv small")
    qbox = (
        f'<section class="question"><h2>Question</h2><div class="text math qtext">{_e(str(question.get("question") or ""))}</div>'
        f'{choices_html}<div class="reference">reference answer: <span class="answer math">{reference}</span>'
        f'{raw}{unit}</div>{extra}</section>'
    )

    columns = []
    for step in solutions:
        attempt = step.get("attempt")
        verdict = step.get("verdict")
        ok = (verdict or {}).get("ok")
        cls = "ok" if ok is True else ("bad" if ok is False else "undecided")
        stage = str(step.get("stage") or "")
        guided = '<div class="guided-note">answer-guided: the reference answer was shown</div>' if stage == "answer_guided" else ""
        critique = critiques.get(attempt)
        critique_html = (
            f'<div class="critique"><h4>critique of attempt {_e(str(attempt))} '
            f'<span class="role">({_e(str(critique.get("role")))})</span></h4>{_step_body(critique)}</div>'
            if critique else ""
        )
        columns.append(
            f'<article class="attempt {cls}" id="attempt-{_e(str(attempt))}">'
            f'<h3>Attempt {_e(str(attempt))} <span class="role">{_e(str(step.get("role")))} · {_e(stage)}</span></h3>'
            f"{guided}{_verdict_html(verdict)}{_step_body(step)}{critique_html}</article>"
        )
    attempts = (
        f'<section><h2>Attempts ({len(solutions)})</h2><div class="attempts">{"".join(columns)}</div></section>'
        if columns else '<section><h2>Attempts</h2><p class="empty">no attempt yet</p></section>'
    )

    diffs = []
    for before, after in zip(solutions, solutions[1:], strict=False):
        a, b = before.get("attempt"), after.get("attempt")
        diffs.append(
            f'<div class="diff-block"><h3>Attempt {_e(str(a))} → attempt {_e(str(b))}</h3>'
            f'<div class="diff-wrap no-math">{diff_html(before.get("response", ""), after.get("response", ""), f"attempt {a}", f"attempt {b}")}</div></div>'
        )
    diff_section = f'<section class="diffs"><h2>Changes between attempts</h2>{"".join(diffs)}</section>' if diffs else ""
    return header + qbox + attempts + diff_section


def index_html(run_dir: Path, poll_ms: int) -> bytes:
    """The questions page (the table itself is filled by ``static/index.js`` from ``/api/questions``)."""
    try:
        runs = read_json(run_dir / MANIFEST).get("runs") or []
        roles = runs[-1]["settings"]["roles"]
        model_text = ", ".join(sorted({str(r.get("model")) for r in roles.values()}))
    except (JsonlError, AttributeError, LookupError, TypeError):
        model_text = ""
    body = _template("index.html").substitute(
        run_dir=_e(str(run_dir.resolve())), run_name=_e(run_dir.resolve().name), models=_e(model_text),
    )
    return page(f"scireflect · {run_dir.resolve().name}", body, "/static/index.js", f'data-poll-ms="{int(poll_ms)}"')


__all__ = ["diff_html", "index_html", "page", "question_html", "question_url"]
