"""Scale: partitioned datasets, partition-wise vectors (local and Dask) equal to the in-memory
path, corpus context from a first pass, and bounded memory that never changes a result."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from detection_helpers import small_bags, small_forest

from alchemy_torch import Bags, Resampler, evaluation, features, methods, resample
from alchemy_torch.datasets import synthetic
from alchemy_torch.io.errors import DataFormatError
from alchemy_torch.io.schema import TARGET
from alchemy_torch.methods import Vectors
from alchemy_torch.resample import STREAM_BUCKETS, bucket_of
from alchemy_torch.scale import (
    PartitionedRecords,
    fit_extractor,
    partition_of,
    read_vectors,
    synthetic_chunks,
    write_partitioned,
    write_vectors,
)
from alchemy_torch.scale.__main__ import main
from alchemy_torch.scale.dataset import HASH, META

pytestmark = pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip")

RESAMPLER = Resampler(option=4, iterations=3)
SEED = 7


def corpus(kind: str, n_targets: int = 40):
    """(records, labels) of ``n_targets`` synthetic targets, a fifth malicious."""
    return synthetic(
        kind, n_targets=n_targets, malicious_fraction=0.2, seed=3, n_records=60 * n_targets
    )


@pytest.fixture(scope="module", params=["flows", "http", "dns"])
def written(request, tmp_path_factory):
    """(records, labels, source) of a small corpus written in 3 partitions, in two chunks."""
    records, labels = corpus(request.param)
    out = tmp_path_factory.mktemp(request.param) / "records"
    half = len(records) // 2
    write_partitioned(request.param, [records.iloc[:half], records.iloc[half:]], out, 3)
    return records, labels, PartitionedRecords(out)


def assert_same_vectors(actual: Vectors, expected: Vectors) -> None:
    for name in ("original", "labels", "targets", "pseudo", "owner", "iteration"):
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), name)


# ---------------------------------------------------------------------- the dataset
def test_partitions_hold_whole_bags_and_every_record(written):
    records, _, source = written
    target = TARGET[source.kind]
    assert source.partition_count == 3 and source.partitions == [0, 1, 2]
    parts = [source.records(p).assign(part=p) for p in source.partitions]
    back = pd.concat(parts, ignore_index=True)
    assert len(back) == len(records)
    assert (partition_of(back[target].to_numpy(), 3) == back.part.to_numpy()).all()
    assert back.groupby(target).part.nunique().max() == 1
    key = ["ts", target, {"dns": "client", "http": "client", "flows": "src"}[source.kind]]
    mine = back.drop(columns="part").sort_values(key, ignore_index=True)
    theirs = records.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, check_column_type=False)


def test_partition_of_is_a_stable_hash_in_range_of_whole_buckets():
    names = np.array([f"10.0.{i // 256}.{i % 256}" for i in range(2000)], dtype=object)
    part = partition_of(names, 7)
    assert part.min() == 0 and part.max() == 6
    assert np.array_equal(part, partition_of(names[::-1].copy(), 7)[::-1])
    assert np.bincount(part).min() > 200  # spread over every partition
    assert not np.array_equal(part, partition_of(names, 5))
    bucket = bucket_of(names)
    assert bucket.min() >= 0 and bucket.max() < STREAM_BUCKETS
    assert pd.Series(part).groupby(bucket).nunique().max() == 1  # whole buckets
    with pytest.raises(ValueError, match="partitions must be in"):
        write_partitioned("flows", [], "unused", STREAM_BUCKETS + 1)


def test_bad_datasets_are_refused_with_the_file_named(tmp_path, written):
    records, _, source = written
    with pytest.raises(DataFormatError, match=META):
        PartitionedRecords(tmp_path)
    with pytest.raises(FileExistsError, match="not empty"):
        write_partitioned(source.kind, [records], source.path, 3)
    with pytest.raises(ValueError, match="miss the canonical columns"):
        write_partitioned(source.kind, [records.drop(columns="ts")], tmp_path / "new", 3)
    with pytest.raises(DataFormatError, match="no such column"):
        source.records(0, ["nope"])
    old_hash = "pandas.util.hash_array(utf-8 name) mod partitions"  # before resampling buckets
    for hash_ in ("md5", old_hash):
        assert hash_ != HASH
        meta = {"kind": "flows", "partitions": 3, "hash": hash_}
        (tmp_path / META).write_text(json.dumps(meta))
        with pytest.raises(DataFormatError, match="hash"):
            PartitionedRecords(tmp_path)


def test_bad_records_name_their_partition(tmp_path):
    records, _ = corpus("flows")
    bad = records.assign(pkts=records.pkts.astype(float).where(records.index != 5))
    write_partitioned("flows", [bad], tmp_path, 1)
    with pytest.raises(DataFormatError, match=r"partition=0, row 5, field 'pkts'"):
        PartitionedRecords(tmp_path).bags(0)


def test_synthetic_chunks_never_repeat_a_target(tmp_path):
    for kind, target in (("flows", "server"), ("dns", "query")):
        chunks = list(synthetic_chunks(kind, 9000, chunk_records=3000, records_per_target=150))
        assert len(chunks) == 3
        owners = [set(c[target]) for c in chunks]
        assert sum(map(len, owners)) == len(set().union(*owners))
        assert all(c.groupby(target).label.nunique().max() == 1 for c in chunks)
        assert all(set(c.label) == {0, 1} for c in chunks)


def test_command_line_writes_and_featurises(tmp_path, capsys):
    main(["write-synthetic", "http", "--records", "4000", "--out", str(tmp_path / "r")])
    main(["vectors", str(tmp_path / "r"), "--out", str(tmp_path / "v"), "--iterations", "2"])
    said = capsys.readouterr().out
    assert "wrote" in said and "peak RSS" in said and "vectors of" in said
    source = PartitionedRecords(tmp_path / "r")
    vectors = read_vectors(tmp_path / "v")
    assert source.kind == "http" and len(vectors.pseudo) == 2 * len(vectors)
    assert vectors.original.shape[1] == len(features.make("http").feature_names)


# ---------------------------------------------------------------------- same as in memory
def in_memory(records, labels, kind: str, partitions: int, parts) -> Bags:
    """Bags built in memory from the records of the targets in partitions ``parts``."""
    target = records[TARGET[kind]]
    rows = np.isin(partition_of(target.to_numpy(), partitions), parts)
    return Bags.from_records(kind, records[rows], labels[labels.index.isin(target[rows])])


def unique_ts_targets(records: pd.DataFrame, kind: str) -> np.ndarray:
    """Sorted names of the targets whose records have pairwise distinct timestamps."""
    target = records[TARGET[kind]]
    tied = records.duplicated([TARGET[kind], "ts"], keep=False)
    return np.sort(np.setdiff1d(target.unique(), target[tied].unique()))


def test_partition_vectors_equal_the_in_memory_path(written, tmp_path):
    """The partitioned path gives exactly the vectors of the whole corpus drawn in memory
    with the same seed (pseudo vectors included), and each partition those of its records
    drawn alone; DNS where a target's timestamps are distinct (see scale.vectors)."""
    records, labels, source = written
    kind, count = source.kind, source.partition_count
    extractor = features.make(kind).fit(in_memory(records, labels, kind, count, [0, 1]))
    fitted = fit_extractor(source, features.make(kind), partitions=[0, 1])
    table = write_vectors(source, fitted, RESAMPLER, SEED, tmp_path)
    assert table.targets.sum() == len(labels) and table.records.sum() == len(records)
    assert table.vectors.sum() == len(labels) * (1 + RESAMPLER.iterations)
    for p in source.partitions:
        bags = in_memory(records, labels, kind, count, [p])
        expected = Vectors.compute(extractor, bags, RESAMPLER, SEED)
        assert_same_vectors(read_vectors(tmp_path, [p]), expected)
    whole = Vectors.compute(extractor, Bags.from_records(kind, records, labels), RESAMPLER, SEED)
    on_disk = read_vectors(tmp_path)
    assert on_disk.has_pseudo and np.array_equal(on_disk.targets, whole.targets)
    if kind == "dns":  # equal timestamps may be ordered otherwise within the corpus
        keep = np.flatnonzero(np.isin(whole.targets, unique_ts_targets(records, kind)))
        assert len(keep) >= len(whole) // 4
        on_disk, whole = on_disk.take(keep), whole.take(keep)
    assert_same_vectors(on_disk, whole)


