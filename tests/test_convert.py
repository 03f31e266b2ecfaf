"""ScienceQA and SciCap converters on tiny hand-made files in their formats (the real sets are never shipped)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from scireflect.rundata.questions import load_questions
from scireflect.training.convert import ConvertError, convert_scicap, convert_scienceqa


def _png(path: Path, colour=(10, 120, 200)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), colour).save(path)


@pytest.fixture
def scienceqa(tmp_path: Path) -> Path:
    """problems.json with a test question with an image (and a hint), one without, and one of another split."""
    root = tmp_path / "ScienceQA"
    root.mkdir()
    problems = {
        "7": {"question": "Which solution has a higher concentration of purple particles?", "choices": ["neither", "Solution A", "Solution B"],
              "answer": 2, "hint": "The diagram shows two solutions.", "image": "image.png", "task": "closed choice", "grade": "grade5",
              "subject": "natural science", "topic": "chemistry", "category": "Solutions", "skill": "concentration",
              "lecture": "A solution is made of a solute dissolved in a solvent.", "solution": "Solution B has more particles per volume.",
              "split": "test"},
        "8": {"question": "What is the capital of Utah?", "choices": ["Salt Lake City", "Denver"], "answer": 0, "hint": "", "image": None,
              "subject": "social science", "topic": "geography", "lecture": "", "solution": "Salt Lake City is the capital.",
              "split": "test"},
        "9": {"question": "Which is a mammal?", "choices": ["frog", "whale"], "answer": 1, "hint": "", "image": "image.png",
              "subject": "natural science", "topic": "biology", "split": "train"},
    }
    (root / "problems.json").write_text(json.dumps(problems))
    (root / "captions.json").write_text(json.dumps({"captions": {"7": "Two beakers with purple particles."}}))
    _png(root / "images" / "test" / "7" / "image.png")
    _png(root / "images" / "train" / "9" / "image.png")
    return root


def test_scienceqa_becomes_a_question_file_with_checked_figures(scienceqa):
    out, n = convert_scienceqa(scienceqa)
    assert out == scienceqa / "scienceqa-test.jsonl" and n == 2
    qs = load_questions(out)
    first, second = qs.questions
    assert first["id"] == "scienceqa-7" and first["answer"] == "C" and first["choices"][2] == "Solution B"
    assert first["question"].endswith("Context: The diagram shows two solutions.")
    assert first["images"][0]["path"] == "images/test/7/image.png" and first["images"][0]["width"] == 24
    assert first["caption"] == "Two beakers with purple particles." and first["lecture"].startswith("A solution")
    assert "not for commercial use" in first["source"] and first["subject"] == "natural science"
    assert second["answer"] == "A" and "images" not in second
    assert convert_scienceqa(scienceqa, split="test", with_images_only=True)[1] == 1


def test_scienceqa_errors_name_the_file_and_problem(scienceqa, tmp_path):
    (scienceqa / "images" / "test" / "7" / "image.png").unlink()
    with pytest.raises(ConvertError, match=r"problems.json \[7\]: image .* is missing"):
        convert_scienceqa(scienceqa)
    _png(scienceqa / "images" / "test" / "7" / "image.png")
    with pytest.raises(ConvertError, match="not below the output file's folder"):
        convert_scienceqa(scienceqa, tmp_path / "elsewhere" / "q.jsonl")
    with pytest.raises(ConvertError, match="no problem of split 'val'"):
        convert_scienceqa(scienceqa, split="val")
    problems = json.loads((scienceqa / "problems.json").read_text())
    problems["8"]["answer"] = 5
    (scienceqa / "problems.json").write_text(json.dumps(problems))
    with pytest.raises(ConvertError, match=r"\[8\]: needs 'choices' .* 'answer' \(an index"):
        convert_scienceqa(scienceqa)


def test_scicap_becomes_figure_rows_with_the_three_modalities(tmp_path):
    root = tmp_path / "scicap"
    data = {"images": [{"id": 101, "file_name": "2001.00001v1-Figure2-1.png", "ocr": ["accuracy", "0.8", "epochs"]},
                       {"id": 102, "file_name": "2001.00002v1-Figure1-1.png", "ocr": []}],
            "annotations": [{"image_id": 101, "id": 1, "caption": "Accuracy against training epochs.",
                             "paragraph": ["We train for 50 epochs (Figure 2)."], "mention": [["As Figure 2 shows, accuracy saturates."]]},
                            {"image_id": 102, "id": 2, "caption": "Overview of the model.", "paragraph": ["Figure 1 gives an overview."],
                             "mention": []}]}
    root.mkdir()
    (root / "val.json").write_text(json.dumps(data))
    _png(root / "val" / "2001.00001v1-Figure2-1.png")
    _png(root / "val" / "2001.00002v1-Figure1-1.png", (0, 0, 0))
    done = subprocess.run([sys.executable, "-m", "scireflect.cli", "convert", "scicap", str(root / "val.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (root / "scicap-val.jsonl").read_text().splitlines()]
    assert rows[0] == {"id": "scicap-101", "subject": "computer science", "images": ["val/2001.00001v1-Figure2-1.png"],
                       "caption": "Accuracy against training epochs.", "ocr": "accuracy 0.8 epochs",
                       "mentions": ["As Figure 2 shows, accuracy saturates."],
                       "source": "SciCap val 2001.00001v1-Figure2-1.png (CC BY-NC-SA 4.0; not for commercial use)"}
    assert rows[1]["mentions"] == ["Figure 1 gives an overview."] and rows[1]["ocr"] == ""  # paragraphs when no mention
    (root / "bad.json").write_text(json.dumps({"images": [], "annotations": [{"image_id": 5, "caption": "x"}]}))
    with pytest.raises(ConvertError, match=r"bad.json \[annotations 0\]: no image with id 5"):
        convert_scicap(root / "bad.json")
