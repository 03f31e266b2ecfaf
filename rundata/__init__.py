"""A run directory's data: what a run writes and what every reader of a run (the viewer, filtering,
export, training, ``scireflect traces``) reads. The runner that writes it is :mod:`scireflect.run`.

``files.py`` (the files of a run directory, by name), ``jsonl.py`` (the one JSONL reader and writer),
``errors.py`` (``RunError``), ``lock.py`` (one writer per run directory), ``questions.py`` (question
files), ``images.py`` and ``ocr.py`` (figures), ``records.py`` (``TraceRecord``, ``SftPair``),
``store.py`` (``traces.jsonl``), ``summary.py`` (counts and stats), ``query.py`` (rows, filters,
lookup), ``labels.py`` (review labels and precision), ``outputs.py`` (``sft.jsonl`` and
``summary.json``), ``merge.py`` (run directories into one, once by id), ``checkpoints.py`` and
``checkpoint_serde.py`` (the SQLite checkpoints, read as plain data only).

Nothing is imported here, so reading a JSONL file does not load LangGraph.
"""
