"""Detectors behind one scikit-learn API: random forest, RBF SVM and a Lightning MLP.

``make(name, **options)`` returns an unfitted detector (``NAMES`` lists them). Every detector
is a scikit-learn binary classifier: ``fit(X, y, groups=None, original=None)``,
``predict_proba(X)`` (n, 2) with ``classes_ == [0, 1]`` for 0/1 labels, ``get_params`` and
``clone``; any scikit-learn classifier can stand in for one. See :mod:`.base` for the fit
parameters and the shared preprocessing (non-finite values -> 0, scalers on original rows).
"""

from __future__ import annotations

import importlib

from alchemy_torch.models.base import Model, NonFiniteWarning, finite_features, fit_scaler

__all__ = ["make", "NAMES", "Model", "NonFiniteWarning", "finite_features", "fit_scaler"]

#: name -> "module:Class"; modules load on first use (the DNN imports Lightning).
NAMES = {
    "rf": "alchemy_torch.models.rf:RandomForest",
    "svm": "alchemy_torch.models.svm:SVM",
    "dnn": "alchemy_torch.models.dnn:DNN",
    "setnet": "alchemy_torch.models.setnet:SetNet",
}


def make(name: str, **options) -> Model:
    """The unfitted detector ``name`` (``"rf"``, ``"svm"``, ``"dnn"``, ``"setnet"``) built with
    ``options``; setnet reads records and trains through ``methods.make("original")`` (whole
    bags) or ``methods.make("online")``."""
    if name not in NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(NAMES))}")
    module, cls = NAMES[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)
