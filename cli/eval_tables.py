"""The rich tables ``scireflect eval`` prints, drawn from the scores of :mod:`scireflect.training.evaluate`.

:func:`accuracy_table` (per file and subject), :func:`compare_table` (two runs, before and after) and
:func:`figure_table` (questions with and without a figure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from ..training.evaluate import compare, figure_score, score


def accuracy_table(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    """Accuracy per subject and per file (rich table): n, correct, accuracy %, no answer, errors."""
    table = Table(title=title, title_justify="left")
    for col, justify in [("file", "left"), ("subject", "left"), ("n", "right"), ("correct", "right"),
                         ("accuracy", "right"), ("no answer", "right"), ("errors", "right")]:
        table.add_column(col, justify=justify)
    for (f, s), sc in score(rows).items():
        if s == "all":
            table.add_section()
        table.add_row(f, s, str(sc.n), str(sc.correct), f"{100 * sc.accuracy:.1f}%", str(sc.unparseable), str(sc.errors),
                      style="bold" if s == "all" else None)
    return table


def compare_table(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], *,
                  before_name: str = "before", after_name: str = "after") -> Table:
    """Before/after accuracy per file and subject on the questions both runs answered.

    Questions are matched by ``(file, id)``; rows only in one run are left out (the title says how
    many). Columns: n, accuracy before, accuracy after, change in percentage points, questions
    fixed (wrong -> right) and broken (right -> wrong).
    """
    c = compare(before, after)
    title = f"{before_name} -> {after_name}: {c.common} common questions" + (f" ({c.unmatched} unmatched left out)" if c.unmatched else "")
    table = Table(title=title, title_justify="left")
    for col, justify in [("file", "left"), ("subject", "left"), ("n", "right"), (before_name, "right"), (after_name, "right"),
                         ("change", "right"), ("fixed", "right"), ("broken", "right")]:
        table.add_column(col, justify=justify)
    for key, x in c.before.items():
        y = c.after[key]
        delta = 100 * (y.accuracy - x.accuracy)
        colour = "green" if delta > 0 else "red" if delta < 0 else ""
        if key[1] == "all":
            table.add_section()
        table.add_row(key[0], key[1], str(x.n), f"{100 * x.accuracy:.1f}%", f"{100 * y.accuracy:.1f}%",
                      f"[{colour}]{delta:+.1f} pp[/]" if colour else f"{delta:+.1f} pp", str(c.fixed.get(key, 0)),
                      str(c.broken.get(key, 0)), style="bold" if key[1] == "all" else None)
    return table


def figure_table(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    """Accuracy per benchmark file, split by whether the question had a figure (rich table)."""
    table = Table(title=title, title_justify="left")
    for col, justify in [("file", "left"), ("questions", "left"), ("n", "right"), ("correct", "right"), ("accuracy", "right")]:
        table.add_column(col, justify=justify)
    for (file, kind), sc in figure_score(rows).items():
        table.add_row(file, kind, str(sc.n), str(sc.correct), f"{100 * sc.correct / sc.n:.1f}%", style="bold" if file == "all" else None)
    return table


__all__ = ["accuracy_table", "compare_table", "figure_table"]
