"""Draw the figure sample: 30 science figures with known quantities and questions about them (MIT).

Run ``python data/figures/generate.py [OUT_DIR]`` (default: this folder) to write ``questions.jsonl``
and ``images/*.png``. Each question needs a value read from its figure: the slope, area or intercept
of a plotted line (with units on the axes), the current or resistance of a drawn circuit, the
equivalence volume of a titration curve, the half-life of a decay curve. The reference answers are
computed from the same numbers that are drawn, in the unit given by the question's ``unit`` field,
so :func:`scireflect.verifiers.verify_answer` checks them with its unit conversions. Each row also
has SciTune's text modalities (arXiv 2307.01139): a ``caption`` and the ``mentions`` of a made-up
paper, which never state the answer. ``ocr`` is left out: ``scireflect annotate`` fills it with Tesseract.

Drawn with matplotlib's Agg backend and its bundled DejaVu fonts, PNG metadata stripped, so the
same matplotlib version writes the same bytes.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DPI = 100


def _figure(width: float = 5.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    return fig, ax


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _line_plot(path: Path, xs: list[float], ys: list[float], xlabel: str, ylabel: str, labels: list[int],
               fmt: Callable[[float, float], str]) -> None:
    """A line through points ``(xs, ys)``, grid on, the points at ``labels`` marked and written out."""
    fig, ax = _figure()
    ax.plot(xs, ys, "-", color="tab:blue", linewidth=2)
    for i in labels:
        ax.plot(xs[i], ys[i], "o", color="tab:red")
        ax.annotate(fmt(xs[i], ys[i]), (xs[i], ys[i]), textcoords="offset points", xytext=(6, -14), fontsize=10)
    ax.set_xlabel(xlabel, fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.grid(True, alpha=0.4)
    ax.set_xlim(0, max(xs) * 1.3)  # room for the last point's label
    _save(fig, path)


def _g(x: float) -> str:
    return f"{x:g}"


def _answer(x: float) -> str:
    """A reference answer read off a figure: three significant figures, trailing zeros kept ("0.100",
    "12.5", "250"), so the verifier's measured-quantity rule judges it at that precision (a reference
    written "0.1" would mean one significant figure and accept 0.12)."""
    if x == 0:
        return "0"
    decimals = 2 - math.floor(math.log10(abs(x)))
    return f"{x:.{decimals}f}" if decimals > 0 else f"{round(x, decimals):.0f}"


def _plot(name: str, xs: list[float], ys: list[float], axes: tuple[str, str], marks: list[int], units: tuple[str, str],
          fields: dict[str, Any]) -> tuple[str, Callable[[Path], None], dict[str, Any]]:
    """A line-plot item: its name, how to draw it (points ``marks`` written as ``(x unit, y unit)``), its question fields."""
    def label(x: float, y: float) -> str:
        return f"({_g(x)} {units[0]}, {_g(y)} {units[1]})"

    return name, lambda path: _line_plot(path, xs, ys, *axes, marks, label), fields


def motion_and_lines() -> Iterator[tuple[str, Callable[[Path], None], dict[str, Any]]]:
    """Position-time slopes, velocity-time areas and slopes, Hooke's law slopes, calibration intercepts."""
    for n, (x0, v) in enumerate([(0, 2.5), (4, 1.5), (10, 0.75), (2, 3.2), (5, 0.4)], start=1):
        ts = [0, 2, 4, 6, 8]
        xs = [x0 + v * t for t in ts]
        yield _plot(f"position-time-{n}", ts, xs, ("time t (s)", "position x (m)"), [1, 4], ("s", "m"), {
            "subject": "physics", "topic": "kinematics", "unit": "m/s", "answer": _answer(v),
            "question": "The graph shows the position of a cart on a straight track against time. What is the cart's velocity?",
            "caption": "Position of a cart against time.",
            "mentions": ["The cart was pushed once and then rolled freely along the track, as the position record shows."]})
    for n, (v1, t1, t2, t3) in enumerate([(6, 2, 6, 8), (10, 4, 10, 12), (4, 1, 5, 7), (8, 2, 4, 10)], start=1):
        ts, vs = [0, t1, t2, t3], [0, v1, v1, 0]
        distance = v1 * t1 / 2 + v1 * (t2 - t1) + v1 * (t3 - t2) / 2
        yield _plot(f"velocity-area-{n}", ts, vs, ("time t (s)", "velocity v (m/s)"), [1, 2, 3], ("s", "m/s"), {
            "subject": "physics", "topic": "kinematics", "unit": "m", "answer": _answer(distance),
            "question": "The graph shows the velocity of a lift against time during one trip. How far does the lift travel during the trip?",
            "caption": "Velocity of a lift against time for one trip between floors.",
            "mentions": ["The lift starts and ends the trip at rest; its velocity was logged by an accelerometer app."]})
    for n, (v0, a) in enumerate([(0, 1.5), (2, 0.5), (12, -1.5)], start=1):
        ts = [0, 2, 4, 6, 8]
        vs = [v0 + a * t for t in ts]
        yield _plot(f"velocity-slope-{n}", ts, vs, ("time t (s)", "velocity v (m/s)"), [0, 4], ("s", "m/s"), {
            "subject": "physics", "topic": "kinematics", "unit": "m/s^2", "answer": _answer(a),
            "question": "The graph shows the velocity of a bicycle against time. What is its acceleration?",
            "caption": "Velocity of a bicycle against time.",
            "mentions": ["The rider kept a steady effort on the pedals (or brakes) for the whole record."]})
    for n, k in enumerate([40, 25, 120], start=1):
        xs = [0, 2, 4, 6, 8, 10]  # extension in cm
        fs = [k * x / 100 for x in xs]
        yield _plot(f"hooke-{n}", xs, fs, ("extension (cm)", "force F (N)"), [2, 5], ("cm", "N"), {
            "subject": "physics", "topic": "elasticity", "unit": "N/m", "answer": _answer(k),
            "question": "The graph shows the force needed to stretch a spring against its extension. What is the spring constant?",
            "caption": "Force against extension for a steel spring.",
            "mentions": ["The spring obeyed Hooke's law over the whole range of loads that was used."]})
    for n, (l0, slope) in enumerate([(50.0, 0.06), (120.0, 0.15), (80.0, 0.1)], start=1):
        temps = [20, 40, 60, 80, 100]
        ls = [round(l0 + slope * t, 3) for t in temps]
        yield _plot(f"rod-intercept-{n}", temps, ls, ("temperature (°C)", "length L (cm)"), [0, 4], ("°C", "cm"), {
            "subject": "physics", "topic": "thermal expansion", "unit": "cm", "answer": _answer(l0),
            "question": "The graph shows the length of a metal rod against its temperature. The length changes linearly. What is the rod's length at 0 °C?",
            "caption": "Length of a metal rod heated in a water bath.",
            "mentions": ["The rod's length was measured with a travelling microscope at five bath temperatures."]})


