"""Figures in question files: untrusted images checked before any model call, with file and line.

A bad image path, a text file named ``.png``, a 200-megapixel PNG (a few KB that would decode to
gigabytes), a path out of the file's directory and a broken data URL each stop ``scireflect annotate``
with ``file:line`` and the reason, before a run directory is made. Good figures become references
(sha256, path), and their bytes come from the figure store, checked against the sha256.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from scireflect.agents.figures import FigureError, recorded_content
from scireflect.agents.prompts import ANSWER_PROMPTS, FigurePrompt, FigurePrompts
from scireflect.rundata.images import decode_image, read_figure, resolve_figure_path
from scireflect.rundata.questions import QuestionFileError, load_questions


def png_bytes(size=(40, 30), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int = 20_000, height: int = 10_000) -> bytes:
    """A valid 1-bit PNG of width x height zero pixels: 200 megapixels in about 25 KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    raw = zlib.compress(row * height, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def question_file(tmp_path: Path, specs: list[str], **extra) -> Path:
    (tmp_path / "figs").mkdir(exist_ok=True)
    (tmp_path / "figs" / "good.png").write_bytes(png_bytes())
    rows = [{"id": "ok", "question": "What is the slope?", "answer": "2", "unit": "m/s", "images": ["figs/good.png"]},
            {"id": "bad", "question": "And here?", "answer": "3", "images": specs, **extra}]
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scireflect.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind, message", [
    ("missing", "image 1 ('figs/nope.png'): no such file"),
    ("text_as_png", "image 1 ('figs/notes.png'): not an image"),
    ("bomb", "image 1 ('figs/bomb.png'): 200 megapixels (a decompression bomb?); the limit is 40 megapixels"),
])
def test_bad_figures_stop_annotate_naming_file_and_line_and_nothing_is_written(tmp_path, kind, message):
    (tmp_path / "figs").mkdir()
    spec = {"missing": "figs/nope.png", "text_as_png": "figs/notes.png", "bomb": "figs/bomb.png"}[kind]
    if kind == "text_as_png":
        (tmp_path / "figs" / "notes.png").write_text("these are my notes, not a picture\n")
    if kind == "bomb":
        (tmp_path / "figs" / "bomb.png").write_bytes(bomb_png())
        assert (tmp_path / "figs" / "bomb.png").stat().st_size < 100_000
    questions = question_file(tmp_path, [spec])
    run_dir = tmp_path / "run"
    done = _cli("annotate", str(questions), "--out", str(run_dir), "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert done.returncode == 2, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert f"{questions}:2: {message}" in err, err
    assert "Traceback" not in done.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize("spec, message", [
    ("../outside.png", "leads out of the question file's directory"),
    ("/etc/hostname", "an absolute path"),
    ("data:image/png;base64,@@@", "the data URL's base64 is invalid"),
    ("data:text/plain;base64,aGk=", "a data: URL must be 'data:image/<type>;base64,<data>'"),
    ("figs", "not a file"),
])
def test_figure_paths_stay_in_the_question_files_directory(tmp_path, spec, message):
    (tmp_path / "outside.png").write_bytes(png_bytes())
    sub = tmp_path / "sub"
    sub.mkdir()
    path = question_file(sub, [spec])
    with pytest.raises(QuestionFileError) as info:
        load_questions(path)
    assert info.value.line == 2 and message in str(info.value)


def test_a_link_out_of_the_directory_is_refused(tmp_path):
    (tmp_path / "secret.png").write_bytes(png_bytes())
    sub = tmp_path / "sub"
    (sub / "figs").mkdir(parents=True)
    (sub / "figs" / "link.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(FigureError, match="leads out"):
        resolve_figure_path(sub, "figs/link.png")


@pytest.mark.parametrize("field, value, message", [
    ("images", "figs/good.png", "field 'images' must be a list of strings"),
    ("caption", 3, "field 'caption' must be a string"),
    ("mentions", [1], "field 'mentions' must be a string or a list of strings"),
    ("images", ["figs/good.png"] * 17, "lists 17 figures; the limit is 16"),
])
def test_malformed_figure_fields_are_line_errors(tmp_path, field, value, message):
    path = question_file(tmp_path, [], **{field: value})
    with pytest.raises(QuestionFileError) as info:
        load_questions(path)
    assert info.value.line == 2 and message in str(info.value)


def test_images_over_the_limit_but_under_pillows_are_refused_from_their_header():
    with pytest.raises(FigureError, match=r"8000x6000 pixels \(48 megapixels\); the limit is 40 megapixels"):
        decode_image(bomb_png(8000, 6000))


def test_truncated_and_unsupported_images_are_refused():
    data = png_bytes((300, 200))
    with pytest.raises(FigureError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2])
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "BMP")
    with pytest.raises(FigureError, match="format BMP is not one of PNG, JPEG, GIF, WEBP"):
        decode_image(buf.getvalue())


