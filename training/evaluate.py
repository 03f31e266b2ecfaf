"""Evaluate a model on benchmark JSONL files with scireflect's own prompt and verifier.

A benchmark file has the schema of the question files (:func:`scireflect.rundata.questions.load_questions`):
``id``, ``question``, ``answer`` required; ``subject``, ``unit``, ``choices``, ... optional. Every
question is put to the model with the Solver prompt (:data:`scireflect.agents.prompts.SOLVER_PROMPT`,
the subject variant picked from the question's ``subject``), and the response is checked with
:class:`scireflect.verifiers.SandboxedAnswerVerifier`: exactly the check that decides whether an
annotation is accepted, so accuracy before and after fine-tuning is measured the way the training data
was selected.

Three kinds of model (:class:`ModelSpec`):

* an OpenAI-compatible endpoint (``base_url`` + ``model``; the key from ``$OPENAI_API_KEY``);
* the embedded llama.cpp model (:mod:`scireflect.embedded`), the default;
* a local transformers model directory (``hf_path``), run with greedy decoding through its chat
  template (or one supplied), e.g. the output of ``scireflect train``.

Questions with figures (``images``; checked when the file is read) get them as ``image_url`` parts
(:class:`scireflect.agents.prompts.FigurePrompts`), or, with ``figures="text"``, their caption, OCR
text and mentions; the embedded model takes images with a projector (``mmproj``), a local
vision-language model through :mod:`.vision_eval`.

Per-question results go to a JSONL file (one line per question: ``file``, ``id``, ``subject``,
``figures``, ``correct``, ``verdict``, ``response``, ``model``, tokens, seconds); :func:`score`,
:func:`compare` and :func:`figure_score` count them, for the tables that ``scireflect eval`` prints
(:mod:`scireflect.cli.eval_tables`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..agents import prompts as P
from ..agents.figures import FigureStore
from ..rundata.jsonl import JsonlError, dumps_line, iter_jsonl
from ..rundata.ocr import FigureOcr
from ..rundata.questions import load_questions


class EvalError(RuntimeError):
    """The evaluation cannot run: bad benchmark file, unreachable endpoint, model not loadable."""


@dataclass(frozen=True)
class ModelSpec:
    """Which model to evaluate.

    Exactly one kind: ``hf_path`` (a local transformers model), ``base_url`` + ``model`` (an
    OpenAI-compatible endpoint), or neither (the embedded model ``embedded_model``, default
    :data:`scireflect.embedded.DEFAULT_EMBEDDED_MODEL`; ``gguf`` serves another GGUF file).

    Attributes:
        label: the name used in tables and result files (default: derived from the model).
        chat_template: a Jinja chat template file for ``hf_path`` models without one.
    """

    base_url: str | None = None
    model: str | None = None
    embedded_model: str | None = None
    gguf: Path | None = None
    hf_path: Path | None = None
    chat_template: Path | None = None
    label: str | None = None
    mmproj: Path | None = None
    """A projector GGUF served beside the embedded model, so that it takes figures."""

    @property
    def kind(self) -> str:
        """``hf``, ``endpoint`` or ``embedded``."""
        if self.hf_path is not None:
            return "hf"
        if self.base_url:
            return "endpoint"
        return "embedded"

    def display_name(self) -> str:
        """A short name for tables: the label, else the model name / path / embedded name."""
        if self.label:
            return self.label
        if self.hf_path is not None:
            return Path(self.hf_path).name or str(self.hf_path)
        if self.base_url:
            return self.model or "endpoint"
        if self.gguf is not None:
            return Path(self.gguf).stem
        from ..embedded import DEFAULT_EMBEDDED_MODEL

        return self.embedded_model or DEFAULT_EMBEDDED_MODEL


@dataclass
class GenerationSettings:
    """Decoding settings shared by every backend: greedy by default (temperature 0)."""

    temperature: float = 0.0
    max_tokens: int = 1536
    concurrency: int = 2
    request_timeout_s: float = 900.0
    figures: str = "image"
    """How figures reach the model: ``image``, ``text`` or ``both`` (:data:`scireflect.agents.prompts.FIGURE_MODES`)."""


@dataclass
class BenchmarkItem:
    """One question of one benchmark file (``file`` is the file's stem, used to group results;
    ``figures`` holds the bytes of the file's figures)."""

    file: str
    question: dict[str, Any]
    figures: FigureStore | None = None


def load_benchmarks(paths: Sequence[Path], *, limit: int | None = None, subjects: set[str] | None = None) -> list[BenchmarkItem]:
    """Read benchmark JSONL files (question-file schema), validating every line first.

    Args:
        paths: one or more ``.jsonl`` files; two files with the same stem are told apart by their path.
        limit: at most this many questions per file (after the subject filter).
        subjects: keep only these subjects.

    Raises:
        EvalError: a file is missing, empty or has a bad line (the message names file and line).
    """
    from ..rundata.questions import QuestionFileError

    stems = [Path(p).stem for p in paths]
    items: list[BenchmarkItem] = []
    for path, stem in zip(paths, stems, strict=True):
        name = stem if stems.count(stem) == 1 else str(path)
        try:
            qs = load_questions(path, subjects=subjects, limit=limit)
        except QuestionFileError as exc:
            raise EvalError(str(exc)) from None
        items.extend(BenchmarkItem(name, {k: v for k, v in q.items() if k != "_line"}, qs.figures) for q in qs.questions)
    return items


def solver_messages(question: Mapping[str, Any], figures: FigureStore | None = None, mode: str = "image") -> list[dict[str, Any]]:
    """The Solver prompt for one question as chat messages (system + user), subject variant applied;
    a question with figures gets them (``mode``, see :class:`~scireflect.agents.prompts.FigurePrompts`)
    as ``image_url`` parts with ``data:`` URLs, as an OpenAI-compatible endpoint takes them."""
    variant = P.subject_variant(question.get("subject"))
    template, variables = P.FigurePrompts(P.ANSWER_PROMPTS, figures, mode).solve(question, variant)
    msgs = template.format_messages(**variables)
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return [{"role": roles.get(m.type, m.type), "content": m.content if isinstance(m.content, list) else str(m.content)} for m in msgs]


# -- backends -------------------------------------------------------------------------------------

class _EndpointBackend:
    """Chat completions on an OpenAI-compatible endpoint (``openai.AsyncOpenAI``)."""

    takes_images = True  # checked by the preflight when figures are sent

    def __init__(self, base_url: str, model: str, settings: GenerationSettings):
        import openai

        self.model = model
        self.settings = settings
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY") or "local",
                                         timeout=settings.request_timeout_s, max_retries=2)

    async def generate(self, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        resp = await self.client.chat.completions.create(
            model=self.model, messages=messages, temperature=self.settings.temperature, max_tokens=self.settings.max_tokens,
        )
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        usage = resp.usage
        return text, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)

    async def aclose(self) -> None:
        await self.client.close()


