"""Reading the LangGraph checkpoints of a run directory from outside the run (the viewer's questions in progress)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..graphs.state import solution_steps, total_seconds, total_tokens


def read_in_progress(path: str | Path) -> dict[str, dict[str, Any]]:
    """The questions in progress of a ``checkpoints.sqlite`` (opened read-only), each as a pseudo trace record.

    Returns ``{id: record}`` built from each thread's latest checkpoint: ``id``, ``subject``,
    ``status`` (``running``), ``question``, ``steps``, ``n_attempts``, ``tokens``, ``seconds``,
    ``updated_at``.

    Raises:
        sqlite3.Error and others: the database is missing, locked or not a checkpoint database.
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=1.0, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        threads = [row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = ''")]
        out = {}
        for thread in threads:
            saved = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
            if saved is None:
                continue
            values = saved.checkpoint.get("channel_values") or {}
            question = dict(values.get("question") or {"id": thread})
            question = {k: v for k, v in question.items() if not str(k).startswith("_")}
            steps = list(values.get("steps") or [])
            out[thread] = {
                "id": thread,
                "subject": question.get("subject", "general"),
                "status": "running",
                "stop_reason": None,
                "accepted_stage": None,
                "n_attempts": len(solution_steps(steps)),
                "tokens": total_tokens(steps),
                "seconds": round(total_seconds(steps), 3),
                "updated_at": saved.checkpoint.get("ts"),
                "question": question,
                "steps": steps,
            }
        return out
    finally:
        conn.close()


__all__ = ["read_in_progress"]