def _resistor(ax: Any, x0: float, y0: float, x1: float, y1: float, label: str) -> None:
    """A zigzag resistor from (x0, y0) to (x1, y1), horizontal or vertical, labelled beside it."""
    import numpy as np

    n = 7
    t = np.linspace(0.2, 0.8, 2 * n + 1)
    zig = np.array([0] + [(-1) ** i * 0.12 for i in range(1, 2 * n)] + [0])
    horizontal = y0 == y1
    xs = x0 + (x1 - x0) * t if horizontal else x0 + zig
    ys = y0 + zig if horizontal else y0 + (y1 - y0) * t
    ax.plot([x0, xs[0]], [y0, ys[0]], "k-", [xs[-1], x1], [ys[-1], y1], "k-", linewidth=1.8)
    ax.plot(xs, ys, "k-", linewidth=1.8)
    lx, ly = ((x0 + x1) / 2, y0 + 0.3) if horizontal else (x0 + 0.25, (y0 + y1) / 2)
    ax.text(lx, ly, label, ha="center" if horizontal else "left", va="bottom" if horizontal else "center", fontsize=12)


def _battery(ax: Any, x: float, y0: float, y1: float, label: str) -> None:
    """A vertical battery on the left wire at x between y0 and y1, labelled with its voltage."""
    mid = (y0 + y1) / 2
    ax.plot([x, x], [y0, mid - 0.12], "k-", [x, x], [mid + 0.12, y1], "k-", linewidth=1.8)
    ax.plot([x - 0.3, x + 0.3], [mid + 0.12, mid + 0.12], "k-", linewidth=2.2)
    ax.plot([x - 0.15, x + 0.15], [mid - 0.12, mid - 0.12], "k-", linewidth=3.5)
    ax.text(x - 0.4, mid, label, ha="right", va="center", fontsize=12)


