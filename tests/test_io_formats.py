"""Zeek variants, read value by value from fixtures (tests/fixtures/io): the scope separator
'_', renamed fields, conn.log without packet counts."""

import json
from pathlib import Path

import pandas as pd
import pytest

from alchemy_torch import io
from alchemy_torch.io import DataFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "io"


# -- Zeek variants ------------------------------------------------------------------------------
CONN = FIXTURES / "zeek-conn.log"


def test_zeek_scope_separator_tsv_json_csv(tmp_path):
    reference = io.read_flows(CONN)
    pd.testing.assert_frame_equal(io.read_flows(FIXTURES / "zeek-conn-scope-sep.log"), reference)
    fields = CONN.read_text().splitlines()[6].split("\t")[1:]
    rows = [dict(zip(fields, r.split("\t"))) for r in CONN.read_text().splitlines()[8:-1]]
    scoped = [{k.replace("id.", "id_"): v for k, v in r.items() if v != "-"} for r in rows]
    (tmp_path / "conn.json").write_text("\n".join(json.dumps(r) for r in scoped) + "\n")
    from_json = io.read_flows(tmp_path / "conn.json")
    assert from_json.attrs["format"] == "zeek-json"
    pd.testing.assert_frame_equal(from_json, reference)
    pd.DataFrame(rows).rename(columns=lambda c: c.replace("id.", "id_")).to_csv(
        tmp_path / "conn.csv", index=False
    )
    assert io.detect_format(tmp_path / "conn.csv") == "zeek-csv"
    pd.testing.assert_frame_equal(io.read_flows(tmp_path / "conn.csv"), reference)


def test_zeek_field_name_map(tmp_path):
    renames = {"id.orig_h": "src_host", "id.resp_h": "dst_host", "orig_pkts": "sent_packets"}
    text = CONN.read_text().splitlines()
    for old, new in renames.items():
        text[6] = text[6].replace(f"\t{old}\t", f"\t{new}\t")
    path = tmp_path / "renamed.log"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataFormatError, match="missing field") as err:
        io.read_flows(path)
    assert err.value.field == "id.orig_h"
    df = io.read_flows(path, columns=renames)
    pd.testing.assert_frame_equal(df, io.read_flows(CONN))
    with pytest.raises(DataFormatError, match="missing field") as err:
        io.read_flows(path, columns={**renames, "resp_pkts": "recv_packets"})
    assert err.value.field == "recv_packets"
    both = tmp_path / "both.log"  # id.orig_h and id_orig_h: the exact name wins
    both.write_text(CONN.read_text().replace("\tuid\t", "\tid_orig_h\t", 1))
    pd.testing.assert_frame_equal(io.read_flows(both), io.read_flows(CONN))


def test_zeek_conn_without_packet_counts():
    path = FIXTURES / "zeek-conn-no-packets.log"
    with pytest.raises(DataFormatError, match="no packet counts.*estimate_packets=True") as err:
        io.read_flows(path)
    assert (err.value.line, err.value.field) == (9, "orig_pkts")
    assert "unset" in err.value.message
    with pytest.warns(UserWarning, match="skipped 6 malformed"):
        assert len(io.read_flows(path, lenient=True)) == 0
    df = io.read_flows(path, estimate_packets=True)
    reference = io.read_flows(CONN)
    assert df.src.tolist() == reference.src.tolist() and df["flags"].equals(reference["flags"])
    # packets: max(history letters of the direction, ceil(payload bytes / 1460))
    assert df.pkts.tolist() == [5, 5, 1, 1, 1, 1, 1, 1, 4, 4]
    assert df.bytes.tolist() == [87, 147, 0, 48, 64, 0, 36, 36, 1460, 52]  # payload bytes
    assert df.attrs["filled"] == {"pkts": 10} and reference.attrs["filled"] == {}


def test_argus_estimated_packets_are_reported():
    df = io.read_flows(FIXTURES / "argus.binetflow")
    assert df.attrs["filled"] == {"pkts": len(df)}
