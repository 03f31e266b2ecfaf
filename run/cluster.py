"""One run over many processes and machines on Ray: shards in restartable actors, committed exactly once.

``scireflect annotate Q.jsonl --out RUN --ray auto|ADDRESS [--shards N]`` runs :func:`annotate_on_ray`
in the driver process. Where everything lives::

    RUN/.lock                 held by the driver for the whole run (one writer of RUN)
    RUN/traces.jsonl          the run's records, committed by the driver only, once per id
    RUN/sft.jsonl, summary.json, run.json   written by the driver, as in a local run
    RUN/shards/layout.json    {"shards": N}: fixed by the first Ray run of RUN
    RUN/shards/K/             shard K's own run directory (an actor's): its lease, its traces.jsonl
                              (the shard's commits), its checkpoints.sqlite (unless PostgreSQL)

The driver splits the pending questions by :func:`~scireflect.rundata.questions.stable_bucket` into N
shards and starts one :class:`~scireflect.run.shard_worker.ShardWorker` actor per non-empty shard
(``max_restarts``; one CPU each, so the cluster runs one shard per CPU at a time and the next shard
starts when one ends). Exactly once, step by step:

1. Before an actor (re)starts on shard K, the driver *grants* the shard's lease a new epoch
   (:class:`~scireflect.run.lease.ShardLease`); the actor commits only while it holds that epoch.
2. The actor runs the asyncio runner on ``RUN/shards/K``: a finished question's line is made
   durable in the shard's ``traces.jsonl`` (group commit, inside the lease's fence), then its
   checkpoints are deleted. A killed actor resumes its questions from their checkpoints (model
   calls are at least once; finished questions make none).
3. The driver reads each shard's new complete lines as the actor's ``done`` events arrive, and
   commits the ids not yet in ``RUN/traces.jsonl`` (one group commit; the first record of an id
   wins). A driver killed in between loses nothing: the next run commits the shards' lines first.
4. When every question of the input is committed, ``RUN/shards`` is removed.

Events (``start`` once from the driver; ``call``, ``tokens``, ``retry``, ``done``, ``status``,
``warning`` from the actors) reach ``on_event`` as in a local run, so the CLI's display works
unchanged. Every node needs the same Python environment, the run directory on a shared file
system, and the model endpoints in reach; with ``--checkpoints postgresql://...`` the checkpoints
need no shared file system (:mod:`scireflect.run.postgres`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..graphs.nodes import EndpointError
from ..rundata.errors import RunError
from ..rundata.files import TRACES
from ..rundata.jsonl import JsonlError, read_json, write_json_atomic
from ..rundata.lock import RunDirBusy, run_dir_lock
from ..rundata.merge import commit_new, source_records
from ..rundata.outputs import write_outputs
from ..rundata.questions import QuestionSet, stable_bucket
from ..rundata.store import TraceFileError, TraceStore
from .config import RunSettings
from .lease import LeaseLost, ShardLease
from .manifest import manifest, record_invocation
from .postgres import schema_name, setup_schema
from .runner import ProgressCallback, RunResult, gather_or_cancel, make_run_dir, make_verifier, remove_leftovers

SHARDS_DIR = "shards"
LAYOUT = "layout.json"
SHARDS_PER_CPU = 4
MAX_RESTARTS = 3
RESTART_WAIT_S = 1.0
UNAVAILABLE_GIVE_UP_S = 300.0


LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch between a node that serves other machines and a local-only one (its default on macOS
and Windows): ``0`` makes the node's address 127.0.0.1, so that every server of a local Ray (GCS,
raylet, workers, agents) listens on loopback only. Ray turns ``_node_ip_address="127.0.0.1"`` back
into the host's interface address, so this switch is the only way."""


@contextlib.contextmanager
def _local_only() -> Any:
    """Within: a new Ray started here listens on loopback only (:data:`LOCAL_ONLY_ENV`).

    The processes Ray spawns read the environment; the driver reads Ray's constant, set at import,
    so it is switched too. Both are restored after: the started processes keep theirs, and a later
    connection to a real cluster from this process advertises the host's address again.
    """
    from ray._private import ray_constants

    before_env, before_flag = os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = before_env


