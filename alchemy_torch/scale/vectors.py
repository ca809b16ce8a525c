"""Feature vectors of a partitioned corpus, one partition at a time, written as Parquet.

Output layout (hive partitioning, one file per partition, one row group per memory chunk):

    OUT/partition=p/part-0.parquet    target (str), label (int8), iteration (int32; -1 for
                                      the original vector), then one float column per feature

Randomness: every partition draws with ``seed`` itself. The resampler's random streams belong
to target-hash buckets (:func:`alchemy_torch.resample.bucket_of`) and a partition holds whole
buckets, so a target's draws are those it gets when the whole corpus is drawn in memory
(:meth:`Vectors.compute`): the partitioned path gives the in-memory vectors exactly, and they
depend on the seed and the records only -- not on the order, process or machine partitions run
on, nor on memory chunking -- so a cluster gives the single-process result too. One caveat:
DNS bags built within a corpus and alone can order records with equal timestamps differently
(Bags breaks those ties with a hash of corpus-wide answer codes), which moves order-dependent
DNS features of such targets (``record_changes_ttl``) and the last bits of their sums.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sklearn.base import clone

from alchemy_torch.bags import Bags
from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.resample import Draws, Resampler
from alchemy_torch.scale.dataset import PARTITION, PartitionedRecords
from alchemy_torch.scale.synthetic import progress_bar

__all__ = ["CONTEXT", "fit_extractor", "partition_vectors", "read_vectors", "write_vectors"]

PROVENANCE = ("target", "label", "iteration")


def dns_context_records(records: pd.DataFrame) -> pd.DataFrame:
    """What :meth:`DnsFeatures.fit` learns from, shrunk: per domain its first and last record,
    the first carrying every distinct answer the domain ever got (ttls and other columns are
    placeholders the fit does not read). Same monitoring period, same IP -> domains index."""
    ts = records.groupby("query", sort=False)["ts"].agg(["min", "max"])
    answers = records[["query", "answers"]].explode("answers").dropna().drop_duplicates()
    lists = answers.groupby("query", sort=False)["answers"].agg(list)
    first = pd.DataFrame({"query": ts.index, "ts": ts["min"].to_numpy()})
    first["answers"] = lists.reindex(ts.index).to_numpy()
    first["answers"] = [a if isinstance(a, list) else [] for a in first["answers"]]
    last = pd.DataFrame({"query": ts.index, "ts": ts["max"].to_numpy(), "answers": [[]] * len(ts)})
    out = pd.concat([first, last], ignore_index=True)
    out["ttls"] = [[0] * len(a) for a in out["answers"]]
    return out.assign(client="", qtype="", rcode="")


#: kind -> (columns read, summary of one partition's records) for extractors with corpus
#: context: the summaries of the training partitions, concatenated, fit the extractor exactly
#: as their records would
CONTEXT = {"dns": (["ts", "query", "answers"], dns_context_records)}


def fit_extractor(source: PartitionedRecords, extractor, partitions=None):
    """A clone of ``extractor`` fitted on the training ``partitions`` (default: all).

    The first pass: an extractor with corpus context (dns: IP -> domains index, monitoring
    period) learns it from the :data:`CONTEXT` summaries of those partitions, read one at a
    time; one without context is returned unfitted (its ``fit`` learns nothing).
    """
    fitted = clone(extractor)
    if not extractor.corpus_context:
        return fitted
    if source.kind not in CONTEXT:
        raise NotImplementedError(f"no partition-wise context summary for {source.kind!r} yet")
    columns, summarize = CONTEXT[source.kind]
    parts = partitions if partitions is not None else source.partitions
    summary = pd.concat([summarize(source.records(p, columns)) for p in parts], ignore_index=True)
    return fitted.fit(Bags.from_records(source.kind, summary))


def partition_vectors(
    source: PartitionedRecords,
    partition: int,
    extractor,
    resampler: Resampler | None,
    seed: int,
    out,
) -> dict:
    """Write the vectors of ``partition`` (originals, then its draws chunk by chunk) to
    ``out/partition=p/part-0.parquet``; returns partition, targets, records, vectors, seconds.

    The file appears whole or not at all (written aside, then renamed), so a task that a
    scheduler reruns after a lost worker leaves no half-written partition.
    """
    start = time.perf_counter()
    bags = source.bags(partition)
    path = Path(out) / f"{PARTITION}={partition}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    names = extractor.feature_names
    schema = pa.schema(
        [("target", pa.string()), ("label", pa.int8()), ("iteration", pa.int32())]
        + [(n, pa.float64()) for n in names]
    )
    written = 0
    partial = path.with_name(f".{path.name}.{os.getpid()}")  # dot files: datasets skip them
    with pq.ParquetWriter(partial, schema) as writer:

        def write(x, owner, iteration) -> None:
            nonlocal written
            owner = owner.cpu().numpy()
            columns = {
                "target": bags.targets[owner],
                "label": bags.labels.cpu().numpy()[owner].astype(np.int8),
                "iteration": iteration.cpu().numpy().astype(np.int32),
                **dict(zip(names, x.detach().cpu().double().numpy().T)),
            }
            writer.write_table(pa.table(columns, schema=schema))
            written += len(owner)

        originals = Draws.originals(bags)
        write(extractor(bags, originals), originals.owner, originals.iteration)
        if resampler is not None:
            for x, draws in extractor.iter_draws(bags, resampler, seed):
                write(x, draws.owner, draws.iteration)
    os.replace(partial, path)
    return {
        "partition": partition,
        "targets": len(bags),
        "records": bags.num_records,
        "vectors": written,
        "seconds": time.perf_counter() - start,
    }


def write_vectors(
    source: PartitionedRecords,
    extractor,
    resampler: Resampler | None,
    seed: int,
    out,
    partitions=None,
    client=None,
    progress: bool | None = False,
) -> pd.DataFrame:
    """:func:`partition_vectors` of every partition (default: all) into ``out``; one row per
    partition. ``client``: a ``dask.distributed.Client`` runs them on its cluster, one task per
    partition (retried by Dask if a worker dies); without it they run here one by one.
    ``progress``: a bar on stderr, updated as each partition ends (records/s, time left):
    ``True`` always, ``None`` when stderr is a terminal, ``False`` never.
    """
    parts = list(partitions if partitions is not None else source.partitions)
    options = dict(resampler=resampler, seed=seed, out=out)
    total = source.dataset.count_rows(filter=ds.field(PARTITION).isin(parts))  # footers only
    with progress_bar(total, "vectors", progress) as bar:

        def done(row: dict) -> dict:
            bar.update(row["records"])
            bar.set_postfix_str(f"partition {row['partition']} in {row['seconds']:.1f} s")
            return row

        if client is None:
            rows = [done(partition_vectors(source, p, extractor, **options)) for p in parts]
        else:
            from distributed import as_completed

            # the extractor (a DNS index can be large) goes to every worker once, not once a task
            [shared] = client.scatter([extractor], broadcast=True)
            sources = [source] * len(parts)
            futures = client.map(
                partition_vectors, sources, parts, extractor=shared, **options, pure=False
            )
            ended = {
                row["partition"]: done(row) for _, row in as_completed(futures, with_results=True)
            }
            rows = [ended[p] for p in parts]
    return pd.DataFrame(rows, columns=["partition", "targets", "records", "vectors", "seconds"])


def read_vectors(path, partitions=None) -> Vectors:
    """The vectors written by :func:`write_vectors` (of ``partitions``, default all) as
    :class:`Vectors`: targets sorted by name, pseudo vectors by (target, iteration)."""
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    where = None if partitions is None else ds.field(PARTITION).isin(list(partitions))
    frame = dataset.to_table(filter=where).to_pandas()
    names = [c for c in frame.columns if c not in (*PROVENANCE, PARTITION)]
    frame = frame.sort_values(["target", "iteration"], kind="stable", ignore_index=True)
    original = frame[frame.iteration < 0]
    pseudo = frame[frame.iteration >= 0]
    targets = original.target.to_numpy(dtype=object)
    return Vectors(
        original=original[names].to_numpy(np.float64),
        labels=original.label.to_numpy(np.int64),
        targets=targets,
        pseudo=pseudo[names].to_numpy(np.float64),
        owner=np.searchsorted(targets, pseudo.target.to_numpy(dtype=object)).astype(np.int64),
        iteration=pseudo.iteration.to_numpy(np.int64),
    )
