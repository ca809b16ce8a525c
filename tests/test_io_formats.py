"""Sensor and benchmark formats, read value by value from fixtures written from each format's
documentation (tests/fixtures/io): Suricata EVE (Suricata 6, 7, 8), CICFlowMeter (CIC-IDS2017,
CSE-CIC-IDS2018), UNSW-NB15 and Zeek variants (scope separator, renamed fields, no packets)."""

import gzip
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alchemy_torch import features, io
from alchemy_torch.io import DataFormatError

FIXTURES = Path(__file__).parent / "fixtures" / "io"
EVE = FIXTURES / "eve.json"


def utc(text: str) -> float:
    """Seconds since the epoch of an ISO time (naive: UTC)."""
    t = pd.Timestamp(text)
    return (t if t.tzinfo else t.tz_localize("UTC")).timestamp()


def check_schema(df, kind):
    assert list(df.columns[: len(io.COLUMNS[kind])]) == list(io.COLUMNS[kind])
    for col in ("sport", "dport", "pkts", "bytes", "bytes_out", "bytes_in", "status"):
        if col in df.columns:
            assert df[col].dtype == np.int64, col
    assert df["ts"].dtype == np.float64


# -- Suricata EVE -------------------------------------------------------------------------------
def test_eve_flows():
    df = io.read_flows(EVE)
    check_schema(df, "flows")
    assert io.detect_format(EVE) == "eve" and df.attrs["format"] == "eve"
    assert df.src.tolist() == [
        "10.0.0.5",
        "93.184.216.34",
        "10.0.0.5",
        "8.8.8.8",
        "10.0.0.7",
        "10.0.0.1",
        "203.0.113.9",
        "2001:db8::5",
        "2001:db8::1",
    ]
    assert df.server.tolist() == [
        "93.184.216.34",
        "93.184.216.34",
        "8.8.8.8",
        "8.8.8.8",
        "10.0.0.1",
        "10.0.0.1",
        "10.0.0.5",
        "2001:db8::1",
        "2001:db8::1",
    ]
    assert df.pkts.tolist() == [12, 10, 1, 1, 3, 3, 1, 2, 1]
    assert df.bytes.tolist() == [1500, 9000, 74, 120, 294, 294, 60, 300, 150]
    assert df.sport.tolist() == [51000, 443, 53123, 53, 0, 0, 40000, 546, 547]
    assert df.proto.tolist() == ["tcp"] * 2 + ["udp"] * 2 + ["icmp"] * 2 + ["tcp"] + ["udp"] * 2
    assert df["flags"].tolist() == ["APSF", "APSF", "", "", "", "", "S", "", ""]  # 0x1b, 0x02
    assert df.ts.tolist()[::2][:3] == [
        utc("2024-03-01T10:00:00.25+00:00"),
        utc("2024-03-01T10:01:00+00:00"),
        utc("2024-03-01T10:02:00+00:00"),  # 05:02 at -0500
    ]
    assert df.duration.round(6).tolist() == [4.5, 4.5, 0.02, 0.02, 2.0, 2.0, 0.0, 0.5, 0.5]
    assert df.attrs["dropped_halves"] == 1  # the unanswered SYN
    assert df.attrs["ignored"] == {
        "event_type http": 3,
        "event_type alert": 2,
        "event_type fileinfo": 1,
        "event_type stats": 1,
        "event_type tls": 1,
        "event_type anomaly": 1,
        "event_type dns": 17,
    }


