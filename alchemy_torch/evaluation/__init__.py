"""Evaluation: target-level cross-validation, transfer across captures, metrics (METHOD.md §6).

res = evaluation.cross_validate(bags, features.make("flows"), method, models.make("rf"),
                                folds=5, repeats=3, seed=0)
res.roc_auc.mean(); res.attrs["scores"]        # per-fold metrics; out-of-fold scores
res = evaluation.transfer(train_bags, test_bags, extractor, method, model, repeats=5)
res.attrs["dropped"]                            # test targets also in training: dropped
est = evaluation.TargetClassifier(bags, extractor, method, model)   # scikit-learn over targets
cross_val_score(est, np.arange(len(bags)), bags.labels.numpy(), scoring="roc_auc")
evaluation.corrected_ttest(gains, test_train_ratio=0.25)  # is a paired gain more than noise?
"""

from alchemy_torch.evaluation.estimator import TargetClassifier
from alchemy_torch.evaluation.metrics import METRICS, detection_metrics, tpr_at_fpr
from alchemy_torch.evaluation.protocol import (
    FoldError,
    cross_validate,
    fold_splits,
    repeat_splits,
    scarce_training,
    transfer,
)
from alchemy_torch.evaluation.significance import CorrectedTTest, corrected_ttest, wilcoxon_p

__all__ = [
    "METRICS",
    "CorrectedTTest",
    "FoldError",
    "TargetClassifier",
    "corrected_ttest",
    "cross_validate",
    "detection_metrics",
    "fold_splits",
    "repeat_splits",
    "scarce_training",
    "tpr_at_fpr",
    "transfer",
    "wilcoxon_p",
]