class _HFBackend:
    """Greedy (or sampled) generation with a local transformers causal LM, one question at a time."""

    takes_images = False

    def __init__(self, path: Path, settings: GenerationSettings, chat_template: Path | None = None):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EvalError("--hf-model needs torch and transformers: pip install 'scireflect[train]'") from exc
        self.torch = torch
        self.settings = settings
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
        except (OSError, ValueError) as exc:
            raise EvalError(f"cannot load transformers model {path}: {exc}") from None
        if chat_template is not None:
            self.tokenizer.chat_template = Path(chat_template).read_text()
        if not getattr(self.tokenizer, "chat_template", None):
            raise EvalError(f"{path}: the tokenizer has no chat template; pass one with --chat-template FILE")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self._lock = asyncio.Lock()

    def _generate_sync(self, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        torch = self.torch
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        ids = {k: v.to(self.device) for k, v in ids.items()}
        kwargs: dict[str, Any] = {"max_new_tokens": self.settings.max_tokens, "pad_token_id": self.tokenizer.pad_token_id
                                  if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id}
        if self.settings.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.settings.temperature)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(**ids, **kwargs)
        n_in = ids["input_ids"].shape[1]
        new = out[0, n_in:]
        return self.tokenizer.decode(new, skip_special_tokens=True), int(n_in), int(new.shape[0])

    async def generate(self, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        async with self._lock:  # one generation at a time: the model is not shared across threads
            return await asyncio.to_thread(self._generate_sync, messages)

    async def aclose(self) -> None:
        return None


@contextlib.asynccontextmanager
async def open_backend(spec: ModelSpec, settings: GenerationSettings, log_dir: Path | None = None, *,
                       images: bool = False) -> AsyncIterator[Any]:
    """Start (embedded), check (endpoint) or load (transformers) the model; yields a backend with ``generate``.

    ``images``: figures will be sent, so an endpoint (the embedded server included) must take an image.

    Raises:
        EvalError: endpoint unreachable or not serving the model, transformers model not loadable.
        scireflect.embedded.EmbeddedModelError: the embedded model is missing or fails to start.
    """
    if spec.kind == "hf":
        from .vision_eval import HFVisionBackend, is_vision_model

        vision = await asyncio.to_thread(is_vision_model, Path(spec.hf_path))  # type: ignore[arg-type]
        backend = await asyncio.to_thread(HFVisionBackend, Path(spec.hf_path), settings) if vision else \
            await asyncio.to_thread(_HFBackend, Path(spec.hf_path), settings, spec.chat_template)  # type: ignore[arg-type]
        yield backend
        return
    if spec.kind == "endpoint":
        from ..agents.endpoints import EndpointCheckError, preflight

        if not spec.model:
            raise EvalError("--base-url needs --model")
        try:
            await preflight({spec.base_url: (os.environ.get("OPENAI_API_KEY") or "local", {spec.model})}, images=images)  # type: ignore[dict-item]
        except EndpointCheckError as exc:
            raise EvalError(str(exc)) from None
        backend = _EndpointBackend(spec.base_url, spec.model, settings)  # type: ignore[arg-type]
        try:
            yield backend
        finally:
            await backend.aclose()
        return
    from ..agents.endpoints import EndpointCheckError, preflight
    from ..embedded import DEFAULT_EMBEDDED_MODEL, EmbeddedModelError, EmbeddedServer, embedded_gguf, embedded_mmproj

    try:
        gguf, _ = await embedded_gguf(None if spec.gguf else (spec.embedded_model or DEFAULT_EMBEDDED_MODEL), spec.gguf)
        mmproj = embedded_mmproj(spec.mmproj)
    except EmbeddedModelError as exc:
        raise EvalError(str(exc)) from None
    name = spec.display_name()
    log_path = (log_dir / f"embedded-server-{_slug(name)}.log") if log_dir else None
    async with EmbeddedServer(gguf, parallel=settings.concurrency, context_per_slot=max(4096, settings.max_tokens + 2048),
                              log_path=log_path, model_name=name, mmproj_path=mmproj) as server:
        try:
            await preflight({server.base_url: ("local", {name})}, images=images)
        except EndpointCheckError as exc:
            raise EvalError(str(exc)) from None
        backend = _EndpointBackend(server.base_url, name, settings)
        try:
            yield backend
        finally:
            await backend.aclose()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


# -- running --------------------------------------------------------------------------------------


async def evaluate(
    items: Sequence[BenchmarkItem],
    spec: ModelSpec,
    settings: GenerationSettings,
    *,
    results_path: Path | None = None,
    verifier: Any = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    log_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Run one model on every item and verify each response.

    Args:
        items: from :func:`load_benchmarks`.
        spec: the model.
        settings: decoding settings; ``concurrency`` requests are in flight at once.
        results_path: if given, a JSONL file written as results arrive (one line per question, in
            completion order), replaced when it exists.
        verifier: an object with ``averify(response, question) -> Verdict`` (default: a new
            :class:`~scireflect.verifiers.SandboxedAnswerVerifier`, closed at the end).
        on_result: called with each result row as it is ready (progress display).

    Returns:
        The result rows in item order: ``file``, ``id``, ``subject``, ``figures`` (how many the
        question had), ``correct`` (bool: verdict
        ``ok is True``), ``status`` (``accepted``/``rejected``/``unparseable``/``error``),
        ``extracted``, ``reference``, ``verdict`` (dict), ``response``, ``model``,
        ``input_tokens``, ``output_tokens``, ``seconds``, ``error`` (message or ``None``).

    A failed model call for one question is recorded as ``status="error"`` (counted wrong); the
    run goes on.
    """
    own_verifier = verifier is None
    if verifier is None:
        from ..verifiers import SandboxedAnswerVerifier

        verifier = SandboxedAnswerVerifier(workers=max(1, min(settings.concurrency, os.cpu_count() or 1)))
    results: list[dict[str, Any] | None] = [None] * len(items)
    fh = None
    if results_path is not None:
        results_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(results_path, "wb")
    name = spec.display_name()
    images = settings.figures != "text" and any(item.question.get("images") for item in items)
    try:
        async with open_backend(spec, settings, log_dir=log_dir, images=images) as backend:
            if images and not getattr(backend, "takes_images", True):
                raise EvalError(f"{name} is a text-only model and the benchmark has figures: pass --figures text "
                                "(caption, OCR text and mentions instead of the pixels)")
            sem = asyncio.Semaphore(max(1, settings.concurrency))
            ocr = FigureOcr()  # when figures go as text too: their missing OCR text, read by Tesseract (if installed)

            async def one(i: int, item: BenchmarkItem) -> None:
                q = item.question if settings.figures == "image" else await ocr.fill(item.question, item.figures)
                async with sem:
                    t0 = time.perf_counter()
                    error = None
                    try:
                        text, n_in, n_out = await backend.generate(solver_messages(q, item.figures, settings.figures))
                    except Exception as exc:  # noqa: BLE001 - one bad call must not end the evaluation
                        text, n_in, n_out, error = "", 0, 0, f"{type(exc).__name__}: {exc}"[:300]
                    seconds = time.perf_counter() - t0
                verdict = await verifier.averify(text, q) if error is None else None
                row = {
                    "file": item.file,
                    "id": q["id"],
                    "subject": q.get("subject", "general"),
                    "figures": len(q.get("images") or []),
                    "correct": bool(verdict is not None and verdict.ok is True),
                    "status": verdict.status if verdict is not None else "error",
                    "extracted": verdict.extracted if verdict is not None else None,
                    "reference": q.get("answer"),
                    "verdict": verdict.to_dict() if verdict is not None else None,
                    "response": text,
                    "model": name,
                    "input_tokens": n_in,
                    "output_tokens": n_out,
                    "seconds": round(seconds, 3),
                    "error": error,
                }
                results[i] = row
                if fh is not None:
                    fh.write(dumps_line(row))
                    fh.flush()
                if on_result is not None:
                    on_result(row)

            await asyncio.gather(*(one(i, it) for i, it in enumerate(items)))
    finally:
        if fh is not None:
            fh.close()
        if own_verifier:
            verifier.close()
    return [r for r in results if r is not None]


def read_results(path: Path) -> list[dict[str, Any]]:
    """Read a results JSONL file written by :func:`evaluate`.

    Raises:
        EvalError: missing file, or a line that is not a result row (needs ``id`` and ``correct``).
    """
    rows = []
    try:
        for lineno, row in iter_jsonl(path):
            if "id" not in row or "correct" not in row:
                raise EvalError(f"{path}:{lineno}: not a result row of 'scireflect eval' (needs id and correct)")
            rows.append(row)
    except JsonlError as exc:
        raise EvalError(f"results file {exc}") from None
    return rows


# -- scores (the tables of 'scireflect eval' are drawn from them in scireflect.cli.eval_tables) ----


@dataclass
class Score:
    """Correct out of n, for one (file, subject) group."""

    n: int = 0
    correct: int = 0
    unparseable: int = 0
    errors: int = 0

    @property
    def accuracy(self) -> float:
        """Fraction correct in [0, 1] (0 when empty)."""
        return self.correct / self.n if self.n else 0.0

    def add(self, row: Mapping[str, Any]) -> None:
        self.n += 1
        self.correct += bool(row.get("correct"))
        self.unparseable += row.get("status") == "unparseable"
        self.errors += row.get("status") == "error"


def score(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Score]:
    """Scores keyed by ``(file, subject)``, plus ``(file, "all")`` per file and ``("all", "all")``.

    Keys are ordered: per file, subjects sorted, then the file's ``all``; the grand total last.
    """
    groups: dict[tuple[str, str], Score] = defaultdict(Score)
    files: dict[str, set[str]] = defaultdict(set)
    total = Score()
    for row in rows:
        f, s = str(row.get("file", "-")), str(row.get("subject", "general"))
        groups[(f, s)].add(row)
        groups[(f, "all")].add(row)
        files[f].add(s)
        total.add(row)
    out: dict[tuple[str, str], Score] = {}
    for f in sorted(files):
        for s in sorted(files[f]):
            out[(f, s)] = groups[(f, s)]
        out[(f, "all")] = groups[(f, "all")]
    out[("all", "all")] = total
    return out


def figure_score(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Score]:
    """Scores keyed by ``(file, "with figure" | "without figure")``, plus ``("all", ...)`` over every file.

    Keys are ordered: the files sorted, then the two ``all`` groups.
    """
    groups: dict[tuple[str, str], Score] = defaultdict(Score)
    for row in rows:
        kind = "with figure" if row.get("figures") else "without figure"
        for key in ((str(row.get("file", "-")), kind), ("all", kind)):
            groups[key].add(row)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0])))


@dataclass
class Comparison:
    """Two runs of one benchmark on the questions both answered (matched by ``(file, id)``).

    ``before`` and ``after`` are :func:`score` of each run on those questions; ``fixed`` and
    ``broken`` count, per key of :func:`score`, the questions wrong before and right after, and the
    other way round; ``unmatched`` is how many rows only one run has (left out).
    """

    common: int
    unmatched: int
    before: dict[tuple[str, str], Score]
    after: dict[tuple[str, str], Score]
    fixed: dict[tuple[str, str], int]
    broken: dict[tuple[str, str], int]


def compare(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> Comparison:
    """Compare two runs' result rows question by question (see :class:`Comparison`)."""
    a = {(str(r.get("file")), str(r["id"])): r for r in before}
    b = {(str(r.get("file")), str(r["id"])): r for r in after}
    common = [k for k in a if k in b]
    fixed: dict[tuple[str, str], int] = defaultdict(int)
    broken: dict[tuple[str, str], int] = defaultdict(int)
    for k in common:
        f, s = k[0], str(a[k].get("subject", "general"))
        ca, cb = bool(a[k].get("correct")), bool(b[k].get("correct"))
        for key in ((f, s), (f, "all"), ("all", "all")):
            fixed[key] += (not ca) and cb
            broken[key] += ca and not cb
    return Comparison(common=len(common), unmatched=len(a) + len(b) - 2 * len(common), before=score(a[k] for k in common),
                      after=score(b[k] for k in common), fixed=fixed, broken=broken)
