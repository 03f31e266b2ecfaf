"""Which GGUF files the embedded server loads: the model (a ``--gguf`` file or an embedded model),
its multimodal projector and the draft model for speculative decoding."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .models import (
    DEFAULT_EMBEDDED_MODEL,
    EmbeddedModelError,
    available_embedded_models,
    materialise_embedded_model,
    resolve_embedded_model,
)
from .tuning import DRAFT_MODELS, DraftSettings


def embedded_mmproj(mmproj_path: Path | None) -> Path | None:
    """The multimodal projector GGUF to serve beside the embedded model, checked to exist.

    Raises:
        EmbeddedModelError: ``mmproj_path`` is not a file.
    """
    if mmproj_path is not None and not Path(mmproj_path).is_file():
        raise EmbeddedModelError(f"--mmproj {mmproj_path}: no such file")
    return mmproj_path


async def embedded_gguf(embedded_model: str | None, gguf_path: Path | None) -> tuple[Path, str]:
    """The GGUF file to serve and its display name: ``gguf_path`` if given, else the embedded model
    ``embedded_model`` (default: the first installed, else the default one), joined from its
    PyPI parts on first use.

    Raises:
        EmbeddedModelError: ``gguf_path`` does not exist.
        scireflect.embedded.EmbeddedModelError: the embedded model is not installed or is corrupt.
    """
    if gguf_path is not None:
        gguf = Path(gguf_path)
        if not gguf.is_file():
            raise EmbeddedModelError(f"--gguf {gguf}: no such file")
        return gguf, gguf.stem
    name = embedded_model or (available_embedded_models() or [DEFAULT_EMBEDDED_MODEL])[0]
    return await asyncio.to_thread(materialise_embedded_model, name), name


async def embedded_draft(speculative: str, served: str, gguf_path: Path | None) -> Any:
    """The draft model for speculative decoding, as :class:`~scireflect.embedded.DraftSettings`, or ``None``.

    ``speculative`` is ``off``; ``auto`` (the served embedded model's draft of
    :data:`~scireflect.embedded.DRAFT_MODELS` when it is installed; none for a ``--gguf`` file); or
    an embedded model name or alias, used as the draft whatever is served.

    Raises:
        scireflect.embedded.EmbeddedModelError: a named draft is unknown, not installed or corrupt.
    """
    if speculative == "off":
        return None
    if speculative == "auto":
        name = DRAFT_MODELS.get(served) if gguf_path is None else None
        if name is None or name not in available_embedded_models():
            return None
    else:
        name = resolve_embedded_model(speculative)
    return DraftSettings(path=await asyncio.to_thread(materialise_embedded_model, name), name=name)


__all__ = ["embedded_draft", "embedded_gguf", "embedded_mmproj"]
