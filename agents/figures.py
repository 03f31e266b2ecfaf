"""Figures of a question: references in the state and the traces, bytes only on the way to a model.

A question with figures carries, in its ``images`` field, one *reference* per figure (plain JSON,
so it can sit in the graph's state, the checkpoints and ``traces.jsonl``)::

    {"sha256": "<hex digest of the file's bytes>", "path": "figs/slope.png", "mime": "image/png",
     "width": 640, "height": 480}

``path`` is relative to the question file's directory (``None`` for a figure given inline as a
``data:`` URL). The bytes never enter the state or a trace: a :class:`FigureStore` holds where each
figure's bytes are and hands them out, checked against the sha256, when a prompt is built
(:class:`scireflect.agents.prompts.FigurePrompts`). A model receives each figure as an OpenAI
``image_url`` content part holding a base64 ``data:`` URL; a trace records the same part with the
reference in place of the URL (:func:`recorded_content`).

The references are made, and every figure decoded and checked, by
:mod:`scireflect.rundata.images` when the question file is read. Whatever goes wrong with a figure
is a :class:`FigureError`, and its bytes are read again only by :func:`read_checked`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FigureRef = dict[str, Any]
"""``{"sha256", "path", "mime", "width", "height"}`` (see the module docstring)."""

TEXT_MODALITIES = ("caption", "ocr", "mentions")
"""SciTune's text modalities of a figure (Horawalavithana et al. 2023, arXiv 2307.01139): its
caption, the text written in it (OCR) and the paper's paragraphs that mention it."""


FIGURE_MODES = ("image", "text", "both")
"""How a question's figures reach the models: ``image`` (the pixels, as ``image_url`` parts),
``text`` (SciTune's text modalities instead: caption, OCR, mentions; for text-only models) or
``both``."""


class FigureError(ValueError):
    """A figure cannot be used, or its bytes cannot be had; the message says why.

    The one error of figures, wherever they are read: a question file's figure that is not a usable
    image (:mod:`scireflect.rundata.images`: missing, too big, not an image, a path out of the
    question file's directory), and a figure whose file is gone or changed since the question file
    was read (:func:`read_checked`: during a run, or when a finished run is viewed, exported or
    trained on).
    """


def figure_refs(question: Mapping[str, Any]) -> list[FigureRef]:
    """The figure references of a question (``[]`` when it has none)."""
    images = question.get("images")
    return [ref for ref in images if isinstance(ref, Mapping)] if isinstance(images, list) else []


def read_checked(path: Path, sha256: str, name: str) -> bytes:
    """The bytes of the figure file ``path``, checked against the ``sha256`` recorded when its question
    file was read: the one reader of a figure's bytes (:class:`FigureStore` during a run,
    :func:`scireflect.rundata.images.read_figure` for a finished run).

    Args:
        name: how the figure is named in an error message (e.g. ``figure /data/figs/a.png``).

    Raises:
        FigureError: the file cannot be read, or its bytes changed (the sha256 differs).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FigureError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise FigureError(f"{name} changed since the question file was read (sha256 differs)")
    return data


def data_url(mime: str, data: bytes) -> str:
    """``data:<mime>;base64,<...>``: how a figure travels to an OpenAI-compatible endpoint."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_part(url: str) -> dict[str, Any]:
    """An OpenAI chat ``image_url`` content part."""
    return {"type": "image_url", "image_url": {"url": url}}


class FigureStore:
    """Where the bytes of each figure of a run are, by sha256.

    Args:
        root: the question file's directory; ``path`` references are read under it.

    A figure is registered by the question-file reader (:meth:`add_file` for a file, :meth:`add_bytes`
    for an inline ``data:`` URL, kept in memory). :meth:`read` returns the bytes and checks them
    against the sha256, so a file replaced during a run is an error, never a silently different figure.
    """

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else None
        self._files: dict[str, Path] = {}
        self._inline: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(set(self._files) | set(self._inline))

    def __contains__(self, sha256: object) -> bool:
        return sha256 in self._files or sha256 in self._inline

    def add_file(self, sha256: str, path: Path) -> None:
        """Register a figure read from ``path`` (absolute, already checked by the reader)."""
        self._files.setdefault(sha256, Path(path))

    def add_bytes(self, sha256: str, data: bytes) -> None:
        """Register an inline figure (decoded from a ``data:`` URL)."""
        self._inline.setdefault(sha256, bytes(data))

    def read(self, ref: Mapping[str, Any]) -> bytes:
        """The bytes of the figure ``ref``, checked against its sha256.

        Raises:
            FigureError: the figure is not registered, its file cannot be read, or its bytes changed.
        """
        sha = str(ref.get("sha256") or "")
        if sha in self._inline:
            return self._inline[sha]
        path = self._files.get(sha)
        if path is None:
            raise FigureError(f"figure {ref.get('path') or sha[:12]} is not among the figures of the question file")
        return read_checked(path, sha, f"figure {path}")

    def data_urls(self, refs: Sequence[Mapping[str, Any]]) -> list[str]:
        """One ``data:`` URL per reference, in order (see :meth:`read` for the errors)."""
        return [data_url(str(ref.get("mime") or "image/png"), self.read(ref)) for ref in refs]


def recorded_content(content: Any, references: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """A message's content as a trace keeps it: text as it is; each ``image_url`` part with its
    figure reference (sha256, path) instead of the base64 URL.

    Args:
        content: a LangChain message's content (a string, or a list of content parts).
        references: ``{data URL: figure reference}`` of the figures the prompt attached; a ``data:``
            URL not in it is recorded by the sha256 of its decoded bytes.

    Returns:
        A string, or a list of ``{"type": "text", "text"}`` and
        ``{"type": "image_url", "image_url": {"sha256", "path"}}`` parts.
    """
    if isinstance(content, str):
        return content
    parts: list[Any] = []
    for part in content or []:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
        elif isinstance(part, Mapping) and part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url") or "")
            ref = (references or {}).get(url)
            if ref is None:
                ref = {"sha256": _data_url_digest(url), "path": None if url.startswith("data:") else url}
            parts.append({"type": "image_url", "image_url": {"sha256": ref.get("sha256"), "path": ref.get("path")}})
        elif isinstance(part, Mapping):
            parts.append(dict(part))
    return parts


def content_text(content: Any) -> str:
    """The text of a message's content: the string, or its text parts joined (image parts left out)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else str(content)
    return "".join(str(p.get("text", "")) if isinstance(p, Mapping) and p.get("type") == "text" else (p if isinstance(p, str) else "")
                   for p in content or [])


def content_figures(content: Any) -> list[dict[str, Any]]:
    """The figure references of a recorded message's ``image_url`` parts (``[]`` for plain text)."""
    if isinstance(content, str) or not isinstance(content, list):
        return []
    return [dict(p["image_url"]) for p in content
            if isinstance(p, Mapping) and p.get("type") == "image_url" and isinstance(p.get("image_url"), Mapping)]


def _data_url_digest(url: str) -> str | None:
    if not url.startswith("data:") or "," not in url:
        return None
    try:
        return hashlib.sha256(base64.b64decode(url.split(",", 1)[1], validate=True)).hexdigest()
    except ValueError:
        return None


__all__ = ["FIGURE_MODES", "TEXT_MODALITIES", "FigureError", "FigureRef", "FigureStore", "content_figures", "content_text", "data_url",
           "figure_refs", "image_part", "read_checked", "recorded_content"]
