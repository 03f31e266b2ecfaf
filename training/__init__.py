"""Training and evaluation: DeepSpeed SFT on verified traces, and evaluation of any model with the same verifiers.

Modules (import as ``scireflect.training.<module>``; torch, transformers and DeepSpeed are imported
lazily, from the ``train`` extra):

* :mod:`.data`: read ``sft.jsonl`` / ``messages`` exports, filter by stage, tokenise with a chat
  template and mask prompt tokens (-100), report over-length items, pack, collate.
* :mod:`.sft`: :class:`~.sft.SFTConfig` (SciGLM's recipe by default) and :func:`~.sft.run_sft`
  (HF Trainer + DeepSpeed ZeRO, checkpoints, resume, metrics to console/JSONL/TensorBoard).
* :mod:`.evaluate`: run a model (endpoint, embedded, local transformers) on benchmark files with the
  Solver prompt and the sandboxed answer verifier; accuracy and before/after scores.
* :mod:`.bench_sft_gpu`: SFT throughput and MFU on a GPU.
* ``configs/``: DeepSpeed configs ``zero2.json``, ``zero3_offload.json``, ``zero2_cpu.json``.

The commands (``scireflect train``, ``eval`` and ``convert``) are in :mod:`scireflect.cli.training`.
"""
