"""From verified traces to a training set: classify, decontaminate, check leakage, deduplicate, export.

Installed as ``scireflect.filtering``. Modules:

* :mod:`.examples`   one solution attempt of a trace as a labelled example, and :func:`.examples.classifier_input`,
  the ONE function that builds the classifier's input text at training and at inference.
* :mod:`.classifier` the instruction-quality classifier (SciGLM, arXiv 2401.07950, section 2.3): frozen
  sentence embeddings + logistic regression by default, or a causal LM scoring ``True``/``False`` at the
  last token (SciGLM's ChatGLM3 head), with grouped held-out metrics and a shortcut audit. Its parts:
  :mod:`.features` (texts -> features), :mod:`.linear_head` (scikit-learn scaler + logistic regression,
  grouped folds), :mod:`.lm_head`, :mod:`.model` (a trained classifier and its model directory),
  :mod:`.metrics` (held-out figures), :mod:`.errors`.
* :mod:`.decontam`   n-gram (13-gram, GPT-3 / Llama 2 style) and normalised exact-match decontamination.
* :mod:`.leakage`    flags answer-guided traces that merely restate the reference answer.
* :mod:`.dedup`      exact and MinHash near-duplicate questions and solutions; RFT-style diverse paths.
* :mod:`.export`     the filter pipeline and the writers (SciInstruct JSONL, chat messages, ShareGPT,
  Hugging Face ``datasets`` folder) with a dataset card.

Heavy dependencies (torch, sentence-transformers, scikit-learn, datasets, datasketch) are imported
lazily, inside the functions that need them; ``pip install "scireflect[filter]"`` installs them.
The commands (``scireflect classify train|score`` and ``scireflect export``) are in :mod:`scireflect.cli.filtering`.
"""
