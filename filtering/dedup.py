"""Exact and near-duplicate removal for questions and solutions; diverse solution paths per question.

Questions: two items are the same question when their normalised texts are equal (exact) or their
MinHash-estimated Jaccard similarity of word 3-gram shingles reaches ``question_threshold`` (near;
Broder 1997; ``datasketch`` MinHash + LSH, 128 permutations). Duplicates across runs or ids are merged
into one group, keyed by the first item seen.

Solutions: within one question group, solution paths are kept in preference order (caller's order)
while they are (a) not exact duplicates after normalisation, (b) below ``solution_threshold`` Jaccard
(word 3-grams) against every kept path, and (c) of a different *equation list* from every kept path
when both have one: RFT (Yuan et al. 2023, "Scaling Relationship on Learning Mathematical Reasoning
with Large Language Models") keeps reasoning paths with distinct lists of equations, which rewards
different derivations rather than different wording. At most ``max_per_question`` paths are kept.

Without ``datasketch`` the same tests run on exact Jaccard similarity (quadratic in the number of
questions; fine for some thousands).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .decontam import normalise

_OPS = re.compile(r"\s*([=+\-*/^×÷])\s*")
_EQ = re.compile(r"[\w.+\-*/^()\\{}×÷]+(?:=[\w.+\-*/^()\\{}×÷]+)+")


def shingles(text: str, k: int = 3) -> set[str]:
    """Word ``k``-gram shingles of :func:`~.decontam.normalise` d text (the whole text when shorter)."""
    words = normalise(text).split()
    if len(words) <= k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 1.0


def equation_list(text: str) -> tuple[str, ...]:
    """The equations of a solution, whitespace removed, in order (RFT's path signature)."""
    out = []
    for m in _EQ.finditer(_OPS.sub(r"\1", text)):
        eq = m.group(0).strip(".")
        if any(c.isdigit() for c in eq):
            out.append(eq)
    return tuple(out)


def _minhash(sh: set[str], num_perm: int) -> Any:
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm)
    for s in sh:
        m.update(s.encode("utf-8"))
    return m


def _have_datasketch() -> bool:
    try:
        import datasketch  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class QuestionGroups:
    """Assigns each question text a group id; near-duplicates share the group of the first seen.

    Args:
        threshold: Jaccard similarity (word 3-grams) at or above which two questions are one.
        num_perm: MinHash permutations (``datasketch``).
    """

    threshold: float = 0.8
    num_perm: int = 128
    use_minhash: bool = field(default_factory=_have_datasketch)
    _exact: dict[str, str] = field(default_factory=dict)
    _lsh: Any = None
    _sh: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.use_minhash:
            from datasketch import MinHashLSH

            self._lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)

    def assign(self, key: str, text: str) -> tuple[str, str | None]:
        """The group of question ``key`` and how it joined: ``(group, None)`` new, ``"exact"`` or ``"near"``."""
        norm = normalise(text)
        if norm in self._exact:
            return self._exact[norm], "exact"
        sh = shingles(text)
        if self.use_minhash:
            mh = _minhash(sh, self.num_perm)
            for cand in self._lsh.query(mh):
                if jaccard(sh, self._sh[cand]) >= self.threshold:  # confirm the estimate exactly
                    self._exact[norm] = cand
                    return cand, "near"
            self._lsh.insert(key, mh)
        else:
            for cand, other in self._sh.items():
                if jaccard(sh, other) >= self.threshold:
                    self._exact[norm] = cand
                    return cand, "near"
        self._sh[key] = sh
        self._exact[norm] = key
        return key, None


def select_diverse(
    solutions: Sequence[Any],
    text_of: Callable[[Any], str],
    *,
    max_per_question: int = 4,
    solution_threshold: float = 0.7,
) -> tuple[list[Any], list[tuple[Any, str]]]:
    """RFT-style selection of distinct solution paths of ONE question, in the given preference order.

    Returns:
        ``(kept, dropped)``; each dropped item carries its reason: ``duplicate_solution`` (same
        normalised text), ``near_duplicate_solution`` (Jaccard >= ``solution_threshold``),
        ``same_equations`` (same RFT equation list) or ``over_limit`` (``max_per_question`` reached).
    """
    kept: list[Any] = []
    sigs: list[tuple[str, set[str], tuple[str, ...]]] = []
    dropped: list[tuple[Any, str]] = []
    for item in solutions:
        text = text_of(item)
        norm, sh, eqs = normalise(text), shingles(text), equation_list(text)
        reason = None
        for other_norm, other_sh, other_eqs in sigs:
            if norm == other_norm:
                reason = "duplicate_solution"
            elif jaccard(sh, other_sh) >= solution_threshold:
                reason = "near_duplicate_solution"
            elif eqs and eqs == other_eqs:
                reason = "same_equations"
            if reason:
                break
        if reason is None and len(kept) >= max_per_question:
            reason = "over_limit"
        if reason:
            dropped.append((item, reason))
        else:
            kept.append(item)
            sigs.append((norm, sh, eqs))
    return kept, dropped
