"""``run.json``: what each invocation of a run directory used (input hash, models, versions, budget)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..agents.endpoints import redact_url
from ..agents.prompts import PROMPT_VERSION
from ..rundata.errors import RunError
from ..rundata.files import MANIFEST
from ..rundata.jsonl import JsonlError, read_json, write_json_atomic
from ..rundata.questions import QuestionSet
from .config import RunSettings


def manifest(questions: QuestionSet, settings: RunSettings, models: Mapping[str, str], verifier: Any, *,
             prompt_version: str = PROMPT_VERSION) -> dict[str, Any]:
    """The settings record of one invocation (``verifier`` has ``name`` and ``version``; ``prompt_version``
    is that of the answer prompt set in use, e.g. the Python-tool variant's)."""
    return {
        "scireflect_version": __version__,
        "input": {"path": str(questions.path), "sha256": questions.sha256, "dir": str(Path(questions.path).resolve().parent)},
        "prompt_version": prompt_version,
        "verifier": {"name": verifier.name, "version": verifier.version, **asdict(settings.verifier)},
        "budget": {**asdict(settings.budget), "order": list(settings.budget.order)},  # the order in effect
        "concurrency": settings.concurrency,
        "questions_in_flight": settings.questions_in_flight,
        "checkpoints": redact_url(settings.checkpoints) or "sqlite",
        "tools": list(settings.tools),
        "tool_format": settings.tool_format,
        "prompt_variant": settings.prompt_variant,
        **({"figures": settings.figures, "ocr": settings.ocr, "mmproj": str(settings.mmproj_path) if settings.mmproj_path else None}
           if questions.has_figures else {}),
        "roles": {
            role: {"model": models[role], "base_url": redact_url(s.base_url) or "embedded", "replicas": [redact_url(u) for u in s.replicas],
                   "temperature": s.temperature, "max_tokens": s.max_tokens}
            for role, s in settings.roles.items()
        },
        **({"embedded_server": {"speculative": settings.speculative, "slot_affinity": settings.slot_affinity,
                                "threads": settings.embedded_threads}} if settings.uses_embedded else {}),
    }


def record_invocation(run_dir: Path, settings_record: dict[str, Any], warn: Any) -> str:
    """Append one invocation to ``run_dir/run.json`` (written atomically) and return the run's id.

    ``warn(message)`` is told when the input file or the settings changed since the last invocation.
    The run id (``run_id``, 16 hex digits) is made on the first invocation and kept; it names the
    run's schema of PostgreSQL checkpoints.

    Raises:
        RunError: ``run.json`` is not valid JSON (edited by hand).
    """
    path = run_dir / MANIFEST
    runs: list[dict[str, Any]] = []
    run_id = None
    if path.exists():
        try:
            previous = read_json(path, what="the run manifest")
        except JsonlError as exc:
            raise RunError(f"{exc}; was the run directory edited by hand?") from None
        runs = previous.get("runs", []) if isinstance(previous, dict) else []
        run_id = previous.get("run_id") if isinstance(previous, dict) else None
        last = runs[-1]["settings"] if runs else {}
        if last and last.get("input", {}).get("sha256") != settings_record["input"]["sha256"]:
            warn("the input file changed since the last run in this directory; questions are matched by id")
        if last and {k: v for k, v in last.items() if k != "input"} != {k: v for k, v in settings_record.items() if k != "input"}:
            warn("settings differ from the last run in this directory; each trace records its own models and versions")
    runs.append({"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "settings": settings_record})
    run_id = run_id if isinstance(run_id, str) and re.fullmatch(r"[0-9a-f]{16}", run_id) else uuid.uuid4().hex[:16]
    write_json_atomic(path, {"run_id": run_id, "runs": runs})
    return run_id


__all__ = ["manifest", "record_invocation", "redact_url"]
