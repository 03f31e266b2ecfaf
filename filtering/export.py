"""From annotated runs to a filtered training set, with a dataset card that counts every step.

Pipeline (:func:`build_training_set`), each step counted in the card and in ``filter_report.json``:

1. ``candidates``      every solution attempt the verifier accepted (``verdict.ok is True``), from
                       every run given.
2. ``decontaminate``   drop items whose question overlaps an evaluation set (:mod:`.decontam`).
3. ``answer_guided``   flag answer-guided items that merely restate the given answer (:mod:`.leakage`);
                       policy ``include`` (weight 1), ``downweight`` (flagged items get ``leaky_weight``)
                       or ``drop`` (flagged items removed). Other answer-guided items get
                       ``answer_guided_weight``; CoT and reflection items weight 1.
4. ``classifier``      drop items the quality classifier scores below its threshold (:mod:`.classifier`).
5. ``dedup``           merge exact/near-duplicate questions; keep up to ``max_per_question`` distinct
                       solution paths per question, preferring CoT, then reflection, then answer-guided,
                       then higher classifier score (:mod:`.dedup`).

Formats (``train.jsonl`` unless ``hf``), every row with the metadata ``id``, ``subject``, ``stage``,
``weight``, ``leakage``, ``classifier_score``, ``model``, ``prompt_version``, ``verifier``, ``run``,
``source``:

``jsonl``     SciInstruct's form (THUDM/SciGLM): ``content`` (the problem) and ``summary`` (the solution).
``messages``  OpenAI chat: ``messages`` = [user problem, assistant solution] (read by ``scireflect train``);
              an attempt that called tools has its tool turns in between (assistant ``tool_calls``, then
              ``tool`` results; :func:`scireflect.rundata.records.attempt_messages`). Python run in plain text
              stays inside the assistant message as ```output blocks: tool output, masked by ``train``.
``sharegpt``  ``conversations`` = [{"from": "human", ...}, {"from": "gpt", ...}]; tool turns as
              ``function_call`` (``{"name", "arguments"}`` JSON) and ``observation`` (LLaMA-Factory's names).
``hf``        a ``datasets.Dataset.save_to_disk`` folder with ``prompt``, ``response`` and ``messages``
              columns; load with ``datasets.load_from_disk(DIR)``.

Examples of questions with figures carry them (:mod:`.figures`): an ``images`` list of files under
``images/`` and image parts in ``messages``, or a ``datasets.Image`` column in ``hf``.

The output folder also holds ``README.md`` (the dataset card), ``filter_report.json`` (options and
counts) and ``dropped.jsonl`` (one line per dropped item with its step and reason).

The folder is written atomically: built as ``.<name>.partial-<pid>`` in the same parent, flushed
(fsync) and renamed into place, so an export killed at any point leaves either no folder (or the
previous export) or a complete one. The next export removes such leftovers once their writer's pid
no longer runs (:func:`clean_leftovers`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scireflect.rundata.files import MANIFEST, TRACES
from scireflect.rundata.jsonl import JsonlError, read_json, write_jsonl_atomic
from scireflect.agents.endpoints import redact_url
from scireflect.agents.figures import FigureError
from scireflect.rundata.records import attempt_messages, prompts_for

from .decontam import DEFAULT_N, EvalIndex, build_index, question_text
from .dedup import QuestionGroups, select_diverse
from .examples import Attempt, load_attempts
from .figures import FigureWriter, figure_key, hf_dataset, with_figures
from .leakage import leakage_flags

FORMATS = ("jsonl", "messages", "sharegpt", "hf")
AG_POLICIES = ("include", "downweight", "drop")
STAGE_PREFERENCE = {"cot": 0, "reflection": 1, "answer_guided": 2}


class ExportError(ValueError):
    """The export cannot run (bad option, unreadable run or evaluation set, existing output)."""


@dataclass
class ExportOptions:
    """Options of :func:`build_training_set` (defaults are the CLI's)."""

    format: str = "jsonl"
    eval_sets: list[str] = field(default_factory=list)
    ngram: int = DEFAULT_N
    classifier_dir: str | None = None
    target_precision: float | None = None
    answer_guided: str = "downweight"
    answer_guided_weight: float = 1.0
    leaky_weight: float = 0.25
    max_per_question: int = 4
    keep_invalid_labels: bool = False
    question_threshold: float = 0.8
    solution_threshold: float = 0.7

    def check(self) -> None:
        """Raises :class:`ExportError` on an unknown format or policy, or a weight outside [0, 1]."""
        if self.format not in FORMATS:
            raise ExportError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.answer_guided not in AG_POLICIES:
            raise ExportError(f"unknown --answer-guided policy {self.answer_guided!r}; choose one of {', '.join(AG_POLICIES)}")
        for name in ("answer_guided_weight", "leaky_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ExportError(f"{name} must be in [0, 1]")
        if self.max_per_question < 1:
            raise ExportError("max_per_question must be at least 1")


@dataclass
class Item:
    """One candidate training example (an accepted attempt) as it moves through the filters."""

    attempt: Attempt
    weight: float = 1.0
    leakage: list[str] = field(default_factory=list)
    score: float | None = None
    group: str = ""

    @property
    def ref(self) -> dict[str, Any]:
        a = self.attempt
        return {"id": a.qid, "run": a.run, "step": a.step, "stage": a.stage, "subject": a.subject}


@dataclass
class FilterResult:
    """The kept items, the dropped ones (``ref`` + ``step`` + ``reason`` + details), the step counts; after
    :func:`export_training_set`, ``cleaned``: the leftovers of killed exports it removed (path, writer pid)."""

    kept: list[Item]
    dropped: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    classifier: dict[str, Any] | None = None
    eval_sets: dict[str, int] = field(default_factory=dict)
    cleaned: list[tuple[Path, int]] = field(default_factory=list)


def _step(steps: list[dict[str, Any]], name: str, before: int, after: int, **details: Any) -> None:
    steps.append({"step": name, "in": before, "kept": after, "dropped": before - after, **details})


def build_training_set(run_dirs: Sequence[str | Path], options: ExportOptions) -> FilterResult:
    """Run the filter pipeline of the module docstring over the accepted attempts of ``run_dirs``.

    Raises:
        ExportError: bad options, or an unreadable evaluation set / classifier directory.
        FileNotFoundError: a run has no ``traces.jsonl``.
    """
    options.check()
    steps: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    attempts = load_attempts(run_dirs)
    items = [Item(a) for a in attempts if a.label is True]
    _step(steps, "candidates", len(attempts), len(items), note="in: solution attempts with a True/False verdict; kept: those the verifier accepted")

    from scireflect.rundata.labels import invalid_by_review

    invalid = {str(run): invalid_by_review(run) for run in run_dirs}
    if any(v is not None for v in invalid.values()):
        before, kept = len(items), []
        for item in items:
            label = (invalid.get(item.attempt.run) or {}).get(item.attempt.qid)
            if label is not None and not options.keep_invalid_labels:
                dropped.append({**item.ref, "filter": "review", "reason": f"labelled invalid: {label.get('reason')}",
                                "reviewer": label.get("reviewer")})
            else:
                kept.append(item)
        items = kept
        _step(steps, "review", before, len(items), kept_invalid=options.keep_invalid_labels,
              labelled_invalid=sum(len(v or {}) for v in invalid.values()),
              note="people's labels (labels.jsonl): traces labelled invalid are left out unless --keep-invalid-labels")

    eval_sets: dict[str, int] = {}
    if options.eval_sets:
        from .decontam import EvalSetError

        try:
            index: EvalIndex = build_index(options.eval_sets, n=options.ngram)
        except EvalSetError as exc:
            raise ExportError(str(exc)) from None
        eval_sets = dict(index.files)
        before, kept = len(items), []
        for item in items:
            hit = index.match(question_text(item.attempt.question) or "")
            if hit:
                dropped.append({**item.ref, "filter": "decontaminate", "reason": f"eval_{hit.kind}", **hit.as_dict()})
            else:
                kept.append(item)
        items = kept
        _step(steps, "decontaminate", before, len(items), n=options.ngram, eval_sets=eval_sets)
    else:
        _step(steps, "decontaminate", len(items), len(items), note="no evaluation sets given (--decontaminate)")

    before, kept = len(items), []
    flagged = 0
    for item in items:
        if item.attempt.stage == "answer_guided":
            item.leakage = leakage_flags(item.attempt.response, item.attempt.question)
            item.weight = options.answer_guided_weight
            if item.leakage:
                flagged += 1
                if options.answer_guided == "drop":
                    dropped.append({**item.ref, "filter": "answer_guided", "reason": "leakage:" + ",".join(item.leakage)})
                    continue
                if options.answer_guided == "downweight":
                    item.weight = options.leaky_weight
                else:
                    item.weight = 1.0
        kept.append(item)
    items = kept
    _step(steps, "answer_guided", before, len(items), policy=options.answer_guided, flagged=flagged,
          answer_guided=sum(1 for i in items if i.attempt.stage == "answer_guided"),
          weights=dict(sorted(Counter(i.weight for i in items).items())))

    classifier_info = None
    if options.classifier_dir:
        from .classifier import ClassifierError, load_classifier

        try:
            clf = load_classifier(options.classifier_dir)
        except ClassifierError as exc:
            raise ExportError(str(exc)) from None
        th = clf.threshold_for(options.target_precision) if options.target_precision is not None else clf.config["threshold"]
        scores = clf.score([i.attempt for i in items]) if items else []
        before, kept = len(items), []
        for item, s in zip(items, scores, strict=True):
            item.score = float(s)
            if s >= th["threshold"]:
                kept.append(item)
            else:
                dropped.append({**item.ref, "filter": "classifier", "reason": "below_threshold", "score": round(s, 4),
                                "threshold": th["threshold"]})
        items = kept
        classifier_info = {"dir": str(options.classifier_dir), "head": clf.config["head"], "encoder": _encoder_name(clf.config),
                           "lm": clf.config.get("lm_base"), "seed": clf.config.get("seed"), "threshold": th,
                           "input_template_version": clf.config["input_template_version"],
                           "heldout_roc_auc": clf.metrics.get("roc_auc"), "heldout_ece": clf.metrics.get("ece"),
                           "shortcuts": clf.metrics.get("shortcuts"), "evaluation": clf.config.get("evaluation"),
                           "trained_on": clf.config.get("data")}
        _step(steps, "classifier", before, len(items), threshold=th["threshold"], target_precision=th["target"])
    else:
        _step(steps, "classifier", len(items), len(items), note="no classifier given (--classifier)")

    groups: dict[str, QuestionGroups] = {}  # questions are merged only when their figures are the same
    merged = Counter()
    by_group: dict[str, list[Item]] = {}
    for item in items:
        text = question_text(item.attempt.question) or ""
        key = figure_key(item.attempt.question)
        group = groups.setdefault(key, QuestionGroups(threshold=options.question_threshold))
        gid, how = group.assign(f"{item.attempt.run}:{item.attempt.qid}", text)
        gid = f"{key}:{gid}" if key else gid
        if how:
            merged[how] += 1
        item.group = gid
        by_group.setdefault(gid, []).append(item)
    before, kept = len(items), []
    for members in by_group.values():
        members.sort(key=lambda i: (STAGE_PREFERENCE.get(i.attempt.stage, 3), -(i.score or 0.0), -i.weight))
        keep, drop = select_diverse(members, lambda i: i.attempt.response, max_per_question=options.max_per_question,
                                    solution_threshold=options.solution_threshold)
        kept += keep
        dropped += [{**i.ref, "filter": "dedup", "reason": reason, "group": i.group} for i, reason in drop]
    order = {id(i): n for n, i in enumerate(items)}
    items = sorted(kept, key=lambda i: order[id(i)])
    _step(steps, "dedup", before, len(items), questions=len(by_group), figure_sets=len([k for k in groups if k]),
          merged_questions=dict(merged),
          max_per_question=options.max_per_question, question_threshold=options.question_threshold,
          solution_threshold=options.solution_threshold,
          reasons=dict(Counter(d["reason"] for d in dropped if d["filter"] == "dedup")))
    return FilterResult(kept=items, dropped=dropped, steps=steps, classifier=classifier_info, eval_sets=eval_sets)


# ------------------------------------------------------------------------------------------- writers


def _row(item: Item, fmt: str) -> dict[str, Any]:
    a = item.attempt
    prompt = prompts_for(a.question).problem(a.question)
    meta = {"id": a.qid, "subject": a.subject, "stage": a.stage, "weight": item.weight, "leakage": item.leakage,
            "classifier_score": item.score, "model": a.model, "prompt_version": a.prompt_version, "verifier": a.verifier,
            "run": a.run, "step": a.step, "source": a.question.get("source"),
            "reference_answer": None if a.question.get("answer") is None else str(a.question.get("answer")),
            "n_tool_calls": len(a.tool_calls), "step_claims_checked": a.step_claims_checked, "step_errors": a.step_errors}
    messages = attempt_messages(prompt, {"response": a.response, "tool_calls": a.tool_calls})
    if fmt == "jsonl":
        return {"content": prompt, "summary": a.response, **meta}
    if fmt == "messages":
        return {"messages": messages, **meta}
    if fmt == "sharegpt":
        return {"conversations": _sharegpt(messages), **meta}
    return {"prompt": prompt, "response": a.response, "messages": messages, **meta}


def _sharegpt(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """OpenAI messages as ShareGPT turns: human, gpt, function_call (one per call), observation."""
    turns = []
    for m in messages:
        if m["role"] == "user":
            turns.append({"from": "human", "value": m["content"]})
        elif m["role"] == "tool":
            turns.append({"from": "observation", "value": m["content"]})
        elif m.get("tool_calls"):
            turns += [{"from": "function_call", "value": json.dumps({"name": c["function"]["name"],
                                                                     "arguments": json.loads(c["function"]["arguments"])},
                                                                    ensure_ascii=False)} for c in m["tool_calls"]]
        else:
            turns.append({"from": "gpt", "value": m["content"]})
    return turns


def _redacted_roles(roles: Any) -> Any:
    """A run manifest's roles with their endpoint URLs redacted (manifests from before redaction held credentials)."""
    if not isinstance(roles, dict):
        return roles
    return {role: {**r, "base_url": redact_url(r.get("base_url")) if r.get("base_url") != "embedded" else "embedded",
                   "replicas": [redact_url(u) for u in r.get("replicas") or []]} if isinstance(r, dict) else r
            for role, r in roles.items()}


def _run_manifests(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    out = []
    for run_dir in run_dirs:
        path = Path(run_dir)
        path = path.parent if path.is_file() else path
        entry: dict[str, Any] = {"run": str(run_dir)}
        traces = path / TRACES
        if traces.is_file():
            entry["traces_sha256"] = hashlib.sha256(traces.read_bytes()).hexdigest()
        try:
            runs = read_json(path / MANIFEST, what="the run manifest").get("runs") or []
        except (JsonlError, AttributeError):
            runs = []
        if runs:
            s = runs[-1].get("settings", {})
            entry.update({"input": s.get("input"), "prompt_version": s.get("prompt_version"), "verifier": s.get("verifier"),
                          "budget": s.get("budget"), "roles": _redacted_roles(s.get("roles")), "invocations": len(runs)})
        out.append(entry)
    return out


def _card(result: FilterResult, options: ExportOptions, run_dirs: Sequence[str | Path], manifests: list[dict[str, Any]],
          files: list[str]) -> str:
    kept = result.kept
    lines = [
        "---", "language: [en]", "task_categories: [text-generation]", "tags: [scireflect, chain-of-thought, science, math]",
        "---", "", "# scireflect training set", "",
        f"Made by `scireflect export` on {datetime.now(UTC).isoformat(timespec='seconds')} from {len(run_dirs)} annotated "
        f"run(s): {len(kept)} examples ({len({i.group for i in kept})} questions), format `{options.format}`.",
        "Every solution was accepted by a deterministic answer verifier against the reference answer; the "
        "filters below were then applied in this order.", "",
        "## Filter steps", "", "| step | in | kept | dropped | details |", "|---|---:|---:|---:|---|",
    ]
    for s in result.steps:
        details = {k: v for k, v in s.items() if k not in ("step", "in", "kept", "dropped")}
        lines.append(f"| {s['step']} | {s['in']} | {s['kept']} | {s['dropped']} | `{json.dumps(details, sort_keys=True)}` |")
    lines += ["", "## Content", "", "| stage | examples | total weight |", "|---|---:|---:|"]
    for stage in STAGE_PREFERENCE:
        rows = [i for i in kept if i.attempt.stage == stage]
        lines.append(f"| {stage} | {len(rows)} | {sum(i.weight for i in rows):g} |")
    lines += ["", "| subject | examples |", "|---|---:|"]
    for subject, n in sorted(Counter(i.attempt.subject for i in kept).items()):
        lines.append(f"| {subject} | {n} |")
    models = sorted({i.attempt.model or "?" for i in kept})
    lines += ["", "## Provenance", "",
              f"- models (solutions kept): {', '.join(models) or 'none'}",
              f"- prompt versions: {', '.join(sorted({i.attempt.prompt_version or '?' for i in kept})) or 'none'}",
              f"- verifier versions: {', '.join(sorted({i.attempt.verifier or '?' for i in kept})) or 'none'}", ""]
    for m in manifests:
        if "roles" not in m:
            lines.append(f"- run `{m['run']}`: traces sha256 `{m.get('traces_sha256', '?')}`; no run.json (settings unknown)")
            continue
        roles = {k: f"{v.get('model')} (temperature {v.get('temperature')}, max_tokens {v.get('max_tokens')})"
                 for k, v in (m.get("roles") or {}).items()}
        lines.append(f"- run `{m['run']}`: traces sha256 `{m.get('traces_sha256', '?')}`, input `{(m.get('input') or {}).get('path')}` "
                     f"(sha256 `{(m.get('input') or {}).get('sha256')}`), prompt version {m.get('prompt_version')}, "
                     f"verifier `{json.dumps(m.get('verifier'))}`, budget `{json.dumps(m.get('budget'))}`, roles `{json.dumps(roles)}`")
    lines.append("- seeds: the annotation loop sets no sampling seed (sampling at the recorded temperatures is not "
                 "reproducible); MinHash uses datasketch's fixed seed 1; the classifier's seed is listed below.")
    lines += ["", "## Decontamination", ""]
    if result.eval_sets:
        lines.append(f"Word {options.ngram}-gram overlap (GPT-3 / Llama 2 test) and normalised exact match against:")
        lines += [f"- `{f}` ({n} questions)" for f, n in result.eval_sets.items()]
        drops = [d for d in result.dropped if d["filter"] == "decontaminate"]
        lines.append(f"\n{len(drops)} item(s) dropped:")
        lines += [f"- `{d['id']}` ({d['run']}): {d['kind']} match with `{d['eval_id']}` in `{d['eval_file']}`: \"{d['ngram'][:120]}\""
                  for d in drops[:100]]
        if len(drops) > 100:
            lines.append(f"- ... and {len(drops) - 100} more (see dropped.jsonl)")
    else:
        lines.append("No evaluation sets were given: **the data is not decontaminated**.")
    lines += ["", "## Answer-guided traces", "",
              f"Policy `{options.answer_guided}`; answer-guided weight {options.answer_guided_weight:g}, weight of those flagged as "
              f"restating the given answer {options.leaky_weight if options.answer_guided == 'downweight' else 1.0:g} "
              "(flags: answer_first, too_short, given_phrase, no_steps). The `weight` field carries it; trainers that "
              "ignore it treat every row alike.", "", "## Quality classifier", ""]
    c = result.classifier
    if c:
        th = c["threshold"]
        lines += [f"- model dir `{c['dir']}`, head `{c['head']}`, encoder `{c.get('encoder') or c.get('lm')}`, "
                  f"input template v{c['input_template_version']}, seed {c['seed']}",
                  f"- threshold {th['threshold']:.4f} chosen for held-out precision {th['target']} "
                  f"(reached: {th['reachable']}, held-out precision {th['precision']}, recall {th['recall']})",
                  f"- held-out ({c['evaluation']}): ROC-AUC {c['heldout_roc_auc']}, ECE {c['heldout_ece']}; "
                  f"shortcut ROC-AUCs {json.dumps(c['shortcuts'])}",
                  f"- trained on `{json.dumps(c['trained_on'])}`"]
    else:
        lines.append("No classifier filter was applied.")
    lines += ["", "## Deduplication", "",
              f"Questions merged at word-3-gram Jaccard >= {options.question_threshold} (MinHash LSH) or equal normalised "
              f"text (questions with figures only when their figures are the same); per question at most {options.max_per_question} solution paths, distinct by text (Jaccard < "
              f"{options.solution_threshold}) and by equation list (RFT, Yuan et al. 2023).", "",
              "## Files", ""] + [f"- `{f}`" for f in files] + [
              "", "Load: " + ("`datasets.load_from_disk(DIR)`" if options.format == "hf" else "`datasets.load_dataset('json', data_files='DIR/train.jsonl')`"),
              ""]
    return "\n".join(lines)


def _encoder_name(config: Mapping[str, Any]) -> str | None:
    """What a classifier reads its input with: the sentence encoder, or the probed GGUF model."""
    if config.get("head") == "probe":
        return f"llama.cpp {config['probe_model']} hidden states, {config['probe_pooling']} pooling"
    return config.get("encoder")


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (signal 0 is a permission and existence check)."""
    if pid == os.getpid():
        return False  # a leftover with our own pid is from an earlier process that had it: we have not started writing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def clean_leftovers(out_dir: str | Path) -> list[tuple[Path, int]]:
    """Remove what killed exports to ``out_dir`` left beside it; return ``(path, pid)`` of each removed.

    An export writes ``.<name>.partial-<pid>`` (and, when replacing a previous export,
    ``.<name>.replaced-<pid>``) in the same parent folder as ``out_dir``; ``<pid>`` is the writer's
    process id. A leftover whose writer no longer runs is removed.

    Raises:
        ExportError: a leftover's writer is still running (another export to the same folder).
    """
    out_dir = Path(os.path.abspath(out_dir))
    if not out_dir.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.(?:partial|replaced)-(\d+)")
    removed = []
    for path in sorted(out_dir.parent.iterdir()):
        m = pattern.fullmatch(path.name)
        if not m:
            continue
        pid = int(m.group(1))
        if _pid_running(pid):
            raise ExportError(f"another export (pid {pid}) is writing {out_dir} ({path} exists); wait for it, or stop it")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append((path, pid))
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, out_dir: Path) -> None:
    """Move the finished ``tmp`` folder to ``out_dir`` by rename, after flushing it to disk.

    ``out_dir`` is absent, empty (replaced in one rename) or a previous export (moved aside to
    ``.<name>.replaced-<pid>`` first, then removed). A reader sees no folder or a complete one.
    """
    for folder, _, files in os.walk(tmp):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync(Path(folder))
    if out_dir.is_dir() and any(out_dir.iterdir()):
        old = out_dir.parent / f".{out_dir.name}.replaced-{os.getpid()}"
        os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        _fsync(out_dir.parent)
        shutil.rmtree(old)
    else:
        try:
            os.replace(tmp, out_dir)
        except OSError as exc:  # another process filled it meanwhile
            raise ExportError(f"cannot move the export into {out_dir}: {exc}") from None
        _fsync(out_dir.parent)


def _write(out_dir: Path, result: FilterResult, options: ExportOptions, run_dirs: Sequence[str | Path]) -> None:
    """Write the rows, ``dropped.jsonl``, ``filter_report.json`` and the card into the (empty) ``out_dir``."""
    figures = FigureWriter(None if options.format == "hf" else out_dir)
    try:
        rows = [with_figures(_row(i, options.format), options.format, figures.figures(i.attempt)) for i in result.kept]
    except FigureError as exc:
        raise ExportError(str(exc)) from None
    files: list[str] = [f"images/ ({len(figures.written)} figures)"] if figures.written else []
    if options.format == "hf":
        import datasets

        if rows:
            ds = hf_dataset(rows)
        else:
            ds = datasets.Dataset.from_dict({k: [] for k in _row(Item(Attempt("x", 0, "", "", {"question": ""}, "", True)), "hf")})
        ds.save_to_disk(str(out_dir))
        files += sorted(p.name for p in out_dir.iterdir())
    else:
        write_jsonl_atomic(out_dir / "train.jsonl", rows)
        files.append("train.jsonl")
    write_jsonl_atomic(out_dir / "dropped.jsonl", result.dropped)
    manifests = _run_manifests(run_dirs)
    report = {"options": asdict(options), "runs": manifests, "steps": result.steps, "classifier": result.classifier,
              "examples": len(rows), "eval_sets": result.eval_sets}
    (out_dir / "filter_report.json").write_text(json.dumps(report, indent=1) + "\n")
    files += ["dropped.jsonl", "filter_report.json", "README.md"]
    (out_dir / "README.md").write_text(_card(result, options, run_dirs, manifests, files))


def export_training_set(run_dirs: Sequence[str | Path], out_dir: str | Path, options: ExportOptions, *, overwrite: bool = False) -> FilterResult:
    """Filter (:func:`build_training_set`) and write the training set, the card and the reports to ``out_dir``.

    Atomic: everything is written into ``.<name>.partial-<pid>`` beside ``out_dir``, flushed to disk and
    renamed into place at the end, so a killed export leaves no ``out_dir`` (or the previous one), never a
    half-written one. Leftovers of killed exports are removed first (:func:`clean_leftovers`; listed in
    the result's ``cleaned``).

    Args:
        overwrite: replace ``out_dir`` when it holds a previous export (a ``filter_report.json``).

    Raises:
        ExportError: ``out_dir`` is not empty (unless ``overwrite`` and it holds a previous export), another
            export to it is running, or see :func:`build_training_set`.
    """
    out_dir = Path(os.path.abspath(out_dir))
    options.check()
    cleaned = clean_leftovers(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise ExportError(f"{out_dir} is not empty; pass --overwrite or choose another folder")
        if not (out_dir / "filter_report.json").is_file():
            raise ExportError(f"{out_dir} is not empty and holds no filter_report.json: --overwrite only replaces a previous export")
    result = build_training_set(run_dirs, options)
    result.cleaned = cleaned
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    tmp.mkdir()
    try:
        _write(tmp, result, options, run_dirs)
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
