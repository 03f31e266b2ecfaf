"""The files derived from ``traces.jsonl`` at the end of every run, local, Ray or merged:
``sft.jsonl`` (one SFT pair per accepted question) and ``summary.json`` (outcomes per subject),
both written atomically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .files import SFT, SUMMARY
from .jsonl import write_json_atomic, write_jsonl_atomic
from .records import sft_pair
from .summary import Outcomes, summarize


def write_outputs(run_dir: Path, records: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Outcomes], int]:
    """Write ``run_dir/sft.jsonl`` and ``run_dir/summary.json`` from the finished questions' records.

    Returns:
        ``(summary by subject with "all", SFT pairs written)``.
    """
    records = list(records)
    sft_count = write_jsonl_atomic(Path(run_dir) / SFT, filter(None, map(sft_pair, records)))
    summary = summarize(records)
    write_json_atomic(Path(run_dir) / SUMMARY, {k: v.to_dict() for k, v in summary.items()})
    return summary, sft_count


__all__ = ["write_outputs"]
