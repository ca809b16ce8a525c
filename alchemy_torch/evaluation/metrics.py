"""Threshold-free detection metrics of per-target scores (the slides report ROC-AUC)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

__all__ = ["METRICS", "detection_metrics", "tpr_at_fpr"]

#: the false-positive rate at which the TPR is reported: an analyst's alert budget
LOW_FPR = 0.01
METRICS = ("roc_auc", "pr_auc", "tpr_at_1pct_fpr")


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float = LOW_FPR) -> float:
    """Highest true-positive rate whose false-positive rate is at most ``fpr``."""
    false_pos, true_pos, _ = roc_curve(labels, scores)
    return float(true_pos[false_pos <= fpr].max())


def detection_metrics(labels: np.ndarray, scores: np.ndarray) -> dict:
    """ROC-AUC, PR-AUC (average precision) and TPR at 1% FPR of (n,) scores for (n,) 0/1
    labels; both classes must be present."""
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "tpr_at_1pct_fpr": tpr_at_fpr(labels, scores),
    }
