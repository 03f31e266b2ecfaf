"""The viewer's HTML: the questions page and one page per question (every piece of trace text escaped)."""

from __future__ import annotations

import difflib
import functools
import html
import re
import json
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from ..agents.figures import content_figures, content_text, figure_refs
from ..graphs.state import attempt_notes
from ..rundata.files import MANIFEST
from ..rundata.jsonl import JsonlError, read_json
from ..rundata.records import execution_status, tool_call_parts
from ..rundata.query import trace_row

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


def figure_url(qid: str, n: int) -> str:
    """The viewer path of a question's ``n``-th figure (0-based), served by the viewer's server."""
    return f"/figure/{quote(qid, safe='')}/{int(n)}"


def _figures_html(qid: str, question: Mapping[str, Any]) -> str:
    """The question's figures (``<img>`` from :func:`figure_url`) with the caption, OCR text and mentions."""
    refs = figure_refs(question)
    if not refs:
        return ""
    imgs = "".join(
        f'<img class="figure" src="{_e(figure_url(qid, n))}" alt="figure {n + 1}: {_e(str(ref.get("path") or "inline image"))}" '
        f'title="{_e(str(ref.get("path") or ""))} sha256 {_e(str(ref.get("sha256") or "")[:12])}">'
        for n, ref in enumerate(refs))
    mentions = question.get("mentions") or []
    mentions = [mentions] if isinstance(mentions, str) else mentions
    text = _kv([("caption", _e(str(question.get("caption") or ""))), ("OCR", _e(str(question.get("ocr") or ""))),
                ("mentions", "<br>".join(_e(str(m)) for m in mentions))], cls="kv small")
    return f'<div class="figures">{imgs}{text}</div>'


def _content_html(content: Any) -> str:
    """A recorded message's content: its text, and a line naming each figure it carried (no bytes)."""
    figures = "".join(f'<div class="msg-figure">[figure {_e(str(f.get("path") or "inline"))}, sha256 '
                      f'{_e(str(f.get("sha256") or "?")[:12])}…]</div>' for f in content_figures(content))
    return f'{figures}<pre class="no-math">{_e(content_text(content))}</pre>'


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
    if verdict.get("reason") == "invalid":
        label = f"✗ invalid ({(verdict.get('details') or {}).get('invalid') or '?'})"
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
        f'<div class="msg"><div class="msg-role">{_e(str(m.get("role", "?")))}</div>{_content_html(m.get("content", ""))}</div>'
        for m in messages
    )
    return f'<details class="prompt"><summary>prompt sent ({len(messages)} messages)</summary>{inner}</details>'


def _samples_html(step: Mapping[str, Any]) -> str:
    """The samples that confirmed (or not) a k_sample multiple-choice attempt: each one's answer and verdict."""
    samples = step.get("samples")
    if samples is None:
        return ""
    items = "".join(f'<li class="{"ok" if (s.get("verdict") or {}).get("ok") is True else "bad"}">'
                    f'{_e(str(s.get("parsed_answer")))}</li>' for s in samples)
    return f'<div class="samples">independent samples: <ol>{items}</ol></div>' if items else '<div class="samples">no sample drawn</div>'


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
    out.append(f'<div class="trace-text math">{_e(str(step.get("response") or ""))}</div>')
    out.append(_messages_html(step))
    return "".join(out)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters other than tab and newline
MAX_DIFF_LINES = 3000
"""Attempts longer than this (lines, either side) are not diffed: the page says so instead."""
MAX_DIFF_CHARS = 300_000
MAX_INLINE_CHARS = 300
"""Changed lines up to this long also get a character diff within the line."""


def _inline(before: str, after: str) -> tuple[str, str]:
    """Two changed lines with their differing characters marked (both escaped)."""
    if len(before) > MAX_INLINE_CHARS or len(after) > MAX_INLINE_CHARS:
        return f'<span class="diff_chg">{_e(before)}</span>', f'<span class="diff_chg">{_e(after)}</span>'
    left, right = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after).get_opcodes():
        a, b = _e(before[i1:i2]), _e(after[j1:j2])
        if tag == "equal":
            left.append(a), right.append(b)
        else:
            left.append(f'<span class="diff_chg">{a}</span>' if a else "")
            right.append(f'<span class="diff_chg">{b}</span>' if b else "")
    return "".join(left), "".join(right)


def _row(n_left: int | str, left: str, n_right: int | str, right: str, cls: str = "") -> str:
    return (f'<tr><td class="diff_header">{n_left}</td><td class="{cls}">{left}</td>'
            f'<td class="diff_header">{n_right}</td><td class="{cls}">{right}</td></tr>')


