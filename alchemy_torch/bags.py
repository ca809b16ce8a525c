"""Ragged bags of traffic records: one kind's records sorted by (target, ts), as CSR tensors."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from alchemy_torch.ops.segment import csr_gather

__all__ = ["Bags", "SCHEMAS", "Schema"]


@dataclass(frozen=True)
class Schema:
    """Canonical columns of one kind (DESIGN.md).

    ``numeric``: column -> torch dtype. ``categorical``: column -> vocabulary name (columns
    sharing a vocabulary share codes, so ``src == server`` is a code comparison).
    ``ragged``: list-valued columns -> vocabulary name, or None for integer lists; they share
    one per-record offsets tensor. ``optional``: numeric columns filled with NaN when absent.
    """

    target: str
    numeric: dict
    categorical: dict
    ragged: dict = field(default_factory=dict)
    optional: tuple = ()


SCHEMAS: dict[str, Schema] = {
    "flows": Schema(
        target="server",
        numeric={
            "ts": torch.float64,
            "sport": torch.int64,
            "dport": torch.int64,
            "pkts": torch.int64,
            "bytes": torch.int64,
            "duration": torch.float64,
        },
        categorical={
            "proto": "proto",
            "src": "address",
            "dst": "address",
            "flags": "flags",
            "server": "address",
        },
        optional=("duration",),
    ),
    "http": Schema(
        target="server",
        numeric={
            "ts": torch.float64,
            "bytes_out": torch.int64,
            "bytes_in": torch.int64,
            "status": torch.int64,
        },
        categorical={
            "client": "address",
            "server": "address",
            "host": "host",
            "path": "path",
            "query": "query",
            "method": "method",
            "user_agent": "user_agent",
            "referrer": "referrer",
        },
    ),
    "dns": Schema(
        target="query",
        numeric={"ts": torch.float64},
        categorical={"client": "address", "query": "domain", "qtype": "qtype", "rcode": "rcode"},
        ragged={"answers": "answer", "ttls": None},
    ),
}

LABEL_RULES = ("any", "majority", "all")


@dataclass
class Bags:
    """One kind's records grouped into bags per target.

    Attributes (B targets, N records, A flattened list items):
        kind: ``"flows"``, ``"http"`` or ``"dns"``.
        columns: name -> (N,) tensor, records sorted by (target, ts, other columns);
            categorical columns hold int64 codes into ``vocab[SCHEMAS[kind].categorical[name]]``.
        offsets: (B+1,) int64 CSR pointer: bag ``b`` is records ``offsets[b]:offsets[b+1]``.
        targets: (B,) numpy array of target names, sorted.
        labels: (B,) int64, 1 malicious, 0 benign, -1 unlabelled.
        vocab: vocabulary name -> numpy array of values (code -> value).
        ragged_offsets: (N+1,) int64 CSR pointer of list columns (dns answers/ttls) or None.
        ragged: name -> (A,) tensor (codes for string lists).
        cache: per-record values derived once and reused by every draw (e.g. HTTP lexical
            features); dropped by ``to`` and indexing, which rebuild it on demand.
    """

    kind: str
    columns: dict
    offsets: Tensor
    targets: np.ndarray
    labels: Tensor
    vocab: dict
    ragged_offsets: Tensor | None = None
    ragged: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_records(
        cls,
        kind: str,
        records: pd.DataFrame,
        labels: pd.Series | None = None,
        *,
        target: str | None = None,
        label_rule: str = "any",
    ) -> "Bags":
        """Build bags from canonical records (one row per record).

        ``labels``: Series target -> 0/1. Without it, the per-record ``label`` column decides
        (1 malicious, 0 benign, -1 unknown, ignored in the vote) under ``label_rule``: ``"any"``
        malicious record, a strict ``"majority"``, or ``"all"`` known records malicious.
        Without either, every label is -1 (unlabelled, e.g. for scoring).
        """
        schema = _schema(kind)
        if label_rule not in LABEL_RULES:
            raise ValueError(f"label_rule must be one of {LABEL_RULES}, got {label_rule!r}")
        if not isinstance(records, pd.DataFrame):
            raise ValueError(f"records must be a pandas DataFrame, got {type(records).__name__}")
        target = target or schema.target
        required = [
            c
            for c in (*schema.numeric, *schema.categorical, *schema.ragged)
            if c not in schema.optional
        ]
        missing = [c for c in dict.fromkeys([*required, target]) if c not in records.columns]
        if missing:
            raise ValueError(f"{kind} records miss columns {missing}; have {list(records.columns)}")
        if len(records) == 0:
            raise ValueError(f"{kind} records are empty: no bags to build")
        keys = records[target]
        bad = keys.isna() | (keys.astype(str).str.len() == 0)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} records have a NaN or empty target {target!r} "
                f"(first at row {records.index[np.flatnonzero(bad.to_numpy())[0]]!r})"
            )

        target_codes, targets = pd.factorize(keys.astype(str), sort=True)
        vocab, codes = _encode_categorical(records, schema)
        numeric = {
            c: _numeric_column(records, c, dtype, c in schema.optional, kind)
            for c, dtype in schema.numeric.items()
        }
        ragged_lengths, ragged_items = _flatten_lists(records, schema, vocab, kind)

        order = _total_order(target_codes, numeric, codes, ragged_lengths, ragged_items)
        target_codes = target_codes[order]
        lengths = np.bincount(target_codes, minlength=len(targets))
        offsets = torch.zeros(len(targets) + 1, dtype=torch.int64)
        offsets[1:] = torch.from_numpy(lengths).cumsum(0)

        columns = {
            c: torch.from_numpy(np.ascontiguousarray(v[order]))
            for c, v in {**numeric, **codes}.items()
        }
        ragged_offsets, ragged = None, {}
        if schema.ragged:
            item_offsets = torch.zeros(len(records) + 1, dtype=torch.int64)
            item_offsets[1:] = torch.tensor(ragged_lengths).cumsum(0)
            items, ragged_offsets = csr_gather(item_offsets, torch.from_numpy(order))
            ragged = {c: torch.from_numpy(v)[items] for c, v in ragged_items.items()}

        target_labels = _target_labels(
            labels, records, target_codes, order, np.asarray(targets, dtype=object), label_rule
        )
        return cls(
            kind=kind,
            columns=columns,
            offsets=offsets,
            targets=np.asarray(targets, dtype=object),
            labels=torch.from_numpy(np.array(target_labels, dtype=np.int64)),
            vocab=vocab,
            ragged_offsets=ragged_offsets,
            ragged=ragged,
        )

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return self.offsets.numel() - 1

    @property
    def lengths(self) -> Tensor:
        """(B,) int64 records per bag."""
        return self.offsets.diff()

    @property
    def num_records(self) -> int:
        return int(self.offsets[-1])

    @property
    def device(self) -> torch.device:
        return self.offsets.device

    def to(self, device: str | torch.device) -> "Bags":
        """A copy with every tensor on ``device``."""
        move = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
        return replace(
            self,
            columns=move(self.columns),
            offsets=self.offsets.to(device),
            labels=self.labels.to(device),
            ragged_offsets=None if self.ragged_offsets is None else self.ragged_offsets.to(device),
            ragged=move(self.ragged),
            cache={},
        )

    def __getitem__(self, index) -> "Bags":
        """The bags of the targets ``index`` (int, slice, sequence, bool mask, tensor), in order."""
        idx = _target_index(index, len(self), self.device)
        rows, offsets = csr_gather(self.offsets, idx)
        ragged_offsets, ragged = self.ragged_offsets, self.ragged
        if ragged_offsets is not None:
            items, ragged_offsets = csr_gather(ragged_offsets, rows)
            ragged = {k: v[items] for k, v in ragged.items()}
        return replace(
            self,
            columns={k: v[rows] for k, v in self.columns.items()},
            offsets=offsets,
            targets=self.targets[idx.cpu().numpy()],
            labels=self.labels[idx],
            ragged_offsets=ragged_offsets,
            ragged=ragged,
            cache={},
        )

    def cached(self, key: str, build):
        """``build()`` once per Bags and key (per-record values unchanged by resampling)."""
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]

    def decode(self, column: str, codes: Tensor | None = None) -> np.ndarray:
        """Values of a categorical column (all records, or the given codes)."""
        vocab = self.vocab[SCHEMAS[self.kind].categorical[column]]
        codes = self.columns[column] if codes is None else codes
        return vocab[codes.cpu().numpy()]

    def __repr__(self) -> str:
        n_mal = int((self.labels == 1).sum())
        n_ben = int((self.labels == 0).sum())
        return (
            f"Bags(kind={self.kind!r}, targets={len(self)} ({n_mal} malicious, {n_ben} benign), "
            f"records={self.num_records}, device={self.device})"
        )


# ---------------------------------------------------------------------- helpers
def _schema(kind: str) -> Schema:
    if kind not in SCHEMAS:
        raise ValueError(f"kind must be one of {sorted(SCHEMAS)}, got {kind!r}")
    return SCHEMAS[kind]


def _numeric_column(
    records: pd.DataFrame, name: str, dtype: torch.dtype, optional: bool, kind: str
) -> np.ndarray:
    np_dtype = np.float64 if dtype == torch.float64 else np.int64
    if name not in records.columns:
        return np.full(len(records), np.nan)
    col = records[name]
    if name == "ts" and pd.api.types.is_datetime64_any_dtype(col):
        col = (col - pd.Timestamp(0, tz=getattr(col.dt, "tz", None))) / pd.Timedelta(seconds=1)
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & ~col.isna() if optional else values.isna()
    if bad.any():
        row = records.index[np.flatnonzero(bad.to_numpy())[0]]
        raise ValueError(
            f"{kind} column {name!r}: {int(bad.sum())} missing or non-numeric values "
            f"(first at row {row!r}: {col.loc[row]!r})"
        )
    values = values.to_numpy(dtype=np.float64)
    if np_dtype is np.int64:
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"{kind} column {name!r} must hold integers")
        return values.astype(np.int64)
    return values


def _encode_categorical(records: pd.DataFrame, schema: Schema) -> tuple[dict, dict]:
    """Codes per column, one sorted vocabulary per vocabulary name (deterministic)."""
    by_vocab: dict[str, list[str]] = {}
    for col, name in schema.categorical.items():
        by_vocab.setdefault(name, []).append(col)
    vocab, codes = {}, {}
    for name, cols in by_vocab.items():
        values = [records[c].fillna("").astype(str).to_numpy(dtype=object) for c in cols]
        all_codes, uniques = pd.factorize(np.concatenate(values), sort=True)
        vocab[name] = np.asarray(uniques, dtype=object)
        for i, c in enumerate(cols):
            codes[c] = all_codes[i * len(records) : (i + 1) * len(records)].astype(np.int64)
    return vocab, codes


def _flatten_lists(
    records: pd.DataFrame, schema: Schema, vocab: dict, kind: str
) -> tuple[np.ndarray, dict]:
    """(N,) list lengths and name -> (A,) flattened items (codes or int64), in input order.

    Adds the vocabularies of string lists to ``vocab``. All list columns must agree in length.
    """
    lengths, items = np.zeros(len(records), dtype=np.int64), {}
    for i, (name, vocab_name) in enumerate(schema.ragged.items()):
        col = records[name]
        bad = ~col.map(type).isin([list, tuple, np.ndarray])
        if bad.any():
            row = records.index[np.flatnonzero(bad.to_numpy())[0]]
            raise ValueError(
                f"{kind} column {name!r} must hold lists (first bad row {row!r}: {col.loc[row]!r})"
            )
        col_lengths = col.str.len().to_numpy(dtype=np.int64)
        if i and not np.array_equal(col_lengths, lengths):
            row = records.index[np.flatnonzero(col_lengths != lengths)[0]]
            raise ValueError(
                f"{kind} columns {next(iter(schema.ragged))!r} and {name!r} differ in length "
                f"at row {row!r}"
            )
        lengths = col_lengths
        # explode leaves one NaN placeholder per empty list: drop those
        values = col.explode().to_numpy(dtype=object)[
            np.repeat(lengths > 0, np.maximum(lengths, 1))
        ]
        if vocab_name is None:
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
                dtype=np.float64
            )
            if np.isnan(numbers).any():
                raise ValueError(f"{kind} column {name!r} holds non-numeric items")
            items[name] = numbers.round().astype(np.int64)
        else:
            item_codes, uniques = pd.factorize(values.astype(str), sort=True)
            vocab[vocab_name] = np.asarray(uniques, dtype=object)
            items[name] = item_codes.astype(np.int64)
    return lengths, items


def _list_hash(lengths: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(N,) int64 polynomial hash of every record's list (wrapping): a content-based tie-breaker."""
    out = lengths.copy()
    nonempty = lengths > 0
    if values.size:
        starts = np.cumsum(lengths) - lengths
        position = np.arange(values.size) - np.repeat(starts, lengths)
        with np.errstate(over="ignore"):
            terms = (values.astype(np.int64) + 1) * np.power(np.int64(1_000_003), position + 1)
            out[nonempty] += np.add.reduceat(terms, starts[nonempty])
    return out