def test_eve_http():
    df = io.read_http(EVE)
    check_schema(df, "http")
    assert df.client.tolist() == ["10.0.0.5", "10.0.0.5", "10.0.0.6"]
    assert df.server.tolist() == ["93.184.216.34", "198.51.100.7", "203.0.113.80"]
    assert df.host.tolist() == ["www.example.com", "update.example.net", "cdn.example.com"]
    assert df.path.tolist() == ["/index.html", "/check", "/lib.js"]
    assert df["query"].tolist() == ["a=1&b=2", "", ""]
    assert df.method.tolist() == ["GET", "POST", ""]
    assert df.user_agent.tolist() == ["Mozilla/5.0 (X11; Linux x86_64)", "Updater/1.0", "curl/8.0"]
    assert df.referrer.tolist() == ["http://www.example.org/", "", ""]
    assert df.status.tolist() == [200, 404, 0] and df.bytes_in.tolist() == [1256, 0, 0]
    assert df.bytes_out.tolist() == [0, 0, 0] and df.attrs["filled"] == {"bytes_out": 3}
    assert io.not_logged("http")["bytes_out"] == ("eve", "squid")
    assert df.ts.iloc[0] == utc("2024-03-01T10:00:01.5+00:00")
    assert (
        df.attrs["ignored"]["event_type flow"] == 5 and "event_type http" not in df.attrs["ignored"]
    )


def test_feature_tables_name_the_formats_that_cannot_give_a_feature():
    """EVE and Squid never log the request size, Squid no referrer: describe() says so."""
    unknown = features.describe("http").set_index("feature")["unknown_from"]
    assert {n for n, formats in unknown.items() if formats} == {
        f"req_{stat}_{field}"
        for stat in ("mean", "std", "min", "max", "median")
        for field in ("bytes_out", "referrer_slashes")
    }
    assert unknown["req_mean_bytes_out"] == "eve, squid"
    assert unknown["req_max_referrer_slashes"] == "squid"
    bartos = features.describe("http", aggregation="bartos").set_index("feature")
    assert bartos.loc["bartos_simhist7_bytes_out", "unknown_from"] == "eve, squid"
    for kind in ("flows", "dns"):
        assert (features.describe(kind)["unknown_from"] == "").all()


def test_eve_dns_versions_1_2_3():
    df = io.read_dns(EVE)
    check_schema(df, "dns")
    expected = [  # client, query, qtype, rcode, answers, ttls
        # Suricata 6, version 1: a query and an event per answer
        ("192.168.1.10", "www.suricata-ids.org", "A", "NOERROR",
         ["suricata-ids.org", "192.0.78.24", "192.0.78.25"], [3324, 10, 10]),
        ("192.168.1.10", "nx.example", "A", "NXDOMAIN", [], []),
        # Suricata 7, version 2: detailed (+ grouped), grouped only, SOA, a query never answered
        ("10.1.1.2", "twitter.com", "A", "NOERROR", ["199.16.156.6", "199.16.156.70"], [8, 8]),
        ("10.1.1.2", "www.suricata-ids.org", "A", "NOERROR",
         ["192.0.78.24", "192.0.78.25", "suricata-ids.org"], [-1, -1, -1]),
        ("10.1.1.2", "example.com", "SOA", "NOERROR", ["ns.icann.org"], [3600]),
        ("10.1.1.2", "slow.example.net", "AAAA", "", [], []),
        # Suricata 8, version 3: the response's src_ip is the server
        ("172.16.0.9", "www.suricata.io", "A", "NOERROR",
         ["suricata.io", "35.212.0.44"], [3597, 597]),
        ("172.16.0.9", "ipv6.example.org", "AAAA", "", [], []),
        ("172.16.0.9", "_sip._tcp.example.com", "SRV", "NOERROR", ["sip.example.com"], [300]),
    ]  # fmt: skip
    got = list(zip(df.client, df["query"], df.qtype, df.rcode, df.answers, df.ttls))
    assert got == expected
    assert df.ts.tolist()[:2] == [
        utc("2021-06-01T12:00:00.14+00:00"),
        utc("2021-06-01T12:00:01.05+00:00"),
    ]
    assert df.ts.iloc[2] == utc("2023-05-02T08:00:00.03+02:00")
    assert df.attrs["filled"] == {"ttls": 1}
    ignored = df.attrs["ignored"]
    assert ignored["dns request merged into its response"] == 6
    assert ignored["dns answer event merged into its response"] == 2
    assert ignored["event_type alert"] == 2 and ignored["event_type flow"] == 5


