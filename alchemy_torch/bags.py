"""Ragged bags of traffic records: one kind's records sorted by (target, ts), as CSR tensors."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from alchemy_torch import labels as label_rules
from alchemy_torch.io.fields import Fields
from alchemy_torch.io.schema import SCHEMAS, Schema, check_kind
from alchemy_torch.io.source import RawTable
from alchemy_torch.ops.segment import csr_gather, offsets_from_lengths

__all__ = ["Bags"]


@dataclass
class Bags:
    """One kind's records grouped into bags per target.

    Attributes (B targets, N records, A flattened list items):
        kind: ``"flows"``, ``"http"`` or ``"dns"``.
        columns: name -> (N,) tensor, records sorted by (target, ts, other columns);
            text columns hold int64 codes into their vocabulary (``decode`` maps them back).
        offsets: (B+1,) int64 CSR pointer: bag ``b`` is records ``offsets[b]:offsets[b+1]``.
        targets: (B,) numpy array of target names, sorted.
        labels: (B,) int64, 1 malicious, 0 benign, -1 unlabelled.
        vocab: vocabulary name -> numpy array of values (code -> value).
        ragged_offsets: (N+1,) int64 CSR pointer of list columns (dns answers/ttls) or None.
        ragged: name -> (A,) tensor (codes for string lists).
        cache: per-record or per-target values derived once and reused by every draw (e.g. HTTP
            lexical features, resampling buckets); dropped by ``to`` and indexing, which rebuild
            it on demand.
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
        """Build bags from canonical records (one row per record; :mod:`alchemy_torch.io.schema`).

        ``labels``: Series target -> 1 (malicious), 0 (benign) or -1 (unlabelled). Without it,
        the per-record ``label`` column decides under ``label_rule`` (one of
        :data:`alchemy_torch.labels.RULES`); a target the rule leaves unknown is an error
        (drop or keep such targets with :func:`alchemy_torch.datasets.from_files`, or pass
        ``labels``). Without either, every label is -1 (unlabelled, e.g. for scoring).
        Values are checked as the readers check them (:class:`~alchemy_torch.io.DataFormatError`
        naming the row and field): finite numbers within the schema's ranges.
        """
        schema = check_kind(kind)
        target = target or schema.target
        _validate(kind, schema, records, target, label_rule)
        target_codes, targets = pd.factorize(records[target].astype(str), sort=True)
        targets = np.asarray(targets, dtype=object)
        numbers = _numbers(records, schema, kind)
        vocab, codes = _encode_text(records, schema)
        list_lengths, list_items = _flatten_lists(records, schema, vocab, kind)
        order = _total_order(target_codes, numbers, codes, list_lengths, list_items)
        ragged_offsets, ragged = _lists_in_order(list_lengths, list_items, order)
        return cls(
            kind=kind,
            columns={
                c: torch.from_numpy(np.ascontiguousarray(v[order]))
                for c, v in {**numbers, **codes}.items()
            },
            offsets=offsets_from_lengths(
                torch.from_numpy(np.bincount(target_codes, minlength=len(targets)))
            ),
            targets=targets,
            labels=torch.from_numpy(
                _target_labels(labels, records, target_codes, targets, label_rule)
            ),
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
        """``build()`` once per Bags and key (per-record or per-target values unchanged by
        resampling)."""
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]

    def decode(self, column: str, codes: Tensor | None = None) -> np.ndarray:
        """Values of a categorical column (all records, or the given codes)."""
        vocab = self.vocab[_vocab_of(self.kind, column)]
        codes = self.columns[column] if codes is None else codes
        return vocab[codes.cpu().numpy()]

    def __repr__(self) -> str:
        n_mal = int((self.labels == 1).sum())
        n_ben = int((self.labels == 0).sum())
        return (
            f"Bags(kind={self.kind!r}, targets={len(self)} ({n_mal} malicious, {n_ben} benign), "
            f"records={self.num_records}, device={self.device})"
        )


# ---------------------------------------------------------------------- steps
def _validate(kind: str, schema: Schema, records, target: str, label_rule: str) -> None:
    """Check the frame: columns present, not empty, a name for every record's target."""
    label_rules.check_rule(label_rule)
    if not isinstance(records, pd.DataFrame):
        raise ValueError(f"records must be a pandas DataFrame, got {type(records).__name__}")
    required = [c.name for c in schema.columns if not c.optional]
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


