"""The linear head of the ``embedding`` and ``probe`` classifiers, in scikit-learn.

A :class:`~sklearn.pipeline.Pipeline` of :class:`~sklearn.preprocessing.StandardScaler` and an L2
:class:`~sklearn.linear_model.LogisticRegression`. Its strength ``C`` is picked from a grid by grouped
inner cross-validation on log loss (:class:`~sklearn.model_selection.GridSearchCV`, scoring
``neg_log_loss``); folds are :class:`~sklearn.model_selection.StratifiedGroupKFold` by question id, so
no question is in both a training and a held-out fold, and each fold gets a similar share of correct
attempts.

A fitted head is stored as plain numbers (:func:`head_params`: the scaler's mean and scale, the
coefficients, the intercept and ``C``) in ``classifier.json``, and :func:`head_from_params` rebuilds
the pipeline from them. A model directory may come from another machine, so nothing executable
(pickle, joblib) is ever loaded from it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ClassifierError

#: The L2 grid (``C``, inverse strength) searched by :func:`fit_head`.
DEFAULT_CS = (0.003, 0.01, 0.03, 0.1, 0.3)
INNER_FOLDS = 3


def grouped_splits(labels: Sequence[bool], groups: Sequence[str], k: int, seed: int) -> list[tuple[Any, Any]]:
    """``k`` (train, held-out) index array pairs in which all attempts of one question share a fold.

    :class:`~sklearn.model_selection.StratifiedGroupKFold` with the questions shuffled by ``seed``:
    every attempt is held out exactly once, and the folds' shares of correct attempts are balanced.

    Raises:
        ClassifierError: fewer than ``k`` questions, or both classes have fewer than ``k`` attempts.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    if len(set(groups)) < k:
        raise ClassifierError(f"{len(set(groups))} questions are too few for {k} grouped folds")
    y = np.asarray(labels, dtype=np.int64)
    with warnings.catch_warnings():  # "the least populated class has only N members": expected on small data
        warnings.simplefilter("ignore", UserWarning)
        try:
            return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))
        except ValueError as exc:  # both classes rarer than k
            raise ClassifierError(f"cannot make {k} grouped folds: {exc}") from None


def fit_head(x: Any, y: Any, groups: Sequence[str], *, seed: int, cs: Sequence[float] = DEFAULT_CS) -> Any:
    """Fit the standardised logistic regression on ``x`` ``(n, d)`` and 0/1 labels ``y`` ``(n,)``.

    ``C`` is chosen from ``cs`` by grouped inner cross-validation on log loss (:data:`INNER_FOLDS` folds by
    ``groups``) when each class occurs in at least that many questions; otherwise the middle of ``cs``
    is used. Returns the fitted :class:`~sklearn.pipeline.Pipeline` (steps ``scale`` and ``logreg``).
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = Pipeline([("scale", StandardScaler()),
                     ("logreg", LogisticRegression(C=cs[len(cs) // 2], max_iter=3000, random_state=seed))])
    groups = np.asarray(groups)
    y = np.asarray(y, dtype=np.int64)
    # every inner training fold needs both classes: each must occur in INNER_FOLDS questions at least
    if len(cs) < 2 or min(len(set(groups[y == c].tolist())) for c in (0, 1)) < INNER_FOLDS:
        return pipe.fit(x, y)
    search = GridSearchCV(pipe, {"logreg__C": list(cs)}, scoring="neg_log_loss",
                          cv=StratifiedGroupKFold(n_splits=INNER_FOLDS, shuffle=True, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(x, y, groups=groups)
    return search.best_estimator_


def out_of_fold(x: Any, y: Any, groups: Sequence[str], splits: Sequence[tuple[Any, Any]], *, seed: int,
                cs: Sequence[float] = DEFAULT_CS) -> list[float]:
    """Out-of-fold P(correct): each held-out fold of ``splits`` is scored by :func:`fit_head` on the rest
    (by the training base rate where the rest holds one class only)."""
    import numpy as np

    y = np.asarray(y, dtype=np.int64)
    groups = np.asarray(groups)
    oof = np.zeros(len(y))
    for tr, te in splits:
        if len(set(y[tr].tolist())) < 2:
            oof[te] = y[tr].mean()
            continue
        oof[te] = fit_head(x[tr], y[tr], groups[tr], seed=seed, cs=cs).predict_proba(x[te])[:, 1]
    return oof.tolist()


def head_params(pipe: Any) -> dict[str, Any]:
    """A fitted head as JSON-ready numbers: ``mean``, ``scale`` (``d`` each), ``coef`` (``d``), ``intercept``, ``C``."""
    scaler, logreg = pipe.named_steps["scale"], pipe.named_steps["logreg"]
    return {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(), "coef": logreg.coef_[0].tolist(),
            "intercept": float(logreg.intercept_[0]), "C": float(logreg.C)}


def head_from_params(params: Mapping[str, Any], where: str) -> Any:
    """Rebuild the fitted pipeline from :func:`head_params` numbers (also those of model format 1, whose
    ``scale`` was the standard deviation + 1e-6).

    Args:
        params: the ``weights`` object of ``classifier.json``; untrusted.
        where: the file it was read from, for error messages.

    Raises:
        ClassifierError: a field is missing or not a list of finite numbers, the lengths differ, or a
            scale is not positive.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    try:
        mean, scale, coef = (np.asarray(params[k], dtype=np.float64) for k in ("mean", "scale", "coef"))
        intercept, c = np.float64(params["intercept"]), float(params.get("C", 1.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ClassifierError(f"{where}: 'weights' is not a linear head (mean, scale, coef, intercept): {exc!r}") from None
    if not (mean.ndim == 1 and mean.size and mean.shape == scale.shape == coef.shape):
        raise ClassifierError(f"{where}: 'weights' mean, scale and coef must be lists of one length; "
                              f"got shapes {mean.shape}, {scale.shape}, {coef.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(coef).all() and np.isfinite(intercept) and (scale > 0).all()
            and np.isfinite(scale).all()):
        raise ClassifierError(f"{where}: 'weights' holds a non-finite number or a scale <= 0")
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_, scaler.n_features_in_ = mean, scale, scale**2, mean.size
    logreg = LogisticRegression(C=c)
    logreg.classes_, logreg.coef_, logreg.intercept_ = np.array([0, 1]), coef[None, :], intercept[None]
    logreg.n_features_in_ = mean.size
    return Pipeline([("scale", scaler), ("logreg", logreg)])