def test_eve_only_other_events(tmp_path):
    path = tmp_path / "eve.json"
    lines = [line for line in EVE.read_text().splitlines() if '"event_type":"dns"' not in line]
    path.write_text("\n".join(lines) + "\n")
    df = io.read_dns(path)
    assert len(df) == 0 and list(df.columns) == list(io.COLUMNS["dns"])
    assert sum(df.attrs["ignored"].values()) == len(lines)


BAD_EVE = [  # (a line inserted as line 2, or FLOW:field:value in line 1; field; message)
    ("not json at all", None, "not JSON"),
    ('{"timestamp": "2024-03-01T10:00:05+0000", "event_type": "flow"', None, "not JSON"),
    ("[1, 2, 3]", None, "not a JSON object"),
    ('{"timestamp": "2024-03-01T10:00:05+0000", "src_ip": "10.0.0.5"}', "event_type", "missing"),
    ('{"event_type": 7}', "event_type", "expected string"),
    ('FLOW:src_port:"51000"', "src_port", "expected int64"),
    ("FLOW:flow:[1]", "flow", "expected a JSON object"),
    ("FLOW:pkts_toserver:-3", "flow.pkts_toserver", "below 0"),
    ('FLOW:start:"yesterday"', "flow.start", "unparseable timestamp"),
]


@pytest.mark.parametrize("line, field, message", BAD_EVE, ids=range(len(BAD_EVE)))
def test_eve_bad_lines(tmp_path, line, field, message):
    lines = EVE.read_text().splitlines()
    if line.startswith("FLOW:"):  # the first line, a flow event, with one field changed
        _, key, value = line.split(":", 2)
        lines[0] = lines[0].replace(f'"{key}":', f'"{key}":{value},"was_{key}":', 1)
        at, lost = 1, 2
    else:
        lines.insert(1, line)
        at, lost = 2, 0
    path = tmp_path / "eve.json"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as err:
        io.read_flows(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), at, field)
    assert message in err.value.message
    with pytest.warns(UserWarning, match=f"skipped 1 malformed line.*line {at}"):
        df = io.read_flows(path, lenient=True)
    assert df.attrs["skipped_lines"] == 1 and len(df) == len(io.read_flows(EVE)) - lost


def test_eve_takes_no_column_map():
    with pytest.raises(ValueError, match="columns= does not apply to EVE"):
        io.read_flows(EVE, columns={"src": "src_ip"})


def test_eve_gzip_and_blank_lines(tmp_path):
    path = tmp_path / "eve.json.gz"
    path.write_bytes(gzip.compress(EVE.read_bytes().replace(b"\n", b"\n\n", 3)))
    pd.testing.assert_frame_equal(io.read_dns(path), io.read_dns(EVE))


# -- Squid --------------------------------------------------------------------------------------
SQUID = FIXTURES / "squid-access.log"