def _circuit(path: Path, volts: float, series: list[float], parallel: list[float]) -> None:
    """A battery driving ``series`` resistors along the top wire and ``parallel`` branches on the right."""
    fig, ax = _figure(7.0, 3.6)
    left, right, bottom, top = 0.0, 8.5, 0.0, 3.0
    _battery(ax, left, bottom, top, f"{_g(volts)} V")
    span = right - 3.0 * max(0, len(parallel) - 1) if parallel else right
    xs = [left + (span - left) * i / (len(series) + 1) for i in range(len(series) + 2)]
    for i, r in enumerate(series):
        _resistor(ax, xs[i] + 0.3 * (i > 0), top, xs[i + 1] + 0.3, top, f"R{i + 1} = {_g(r)} Ω")
    ax.plot([xs[0], xs[0] + 0.3], [top, top], "k-", linewidth=1.8)
    ax.plot([xs[len(series)] + 0.3, right], [top, top], "k-", linewidth=1.8)
    branches = parallel or []
    if branches:
        bx = [right - 3.0 * i for i in range(len(branches))]
        for j, (x, r) in enumerate(zip(bx, branches, strict=True)):
            _resistor(ax, x, top, x, bottom, f"R{len(series) + j + 1} = {_g(r)} Ω")
        ax.plot([min(bx), right], [top, top], "k-", [left, right], [bottom, bottom], "k-", linewidth=1.8)
    else:
        ax.plot([right, right], [top, bottom], "k-", [left, right], [bottom, bottom], "k-", linewidth=1.8)
    ax.set_xlim(-2.2, 11.0)
    ax.set_ylim(-0.6, 3.8)
    ax.set_aspect("equal")
    ax.axis("off")
    _save(fig, path)


def circuits() -> Iterator[tuple[str, Callable[[Path], None], dict[str, Any]]]:
    """Series currents, parallel equivalent resistances and a series-parallel current."""
    common = {"subject": "physics", "topic": "circuits", "caption": "Circuit diagram of the bench set-up.",
              "mentions": ["The battery's internal resistance and the resistance of the wires are negligible."]}
    for n, (v, rs) in enumerate([(12, [100, 200]), (9, [30, 60]), (6, [1000, 2000])], start=1):
        current = v / sum(rs)
        answer, unit = (_answer(current * 1000), "mA") if current < 0.1 else (_answer(current), "A")
        yield (f"circuit-series-{n}", lambda p, v=v, rs=rs: _circuit(p, v, rs, []), {
            **common, "unit": unit, "answer": answer,
            "question": "In the circuit shown, what current flows through the battery?"})
    for n, (v, rs) in enumerate([(12, [60, 30]), (24, [300, 600])], start=1):
        req = rs[0] * rs[1] / (rs[0] + rs[1])
        yield (f"circuit-parallel-{n}", lambda p, v=v, rs=rs: _circuit(p, v, [], rs), {
            **common, "unit": "Ω", "answer": _answer(req),
            "question": "In the circuit shown, what is the equivalent resistance of the resistors connected to the battery?"})
    v, series, parallel = 18, [20], [60, 30]
    current = v / (series[0] + parallel[0] * parallel[1] / (parallel[0] + parallel[1]))
    yield ("circuit-mixed-1", lambda p: _circuit(p, v, series, parallel), {
        **common, "unit": "A", "answer": _answer(current),
        "question": "In the circuit shown, what current flows through R1?"})