def _total_order(
    target_codes: np.ndarray, numeric: dict, codes: dict, ragged_lengths, ragged_items: dict
) -> np.ndarray:
    """Row order by (target, ts, every other column): independent of the input row order."""
    keys = list(codes.values()) + [
        np.nan_to_num(v, nan=-np.inf) for c, v in numeric.items() if c != "ts"
    ]
    keys += [_list_hash(ragged_lengths, v) for v in ragged_items.values()]
    return np.lexsort([*reversed(keys), numeric["ts"], target_codes])


def _target_labels(labels, records, target_codes, order, targets, rule) -> np.ndarray:
    n = len(targets)
    if labels is not None:
        if not isinstance(labels, pd.Series):
            raise ValueError(
                f"labels must be a pandas Series target -> 0/1, got {type(labels).__name__}"
            )
        index = labels.index.astype(str)
        unknown = sorted(set(index) - set(targets))
        if unknown:
            raise ValueError(
                f"labels name {len(unknown)} targets absent from the records, e.g. {unknown[:5]}"
            )
        if index.has_duplicates:
            raise ValueError(
                f"labels name targets twice, e.g. {list(index[index.duplicated()][:5])}"
            )
        values = pd.to_numeric(labels, errors="coerce")
        if values.isna().any() or not values.isin([0, 1]).all():
            raise ValueError(
                f"labels must be 0 or 1, got "
                f"{sorted(map(str, pd.unique(labels[~values.isin([0, 1])])))[:5]}"
            )
        missing = sorted(set(targets) - set(index))
        if missing:
            raise ValueError(f"{len(missing)} targets have no label, e.g. {missing[:5]}")
        return values.set_axis(index).reindex(targets).to_numpy(dtype=np.int64)
    if "label" not in records.columns:
        return np.full(n, -1, dtype=np.int64)
    rec = pd.to_numeric(records["label"], errors="coerce").to_numpy()[order]
    if np.isnan(rec).any() or not np.isin(rec, [-1, 0, 1]).all():
        raise ValueError(
            "per-record label column must hold 1 (malicious), 0 (benign) or -1 (unknown)"
        )
    malicious = np.bincount(target_codes, weights=rec == 1, minlength=n)
    known = np.bincount(target_codes, weights=rec != -1, minlength=n)
    if (known == 0).any():
        raise ValueError(
            f"{int((known == 0).sum())} targets have only unknown (-1) record labels, "
            f"e.g. {list(targets[known == 0][:5])}; filter them or pass labels"
        )
    if rule == "any":
        return (malicious > 0).astype(np.int64)
    if rule == "majority":
        return (2 * malicious > known).astype(np.int64)
    return (malicious == known).astype(np.int64)


def _target_index(index, n: int, device) -> Tensor:
    if isinstance(index, slice):
        return torch.arange(n, device=device)[index]
    if isinstance(index, (int, np.integer)):
        index = [int(index)]
    idx = torch.as_tensor(
        np.asarray(index) if isinstance(index, Sequence) else index, device=device
    )
    if idx.dtype == torch.bool:
        if idx.numel() != n:
            raise ValueError(f"boolean index has {idx.numel()} entries for {n} bags")
        idx = torch.nonzero(idx).squeeze(1)
    idx = idx.long().reshape(-1)
    if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise IndexError(f"bag index out of range for {n} bags")
    return torch.where(idx < 0, idx + n, idx)