def test_squid_native_access_log():
    """Every field of the documented ``logformat squid`` line, read value by value."""
    lines = [line.split() for line in SQUID.read_text().splitlines()]
    assert {len(fields) for fields in lines} == {10}
    assert io.detect_format(SQUID) == "squid"
    df = io.read_http(SQUID)
    check_schema(df, "http")
    assert df.ts.tolist() == [float(f[0]) for f in lines]
    assert df.client.tolist() == [f[2] for f in lines]
    assert df.status.tolist() == [200, 200, 200, 400, 200, 304, 403, 200]
    assert df.bytes_in.tolist() == [int(f[4]) for f in lines]
    assert df.method.tolist() == [f[5] for f in lines]
    assert df.host.tolist() == [
        "liveupdate.symantecliveupdate.com",
        "rcv-srv37.inplay.tubemogul.com",
        "Static.Example.org",
        "",  # error:invalid-request
        "www.google.com",  # CONNECT host:port
        "cdn.example.net",
        "blocked.example.com",
        "2001:db8::80",
    ]
    assert df.path.tolist() == ["/minitri.flg", "/StoreMessage", "/img/logo.png", ""] + [
        "",
        "/app.js",
        "/",
        "/index.html",
    ]
    assert df["query"].tolist() == ["", "id=7&x=/a"] + [""] * 6
    # the peer address where Squid logged one (DIRECT), else the URL's host (cache hit,
    # cache parent, denied, no URL), never a name looked up
    assert df.server.tolist() == [
        "125.23.216.203",
        "174.129.41.128",
        "Static.Example.org",
        "",
        "74.125.229.115",
        "cdn.example.net",
        "blocked.example.com",
        "2001:db8::80",
    ]
    assert (df.referrer == "").all() and (df.user_agent == "").all() and (df.bytes_out == 0).all()
    assert df.attrs["filled"] == {"bytes_out": 8, "referrer": 8, "user_agent": 8, "server": 4}


def test_squid_lines_of_another_logformat(tmp_path):
    lines = SQUID.read_text().splitlines()
    lines[2] += ' "http://referer.example/" "Mozilla/5.0"'  # combined-style extras
    (tmp_path / "access.log").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as err:
        io.read_http(tmp_path / "access.log")
    assert str(err.value) == (
        f"{tmp_path / 'access.log'}, line 3: 12 fields where Squid's native format "
        "(logformat squid) has 10"
    )
    with pytest.warns(UserWarning, match="skipped 1 malformed line"):
        df = io.read_http(tmp_path / "access.log", lenient=True)
    assert len(df) == 7 and df.attrs["skipped_lines"] == 1
    with pytest.raises(DataFormatError, match="a squid file holds http, not flows"):
        io.read_flows(SQUID)


# -- CICFlowMeter -------------------------------------------------------------------------------
def test_cicids2017_traffic_labelling():
    path = FIXTURES / "cicids2017.csv"
    assert b"\r\n" in path.read_bytes() and b"\x96" in path.read_bytes()  # as published
    df = io.read_flows(path)
    check_schema(df, "flows")
    assert io.detect_format(path) == "cicflowmeter" and df.attrs["format"] == "cicflowmeter"
    assert df.src.tolist()[:3] == ["192.168.10.5", "192.168.10.3", "192.168.10.5"]
    assert df.server.tolist()[:3] == ["104.16.207.165", "192.168.10.5", "192.168.10.5"]
    assert df.pkts.tolist() == [2, 1, 1, 3, 7, 7, 6, 3, 1, 46, 2, 1, 1, 4, 3]
    assert df.bytes.tolist() == [12, 45, 77, 26, 11607, 37, 91, 0, 0, 0, 206, 0, 0, 200, 80]
    assert df.proto.tolist()[:4] == ["tcp", "udp", "udp", "tcp"] and df.proto.iloc[9] == "0"
    assert df.ts.tolist()[:4:3] == [utc("2017-07-03 08:55:58"), utc("2017-07-07 03:56")]
    assert df.ts.iloc[1] == utc("2017-07-03 08:56")
    assert df.ts.iloc[9] == utc("2017-07-06 14:20:31")  # 02:20:31 PM
    assert df.duration.iloc[0] == pytest.approx(4e-6) and df.duration.iloc[9] == 112.74069
    assert np.isnan(df.duration.iloc[10])  # Flow Duration -1
    assert df.label.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]
    assert df.detailed_label.tolist()[7] == "Web Attack \ufffd Brute Force"
    assert df.detailed_label.tolist()[11:] == ["PortScan", "PortScan", "Bot", "Bot"]
    assert df.attrs["ignored"] == {"row of separators only": 2}
    assert df.attrs["filled"] == {"duration": 1} and df.attrs["dropped_halves"] == 3