def connect(address: str) -> None:
    """Connect to Ray: ``auto`` (the cluster in ``RAY_ADDRESS`` or the one ``ray start`` made on this
    machine, else a new local Ray), ``local`` (always a new local Ray), or a cluster address.

    A new local Ray listens on 127.0.0.1 only (:func:`_local_only`): nothing outside this machine can
    reach it, whatever Ray's own authentication does. A cluster of several machines is made with
    ``ray start`` (docs/annotating.md, "Scaling out": how to secure it).

    Raises:
        RunError: Ray is not installed, or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise RunError("--ray needs Ray: pip install 'scireflect[ray]'") from None
    if ray.is_initialized():
        return
    options = {"logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False, "configure_logging": True}
    try:
        if address == "auto" and not os.environ.get("RAY_ADDRESS"):
            try:
                ray.init(address="auto", **options)  # the cluster 'ray start' made on this machine
                return
            except ConnectionError:
                address = "local"  # none running here: start one
        if address == "local":
            with _local_only():
                ray.init(address="local", **options)
        else:
            ray.init(address=None if address == "auto" else address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise RunError(f"--ray {address}: cannot connect to a Ray cluster ({str(exc).splitlines()[0]})") from None


def default_shards() -> int:
    """``SHARDS_PER_CPU`` shards per CPU of the connected cluster (at least 1)."""
    import ray

    return max(1, SHARDS_PER_CPU * int(ray.cluster_resources().get("CPU", 1)))


def _layout(run_dir: Path, asked: int | None, say: ProgressCallback) -> int:
    """The run's shard count: the one recorded by its first Ray run, else ``asked`` or the default."""
    path = run_dir / SHARDS_DIR / LAYOUT
    if path.exists():
        try:
            recorded = int(read_json(path, what="the shard layout")["shards"])
        except (JsonlError, KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{path}: {exc}; was the run directory edited by hand?") from None
        if asked and asked != recorded:
            say("warning", {"message": f"this run directory is split in {recorded} shards; --shards {asked} is ignored"})
        return recorded
    shards = asked or default_shards()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"shards": shards})
    return shards


class _Commits:
    """The driver's side of the run's ``traces.jsonl``: committed records by id, and how far each
    shard's store has been read."""

    def __init__(self, run_dir: Path):
        try:
            store = TraceStore(run_dir / TRACES)  # cuts a partial last line of a killed driver
        except TraceFileError as exc:
            raise RunError(str(exc)) from None
        self.path = store.path
        self.records: dict[str, dict[str, Any]] = store.records
        self.ids = set(self.records)
        self.offsets: dict[Path, int] = {}
        self.repaired_bytes = store.repaired_bytes
        self._lock = threading.Lock()  # shards are absorbed from worker threads

    def absorb(self, shard_dir: Path) -> list[str]:
        """Commit the shard store's new complete lines whose ids are not committed; returns those ids."""
        store = shard_dir / TRACES
        with self._lock:
            try:
                candidates, self.offsets[store] = source_records(store, self.offsets.get(store, 0))
            except TraceFileError as exc:
                raise RunError(str(exc)) from None
            added, _ = commit_new(self.path, self.ids, candidates)
            fresh = set(added)
            for _, record in candidates:
                if record["id"] in fresh:
                    self.records[record["id"]] = record
            return added


def _ray_errors() -> tuple[tuple[type[BaseException], ...], type[BaseException]]:
    """(errors meaning "the actor or its node was lost", the error carrying an exception raised in the actor)."""
    from ray import exceptions as rex

    lost = tuple(getattr(rex, name) for name in ("RayActorError", "ActorDiedError", "ActorUnavailableError", "NodeDiedError",
                                                 "WorkerCrashedError", "ObjectLostError", "OwnerDiedError") if hasattr(rex, name))
    return lost, rex.RayTaskError


