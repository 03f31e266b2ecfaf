"""Loading and validating question files (JSONL, one question per line).

The schema is the one of the public benchmark extracts scireflect is developed on: required ``id``
(unique string), ``question`` (non-empty string) and ``answer`` (reference answer, a string; JSON
numbers and booleans are accepted and turned into strings); optional ``subject``, ``topic``,
``unit``, ``choices`` (list of option texts, A first), ``solution``, ``level``, ``source``,
``question_type``, ``answer_type`` and any other field, which is kept and passed through.

Figures (SciTune, arXiv 2307.01139): optional ``images`` (a list of paths relative to the file's
directory, or ``data:image/...;base64,...`` URLs; see :mod:`scireflect.rundata.images`) and the figure's
text modalities ``caption`` (string), ``ocr`` (string) and ``mentions`` (a string or a list of
strings: the paragraphs that mention the figure). Each figure is decoded and checked (format, bytes,
pixels) and ``images`` becomes a list of references (sha256, path, type, size); the bytes stay in
the set's :class:`~scireflect.agents.figures.FigureStore`. Figures are decoded for the rows kept by
``subjects`` and ``limit``; the fields of every row are checked.

Formal-proof rows (miniF2F) have a ``statement`` (a Lean 4 theorem ending ``:= by sorry``) and may
have ``answer: null``: Lean checks the proof, there is no reference answer (``answer`` stays ``None``).

Validation happens for the whole file before any LLM call, so a bad line never costs a model call
and never leaves a run half-done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..agents.figures import FigureError, FigureStore
from ..verifiers.lean.source import statement_head
from .images import MAX_FIGURES, load_figures
from .jsonl import JsonlError, parse_line

REQUIRED_FIELDS = ("id", "question", "answer")
MAX_QUESTION_BYTES = 1_000_000
MAX_QUESTION_DEPTH = 32
"""Deepest nesting of lists and objects in a question row (the row is level 1; benchmark rows use 3).
A question travels in the graph's state, the checkpoints (msgpack refuses past ~255 levels) and the
traces, so a deeper row is refused when the file is loaded, with its line, before any model call."""
_NON_FINITE = {"nan", "inf", "infinity"}  # JSON NaN/Infinity literals (Python's json reads them) and their spellings


class QuestionFileError(JsonlError):
    """A question file cannot be used; the message names the file and the 1-based line."""


def is_formal_question(question: Mapping[str, Any]) -> bool:
    """Whether a row is a formal-proof task: it has a non-empty string Lean ``statement``.

    Such rows go to the formal-proof graph and the Lean checker; they may have ``answer: null``.
    """
    statement = question.get("statement")
    return isinstance(statement, str) and bool(statement.strip())


@dataclass(frozen=True)
class QuestionSet:
    """The validated questions of one file.

    Attributes:
        path: the file read.
        questions: one dict per question, in file order; ``answer`` is always a string.
        sha256: hex digest of the file's bytes (recorded in the run manifest for provenance).
        figures: the bytes of the kept questions' figures, by sha256.
    """

    path: Path
    questions: list[dict[str, Any]]
    sha256: str
    figures: FigureStore | None = None

    @property
    def has_figures(self) -> bool:
        """Whether any question of the set has a figure."""
        return any(q.get("images") for q in self.questions)

    def __len__(self) -> int:
        return len(self.questions)


def _lone_surrogate_field(value: Any, name: str = "") -> str | None:
    """The name of the first field holding a string with a lone surrogate (JSON allows the escape), else ``None``."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return name or "(row)"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and _lone_surrogate_field(key) is not None:
            return f"{name}.{key!r}" if name else repr(key)
        found = _lone_surrogate_field(item, f"{name}.{key}" if name else str(key))
        if found:
            return found
    return None


def _normalise_answer(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, list):
        return json.dumps(value)
    return None


def _figure_fields_error(row: Mapping[str, Any]) -> str | None:
    """Why a row's ``images``/``caption``/``ocr``/``mentions`` fields are malformed, else ``None``."""
    images = row.get("images")
    if images is not None:
        if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
            return "field 'images' must be a list of strings (paths relative to the question file, or data: URLs)"
        if len(images) > MAX_FIGURES:
            return f"field 'images' lists {len(images)} figures; the limit is {MAX_FIGURES}"
    for name in ("caption", "ocr"):
        if row.get(name) is not None and not isinstance(row[name], str):
            return f"field '{name}' must be a string"
    mentions = row.get("mentions")
    if mentions is not None and not (isinstance(mentions, str) or (isinstance(mentions, list) and all(isinstance(m, str) for m in mentions))):
        return "field 'mentions' must be a string or a list of strings"
    return None


