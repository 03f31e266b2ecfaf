"""Decontamination: drop training items whose question overlaps an evaluation set.

Two tests, both on normalised text (NFKC, lower case, LaTeX commands and punctuation turned into
spaces, runs of spaces collapsed; see :func:`normalise`):

* **exact**: the normalised training question equals a normalised evaluation question.
* **n-gram**: the training question shares a word ``n``-gram with an evaluation question
  (``n = 13``, the test of GPT-3, Brown et al. 2020, appendix C, also used for Llama 2's
  contamination analysis, Touvron et al. 2023). An evaluation question shorter than ``n`` words
  counts as one n-gram of its own length, so a short question is caught when its whole text
  appears inside a training question (GPT-3 lowered ``n`` for short examples for the same reason).

Evaluation sets are JSONL files whose rows have a ``question`` (or ``problem``, ``prompt``,
``content``, ``input``) field; ``choices`` are appended as in the Solver's prompt. Pass every file you
evaluate on. Each drop is reported with the evaluation file, the evaluation row id and the
matching n-gram.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scireflect.rundata.jsonl import JsonlError, iter_jsonl

TEXT_KEYS = ("question", "problem", "prompt", "content", "input")
DEFAULT_N = 13


class EvalSetError(ValueError):
    """An evaluation file cannot be read (the message names the file and line)."""


def normalise(text: str) -> str:
    """Normalised text for overlap tests: NFKC, lower case, ``\\command`` names and every character
    that is not a letter or digit replaced by a space, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\\[a-z]+", " ", text)
    text = re.sub(r"[^\w]+|_", " ", text)
    return " ".join(text.split())


def question_text(row: Mapping[str, Any]) -> str | None:
    """The question text of a row (first of :data:`TEXT_KEYS`), with ``choices`` appended."""
    for key in TEXT_KEYS:
        if isinstance(row.get(key), str) and row[key].strip():
            text = row[key]
            choices = row.get("choices")
            if isinstance(choices, list) and choices:
                text += "\n" + "\n".join(str(c) for c in choices)
            return text
    return None


@dataclass
class Match:
    """Why one training item was dropped: the eval file and row, and ``exact`` or the shared n-gram."""

    eval_file: str
    eval_id: str
    kind: str  # "exact" or "ngram"
    ngram: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"eval_file": self.eval_file, "eval_id": self.eval_id, "kind": self.kind, "ngram": self.ngram}


@dataclass
class EvalIndex:
    """n-gram and exact-match index of evaluation questions.

    Attributes:
        n: the n-gram length in words.
        files: eval file -> rows indexed.
    """

    n: int = DEFAULT_N
    files: dict[str, int] = field(default_factory=dict)
    _exact: dict[str, tuple[str, str]] = field(default_factory=dict)
    _grams: dict[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)
    _short_lengths: set[int] = field(default_factory=set)

    def add(self, text: str, eval_file: str, eval_id: str) -> None:
        """Index one evaluation question."""
        norm = normalise(text)
        if not norm:
            return
        self._exact.setdefault(norm, (eval_file, eval_id))
        words = norm.split()
        if len(words) < self.n:
            self._short_lengths.add(len(words))
            self._grams.setdefault(tuple(words), (eval_file, eval_id))
        else:
            for i in range(len(words) - self.n + 1):
                self._grams.setdefault(tuple(words[i:i + self.n]), (eval_file, eval_id))

    def add_file(self, path: str | Path) -> int:
        """Index every question of a JSONL evaluation file; returns the rows indexed.

        Raises:
            EvalSetError: the file is missing, a line is not JSON, or a row has no question text.
        """
        path = Path(path)
        count = 0
        try:
            rows = list(iter_jsonl(path))
        except JsonlError as exc:
            raise EvalSetError(f"evaluation set {exc}") from None
        for lineno, row in rows:
            text = question_text(row)
            if text is None:
                raise EvalSetError(f"{path}:{lineno}: no question text (one of {', '.join(TEXT_KEYS)})")
            self.add(text, str(path), str(row.get("id", f"line {lineno}")))
            count += 1
        self.files[str(path)] = count
        return count

    def match(self, text: str) -> Match | None:
        """The first overlap of ``text`` with the index, or ``None``."""
        norm = normalise(text)
        if norm in self._exact:
            f, i = self._exact[norm]
            return Match(f, i, "exact", norm[:200])
        words = norm.split()
        for k in sorted(self._short_lengths | {self.n}, reverse=True):
            for i in range(len(words) - k + 1):
                hit = self._grams.get(tuple(words[i:i + k]))
                if hit:
                    return Match(hit[0], hit[1], "ngram", " ".join(words[i:i + k]))
        return None


def build_index(paths: Sequence[str | Path], n: int = DEFAULT_N) -> EvalIndex:
    """An :class:`EvalIndex` over the given JSONL evaluation files (see :meth:`EvalIndex.add_file`)."""
    index = EvalIndex(n=n)
    for path in paths:
        index.add_file(path)
    return index


def decontaminate(items: Iterable[Any], index: EvalIndex, text_of: Any) -> tuple[list[Any], list[tuple[Any, Match]]]:
    """Split ``items`` into (kept, dropped-with-match); ``text_of(item)`` gives an item's question text."""
    kept, dropped = [], []
    for item in items:
        hit = index.match(text_of(item))
        if hit is None:
            kept.append(item)
        else:
            dropped.append((item, hit))
    return kept, dropped
