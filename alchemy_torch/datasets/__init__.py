"""Data sets: the real labelled sets in shared/data, remote sets, synthetic generators.

ds = load("flows-iot23-small")              # Dataset(kind, records, labels, report)
print(ds.report)                            # what was read, kept and removed, per class
ds = ds.filter(min_bag_size=5)              # or valid=True (METHOD.md 2.3)
records, labels = synthetic("dns", n_targets=500, difficulty=0.3)
path = fetch("ctu13-1")                     # cached, checksum-verified download
"""

from .registry import Dataset, available, default_root, load
from .remote import REMOTE, ChecksumError, fetch
from .report import Report
from .synthetic import synthetic

list = available  # datasets.list(): every name load() accepts

__all__ = [
    "REMOTE",
    "ChecksumError",
    "Dataset",
    "Report",
    "available",
    "default_root",
    "fetch",
    "load",
    "synthetic",
]  # not "list": a star-import must not shadow the builtin
