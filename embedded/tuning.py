"""How the embedded server uses the machine: slots, threads and batch sizes, and speculative decoding.

The figures behind each default are in ``benchmarks/bench_embedded.py`` and docs/benchmarks.md,
"Embedded model speed" section (measured on 2 cores; rerun the benchmark on other machines).

Speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
Decoding", arXiv 2211.17192; llama.cpp's ``draft-simple``): a small draft model of the same
tokenizer proposes up to ``n_max`` tokens, the target model checks them in one batch and keeps the
longest prefix it would itself have produced, plus its own next token. llama.cpp samples each
position with the target's sampler and stops at the first mismatch, so the output follows the
target's choices; but scoring N tokens in one batch runs other CPU kernels than scoring one, which
round differently, so at a near-tie of the two best tokens greedy output can differ from a run
without a draft (``tests/test_speculative_identity.py``). That is why it is not on by default.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DraftSettings:
    """A draft model for speculative decoding.

    Attributes:
        path: the draft GGUF file (same tokenizer as the served model).
        name: its display name (recorded in the server log and the run manifest).
        n_max: most tokens drafted per step.
        n_min: fewest drafted tokens worth checking (shorter drafts are dropped).
        p_min: the draft stops at a token whose draft probability is below this (llama.cpp's
            greedy draft confidence).
    """

    path: Path
    name: str
    n_max: int = 8
    n_min: int = 0
    p_min: float = 0.75


#: The draft model of each embedded model that has one: a smaller model of the same family and
#: tokenizer (Qwen2.5-Coder's 151k vocabulary). Used when both are installed and ``speculative``
#: is ``auto`` (``--speculative auto``).
DRAFT_MODELS: dict[str, str] = {
    "qwen2.5-coder-1.5b-instruct-q4_k_m": "qwen2.5-coder-0.5b-instruct-q4_k_m",
}

#: ``speculative`` settings: ``off`` (the default), ``auto`` (a draft when one is installed for the
#: model), or a draft model name/alias to use whatever the served model.
SPECULATIVE_CHOICES = ("off", "auto")


@dataclass(frozen=True)
class ServerTuning:
    """Slots, threads and batch sizes of the embedded llama.cpp server.

    Attributes:
        slots: requests decoded concurrently (continuous batching); the run's concurrency.
        threads: CPU threads for generation and prompt processing.
        batch: llama.cpp's logical batch (``n_batch``): most prompt tokens submitted per decode call.
        ubatch: llama.cpp's physical batch (``n_ubatch``): tokens computed in one graph evaluation.
    """

    slots: int
    threads: int
    batch: int = 2048
    ubatch: int = 512

    @classmethod
    def for_machine(cls, cores: int | None = None, slots: int | None = None, threads: int | None = None) -> ServerTuning:
        """Settings for a machine with ``cores`` CPU cores (default: the cores this process may use).

        ``slots`` (the run's ``--concurrency``) wins when given, else :func:`default_slots`. One
        thread per core: llama.cpp's threads spin while they wait for each other, so a second
        thread on a core only slows both.
        """
        n = max(1, cores or available_cores())
        return cls(slots=max(1, slots if slots is not None else default_slots(n)), threads=max(1, threads or n))


class SlotAffinity:
    """Keeps each question's calls on one server slot, so that each call finds the question's
    earlier prompt (system prompt, problem, previous attempt) in the slot's cache.

    llama.cpp keeps the last prompt of each slot and processes only what follows the longest
    common prefix with it (``cache_prompt``); a request names its slot with ``id_slot``. A key (a
    question id) keeps its slot while no other key's call is running there; a key seen for the
    first time, or whose slot is taken, gets a free slot, the one idle longest. With at most
    ``slots`` calls at once there is always a free slot, so a call never waits behind another
    question's (llama.cpp queues a request for a busy slot).

    Args:
        slots: the server's slot count.

    Not thread-safe: use from one event loop.
    """

    def __init__(self, slots: int):
        self.slots = max(1, slots)
        self._slot_of: dict[str, int] = {}
        self._busy: dict[int, int] = {}  # slot -> calls running
        self._idle_since = dict.fromkeys(range(self.slots), 0.0)

    @contextlib.contextmanager
    def request_options(self, key: str) -> Iterator[dict[str, object]]:
        """For the duration of one call of ``key``: ``{"id_slot": n, "cache_prompt": True}``, the
        request-body options of llama.cpp's server (sent to the embedded server only)."""
        slot = self._slot_of.get(key)
        if slot is None or self._busy.get(slot, 0) > 0:
            free = [s for s in range(self.slots) if self._busy.get(s, 0) == 0] or list(range(self.slots))
            slot = min(free, key=lambda s: self._idle_since[s])
            self._slot_of = {k: v for k, v in self._slot_of.items() if v != slot}
            self._slot_of[key] = slot
        self._busy[slot] = self._busy.get(slot, 0) + 1
        try:
            yield {"id_slot": slot, "cache_prompt": True}
        finally:
            self._busy[slot] -= 1
            self._idle_since[slot] = time.monotonic()


def default_slots(cores: int) -> int:
    """The embedded server's slots (and the run's concurrency) on ``cores`` CPU cores, when not given.

    2 up to 4 cores, then one per 2 cores, at most 8. Measured on 2 cores (``benchmarks/bench_embedded.py``):
    2 slots generate more tokens per second than 4 there, because one decode step of 2 sequences,
    or of 2 sequences with their drafted tokens, already keeps both cores busy; more slots only
    add prompt processing that competes with generation. Above 4 cores the batch of one step is
    split over more threads, so more sequences per step pay; that rule is an estimate, not
    measured here (rerun the benchmark with ``--slots``).
    """
    return min(8, max(2, cores // 2))


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


__all__ = ["DRAFT_MODELS", "SPECULATIVE_CHOICES", "DraftSettings", "ServerTuning", "SlotAffinity", "available_cores", "default_slots"]
