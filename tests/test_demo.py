"""The demo (``make demo``) runs end to end and reports what it drew."""

import contextlib

import pytest

from alchemy_torch import demo


@pytest.mark.parametrize("kind", ["flows", "dns"])
def test_demo_prints_a_summary(capsys, kind):
    # dns without a GeoIP table says that it drops the country feature
    expect = pytest.warns(UserWarning, match="geoip") if kind == "dns" else contextlib.nullcontext()
    with expect:
        demo.main(["--kind", kind, "--targets", "40", "--iterations", "3"])
    out = capsys.readouterr().out
    assert f"Bags(kind='{kind}', targets=40 (4 malicious, 36 benign)" in out
    assert "120 pseudo-bags" in out
    assert "pseudo (120, " in out
    assert "malicious:    4 targets" in out
