"""Named datasets: the real sets staged in ``shared/data`` (by folder name), the remote
CTU-13 scenarios (downloaded by :func:`~alchemy_torch.datasets.fetch`) and the synthetic
defaults. Each real set follows the label rule of its SOURCE.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.schema import KINDS, SOURCE, TARGET
from .dataset import Dataset, union
from .files import Source, assemble, read_source, sources_of
from .remote import REMOTE, fetch
from .report import Report
from .synthetic import synthetic

DATA_ENV = "ALCHEMY_TORCH_DATA"


# -- record-level rules from the SOURCE.md files -------------------------------------------
def capture_level(exclude: tuple = ()) -> Callable:
    """Unlabeled malware capture: every record malicious, except the ``exclude``d targets
    (OS/benign names), which become unknown."""

    def prepare(records: pd.DataFrame, kind: str) -> pd.DataFrame:
        other = records[TARGET[kind]].isin(exclude).to_numpy()
        return records.assign(
            label=np.where(other, -1, 1).astype(np.int8), detailed_label="capture-level"
        )

    return prepare


def server_port(proto: str, port: int) -> Callable:
    """Unlabeled capture whose README names the malicious service: flows of servers on
    ``proto``/``port`` are malicious, all others unknown."""

    def prepare(records: pd.DataFrame, kind: str) -> pd.DataFrame:
        service = np.where(records["dst"] == records["server"], records["dport"], records["sport"])
        hit = (records["proto"] == proto).to_numpy() & (service == port)
        return records.assign(
            label=np.where(hit, 1, -1).astype(np.int8),
            detailed_label=np.where(hit, f"{proto}/{port} rule", ""),
        )

    return prepare


def remote_endpoint(records: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Monitored host attacked from the Internet: the target is the REMOTE endpoint (the
    monitored host -- the address in most records -- is never the server)."""
    ends = pd.concat([records["src"], records["dst"]])
    host = ends.mode().iloc[0]
    other = records["src"].where(records["src"] != records["server"], records["dst"])
    return records.assign(server=records["server"].where(records["server"] != host, other))


def inbound_unknown(records: pd.DataFrame, kind: str) -> pd.DataFrame:
    """'Malicious' here marks inbound attacks on the monitored host (a victim, not a malicious
    server): those records become unknown."""
    return records.assign(label=records["label"].where(records["label"] != 1, -1))


@dataclass(frozen=True)
class Files:
    """Files of a set (a glob in its folder) and the record rule their SOURCE.md gives."""

    pattern: str
    prepare: Callable | None = None  # (records, kind) -> records


@dataclass(frozen=True)
class Local:
    """A real set: its kind, files, label rule, files left out (with why) and caveats."""

    kind: str
    files: tuple
    label_rule: str = "any"
    left_out: tuple = ()  # (file, reason): files in the folder that load() does not use
    notes: tuple = ()


SIMDA_OS_NAMES = ("wpad", "wpad.lan", "dns.msftncsi.com", "www.bing.com")  # and '-' (empty)
LOCAL = {
    "flows-iot23-small": Local(
        "flows",
        (Files("*-labeled.csv.gz"),),
        notes=(
            "any Malicious flow makes its responder malicious: includes DDoS and scan victims "
            "besides C&C/FileDownload servers (SOURCE.md)",
        ),
    ),
    "flows-ctu13-s6-menti": Local(
        "flows",
        (Files("*.binetflow.gz"),),
        label_rule="ctu13",
        notes=(
            "Argus has no per-direction packet counts: packets per direction are estimated "
            "(TotPkts split in proportion to bytes)",
            "only ONE malicious (C&C) server: combine with other sets",
        ),
    ),
    "flows-ctu-sme11": Local(
        "flows",
        (Files("*.conn.log.labeled.gz"),),
        notes=("the malicious bag covers 8 minutes of one RemcosRAT capture",),
    ),
    "flows-android-mischief-rat01": Local(
        "flows",
        (Files("*.conn.log.gz", server_port("tcp", 1337)),),
        notes=(
            "no label column: README rule tcp/1337 = RAT controller; all other responders "
            "unknown, so the set holds no benign target",
        ),
    ),
    "flows-ctu-normal-attacked": Local(
        "flows",
        (Files("*.conn.log.labeled.gz", remote_endpoint),),
        notes=(
            "target = remote endpoint; label == direction (inbound attackers vs servers the "
            "host contacted): near-trivial AUC, a smoke/scale test only",
        ),
    ),
    "flows-ctu-malware-botnet-4": Local(
        "flows",
        (Files("*.conn.log.labeled.gz"),),
        notes=("labels are noisy (flow-rule based, many mixed targets)",),
    ),
    "flows-ctu-benign-2023-02-20": Local(
        "flows",
        (Files("*.conn.log.labeled.gz"),),
        notes=("benign only: extra benign bags (different OS/network than the malware captures)",),
    ),
    "http-stratosphere": Local(
        "http",
        (
            Files("ctu-malware-botnet-355-1-simda.*.http.log.gz", capture_level()),
            Files("ctu-malware-botnet-219-2-kovter.http.log.labeled.gz"),
            Files("ctu-benign-2023-02-20.http.log.labeled.gz"),
            Files("ctu-normal-4*-day*.http.log.labeled.gz", inbound_unknown),
        ),
        left_out=(
            (
                "ctu-malware-capture-botnet-4.http.log.labeled.gz",
                "not in SOURCE.md's benchmark (benign-labeled traffic of an infected host)",
            ),
        ),
        notes=(
            "positives and negatives come from different captures/OS/years: strong "
            "capture confound",
            "Simda requests are malicious at capture level (no per-request labels)",
        ),
    ),
    "dns-stratosphere": Local(
        "dns",
        (
            Files("ctu-malware-botnet-355-1-simda.*.dns.log.gz", capture_level(SIMDA_OS_NAMES)),
            Files("ctu-benign-2023-02-20.dns.log.labeled.gz"),
        ),
        left_out=(
            (
                "ctu-malware-capture-botnet-4.dns.log.labeled.gz",
                "not in SOURCE.md's benchmark (43 rows, flow-rule labels)",
            ),
        ),
        notes=(
            "Simda domains are malicious at capture level, minus the OS names "
            f"{', '.join(repr(n) for n in SIMDA_OS_NAMES)}",
            "different captures (2016-ish sandbox via 8.8.8.8 vs Ubuntu 2023): resolver, "
            "qtype and time confounds",
        ),
    ),
}
SYNTHETIC = {f"synthetic-{kind}": kind for kind in KINDS}


