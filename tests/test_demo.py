"""The demo (``make demo``) runs end to end and reports what it drew."""
from alchemy_torch import demo


def test_demo_prints_a_summary(capsys):
    demo.main(["--targets", "40", "--iterations", "3"])
    out = capsys.readouterr().out
    assert "Bags(kind='flows', targets=40 (4 malicious, 36 benign)" in out
    assert "120 pseudo-bags" in out
    assert "malicious:    12 pseudo-bags" in out
