"""Converters for the two data sets of SciTune (Horawalavithana et al. 2023, arXiv 2307.01139), as downloaded by a user.

Both are licensed for non-commercial use only (ScienceQA: CC BY-NC-SA 4.0; SciCap: CC BY-NC-SA 4.0):
scireflect never ships them, and these converters only read the files a user has downloaded.
Image paths are written relative to the output file, and the images must lie in its folder or
below it (the rule of question files, :mod:`scireflect.rundata.images`): write the output inside the
data set's folder (the default).

:func:`convert_scienceqa`  ScienceQA (Lu et al. 2022) as its repository ships it: ``problems.json``
                           (``{pid: {question, choices, answer (index), hint, image, subject, topic,
                           grade, lecture, solution, split}}``), images in ``images/<split>/<pid>/``
                           (or ``<split>/<pid>/``), optional ``captions.json`` (``{"captions": {pid: text}}``).
                           Output: a question file (``answer`` is the letter; the hint is the question's
                           context; ``lecture`` and ``solution`` kept), for ``annotate``, ``eval`` and
                           ``train --stage instruct``.
:func:`convert_scicap`     the SciCap Challenge release (Hsu et al. 2021; 2023 challenge): ``<split>.json``
                           with ``images`` (``id``, ``file_name``, ``ocr``: list of strings) and
                           ``annotations`` (``image_id``, ``caption``, ``paragraph``, ``mention``),
                           images in a folder (``--images``, default ``<split>/`` beside the JSON).
                           Output: figure rows (``images``, ``caption``, ``ocr``, ``mentions``, no
                           question) for ``train --stage align``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..rundata.jsonl import dumps_line

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class ConvertError(ValueError):
    """A downloaded file cannot be converted; the message names the file and, where it can, the entry."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConvertError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ConvertError(f"{path}: not valid JSON ({exc})") from None


def _relative(image: Path, out: Path, where: str) -> str:
    """``image`` relative to ``out``'s folder.

    Raises:
        ConvertError: ``image`` is missing, or not in ``out``'s folder or below it.
    """
    if not image.is_file():
        raise ConvertError(f"{where}: image {image} is missing (download the data set's images too)")
    rel = os.path.relpath(image.resolve(), Path(out).resolve().parent)
    if rel.startswith(".."):
        raise ConvertError(f"{where}: image {image} is not below the output file's folder; write the output inside "
                           "the data set's folder (the default --out)")
    return Path(rel).as_posix()


def _write(out: Path, rows: Iterable[dict[str, Any]]) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    n = 0
    with open(tmp, "wb") as fh:
        for row in rows:
            fh.write(dumps_line(row))
            n += 1
    os.replace(tmp, out)
    return n


def _scienceqa_image(root: Path, split: str, pid: str, name: str) -> Path:
    for candidate in (root / "images" / split / pid / name, root / split / pid / name):
        if candidate.is_file():
            return candidate
    return root / "images" / split / pid / name


def _scienceqa_rows(root: Path, out: Path, split: str, with_images_only: bool, limit: int | None) -> Iterator[dict[str, Any]]:
    problems_path = root / "problems.json"
    problems = _read_json(problems_path)
    if not isinstance(problems, dict):
        raise ConvertError(f"{problems_path}: expected an object of problems by id")
    captions_path = root / "captions.json"
    captions = (_read_json(captions_path).get("captions") or {}) if captions_path.is_file() else {}
    n = 0
    for pid, p in problems.items():
        where = f"{problems_path} [{pid}]"
        if not isinstance(p, dict) or p.get("split") != split:
            continue
        if with_images_only and not p.get("image"):
            continue
        choices, answer = p.get("choices"), p.get("answer")
        if not isinstance(choices, list) or not isinstance(answer, int) or not 0 <= answer < len(choices) or len(choices) > len(LETTERS):
            raise ConvertError(f"{where}: needs 'choices' (a list) and 'answer' (an index into it)")
        if not isinstance(p.get("question"), str) or not p["question"].strip():
            raise ConvertError(f"{where}: needs a 'question'")
        hint = str(p.get("hint") or "").strip()
        row: dict[str, Any] = {
            "id": f"scienceqa-{pid}", "subject": str(p.get("subject") or "general"), "topic": p.get("topic"),
            "question": p["question"].strip() + (f"\n\nContext: {hint}" if hint else ""),
            "choices": [str(c) for c in choices], "answer": LETTERS[answer],
            "grade": p.get("grade"), "lecture": p.get("lecture"), "solution": p.get("solution"),
            "source": f"ScienceQA {split} {pid} (CC BY-NC-SA 4.0; not for commercial use)",
        }
        if p.get("image"):
            row["images"] = [_relative(_scienceqa_image(root, split, str(pid), str(p["image"])), out, where)]
            if captions.get(pid):
                row["caption"] = str(captions[pid])
        yield {k: v for k, v in row.items() if v is not None}
        n += 1
        if limit is not None and n >= limit:
            return