def test_cicids2018_repeated_headers():
    df = io.read_flows(FIXTURES / "cicids2018.csv")
    check_schema(df, "flows")
    assert df.attrs["ignored"] == {"repeated header": 1}
    assert df.label.tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert df.detailed_label.tolist()[::2] == [
        "DoS attacks-Hulk",
        "Benign",
        "FTP-BruteForce",
        "Benign",
    ]
    assert df.ts.tolist()[::2] == [
        utc("2018-02-16 01:27:03"),
        utc("2018-03-02 08:47:38"),
        utc("2018-02-14 10:34:29"),
        utc("2018-03-02 14:13:29"),
    ]
    assert df.bytes.tolist()[:2] == [0, 935] and df.server.iloc[2] == "172.31.0.2"


def _cic_rows(header: str) -> str:
    body = (FIXTURES / "cicids2018.csv").read_text().splitlines()
    return "\n".join([header] + [r for r in body[1:] if not r.startswith("Flow ID")]) + "\n"


@pytest.mark.parametrize(
    "spelling",
    [
        lambda h: h.replace("Src", "Source").replace("Dst", "Destination"),  # 2017
        lambda h: (
            h.replace("Tot Fwd Pkts", "Total Fwd Packets")
            .replace("Tot Bwd Pkts", "Total Backward Packets")
            .replace("TotLen Fwd Pkts", "Total Length of Fwd Packets")
            .replace("TotLen Bwd Pkts", "Total Length of Bwd Packets")
        ),
        lambda h: ",".join(" " + c for c in h.split(",")),  # leading spaces
        lambda h: h.lower().replace(" ", "_"),  # the Python cicflowmeter
    ],
    ids=["source-destination", "total-length-of", "leading-spaces", "snake-case"],
)
def test_cicflowmeter_column_spellings(tmp_path, spelling):
    header = (FIXTURES / "cicids2018.csv").read_text().splitlines()[0]
    (tmp_path / "a.csv").write_text(_cic_rows(header))
    (tmp_path / "b.csv").write_text(_cic_rows(spelling(header)))
    assert spelling(header) != header
    pd.testing.assert_frame_equal(
        io.read_flows(tmp_path / "b.csv"), io.read_flows(tmp_path / "a.csv")
    )


