"""Bags.from_records: layout, labels, subsetting, devices and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import random_dns, random_flows

from alchemy_torch import Bags, io


def test_records_are_grouped_and_time_sorted(flows_records):
    bags = Bags.from_records("flows", flows_records)
    assert len(bags) == flows_records["server"].nunique()
    assert list(bags.targets) == sorted(flows_records["server"].unique())
    assert bags.offsets[0] == 0 and bags.offsets[-1] == len(flows_records)
    assert (
        bags.lengths.tolist()
        == flows_records.groupby("server").size().reindex(bags.targets).tolist()
    )
    ts = bags.columns["ts"]
    assert ts.dtype == torch.float64
    for b in range(len(bags)):
        seg = ts[bags.offsets[b] : bags.offsets[b + 1]]
        assert bool((seg.diff() >= 0).all())
        assert set(bags.decode("server")[bags.offsets[b] : bags.offsets[b + 1]]) == {
            bags.targets[b]
        }


def test_columns_round_trip_per_target(flows_records):
    bags = Bags.from_records("flows", flows_records)
    got = pd.DataFrame(
        {
            "server": bags.decode("server"),
            "src": bags.decode("src"),
            "pkts": bags.columns["pkts"].numpy(),
            "ts": bags.columns["ts"].numpy(),
        }
    )
    key = ["server", "ts", "src", "pkts"]
    want = flows_records[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got[key].sort_values(key).reset_index(drop=True), want, check_dtype=False
    )


def test_row_order_of_the_input_does_not_matter(flows_records):
    a = Bags.from_records("flows", flows_records)
    b = Bags.from_records("flows", flows_records.sample(frac=1.0, random_state=3))
    for name in a.columns:
        assert torch.equal(a.columns[name], b.columns[name]) or (
            a.columns[name].is_floating_point()
            and torch.equal(a.columns[name].nan_to_num(), b.columns[name].nan_to_num())
        )


def test_shared_vocabulary_makes_direction_a_code_comparison(flows_records):
    bags = Bags.from_records("flows", flows_records)
    inbound = (bags.columns["dst"] == bags.columns["server"]).numpy()
    assert np.array_equal(inbound, bags.decode("dst") == bags.decode("server"))


@pytest.mark.parametrize(
    "rule,expected",
    [("any", [1, 1, 0]), ("majority", [1, 0, 0]), ("all", [1, 0, 0]), ("ctu13", [1, 1, 0])],
)
def test_label_rules_from_record_labels(rule, expected):
    df = random_flows(3, 9).assign(
        server=["a"] * 3 + ["b"] * 3 + ["c"] * 3,
        label=[1, 1, 1, 0, 0, 1, 0, 0, -1],
        detailed_label=["From-Botnet-V1-TCP-CC1"]
        + [""] * 4
        + ["From-Botnet-V1-TCP-CC2"]
        + [""] * 3,
    )
    assert Bags.from_records("flows", df, label_rule=rule).labels.tolist() == expected


@pytest.mark.parametrize("rule", ["majority", "ctu13"])
def test_targets_a_rule_leaves_unknown_are_an_error_that_says_what_to_do(rule):
    df = random_flows(2, 4).assign(
        server=["a", "a", "b", "b"], label=[1, 0, 0, 0], detailed_label="From-Botnet-SPAM"
    )  # majority: 'a' ties; ctu13: 'a' has botnet flows but no C&C
    with pytest.raises(ValueError, match="1 targets have no label.*from_files"):
        Bags.from_records("flows", df, label_rule=rule)


def test_labels_series_may_mark_targets_unlabelled(flows_records):
    targets = sorted(flows_records["server"].unique())
    labels = pd.Series([-1] + [0] * (len(targets) - 1), index=targets)
    assert Bags.from_records("flows", flows_records, labels).labels.tolist() == labels.tolist()


def test_labels_series_overrides_record_labels(flows_records):
    targets = sorted(flows_records["server"].unique())
    labels = pd.Series([1] + [0] * (len(targets) - 1), index=targets)
    bags = Bags.from_records("flows", flows_records, labels)
    assert bags.labels.tolist() == labels.tolist()


def test_unlabelled_records_give_minus_one(flows_records):
    bags = Bags.from_records("flows", flows_records.drop(columns="label"))
    assert set(bags.labels.tolist()) == {-1}


def test_target_override_groups_by_another_column(flows_records):
    bags = Bags.from_records("flows", flows_records.drop(columns="label"), target="src")
    assert len(bags) == flows_records["src"].nunique()


def test_subsetting_keeps_bags_and_order(flows_records):
    bags = Bags.from_records("flows", flows_records)
    sub = bags[[3, 0]]
    assert list(sub.targets) == [bags.targets[3], bags.targets[0]]
    assert sub.lengths.tolist() == [int(bags.lengths[3]), int(bags.lengths[0])]
    assert torch.equal(
        sub.columns["ts"][: int(bags.lengths[3])],
        bags.columns["ts"][bags.offsets[3] : bags.offsets[4]],
    )
    assert sub.labels.tolist() == [int(bags.labels[3]), int(bags.labels[0])]
    mask = bags.labels == 1
    assert len(bags[mask]) == int(mask.sum())
    assert len(bags[1:3]) == 2


def test_dns_answers_are_flattened_with_their_own_offsets():
    df = random_dns()
    bags = Bags.from_records("dns", df, labels=pd.Series(0, index=df["query"].unique()))
    assert int(bags.ragged_offsets[-1]) == sum(map(len, df["answers"]))
    sub = bags[[1]]
    rows = slice(int(bags.offsets[1]), int(bags.offsets[2]))
    assert int(sub.ragged_offsets[-1]) == int(
        bags.ragged_offsets[rows.stop] - bags.ragged_offsets[rows.start]
    )
    want = sorted(t for lst in df.loc[df["query"] == bags.targets[1], "ttls"] for t in lst)
    assert sorted(sub.ragged["ttls"].tolist()) == want


def test_to_device_moves_every_tensor(flows_records, device):
    bags = Bags.from_records("flows", flows_records).to(device)
    assert all(t.device.type == device.type for t in bags.columns.values())
    assert bags.offsets.device.type == device.type and bags.labels.device.type == device.type


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda df: df.drop(columns=["pkts"]), "miss columns"),
        (lambda df: df.iloc[:0], "empty"),
        (lambda df: df.assign(server=[None] + list(df["server"][1:])), "NaN or empty target"),
        (lambda df: df.assign(server=[""] + list(df["server"][1:])), "NaN or empty target"),
        (lambda df: df.assign(label=[2] + list(df["label"][1:])), "label"),
    ],
)
def test_bad_records_raise_clear_errors(flows_records, mutate, message):
    with pytest.raises(ValueError, match=message):
        Bags.from_records("flows", mutate(flows_records))


@pytest.mark.parametrize(
    "column,value,message",
    [
        ("pkts", "x", "not a number"),
        ("pkts", -3, "below 0"),
        ("bytes", -1, "below 0"),
        ("pkts", 2.5, "not an integer"),
        ("pkts", np.inf, "not an integer"),
        ("dport", 70000, "above 65535"),
        ("duration", np.inf, "infinite"),
        ("duration", "soon", "not a number"),
        ("ts", np.inf, "unparseable timestamp"),
        ("ts", np.nan, "missing value"),
    ],
)
def test_values_the_readers_reject_are_rejected_naming_row_and_field(
    flows_records, column, value, message
):
    """The same checks as the readers (io.fields.Fields with the schema's ranges)."""
    df = flows_records.set_index(flows_records.index + 100)
    df[column] = df[column].astype(object)
    df.loc[107, column] = value
    df[column] = df[column].infer_objects()
    with pytest.raises(io.DataFormatError, match=f"row 107, field '{column}': {message}"):
        Bags.from_records("flows", df)


def test_datetime_timestamps_become_epoch_seconds(flows_records):
    df = flows_records.assign(ts=pd.to_datetime(flows_records["ts"], unit="s", utc=True))
    want = Bags.from_records("flows", flows_records).columns["ts"]
    assert torch.allclose(Bags.from_records("flows", df).columns["ts"], want, rtol=0, atol=1e-5)


def test_bad_labels_raise_clear_errors(flows_records):
    targets = sorted(flows_records["server"].unique())
    with pytest.raises(ValueError, match="absent from the records"):
        Bags.from_records("flows", flows_records, pd.Series(0, index=targets + ["nope"]))
    with pytest.raises(ValueError, match="must be 1 .malicious., 0 .benign. or -1"):
        Bags.from_records("flows", flows_records, pd.Series(2, index=targets))
    with pytest.raises(ValueError, match="have no label"):
        Bags.from_records("flows", flows_records, pd.Series(0, index=targets[1:]))
    with pytest.raises(ValueError, match="kind"):
        Bags.from_records("netflow", flows_records)


def test_bad_dns_lists_raise_clear_errors():
    df = random_dns(20)
    labels = pd.Series(0, index=df["query"].unique())
    with pytest.raises(ValueError, match="must hold lists"):
        Bags.from_records("dns", df.assign(answers=["1.2.3.4"] * len(df)), labels)
    short = df["ttls"].copy()
    short.iloc[int(np.flatnonzero(df["answers"].map(len) > 0)[0])] = []
    with pytest.raises(ValueError, match="differ in length"):
        Bags.from_records("dns", df.assign(ttls=short), labels)
    with pytest.raises(ValueError, match="non-numeric or infinite"):
        Bags.from_records("dns", df.assign(ttls=[["x"] * len(a) for a in df["answers"]]), labels)
    with pytest.raises(ValueError, match="non-numeric or infinite"):
        Bags.from_records("dns", df.assign(ttls=[[np.inf] * len(a) for a in df["answers"]]), labels)


def test_dns_row_order_does_not_matter_even_with_ties():
    df = random_dns(60)
    df["ts"] = 1.6e9  # every record ties on time: lists break the tie by content
    labels = pd.Series(0, index=df["query"].unique())
    a = Bags.from_records("dns", df, labels)
    b = Bags.from_records("dns", df.sample(frac=1.0, random_state=1), labels)
    assert torch.equal(a.ragged_offsets, b.ragged_offsets)
    assert all(torch.equal(a.ragged[k], b.ragged[k]) for k in a.ragged)