def shared_ip_dns(n_records: int = 600, seed: int = 0) -> pd.DataFrame:
    """DNS records of 24 domains answered from one pool of 8 addresses (so the IP -> domains
    index depends on which domains it saw) over two days."""
    rng = np.random.default_rng(seed)
    n_answers = rng.integers(0, 3, n_records)
    answers = [[f"1.2.3.{i}" for i in rng.integers(0, 8, k)] for k in n_answers]
    return pd.DataFrame(
        {
            "ts": 1.6e9 + rng.random(n_records) * 2 * 86400,
            "client": "10.1.1.1",
            "query": rng.choice([f"d{i}.example.com" for i in range(24)], n_records),
            "qtype": "A",
            "rcode": "NOERROR",
            "answers": answers,
            "ttls": [[300] * len(a) for a in answers],
        }
    )


def test_context_pass_equals_fitting_on_the_training_records(tmp_path):
    write_partitioned("dns", [shared_ip_dns()], tmp_path, 3)
    source = PartitionedRecords(tmp_path)
    bags = source.bags(2)
    seen = []
    for parts in ([0], [0, 1, 2]):
        records = pd.concat([source.records(p) for p in parts])
        expected = features.make("dns").fit(Bags.from_records("dns", records))(bags).numpy()
        seen.append(fit_extractor(source, features.make("dns"), parts)(bags).numpy())
        np.testing.assert_array_equal(seen[-1], expected)
    assert not np.array_equal(*seen)  # the index is the training partitions'