async def annotate_on_ray(questions: QuestionSet, run_dir: Path, settings: RunSettings, *, address: str = "auto",
                          shards: int | None = None, on_event: ProgressCallback | None = None,
                          max_restarts: int = MAX_RESTARTS) -> RunResult:
    """Annotate ``questions`` into ``run_dir`` on a Ray cluster (see the module docstring).

    Args:
        questions / run_dir / settings / on_event: as :func:`scireflect.run.runner.annotate`;
            ``settings.concurrency`` is per shard actor.
        address: ``auto``, ``local`` or a Ray cluster address (see :func:`connect`).
        shards: the number of shards of a new run directory (default: 4 per cluster CPU).
        max_restarts: restarts of a shard's actor after it or its node died.

    Returns:
        A :class:`~scireflect.run.runner.RunResult` for the whole run.

    Raises:
        RunError: no endpoint (the embedded model serves one process), Ray missing or unreachable,
            a shard that failed ``max_restarts`` times, unusable run directory.
        EndpointError: an actor found the endpoint failing (finished questions are committed).
    """
    say = on_event or (lambda kind, data: None)
    if settings.uses_embedded:
        raise RunError("--ray needs an OpenAI-compatible endpoint for every role (--base-url or [llm] base_url): "
                       "the embedded model serves one process")
    run_dir = Path(run_dir)
    make_run_dir(run_dir)
    with run_dir_lock(run_dir):
        remove_leftovers(run_dir, say)
        connect(address)
        try:
            return await _drive(questions, run_dir, settings, say, shards, max_restarts)
        finally:
            import ray

            ray.shutdown()


