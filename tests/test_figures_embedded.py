"""The embedded model with a projector GGUF takes the figure: its prompt grows by the image's tokens.

The embedded Qwen2.5-Coder-0.5B is served by llama.cpp with a tiny randomly initialised LLaVA
projector (:mod:`tests.fixtures.figures.tiny_mmproj`, 64 image tokens). The answers are nonsense;
what is checked is the path: the preflight's image probe passes, every call sends the figure, and
llama.cpp counts 64 more prompt tokens for the question with the figure than for the same question
without it. Without ``--mmproj`` the same run stops at the preflight and says to use ``--figures text``.
Marked ``slow`` (a real model on CPU; CI runs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scireflect.embedded import available_embedded_models
from tests.fixtures.figures.tiny_mmproj import IMAGE_TOKENS, write_tiny_mmproj

SMALL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "figures"
QWEN_05B_EMBD = 896  # Qwen2.5-0.5B's embedding width: the projector's output

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SMALL not in available_embedded_models(), reason="embedded-small extra not installed"),
]


def _annotate(questions: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([sys.executable, "-m", "scireflect.cli", "annotate", str(questions), "--out", str(run_dir),
                           "--embedded-model", SMALL, "--concurrency", "1", "--budget", "attempts=1,reflections=0,answer_guided=no",
                           "--max-tokens", "48", "--no-ocr", *extra], capture_output=True, text=True, timeout=900, env=env)


def test_the_embedded_model_with_a_projector_receives_the_figure(tmp_path):
    row = json.loads((SAMPLE / "questions.jsonl").read_text().splitlines()[0])
    (tmp_path / "images").mkdir()
    shutil.copy(SAMPLE / row["images"][0], tmp_path / row["images"][0])
    text_only = {k: v for k, v in row.items() if k != "images"} | {"id": row["id"] + "-no-figure"}
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps(row) + "\n" + json.dumps(text_only) + "\n")
    mmproj = write_tiny_mmproj(tmp_path / "mmproj-tiny.gguf", QWEN_05B_EMBD)

    result = _annotate(questions, tmp_path / "run", "--mmproj", str(mmproj))
    assert result.returncode == 0, result.stdout + result.stderr
    traces = {t["id"]: t for t in map(json.loads, (tmp_path / "run" / "traces.jsonl").read_text().splitlines())}
    with_figure, without = traces[row["id"]]["steps"][0], traces[text_only["id"]]["steps"][0]
    assert with_figure["messages"][-1]["content"][0]["image_url"]["sha256"] == traces[row["id"]]["question"]["images"][0]["sha256"]
    assert isinstance(without["messages"][-1]["content"], str)
    assert not with_figure["tokens_estimated"] and not without["tokens_estimated"]  # llama.cpp's own counts
    attached = len("The figure of the problem is attached; read the values you need from it.\n\n")
    grown = with_figure["input_tokens"] - without["input_tokens"]
    assert IMAGE_TOKENS <= grown <= IMAGE_TOKENS + attached // 2, (with_figure["input_tokens"], without["input_tokens"])
    log = (tmp_path / "run" / "embedded-server.log").read_text()
    assert "loaded multimodal model" in log and "mmproj-tiny.gguf" in log

    # The same model without the projector cannot take the figure: the run stops before any question.
    result = _annotate(questions, tmp_path / "run-text-only")
    assert result.returncode == 1 and "cannot take images" in result.stderr and "--figures text" in result.stderr
    assert not (tmp_path / "run-text-only" / "traces.jsonl").exists() or not (tmp_path / "run-text-only" / "traces.jsonl").read_text()