@functools.lru_cache(maxsize=64)
def diff_html(before: str, after: str, before_label: str, after_label: str) -> str:
    """An HTML side-by-side diff of two texts, by lines, with a character diff inside short changed lines.

    Every text is escaped. Lines are matched with :class:`difflib.SequenceMatcher` (its "autojunk"
    heuristic keeps repetitive text, e.g. a model stuck in a loop, fast); texts over
    :data:`MAX_DIFF_LINES` lines or :data:`MAX_DIFF_CHARS` characters get a "too long to diff" note.
    Results are cached per pair of texts (a page that follows a run in progress is reloaded often).
    (``difflib.HtmlDiff``, used before, took 12 s for two 200-line attempts and did not finish at 1,000.)
    """
    a, b = _CONTROL.sub("", str(before or "")).split("\n"), _CONTROL.sub("", str(after or "")).split("\n")
    head = (f'<table class="diff"><thead><tr><th class="diff_header"></th><th>{_e(before_label)}</th>'
            f'<th class="diff_header"></th><th>{_e(after_label)}</th></tr></thead><tbody>')
    if max(len(a), len(b)) > MAX_DIFF_LINES or len(before or "") + len(after or "") > MAX_DIFF_CHARS:
        return (f'<p class="empty">{_e(before_label)} and {_e(after_label)} are too long to diff '
                f'({len(a):,} and {len(b):,} lines); read them side by side above.</p>')
    rows = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag == "equal":
            rows += [_row(i + 1, _e(a[i]), j + 1, _e(b[j])) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
            continue
        left, right = list(range(i1, i2)), list(range(j1, j2))
        for k in range(max(len(left), len(right))):
            i = left[k] if k < len(left) else None
            j = right[k] if k < len(right) else None
            if i is not None and j is not None:
                la, rb = _inline(a[i], b[j])
                rows.append(_row(i + 1, la, j + 1, rb))
            elif i is not None:
                rows.append(_row(i + 1, f'<span class="diff_sub">{_e(a[i])}</span>', "", ""))
            else:
                rows.append(_row("", "", j + 1, f'<span class="diff_add">{_e(b[j])}</span>'))
    return head + "".join(rows) + "</tbody></table>"


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
                 ("multiple choice", _e(str(record.get("mc_path") or ""))),
                 ("prompt version", _e(str(record.get("prompt_version") or ""))),
                 ("verifier", _e(str(record.get("verifier") or ""))), ("finished", _e(str(record.get("finished_at") or "")))],
                cls="kv small")
    qbox = (
        f'<section class="question"><h2>Question</h2><div class="qbody"><div class="qmain">'
        f'<div class="trace-text math qtext">{_e(str(question.get("question") or ""))}</div>'
        f'{choices_html}<div class="reference">reference answer: <span class="answer math">{reference}</span>'
        f'{raw}{unit}</div>{extra}</div>{_figures_html(str(row["id"]), question)}</div></section>'
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
        notes = "".join(f" · {note}" for note in attempt_notes(step))  # a fresh attempt's strategy, a repeat
        critique_html = (
            f'<div class="critique"><h4>critique of attempt {_e(str(attempt))} '
            f'<span class="role">({_e(str(critique.get("role")))})</span></h4>{_step_body(critique)}</div>'
            if critique else ""
        )
        columns.append(
            f'<article class="attempt {cls}" id="attempt-{_e(str(attempt))}">'
            f'<h3>Attempt {_e(str(attempt))} <span class="role">{_e(str(step.get("role")))} · {_e(stage)}{_e(notes)}</span></h3>'
            f"{guided}{_verdict_html(verdict)}{_samples_html(step)}{_step_body(step)}{critique_html}</article>"
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


def review_html(item: Mapping[str, Any] | None, reviewer: str, reasons: tuple[str, ...], pos: int) -> str:
    """The body of a review page: the trace ``item`` (:func:`scireflect.viewer.review.review_item`) as on
    its question page, under a bar with its place in the sample, its current label and the keys
    (``v`` valid, ``x`` invalid with a reason ``1``-``5``, ``s`` skip, arrows to move)."""
    if item is None:
        return (f'<div class="review-bar"><strong>Review</strong> · nothing to review at {pos + 1}: '
                f'<a href="/review?pos=0">start again</a> · <a href="/">all questions</a></div>')
    label = item["label"]
    current = (f'{_badge(label["label"], "label-" + label["label"])}'
               + (f' {_e(str(label.get("reason") or ""))}' if label.get("reason") else "")
               + f' <span class="meta">by {_e(str(label["reviewer"]))} at {_e(str(label["time"]))}</span>') if label else \
        '<span class="meta">not labelled yet</span>'
    options = "".join(f'<label><input type="radio" name="reason" value="{_e(r)}"> <kbd>{n}</kbd> {_e(r.replace("_", " "))}</label>'
                      for n, r in enumerate(reasons, start=1))
    bar = (
        f'<div class="review-bar" id="review-bar"><strong>Review</strong> · trace <span id="review-pos">{item["pos"] + 1}</span> '
        f'of {item["total"]} accepted · {item["labelled"]} labelled · reviewer <code>{_e(reviewer)}</code> · '
        f'label: <span id="review-label">{current}</span>'
        f'<div class="review-keys"><button type="button" id="label-valid"><kbd>v</kbd> valid</button> '
        f'<button type="button" id="label-invalid"><kbd>x</kbd> invalid…</button> '
        f'<button type="button" id="label-skip"><kbd>s</kbd> skip</button> '
        f'<button type="button" id="review-prev"><kbd>←</kbd> previous</button> '
        f'<button type="button" id="review-next"><kbd>→</kbd> next</button> <span id="review-status" class="meta"></span></div>'
        f'<div class="review-reasons" id="review-reasons" hidden>why invalid? {options} '
        f'<input type="text" id="review-note" placeholder="note (optional), Enter to save" maxlength="2000"></div></div>'
    )
    return bar + question_html(item["record"])


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


__all__ = ["diff_html", "figure_url", "index_html", "page", "question_html", "question_url", "review_html"]
