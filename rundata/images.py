"""Reading the figures of a question file: untrusted images, decoded and checked before any model call.

A question row may list figures in ``images``: paths relative to the question file's directory, or
``data:image/...;base64,...`` URLs. Each one is read and decoded with Pillow before the run starts
(:func:`load_figure`); a missing or unreadable file, a file that is not an image, a format a model
endpoint does not take, too many bytes or too many pixels (a decompression bomb) is refused with a
reason (a :class:`~scireflect.agents.figures.FigureError`) that :mod:`scireflect.rundata.questions` turns
into a ``file:line`` error. A figure becomes a
reference (:mod:`scireflect.agents.figures`): its sha256, its path, its type and size in pixels.

Readers of a finished run (the viewer, the export, training) find a figure again from the run's
``run.json`` (the question file's directory, :func:`figure_root`) and the reference
(:func:`read_figure`): the path must stay inside that directory (no absolute paths, no ``..`` out
of it, no link leading out of it) and the bytes must still have the recorded sha256
(:func:`scireflect.agents.figures.read_checked`, the reader a run uses too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..agents.figures import FigureError, FigureRef, FigureStore, read_checked
from .files import MANIFEST
from .jsonl import JsonlError, read_json

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""The largest figure file accepted, in bytes (OpenAI's limit per image is 20 MB)."""
MAX_IMAGE_PIXELS = 40_000_000
"""The most pixels (width x height) a figure may have: a 200-megapixel PNG can be a few KB of
zeros that decode to gigabytes (a decompression bomb); the size is read from the header first."""
MAX_FIGURES = 16
"""The most figures one question may have."""
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
"""Pillow format -> MIME type of the formats OpenAI-compatible endpoints take."""


def decode_image(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[str, int, int]:
    """Decode ``data`` fully with Pillow and return ``(mime type, width, height)``.

    The size is checked from the header before the pixels are decoded; Pillow's own
    decompression-bomb warning is an error here.

    Raises:
        FigureError: not an image Pillow can read, a format outside :data:`FORMATS`, more than
            ``max_pixels`` pixels, or a truncated or corrupt file.
    """
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise FigureError(f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels); the limit is "
                                     f"{max_pixels / 1e6:.0f} megapixels")
                if img.format not in FORMATS:
                    raise FigureError(f"format {img.format} is not one of {', '.join(FORMATS)}")
                mime = FORMATS[img.format]
                img.load()
        except FigureError:
            raise
        except UnidentifiedImageError:
            raise FigureError("not an image (Pillow cannot identify its format)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own check, at open
            found = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
            raise FigureError(f"{size} (a decompression bomb?); the limit is {max_pixels / 1e6:.0f} megapixels") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise FigureError(f"corrupt or truncated image ({exc})") from None
    return mime, width, height


def _data_url_bytes(url: str) -> bytes:
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise FigureError("a data: URL must be 'data:image/<type>;base64,<data>'")
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise FigureError(f"the data URL holds over {MAX_IMAGE_BYTES:,} bytes; the limit is {MAX_IMAGE_BYTES:,}")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise FigureError("the data URL's base64 is invalid") from None


def resolve_figure_path(root: Path, rel: str) -> Path:
    """``root / rel`` resolved, checked to stay inside ``root`` (symbolic links followed).

    Raises:
        FigureError: ``rel`` is empty, holds a NUL character, is absolute, cannot be resolved, or
            leads out of ``root``.
    """
    if not rel or not rel.strip():
        raise FigureError("empty path")
    if "\0" in rel:
        raise FigureError("the path holds a NUL character (\\u0000), which no file name can")
    if Path(rel).is_absolute() or rel.startswith(("/", "\\")):
        raise FigureError("an absolute path; give it relative to the question file's directory")
    base = Path(root).resolve()
    try:
        target = (base / rel).resolve()
    except (OSError, ValueError) as exc:
        raise FigureError(f"cannot resolve the path ({exc})") from None
    if not target.is_relative_to(base):
        raise FigureError("the path leads out of the question file's directory")
    return target


def load_figure(spec: str, root: Path, *, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[FigureRef, bytes, Path | None]:
    """Read and decode one figure of a question row.

    Args:
        spec: a path relative to ``root``, or a ``data:image/...;base64,...`` URL.
        root: the question file's directory.

    Returns:
        ``(reference, bytes, resolved path or None for a data URL)``; the reference is
        ``{"sha256", "path", "mime", "width", "height"}``.

    Raises:
        FigureError: see :func:`decode_image` and :func:`resolve_figure_path`; also a missing or
            unreadable file and more than ``max_bytes`` bytes.
    """
    if not isinstance(spec, str):
        raise FigureError("must be a path or a data: URL (a string)")
    path: Path | None = None
    if spec.startswith("data:"):
        data = _data_url_bytes(spec)
    else:
        path = resolve_figure_path(root, spec)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise FigureError(f"{size:,} bytes; the limit is {max_bytes:,}")
            if not path.is_file():
                raise FigureError("not a file")
            data = path.read_bytes()
        except FileNotFoundError:
            raise FigureError("no such file") from None
        except OSError as exc:
            raise FigureError(f"cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise FigureError(f"{len(data):,} bytes; the limit is {max_bytes:,}")
    mime, width, height = decode_image(data)
    ref = {"sha256": hashlib.sha256(data).hexdigest(), "path": None if path is None else spec.replace("\\", "/"),
           "mime": mime, "width": width, "height": height}
    return ref, data, path


def load_figures(specs: list[Any], root: Path, store: FigureStore) -> list[FigureRef]:
    """Read every figure of one row and register it in ``store``; returns the references in order.

    Raises:
        FigureError: the first figure that cannot be used, its message starting ``image N ('spec'):``.
    """
    refs = []
    for n, spec in enumerate(specs, start=1):
        shown = spec if not isinstance(spec, str) or not spec.startswith("data:") else spec[:32] + "..."
        try:
            ref, data, path = load_figure(spec, root)
        except FigureError as exc:
            raise FigureError(f"image {n} ({shown!r}): {exc}") from None
        if path is None:
            store.add_bytes(ref["sha256"], data)
        else:
            store.add_file(ref["sha256"], path)
        refs.append(ref)
    return refs


def figure_root(run_dir: Path) -> Path | None:
    """The question file's directory of a run (from its last ``run.json`` entry), or ``None`` when unknown."""
    try:
        runs = read_json(Path(run_dir) / MANIFEST, what="the run manifest").get("runs") or []
        folder = runs[-1]["settings"]["input"].get("dir")
    except (JsonlError, AttributeError, LookupError, TypeError):
        return None
    return Path(folder) if isinstance(folder, str) and folder else None


def read_figure(root: Path | None, ref: Mapping[str, Any]) -> bytes:
    """The bytes of a recorded figure, found under ``root`` (see :func:`figure_root`) and checked.

    Raises:
        FigureError: no root or no path (an inline figure: its bytes are not kept), a path that leads
            out of ``root``, a missing file, or bytes whose sha256 is not the recorded one.
    """
    rel = ref.get("path")
    if root is None or not isinstance(rel, str):
        raise FigureError("the figure's file is unknown (inline data URL, or no question-file directory in run.json)")
    return read_checked(resolve_figure_path(root, rel), str(ref.get("sha256")), rel)


__all__ = ["FORMATS", "MAX_FIGURES", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "decode_image", "figure_root",
           "load_figure", "load_figures", "read_figure", "resolve_figure_path"]
