"""The verifier registry: built-in and third-party verifiers by name, and per-subject routing.

Third-party packages register verifiers through the Python entry point group ``scireflect.verifiers``
(``importlib.metadata``). Each entry point names a *factory*: a callable (usually the class) that
takes keyword settings and returns an object with ``name``, ``version`` and
``verify(response, question) -> Verdict`` (optionally ``async averify`` and ``close``)::

    # the plugin's pyproject.toml
    [project.entry-points."scireflect.verifiers"]
    lean = "scireflect_lean:LeanVerifier"

Built-ins, registered in code (and, in scireflect's own pyproject, as entry points too):

``answer``            :class:`~scireflect.verifiers.workers.SandboxedAnswerVerifier` (numbers with
                      tolerance and units, choices, symbolic; sandboxed worker).
``answer-inprocess``  :class:`InProcessAnswerVerifier`: the same checks in this process, no limits
                      (for trusted text and benchmarks only).

A run picks verifiers per subject in its config (``[verifier] by_subject = { physics = "answer",
formal = "lean" }``, ``default = "answer"``); :func:`build_verifier` turns that into one
:class:`SubjectRouter`. How to write a plugin: ``docs/writing-a-verifier.md``.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from .base import AnswerVerifier, Verdict, averify_response, verify_response

__all__ = [
    "ENTRY_POINT_GROUP",
    "InProcessAnswerVerifier",
    "SubjectRouter",
    "UnknownVerifier",
    "available_verifiers",
    "build_verifier",
    "get_verifier",
    "register_verifier",
]

ENTRY_POINT_GROUP = "scireflect.verifiers"

_lock = threading.Lock()
_registry: dict[str, Callable[..., Any]] = {}


class UnknownVerifier(LookupError):
    """No verifier of that name is registered or installed; the message lists the known names."""


class InProcessAnswerVerifier:
    """:func:`~scireflect.verifiers.answer.verify_answer` in the calling process (no sandbox, no limits).

    Only for trusted text (benchmarks, tests): pathological input can stall it. Accepts the same
    ``rel_tol``/``tolerance``/``ensemble``/``steps`` settings as the sandboxed verifier; other keys are ignored.
    """

    name = "answer-inprocess"
    version = "3"  # 3: the step checker gates acceptance (steps="gate")

    def __init__(self, rel_tol: float | None = None, tolerance: str | None = None, ensemble: bool = True,
                 steps: str = "gate", **_: Any):
        from .answer import VerifierConfig

        self.rel_tol, self.tolerance, self.ensemble, self.steps = rel_tol, tolerance, ensemble, steps
        self.config = VerifierConfig.of(rel_tol, tolerance, ensemble, steps)  # ValueError: unknown policy or mode

    def verify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        """:func:`~scireflect.verifiers.answer.verify_answer` with this verifier's settings."""
        from .answer import verify_answer

        return verify_answer(response, question, finish_reason=finish_reason, config=self.config)


def _answer_factory(**settings: Any):
    from .workers import SandboxedAnswerVerifier

    return SandboxedAnswerVerifier(**settings)


def register_verifier(name: str, factory: Callable[..., Any], *, replace: bool = False) -> None:
    """Register ``factory`` (a callable returning a verifier) under ``name`` in this process.

    Raises ``ValueError`` when ``name`` is taken and ``replace`` is false.
    """
    with _lock:
        if name in _registry and not replace:
            raise ValueError(f"a verifier named '{name}' is already registered")
        _registry[name] = factory


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_verifiers() -> list[str]:
    """Names of every verifier: built-ins, registered in code, and installed entry points (sorted)."""
    with _lock:
        names = set(_registry)
    return sorted(names | set(_entry_points()))


def _factory(name: str) -> Callable[..., Any]:
    with _lock:
        if name in _registry:
            return _registry[name]
    eps = _entry_points()
    if name not in eps:
        raise UnknownVerifier(f"unknown verifier '{name}'; known: {', '.join(available_verifiers()) or '(none)'}")
    try:
        factory = eps[name].load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must give a clear message
        raise UnknownVerifier(f"verifier '{name}' ({eps[name].value}) failed to load: {type(exc).__name__}: {exc}") from exc
    if not callable(factory):
        raise UnknownVerifier(f"verifier '{name}' ({eps[name].value}) is not callable")
    return factory


