"""Is a paired gain over repeated k-fold cross-validation more than noise?

test = corrected_ttest(gains, test_train_ratio=0.25)   # gains: one per (repeat, fold)
test.gain, test.ci_low, test.ci_high, test.p_value

The folds of repeated k-fold share most of their training targets, so their gains are
correlated and a plain t-test over them is far too confident. The corrected resampled t-test
(Nadeau and Bengio 2003; Bouckaert and Frank 2004) inflates the variance of the mean gain from
s^2 / n to (1/n + n_test/n_train) s^2, n = k x r gains, with t on n - 1 degrees of freedom.
Wilcoxon's signed-rank test (:func:`scipy.stats.wilcoxon`) is given beside it by the report; it
makes no normality assumption but no correction either.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["CorrectedTTest", "corrected_ttest", "wilcoxon_p"]


class CorrectedTTest(NamedTuple):
    """Mean gain, its two-sided (1 - alpha) confidence interval and p-value (H0: gain 0)."""

    gain: float
    ci_low: float
    ci_high: float
    p_value: float


def corrected_ttest(gains, test_train_ratio: float, alpha: float = 0.05) -> CorrectedTTest:
    """The corrected resampled t-test of ``gains`` (n,), one paired difference per (repeat,
    fold), where a fold's test set is ``test_train_ratio`` = n_test / n_train times its
    training set (1/4 for 5 folds). NaN for fewer than 2 gains; with no spread, p is 1 for a
    zero gain and 0 otherwise."""
    gains = np.asarray(gains, dtype=np.float64)
    n = len(gains)
    if n < 2:
        return CorrectedTTest(float(gains.mean()) if n else np.nan, np.nan, np.nan, np.nan)
    if test_train_ratio < 0:
        raise ValueError(f"test_train_ratio must be >= 0, got {test_train_ratio}")
    mean = float(gains.mean())
    se = np.sqrt((1 / n + test_train_ratio) * gains.var(ddof=1))
    if se == 0:
        return CorrectedTTest(mean, mean, mean, float(mean == 0))
    t = mean / se
    half = stats.t.ppf(1 - alpha / 2, n - 1) * se
    p_value = float(2 * stats.t.sf(abs(t), n - 1))
    return CorrectedTTest(mean, float(mean - half), float(mean + half), p_value)


def wilcoxon_p(gains) -> float:
    """Two-sided p-value of Wilcoxon's signed-rank test on ``gains`` (n,); 1 when every gain
    is 0, NaN for fewer than 2 gains."""
    gains = np.asarray(gains, dtype=np.float64)
    if len(gains) < 2:
        return np.nan
    if not gains.any():
        return 1.0
    return float(stats.wilcoxon(gains).pvalue)