def test_cicflowmeter_problems(tmp_path):
    header = (FIXTURES / "cicids2018.csv").read_text().splitlines()[0]
    no_addresses = ",".join(
        c for c in header.split(",") if c not in ("Src IP", "Dst IP", "Src Port")
    )
    (tmp_path / "ml.csv").write_text(no_addresses + "\n")  # MachineLearningCVE-like
    with pytest.raises(DataFormatError, match="missing field") as err:
        io.read_flows(tmp_path / "ml.csv")
    assert err.value.field == "Src IP"
    both = header.replace("Flow ID", "Source IP").replace("Src IP", "SRC_IP")
    (tmp_path / "both.csv").write_text(both + "\n")
    with pytest.raises(DataFormatError, match="both mean 'Src IP'"):
        io.read_flows(tmp_path / "both.csv")
    rows = _cic_rows(header).splitlines()
    rows[2] = rows[2].rsplit(",", 1)[0] + ","  # an empty label
    (tmp_path / "nolabel.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match="unknown label") as err:
        io.read_flows(tmp_path / "nolabel.csv")
    assert (err.value.line, err.value.field) == (3, "Label")


# -- UNSW-NB15 ----------------------------------------------------------------------------------
def test_unsw_nb15_raw_headerless():
    path = FIXTURES / "unsw-nb15_1.csv"
    df = io.read_flows(path)
    check_schema(df, "flows")
    assert io.detect_format(path) == "unsw-nb15" and df.attrs["dropped_halves"] == 3
    assert df.src.tolist()[::2][:2] == ["59.166.0.0", "59.166.0.6"]
    assert df.server.tolist() == [
        "149.171.126.6",
        "149.171.126.6",
        "149.171.126.4",
        "149.171.126.4",
        "149.171.126.18",
        "149.171.126.10",
        "149.171.126.16",
        "149.171.126.17",
        "149.171.126.17",
    ]
    assert df.pkts.tolist() == [2, 2, 26, 26, 2, 1, 1, 10, 8]
    assert df.bytes.tolist() == [132, 164, 2334, 16274, 728, 84, 46, 1024, 3000]
    assert df.dport.tolist()[5:7] == [0x000B, 0] and df.sport.iloc[6] == 0  # hex, '-'
    assert df.proto.tolist()[4:7] == ["udp", "icmp", "arp"]
    assert df.ts.iloc[0] == 1421927414.0 and df.duration.iloc[2] == pytest.approx(1.199146)
    assert df.label.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert df.detailed_label.tolist()[4:] == [
        "Fuzzers",
        "Reconnaissance",
        "Exploits",
        "Backdoor",
        "Backdoor",
    ]
    assert set(df.detailed_label[:4]) == {""}


@pytest.mark.parametrize(
    "name, day, labels",
    [
        (
            "cicids2017-improved.csv",
            "2017-07-07",
            ["BENIGN", "BENIGN", "Botnet", "Botnet - Attempted", "DoS Hulk - Attempted"]
            + ["Portscan", "Infiltration - Portscan"],
        ),
        (
            "cse-cicids2018-improved.csv",
            "2018-03-02",
            ["BENIGN", "BENIGN", "Botnet Ares", "Botnet Ares - Attempted", "DDoS-HOIC"]
            + ["FTP-BruteForce - Attempted"],
        ),
    ],
)
def test_corrected_cic_ids_releases(name, day, labels):
    """Engelen et al.'s corrected releases: leading id, CICFlowMeter-v3 spellings, ISO times
    with microseconds, trailing columns, '- Attempted' labels."""
    path = FIXTURES / name
    header = path.read_text().splitlines()[0].split(",")
    assert header[:2] == ["id", "Flow ID"] and header[-2:] == ["Label", "Attempted Category"]
    assert io.detect_format(path) == "cicflowmeter"
    rows = pd.read_csv(path)  # the reference: one row per flow, as written
    df = io.read_flows(path, keep_empty=True)
    check_schema(df, "flows")
    assert df.detailed_label.tolist()[::2] == labels == rows["Label"].tolist()
    assert df.src.tolist()[::2] == rows["Src IP"].tolist() == df.dst.tolist()[1::2]
    assert df.server.tolist()[::2] == rows["Dst IP"].tolist()
    assert df.pkts.tolist()[::2] == rows["Total Fwd Packet"].tolist()
    assert df.pkts.tolist()[1::2] == rows["Total Bwd packets"].tolist()
    assert df.bytes.tolist()[::2] == rows["Total Length of Fwd Packet"].tolist()
    assert df.bytes.tolist()[1::2] == rows["Total Length of Bwd Packet"].tolist()
    assert df.ts.tolist()[::2] == [utc(t) for t in rows["Timestamp"]]
    assert df.ts.iloc[0] == utc(f"{day} {rows['Timestamp'][0][11:]}")
    assert df.ts.iloc[0] % 1 == pytest.approx(float("0." + rows["Timestamp"][0][-6:]))
    assert df.duration.tolist()[::2] == [d / 1e6 for d in rows["Flow Duration"]]
    attempt = np.array([label.endswith(" - Attempted") for label in labels])
    assert (rows["Attempted Category"].to_numpy() != -1).tolist() == attempt.tolist()
    benign = np.array([label == "BENIGN" for label in labels])
    assert df.label.tolist()[::2] == (~benign).astype(int).tolist()  # attempts malicious
    read_benign = io.read_flows(path, keep_empty=True, attempted="benign")
    assert read_benign.label.tolist()[::2] == (~benign & ~attempt).astype(int).tolist()
    assert read_benign.detailed_label.tolist()[::2] == labels
    with pytest.raises(ValueError, match="attempted must be one of .'malicious', 'benign'.,"):
        io.read_flows(path, attempted="drop")


def test_columns_that_match_no_layout_are_named(tmp_path):
    header = (FIXTURES / "cicids2017-improved.csv").read_text().splitlines()[0]
    no_addresses = ",".join(c for c in header.split(",") if c not in ("Src IP", "Dst IP"))
    (tmp_path / "ml.csv").write_text(no_addresses + "\n" + ",".join(["1"] * 89) + "\n")
    with pytest.raises(DataFormatError) as err:
        io.read_flows(tmp_path / "ml.csv")
    assert str(err.value) == (
        f"{tmp_path / 'ml.csv'}, line 1, field 'Src IP': missing field(s) 'Src IP', 'Dst IP' "
        "of a cicflowmeter file; its header: 'id', 'Flow ID', 'Src Port', 'Dst Port', "
        "'Protocol', 'Timestamp', 'Flow Duration', 'Total Fwd Packet', ... (89 in all)"
    )
    (tmp_path / "other.csv").write_text("when,from,to,size\n1,a,b,3\n")  # no reader's names
    with pytest.raises(DataFormatError) as err:
        io.read_flows(tmp_path / "other.csv")
    assert str(err.value) == (
        f"{tmp_path / 'other.csv'}, line 1, field 'ts': missing field(s) 'ts', 'proto', 'src', "
        "'dst', 'sport', 'dport', 'pkts', 'bytes' of a csv file; its header: 'when', 'from', "
        "'to', 'size'"
    )


def test_csv_without_header_line(tmp_path):
    """A CTU-13 binetflow part without its header line: named, and read with header=None."""
    lines = (FIXTURES / "argus.binetflow").read_text().splitlines()
    (tmp_path / "part2.binetflow").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataFormatError) as err:
        io.read_flows(tmp_path / "part2.binetflow")
    assert str(err.value) == (
        f"{tmp_path / 'part2.binetflow'}, line 1: no header line: the first line is data "
        "('2011/08/16 10:01:46.972101', '1.896288', 'tcp', '147.32.84.165', ...; 15 columns); "
        "15 columns is the layout of Argus binetflow (CTU-13): read it with "
        "io.read_flows(path, format='argus', header=None)"
    )
    headless = io.read_flows(tmp_path / "part2.binetflow", format="argus", header=None)
    pd.testing.assert_frame_equal(headless, io.read_flows(FIXTURES / "argus.binetflow"))
    unsw = (FIXTURES / "unsw-nb15_1.csv").read_text()
    (tmp_path / "unsw.csv").write_text(unsw)
    pd.testing.assert_frame_equal(
        io.read_flows(tmp_path / "unsw.csv", format="unsw-nb15", header=None),
        io.read_flows(FIXTURES / "unsw-nb15_1.csv"),
    )
    (tmp_path / "seven.csv").write_text("1.5,10.0.0.1,80,10.0.0.2,443,6,7\n")
    with pytest.raises(DataFormatError) as err:
        io.read_flows(tmp_path / "seven.csv")
    assert str(err.value).endswith(
        "no header line: the first line is data ('1.5', '10.0.0.1', '80', '10.0.0.2', ...; "
        "7 columns), read as csv; add the line of column names, or pass header=None with the "
        "format of a published layout (Argus binetflow (CTU-13) 15, UNSW-NB15 49 columns)"
    )
    with pytest.raises(ValueError, match="header=None reads a published column layout"):
        io.read_flows(tmp_path / "seven.csv", header=None)


