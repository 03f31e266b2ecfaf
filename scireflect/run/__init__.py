"""The run layer: a run directory's data and the run that writes it.

Data (read by every layer above): ``jsonl.py`` (the one JSONL reader and writer), ``files.py`` (the
files of a run directory), ``records.py`` (``TraceRecord``, ``SftPair``), ``store.py``
(``traces.jsonl``), ``summary.py`` (counts and stats), ``query.py`` (rows, filters, lookup),
``questions.py`` (question files), ``checkpoints.py`` (the SQLite checkpointer, and reading
checkpoints from outside a run), ``postgres.py`` (PostgreSQL checkpoints), ``outputs.py``
(``sft.jsonl`` and ``summary.json``), ``merge.py`` (run directories into one, once by id).

The run: ``config.py`` (settings), ``endpoints.py`` (models and endpoints), ``manifest.py``
(``run.json``), ``quick_check.py`` (cheap answers checked in-process), ``runner.py``
(:func:`~scireflect.run.runner.annotate`), ``lock.py`` (one writer per run directory). On Ray:
``cluster.py`` (the driver, :func:`~scireflect.run.cluster.annotate_on_ray`), ``shard_worker.py``
(the shard actor), ``lease.py`` (shard leases with epochs: fencing).

Nothing is imported here, so reading a JSONL file does not load LangGraph.
"""