def test_figures_become_references_and_their_bytes_come_from_the_store(tmp_path):
    inline = png_bytes((8, 8), (0, 0, 255))
    url = "data:image/png;base64," + base64.b64encode(inline).decode()
    path = question_file(tmp_path, [url, "figs/good.png"], caption="A red square.", ocr="R = 5", mentions="see Fig. 2")
    qs = load_questions(path)
    assert qs.has_figures and len(qs.figures) == 2  # the same file twice is one figure
    refs = qs.questions[1]["images"]
    assert refs[0] == {"sha256": hashlib.sha256(inline).hexdigest(), "path": None, "mime": "image/png", "width": 8, "height": 8}
    assert refs[1]["path"] == "figs/good.png" and refs[1]["sha256"] == hashlib.sha256(png_bytes()).hexdigest()
    assert "base64" not in json.dumps(qs.questions)  # the row keeps references, never the bytes

    prompts = FigurePrompts(ANSWER_PROMPTS, qs.figures, "image")
    template, variables = prompts.solve(qs.questions[1], "physics")
    assert isinstance(template, FigurePrompt)
    messages = template.format_messages(**variables)
    human = messages[-1].content
    assert [p["type"] for p in human] == ["image_url", "image_url", "text"]
    assert human[0]["image_url"]["url"] == url
    recorded = recorded_content(human, template.image_refs)
    assert recorded[1] == {"type": "image_url", "image_url": {"sha256": refs[1]["sha256"], "path": "figs/good.png"}}
    assert "base64" not in json.dumps(recorded)

    # Text mode: no pixels, the caption, OCR text and mentions in the problem instead.
    template, variables = FigurePrompts(ANSWER_PROMPTS, qs.figures, "text").solve(qs.questions[1], "physics")
    text = template.format_messages(**variables)[-1].content
    assert isinstance(text, str) and "Figure caption: A red square." in text and "(OCR): R = 5" in text and "- see Fig. 2" in text

    # A figure file replaced after the file was read is an error, never a silently different figure.
    (tmp_path / "figs" / "good.png").write_bytes(png_bytes(colour=(0, 255, 0)))
    with pytest.raises(FigureError, match="changed since the question file was read"):
        prompts.solve(qs.questions[1], "physics")
    with pytest.raises(FigureError, match="sha256 differs"):
        read_figure(tmp_path, refs[1])


def test_figure_settings_are_checked_before_anything_runs(tmp_path):
    from scireflect.run.config import ConfigError, load_settings

    assert load_settings(figures="text", ocr=False).figures == "text"
    config = tmp_path / "c.toml"
    config.write_text('[run]\nfigures = "both"\nocr_timeout_s = 5\n')
    settings = load_settings(config)
    assert settings.figures == "both" and settings.ocr and settings.ocr_timeout_s == 5.0
    with pytest.raises(ConfigError, match="figures must be one of image, text, both, not 'pixels'"):
        load_settings(figures="pixels")
    with pytest.raises(ConfigError, match="--mmproj goes with the embedded model"):
        load_settings(base_url=["http://127.0.0.1:9/v1"], model="m", mmproj_path=tmp_path / "p.gguf")


def test_text_sft_refuses_rows_with_image_parts(tmp_path):
    from scireflect.training.data import SFTDataError, load_sft_rows

    rows = tmp_path / "train.jsonl"
    rows.write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": [{"type": "image", "path": "images/x.png"},
                                                                                      {"type": "text", "text": "q"}]},
                                                        {"role": "assistant", "content": "a"}]}) + "\n")
    with pytest.raises(SFTDataError, match="train.jsonl:1: the messages carry image parts: .*--stage instruct"):
        load_sft_rows(rows)


def test_one_ocr_helper_warns_once_without_tesseract_and_per_question_for_a_changed_figure(tmp_path, monkeypatch):
    """FigureOcr, the OCR helper of annotate and eval: without Tesseract, one warning and the questions
    as they are; a figure changed on disk, a warning naming the question (or, with no warn, the error)."""
    import asyncio

    from scireflect.rundata import ocr
    from scireflect.rundata.ocr import FigureOcr, OcrUnavailable

    qs = load_questions(question_file(tmp_path, ["figs/good.png"]))
    warnings: list[str] = []

    def missing() -> str:
        raise OcrUnavailable("tesseract is not installed")

    monkeypatch.setattr(ocr, "tesseract_version", missing)
    helper = FigureOcr(warn=warnings.append)
    assert [asyncio.run(helper.fill(q, qs.figures)) for q in qs.questions] == qs.questions
    assert warnings == ["no OCR of figures: tesseract is not installed"] and helper.unavailable
    assert asyncio.run(FigureOcr().fill(qs.questions[0], qs.figures)) == qs.questions[0]  # no warn: silent

    monkeypatch.setattr(ocr, "tesseract_version", lambda: "5.0")
    (tmp_path / "figs" / "good.png").write_bytes(png_bytes(colour=(0, 255, 0)))
    warnings.clear()
    assert asyncio.run(FigureOcr(warn=warnings.append).fill(qs.questions[1], qs.figures)) == qs.questions[1]
    assert len(warnings) == 1 and warnings[0].startswith("question bad: no OCR (figure ") and "sha256 differs" in warnings[0]
    with pytest.raises(FigureError, match="changed since the question file was read"):
        asyncio.run(FigureOcr().fill(qs.questions[1], qs.figures))