def test_unsw_nb15_with_header_and_training_set(tmp_path):
    raw = io.read_flows(FIXTURES / "unsw-nb15_1.csv")
    headed = io.read_flows(FIXTURES / "unsw-nb15-header.csv")
    pd.testing.assert_frame_equal(headed, raw.iloc[: len(headed)])
    (tmp_path / "UNSW_NB15_training-set.csv").write_text(
        "id,dur,proto,service,state,spkts,dpkts,sbytes,dbytes,rate,attack_cat,label\n"
        "1,0.000011,udp,-,INT,2,0,496,0,90909.0902,Normal,0\n"
    )
    with pytest.raises(DataFormatError, match="missing field") as err:
        io.read_flows(tmp_path / "UNSW_NB15_training-set.csv")
    assert err.value.field == "srcip"


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


def test_a_folder_is_its_log_files(tmp_path):
    """Known extensions, plain or gzip, sorted, hidden files, other files and sub-folders
    skipped, a Zeek log of another kind left out and counted; one capture per file."""
    folder = tmp_path / "captures"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(FIXTURES / "argus.binetflow", folder / "b.binetflow")
    with gzip.open(folder / "a-unsw.csv.gz", "wb") as fh:
        fh.write((FIXTURES / "unsw-nb15_1.csv").read_bytes())
    shutil.copy(FIXTURES / "zeek-conn.log", folder / "c.conn.log")
    http = (FIXTURES / "zeek-conn.log").read_text().replace("#path\tconn", "#path\thttp")
    (folder / "http.log").write_text(http)
    for other in (".hidden.csv", "README.md", "sub/d.binetflow"):
        shutil.copy(FIXTURES / "argus.binetflow", folder / other)
    files, left_out = io.log_files(folder, "flows")
    assert [p.name for p in files] == ["a-unsw.csv.gz", "b.binetflow", "c.conn.log"]
    assert left_out == 1 and len(io.log_files(folder)[0]) == 4
    each = [io.read_flows(p) for p in files]
    df = io.read_flows(folder)
    pd.testing.assert_frame_equal(
        df.drop(columns="source"), pd.concat(each, ignore_index=True), check_like=False
    )
    assert df.source.tolist() == [p.name for p, e in zip(files, each) for _ in range(len(e))]
    assert df.attrs["format"] == "unsw-nb15,argus,zeek"
    assert df.attrs["dropped_halves"] == sum(e.attrs["dropped_halves"] for e in each)
    assert df.attrs["filled"] == {"pkts": len(each[1])}
    assert df.attrs["ignored"] == {"file of another Zeek log": 1}
    assert df.attrs["files"]["b.binetflow"] == each[1].attrs
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="empty: a folder without log files"):
        io.read_flows(tmp_path / "empty")


