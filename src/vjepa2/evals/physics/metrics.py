"""This project's own surprise metrics, with bootstrap intervals (the official ones, under their
official names, are in ``official``: they differ where said below).

Every metric reads per-group surprises: ``possible`` and ``impossible`` (P,) arrays, one entry per
pair (the pair's two videos, same index), or (P, k) for groups of k of each (IntPhys
quadruplets: k = 2). A model "gets" a group when its possible videos are the less surprising
ones on average (relative accuracy; on a quadruplet, IntPhys's summed-surprise comparison); the
single-video metrics score each video alone, the impossible one being the positive class (more
surprise = more likely impossible):

- ``relative_accuracy_ties_half``: share of groups with mean possible < mean impossible, a tie
  counting half (official: strict ``<``, a tie is a miss, and pair by pair inside a quadruplet);
- ``absolute_accuracy_clipped``: the official calibrated threshold (the possible videos' 90th
  percentile), its index clipped to the last video (official: undefined below 10 possible videos),
  then the share of videos on the right side of it;
- ``auroc``: the probability that a random impossible video is more surprising than a random
  possible one (the Mann-Whitney statistic, ties half): the area under the ROC curve, as official;
- ``average_precision_impossible``: step-wise average precision with the impossible videos as
  positives (official AUPRC: possible = positive on minus the surprise, trapezoids).
"""

from __future__ import annotations

import numpy as np

from vjepa2.evals.intervals import bootstrap

CALIBRATION_QUANTILE = 0.9  # the reference protocol's threshold: 90% of possible videos below it


def relative_accuracy(possible: np.ndarray, impossible: np.ndarray) -> float:
    """Share of pairs whose possible video is less surprising (ties count half)."""
    possible, impossible = np.asarray(possible, float), np.asarray(impossible, float)
    return float(np.mean((possible < impossible) + 0.5 * (possible == impossible)))


def calibrated_threshold(possible: np.ndarray) -> float:
    """The surprise below which the reference protocol expects possible videos: the sorted
    possible surprises at index ceil(0.9 * n) (clipped to the last one)."""
    ordered = np.sort(np.asarray(possible, float))
    return float(ordered[min(int(np.ceil(CALIBRATION_QUANTILE * len(ordered))), len(ordered) - 1)])


def absolute_accuracy(possible: np.ndarray, impossible: np.ndarray) -> float:
    """Share of single videos classified right by the calibrated threshold (possible: below it)."""
    threshold = calibrated_threshold(possible)
    right = np.sum(np.asarray(possible) < threshold) + np.sum(np.asarray(impossible) > threshold)
    return float(right / (len(possible) + len(impossible)))


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of scores (positives should score higher), from ranks."""
    scores = np.concatenate([negatives, positives]).astype(float)
    ranks = average_ranks(scores)
    n_neg, n_pos = len(negatives), len(positives)
    rank_sum = ranks[n_neg:].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of ``scores``, tied values sharing their mean rank."""
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    ranks = np.empty(len(scores))
    start = 0
    for end in np.append(np.flatnonzero(np.diff(ordered)) + 1, len(scores)):
        ranks[order[start:end]] = (start + end + 1) / 2  # mean of ranks start+1 .. end
        start = end
    return ranks


def auprc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Average precision of the positives ranked by score (ties broken against them)."""
    scores = np.concatenate([negatives, positives]).astype(float)
    is_positive = np.concatenate([np.zeros(len(negatives)), np.ones(len(positives))])
    # highest score first; among equal scores negatives first (the pessimistic order)
    order = np.lexsort((is_positive, -scores))
    hits = is_positive[order]
    precision_at_hit = np.cumsum(hits)[hits == 1] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.mean())


RELATIVE = "relative_accuracy_ties_half"
METRICS = {
    RELATIVE: relative_accuracy,
    "absolute_accuracy_clipped": absolute_accuracy,
    "auroc": auroc,
    "average_precision_impossible": auprc,
}


def score_pairs(
    possible: np.ndarray, impossible: np.ndarray, resamples: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Every metric of per-group surprises, (P,) for pairs or (P, k) for groups of k possible and
    k impossible videos (k = 2: IntPhys quadruplets), each with a 95% bootstrap interval over
    groups: {metric: {"value", "low", "high"}}. Relative accuracy compares a group's mean
    surprises; the single-video metrics read every video."""
    possible, impossible = np.asarray(possible, float), np.asarray(impossible, float)
    possible = possible.reshape(len(possible), -1)  # (P, k)
    impossible = impossible.reshape(len(impossible), -1)

    def value(name: str, p: np.ndarray, i: np.ndarray) -> float:
        if name == RELATIVE:
            return METRICS[name](p.mean(1), i.mean(1))
        return METRICS[name](p.ravel(), i.ravel())

    out = {}
    for name in METRICS:  # one seed: every metric is resampled over the same draws of groups

        def resampled(d: np.ndarray, name: str = name) -> float:
            return value(name, possible[d], impossible[d])

        low, high = bootstrap(resampled, len(possible), resamples, seed)
        out[name] = {"value": value(name, possible, impossible), "low": low, "high": high}
    return out


def roc_curve(negatives: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) over every threshold, from (0, 0) to (1, 1)."""
    thresholds = np.unique(np.concatenate([negatives, positives]))[::-1]
    fpr = [0.0] + [float(np.mean(negatives >= t)) for t in thresholds]
    tpr = [0.0] + [float(np.mean(positives >= t)) for t in thresholds]
    return np.asarray(fpr), np.asarray(tpr)
