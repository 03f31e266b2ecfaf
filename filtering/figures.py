"""Figures in an export: each example's images found again, checked, and written the way each format wants.

The figures of a run are read from the question file's directory that the run's ``run.json``
records (:func:`scireflect.rundata.images.figure_root`), the path checked to stay inside it and the bytes
checked against the trace's sha256 (:func:`scireflect.rundata.images.read_figure`). Then, by format:

``jsonl`` / ``sharegpt``  an ``images`` list of paths inside the export (``images/<sha256>.<ext>``,
                          each figure written once); ShareGPT's human turn starts with ``<image>``
                          once per figure (the LLaVA convention).
``messages``              the same ``images`` list, and the user turn's content becomes the usual
                          multimodal chat form: ``[{"type": "image", "path": ...}, ..., {"type":
                          "text", "text": prompt}]`` (what ``scireflect train`` and the transformers
                          processors' chat templates read).
``hf``                    an ``images`` column of ``datasets.List(datasets.Image())`` holding the bytes
                          (``datasets.load_from_disk`` yields PIL images); no separate files.

Rows without figures are left as they are (``hf`` gives them an empty ``images`` list when any
row has figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scireflect.agents.figures import FigureError, figure_refs
from scireflect.rundata.images import figure_root, read_figure

from .examples import Attempt

IMAGES_DIR = "images"
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class FigureWriter:
    """Finds each exported example's figures and writes them under ``out_dir/images`` (once per sha256).

    Args:
        out_dir: the export folder being written; ``None`` keeps the bytes in memory only (``hf``).
    """

    def __init__(self, out_dir: Path | None):
        self.out_dir = out_dir
        self.written: dict[str, str] = {}
        self._roots: dict[str, Path | None] = {}

    def figures(self, attempt: Attempt) -> list[tuple[str, bytes]]:
        """``[(path inside the export, bytes)]`` of the example's figures, in order.

        Raises:
            scireflect.agents.figures.FigureError: a figure cannot be read or its bytes changed (the
                message names the run, the question and the figure).
        """
        out = []
        for ref in figure_refs(attempt.question):
            if attempt.run not in self._roots:
                self._roots[attempt.run] = figure_root(Path(attempt.run))
            try:
                data = read_figure(self._roots[attempt.run], ref)
            except FigureError as exc:
                raise FigureError(f"run {attempt.run}, question {attempt.qid}: figure {ref.get('path')}: {exc}") from None
            sha = str(ref["sha256"])
            name = f"{IMAGES_DIR}/{sha}.{_EXTENSIONS.get(str(ref.get('mime')), 'png')}"
            if self.out_dir is not None and sha not in self.written:
                (self.out_dir / IMAGES_DIR).mkdir(exist_ok=True)
                (self.out_dir / name).write_bytes(data)
                self.written[sha] = name
            out.append((name, data))
        return out


def figure_key(question: dict[str, Any]) -> str:
    """The sha256s of a question's figures joined by ``+`` (``""`` without figures): deduplication
    merges two questions only when their figures are the same (the same words about two different
    plots are two questions)."""
    return "+".join(str(ref.get("sha256")) for ref in figure_refs(question))


def with_figures(row: dict[str, Any], fmt: str, figures: list[tuple[str, bytes]]) -> dict[str, Any]:
    """``row`` of format ``fmt`` with its figures (see the module docstring); unchanged without figures."""
    if fmt == "hf":
        return {**row, "images": [{"bytes": data, "path": name} for name, data in figures]}
    if not figures:
        return row
    paths = [name for name, _ in figures]
    row = {**row, "images": paths}
    if fmt == "messages":
        messages = [dict(m) for m in row["messages"]]
        user = messages[0]
        user["content"] = [*({"type": "image", "path": p} for p in paths), {"type": "text", "text": user["content"]}]
        row["messages"] = messages
    elif fmt == "sharegpt":
        turns = [dict(t) for t in row["conversations"]]
        turns[0]["value"] = "<image>\n" * len(paths) + turns[0]["value"]
        row["conversations"] = turns
    return row


def hf_dataset(rows: list[dict[str, Any]]) -> Any:
    """A ``datasets.Dataset`` of the rows; an ``images`` column of ``List(Image())`` when any row has figures."""
    import datasets

    if not any(row.get("images") for row in rows):
        return datasets.Dataset.from_list([{k: v for k, v in row.items() if k != "images"} for row in rows])
    ds = datasets.Dataset.from_list(rows)
    return ds.cast_column("images", datasets.List(datasets.Image()))


__all__ = ["IMAGES_DIR", "FigureWriter", "figure_key", "hf_dataset", "with_figures"]
