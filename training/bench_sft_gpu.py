"""GPU benchmark of SFT: throughput (tokens/s) and model FLOPs utilisation with DeepSpeed ZeRO-2.

Runs the same training path as ``scireflect train`` (HF Trainer, the shipped ZeRO-2 config, the SFT
collator with prompt tokens masked) on synthetic token sequences, for a small model: by default a
randomly initialised model with the shapes of Qwen2.5-0.5B (24 layers, hidden 896, 494 M
parameters; nothing is downloaded), or any local model with ``--model PATH``.

Figures printed (after ``--warmup`` steps, timed with CUDA synchronisation on every step):

* tokens/s: trained sequence tokens (prompt + response, no padding) per second, all GPUs;
* MFU = 6 * N * tokens/s / (peak bf16 dense FLOP/s * GPUs), N = parameters (the 6N rule of
  Kaplan et al. 2020: forward 2N, backward 4N per token); also with the attention term of the
  PaLM paper (Chowdhery et al. 2022, appendix B): 6N + 12 * layers * hidden * seq_len.

Peak FLOP/s come from the GPU's name (NVIDIA data sheets, dense bf16) or ``--peak-tflops``. On a
machine without a CUDA GPU it says so and exits 0.

Usage::

    python -m scireflect.training.bench_sft_gpu [--seq-len 1024] [--micro-batch 8] [--steps 30]
    deepspeed --num_gpus 8 --no_local_rank --module scireflect.training.bench_sft_gpu   # several GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# Dense bf16 tensor-core peak, TFLOP/s (NVIDIA data sheets; no sparsity).
PEAK_BF16_TFLOPS = [
    ("H200", 989.4), ("GH200", 989.4), ("H100 SXM", 989.4), ("H100 80GB HBM3", 989.4), ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0), ("H100", 756.0), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.05), ("L40", 181.05),
    ("A10G", 70.0), ("A10", 125.0), ("L4", 121.0), ("RTX 4090", 165.2), ("A6000", 154.8),
]


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak TFLOP/s for a CUDA device name (first matching entry), or ``None``."""
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def default_model_config():
    """A Qwen2 config with Qwen2.5-0.5B's shapes (random weights)."""
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       tie_word_embeddings=True)


def synthetic_examples(n: int, seq_len: int, vocab: int, prompt_fraction: float = 0.25, seed: int = 0):
    """``n`` examples of ``seq_len`` random tokens; the first ``prompt_fraction`` labelled -100."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n_prompt = int(seq_len * prompt_fraction)
    out = []
    for _ in range(n):
        ids = torch.randint(100, vocab - 1, (seq_len,), generator=g).tolist()
        out.append({"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:]})
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (0 also when there is no GPU)."""
    p = argparse.ArgumentParser(prog="python -m scireflect.training.bench_sft_gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="local model directory (default: random Qwen2.5-0.5B shapes)")
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    p.add_argument("--deepspeed", default="zero2", help="shipped config name or JSON file (default zero2)")
    p.add_argument("--peak-tflops", type=float, default=None, help="per-GPU peak, overrides the device table")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--attn-implementation", default="sdpa")
    p.add_argument("--json-out", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU on this machine: the SFT GPU benchmark needs one; nothing measured.")
        return 0
    if args.steps <= args.warmup:
        p.error("--steps must exceed --warmup")

    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from .data import ListDataset, SFTCollator
    from .sft import resolve_deepspeed_config, single_process_env

    if "RANK" not in os.environ:
        single_process_env(use_cpu=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank0 = os.environ.get("RANK", "0") == "0"
    device_name = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or peak_tflops(device_name)

    targs = TrainingArguments(
        output_dir=os.path.join(os.environ.get("TMPDIR", "/tmp"), "scireflect-bench-sft"),
        per_device_train_batch_size=args.micro_batch, gradient_accumulation_steps=args.grad_accum,
        learning_rate=3e-6, lr_scheduler_type="linear", warmup_steps=0, max_steps=args.steps, bf16=True,
        deepspeed=resolve_deepspeed_config(args.deepspeed, cuda=True), logging_steps=args.steps, save_strategy="no",
        report_to="none", remove_unused_columns=False, disable_tqdm=True, dataloader_num_workers=2,
        **({"activation_checkpointing": True} if args.gradient_checkpointing else {}),
    )
    if args.model:
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, attn_implementation=args.attn_implementation)
    else:
        config = default_model_config()
        config._attn_implementation = args.attn_implementation
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    cfg = model.config
    n_params = sum(t.numel() for t in model.parameters())
    vocab = int(cfg.vocab_size)
    per_step_examples = args.micro_batch * args.grad_accum * world
    data = synthetic_examples(per_step_examples * args.steps, args.seq_len, vocab)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):  # noqa: ANN001
            torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):  # noqa: ANN001
            torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    trainer = Trainer(model=model, args=targs, train_dataset=ListDataset(data), data_collator=SFTCollator(pad_token_id=0),
                      callbacks=[Timer()])
    trainer.train()
    timed = times[args.warmup:]
    tokens_per_step = per_step_examples * args.seq_len
    tok_s = tokens_per_step * len(timed) / sum(timed)
    layers, hidden = int(cfg.num_hidden_layers), int(cfg.hidden_size)
    flops_per_token = 6 * n_params
    flops_per_token_attn = flops_per_token + 12 * layers * hidden * args.seq_len
    result = {
        "device": device_name, "gpus": world, "model": args.model or "random Qwen2.5-0.5B shapes",
        "parameters": n_params, "seq_len": args.seq_len, "micro_batch": args.micro_batch, "grad_accum": args.grad_accum,
        "deepspeed": args.deepspeed, "steps_timed": len(timed), "step_s": sum(timed) / len(timed),
        "tokens_per_s": tok_s, "tokens_per_s_per_gpu": tok_s / world,
        "peak_tflops_per_gpu": peak,
        "mfu_6n": (flops_per_token * tok_s / (peak * 1e12 * world)) if peak else None,
        "mfu_6n_attn": (flops_per_token_attn * tok_s / (peak * 1e12 * world)) if peak else None,
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    if rank0:
        print(f"SFT benchmark on {world} x {device_name} ({args.deepspeed}, bf16): {n_params / 1e6:.0f} M parameters, "
              f"sequence {args.seq_len}, micro batch {args.micro_batch} x accumulation {args.grad_accum}")
        print(f"  step time   {result['step_s'] * 1000:.1f} ms over {len(timed)} steps")
        print(f"  throughput  {tok_s:,.0f} tokens/s ({tok_s / world:,.0f} per GPU)")
        if peak:
            print(f"  MFU         {100 * result['mfu_6n']:.1f}% (6N), {100 * result['mfu_6n_attn']:.1f}% (6N + attention); "
                  f"peak {peak:g} TFLOP/s per GPU")
        else:
            print(f"  MFU         unknown peak for '{device_name}': pass --peak-tflops")
        print(f"  memory      {result['max_memory_gib']:.1f} GiB peak allocated")
        print(json.dumps(result))
        if args.json_out:
            with open(args.json_out, "w") as fh:
                json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