def _numbers(records: pd.DataFrame, schema: Schema, kind: str) -> dict:
    """name -> (N,) float64/int64 of every numeric column, checked as the readers check them.

    Through the readers' :class:`~alchemy_torch.io.fields.Fields` (numbers, integers,
    datetimes as epoch seconds, the schema's ranges), plus finiteness; the first bad row
    raises a DataFormatError naming it (the frame's integer index label, else its position).
    """
    frame = records.reset_index(drop=True)
    index = records.index
    rows = index.to_numpy() if pd.api.types.is_integer_dtype(index) else np.arange(len(index))
    fields = Fields(RawTable(f"{kind} records", frame, rows, unit="row"), lenient=False)
    numbers = {}
    for col in schema.of("float64", "int64"):
        if col.name == "ts":
            numbers["ts"] = fields.time("ts")
            continue
        numbers[col.name] = fields.number(
            col.name,
            integer=col.dtype == "int64",
            default=np.nan if col.optional else None,
            lo=col.lo,
            hi=col.hi,
        )
        raw = frame.get(col.name)
        if raw is not None and pd.api.types.is_numeric_dtype(raw):
            fields.flag(np.isinf(raw.to_numpy(np.float64, na_value=0.0)), col.name, "infinite", raw)
    return fields.commit(numbers)


def _encode_text(records: pd.DataFrame, schema: Schema) -> tuple[dict, dict]:
    """Codes per text column, one sorted vocabulary per vocabulary name (deterministic)."""
    by_vocab: dict[str, list[str]] = {}
    for col in schema.of("str"):
        by_vocab.setdefault(col.vocab, []).append(col.name)
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
    list_columns = schema.of("list[str]", "list[int]")
    for i, list_column in enumerate(list_columns):
        name, col = list_column.name, records[list_column.name]
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
                f"{kind} columns {list_columns[0].name!r} and {name!r} differ in length "
                f"at row {row!r}"
            )
        lengths = col_lengths
        # explode leaves one NaN placeholder per empty list: drop those
        values = col.explode().to_numpy(dtype=object)[
            np.repeat(lengths > 0, np.maximum(lengths, 1))
        ]
        if list_column.vocab is None:
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
                dtype=np.float64
            )
            if not np.isfinite(numbers).all():
                raise ValueError(f"{kind} column {name!r} holds non-numeric or infinite items")
            items[name] = numbers.round().astype(np.int64)
        else:
            item_codes, uniques = pd.factorize(values.astype(str), sort=True)
            vocab[list_column.vocab] = np.asarray(uniques, dtype=object)
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


def _lists_in_order(lengths: np.ndarray, items: dict, order: np.ndarray):
    """(N+1,) offsets and name -> (A,) items of the list columns, records in ``order``."""
    if not items:
        return None, {}
    offsets = offsets_from_lengths(torch.tensor(lengths))
    gathered, ragged_offsets = csr_gather(offsets, torch.from_numpy(order))
    return ragged_offsets, {c: torch.from_numpy(v)[gathered] for c, v in items.items()}


def _target_labels(labels, records, target_codes, targets, rule) -> np.ndarray:
    """(B,) int64 labels: from the ``labels`` Series, else the rule over record labels."""
    if labels is not None:
        return _labels_from_series(labels, targets)
    if "label" not in records.columns:
        return np.full(len(targets), -1, dtype=np.int64)
    record_labels = pd.to_numeric(records["label"], errors="coerce").to_numpy()
    outcome = label_rules.vote(
        target_codes, record_labels, len(targets), rule, records.get("detailed_label")
    )
    unknown = outcome.labels == -1
    if unknown.any():
        why = ", ".join(f"{int(m.sum())} {r}" for r, m in outcome.unknown.items() if m.any())
        raise ValueError(
            f"{int(unknown.sum())} targets have no label under label_rule={rule!r} ({why}), "
            f"e.g. {list(targets[unknown][:5])}; pass labels=, or read the files with "
            "datasets.from_files(paths, unknown='drop' or 'keep')"
        )
    return outcome.labels.astype(np.int64)


def _labels_from_series(labels, targets: np.ndarray) -> np.ndarray:
    """(B,) int64 from a Series target -> 1/0/-1 naming every target exactly once."""
    if not isinstance(labels, pd.Series):
        raise ValueError(
            f"labels must be a pandas Series target -> 1/0/-1, got {type(labels).__name__}"
        )
    index = labels.index.astype(str)
    unknown = sorted(set(index) - set(targets))
    if unknown:
        raise ValueError(
            f"labels name {len(unknown)} targets absent from the records, e.g. {unknown[:5]}"
        )
    if index.has_duplicates:
        raise ValueError(f"labels name targets twice, e.g. {list(index[index.duplicated()][:5])}")
    values = pd.to_numeric(labels, errors="coerce")
    valid = values.isin([-1, 0, 1])
    if not valid.all():
        raise ValueError(
            "labels must be 1 (malicious), 0 (benign) or -1 (unlabelled), got "
            f"{sorted(map(str, pd.unique(labels[~valid])))[:5]}"
        )
    missing = sorted(set(targets) - set(index))
    if missing:
        raise ValueError(f"{len(missing)} targets have no label, e.g. {missing[:5]}")
    return values.set_axis(index).reindex(targets).to_numpy(dtype=np.int64, copy=True)


def _vocab_of(kind: str, column: str) -> str:
    """The vocabulary name of a text column."""
    return next(c.vocab for c in SCHEMAS[kind].columns if c.name == column)


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
