"""The per-question budget and the loop's one decision: after a verdict, where does the question go?

:func:`decide` is the only place the loop's end is decided (the ``verify`` node calls it once per
pass and stores the result in the state). A budget stop is a structured :class:`BudgetStop`
(``{"limit": "tokens", "used": 24100, "allowed": 24000}``), never a string to be parsed.

The loop's attempt strategies are data (:data:`STRATEGIES`, ``Budget.strategy``, by default
:data:`DEFAULT_ORDER`): attempt ``i`` of a question is made by the ``i``-th strategy of the order, except that an attempt that repeats an
earlier failed answer (its step's ``repeated``) is never followed by ``reflect``, one more edit of
the same text: the order skips to its next other strategy; and a strategy the run cannot make
(``program`` without the code sandbox) is skipped.

Example::

    >>> budget = Budget.parse("strategy=cot/reflect/resample/answer_guided,attempts=4")
    >>> budget.order
    ('cot', 'reflect', 'resample', 'answer_guided')
    >>> decide([{"kind": "solution", "stage": "cot", "verdict": {"ok": False}}], budget).route
    'critique'
    >>> decide([{"kind": "solution", "stage": "cot", "verdict": {"ok": False}}], Budget()).route
    'program'
    >>> decide([{"kind": "solution", "stage": "cot", "verdict": {"ok": False}}], Budget(), available={"cot", "resample"}).route
    'resample'
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ..verifiers.base import INVALID, UNVERIFIED
from .state import STRATEGIES, BudgetStop, Stage, Status, Strategy, solution_steps, total_seconds, total_tokens


RESAMPLE_TEMPERATURE = 0.8
"""The sampling temperature of a ``resample`` attempt: an independent draw (above Qwen2.5's 0.7, so
that it leaves the greedy path of the failed attempts)."""

DEFAULT_ORDER: tuple[Strategy, ...] = ("cot", "program", "resample", "answer_guided")
"""The attempt strategies when the budget names none: a chain of thought, then program of thought
(skipped where the code sandbox cannot start), a fresh resample, and the answer-guided revision.
Picked by ``benchmarks/bench_reflection.py`` (docs/benchmarks.md, "Reflection strategies"): on the
embedded 1.5B's chain-of-thought failures, a ``program`` attempt rescued 8 of 30, ``resample`` 6 of
41 and ``reflect`` (the Critic, then the Reviser) 4 of 46, pooled over the runs of 2026-12-07; this
order rescued more questions without the answer-guided revision than cot/reflect/reflect in each
run. Unaided self-correction rarely helps a small model (Huang et al., ICLR 2024, "Large Language
Models Cannot Self-Correct Reasoning Yet"); independent attempts are the strong baseline. Formal
proofs keep reflection, on the Lean checker's errors (:func:`~scireflect.graphs.formal.formal_context`)."""


@dataclass(frozen=True)
class Budget:
    """Per-question limits of the annotation loop.

    Attributes:
        max_attempts: solution attempts in all (the Solver's plus every revision), >= 1.
        max_reflections: critique + revise rounds before the answer-guided revision, >= 0, or
            ``None`` (not set). Setting it (or ``answer_guided``) without ``strategy`` asks for the
            reflection loop of SciGLM: ``cot``, then ``max_reflections`` (default 2) times
            ``reflect``, then ``answer_guided``.
        answer_guided: whether that reflection loop ends with one answer-guided revision, or
            ``None`` (not set: yes).
        max_tokens: prompt + completion tokens over all model calls of the question: the default
            guard against runaway questions, and the same on a fast and a slow machine.
        max_seconds: seconds of model and verifier time of the question (summed over its steps, so
            time spent killed or queued does not count), or ``None`` (the default: no time limit).
            A time limit turns a slow or busy machine into rejected questions, so it is off unless
            asked for; a call it cuts keeps the text and tokens it had streamed.
        mc_samples: k, the independent samples that must all pick the correct letter before a
            ``k_sample`` multiple-choice attempt is accepted (the attempt and k-1 more, drawn by the
            ``confirm`` node at a sampling temperature), >= 1; 1 accepts the attempt alone.
        strategy: the order of attempt strategies, e.g. ``("cot", "reflect", "resample", "reflect",
            "answer_guided")`` (:data:`~scireflect.graphs.state.Strategy`: ``cot``, ``reflect``,
            ``resample``, ``program``, ``answer_guided``): ``cot`` first, ``answer_guided`` (if
            present) last; TOML ``strategy = ["cot", "reflect", ...]``, ``--budget
            strategy=cot/reflect/...``.
            ``None`` (the default): :data:`DEFAULT_ORDER` (cot, program, resample, answer_guided),
            the order ``benchmarks/bench_reflection.py`` picked, unless ``max_reflections`` or
            ``answer_guided`` is set (then the reflection loop above). The order is also capped by
            ``max_attempts``.

    Raises:
        ValueError: a limit out of range or not a finite number; an unknown strategy, or an order
            that does not start with ``cot`` or has ``answer_guided`` elsewhere than last.

    Examples:
        The defaults: a chain of thought, program of thought, a fresh resample, then the
        answer-guided revision, in at most 4 attempts and 24,000 tokens; the reflection loop
        when its round count is given:

        >>> from scireflect.graphs.budget import Budget
        >>> Budget().order
        ('cot', 'program', 'resample', 'answer_guided')
        >>> Budget.parse("reflections=2").order
        ('cot', 'reflect', 'reflect', 'answer_guided')
        >>> Budget(max_reflections=1, answer_guided=False).order
        ('cot', 'reflect')

        From ``--budget`` and from the TOML ``[budget]`` table (the same keys):

        >>> Budget.parse("attempts=5,strategy=cot/reflect/resample/reflect/answer_guided").order
        ('cot', 'reflect', 'resample', 'reflect', 'answer_guided')
        >>> budget = Budget.from_table({"attempts": 3, "seconds": 900, "strategy": ["cot", "resample", "answer_guided"]})
        >>> budget.max_attempts, budget.max_seconds, budget.order
        (3, 900.0, ('cot', 'resample', 'answer_guided'))

        The first limit a question's steps have reached (``None``: the loop may go on):

        >>> steps = [{"kind": "solution", "input_tokens": 900, "output_tokens": 700, "latency_s": 12.5}]
        >>> Budget(max_attempts=2).exhausted(steps) is None
        True
        >>> Budget(max_attempts=2, max_tokens=1500).exhausted(steps)
        {'limit': 'tokens', 'used': 1600, 'allowed': 1500}
        >>> Budget(max_attempts=1).exhausted(steps)
        {'limit': 'attempts', 'used': 1, 'allowed': 1}

        A bad limit or order is refused when the budget is made:

        >>> Budget.parse("strategy=reflect/cot")
        Traceback (most recent call last):
            ...
        ValueError: budget: bad value for strategy: 'reflect/cot': the first strategy must be 'cot'
    """

    max_attempts: int = 4
    max_reflections: int | None = None
    answer_guided: bool | None = None
    max_tokens: int = 24_000
    max_seconds: float | None = None
    mc_samples: int = 3
    strategy: tuple[Strategy, ...] | None = None

    def __post_init__(self) -> None:
        if self.strategy is not None:
            object.__setattr__(self, "strategy", tuple(self.strategy))
            check_strategy(self.strategy)
        if self.mc_samples < 1:
            raise ValueError("budget: mc_samples must be >= 1")
        if self.max_attempts < 1:
            raise ValueError("budget: attempts must be >= 1")
        if self.max_reflections is not None and self.max_reflections < 0:
            raise ValueError("budget: reflections must be >= 0")
        if self.max_tokens < 1:
            raise ValueError("budget: tokens must be positive")
        if self.max_seconds is not None and not (math.isfinite(self.max_seconds) and self.max_seconds > 0):
            raise ValueError("budget: seconds must be a positive, finite number (or 'none')")

    @property
    def order(self) -> tuple[Strategy, ...]:
        """The attempt strategies in order: ``strategy``; else the reflection loop when
        ``max_reflections`` or ``answer_guided`` is set; else :data:`DEFAULT_ORDER`."""
        if self.strategy is not None:
            return self.strategy
        if not self.reflection_loop:
            return DEFAULT_ORDER
        rounds = 2 if self.max_reflections is None else self.max_reflections
        return ("cot", *("reflect",) * rounds, *(("answer_guided",) if self.answer_guided is not False else ()))

    @property
    def reflection_loop(self) -> bool:
        """Whether the order is SciGLM's reflection loop, asked for by ``max_reflections`` or
        ``answer_guided`` without ``strategy``."""
        return self.strategy is None and (self.max_reflections is not None or self.answer_guided is not None)

    @classmethod
    def parse(cls, spec: str) -> Budget:
        """Parse ``"attempts=4,reflections=2,tokens=24000,seconds=900,answer_guided=yes,mc_samples=3"``,
        or ``"strategy=cot/reflect/resample/answer_guided"`` (names joined by ``/``): ``--budget``.

        Missing keys keep their defaults; ``seconds=none`` (or ``off``) means no time limit.

        Raises:
            ValueError: an unknown key or a bad value (the message names it).
        """
        return cls.from_table(cls.spec_items(spec))

    @staticmethod
    def spec_items(spec: str) -> dict[str, str]:
        """``"attempts=4,strategy=cot/reflect"`` as ``{"attempts": "4", "strategy": "cot/reflect"}``, for
        :meth:`from_table` (the command line's ``--budget`` over the TOML file's ``[budget]`` table).

        Raises:
            ValueError: an item without ``=`` or with an unknown key.
        """
        items: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, sep, raw = item.partition("=")
            if not sep or key.strip() not in _TABLE_KEYS:
                raise _unknown_item(item)
            items[key.strip()] = raw.strip()
        return items

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Budget:
        """A budget from the TOML ``[budget]`` table (``attempts = 4``, ``answer_guided = true``,
        ``strategy = ["cot", "reflect"]``, ``seconds = 900``) or from :meth:`spec_items`' strings.

        Raises:
            ValueError: an unknown key or a bad value (the message names it).
        """
        values: dict[str, Any] = {}
        for key, raw in table.items():
            if key not in _TABLE_KEYS:
                raise _unknown_item(key)
            try:
                values[_TABLE_KEYS[key]] = _budget_value(key, raw)
            except ValueError as exc:
                shown = "/".join(map(str, raw)) if isinstance(raw, list | tuple) else raw
                why = f": {exc}" if key == "strategy" and str(exc) else ""
                raise ValueError(f"budget: bad value for {key}: '{shown}'{why}") from None
        return cls(**values)

    def seconds_left(self, steps: Sequence[Mapping[str, Any]]) -> float | None:
        """Seconds of the time budget not yet used by ``steps`` (may be <= 0), or ``None`` without a time limit."""
        return None if self.max_seconds is None else self.max_seconds - total_seconds(steps)

    def exhausted(self, steps: Sequence[Mapping[str, Any]]) -> BudgetStop | None:
        """The first limit ``steps`` have reached (attempts, then tokens, then seconds), or ``None``."""
        attempts = len(solution_steps(steps))
        if attempts >= self.max_attempts:
            return {"limit": "attempts", "used": attempts, "allowed": self.max_attempts}
        tokens = total_tokens(steps)
        if tokens >= self.max_tokens:
            return {"limit": "tokens", "used": tokens, "allowed": self.max_tokens}
        seconds = total_seconds(steps)
        if self.max_seconds is not None and seconds >= self.max_seconds:
            return {"limit": "seconds", "used": round(seconds, 3), "allowed": self.max_seconds}
        return None


_TABLE_KEYS = {"attempts": "max_attempts", "reflections": "max_reflections", "tokens": "max_tokens", "seconds": "max_seconds",
               "answer_guided": "answer_guided", "mc_samples": "mc_samples", "strategy": "strategy"}
"""The keys of ``[budget]`` and ``--budget``, and the :class:`Budget` field each sets."""


def _unknown_item(item: str) -> ValueError:
    """The error of an item that is not a ``[budget]``/``--budget`` key, listing the keys."""
    return ValueError(f"budget: unknown item '{item}'; use {', '.join(k + '=...' for k in _TABLE_KEYS)}")


def _budget_value(key: str, raw: Any) -> Any:
    """One ``[budget]`` value, typed (TOML) or a string (``--budget``), as its field's type.

    Raises:
        ValueError: not a value of the key's type (an empty message), or a bad strategy order (its fault).
    """
    if key == "answer_guided":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() not in ("yes", "no", "true", "false", "1", "0"):
            raise ValueError
        return str(raw).lower() in ("yes", "true", "1")
    if key == "strategy":
        order = tuple(str(n).strip() for n in (raw if isinstance(raw, list | tuple) else str(raw).split("/")))
        check_strategy(order)
        return order
    if isinstance(raw, bool) or isinstance(raw, list | tuple | dict):
        raise ValueError
    if key == "seconds":
        if str(raw).lower() in ("none", "off"):
            return None
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError
        return value
    if isinstance(raw, float):
        raise ValueError
    return int(raw)


def describe_stop(stop: BudgetStop) -> str:
    """A budget stop in words, e.g. ``budget: attempts (4)`` or ``budget: tokens (24100 >= 24000)``."""
    if stop["limit"] == "attempts":
        return f"budget: attempts ({stop['allowed']:g})"
    return f"budget: {stop['limit']} ({stop['used']:.0f} >= {stop['allowed']:.0f})"


def check_strategy(order: tuple[str, ...]) -> None:
    """Raise ``ValueError`` (naming the fault) unless ``order`` is a valid strategy order (see :class:`Budget`)."""
    unknown = [n for n in order if n not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy {', '.join(map(repr, unknown))}; use {', '.join(STRATEGIES)}")
    if not order or order[0] != "cot":
        raise ValueError("the first strategy must be 'cot'")
    if "cot" in order[1:]:
        raise ValueError("'cot' only as the first strategy (use 'resample' for a fresh attempt)")
    if "answer_guided" in order[:-1]:
        raise ValueError("'answer_guided' only as the last strategy")


Route = Literal["confirm", "critique", "resample", "program", "answer_guided", "end"]
"""A node ``decide`` routes to: ``critique`` begins the ``reflect`` strategy (critique -> revise)."""

_ROUTE_OF: dict[str, Route] = {"reflect": "critique", "resample": "resample", "program": "program",
                               "answer_guided": "answer_guided"}
"""The node each strategy after ``cot`` starts at."""


class Decision(NamedTuple):
    """Where the loop goes after a verdict, and, when it ends, how.

    ``route`` is the next node (``end`` stops the loop); ``status``, ``reason``, ``accepted_stage``
    and ``budget_stop`` are the final values when ``route == "end"`` (``status`` is ``running``
    otherwise).
    """

    route: Route
    status: Status
    reason: str | None
    accepted_stage: Stage | None = None
    budget_stop: BudgetStop | None = None

    def update(self) -> dict[str, Any]:
        """The state update of this decision."""
        return {"route": self.route, "status": self.status, "stop_reason": self.reason,
                "accepted_stage": self.accepted_stage, "budget_stop": self.budget_stop}


def decide(steps: Sequence[Mapping[str, Any]], budget: Budget, mc_path: str | None = None,
           available: Collection[str] | None = None) -> Decision:
    """After ``verify`` (or ``confirm``): end the loop or go on, and why. A pure function of the steps
    (and of the question's multiple-choice path, ``mc_path``: see :class:`~scireflect.graphs.state.AnnotationState`;
    and of the strategies the run can make, ``available``: ``None`` for all; ``program`` needs the
    code sandbox, and a strategy not available is skipped as if it were not in the order).

    Order: an accepted attempt of a ``k_sample`` question whose samples are not drawn yet goes to
    ``confirm`` (when ``budget.mc_samples`` > 1; ``confirm`` calls this again once they are, and the
    attempt's verdict then says whether they agreed); an accepted attempt ends the loop (``accepted``); a checker that could not check at all
    (verdict reason ``unverified``: no Lean toolchain) ends it (``unverified``: without evidence
    there is nothing to reflect on); then the budget (attempts, tokens, seconds); then the next
    strategy of ``budget.order`` (attempt ``n + 1`` is made by ``order[n]``), except that after an
    attempt marked ``repeated`` (its final answer equals an earlier failed one's) ``reflect`` is
    skipped for the next other strategy; else the loop is exhausted (``rejected``). A loop that ends
    without an accepted attempt ends ``invalid`` instead of ``rejected`` when its last attempt's
    verdict is ``invalid`` (cut off, a loop, a self-contradiction), its ``stop_reason`` then naming
    the kind: ``invalid (truncated); budget: attempts (4)``.

    Steps recorded before strategies were data (no ``strategy`` field) are counted the same way:
    by position, which is how the default order was made before.
    """
    solutions = solution_steps(steps)
    verdict = (solutions[-1].get("verdict") or {}) if solutions else {}
    if verdict.get("ok") is True:
        if mc_path == "k_sample" and budget.mc_samples > 1 and solutions[-1].get("samples") is None:
            return Decision("confirm", "running", None)
        return Decision("end", "accepted", "accepted", accepted_stage=solutions[-1]["stage"])
    if verdict.get("reason") == UNVERIFIED:
        return Decision("end", "unverified", f"unverified: {verdict.get('explanation', '')}"[:300])
    stop = budget.exhausted(steps)
    if stop is not None:
        return _failed(verdict, describe_stop(stop), stop)
    order = budget.order
    upcoming = [name for name in order[len(solutions):] if available is None or name in available]
    repeated = bool(solutions and solutions[-1].get("repeated"))
    if repeated:  # the same wrong answer again: no more edits of that text, the next other strategy
        upcoming = [name for name in upcoming if name != "reflect"]
    if upcoming:
        return Decision(_ROUTE_OF[upcoming[0]], "running", None)
    if repeated and len(solutions) < len(order) and any(n == "reflect" for n in order[len(solutions):]):
        return _failed(verdict, f"repeated answer (attempt {solutions[-1]['attempt']} repeats attempt "
                                f"{solutions[-1]['repeated']}); no other strategy left")
    if order[-1] == "answer_guided":
        return _failed(verdict, "answer-guided revision failed")
    if budget.reflection_loop:
        return _failed(verdict, f"reflection failed ({order.count('reflect')} rounds)")
    return _failed(verdict, f"strategies exhausted ({'/'.join(order)})")


def _failed(verdict: Mapping[str, Any], reason: str, stop: BudgetStop | None = None) -> Decision:
    """The end of a loop without an accepted attempt: ``invalid`` when the last attempt was, else ``rejected``."""
    if verdict.get("reason") == INVALID:
        kind = (verdict.get("details") or {}).get("invalid") or "invalid"
        return Decision("end", "invalid", f"invalid ({kind}); {reason}", budget_stop=stop)
    return Decision("end", "rejected", reason, budget_stop=stop)


__all__ = ["DEFAULT_ORDER", "RESAMPLE_TEMPERATURE", "STRATEGIES", "Budget", "Decision", "Route", "Strategy", "check_strategy", "decide",
           "describe_stop"]
