"""OCR of a figure with Tesseract, offline, for SciTune's ``ocr`` modality.

A question with figures and no ``ocr`` text gets one before its first model call
(:class:`FigureOcr`, the one helper of ``scireflect annotate`` and ``scireflect eval``, over
:func:`fill_ocr`): each figure is decoded by Pillow (already checked by :mod:`scireflect.rundata.images`),
re-encoded and read by the ``tesseract`` program (Debian's ``tesseract-ocr``, English) through
``pytesseract``, with a time limit per figure. The text goes to models that cannot see images
(``--figures text``), to the trace, and to the alignment stage of vision-language training
(``scireflect train --stage align``). A figure Tesseract cannot read in time gets no text, never an error.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from ..agents.figures import FigureError, FigureStore, figure_refs


class OcrUnavailable(RuntimeError):
    """Tesseract is not installed (the message says how to install it)."""


@lru_cache(maxsize=1)
def tesseract_version() -> str:
    """The installed Tesseract's version, e.g. ``5.3.0``.

    Raises:
        OcrUnavailable: no ``tesseract`` program (or no ``pytesseract``).
    """
    try:
        import pytesseract

        return str(pytesseract.get_tesseract_version())
    except ImportError:  # pragma: no cover - pytesseract is a dependency
        raise OcrUnavailable("pytesseract is not installed (pip install pytesseract)") from None
    except (OSError, RuntimeError) as exc:
        raise OcrUnavailable(f"tesseract is not installed ({type(exc).__name__}); install it: apt-get install tesseract-ocr") from None


def ocr_image(data: bytes, *, timeout_s: float = 30.0, lang: str = "eng") -> str:
    """The text Tesseract reads in an image (page segmentation 11: sparse text, as in plots), whitespace collapsed.

    Returns ``""`` when Tesseract finds nothing or runs out of time.

    Raises:
        OcrUnavailable: see :func:`tesseract_version`.
    """
    import pytesseract
    from PIL import Image

    tesseract_version()
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB")
    try:
        text = pytesseract.image_to_string(rgb, lang=lang, config="--psm 11", timeout=timeout_s)
    except RuntimeError:  # pytesseract: "Tesseract process timeout"
        return ""
    return re.sub(r"\s+", " ", text).strip()


async def fill_ocr(question: Mapping[str, Any], store: FigureStore, *, timeout_s: float = 30.0) -> dict[str, Any]:
    """The question with ``ocr`` filled from its figures when it has figures and no ``ocr`` text.

    Each figure is read in a worker thread (Tesseract is a child process); the texts are joined by
    newlines. ``ocr_source`` records ``tesseract <version>``. A question with an ``ocr`` already, or
    without figures, is returned unchanged (as a copy).

    Raises:
        OcrUnavailable: Tesseract is not installed.
        scireflect.agents.figures.FigureError: a figure's bytes cannot be had any more.
    """
    question = dict(question)
    refs = figure_refs(question)
    if not refs or str(question.get("ocr") or "").strip():
        return question
    version = tesseract_version()
    texts = []
    for ref in refs:
        data = store.read(ref)
        texts.append(await asyncio.to_thread(ocr_image, data, timeout_s=timeout_s))
    question["ocr"] = "\n".join(t for t in texts if t)
    question["ocr_source"] = f"tesseract {version}"
    return question


class FigureOcr:
    """Fills the missing ``ocr`` of the questions of a run or an evaluation, one question at a time.

    Without Tesseract, the questions go as they are: :meth:`fill` warns once and then no longer
    tries. A figure whose bytes cannot be had any more gets a warning and its question goes as it is.

    Args:
        timeout_s: Tesseract's time limit per figure.
        warn: called with each warning's message. ``None`` (``scireflect eval``): no warnings, and a
            figure whose bytes cannot be had raises its :class:`~scireflect.agents.figures.FigureError`.
    """

    def __init__(self, *, timeout_s: float = 30.0, warn: Callable[[str], None] | None = None):
        self.timeout_s, self.warn = timeout_s, warn
        self.unavailable = False
        """Whether Tesseract turned out to be missing (then :meth:`fill` no longer tries)."""

    async def fill(self, question: dict[str, Any], store: FigureStore | None) -> dict[str, Any]:
        """``question`` with its missing ``ocr`` read from its figures in ``store`` (:func:`fill_ocr`);
        as it is without figures, without a store, or without Tesseract."""
        if self.unavailable or store is None or not question.get("images"):
            return question
        try:
            return await fill_ocr(question, store, timeout_s=self.timeout_s)
        except OcrUnavailable as exc:
            self.unavailable = True
            if self.warn is not None:
                self.warn(f"no OCR of figures: {exc}")
        except FigureError as exc:
            if self.warn is None:
                raise
            self.warn(f"question {question['id']}: no OCR ({exc})")
        return question


__all__ = ["FigureOcr", "OcrUnavailable", "fill_ocr", "ocr_image", "tesseract_version"]
