"""The run layer: a run directory's data and the run that writes it.

Data (read by every layer above): ``jsonl.py`` (the one JSONL reader and writer), ``files.py`` (the
files of a run directory), ``records.py`` (``TraceRecord``, ``SftPair``), ``store.py``
(``traces.jsonl``), ``summary.py`` (counts and stats), ``query.py`` (rows, filters, lookup),
``questions.py`` (question files), ``checkpoints.py`` (reading checkpoints from outside a run).

The run: ``config.py`` (settings), ``endpoints.py`` (models and endpoints), ``manifest.py``
(``run.json``), ``runner.py`` (:func:`~scireflect.run.runner.annotate`).

Nothing is imported here, so reading a JSONL file does not load LangGraph.
"""
