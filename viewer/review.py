"""Review in the viewer: a seeded, stratified sample of accepted traces, labelled one at a time.

The sample order (:class:`ReviewSample`) is :func:`scireflect.rundata.labels.review_order`: a proportional
stratified sample by subject and stage, so any prefix a reviewer labels holds each stratum in about
its share of the run, and the precision of a prefix estimates the run's. Labels go to ``labels.jsonl``
(:mod:`scireflect.rundata.labels`), never anywhere else.
"""

from __future__ import annotations

import threading
from typing import Any

from ..rundata.labels import current_labels, is_model_reviewer, read_labels, review_order, trace_hash
from .index import TraceIndex


class ReviewSample:
    """The review order of a run's accepted traces (see the module docstring).

    Args:
        index: the run's :class:`~scireflect.viewer.index.TraceIndex`.
        seed: the sample's seed: the same run and seed give the same order.
    """

    def __init__(self, index: TraceIndex, seed: int = 0):
        self.index = index
        self.seed = seed
        self._key: tuple[int, int] | None = None
        self._order: list[str] = []
        self._ids: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def order(self) -> list[str]:
        """The ids of the accepted traces in review order (recomputed when the run has new traces)."""
        return self._current()[0]

    def ids(self) -> frozenset[str]:
        """The same ids as a set (for counting what is labelled), kept with the order."""
        return self._current()[1]

    def _current(self) -> tuple[list[str], frozenset[str]]:
        self.index.refresh()
        with self._lock:
            key = (self.index.generation, len(self.index.rows))
            if key != self._key:
                self._order = review_order(self.index.rows, self.seed)
                self._ids, self._key = frozenset(self._order), key
            return self._order, self._ids


def review_item(index: TraceIndex, sample: ReviewSample, pos: int, run_dir: Any) -> dict[str, Any] | None:
    """The ``pos``-th trace of the review order with its current label (people's), or ``None`` past the end:
    ``{"pos", "total", "labelled", "record", "hash", "label"}``."""
    order = sample.order()
    if not 0 <= pos < len(order):
        return None
    record = index.record(order[pos])
    if record is None:
        return None
    labels, _ = read_labels(run_dir)
    current, _ = current_labels([record], labels)
    labelled_ids = {label["id"] for label in labels if not is_model_reviewer(label["reviewer"]) and label["label"] != "skip"}
    return {"pos": pos, "total": len(order), "labelled": len(labelled_ids & sample.ids()), "record": record,
            "hash": trace_hash(record), "label": current.get(record["id"])}


__all__ = ["ReviewSample", "review_item"]
