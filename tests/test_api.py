"""The public surface: lazy subpackages and constructor parameters as configuration."""

from __future__ import annotations

import subprocess
import sys

import pytest

import alchemy_torch as at
from alchemy_torch import Resampler


def test_subpackages_load_on_first_access_only():
    code = (
        "import sys, alchemy_torch as at\n"
        "assert 'alchemy_torch.features' not in sys.modules\n"
        "assert 'alchemy_torch.datasets' not in sys.modules\n"
        "assert at.features.make('flows').kind == 'flows'\n"
        "assert 'alchemy_torch.features' in sys.modules\n"
        "print(at.io.read_flows.__name__, at.datasets.synthetic.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["read_flows", "synthetic"]


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        at.nope  # noqa: B018


def test_resampler_params_rebuild_an_equal_object():
    r = Resampler(option=4, iterations=7, rate_range=(0.1, 0.9), mode="contiguous")
    params = r.get_params()
    assert params["iterations"] == 7 and params["rate_range"] == (0.1, 0.9)
    assert Resampler(**params) == r
    assert Resampler(**{**params, "iterations": 8}) != r
    assert repr(r).startswith("Resampler(option=4, iterations=7")


def test_set_params_rejects_unknown_names():
    r = Resampler(option=1)
    assert r.set_params(size=50).size == 50
    with pytest.raises(ValueError, match="no parameter 'sizes'"):
        r.set_params(sizes=3)


def test_scikit_learn_clone_keeps_every_parameter():
    from sklearn.base import clone

    r = Resampler(option=3, iterations=5, rate_range=[0.3, 0.6])
    c = clone(r)
    assert c == r and c is not r
