"""math-verify (Hugging Face) as one backend of the ensemble: a fallback for symbolic forms our parser fails on.

math-verify (https://github.com/huggingface/Math-Verify, Apache-2.0; ``math_verify`` 0.9) parses LaTeX
with its own normaliser and ``latex2sympy2_extended`` and compares with sympy. Measured on real
answers it is strong on notation we do not parse, but it strips units instead of checking them
(``5 km`` equals ``5 m``), has no relative tolerance and judges ``1/2004!`` equal to ``1/2006!``;
its own timeouts use ``signal.alarm`` and break outside the main thread. So here:

* its timeouts are disabled (``parsing_timeout=None``, ``timeout_seconds=None``); ours apply (the
  call runs inside the sandbox worker of :class:`~scireflect.verifiers.workers.SandboxedAnswerVerifier`);
* it is consulted only by the *symbolic* check, and only when our checker could not decide
  (candidate unparseable, ``undecided``, or a reference we cannot parse); it never overrides a
  decision of ours, and never a numeric, unit or dimension decision.
"""

from __future__ import annotations

import logging

__all__ = ["available", "math_verify_equal"]

_mv = None


def available() -> bool:
    """Whether ``math_verify`` can be imported."""
    return _load() is not None


def _load():
    global _mv
    if _mv is None:
        try:
            import math_verify

            for name in ("math_verify", "math_verify.parser", "math_verify.grader", "latex2sympy2_extended"):
                logging.getLogger(name).setLevel(logging.ERROR)  # "timeout is disabled" warnings
            _mv = math_verify
        except ImportError:  # pragma: no cover - an optional backend
            _mv = False
    return _mv or None


def _wrap(s: str) -> str:
    s = s.strip()
    return s if s.startswith("$") or "\\boxed" in s else f"${s}$"


def math_verify_equal(candidate: str, reference: str) -> bool | None:
    """math-verify's judgement of ``candidate`` against ``reference`` (both LaTeX answer texts).

    Returns:
        ``True``/``False`` when both sides parse, ``None`` when math-verify is not installed, a
        side does not parse, or it raises. No timeout of its own: call it under a wall-clock limit.
    """
    mv = _load()
    if mv is None:
        return None
    try:
        gold = mv.parse(_wrap(reference), parsing_timeout=None)
        pred = mv.parse(_wrap(candidate), parsing_timeout=None)
        if not gold or not pred:
            return None
        return bool(mv.verify(gold, pred, timeout_seconds=None))
    except Exception:  # noqa: BLE001 - any failure of the backend means "no opinion"
        return None