def available() -> list[str]:
    """Every name :func:`load` accepts: real sets, remote sets, synthetic defaults."""
    return sorted(LOCAL) + sorted(n for n, e in REMOTE.items() if e.kind) + sorted(SYNTHETIC)


def default_root() -> Path:
    """Where the real sets live: $ALCHEMY_TORCH_DATA, else ``shared/data`` beside the checkout."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def load(
    name: str,
    root=None,
    *,
    cache_dir=None,
    label_rule: str | None = None,
    unknown: str = "drop",
    align_time: str | None = None,
    min_bag_size: int | None = None,
    valid: bool = False,
) -> Dataset:
    """The dataset ``name`` (see :func:`available`) with per-target labels and a report.

    Real sets are read from ``root/name`` (default :func:`default_root`); remote sets are
    fetched into ``cache_dir`` (see :func:`.remote.fetch`); synthetic sets use the generator
    defaults. ``label_rule`` overrides the set's rule (:data:`alchemy_torch.labels.RULES`);
    ``unknown`` and ``align_time`` are as in :func:`.files.from_files`, the path every set
    takes; ``min_bag_size`` and ``valid`` filter bags (:meth:`Dataset.filter`).
    """
    if name in SYNTHETIC:
        kind = SYNTHETIC[name]
        report = Report(name, kind, TARGET[kind], notes=["synthetic.synthetic() defaults"])
        records, _ = synthetic(kind)
        report.sources[name] = {"records": len(records)}
        spec, frames = Local(kind, ()), [records.assign(**{SOURCE: name})]
    else:
        spec, sources = _named_sources(name, root, cache_dir)
        report = Report(name, spec.kind, TARGET[spec.kind], notes=list(spec.notes))
        frames = [read_source(s, spec.kind, s.path.name, report) for s in sources]
        report.notes += [f"left out {file}: {reason}" for file, reason in spec.left_out]
    ds = assemble(frames, spec.kind, report, label_rule or spec.label_rule, unknown, align_time)
    if min_bag_size or valid:
        ds = ds.filter(min_bag_size=min_bag_size, valid=valid)
    return ds


def kind_of(names) -> str:
    """The kind of the named sets (``names``: one name or several), which must share it."""
    names = [names] if isinstance(names, str) else list(names)
    kinds = {}
    for name in names:
        if name in SYNTHETIC:
            kinds[name] = SYNTHETIC[name]
        elif name in LOCAL:
            kinds[name] = LOCAL[name].kind
        elif name in REMOTE and REMOTE[name].kind:
            kinds[name] = REMOTE[name].kind
        else:
            raise KeyError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    if len(set(kinds.values())) != 1:
        found = ", ".join(f"{n}: {k}" for n, k in kinds.items())
        raise ValueError(f"sets of different kinds ({found}): name sets of one kind")
    return next(iter(kinds.values()))


def load_many(
    names,
    root=None,
    *,
    cache_dir=None,
    unknown: str = "drop",
    align_time: str | None = None,
    min_bag_size: int | None = None,
    valid: bool = False,
    name: str = "union",
) -> Dataset:
    """Several named sets (of one kind) as one :class:`Dataset` (see :func:`.dataset.union`).

    Each set is read by :func:`load` with its own label rule; a record's source is
    ``set/file``, so ``groups`` keeps every capture apart. ``min_bag_size`` and ``valid``
    filter the union's bags (a target may span sets); the other options as in :func:`load`.
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"load_many needs distinct set names, got {names}")
    kind_of(names)  # one kind, before reading anything
    options = dict(cache_dir=cache_dir, unknown=unknown, align_time=align_time)
    ds = union({n: load(n, root, **options) for n in names}, name=name)
    if min_bag_size or valid:
        ds = ds.filter(min_bag_size=min_bag_size, valid=valid)
    return ds


def _named_sources(name: str, root, cache_dir) -> tuple[Local, list[Source]]:
    """The spec and files of a real or remote set (remote ones fetched first)."""
    if name in REMOTE:
        entry = REMOTE[name]
        if entry.kind is None:
            raise ValueError(
                f"{name} is an archive: fetch() it, unpack it and read its files "
                "with datasets.from_files"
            )
        path = fetch(name, cache_dir=cache_dir)
        spec = Local(entry.kind, (Files(path.name),), entry.label_rule, notes=entry.notes)
        return spec, sources_of(path.parent, spec.files)
    if name in LOCAL:
        folder = Path(root) / name if root is not None else default_root() / name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} not found: pass root= or set ${DATA_ENV}")
        return LOCAL[name], sources_of(folder, LOCAL[name].files)
    raise KeyError(f"unknown dataset {name!r}; available: {', '.join(available())}")