def test_only_corpus_context_reads_partitions(written, monkeypatch):
    """The context pass reads no partition for an extractor without corpus context (flows,
    http) and each training partition once for one with it (dns)."""
    _, _, source = written
    reads = []
    read = PartitionedRecords.records

    def counted(self, partition, columns=None):
        reads.append(partition)
        return read(self, partition, columns)

    monkeypatch.setattr(PartitionedRecords, "records", counted)
    extractor = features.make(source.kind)
    assert fit_extractor(source, extractor, [0, 2]) is not extractor
    assert reads == ([0, 2] if source.kind == "dns" else [])


# ---------------------------------------------------------------------- bounded memory
@pytest.fixture
def small_blocks(monkeypatch):
    """Resampler work units of ~64 records, so that a tiny budget cuts the draws in many
    chunks (the default unit, ~4M records, holds all of a small corpus)."""
    monkeypatch.setattr(resample, "BLOCK_RECORDS", 64)


def test_tiny_budget_same_partition_vectors(written, tmp_path, small_blocks):
    _, _, source = written
    tiny = Resampler(option=4, iterations=3, chunk_records=50)
    assert len(list(tiny.iter_draws(source.bags(0), 1))) > 3
    for name, resampler, budget in (("tiny", tiny, 50), ("unlimited", RESAMPLER, 10**12)):
        extractor = fit_extractor(source, features.make(source.kind, chunk_records=budget))
        write_vectors(source, extractor, resampler, SEED, tmp_path / name)
    assert_same_vectors(read_vectors(tmp_path / "tiny"), read_vectors(tmp_path / "unlimited"))


def test_tiny_budget_same_pseudo_vectors_and_metrics(small_blocks):
    bags = small_bags("flows")
    unlimited = Resampler(option=4, iterations=3, chunk_records=10**12)
    tiny = Resampler(option=4, iterations=3, chunk_records=50)
    assert len(list(tiny.iter_draws(bags, 0))) > 10
    budgets = [
        (tiny, features.make("flows", chunk_records=50)),
        (unlimited, features.make("flows")),
    ]
    assert_same_vectors(*(Vectors.compute(e, bags, r, 0) for r, e in budgets))
    results = [
        evaluation.cross_validate(
            bags,
            extractor,
            methods.make("alchemy4", resampler=resampler, p_range=(0.0, 0.99)),
            small_forest(),
            folds=3,
            seed=1,
        )
        for resampler, extractor in budgets
    ]
    metrics = ["roc_auc", "pr_auc", "tpr_at_1pct_fpr", "train_pseudo_kept", "train_filtered"]
    pd.testing.assert_frame_equal(results[0][metrics], results[1][metrics])
    pd.testing.assert_frame_equal(results[0].attrs["scores"], results[1].attrs["scores"])


# ---------------------------------------------------------------------- past one machine
def dask_result(source, extractor, out, **cluster_options) -> pd.DataFrame:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, **cluster_options
    )
    with cluster, distributed.Client(cluster) as client:
        return write_vectors(source, extractor, RESAMPLER, SEED, out, client=client)


@pytest.mark.parametrize(
    "processes", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["threads", "processes"]
)
def test_dask_cluster_gives_the_single_process_result(written, tmp_path, processes):
    _, _, source = written
    extractor = fit_extractor(source, features.make(source.kind))
    write_vectors(source, extractor, RESAMPLER, SEED, tmp_path / "here")
    table = dask_result(source, extractor, tmp_path / "there", processes=processes)
    assert sorted(table.partition) == source.partitions
    assert_same_vectors(read_vectors(tmp_path / "there"), read_vectors(tmp_path / "here"))


# ---------------------------------------------------------------------- devices
@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["flows", "http", "dns"])
def test_cuda_agrees_with_cpu_features_and_subset_sizes(kind):
    bags, on_cuda = small_bags(kind), small_bags(kind).to("cuda")
    cpu, cuda = features.make(kind).fit(bags), features.make(kind).fit(on_cuda)
    torch.testing.assert_close(cuda(on_cuda).cpu(), cpu(bags), rtol=1e-6, atol=1e-9)
    draws = RESAMPLER.draw(bags, SEED)
    assert torch.equal(RESAMPLER.draw(on_cuda, SEED).lengths.cpu(), draws.lengths)
    torch.testing.assert_close(
        cuda(on_cuda, draws.to("cuda")).cpu(), cpu(bags, draws), rtol=1e-6, atol=1e-9
    )
