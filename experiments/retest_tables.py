"""Re-read the paired-gain tables of a Markdown file with the corrected resampled t-test.

    python experiments/retest_tables.py experiments/README.md [--folds 5]

A paired-gain cell reads "+1.66 ± 0.79 (15/15)": the mean and sample std of the per-fold
gains and (folds improved / folds). The corrected t-test depends on the gains through their
mean and std only, so it is computed from them (``evaluation.corrected_ttest`` on gains with
that mean and std), with n_test / n_train = 1 / (folds - 1). Prints one Markdown table: the
section, row and column of every gain with its 95 % CI and p-value; bold where p < 0.05.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from alchemy_torch.evaluation import corrected_ttest

CELL = re.compile(r"^([+-]?\d+\.\d+) ± (\d+\.\d+) \((\d+)/(\d+)\)$")


def gains_with(mean: float, std: float, n: int) -> np.ndarray:
    """(n,) values with exactly this mean and sample std."""
    z = np.arange(n) - (n - 1) / 2
    return mean + std * z / z.std(ddof=1)


def retest(text: str, folds: int):
    """(section, row, column, mean, CorrectedTTest, improved, n) of every gain cell."""
    section, header = "", []
    for line in text.splitlines():
        if line.startswith("#"):
            section = line.lstrip("# ").strip()
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = cells
            continue
        for column, cell in zip(header[1:], cells[1:]):
            match = CELL.match(cell)
            if match:
                mean, std, improved, n = match.groups()
                gains = gains_with(float(mean), float(std), int(n))
                test = corrected_ttest(gains, test_train_ratio=1 / (folds - 1))
                yield section, cells[0], column, float(mean), test, int(improved), int(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("markdown", type=Path)
    parser.add_argument("--folds", type=int, default=5, help="k of the repeated k-fold")
    args = parser.parse_args()
    print("| section | method | column | gain [95 % CI] | p | folds improved |")
    print("|---|---|---|---|---|---|")
    for section, row, column, mean, test, improved, n in retest(
        args.markdown.read_text(), args.folds
    ):
        gain = f"{mean:+.2f}"
        gain = f"**{gain}**" if test.p_value < 0.05 else gain
        print(
            f"| {section} | {row} | {column} | {gain} [{test.ci_low:+.2f}, {test.ci_high:+.2f}] "
            f"| {test.p_value:.3f} | {improved}/{n} |"
        )


if __name__ == "__main__":
    main()
