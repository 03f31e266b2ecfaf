"""``scireflect eval`` on questions with figures: the figure reaches the model (endpoint, local
vision-language model), accuracy per subject and with/without a figure, text-only models refused."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scireflect.cli.training import eval_command
from scireflect.testing.mock_openai import MockOpenAI
from scireflect.training.evaluate import read_results

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "figures"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("noop")(lambda: None)  # a second command keeps "eval" a sub-command
    return app


def _run(args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return CliRunner().invoke(_app(), ["eval", *map(str, args)], env={**env, "COLUMNS": "160"})


@pytest.fixture
def mixed(tmp_path):
    """Four figure questions of the sample and the first one again without its figure."""
    rows = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    picked = [rows[0], rows[5], rows[20], rows[27]]
    (tmp_path / "images").mkdir()
    for row in picked:
        shutil.copy(SAMPLE / row["images"][0], tmp_path / row["images"][0])
    blind = {k: v for k, v in picked[0].items() if k != "images"} | {"id": "no-figure"}
    path = tmp_path / "figs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*picked, blind]))
    return path, picked


def test_eval_sends_figures_to_an_endpoint_and_splits_accuracy_by_figure(mixed, tmp_path):
    path, picked = mixed
    with MockOpenAI(answers={"velocity of a lift": picked[1]["answer"], "circuit": picked[2]["answer"]}) as mock:
        result = _run([path, "--base-url", mock.base_url, "--model", mock.model, "--out", tmp_path / "out"])
        sent = list(mock.request_images)
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in read_results(tmp_path / "out" / "mock-model.results.jsonl")}
    assert [rows[r["id"]]["figures"] for r in picked] == [1, 1, 1, 1] and rows["no-figure"]["figures"] == 0
    assert rows[picked[1]["id"]]["correct"] and rows[picked[2]["id"]]["correct"] and not rows[picked[0]["id"]]["correct"]
    assert sent[0] and sorted(map(len, sent[1:])) == [0, 1, 1, 1, 1]  # the preflight's probe, then one figure per figure question
    out = " ".join(re.sub(r"[│┃]", " ", result.output).split())
    assert "questions with and without a figure" in out
    assert "figs with figure 4 2 50.0%" in out and "figs without figure 1 0 0.0%" in out
    assert "physics" in out and "chemistry" in out  # accuracy per subject too


def test_a_text_only_endpoint_is_told_to_use_figures_text(mixed, tmp_path):
    path, _ = mixed
    with MockOpenAI(vision=False) as mock:
        result = _run([path, "--base-url", mock.base_url, "--model", mock.model, "--out", tmp_path / "out"])
        assert result.exit_code == 1 and "cannot take images" in result.output and "--figures text" in " ".join(result.output.split())
        result = _run([path, "--base-url", mock.base_url, "--model", mock.model, "--out", tmp_path / "out2", "--figures", "text"])
        assert result.exit_code == 0, result.output
        users = [m["content"] for r in mock.requests[1:] for m in r if m["role"] == "user"]
    assert len(users) == 5 and sum("Figure caption: " in u for u in users) == 4
    assert sum("Text in the figure (OCR): " in u for u in users) == 4  # read by Tesseract: the sample has no ocr field


def test_a_local_vision_language_model_receives_the_figure(mixed, tmp_path):
    pytest.importorskip("transformers")
    from tests.fixtures.training import tiny_llava, tiny_model

    path, picked = mixed
    model = tiny_llava.build_tiny_llava(tmp_path / "tiny-llava", tiny_model.sft_texts())
    result = _run([path, "--hf-model", model, "--out", tmp_path / "out", "--max-tokens", "16", "--concurrency", "1"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in read_results(next((tmp_path / "out").glob("*.results.jsonl")))}
    with_figure, without = rows[picked[0]["id"]], rows["no-figure"]
    assert with_figure["error"] is None and without["error"] is None
    assert with_figure["input_tokens"] >= without["input_tokens"] + tiny_llava.IMAGE_TOKENS  # the image's tokens
    text_model = tiny_model.build_tiny_model(tmp_path / "tiny-text", tiny_model.sft_texts())
    result = _run([path, "--hf-model", text_model, "--out", tmp_path / "out2", "--max-tokens", "16"])
    assert result.exit_code == 1 and "text-only model and the benchmark has figures: pass --figures text" in " ".join(result.output.split())
