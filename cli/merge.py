"""``scireflect merge``: shard run directories made by hand (``--shard K/N``) into one run, exactly once by id."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from .annotate import _fail, _summary, out


def merge_command(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR", help="Run directories to merge (e.g. the --out of each --shard K/N process)."),
    out_dir: Path = typer.Option(..., "--out", "-o", metavar="DIR",
                                 help="The merged run directory (created; merging into it again adds only new questions)."),
) -> None:
    """Merge run directories into one: every question once in traces.jsonl, then sft.jsonl and summary.json.

    Two different records of one question stop the merge before anything is written (exit 1).
    """
    from ..rundata.errors import RunError
    from ..rundata.lock import run_dir_lock
    from ..rundata.merge import merge_runs
    from ..run.runner import make_run_dir

    try:
        make_run_dir(out_dir)
        with run_dir_lock(out_dir):
            result = merge_runs(run_dirs, out_dir)
    except RunError as exc:
        _fail(str(exc), code=1)
    _summary(out_dir, f"scireflect merge: {out_dir}")
    out.print(Text(f"{result.added} questions merged now ({result.duplicates} already there); {result.total} in "
                   f"{out_dir / 'traces.jsonl'}"))


__all__ = ["merge_command"]
