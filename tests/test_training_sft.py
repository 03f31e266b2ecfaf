"""``scireflect train``: a real DeepSpeed ZeRO-2 run on CPU, resume, the shipped DeepSpeed configs.

The training test fine-tunes a tiny randomly initialised Llama (hidden 32, 2 layers, word-level
tokenizer built offline) on SFT rows from a real annotation run, through the same data path as
real runs, in a subprocess (DeepSpeed initialises a process group and picks its accelerator once per
process). About 30 s on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("deepspeed")

from tests.fixtures.training import tiny_model as tiny  # noqa: E402

ROWS = tiny.SFT_ROWS


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny.build_tiny_model(tmp_path_factory.mktemp("tiny"), tiny.sft_texts())


def _train(args, tmp_path, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run([sys.executable, "-m", "scireflect.cli.training", "train", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def _metrics(out_dir):
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


def test_zero2_cpu_training_lowers_the_loss_then_resumes(tiny_model, tmp_path):
    out = tmp_path / "run"
    common = [ROWS, "--model", tiny_model, "--out", out, "--single-process", "--lr", "1e-2", "--global-batch", "4",
              "--micro-batch", "2", "--max-length", "320", "--save-steps", "6", "--epochs", "20"]
    result = _train([*common, "--max-steps", "12"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # The longest real trace is over 320 tokens: reported by id, skipped, never cut.
    report = json.loads((out / "train_report.json").read_text())
    assert report["overlength_ids"] and report["examples"] == 10 - len(report["overlength_ids"])
    assert "over-length (> 320 tokens) skipped: " + report["overlength_ids"][0] in result.stdout.replace("\n", " ")
    assert "DeepSpeed zero2-cpu" in result.stdout.replace("\n", " ")
    assert report["gradient_accumulation_steps"] == 2 and report["world_size"] == 1

    metrics = [m for m in _metrics(out) if "loss" in m]
    assert [m["step"] for m in metrics] == list(range(1, 13))
    losses = [m["loss"] for m in metrics]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.3, losses
    assert all(m["tokens_per_s"] > 0 and m["tokens"] > 0 for m in metrics)
    assert metrics[0]["learning_rate"] == pytest.approx(1e-2) and metrics[-1]["learning_rate"] < 1e-3  # linear, no warmup
    # ZeRO checkpoints (model + partitioned optimizer states) and the final model.
    ckpt = out / "checkpoint-12"
    assert (ckpt / "trainer_state.json").is_file() and list(ckpt.glob("global_step12/*optim_states.pt"))
    assert (out / "final" / "config.json").is_file() and (out / "final" / "tokenizer.json").is_file()
    # TensorBoard is part of the [train] extra: the run must have logged its loss there.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [events] = list((out / "tensorboard").glob("events.out.tfevents.*"))
    logged = EventAccumulator(str(events))
    logged.Reload()
    assert [e.step for e in logged.Scalars("train/loss")] == list(range(1, 13))

    result = _train([*common, "--max-steps", "14", "--resume"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    resumed = [m for m in _metrics(out) if "loss" in m][len(metrics):]
    assert [m["step"] for m in resumed] == [13, 14]  # continued from checkpoint-12, not from step 1
    state = json.loads((out / "checkpoint-14" / "trainer_state.json").read_text())
    assert state["global_step"] == 14


def test_train_cli_rejects_bad_input_before_loading_anything(tmp_path):
    result = _train([ROWS, "--model", "nowhere", "--out", tmp_path / "x", "--single-process", "--stages", "cot,guess"], tmp_path, timeout=120)
    assert result.returncode == 2 and "unknown stage" in result.stderr
    result = _train([ROWS, "--model", "nowhere", "--out", tmp_path / "x", "--single-process", "--global-batch", "5",
                     "--micro-batch", "2"], tmp_path, timeout=120)
    assert result.returncode == 1 and "not a multiple" in result.stderr


def _hf_args(**kw):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir="/tmp/unused", report_to="none", use_cpu=True, **kw)


@pytest.mark.parametrize("name", ["zero2", "zero3-offload", "zero2-cpu"])
def test_shipped_deepspeed_configs_are_valid_once_hf_fills_auto_values(name):
    import torch
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    from scireflect.training.sft import DEEPSPEED_CONFIGS, resolve_deepspeed_config

    raw = json.loads(DEEPSPEED_CONFIGS[name].read_text())
    assert resolve_deepspeed_config(name, cuda=True) == raw
    hf = HfTrainerDeepSpeedConfig(raw)
    # The SciGLM recipe (global batch 32) on one rank: micro batch 4 x accumulation 8.
    args = _hf_args(per_device_train_batch_size=4, gradient_accumulation_steps=8, learning_rate=3e-6, bf16=name != "zero2-cpu")
    hf.trainer_config_process(args)
    model = torch.nn.Linear(4, 4)
    model.config = type("C", (), {"hidden_size": 4096, "hidden_sizes": None, "text_config": None})()
    hf.trainer_config_finalize(args, model, num_training_steps=100)
    config = hf.config
    assert "auto" not in json.dumps(config)
    ds = DeepSpeedConfig(config)
    assert ds.train_batch_size == 32 and ds.train_micro_batch_size_per_gpu == 4 and ds.gradient_accumulation_steps == 8
    assert ds.gradient_clipping == 1.0
    stage = {"zero2": 2, "zero3-offload": 3, "zero2-cpu": 2}[name]
    assert ds.zero_config.stage == stage
    if name == "zero3-offload":
        assert ds.zero_config.offload_optimizer.device == "cpu" and ds.zero_config.offload_param.device == "cpu"
        assert ds.optimizer_name == "adamw" and ds.optimizer_params["lr"] == 3e-6
        assert ds.zero_config.gather_16bit_weights_on_model_save
    else:
        assert ds.optimizer_name is None  # the HF Trainer makes a torch AdamW: no DeepSpeed op to build
    assert ds.bfloat16_config.enabled == (name != "zero2-cpu")


def test_gradient_accumulation_keeps_the_global_batch():
    from scireflect.training.sft import TrainError, gradient_accumulation

    assert gradient_accumulation(32, 4, 1) == 8
    assert gradient_accumulation(32, 2, 8) == 2
    with pytest.raises(TrainError):
        gradient_accumulation(32, 3, 1)
    with pytest.raises(TrainError):
        gradient_accumulation(32, 8, 8)


def test_gpu_benchmark_says_so_and_exits_0_without_a_gpu(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-m", "scireflect.training.bench_sft_gpu", "--steps", "3", "--warmup", "1"],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no CUDA GPU" in result.stdout


def test_gpu_benchmark_pieces():
    from scireflect.training.bench_sft_gpu import default_model_config, peak_tflops, synthetic_examples

    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.4 and peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops("NVIDIA H200") == 989.4 and peak_tflops("Some GPU") is None
    cfg = default_model_config()
    assert (cfg.num_hidden_layers, cfg.hidden_size) == (24, 896)
    ex = synthetic_examples(2, 16, 1000)
    assert len(ex) == 2 and ex[0]["labels"][:4] == [-100] * 4 and ex[0]["labels"][4:] == ex[0]["input_ids"][4:]
