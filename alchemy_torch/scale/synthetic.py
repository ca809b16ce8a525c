"""A synthetic corpus of any size, generated and written chunk by chunk (bounded memory)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from alchemy_torch.datasets.synthetic import ipv4, synthetic
from alchemy_torch.resample import STREAM_BUCKETS, derive_seed
from alchemy_torch.scale.dataset import write_partitioned

__all__ = [
    "PARTITION_RECORDS",
    "RECORDS_PER_TARGET",
    "WRITE_CHUNK_RECORDS",
    "progress_bar",
    "synthetic_chunks",
    "write_synthetic",
]

#: records per target of the slides' sets (METHOD.md §2.2): flows 15M / 3,000 servers, HTTP
#: 1.7M / 2,364 servers, DNS 3.3M / 5,163 domains
RECORDS_PER_TARGET = {"flows": 5000, "http": 725, "dns": 648}
#: records generated (and held in memory) at a time
WRITE_CHUNK_RECORDS = 1_000_000
#: records per partition when the writer is given no partition count
PARTITION_RECORDS = 2_000_000
#: first address of the servers of the renamed chunks (above the clients' 10.0.1.0/..)
_FIRST_SERVER = 0x0B000000


def synthetic_chunks(
    kind: str,
    records: int,
    chunk_records: int = WRITE_CHUNK_RECORDS,
    records_per_target: int | None = None,
    seed: int = 0,
    **options,
) -> Iterator[pd.DataFrame]:
    """About ``records`` labelled synthetic records (:func:`datasets.synthetic` with
    ``options``) in chunks of about ``chunk_records`` whole bags.

    Chunk c is generated with seed ``derive_seed(seed, c)``; its targets are renamed so names
    never repeat across chunks: servers (flows, http) get the addresses 11.0.0.0 + 97 t for the
    corpus-wide target number t, domains (dns) the label ``c{c}.`` in front (the registered
    domain, and so the name features, stay).
    """
    if records < 1 or chunk_records < 1:
        raise ValueError(f"records and chunk_records must be >= 1, got {records}, {chunk_records}")
    per_target = records_per_target or RECORDS_PER_TARGET[kind]
    first_target = 0
    for chunk, start in enumerate(range(0, records, chunk_records)):
        size = min(chunk_records, records - start)
        n_targets = max(2, round(size / per_target))
        frame, labels = synthetic(
            kind, n_targets=n_targets, n_records=size, seed=derive_seed(seed, chunk), **options
        )
        old = labels.index.to_numpy(dtype=object)
        if kind == "dns":
            new = np.char.add(f"c{chunk}.", old.astype(str)).astype(object)
            columns = ["query"]
        else:
            number = first_target + np.arange(len(old))
            new = ipv4(_FIRST_SERVER + 97 * number).to_numpy(zero_copy_only=False)
            columns = ["server", "src", "dst"] if kind == "flows" else ["server"]
        for column in columns:
            code = pd.Index(old).get_indexer(frame[column])
            frame[column] = np.where(code >= 0, new[code], frame[column].to_numpy(dtype=object))
        first_target += len(old)
        yield frame


def write_synthetic(
    kind: str,
    records: int,
    out,
    partitions: int | None = None,
    chunk_records: int = WRITE_CHUNK_RECORDS,
    seed: int = 0,
    progress: bool | None = False,
    **options,
) -> int:
    """Write :func:`synthetic_chunks` as a dataset partitioned by target (default: one
    partition per ~:data:`PARTITION_RECORDS`, at most one per resampling bucket); returns the
    records written.

    ``progress``: a progress bar on stderr, updated per chunk (records/s, time left): ``True``
    always, ``None`` when stderr is a terminal, ``False`` never.
    """
    if partitions is None:
        partitions = min(STREAM_BUCKETS, max(1, round(records / PARTITION_RECORDS)))
    chunks = synthetic_chunks(kind, records, chunk_records, seed=seed, **options)
    with progress_bar(records, "write", progress) as bar:

        def counted() -> Iterator[pd.DataFrame]:
            for chunk in chunks:
                yield chunk
                bar.update(len(chunk))  # once the writer asks for the next one

        written = write_partitioned(kind, counted(), out, partitions)
        bar.total = written  # "about" ``records``: end at 100 %
        return written


def progress_bar(records: int, what: str, progress: bool | None) -> tqdm:
    """A tqdm bar counting ``records`` (see ``progress`` in :func:`write_synthetic`)."""
    return tqdm(
        total=records,
        desc=what,
        unit=" records",
        unit_scale=True,
        smoothing=0.1,
        disable=None if progress is None else not progress,
    )