def convert_scienceqa(root: str | Path, out: str | Path | None = None, *, split: str = "test", with_images_only: bool = False,
                      limit: int | None = None) -> tuple[Path, int]:
    """Write ScienceQA's ``split`` (see the module docstring) as a question file; returns ``(out, rows)``.

    Args:
        root: the folder holding ``problems.json`` (and ``images/``, ``captions.json``).
        out: the question file (default ``root/scienceqa-<split>.jsonl``).
        with_images_only: keep only questions with an image.

    Raises:
        ConvertError: a missing or malformed file or problem, a missing image, an image outside the output's folder.
    """
    root = Path(root)
    out = Path(out) if out is not None else root / f"scienceqa-{split}.jsonl"
    rows = list(_scienceqa_rows(root, out, split, with_images_only, limit))
    if not rows:
        raise ConvertError(f"{root / 'problems.json'}: no problem of split '{split}'")
    return out, _write(out, rows)


def _strings(value: Any) -> list[str]:
    """Every non-empty string in a string or a (nested) list of them."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def convert_scicap(json_path: str | Path, out: str | Path | None = None, *, images: str | Path | None = None,
                   limit: int | None = None) -> tuple[Path, int]:
    """Write a SciCap Challenge split (see the module docstring) as figure rows; returns ``(out, rows)``.

    Each row: ``id`` (``scicap-<image id>``), ``images``, ``caption``, ``ocr`` (the release's OCR
    tokens joined by spaces), ``mentions`` (the ``mention`` sentences, else the ``paragraph`` texts).

    Raises:
        ConvertError: a missing or malformed file, an annotation of an unknown image, a missing image.
    """
    json_path = Path(json_path)
    data = _read_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise ConvertError(f"{json_path}: expected an object with 'images' and 'annotations' lists (the SciCap Challenge format)")
    folder = Path(images) if images is not None else json_path.parent / json_path.stem
    out = Path(out) if out is not None else json_path.with_name(f"scicap-{json_path.stem}.jsonl")
    by_id = {img.get("id"): img for img in data["images"] if isinstance(img, dict)}
    rows = []
    for n, ann in enumerate(data["annotations"]):
        where = f"{json_path} [annotations {n}]"
        image = by_id.get(ann.get("image_id")) if isinstance(ann, dict) else None
        if image is None or not isinstance(image.get("file_name"), str):
            raise ConvertError(f"{where}: no image with id {ann.get('image_id') if isinstance(ann, dict) else '?'} and a file_name")
        caption = str(ann.get("caption") or "").strip()
        if not caption:
            raise ConvertError(f"{where}: no caption")
        rows.append({"id": f"scicap-{image['id']}", "subject": "computer science",
                     "images": [_relative(folder / image["file_name"], out, where)], "caption": caption,
                     "ocr": " ".join(_strings(image.get("ocr"))),
                     "mentions": _strings(ann.get("mention")) or _strings(ann.get("paragraph")),
                     "source": f"SciCap {json_path.stem} {image['file_name']} (CC BY-NC-SA 4.0; not for commercial use)"})
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise ConvertError(f"{json_path}: no annotation")
    return out, _write(out, rows)


__all__ = ["ConvertError", "convert_scicap", "convert_scienceqa"]
