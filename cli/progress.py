"""The live display of ``scireflect annotate``: a line per finished question, retries and timeouts as
they happen, and at the bottom one line per question in flight and the overall bar, all within 80
columns.

It consumes the runner's events (:func:`scireflect.run.runner.annotate`'s ``on_event``): ``start``,
``call`` (a model call starts, ends, fails or is cut), ``tokens`` (tokens streamed so far), ``retry``,
``done`` (a trace record), ``status`` and ``warning``. Every value that comes from a question file or a
model (ids, messages, errors) is rendered as :class:`rich.text.Text` with its control characters made
visible (:func:`~scireflect.cli.untrusted.visible`), never parsed as markup, so an id like ``[/]``,
``[link=...]`` or ``ESC[31m`` prints as it is.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..graphs.state import FRESH_STRATEGIES, solution_steps
from .untrusted import visible

STATUS_STYLE = {"accepted": "green", "rejected": "red", "invalid": "dark_orange", "error": "magenta", "unverified": "yellow"}
STATUS_MARK = {"accepted": "✓", "rejected": "✗", "invalid": "⊘", "error": "!", "unverified": "?"}
MAX_LIVE_ROWS = 8


def clock(seconds: float) -> str:
    """``M:SS`` or ``H:MM:SS``."""
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def compact(n: int) -> str:
    """``950``, ``12.3k``, ``4.56M``: a count in at most 6 characters."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k" if n < 100_000 else f"{n / 1000:.0f}k"
    return f"{n / 1e6:.2f}M" if n < 100_000_000 else f"{n / 1e6:.0f}M"


def _short(text: Any, width: int) -> str:
    """Untrusted ``text`` made visible (:func:`visible`), cut to ``width`` characters with an ellipsis."""
    text = visible(text)
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class InFlight:
    """A question being annotated: its current model call."""

    role: str = "-"
    attempt: int = 1
    phase: str = "waiting"
    tokens: int = 0
    call_started: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)


