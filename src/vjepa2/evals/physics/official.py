"""The surprise metrics exactly as the companion work's code computes them, under its own names.

Facts from facebookresearch/jepa-intuitive-physics, ``evaluation_code/evals/intuitive_physics/
eval.py``, ``compute_metrics(losses, labels)``: ``labels`` is 1 for a possible ("real") video and
0 for an impossible one, the videos come in matched (possible, impossible) pairs, and each video's
surprise curve is reduced by its mean ("avg") or its max. Then:

- ``Relative Accuracy (avg|max)``: 100 x the share of pairs whose possible video has the strictly
  lower surprise (``<``: a tie is a miss);
- ``Absolute Accuracy (max)``: the threshold is the sorted max-surprises of the possible videos at
  index ``ceil(0.9 * n)``; 100 x the share of videos with possible ``< threshold`` and impossible
  ``> threshold``. The index exists only for n >= 10 possible videos: below that the official code
  fails (IndexError) and this module reports None;
- ``Best Absolute Accuracy (max)``: the best of 100 thresholds evenly spaced from the lowest possible
  max-surprise to the highest impossible one (the official denominator is twice the number of
  possible videos);
- ``AUPRC (avg|max)``: possible = positive, score = minus the surprise; scikit-learn's
  ``precision_recall_curve`` (the curve runs from the always-positive point, recall 1, to
  (recall 0, precision 1)), then ``auc`` (trapezoids over recall);
- ``AUROC (avg|max)``: scikit-learn's ``roc_curve`` (``drop_intermediate=True``) then ``auc``.

scikit-learn is not a dependency: the curves are rebuilt here in plain numpy, step by step as its
``_binary_clf_curve`` builds them, so that the sums run in the same order.
"""

from __future__ import annotations

import numpy as np

CALIBRATION = 0.90  # the official threshold: 90% of the possible videos' max surprise below it
MIN_POSSIBLE = 10  # ceil(0.9 n) <= n - 1 only from n = 10 on
ORACLE_STEPS = 100  # thresholds tried by "Best Absolute Accuracy"


def binary_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positives, true positives, thresholds) at each distinct score, highest score first,
    as scikit-learn's ``_binary_clf_curve``: a stable sort, reversed; tied scores count together."""
    labels, scores = np.asarray(labels, float), np.asarray(scores, float)
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, labels = scores[order], labels[order]
    ends = np.r_[np.where(np.diff(scores))[0], labels.size - 1]  # last index of each tie group
    tps = np.cumsum(labels)[ends]
    fps = 1 + ends - tps
    return fps, tps, scores[ends]


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) from the lowest threshold (recall 1) to the point (recall 0, precision 1)."""
    fps, tps, _ = binary_curve(labels, scores)
    predicted = tps + fps
    precision = np.zeros_like(tps)
    np.divide(tps, predicted, out=precision, where=predicted != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.hstack((precision[::-1], 1)), np.hstack((recall[::-1], 0))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) with collinear points dropped, from (0, 0)."""
    fps, tps, _ = binary_curve(labels, scores)
    if len(fps) > 2:  # drop_intermediate: keep corners only (the area is the same, the sum order too)
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.r_[0, fps], np.r_[0, tps]
    return fps / fps[-1], tps / tps[-1]


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under y(x), x monotonic either way (scikit-learn's ``auc``)."""
    dx = np.diff(x)
    direction = -1 if np.any(dx < 0) else 1
    if direction == -1 and not np.all(dx <= 0):
        raise ValueError("x is neither increasing nor decreasing")
    return float(direction * np.trapezoid(y, x))


def absolute_threshold(possible_max: np.ndarray) -> float | None:
    """The official calibrated threshold, or None below ``MIN_POSSIBLE`` possible videos."""
    ordered = np.sort(np.asarray(possible_max, float))
    index = int(np.ceil(CALIBRATION * len(ordered)))
    return float(ordered[index]) if index < len(ordered) else None


def compute_metrics(mean: tuple[np.ndarray, np.ndarray], peak: tuple[np.ndarray, np.ndarray]) -> dict:
    """The official metrics of matched pairs: ``mean`` = (possible, impossible) mean surprises,
    (P,) each, pair i being entry i of both; ``peak`` the same for the max surprises. Accuracies in
    %, areas in [0, 1]; ``None`` where the official code would fail."""
    (mean_p, mean_i), (max_p, max_i) = [tuple(np.asarray(a, float) for a in pair) for pair in (mean, peak)]
    n = len(max_p)
    out = {
        "Relative Accuracy (avg)": 100.0 * np.sum(mean_p < mean_i) / n,
        "Relative Accuracy (max)": 100.0 * np.sum(max_p < max_i) / n,
    }
    threshold = absolute_threshold(max_p)
    right = None if threshold is None else np.sum(max_p < threshold) + np.sum(max_i > threshold)
    out["Absolute Accuracy (max)"] = None if right is None else 100.0 * right / (n + len(max_i))
    out["Classifier threhshold"] = threshold  # the official key, its spelling included
    oracle = np.linspace(max_p.min(), max_i.max(), ORACLE_STEPS)
    accuracies = [(np.sum(max_p < t) + np.sum(max_i > t)) / (2 * n) for t in oracle]
    out["Best Absolute Accuracy (max)"] = 100.0 * float(np.max(accuracies))
    out["Best Classifier threhshold"] = float(oracle[int(np.argmax(accuracies))])
    labels = np.r_[np.ones(n), np.zeros(len(max_i))]
    for name, (p, i) in (("avg", (mean_p, mean_i)), ("max", (max_p, max_i))):
        scores = -np.r_[p, i]  # less surprise = more likely possible (the positive class)
        precision, recall = precision_recall_curve(labels, scores)
        out[f"AUPRC ({name})"] = auc(recall, precision)
        out[f"AUROC ({name})"] = auc(*roc_curve(labels, scores))
    return {k: (float(v) if v is not None else None) for k, v in out.items()}


HEADLINE = ("Relative Accuracy (avg)", "Relative Accuracy (max)", "Absolute Accuracy (max)", "AUROC (max)")
