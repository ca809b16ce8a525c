"""Canonical records on disk as a Parquet dataset partitioned by target (hash partitions).

Layout (hive partitioning, readable by ``pyarrow.dataset``, Spark, DuckDB, Dask):

    DIR/_alchemy.json                 {"kind": ..., "partitions": P, "hash": HASH}
    DIR/partition=p/*.parquet         canonical records (io.schema) of the targets t with
                                      partition_of([t], P) == p, per-record ``label`` optional

Every record of a target lies in one partition, so a partition is a set of whole bags: it
can be read, drawn and turned into vectors on its own, in any order, on any machine. A
partition is a set of whole resampling buckets too (:func:`alchemy_torch.resample.bucket_of`),
so its targets get the draws they get in the whole corpus.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from alchemy_torch.bags import Bags
from alchemy_torch.io.errors import DataFormatError
from alchemy_torch.io.schema import COLUMNS, KINDS, TARGET
from alchemy_torch.params import Params
from alchemy_torch.resample import STREAM_BUCKETS, bucket_of

__all__ = ["HASH", "META", "PARTITION", "PartitionedRecords", "partition_of", "write_partitioned"]

#: the hive partition column and the metadata file of a partitioned dataset
PARTITION, META = "partition", "_alchemy.json"
#: how a target's name picks its partition (recorded in the metadata; readers check it)
HASH = f"pandas.util.hash_array(utf-8 name) mod {STREAM_BUCKETS} (resampling bucket) mod partitions"


def partition_of(names, partitions: int) -> np.ndarray:
    """(n,) int32 partition of each target name: its resampling bucket (a stable hash of the
    name, :func:`~alchemy_torch.resample.bucket_of`) modulo ``partitions``, so that a partition
    holds whole buckets. At most STREAM_BUCKETS partitions hold targets."""
    return (bucket_of(names) % partitions).astype(np.int32)


def write_partitioned(
    kind: str, batches: Iterable[pd.DataFrame], out, partitions: int, max_open_files: int = 1024
) -> int:
    """Write canonical ``kind`` records (an iterable of DataFrames, e.g. memory-sized chunks)
    as a dataset partitioned by target into the new folder ``out``; returns the records written.

    Memory holds one chunk at a time: each is hashed, split by partition and appended to the
    partitions' open files as it arrives.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not 1 <= partitions <= STREAM_BUCKETS:
        raise ValueError(
            f"partitions must be in [1, {STREAM_BUCKETS}] (one resampling bucket or more each), "
            f"got {partitions}"
        )
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: write a partitioned dataset to a new folder")
    counted = [0]

    def tables():
        for frame in batches:
            missing = [c for c in COLUMNS[kind] if c not in frame.columns]
            if missing:
                raise ValueError(f"{kind} records miss the canonical columns {missing}")
            part = partition_of(frame[TARGET[kind]].to_numpy(), partitions)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            counted[0] += table.num_rows
            yield table.append_column(PARTITION, pa.array(part, pa.int32()))

    chunks = tables()
    first = next(chunks, None)
    if first is None:
        raise ValueError(f"no {kind} records to write")
    # later chunks take the first one's types (e.g. a chunk whose lists are all empty)
    batches_out = (
        b for t in itertools.chain([first], chunks) for b in t.cast(first.schema).to_batches()
    )
    ds.write_dataset(
        batches_out,
        out,
        schema=first.schema,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(PARTITION, pa.int32())]), flavor="hive"),
        max_open_files=max_open_files,
        existing_data_behavior="overwrite_or_ignore",
    )
    (out / META).write_text(json.dumps({"kind": kind, "partitions": partitions, "hash": HASH}))
    return counted[0]


class PartitionedRecords(Params):
    """A dataset written by :func:`write_partitioned`: ``kind``, ``partitions`` (the ids that
    hold records), and per partition its records or its Bags.

    ``path``: the dataset folder (local, or any path pyarrow's filesystems resolve).
    """

    def __init__(self, path):
        self.path = path
        meta = Path(path) / META
        if not meta.is_file():
            raise DataFormatError(
                meta, None, None, "missing: write the dataset with scale.write_partitioned"
            )
        try:
            info = json.loads(meta.read_text())
            self._kind, self._count = info["kind"], int(info["partitions"])
        except (ValueError, KeyError) as exc:
            raise DataFormatError(meta, None, None, f"unreadable metadata: {exc!r}") from exc
        if info.get("hash") != HASH or self._kind not in KINDS:
            raise DataFormatError(
                meta, None, "hash" if self._kind in KINDS else "kind", f"unsupported: {info}"
            )

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def partition_count(self) -> int:
        """P: every target's partition is ``partition_of([target], P)``."""
        return self._count

    @property
    def dataset(self) -> ds.Dataset:
        return ds.dataset(self.path, format="parquet", partitioning="hive")

    @property
    def partitions(self) -> list[int]:
        """The partition ids that hold records, ascending."""
        keys = {
            ds.get_partition_keys(f.partition_expression).get(PARTITION)
            for f in self.dataset.get_fragments()
        }
        return sorted(int(k) for k in keys if k is not None)

    def records(self, partition: int, columns: list[str] | None = None) -> pd.DataFrame:
        """Canonical records of ``partition`` (all columns but the partition's, or ``columns``)."""
        dataset = self.dataset
        wanted = columns or [c for c in dataset.schema.names if c != PARTITION]
        missing = [c for c in wanted if c not in dataset.schema.names]
        if missing:
            raise DataFormatError(
                self.path, None, missing[0], f"no such column in the {self.kind} dataset"
            )
        table = dataset.to_table(columns=wanted, filter=ds.field(PARTITION) == partition)
        return table.to_pandas()

    def bags(self, partition: int, label_rule: str = "any") -> Bags:
        """The Bags of ``partition``; target labels from the per-record ``label`` column (see
        :meth:`Bags.from_records`), else unlabelled. Bad records raise a DataFormatError that
        names the partition's folder and the row within the partition."""
        try:
            return Bags.from_records(self.kind, self.records(partition), label_rule=label_rule)
        except DataFormatError as exc:
            folder = Path(self.path) / f"{PARTITION}={partition}"
            raise DataFormatError(folder, exc.line, exc.field, exc.message, unit="row") from exc
