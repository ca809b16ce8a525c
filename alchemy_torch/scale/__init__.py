"""Larger than memory and past one machine: a corpus partitioned by target on disk.

    python -m alchemy_torch.scale write-synthetic flows --records 100_000_000 --out DIR
    python -m alchemy_torch.scale vectors DIR --out VECTORS [--workers 4 | --scheduler ADDR]

    source = scale.PartitionedRecords(DIR)                    # kind, partitions, records, bags
    extractor = scale.fit_extractor(source, features.make("dns"), partitions=train)
    scale.write_vectors(source, extractor, Resampler(4), seed=0, out=OUT, client=client)
    vectors = scale.read_vectors(OUT, partitions=train)       # -> methods.Vectors

Records are hash-partitioned by target (:func:`partition_of`), so a partition holds whole
bags and is read, drawn and featurised alone: memory follows the largest partition (and the
resampler's ``chunk_records``), not the corpus. It holds whole resampling buckets too
(:func:`alchemy_torch.resample.bucket_of`), so its vectors are exactly those the whole corpus
gets in memory (:meth:`methods.Vectors.compute`, same seed). Corpus-wide context (the DNS
IP -> domains index, the monitoring period) comes from a first pass over the training
partitions that keeps only a small summary of each (:data:`CONTEXT`).

Past one machine, the one partition function runs as one task per partition on a Dask
distributed cluster (``client=``): a ``LocalCluster`` on one machine, ``dask-jobqueue`` on
Slurm/PBS/SGE, any scheduler address. Dask rather than Ray: the work is independent pure tasks
that read and write shared storage and pass nothing large between them, which is exactly
``client.map``; Dask installs from pip as pure Python with no separate runtime, a
``LocalCluster`` starts in seconds on a CI runner, ``dask-jobqueue`` covers the HPC queues
research groups have, and its nanny pins each worker to one BLAS/OpenMP thread. Ray's
strengths (a shared-memory object store, actors, autoscaling cloud clusters) go unused here,
for a larger install and a heavier runtime. Scheduling, retries and worker loss are Dask's.
"""

from alchemy_torch.scale.dataset import PartitionedRecords, partition_of, write_partitioned
from alchemy_torch.scale.synthetic import synthetic_chunks, write_synthetic
from alchemy_torch.scale.vectors import (
    CONTEXT,
    fit_extractor,
    partition_vectors,
    read_vectors,
    write_vectors,
)

__all__ = [
    "CONTEXT",
    "PartitionedRecords",
    "fit_extractor",
    "partition_of",
    "partition_vectors",
    "read_vectors",
    "synthetic_chunks",
    "write_partitioned",
    "write_synthetic",
    "write_vectors",
]
