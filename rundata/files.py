"""The files of a run directory (``--out``), by name.

``traces.jsonl``        append-only; one :class:`~scireflect.rundata.records.TraceRecord` a line, made
                        durable (group-committed ``write`` + ``fsync``) when a question ends (the source of truth).
``sft.jsonl``           derived from the traces at the end of each run: one SFT pair per accepted question.
``checkpoints.sqlite``  LangGraph's SQLite checkpointer: unfinished questions resume at their last node.
``run.json``            the manifest: input file and hash, settings, prompt and verifier versions, per invocation.
``summary.json``        per-subject counts, written at the end of each run.
``embedded-server.log`` the embedded llama.cpp server's log, when the embedded model is used.
``.lock``               the ``flock`` of the process writing the directory (:mod:`scireflect.rundata.lock`).
``shards/``             a Ray run's shard directories while it is unfinished (:mod:`scireflect.run.cluster`).
"""

from __future__ import annotations

from pathlib import Path

TRACES = "traces.jsonl"
SFT = "sft.jsonl"
CHECKPOINTS = "checkpoints.sqlite"
MANIFEST = "run.json"
SUMMARY = "summary.json"
SERVER_LOG = "embedded-server.log"


def traces_path(run_dir: str | Path) -> Path:
    """The ``traces.jsonl`` of ``run_dir`` (or ``run_dir`` itself when it is a file)."""
    path = Path(run_dir)
    return path if path.is_file() else path / TRACES


__all__ = ["CHECKPOINTS", "MANIFEST", "SERVER_LOG", "SFT", "SUMMARY", "TRACES", "traces_path"]
