"""The shipped figure sample: every reference answer passes the unit-aware verifier, and the generator
still draws exactly the shipped figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from scireflect.rundata.questions import load_questions
from scireflect.verifiers import verify_answer

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "figures"
ROWS = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
# The same quantity in another unit, as a model might write it: the verifier converts.
OTHER_UNIT = {"m/s": ("km/h", 3.6), "m": ("cm", 100), "m/s^2": ("cm/s^2", 100), "N/m": ("N/cm", 0.01), "cm": ("mm", 10),
              "A": ("mA", 1000), "mA": ("A", 0.001), "Ω": ("kΩ", 0.001), "mol/L": ("mmol/L", 1000), "h": ("min", 60),
              "day": ("h", 24), "s": ("ms", 1000)}


def test_the_sample_is_a_valid_question_file_with_one_checked_figure_each():
    qs = load_questions(SAMPLE / "questions.jsonl")
    assert len(qs) == 30 and len(qs.figures) == 30
    assert {q["subject"] for q in qs.questions} == {"physics", "chemistry"}
    for q in qs.questions:
        [ref] = q["images"]
        assert ref["mime"] == "image/png" and ref["width"] >= 500 and q["caption"] and q["mentions"]
        assert "ocr" not in q  # read by Tesseract at annotation time
        assert q["answer"] not in q["caption"] + " ".join(q["mentions"])


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_every_reference_answer_is_checked_by_the_unit_aware_verifier(row):
    question = {k: v for k, v in row.items() if k != "images"}
    value = float(row["answer"])
    assert verify_answer(f"Reading the figure, the result is \\boxed{{{row['answer']}}}.", question).ok is True
    unit, factor = OTHER_UNIT[row["unit"]]
    converted = verify_answer(f"\\boxed{{{value * factor:.6g}\\ \\mathrm{{{unit}}}}}", question)
    assert converted.ok is True and converted.reason == "unit_converted", converted
    assert verify_answer(f"\\boxed{{{value * 1.2:.6g}}}", question).ok is False


def test_the_generator_draws_the_shipped_figures(tmp_path):
    pytest.importorskip("matplotlib")
    import numpy as np
    from PIL import Image

    spec = importlib.util.spec_from_file_location("figure_sample_generate", SAMPLE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.generate(tmp_path)
    assert (tmp_path / "questions.jsonl").read_text() == (SAMPLE / "questions.jsonl").read_text()
    for row in rows:
        [image] = row["images"]
        made = np.asarray(Image.open(tmp_path / image).convert("RGB"))
        shipped = np.asarray(Image.open(SAMPLE / image).convert("RGB"))
        assert made.shape == shipped.shape and (made == shipped).all(), image
