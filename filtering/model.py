"""A trained quality classifier and its model directory (save, load, check).

A model directory holds three files:

``classifier.json``
    ``format_version`` (:data:`FORMAT_VERSION`), ``head``, ``input_template_version``, ``threshold`` (the
    :func:`.metrics.threshold_for_precision` dict), the training data and seed, and per head: ``weights``
    (the linear head's numbers, :func:`.linear_head.head_params`) plus ``encoder``/``tail_chars``
    (embedding) or ``probe_model``/``probe_pooling``/``probe_context``/``probe_head_tokens`` (probe),
    or ``lm_path``/``lm_max_length`` (lm).
``metrics.json``
    the held-out figures (:func:`.metrics.evaluate`).
``heldout.jsonl``
    one held-out score per line (``label``, ``score``, ``qid``, ...), from which ``classify score
    --target-precision`` picks new thresholds.

Format 1 (before ``format_version`` existed) stored the same fields and still loads. The files may come
from another machine: they are read as JSON only, checked, and a bad one is refused with an error that
names the file (and the line, for ``heldout.jsonl``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scireflect.rundata.jsonl import JsonlError, iter_jsonl, write_jsonl_atomic
from .errors import ClassifierError
from .examples import INPUT_TEMPLATE_VERSION, Attempt, classifier_input
from .metrics import threshold_for_precision

FORMAT_VERSION = 2
CLASSIFIER_FILE = "classifier.json"
METRICS_FILE = "metrics.json"
HELDOUT_FILE = "heldout.jsonl"
HEADS = ("embedding", "probe", "lm")
#: The keys each head needs in ``classifier.json`` besides ``head``, ``threshold`` and the versions.
HEAD_KEYS = {"embedding": ("weights", "encoder", "tail_chars"),
             "probe": ("weights", "probe_model", "probe_pooling", "probe_context", "probe_head_tokens"),
             "lm": ("lm_path", "lm_max_length")}


@dataclass
class QualityClassifier:
    """A trained classifier (any head) with its threshold; see :func:`.classifier.train_classifier`.

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
    _head: Any = None
    _source: str = CLASSIFIER_FILE

    @property
    def threshold(self) -> float:
        return float(self.config["threshold"]["threshold"])

    def threshold_for(self, target_precision: float) -> dict[str, Any]:
        """The held-out threshold for ``target_precision`` (see :func:`.metrics.threshold_for_precision`)."""
        return threshold_for_precision([r["label"] for r in self.heldout], [r["score"] for r in self.heldout], target_precision)

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """P(correct) for :func:`.examples.classifier_input` strings.

        Raises:
            ClassifierError: the featurizer gives another width than the stored head reads.
        """
        if self.config["head"] == "lm":
            if self._lm is None:
                from .lm_head import LMHeadScorer

                self._lm = LMHeadScorer.from_pretrained(self.config["lm_path"], max_length=self.config["lm_max_length"])
            return self._lm.score_texts(texts)
        if self._featurizer is None:
            from .features import featurizer_for

            self._featurizer = featurizer_for(self.config)
        if self._head is None:
            from .linear_head import head_from_params

            self._head = head_from_params(self.config["weights"], self._source)
        if not texts:
            return []
        x = self._featurizer(list(texts))
        if x.shape[1] != self._head.n_features_in_:
            reader = self.config.get("encoder") or self.config.get("probe_model")
            raise ClassifierError(f"{self._source}: the head reads {self._head.n_features_in_} features but its "
                                  f"featurizer ({reader}) gives {x.shape[1]}")
        return self._head.predict_proba(x)[:, 1].tolist()

    def score(self, items: Iterable[Attempt | tuple[Mapping[str, Any], str]]) -> list[float]:
        """P(correct) for attempts, or for ``(question, response)`` pairs."""
        texts = [i.text if isinstance(i, Attempt) else classifier_input(i[0], i[1]) for i in items]
        return self.score_texts(texts)

    def save(self, model_dir: str | Path) -> Path:
        """Write ``classifier.json``, ``metrics.json`` and ``heldout.jsonl`` to ``model_dir``."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / CLASSIFIER_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION, **self.config}, indent=1) + "\n")
        (model_dir / METRICS_FILE).write_text(json.dumps(self.metrics, indent=1) + "\n")
        write_jsonl_atomic(model_dir / HELDOUT_FILE, self.heldout)
        return model_dir


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClassifierError(f"{path.parent} is not a classifier directory: {path.name} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ClassifierError(f"{path}: not readable JSON: {exc}") from None


def _read_heldout(path: Path) -> list[dict[str, Any]]:
    """The rows of ``heldout.jsonl``; each needs a boolean ``label`` and a ``score`` in [0, 1]."""
    if not path.is_file():
        raise ClassifierError(f"{path.parent} is not a classifier directory: {path.name} is missing")
    rows = []
    try:
        lines = list(iter_jsonl(path))
    except JsonlError as exc:
        raise ClassifierError(str(exc)) from None
    for n, row in lines:
        score = row.get("score")
        if not (isinstance(row.get("label"), bool) and isinstance(score, int | float)
                and not isinstance(score, bool) and 0.0 <= score <= 1.0):
            raise ClassifierError(f"{path}:{n}: a held-out row needs a boolean 'label' and a 'score' in [0, 1]")
        rows.append(row)
    return rows


def check_config(config: Any, path: Path) -> dict[str, Any]:
    """``config`` (read from ``path``) if it is a classifier this version can score, else an error.

    Raises:
        ClassifierError: not an object, an unknown format version or head, another input template
            version, a missing head key or a bad threshold (the message names ``path``).
    """
    if not isinstance(config, dict):
        raise ClassifierError(f"{path}: not a JSON object")
    version = config.get("format_version", 1)
    if version not in (1, FORMAT_VERSION):
        raise ClassifierError(f"{path}: model format {version!r} is not one this version reads (1 or {FORMAT_VERSION}); "
                              "retrain the classifier or update scireflect")
    if config.get("input_template_version") != INPUT_TEMPLATE_VERSION:
        raise ClassifierError(f"{path}: trained on input template {config.get('input_template_version')!r}; "
                              f"this version builds {INPUT_TEMPLATE_VERSION!r}: retrain it")
    head = config.get("head")
    if head not in HEADS:
        raise ClassifierError(f"{path}: unknown head {head!r} (one of {', '.join(HEADS)})")
    missing = [k for k in HEAD_KEYS[head] if k not in config]
    if missing:
        raise ClassifierError(f"{path}: the {head} head needs {', '.join(missing)}")
    threshold = config.get("threshold")
    t = threshold.get("threshold") if isinstance(threshold, dict) else None
    if not (isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)):
        raise ClassifierError(f"{path}: 'threshold' must be an object with a numeric 'threshold'")
    return config


def load_classifier(model_dir: str | Path) -> QualityClassifier:
    """Load a model directory written by :meth:`QualityClassifier.save` (format 1 or 2).

    Raises:
        ClassifierError: a file is missing or malformed (the message names it, and the line of
            ``heldout.jsonl``), or see :func:`check_config`.
    """
    model_dir = Path(model_dir)
    config = check_config(_read_json(model_dir / CLASSIFIER_FILE), model_dir / CLASSIFIER_FILE)
    metrics = _read_json(model_dir / METRICS_FILE)
    if not isinstance(metrics, dict):
        raise ClassifierError(f"{model_dir / METRICS_FILE}: not a JSON object")
    heldout = _read_heldout(model_dir / HELDOUT_FILE)
    config.pop("format_version", None)  # save() writes the current one
    if config["head"] == "lm" and not Path(config["lm_path"]).is_absolute():
        config["lm_path"] = str(model_dir / config["lm_path"])
    model = QualityClassifier(config=config, heldout=heldout, metrics=metrics, _source=str(model_dir / CLASSIFIER_FILE))
    if config["head"] != "lm":
        from .linear_head import head_from_params

        model._head = head_from_params(config["weights"], model._source)  # checked now, not at the first score
    return model