def test_detect_new_formats(tmp_path):
    assert io.detect_format(FIXTURES / "cicids2018.csv") == "cicflowmeter"
    assert io.detect_format(FIXTURES / "unsw-nb15-header.csv") == "unsw-nb15"
    (tmp_path / "z.json").write_text('{"ts": 1, "event": "x"}\n')
    assert io.detect_format(tmp_path / "z.json") == "zeek-json"
    (tmp_path / "n.csv").write_text("59.166.0.0,1390,149.171.126.6\n")  # 3 columns: not UNSW
    assert io.detect_format(tmp_path / "n.csv") == "csv"


def test_formats_that_hold_only_flows():
    for name in ("cicids2018.csv", "unsw-nb15_1.csv", "argus.binetflow"):
        with pytest.raises(DataFormatError, match="holds flows, not dns"):
            io.read_dns(FIXTURES / name)


def test_lenient_reads_warn_once(tmp_path):
    rows = (FIXTURES / "unsw-nb15_1.csv").read_text().splitlines()
    rows[1] = rows[1].replace(",26,26,", ",x,26,")
    (tmp_path / "u.csv").write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = io.read_flows(tmp_path / "u.csv", lenient=True)
    assert len(caught) == 1 and "line 2, field 'spkts'" in str(caught[0].message)
    assert df.attrs["skipped_lines"] == 1 and len(df) == 7
