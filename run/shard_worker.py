"""The Ray actor that annotates one shard of a run: the asyncio runner on ``RUN/shards/K``, fenced by the shard's lease.

:mod:`scireflect.run.cluster` creates one :class:`ShardWorker` per shard (``ray.remote`` with
``max_restarts``) and calls :meth:`ShardWorker.run`, a streaming generator: it yields the runner's
progress events in batches (every ~0.1 s) while :func:`scireflect.run.runner.annotate` works on the
shard's own run directory. Everything CPU-heavy is built here, inside the actor, so it spreads over
the cluster's nodes: the sandboxed verifier's workers and, for formal rows, the Lean checker.

Every commit of the shard's ``traces.jsonl`` goes through the lease's fence
(:meth:`scireflect.run.lease.ShardLease.fence`): once the driver granted the shard to a newer
epoch, this worker's commits are refused (:class:`~scireflect.run.lease.LeaseLost`).

This module imports nothing from Ray: the driver wraps the class with ``ray.remote``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

from ..rundata.questions import QuestionSet
from .config import RunSettings
from .lease import ShardLease
from .runner import annotate, make_verifier

Batch = list[tuple[str, Any]]
"""``[(kind, data)]``: runner events (see :func:`scireflect.run.runner.annotate`), and last a
``("shard_done", {"shard", "epoch", "finished", "skipped"})``."""

FLUSH_S = 0.1
"""How often buffered events go to the driver (seconds)."""


class ShardWorker:
    """One shard's annotation, in a Ray actor process."""

    def where(self) -> dict[str, Any]:
        """``{"pid", "host"}`` of the actor's process (tests kill it)."""
        return {"pid": os.getpid(), "host": socket.gethostname()}

    async def run(self, shard: int, epoch: int, questions: QuestionSet, settings: RunSettings, shard_dir: str,
                  verifier_workers: int = 1):
        """Annotate ``questions`` into ``shard_dir`` as the holder of the shard's lease ``epoch``.

        Yields :data:`Batch` lists of events. Raises what the runner raises (``RunError``,
        ``EndpointError``, ``LeaseLost`` when fenced), which Ray hands to the driver.
        """
        lease = ShardLease(shard_dir)
        await asyncio.to_thread(lease.accept, epoch)
        buffer: Batch = []
        verifier = make_verifier(settings, workers=verifier_workers)
        task = asyncio.create_task(annotate(questions, Path(shard_dir), settings, on_event=lambda k, d: buffer.append((k, d)),
                                            verifier=verifier, fence=lease.fence(epoch)))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=FLUSH_S)
                if buffer:
                    batch, buffer = buffer, []
                    yield batch
            result = task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if hasattr(verifier, "close"):
                verifier.close()
        yield [*buffer, ("shard_done", {"shard": shard, "epoch": epoch, "finished": result.finished_now, "skipped": result.skipped})]


__all__ = ["Batch", "ShardWorker"]