class LiveProgress:
    """The annotate display; ``on_event`` is the runner's callback. Use as a context manager.

    Args:
        console: where to draw (stderr in the CLI); its width is respected.
        total: questions in this invocation (updated by the ``start`` event).
    """

    def __init__(self, console: Console, total: int = 0):
        self.console = console
        self.total = total
        self.counts: Counter = Counter()
        self.done_now = 0
        self.skipped = 0
        self.inflight: dict[str, InFlight] = {}
        self.started = time.monotonic()
        self._live = Live(console=console, get_renderable=self.render, refresh_per_second=4, transient=True,
                          redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._live.__exit__(*exc_info)

    def print(self, text: Text) -> None:
        """One line above the live region, cut to the console's width."""
        text.truncate(self.console.width, overflow="ellipsis")
        self._live.console.print(text, soft_wrap=False, no_wrap=True, overflow="ellipsis")

    # -- events -----------------------------------------------------------------------------------

    def on_event(self, kind: str, data: Mapping[str, Any] | None) -> None:
        """The runner's progress callback."""
        data = data or {}
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(data)

    def _on_status(self, data: Mapping[str, Any]) -> None:
        self.print(Text(visible(data.get("message", "")), style="dim"))

    def _on_warning(self, data: Mapping[str, Any]) -> None:
        self.print(Text("warning: ", style="yellow") + Text(visible(data.get("message", ""))))

    def _on_start(self, data: Mapping[str, Any]) -> None:
        self.total = int(data.get("total", self.total))
        self.skipped = int(data.get("skipped", 0))
        self.counts.update(data.get("earlier") or {})
        self.started = time.monotonic()
        if self.skipped:
            earlier = ", ".join(f"{n} {status}" for status, n in sorted((data.get("earlier") or {}).items()))
            self.print(Text(f"resuming: {self.skipped} of {self.total} questions already done ({earlier})"))

    def _flight(self, data: Mapping[str, Any]) -> InFlight:
        return self.inflight.setdefault(str(data.get("id")), InFlight())

    def _on_call(self, data: Mapping[str, Any]) -> None:
        flight, phase = self._flight(data), data.get("phase")
        flight.role, flight.attempt = visible(data.get("role", "-")), int(data.get("attempt") or 1)
        if phase == "start":
            flight.phase, flight.tokens, flight.call_started = "generating", 0, time.monotonic()
        elif phase == "end":
            flight.phase, flight.tokens = "checking" if flight.role != "critic" else "done", int(data.get("tokens") or flight.tokens)
        elif phase in ("cut", "failed"):
            what = "cut by the time budget" if phase == "cut" else "failed"
            line = Text("! ", style="yellow") + Text(_short(data.get("id"), 40)) + Text(f" {flight.role} #{flight.attempt} {what}")
            if phase == "cut":
                line.append(f" after {data.get('tokens', 0)} tokens (kept)", style="dim")
            else:
                line.append(f": {_short(data.get('error', ''), 60)}", style="dim")
            self.print(line)

    def _on_tokens(self, data: Mapping[str, Any]) -> None:
        flight = self._flight(data)
        flight.tokens, flight.phase = int(data.get("tokens") or 0), "generating"

    def _on_retry(self, data: Mapping[str, Any]) -> None:
        kind = visible(data.get("kind", "fault"))
        wait = float(data.get("wait_s") or 0.0)
        line = Text("↻ ", style="yellow") + Text(_short(data.get("id"), 28))
        line.append(visible(f" {data.get('role', '')} #{data.get('attempt', 1)}: {kind}"), style="yellow")
        if data.get("output_tokens"):
            line.append(f" after {data['output_tokens']} tokens", style="dim")
        if wait:
            line.append(f" (try {data.get('try')}/{data.get('tries')}, again in {wait:.1f} s)", style="dim")
        else:
            line.append(f" (try {data.get('try')}/{data.get('tries')}, giving up)", style="dim")
        self.print(line)

    def _on_done(self, record: Mapping[str, Any]) -> None:
        self.inflight.pop(str(record.get("id")), None)
        status = visible(record.get("status"))
        self.counts[status] += 1
        self.done_now += 1
        line = Text(f"{STATUS_MARK.get(status, '?')} {status:<8} ", style=STATUS_STYLE.get(status, ""))
        line.append(_short(record.get("id"), 32))
        line.append(f"  {record.get('n_attempts', 0)} att · {compact(int(record.get('tokens') or 0))} tok · "
                    f"{clock(float(record.get('seconds') or 0))}", style="dim")
        if record.get("accepted_stage"):
            solutions = solution_steps(record.get("steps") or [])
            fresh = solutions[-1].get("strategy") if solutions else None  # program, resample: stage cot, not the first
            line.append(visible(f" · {record['accepted_stage']}" + (f" ({fresh})" if fresh in FRESH_STRATEGIES else "")))
        elif status != "unverified":
            line.append(visible(f" · {record.get('stop_reason') or '-'}"), style="dim")
        self.print(line)

    # -- drawing ----------------------------------------------------------------------------------

    def rate(self) -> float | None:
        """Questions per second finished in this invocation, once two have finished (and 10 s passed)."""
        elapsed = time.monotonic() - self.started
        return self.done_now / elapsed if self.done_now >= 2 and elapsed >= 10 else None

    def render(self) -> RenderableType:
        """The live region: in-flight questions, then the overall line."""
        now = time.monotonic()
        table = Table.grid(padding=(0, 1))
        for spec in ((30, "left"), (7, "left"), (3, "right"), (10, "left"), (7, "right"), (8, "right"), (7, "right")):
            table.add_column(justify=spec[1], no_wrap=True, max_width=spec[0], overflow="ellipsis")
        flights = sorted(self.inflight.items(), key=lambda kv: kv[1].started)
        for qid, f in flights[:MAX_LIVE_ROWS]:
            seconds = now - f.call_started
            speed = f"{f.tokens / seconds:.1f}/s" if f.phase == "generating" and f.tokens and seconds > 0 else ""
            table.add_row(Text(_short(qid, 30)), f.role, f"#{f.attempt}", f.phase, f"{f.tokens:,}t" if f.tokens else "",
                          speed, clock(now - f.started), style="dim" if f.phase != "generating" else None)
        if len(flights) > MAX_LIVE_ROWS:
            table.add_row(Text(f"… and {len(flights) - MAX_LIVE_ROWS} more", style="dim"))
        done = sum(self.counts.values())
        bar_width = 16
        filled = int(bar_width * done / self.total) if self.total else 0
        line = Text("━" * filled, style="green") + Text("━" * (bar_width - filled), style="dim")
        line.append(f" {done}/{self.total} ")
        for status in ("accepted", "rejected", "invalid", "error", "unverified"):
            if self.counts[status] or status in ("accepted", "rejected"):
                line.append(f"{STATUS_MARK[status]}{self.counts[status]} ", style=STATUS_STYLE[status])
        line.append(clock(now - self.started), style="dim")
        rate = self.rate()
        if rate:
            remaining = max(self.total - done, 0)
            line.append(f" · {rate * 3600:.0f} q/h · ETA {clock(remaining / rate)}", style="dim")
        return Group(table, line) if flights else line


__all__ = ["InFlight", "LiveProgress", "clock", "compact"]