async def _drive(questions: QuestionSet, run_dir: Path, settings: RunSettings, say: ProgressCallback,
                 asked_shards: int | None, max_restarts: int) -> RunResult:
    import ray

    from .shard_worker import ShardWorker

    commits = _Commits(run_dir)
    if commits.repaired_bytes:
        say("warning", {"message": f"removed a partial last line ({commits.repaired_bytes} bytes) from {TRACES}"})
    n_shards = _layout(run_dir, asked_shards, say)
    shard_dirs = {k: run_dir / SHARDS_DIR / str(k) for k in range(n_shards)}
    for shard_dir in (run_dir / SHARDS_DIR).glob("*"):
        if shard_dir.is_dir():
            commits.absorb(shard_dir)  # lines a killed driver had not committed
    total = len(questions)
    pending = [q for q in questions.questions if q["id"] not in commits.ids]
    skipped = total - len(pending)
    earlier = Counter(commits.records[q["id"]]["status"] for q in questions.questions if q["id"] in commits.ids)
    verifier = make_verifier(settings, workers=1)  # for its name and version; no worker is started
    models = {role: s.model or "" for role, s in settings.roles.items()}
    run_id = record_invocation(run_dir, manifest(questions, settings, models, verifier), lambda m: say("warning", {"message": m}))
    if settings.checkpoints and not settings.checkpoint_schema:
        settings = replace(settings, checkpoint_schema=schema_name(run_id))
        await setup_schema(settings.checkpoints, settings.checkpoint_schema)  # once, before any shard opens it
    by_shard: dict[int, list[dict[str, Any]]] = {}
    for q in pending:
        by_shard.setdefault(stable_bucket(q["id"], n_shards), []).append(q)
    say("status", {"message": f"Ray: {len(by_shard)} of {n_shards} shards have work, on "
                              f"{int(ray.cluster_resources().get('CPU', 0))} CPUs of {len(ray.nodes())} node(s)"})
    say("start", {"total": total, "pending": len(pending), "skipped": skipped, "earlier": dict(earlier)})
    worker_cls = ray.remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=0)(ShardWorker)
    statuses: Counter = Counter()
    lost_errors, task_error = _ray_errors()
    actors: dict[int, Any] = {}

    async def forward(shard: int, batch: list[tuple[str, Any]]) -> None:
        for kind, data in batch:
            if kind in ("status", "warning"):
                say(kind, {**data, "message": f"shard {shard}: {data['message']}"})
            elif kind not in ("start", "shard_done", "done"):
                say(kind, data)
        if not batch or any(kind == "done" for kind, _ in batch):
            # A record is shown once, when the driver commits it: also one whose actor died before
            # its "done" event left, and never one a fenced worker reported.
            for qid in await asyncio.to_thread(commits.absorb, shard_dirs[shard]):
                statuses[commits.records[qid]["status"]] += 1
                say("done", commits.records[qid])

    async def drive_shard(shard: int, rows: list[dict[str, Any]]) -> None:
        actor = actors[shard] = worker_cls.remote()
        lease = ShardLease(shard_dirs[shard])
        losses, unavailable_since = 0, None
        while True:
            todo = replace(questions, questions=[q for q in rows if q["id"] not in commits.ids])
            if not todo.questions:
                break
            epoch = await asyncio.to_thread(lease.grant)  # fences off every earlier holder of the shard
            try:
                async for ref in actor.run.remote(shard, epoch, todo, settings, str(shard_dirs[shard])):
                    await forward(shard, await ref)
                    unavailable_since = None
                break
            except (*lost_errors, task_error) as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(exc, task_error) and not isinstance(cause, RunDirBusy):
                    if isinstance(cause, (RunError, EndpointError)):
                        raise type(cause)(str(cause)) from None
                    if isinstance(cause, LeaseLost):
                        raise RunError(f"shard {shard}: {cause}") from None
                    raise
                # The worker or its node was lost, or an earlier worker of the shard still holds the
                # shard directory (a driver's orphan, until Ray stops it): try again.
                kind = type(cause if isinstance(cause, RunDirBusy) else exc).__name__
                if kind in ("ActorUnavailableError", "RunDirBusy"):  # wait for Ray to declare the node (or orphan) dead
                    if unavailable_since is None:
                        unavailable_since = time.monotonic()
                        say("warning", {"message": f"shard {shard}: worker unreachable; waiting for Ray to restart it"
                                                   if kind == "ActorUnavailableError" else
                                                   f"shard {shard}: an earlier worker still holds the shard; waiting for it to stop"})
                    elif time.monotonic() - unavailable_since > UNAVAILABLE_GIVE_UP_S:
                        raise RunError(f"shard {shard}: its worker was unreachable for {UNAVAILABLE_GIVE_UP_S:.0f} s; "
                                       "finished questions are saved, re-run to continue") from None
                else:
                    losses += 1
                    if losses > max_restarts:
                        raise RunError(f"shard {shard}: its worker was lost {losses} times (last: {kind}); "
                                       "finished questions are saved, re-run to continue") from None
                    say("warning", {"message": f"shard {shard}: worker lost ({kind}); restarting it"})
                    if kind == "ActorDiedError":  # gone for good (Ray's restarts spent): a new actor
                        actor = actors[shard] = worker_cls.remote()
                await asyncio.sleep(RESTART_WAIT_S)
            finally:
                await forward(shard, [])  # an empty batch commits what the shard stored, even on failure
        ray.kill(actor)  # frees its CPU for the next shard
        actors.pop(shard, None)

    try:
        await gather_or_cancel([drive_shard(k, rows) for k, rows in sorted(by_shard.items())])
    except BaseException:
        for actor in actors.values():
            with contextlib.suppress(Exception):
                ray.kill(actor)
        raise
    finally:
        for k in by_shard:
            await asyncio.to_thread(commits.absorb, shard_dirs[k])
        summary, sft_count = await asyncio.to_thread(write_outputs, run_dir, commits.records.values())
    if all(q["id"] in commits.ids for q in questions.questions):
        shutil.rmtree(run_dir / SHARDS_DIR, ignore_errors=True)  # every question is in RUN/traces.jsonl
    return RunResult(run_dir=run_dir, total=total, skipped=skipped, finished_now=sum(statuses.values()), summary=summary,
                     sft_count=sft_count, status_counts=statuses)


__all__ = ["annotate_on_ray", "connect", "default_shards"]