def load_questions(path: str | Path, *, subjects: set[str] | None = None, limit: int | None = None,
                   max_question_bytes: int = MAX_QUESTION_BYTES) -> QuestionSet:
    """Read and validate a JSONL question file.

    Args:
        path: a ``.jsonl`` file, one JSON object a line; blank lines are skipped.
        subjects: keep only rows whose ``subject`` is in this set (after validation of every row).
        limit: keep at most this many rows (after the subject filter), in file order.
        max_question_bytes: the largest line accepted (a question is sent to a model with every
            call, and kept in the checkpoints and the traces); ``[run] max_question_bytes`` sets it.

    Returns:
        A :class:`QuestionSet`.

    Raises:
        QuestionFileError: the file is missing or unreadable, a line is not valid JSON or not an
            object, nested deeper than :data:`MAX_QUESTION_DEPTH`, ``id``/``question``/``answer`` is missing or empty, ``choices`` is not a list
            of strings, or an ``id`` repeats (the message names both lines). The whole file is
            checked first, so nothing is run on a file with any bad line. Also malformed figure
            fields, and a figure that cannot be used (missing, not an image, over the byte or pixel
            limits, outside the file's directory; see :mod:`scireflect.rundata.images`).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QuestionFileError(path, None, f"cannot read question file ({exc.strerror or exc})") from exc
    seen: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for lineno, raw_line in enumerate(raw.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        if len(raw_line) > max_question_bytes:
            raise QuestionFileError(path, lineno, f"the line is {len(raw_line):,} bytes; the limit is {max_question_bytes:,} "
                                                  "([run] max_question_bytes in --config)")
        try:
            row = parse_line(raw_line, path, lineno, max_depth=MAX_QUESTION_DEPTH)
        except JsonlError as exc:
            raise QuestionFileError(path, lineno, exc.reason) from None
        surrogate = _lone_surrogate_field(row)
        if surrogate:
            raise QuestionFileError(path, lineno, f"field '{surrogate}' holds a lone surrogate (an invalid \\ud800-\\udfff escape): "
                                                  "not text a model or a trace can carry")
        statement = row.get("statement")
        formal = is_formal_question(row)
        if statement is not None and not formal:
            raise QuestionFileError(path, lineno, "field 'statement' must be a non-empty string (a Lean 4 theorem ending ':= by sorry')")
        if formal:
            try:
                statement_head(statement)
            except ValueError as exc:
                raise QuestionFileError(path, lineno, f"field 'statement': {exc}") from None
        for name in REQUIRED_FIELDS:
            if name == "answer" and formal and row.get("answer") is None:
                continue  # a formal-proof row: Lean checks the proof, there is no reference answer
            if name not in row or row[name] is None:
                raise QuestionFileError(path, lineno, f"missing required field '{name}'")
        qid = row["id"]
        if not isinstance(qid, (str, int)) or isinstance(qid, bool) or not str(qid).strip():
            raise QuestionFileError(path, lineno, "field 'id' must be a non-empty string")
        qid = str(qid).strip()
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise QuestionFileError(path, lineno, "field 'question' must be a non-empty string")
        answer = None if formal and row.get("answer") is None else _normalise_answer(row["answer"])
        if not answer and not (formal and answer is None):
            raise QuestionFileError(path, lineno, "field 'answer' must be a non-empty string (the reference answer)")
        if answer is not None and answer.strip().lower().lstrip("+-") in _NON_FINITE:
            raise QuestionFileError(path, lineno, f"field 'answer' is {answer!r}: not a finite reference answer")
        choices = row.get("choices")
        if choices is not None and (not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)):
            raise QuestionFileError(path, lineno, "field 'choices' must be a list of strings")
        figure_error = _figure_fields_error(row)
        if figure_error:
            raise QuestionFileError(path, lineno, figure_error)
        if qid in seen:
            raise QuestionFileError(path, lineno, f"duplicate id '{qid}' (first seen on line {seen[qid]})")
        seen[qid] = lineno
        row = dict(row, id=qid, answer=answer, subject=str(row.get("subject") or "general"))
        row["_line"] = lineno
        rows.append(row)
    if not rows:
        raise QuestionFileError(path, None, "no questions in file")
    if subjects:
        rows = [r for r in rows if r["subject"] in subjects]
    if limit is not None:
        rows = rows[: max(0, limit)]
    store = FigureStore(path.parent)
    for row in rows:
        if row.get("images"):
            try:
                row["images"] = load_figures(row["images"], path.parent, store)
            except FigureError as exc:  # "image N ('spec'): cause"
                raise QuestionFileError(path, row["_line"], str(exc)) from None
            except ValueError as exc:  # whatever a path check missed: still at its line, with its cause
                raise QuestionFileError(path, row["_line"], f"field 'images': {exc}") from None
    return QuestionSet(path=path, questions=rows, sha256=hashlib.sha256(raw).hexdigest(), figures=store)


def select_shard(questions: QuestionSet, spec: str) -> QuestionSet:
    """Keep shard ``K`` of ``N`` (``spec`` = ``"K/N"``, 0-based) by a stable hash of each id.

    The hash is sha1 of the id, so every process and machine agrees on the split whatever the
    file order; the shards of one file are disjoint and together hold every question.

    Raises:
        ValueError: ``spec`` is not ``K/N`` with ``0 <= K < N``.
    """
    k_text, sep, n_text = spec.partition("/")
    try:
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"expected K/N, got '{spec}'") from None
    if not sep or n < 1 or not 0 <= k < n:
        raise ValueError(f"expected K/N with 0 <= K < N, got '{spec}'")
    return replace(questions, questions=[q for q in questions.questions if stable_bucket(q["id"], n) == k])


def stable_bucket(question_id: str, n: int) -> int:
    """A bucket in ``[0, n)`` for a question id: sha1-based, so the same on every process and machine."""
    return int.from_bytes(hashlib.sha1(question_id.encode("utf-8")).digest()[:8], "big") % n
