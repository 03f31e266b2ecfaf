"""Solution attempts as labelled examples, and the one text template the classifier sees.

Labels come from the verifiers, never from formatting: a solution attempt (``kind == "solution"``) whose
verdict is ``ok=True`` is a positive, ``ok=False`` a negative; ``ok=None`` (timeout, checker error) and
attempts without a verdict are left out. Positives and negatives therefore come from the same questions,
the same model and the same prompts. SciGLM's released classifier data (arXiv 2401.07950) drew its
positives from human exam solutions and its negatives from model output, so exam markers alone
separated them (310 of 314 test positives carry them); here both classes are model output.

:func:`classifier_input` builds the classifier's input text. It is used for training, for held-out
evaluation, for ``classify score`` and for the export filter, so training and inference inputs can
never drift apart (SciGLM trained on one template and filtered with another). The text holds the
problem exactly as the Solver saw it (:meth:`PromptSet.problem <scireflect.agents.prompts.PromptSet.problem>`: no reference
answer, no critique) and the response; never the stage, the verdict or the answer given to an
answer-guided revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scireflect.rundata.records import prompts_for, step_check_counts
from scireflect.rundata.store import load_traces

#: Bump when :func:`classifier_input` changes; a model trained on another version refuses to score.
INPUT_TEMPLATE_VERSION = "1"

_TEMPLATE = "### Problem\n{problem}\n\n### Solution\n{response}"


def classifier_input(question: Mapping[str, Any], response: str) -> str:
    """The classifier's input text for one solution of one question (training AND inference).

    Args:
        question: a question record (``question``, optional ``choices``, ``unit``); the reference
            answer is never read.
        response: the solution text (a Solver or Reviser response).

    Returns:
        ``"### Problem\\n<problem>\\n\\n### Solution\\n<response>"`` with both parts stripped.
    """
    return _TEMPLATE.format(problem=prompts_for(question).problem(question).strip(), response=(response or "").strip())


@dataclass
class Attempt:
    """One solution attempt of one trace record.

    Attributes:
        qid: the question id (the grouping key for held-out splits).
        step: the step's index in the record's ``steps``.
        subject, stage: the record's subject; the attempt's stage (``cot``/``reflection``/``answer_guided``).
        question: the question record; response: the solution text.
        label: ``True``/``False`` from the verifier, or ``None`` (no verdict, timeout, checker error).
        reason: the verifier's reason code; model: the model that wrote it; run: the run it came from.
        prompt_version, verifier: versions recorded in the trace.
    """

    qid: str
    step: int
    subject: str
    stage: str
    question: dict[str, Any]
    response: str
    label: bool | None
    reason: str | None = None
    model: str | None = None
    run: str = ""
    prompt_version: str | None = None
    verifier: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """The attempt's tool calls and code executions, as in its trace step (``tool_calls``)."""
    step_claims_checked: int | None = None
    """Calculation claims the step checker checked in this attempt (``None``: it did not run)."""
    step_errors: int | None = None
    """False calculation claims among them."""

    @property
    def key(self) -> str:
        """A unique key within one run: ``"<qid>#<step>"``."""
        return f"{self.qid}#{self.step}"

    @property
    def text(self) -> str:
        """:func:`classifier_input` of this attempt."""
        return classifier_input(self.question, self.response)


def record_attempts(record: Mapping[str, Any], run: str = "") -> list[Attempt]:
    """Every solution attempt of one trace record, in step order (labels may be ``None``)."""
    out = []
    for index, step in enumerate(record.get("steps") or []):
        if step.get("kind", "solution") != "solution" or not isinstance(step.get("response"), str):
            continue
        verdict = step.get("verdict") or {}
        ok = verdict.get("ok")
        checked, errors = step_check_counts(verdict)
        out.append(Attempt(
            qid=str(record["id"]), step=int(step.get("index", index)), subject=str(record.get("subject") or "general"),
            stage=str(step.get("stage") or "cot"), question=dict(record.get("question") or {}),
            response=step["response"], label=ok if isinstance(ok, bool) else None, reason=verdict.get("reason"),
            model=step.get("model"), run=run, prompt_version=record.get("prompt_version"),
            verifier=record.get("verifier") if isinstance(record.get("verifier"), str) else None,
            tool_calls=[c for c in step.get("tool_calls") or [] if isinstance(c, Mapping)],
            step_claims_checked=checked, step_errors=errors,
        ))
    return out


def with_review_labels(attempts: Sequence[Attempt], run_dirs: Iterable[str | Path]) -> tuple[list[Attempt], int]:
    """The attempts with people's review labels (``labels.jsonl``, :mod:`scireflect.rundata.labels`) in place
    of the verifier's on the accepted attempts they judge: a trace labelled ``valid`` keeps ``True``, one
    labelled ``invalid`` becomes ``False`` (a right answer reached by wrong reasoning). Such attempts get
    ``extra["human_label"]`` (the label as a bool). Returns ``(attempts, number relabelled)``; labels of
    traces that changed since are stale and ignored.

    Raises:
        FileNotFoundError, scireflect.rundata.store.TraceFileError: a run's ``traces.jsonl`` is missing or bad.
    """
    from scireflect.rundata.labels import people_labels

    human: dict[tuple[str, str], bool] = {}
    for run_dir in run_dirs:
        current = people_labels(run_dir) or {}
        human.update({(str(run_dir), qid): label["label"] == "valid" for qid, label in current.items()})
    last_true: dict[tuple[str, str], int] = {}
    for i, a in enumerate(attempts):
        if a.label is True:
            last_true[(a.run, a.qid)] = i  # the accepted attempt is a trace's last attempt the verifier accepted
    out = list(attempts)
    for key, i in last_true.items():
        if key in human:
            out[i] = replace(out[i], label=human[key], extra={**out[i].extra, "human_label": human[key]})
    return out, sum(1 for key in last_true if key in human)


def load_attempts(run_dirs: Iterable[str | Path], *, labelled_only: bool = True) -> list[Attempt]:
    """All solution attempts of the given run directories (or ``traces.jsonl`` files).

    Args:
        run_dirs: run directories; a partial last line of a run in progress is ignored.
        labelled_only: drop attempts whose verdict is not ``True``/``False``.

    Raises:
        FileNotFoundError: a run has no ``traces.jsonl``.
        scireflect.rundata.store.TraceFileError: a complete line is not a trace record.
    """
    out: list[Attempt] = []
    for run_dir in run_dirs:
        for record in load_traces(run_dir):
            for attempt in record_attempts(record, run=str(run_dir)):
                if attempt.question.get("question") is None:
                    continue
                if labelled_only and attempt.label is None:
                    continue
                out.append(attempt)
    return out
