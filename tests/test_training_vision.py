"""``scireflect train --stage align|instruct``: SciTune's two stages on a tiny random LLaVA, ZeRO-2 on CPU.

The model (tiny CLIP + tiny Llama, built from configs, nothing downloaded) trains in a subprocess
with the project's ``zero2-cpu`` DeepSpeed config, as the text path does: ``align`` on the shipped
figure sample's captions, Tesseract OCR and mentions (the adapter alone moves), then ``instruct``
from the aligned model on the SFT pairs of a mock-annotated run of the same figures (adapter and
LLM move, the vision tower never). The loss falls in both; image and prompt tokens are -100.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("deepspeed")

from scireflect.run.config import load_settings  # noqa: E402
from scireflect.rundata.questions import load_questions  # noqa: E402
from scireflect.run.runner import annotate  # noqa: E402
from scireflect.testing.mock_openai import MockOpenAI  # noqa: E402
from scireflect.training.vision_data import ALIGN_PROMPT, encode_example, load_align_rows, load_instruct_rows  # noqa: E402
from tests.fixtures.training import tiny_llava, tiny_model  # noqa: E402
from tests.test_training_sft import _train  # noqa: E402  (the same subprocess, environment and timeout)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "figures"
N = 8  # figures used: enough to see the loss fall, few enough for Tesseract and 2 CPU cores


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Figure rows (align) and a mock-annotated run's sft.jsonl (instruct) over the first N sample figures."""
    root = tmp_path_factory.mktemp("vision")
    (root / "figures" / "images").mkdir(parents=True)
    rows = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()][:N]
    for row in rows:
        shutil.copy(SAMPLE / row["images"][0], root / "figures" / row["images"][0])
    (root / "figures" / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    questions = load_questions(root / "figures" / "questions.jsonl")
    with MockOpenAI(answers={r["question"][:60]: r["answer"] for r in rows}, require_images=True) as mock:
        asyncio.run(annotate(questions, root / "run", load_settings(base_url=[mock.base_url], model=mock.model, ocr=False)))
    texts = tiny_model.sft_texts() + [ALIGN_PROMPT, "Caption: Text in the figure: The paper says:"]
    texts += [" ".join([r["question"], r["caption"], *r["mentions"], r["answer"]]) for r in rows]
    texts += [json.loads(line)["response"] for line in (root / "run" / "sft.jsonl").read_text().splitlines()]
    model = tiny_llava.build_tiny_llava(root / "tiny-llava", texts)
    return {"root": root, "align": root / "figures" / "questions.jsonl", "sft": root / "run" / "sft.jsonl", "model": model}


def _losses(out_dir):
    return [m["loss"] for m in map(json.loads, (out_dir / "metrics.jsonl").read_text().splitlines()) if "loss" in m]


def _weights(model_dir):
    from safetensors.torch import load_file

    return load_file(str(next(Path(model_dir).glob("*.safetensors"))))


def _moved(before, after, part):
    names = [n for n in before if part in n]
    assert names, part
    return any(not (before[n] == after[n]).all() for n in names)


def test_image_and_prompt_tokens_are_masked(data):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(data["model"])
    [row] = load_instruct_rows([data["sft"]])[0][:1]
    enc = encode_example(processor, row)
    ids, labels = enc["input_ids"][0].tolist(), enc["labels"][0].tolist()
    image_positions = [i for i, t in enumerate(ids) if t == processor.image_token_id]
    assert len(image_positions) == tiny_llava.IMAGE_TOKENS and enc["pixel_values"].shape == (1, 3, 56, 56)
    assert all(labels[i] == -100 for i in image_positions)
    first = next(i for i, x in enumerate(labels) if x != -100)
    assert first > max(image_positions) and all(x == -100 for x in labels[:first])  # the whole prompt is masked
    assert labels[first:] == ids[first:]  # the response (and its end-of-turn token) is trained on
    assert processor.tokenizer.decode(ids[first:]).strip().startswith(processor.tokenizer.decode(
        processor.tokenizer(row.response, add_special_tokens=False)["input_ids"][:3]).strip())
    align_rows, report = load_align_rows([data["align"]])
    assert report.kept == N and report.ocr_filled == N  # the sample has no ocr: Tesseract read it
    assert align_rows[0].response.startswith("Caption: Position of a cart") and "Text in the figure: " in align_rows[0].response


def test_align_then_instruct_with_zero2_on_cpu(data, tmp_path):
    common = ["--single-process", "--deepspeed", "zero2-cpu", "--lr", "5e-3", "--global-batch", "4", "--micro-batch", "2",
              "--max-length", "512", "--epochs", "30", "--save-steps", "100"]
    align_out = tmp_path / "align"
    result = _train([data["align"], "--model", data["model"], "--out", align_out, "--stage", "align", "--max-steps", "12", *common],
                    tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout.replace("\n", " ")
    assert "stage align" in text and "DeepSpeed zero2-cpu" in text
    report = json.loads((align_out / "train_report.json").read_text())
    assert report["parameters"]["trainable"] == report["parameters"]["adapter"] > 0  # the adapter alone
    losses = _losses(align_out)
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < losses[0] - 0.2, losses
    before, aligned = _weights(data["model"]), _weights(align_out / "final")
    assert _moved(before, aligned, "multi_modal_projector")
    assert not _moved(before, aligned, "vision_tower") and not _moved(before, aligned, "language_model")

    instruct_out = tmp_path / "instruct"
    result = _train([data["sft"], "--model", align_out / "final", "--out", instruct_out, "--stage", "instruct", "--max-steps", "12",
                     *common], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((instruct_out / "train_report.json").read_text())
    assert report["examples"] == N and report["parameters"]["trainable"] > report["parameters"]["adapter"]
    losses = _losses(instruct_out)
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < losses[0] - 0.5, losses
    tuned = _weights(instruct_out / "final")
    assert _moved(aligned, tuned, "multi_modal_projector") and _moved(aligned, tuned, "language_model")
    assert not _moved(aligned, tuned, "vision_tower")
    assert (instruct_out / "final" / "processor_config.json").is_file() or (instruct_out / "final" / "preprocessor_config.json").is_file()


def test_vision_cli_rejects_bad_stage_and_targets(data, tmp_path):
    result = _train([data["sft"], "--model", data["model"], "--out", tmp_path / "x", "--single-process", "--stage", "pretrain"], tmp_path)
    assert result.returncode == 2 and "--stage must be one of align, instruct" in result.stderr
    result = _train([data["sft"], "--model", data["model"], "--out", tmp_path / "x", "--single-process", "--stage", "align",
                     "--align-targets", "caption,abstract"], tmp_path)
    assert result.returncode == 2 and "unknown alignment target(s) abstract" in result.stderr
