"""The runner: annotating a question set into a run directory (whose data is :mod:`scireflect.rundata`).

``config.py`` (settings), ``endpoints.py`` (the agents on their endpoints, the embedded server
started), ``manifest.py`` (``run.json``), ``quick_check.py`` (cheap answers checked in-process),
``checkpointer.py`` and ``postgres.py`` (the run's checkpointer: SQLite or PostgreSQL),
``runner.py`` (:func:`~scireflect.run.runner.annotate`), ``judging.py`` (a model judge over a finished
run), ``studio.py`` (the annotation graph for LangGraph Studio, ``langgraph.json``). On Ray: ``cluster.py`` (the driver, :func:`~scireflect.run.cluster.annotate_on_ray`),
``shard_worker.py`` (the shard actor), ``lease.py`` (shard leases with epochs: fencing).

Nothing is imported here, so importing a settings module does not load LangGraph.
"""
