"""Files -> a labelled :class:`~.dataset.Dataset`: the one path behind ``from_files`` and every
named set of :func:`~.registry.load`.

Steps: read every file (kind from the content when not given), keep its name in a ``source``
column, apply the set's record rules, align time per source if asked, drop records without
a target, label the targets (:mod:`alchemy_torch.labels`), count everything in the report.

Clocks: a source whose first timestamp is below :data:`RELATIVE_BEFORE` (1e9 s, i.e. before
2001-09-09 read as epoch time) is taken to count seconds from its capture's start
('relative'); others count epoch seconds ('epoch'). Stratosphere's malware captures log
relative time where its benign captures log epoch time, so time alone can separate their
classes. ``align_time="capture"`` shifts every source to start at 0, making both comparable
(time of day is then lost: day boundaries fall 24 h after each capture's start).
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import io
from ..io.schema import SOURCE, TARGET
from .dataset import Dataset
from .report import Report
from .targets import count, drop_records, label_targets

RELATIVE_BEFORE = 1e9
ALIGNMENTS = (None, "capture")
READERS = {"flows": io.read_flows, "http": io.read_http, "dns": io.read_dns}
# field names (Zeek or canonical) that only one kind's files carry
_KIND_FIELDS = {
    "flows": {
        "orig_pkts",
        "resp_pkts",
        "orig_bytes",
        "resp_bytes",
        "orig_ip_bytes",
        "resp_ip_bytes",
        "conn_state",
        "history",
        "pkts",
        "bytes",
        "sport",
        "dport",
        "flags",
        "src",
        "dst",
    },
    "http": {
        "uri",
        "method",
        "user_agent",
        "status_code",
        "host",
        "referrer",
        "path",
        "bytes_out",
        "bytes_in",
        "status",
        "request_body_len",
        "response_body_len",
    },
    "dns": {"qtype", "qtype_name", "rcode", "rcode_name", "answers", "TTLs", "ttls", "qclass"},
}
_ZEEK_LOGS = {"conn": "flows", "http": "http", "dns": "dns"}
_HEAD_BYTES = 1 << 16


@dataclass(frozen=True)
class Source:
    """A file to read and the record rule (``(records, kind) -> records``) to apply."""

    path: Path
    prepare: Callable | None = None


def from_files(
    paths,
    kind: str | None = None,
    label_rule: str = "any",
    unknown: str = "drop",
    *,
    align_time: str | None = None,
    name: str = "files",
) -> Dataset:
    """A :class:`Dataset` from your own files (any format :mod:`alchemy_torch.io` reads).

    ``paths``: files, or folders whose log files (:func:`alchemy_torch.io.log_files`) are read
    as one capture each. ``kind``: 'flows', 'http' or 'dns'; None infers it from the files'
    content (given, a folder's Zeek logs of other kinds are left out).
    ``label_rule``: how record labels make target labels (:data:`alchemy_torch.labels.RULES`).
    ``unknown``: targets the rule leaves unknown (e.g. Background-only servers) are removed
    and counted (``"drop"``) or kept with label -1 for prediction-only use (``"keep"``);
    files without a label column hold unknown records only. ``align_time``: None (as read)
    or ``"capture"`` (every file shifted to start at 0; see the module docstring).
    The report says what was read, kept and removed per class, and why.
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise ValueError("from_files needs at least one path")
    paths = [f for p in paths for f in io.log_files(p, kind)[0]]
    kind = kind or _common_kind(paths)
    report = Report(name, kind, TARGET[kind])
    names = source_names(paths)
    frames = [read_source(Source(p), kind, names[p], report) for p in paths]
    return assemble(frames, kind, report, label_rule, unknown, align_time)


def source_names(paths: list[Path]) -> dict:
    """path -> source name: the file name, or, where names repeat, the path relative to the
    folder all paths share."""
    if len({p.name for p in paths}) == len(paths):
        return {p: p.name for p in paths}
    absolute = [p.resolve() for p in paths]
    common = Path(*_common_parts([a.parent.parts for a in absolute]))
    return {p: a.relative_to(common).as_posix() for p, a in zip(paths, absolute)}


def _common_parts(parts: list[tuple]) -> tuple:
    shortest = min(parts, key=len)
    n = next((i for i in range(len(shortest)) if len({p[i] for p in parts}) > 1), len(shortest))
    return shortest[:n]


def read_source(source: Source, kind: str, name: str, report: Report) -> pd.DataFrame:
    """Records of one file with ``label``, ``detailed_label`` and ``source`` columns; the
    report notes what was read."""
    # flows keep their empty directions here, to count them per class in assemble()
    extra = {"keep_empty": True} if kind == "flows" else {}
    records = READERS[kind](source.path, **extra)
    report.sources[name] = {
        "records": len(records),
        "skipped_lines": records.attrs["skipped_lines"],
    }
    filled = records.attrs.get("filled", {})
    if filled:
        counts = ", ".join(f"{column} {n:,}" for column, n in filled.items())
        report.notes.append(
            f"{name}: records whose value the reader estimated or could not know: {counts} "
            "(features of those columns: see features.describe(kind)['unknown_from'])"
        )
    if source.prepare is not None:
        records = source.prepare(records, kind)
    if "label" not in records.columns:
        report.notes.append(f"{name}: no label column: its records are unknown (-1)")
        records = records.assign(label=np.int8(-1))
    if "detailed_label" not in records.columns:
        records = records.assign(detailed_label="")
    records.attrs = {}
    return records.assign(**{SOURCE: name})


def assemble(
    frames: list,
    kind: str,
    report: Report,
    label_rule: str,
    unknown: str,
    align_time: str | None,
) -> Dataset:
    """Records of every source -> labelled Dataset; every removal counted in ``report``."""
    records = pd.concat(frames, ignore_index=True)
    report.label_rule = label_rule
    records = align(records, report, align_time)
    target = TARGET[kind]
    unnamed = (records[target] == "").to_numpy()  # e.g. dns.log queries logged '-'
    if unnamed.any():
        report.remove("read", f"records with an empty {target}", "unknown", 0, unnamed.sum())
        records = records.loc[~unnamed].reset_index(drop=True)
    if kind == "flows":
        _, full = label_targets(records, kind, label_rule, Report("", kind, target), unknown)
        records, _ = drop_records(
            records,
            full,
            kind,
            report,
            "read",
            "directions with 0 packets",
            (records["pkts"] == 0).to_numpy(),
        )
    records, labels = label_targets(records, kind, label_rule, report, unknown)
    if records.empty:
        raise ValueError(
            f"{report.name}: no labelled target left (see the report below); files without "
            f"labels need unknown='keep'\n{report}"
        )
    count(report, records, labels, kind)
    shared = int((records.groupby(target)[SOURCE].nunique() > 1).sum())
    if shared:
        report.notes.append(
            f"{shared} target(s) appear in several sources; groups puts each with the source "
            "of most of its records"
        )
    return Dataset(kind, records, labels, report)


def align(records: pd.DataFrame, report: Report, how: str | None) -> pd.DataFrame:
    """Note every source's clock and time range; with ``how="capture"`` shift each source to
    start at 0 (see the module docstring)."""
    if how not in ALIGNMENTS:
        raise ValueError(f"align_time must be one of {ALIGNMENTS}, got {how!r}")
    span = records.groupby(SOURCE, sort=False)["ts"].agg(["min", "max"])
    relative = span["min"] < RELATIVE_BEFORE
    for source, (first, last) in span.iterrows():  # one row per source file
        report.sources[source].update(
            first_ts=float(first),
            last_ts=float(last),
            clock="relative" if relative[source] else "epoch",
        )
    listed = lambda mask: ", ".join(span.index[mask])  # noqa: E731
    if how is None:
        if relative.any() and not relative.all():
            report.notes.append(
                f"mixed clocks: {listed(relative)} count seconds from capture start (first "
                f"ts < {RELATIVE_BEFORE:g}), {listed(~relative)} epoch seconds: features of "
                "absolute time separate them; load with align_time='capture'"
            )
        return records
    for source in span.index:
        report.sources[source]["shift"] = -float(span.loc[source, "min"])
    report.notes.append(
        "align_time='capture': every source shifted to start at 0 (relative clocks: "
        f"{listed(relative) or 'none'}; epoch clocks: {listed(~relative) or 'none'})"
    )
    return records.assign(ts=records["ts"] - records[SOURCE].map(span["min"]).to_numpy())


# -- the kind of a file, from its content --------------------------------------------------
#: formats that carry flow records only
FLOWS_ONLY_FORMATS = ("argus", "nfdump", "cicflowmeter", "unsw-nb15")


def infer_kind(path) -> str:
    """'flows', 'http' or 'dns', from a file's format and field names (not its name)."""
    fmt = io.detect_format(path)
    if fmt in FLOWS_ONLY_FORMATS:
        return "flows"
    if fmt == "squid":
        return "http"
    if fmt == "eve":
        raise ValueError(
            f"{path}: a Suricata EVE file holds flows, http and dns events; pass kind="
        )
    names = _field_names(path, fmt)
    if fmt == "zeek" and names[:1] and names[0] in _ZEEK_LOGS:
        return _ZEEK_LOGS[names[0]]
    hits = {kind: len(_KIND_FIELDS[kind] & set(names)) for kind in _KIND_FIELDS}
    best = sorted(hits, key=hits.get, reverse=True)
    if hits[best[0]] == 0 or hits[best[0]] == hits[best[1]]:
        raise ValueError(
            f"{path}: cannot tell flows, http or dns from its fields {names[:20]}; pass kind="
        )
    return best[0]


def _common_kind(paths: list[Path]) -> str:
    kinds = {p: infer_kind(p) for p in paths}
    if len(set(kinds.values())) > 1:
        found = ", ".join(f"{p.name}: {k}" for p, k in kinds.items())
        raise ValueError(f"files of different kinds ({found}): load one kind at a time")
    return next(iter(kinds.values()))


def _field_names(path, fmt: str) -> list:
    """Zeek TSV: the '#path' log name first, then the '#fields'; others: the column names."""
    if fmt == "parquet":
        return list(pq.read_schema(path).names)
    lines = _head(path).decode("utf-8", "replace").splitlines()
    if fmt == "zeek":
        header = dict(line[1:].partition("\t")[::2] for line in lines if line.startswith("#"))
        return header.get("path", "").split("\t")[:1] + header.get("fields", "").split("\t")
    first = next((line for line in lines if line.strip()), "")
    if fmt == "zeek-json":
        return list(json.loads(first))
    return [c.strip() for c in next(csv.reader([first]), [])]


def _head(path) -> bytes:
    """The first bytes of a (possibly gzip-compressed) file."""
    with open(path, "rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with (gzip.open if compressed else open)(path, "rb") as fh:
        return fh.read(_HEAD_BYTES)


def sources_of(folder: Path, files: Iterable) -> list[Source]:
    """The files of a named set: each pattern's matches in ``folder``, sorted."""
    out = []
    for spec in files:
        paths = sorted(folder.glob(spec.pattern))
        if not paths:
            raise FileNotFoundError(f"{folder}: no file matches {spec.pattern!r}")
        out += [Source(p, spec.prepare) for p in paths]
    return out
