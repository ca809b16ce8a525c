"""Progress of the long scale commands: a bar per chunk written and per partition featurised,
with records/s and the time left; quiet with ``--quiet`` and where stderr is no terminal."""

from __future__ import annotations

import re

from alchemy_torch import Resampler, features
from alchemy_torch.scale import PartitionedRecords, fit_extractor, write_synthetic, write_vectors
from alchemy_torch.scale.__main__ import main


def test_bars_count_every_record_per_chunk_and_partition(tmp_path, capsys):
    n = write_synthetic(
        "flows", 6000, tmp_path / "r", partitions=2, chunk_records=2000, progress=True
    )
    source = PartitionedRecords(tmp_path / "r")
    extractor = fit_extractor(source, features.make("flows"))
    table = write_vectors(
        source, extractor, Resampler(4, iterations=2), 0, tmp_path / "v", progress=True
    )
    lines = re.split(r"[\r\n]+", capsys.readouterr().err)
    written = [line for line in lines if line.startswith("write:")]
    done = [line for line in lines if line.startswith("vectors:") and "partition" in line]
    assert (
        len(written) >= 3 and "records/s" in written[-1] and written[-1].startswith("write: 100%")
    )
    assert f"{n / 1000:.2f}k/{n / 1000:.2f}k" in written[-1]  # the records written, all
    assert list(dict.fromkeys(re.search(r"partition (\d+)", line)[1] for line in done)) == [
        "0",
        "1",
    ]
    assert done[-1].startswith("vectors: 100%") and table.records.sum() == n


def test_quiet_and_not_a_terminal_print_no_bar(tmp_path, capsys):
    main(["write-synthetic", "flows", "--records", "3000", "--out", str(tmp_path / "r")])
    main(["vectors", str(tmp_path / "r"), "--out", str(tmp_path / "v"), "--quiet"])
    said = capsys.readouterr()
    assert "wrote" in said.out and "vectors of" in said.out and said.err == ""
