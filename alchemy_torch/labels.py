"""Per-target labels from per-record labels: the one label-rule vocabulary and implementation.

Record labels are 1 (malicious), 0 (benign) or -1 (unknown/background). A target's label
under ``rule`` (its records' votes; unknown records never vote):

=========  ============================================================================
any        malicious if any record is malicious, else benign if any is benign
majority   malicious if malicious records outnumber benign ones, benign if fewer;
           a tie is unknown
all        malicious if every labelled record is malicious, benign if any is benign
ctu13      malicious if any malicious record is a CTU-13 C&C flow (``detailed_label``
           matching :data:`CC`); benign if no record is malicious and one is benign;
           targets of other botnet flows (spam victims, ...) are unknown
=========  ============================================================================

Every rule leaves a target unknown (-1) when none of its records is malicious or benign.
:func:`vote` says why each unknown target is unknown, so callers can count and report it.
``Bags.from_records(label_rule=)`` and ``datasets.load/from_files(label_rule=)`` both call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CC", "RULES", "Vote", "vote"]

RULES = ("any", "majority", "all", "ctu13")
CC = r"(?i)botnet.*-CC"  # CTU-13 C&C flow labels, e.g. From-Botnet-V47-TCP-CC73-Not-Encrypted
NO_LABEL = "no malicious or benign record"
TIE = "tie between malicious and benign records"
VICTIM = "botnet flows but no C&C (victims)"


@dataclass(frozen=True)
class Vote:
    """The outcome of a rule over B targets.

    labels: (B,) int8, 1 malicious, 0 benign, -1 unknown. unknown: reason -> (B,) bool, one
    disjoint mask per reason, together covering ``labels == -1``. malicious, benign: (B,)
    int64 record votes of each target.
    """

    labels: np.ndarray
    unknown: dict
    malicious: np.ndarray
    benign: np.ndarray

    @property
    def mixed(self) -> int:
        """Malicious targets that also have benign records."""
        return int(((self.labels == 1) & (self.benign > 0)).sum())


def check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"label_rule must be one of {RULES}, got {rule!r}")


def vote(
    target_codes: np.ndarray,
    record_labels: np.ndarray,
    n_targets: int,
    rule: str,
    detailed_labels=None,
) -> Vote:
    """Labels of ``n_targets`` targets from (N,) record labels and (N,) target codes.

    ``detailed_labels``: (N,) str Series, needed by ``rule="ctu13"`` only.
    """
    check_rule(rule)
    record_labels = np.asarray(record_labels)
    if not np.isin(record_labels, (-1, 0, 1)).all():
        raise ValueError(
            "record labels must be 1 (malicious), 0 (benign) or -1 (unknown), got "
            f"{sorted(set(np.unique(record_labels).tolist()) - {-1, 0, 1})[:5]}"
        )
    count = lambda mask: np.bincount(target_codes, weights=mask, minlength=n_targets)  # noqa: E731
    mal = count(record_labels == 1).astype(np.int64)
    ben = count(record_labels == 0).astype(np.int64)
    labels = np.full(n_targets, -1, np.int8)
    unknown = {NO_LABEL: (mal == 0) & (ben == 0)}
    if rule == "any":
        labels[mal > 0] = 1
        labels[(mal == 0) & (ben > 0)] = 0
    elif rule == "majority":
        labels[mal > ben] = 1
        labels[ben > mal] = 0
        unknown[TIE] = (mal == ben) & (mal > 0)
    elif rule == "all":
        labels[(mal > 0) & (ben == 0)] = 1
        labels[ben > 0] = 0
    else:
        if detailed_labels is None:
            raise ValueError("label_rule 'ctu13' needs a detailed_label column")
        cc = detailed_labels.str.contains(CC, regex=True).to_numpy(bool) & (record_labels == 1)
        labels[count(cc) > 0] = 1
        labels[(mal == 0) & (ben > 0)] = 0
        unknown[VICTIM] = (labels == -1) & (mal > 0)
    return Vote(labels, unknown, mal, ben)