def _titration(path: Path, v_eq: float) -> None:
    """pH of 25.0 mL of a strong acid against the volume of 0.100 M NaOH added; equivalence marked."""
    import numpy as np

    c_b, v_a = 0.100, 25.0
    c_a = c_b * v_eq / v_a
    vol = np.linspace(0, 2 * v_eq, 400)
    excess = (c_b * vol - c_a * v_a) / (v_a + vol)  # mol/L of OH- (positive) or H+ (negative)
    ph = np.where(excess < 0, -np.log10(np.maximum(-excess, 1e-7)), 14 + np.log10(np.maximum(excess, 1e-7)))
    fig, ax = _figure()
    ax.plot(vol, ph, color="tab:purple", linewidth=2)
    ax.axvline(v_eq, color="gray", linestyle="--")
    ax.annotate(f"equivalence point: {_g(v_eq)} mL", (v_eq, 7), textcoords="offset points", xytext=(8, 0), fontsize=10)
    ax.set_xlabel("volume of 0.100 M NaOH added (mL)", fontsize=11)
    ax.set_ylabel("pH", fontsize=11)
    ax.grid(True, alpha=0.4)
    _save(fig, path)


def _decay(path: Path, n0: float, half_life: float, unit: str) -> None:
    """Activity against time, the half-activity level and its time drawn in."""
    import numpy as np

    t = np.linspace(0, 4 * half_life, 200)
    fig, ax = _figure()
    ax.plot(t, n0 * 0.5 ** (t / half_life), color="tab:green", linewidth=2)
    ax.plot([0, half_life, half_life], [n0 / 2, n0 / 2, 0], "k--", linewidth=1)
    ax.annotate(f"({_g(half_life)} {unit}, {_g(n0 / 2)} Bq)", (half_life, n0 / 2), textcoords="offset points", xytext=(6, 4), fontsize=10)
    ax.set_xlabel(f"time ({unit})", fontsize=11)
    ax.set_ylabel("activity (Bq)", fontsize=11)
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.4)
    _save(fig, path)


def chemistry() -> Iterator[tuple[str, Callable[[Path], None], dict[str, Any]]]:
    """Titration curves (acid concentration) and decay curves (half-life)."""
    for n, v_eq in enumerate([20.0, 12.5, 30.0], start=1):
        yield (f"titration-{n}", lambda p, v_eq=v_eq: _titration(p, v_eq), {
            "subject": "chemistry", "topic": "titration", "unit": "mol/L", "answer": _answer(0.100 * v_eq / 25.0),
            "question": "25.0 mL of hydrochloric acid is titrated with 0.100 M NaOH; the graph shows the pH against the volume of base added. "
                        "What is the concentration of the acid?",
            "caption": "Titration curve of hydrochloric acid with sodium hydroxide.",
            "mentions": ["The pH was read with a calibrated glass electrode after each addition of base."]})
    for n, (n0, half_life, unit) in enumerate([(800, 6, "h"), (1200, 8, "days"), (400, 30, "s")], start=1):
        yield (f"decay-{n}", lambda p, n0=n0, hl=half_life, u=unit: _decay(p, n0, hl, u), {
            "subject": "chemistry", "topic": "radioactivity", "unit": {"h": "h", "days": "day", "s": "s"}[unit], "answer": _answer(half_life),
            "question": "The graph shows the activity of a radioactive sample against time. What is the half-life of the isotope?",
            "caption": "Activity of a radioactive sample measured with a Geiger counter.",
            "mentions": ["Background counts were subtracted from every reading."]})


def generate(out_dir: Path = HERE) -> list[dict[str, Any]]:
    """Draw every figure into ``out_dir/images`` and write ``out_dir/questions.jsonl``; returns the rows."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, draw, fields in [*motion_and_lines(), *circuits(), *chemistry()]:
        image = Path("images") / f"{name}.png"
        draw(out_dir / image)
        rows.append({"id": f"fig-{name}", **{k: v for k, v in fields.items() if k not in ("caption", "mentions")},
                     "images": [image.as_posix()], "caption": fields["caption"], "mentions": fields["mentions"],
                     "source": "scireflect data/figures/generate.py (MIT)"})
    with open(out_dir / "questions.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    print(f"{len(generate(target))} questions with figures in {target}")
