"""Data sets: the real labelled sets in shared/data, your own files, remote sets, synthetic.

ds = load("flows-iot23-small")              # Dataset(kind, records, labels, report)
ds = from_files(["conn.log.labeled"])       # your files, the same path: kind from content
ds = load_many(["flows-iot23-small", "flows-ctu-sme11"])  # several sets as one, own rules
print(ds.report)                            # what was read, kept and removed, per class
ds = ds.filter(min_bag_size=5)              # or valid=True (METHOD.md 2.3)
bags, groups = ds.to_bags(), ds.groups      # Bags; target -> capture, for grouped CV
print(audit(ds))                            # what separates the classes on its own
records, labels = synthetic("dns", n_targets=500, difficulty=0.3)
path = fetch("ctu13-1")                     # cached, checksum-verified download
"""

from .audit import Audit, audit
from .dataset import Dataset, union
from .files import from_files, infer_kind
from .registry import available, default_root, kind_of, load, load_many
from .remote import REMOTE, ChecksumError, fetch
from .report import Report
from .synthetic import synthetic

__all__ = [
    "REMOTE",
    "Audit",
    "ChecksumError",
    "Dataset",
    "Report",
    "audit",
    "available",
    "default_root",
    "fetch",
    "from_files",
    "infer_kind",
    "kind_of",
    "load",
    "load_many",
    "synthetic",
    "union",
]