def get_verifier(name: str, **settings: Any) -> AnswerVerifier:
    """Create the verifier registered as ``name``.

    Args:
        name: e.g. ``answer``, ``answer-inprocess`` or an installed plugin's entry point name.
        settings: keyword settings for its factory (e.g. ``timeout_s``, ``memory_mb``, ``rel_tol``);
            keys the factory does not accept are dropped (a plugin need not know every setting).

    Raises:
        UnknownVerifier: no such name, or the plugin fails to import.
        TypeError: the object made has no ``verify`` method.
    """
    factory = _factory(name)
    try:
        params = inspect.signature(factory).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            settings = {k: v for k, v in settings.items() if k in params}
    except (TypeError, ValueError):  # builtins without a signature
        pass
    verifier = factory(**settings)
    if not callable(getattr(verifier, "verify", None)):
        raise TypeError(f"verifier '{name}' made {type(verifier).__name__}, which has no verify() method")
    return verifier


class SubjectRouter:
    """One verifier that routes each question to a verifier chosen by its ``subject``.

    Args:
        routes: ``{subject: verifier}`` (subjects compared case-insensitively).
        default: the verifier for every other subject.

    ``name`` is ``router``; ``version`` lists the routes (``physics=answer/2,...``). ``averify``
    uses a route's ``averify`` when it has one, else its ``verify`` in a thread. ``close`` closes
    each distinct verifier once.
    """

    name = "router"

    def __init__(self, routes: Mapping[str, AnswerVerifier], default: AnswerVerifier):
        self.routes = {str(k).lower(): v for k, v in routes.items()}
        self.default = default
        parts = [f"default={default.name}/{default.version}"]
        parts += [f"{k}={v.name}/{v.version}" for k, v in sorted(self.routes.items())]
        self.version = ",".join(parts)

    def pick(self, question: Mapping[str, Any]) -> AnswerVerifier:
        """The verifier for ``question`` (by ``question['subject']``)."""
        subject = str(question.get("subject") or "").lower() if hasattr(question, "get") else ""
        return self.routes.get(subject, self.default)

    def verify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        """The routed verifier's verdict (``finish_reason`` passed only to verifiers that take it)."""
        return verify_response(self.pick(question), response, question, finish_reason=finish_reason)

    async def averify(self, response: str, question: Mapping[str, Any], *, finish_reason: str | None = None) -> Verdict:
        """The routed verifier's ``averify`` when it has one, else its ``verify`` in a thread."""
        return await averify_response(self.pick(question), response, question, finish_reason=finish_reason)

    def warm(self) -> None:
        """Start the routes' worker processes now (those that have a ``warm``), without waiting."""
        for v in {id(v): v for v in [self.default, *self.routes.values()]}.values():
            if hasattr(v, "warm"):
                v.warm()

    def close(self) -> None:
        seen: set[int] = set()
        for v in [self.default, *self.routes.values()]:
            if id(v) not in seen and hasattr(v, "close"):
                seen.add(id(v))
                v.close()


def build_verifier(default: str = "answer", by_subject: Mapping[str, str] | None = None, **settings: Any) -> AnswerVerifier:
    """Build the run's verifier from names: ``default`` for every subject, ``by_subject`` overrides.

    Args:
        default: the verifier name for subjects not in ``by_subject``.
        by_subject: ``{"physics": "answer", "formal": "lean"}``; names resolved by :func:`get_verifier`.
        settings: keyword settings for every factory (``timeout_s``, ``memory_mb``, ``workers``,
            ``rel_tol``, ``tolerance``...); unknown keys are dropped per factory.

    Returns:
        The default verifier itself when ``by_subject`` is empty, else a :class:`SubjectRouter`
        (one instance per distinct name, shared between subjects).

    Raises:
        UnknownVerifier: a name is neither built in nor installed.
    """
    made: dict[str, AnswerVerifier] = {}

    def get(name: str) -> AnswerVerifier:
        if name not in made:
            made[name] = get_verifier(name, **settings)
        return made[name]

    base = get(default)
    if not by_subject:
        return base
    return SubjectRouter({subject: get(name) for subject, name in by_subject.items()}, base)


register_verifier("answer", _answer_factory)
register_verifier("answer-inprocess", InProcessAnswerVerifier)
