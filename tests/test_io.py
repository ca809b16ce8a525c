"""Readers on small hand-written files: every format, the canonical schema, bad input."""

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alchemy_torch import io
from alchemy_torch.io import DataFormatError

ZEEK_HEADER = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\t{path}
#open\t2023-03-20-15-45-35
#fields\t{fields}
#types\t{types}
"""
CONN_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
    "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts "
    "orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents label detailedlabel"
).split()
CONN_ROWS = [
    # a normal exchange: two one-way records
    "1676851429.981575 C1 192.168.1.109 34606 185.125.190.17 80 tcp http 0.038607 87 147 SF - -"
    " 0 ShADTdtfFa 10 710 8 726 - Benign From_benign-To_benign-Ubuntu",
    # an unanswered SYN: the empty reverse half is dropped
    "1676851430.5 C2 192.168.1.109 34607 66.63.168.35 5888 tcp - - - - S0 - - 0 S 2 104 0 0 -"
    " Malicious RemcosRAT",
    # background, unset duration
    "1676851431.25 C3 10.0.0.5 53 192.168.1.109 41000 udp dns - 48 64 SF - - 0 Dd 1 76 1 92 -"
    " Background (empty)",
]


def zeek(path, log, fields, rows, close=True):
    types = "\t".join("string" for _ in fields)
    text = ZEEK_HEADER.format(path=log, fields="\t".join(fields), types=types)
    text += "".join("\t".join(r.split(" ")) + "\n" for r in rows)
    if close:
        text += "#close\t2023-03-20-15-45-50\n"
    path.write_text(text)
    return path


@pytest.fixture
def conn_log(tmp_path):
    return zeek(tmp_path / "conn.log.labeled", "conn", CONN_FIELDS, CONN_ROWS)


def check_schema(df, kind, labels=True):
    assert list(df.columns[: len(io.COLUMNS[kind])]) == list(io.COLUMNS[kind])
    assert df["ts"].dtype == np.float64
    for col in df.columns:
        if col in ("sport", "dport", "pkts", "bytes", "bytes_out", "bytes_in", "status"):
            assert df[col].dtype == np.int64, col
        elif col == "label":
            assert df[col].dtype == np.int8
            assert set(df[col].unique()) <= {-1, 0, 1}
        elif col in ("ts", "duration"):
            assert df[col].dtype == np.float64
        elif col in ("answers", "ttls"):
            assert all(isinstance(v, list) for v in df[col])
        else:
            assert pd.api.types.is_string_dtype(df[col]) and not df[col].isna().any(), col
    assert ("label" in df.columns) == labels


def test_zeek_conn_one_way_records(conn_log):
    df = io.read_flows(conn_log)
    check_schema(df, "flows")
    assert len(df) == 5 and df.attrs["dropped_halves"] == 1 and df.attrs["format"] == "zeek"
    first, back = df.iloc[0], df.iloc[1]
    assert (first.src, first.dst, first.sport, first.dport) == (
        "192.168.1.109",
        "185.125.190.17",
        34606,
        80,
    )
    assert (back.src, back.dst, back.sport, back.dport) == (
        "185.125.190.17",
        "192.168.1.109",
        80,
        34606,
    )
    assert (first.pkts, first.bytes, back.pkts, back.bytes) == (10, 710, 8, 726)  # IP bytes
    assert first.server == back.server == "185.125.190.17"
    assert (first["flags"], back["flags"]) == ("SADTF", "HDTFA")  # history letters per direction
    assert first.ts == 1676851429.981575 and first.duration == pytest.approx(0.038607)
    assert df.label.tolist() == [0, 0, 1, -1, -1]
    assert df.detailed_label.tolist()[2:] == ["RemcosRAT", "", ""]
    assert np.isnan(df.duration.iloc[3])
    assert df.proto.tolist()[3:] == ["udp", "udp"]


def test_gzip_and_plain_agree(conn_log, tmp_path):
    gz = tmp_path / "conn.log.gz"
    gz.write_bytes(gzip.compress(conn_log.read_bytes()))
    pd.testing.assert_frame_equal(io.read_flows(gz), io.read_flows(conn_log))


def test_iot23_space_separated_label_columns(tmp_path):
    fields = CONN_FIELDS[:-3] + ["tunnel_parents   label   detailed-label"]
    rows = [r.rsplit(" ", 3)[0] + " -___Malicious___C&C" for r in CONN_ROWS[:2]]
    path = zeek(tmp_path / "iot.conn.log.labeled", "conn", fields, rows)
    path.write_text(path.read_text().replace("___", "   "))
    df = io.read_flows(path)
    assert df.label.tolist() == [1, 1, 1] and set(df.detailed_label) == {"C&C"}


def test_zeek_json_lines(tmp_path):
    rows = [
        {
            "ts": 1591367999.305988,
            "uid": "C1",
            "id.orig_h": "192.168.4.76",
            "id.orig_p": 36844,
            "id.resp_h": "192.168.4.1",
            "id.resp_p": 53,
            "proto": "udp",
            "duration": 0.0668,
            "history": "Dd",
            "orig_pkts": 2,
            "orig_ip_bytes": 118,
            "resp_pkts": 2,
            "resp_ip_bytes": 197,
        },
        {
            "ts": "2020-06-05T14:40:00.5Z",
            "uid": "C2",
            "id.orig_h": "192.168.4.76",
            "id.orig_p": 36845,
            "id.resp_h": "10.0.0.1",
            "id.resp_p": 443,
            "proto": "tcp",
            "orig_pkts": 1,
            "orig_ip_bytes": 60,
            "resp_pkts": 0,
            "resp_ip_bytes": 0,
        },
    ]
    path = tmp_path / "conn.json"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    df = io.read_flows(path)
    check_schema(df, "flows", labels=False)
    assert df.attrs["format"] == "zeek-json" and len(df) == 3
    assert df.ts.tolist() == [1591367999.305988] * 2 + [1591368000.5]
    assert df.bytes.tolist() == [118, 197, 60] and np.isnan(df.duration.iloc[2])


def test_zeek_http_and_dns(tmp_path):
    http_fields = (
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth method host uri "
        "referrer user_agent request_body_len response_body_len status_code"
    ).split()
    rows = [
        "19.5 C1 192.168.1.113 49159 195.113.232.73 80 1 GET www.msftncsi.com "
        "/ncsi.txt?a=1?b - Microsoft_NCSI 0 14 200",
        "20.5 C2 192.168.1.113 49160 1.2.3.4 80 1 POST - - - - 416 - -",
    ]
    h = io.read_http(zeek(tmp_path / "http.log", "http", http_fields, rows))
    check_schema(h, "http", labels=False)
    assert h.path.tolist() == ["/ncsi.txt", ""] and h["query"].tolist() == ["a=1?b", ""]
    assert h.status.tolist() == [200, 0] and h.bytes_in.tolist() == [14, 0]
    assert h.host.tolist() == ["www.msftncsi.com", ""] and h.referrer.tolist() == ["", ""]

    dns_fields = (
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass "
        "qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z answers TTLs "
        "rejected"
    ).split()
    rows = [
        "13.18 C1 192.168.1.116 50814 8.8.8.8 53 udp 51541 0.0012 Dns.MsftNCSI.com. 1 "
        "C_INTERNET 1 A 0 NOERROR F F T T 0 131.107.255.255,cname.x 17.000000,5.9 F",
        "14.0 C2 192.168.1.116 50815 8.8.8.8 53 udp 51542 - lyxynyx.com 1 C_INTERNET 28 - 3"
        " NXDOMAIN F F T F 0 - - F",
    ]
    d = io.read_dns(zeek(tmp_path / "dns.log", "dns", dns_fields, rows))
    check_schema(d, "dns", labels=False)
    assert d["query"].tolist() == ["dns.msftncsi.com", "lyxynyx.com"]
    assert d.qtype.tolist() == ["A", "28"] and d.rcode.tolist() == ["NOERROR", "NXDOMAIN"]
    assert d.answers.tolist() == [["131.107.255.255", "cname.x"], []]
    assert d.ttls.tolist() == [[17, 6], []]


def test_argus_binetflow(tmp_path):
    path = tmp_path / "s.binetflow"
    path.write_text(
        "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,"
        "SrcBytes,Label\n"
        "2011/08/16 10:01:46.972101,1.5,tcp,147.32.84.165,1040,   ->,91.212.135.158,5678,"
        "FSPA_FSPA,0,0,10,5000,1000,flow=From-Botnet-V47-TCP-CC73-Not-Encrypted\n"
        "2011/08/16 10:01:47.5,0.1,icmp,94.0.247.147,0x0103,   ->,147.32.84.59,0x5e00,URH,0,,6,"
        "1062,1062,flow=Background-Attempt-cmpgw-CVUT\n"
        "2011/08/16 10:01:48,0.2,udp,147.32.84.170,53000,  <->,8.8.8.8,53,CON,0,0,2,200,80,"
        "flow=From-Normal-V47-Stribrek\n"
        "2011/08/16 10:01:49,0,arp,1.1.1.1,,  who,1.1.1.2,,INT,0,0,1,60,60,flow=Background\n"
    )
    df = io.read_flows(path)
    check_schema(df, "flows")
    assert df.attrs["format"] == "argus" and df.attrs["dropped_halves"] == 2
    assert df.ts.iloc[0] == pytest.approx(
        pd.Timestamp("2011-08-16 10:01:46.972101", tz="UTC").timestamp(), abs=1e-6
    )
    cc = df.iloc[:2]
    assert cc.pkts.tolist() == [2, 8] and cc.bytes.tolist() == [1000, 4000]  # estimated split
    assert cc["flags"].tolist() == ["FSPA", "FSPA"] and set(cc.server) == {"91.212.135.158"}
    assert df.sport.iloc[2] == 0x0103 and df.dport.iloc[2] == 0x5E00 and df["flags"].iloc[2] == ""
    assert df.label.tolist() == [1, 1, -1, 0, 0, -1]
    assert df.detailed_label.iloc[0] == "From-Botnet-V47-TCP-CC73-Not-Encrypted"
    assert df.sport.iloc[-1] == 0 and df.proto.iloc[-1] == "arp"


def test_nfdump_csv(tmp_path):
    path = tmp_path / "flows.csv"
    path.write_text(
        "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out\n"
        "2019-03-01 10:00:00.250,2019-03-01 10:00:01,0.750,10.0.0.1,93.184.216.34,51000,443,TCP,"
        ".AP.SF,0,0,10,1500,0,0,1,2\n"
        "2019-03-01 10:00:02,2019-03-01 10:00:03,1.0,93.184.216.34,10.0.0.1,443,51000,TCP,"
        ".AP.SF,0,0,12,9000,3,180,1,2\n"
        "\nSummary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n2,10500,22,1,1,1\n"
    )
    df = io.read_flows(path)
    check_schema(df, "flows", labels=False)
    assert df.attrs["format"] == "nfdump" and len(df) == 3
    assert df.server.tolist() == ["93.184.216.34"] * 3  # lower port
    assert df.pkts.tolist() == [10, 12, 3] and df["flags"].iloc[0] == "APSF"
    assert df.proto.iloc[0] == "tcp" and df.ts.iloc[0] % 60 == pytest.approx(0.25)


def test_csv_and_parquet_with_mapping(tmp_path):
    frame = pd.DataFrame(
        {
            "time": [1.5, 2.5],
            "sip": ["10.0.0.1", "5.6.7.8"],
            "dip": ["5.6.7.8", "10.0.0.1"],
            "sp": [40000, 80],
            "dp": [80, 40000],
            "protocol": ["TCP", "TCP"],
            "packets": [3, 4],
            "octets": [180, 900],
            "y": ["Malicious", "benign"],
        }
    )
    columns = {
        "ts": "time",
        "src": "sip",
        "dst": "dip",
        "sport": "sp",
        "dport": "dp",
        "proto": "protocol",
        "pkts": "packets",
        "bytes": "octets",
        "label": "y",
    }
    frame.to_csv(tmp_path / "f.csv", index=False)
    frame.to_parquet(tmp_path / "f.parquet")
    a = io.read_flows(tmp_path / "f.csv", columns=columns)
    b = io.read_flows(tmp_path / "f.parquet", columns=columns)
    check_schema(a, "flows")
    pd.testing.assert_frame_equal(a, b)
    for df in (a, b):
        assert df.server.tolist() == ["5.6.7.8", "5.6.7.8"] and df.label.tolist() == [1, 0]
        assert df["flags"].tolist() == ["", ""] and df.duration.isna().all()
    assert a.attrs["absent_fields"] == ["duration", "flags", "server"]
    assert b.attrs["format"] == "parquet"


def test_canonical_tables_round_trip(tmp_path):
    dns = pd.DataFrame(
        {
            "ts": [1.0, 2.0],
            "client": ["c", "d"],
            "query": ["A.example.", "b.x"],
            "qtype": ["A", "A"],
            "rcode": ["NOERROR", "NXDOMAIN"],
            "answers": [["1.2.3.4", "5.6.7.8"], []],
            "ttls": [[60, 60], []],
        }
    )
    dns.to_parquet(tmp_path / "dns.parquet")
    back = io.read_dns(tmp_path / "dns.parquet")
    check_schema(back, "dns", labels=False)
    assert back["query"].tolist() == ["a.example", "b.x"] and back.ttls.tolist() == [[60, 60], []]
    http = pd.DataFrame(
        {
            "ts": [1.0],
            "client": ["c"],
            "server": ["s"],
            "host": ["h"],
            "uri": ["/a/b?x=1"],
            "method": ["GET"],
        }
    )
    http.to_csv(tmp_path / "http.csv", index=False)
    h = io.read_http(tmp_path / "http.csv")
    assert (h.path.iloc[0], h["query"].iloc[0], h.status.iloc[0]) == ("/a/b", "x=1", 0)


@pytest.mark.parametrize(
    "edit, line, field, message",
    [
        (
            lambda rows: rows.__setitem__(1, rows[1].replace("\t5888\t", "\tabc\t")),
            10,
            "id.resp_p",
            "not a number",
        ),
        (
            lambda rows: rows.__setitem__(0, rows[0].rsplit("\t", 1)[0]),
            9,
            "detailedlabel",
            "missing",
        ),
        (lambda rows: rows.__setitem__(2, rows[2] + "\textra"), 11, "detailedlabel", "fields"),
        (
            lambda rows: rows.__setitem__(2, "yesterday" + rows[2][rows[2].index("\t") :]),
            11,
            "ts",
            "unparseable timestamp",
        ),
        (
            lambda rows: rows.__setitem__(1, rows[1].replace("\t2\t104\t", "\t-3\t104\t")),
            10,
            "orig_pkts",
            "below 0",
        ),
        (
            lambda rows: rows.__setitem__(0, rows[0].replace("Benign", "Suspicious")),
            9,
            "label",
            "unknown label",
        ),
    ],
)
def test_bad_lines_strict_and_lenient(conn_log, edit, line, field, message):
    text = conn_log.read_text().split("\n")
    rows = text[8:11]
    edit(rows)
    conn_log.write_text("\n".join(text[:8] + rows + text[11:]))
    with pytest.raises(DataFormatError) as err:
        io.read_flows(conn_log)
    assert (err.value.line, err.value.field) == (line, field)
    assert message in str(err.value) and str(conn_log) in str(err.value)
    assert f"line {line}" in str(err.value) and repr(field) in str(err.value)
    with pytest.warns(UserWarning, match=f"skipped 1 malformed line.*line {line}"):
        df = io.read_flows(conn_log, lenient=True)
    assert df.attrs["skipped_lines"] == 1
    assert len(df) == 5 - (2 if line == 9 else 1 if line == 10 else 2)


def test_whole_file_problems(conn_log, tmp_path):
    with pytest.raises(DataFormatError, match="'conn' log cannot be read as dns") as err:
        io.read_dns(conn_log)
    assert err.value.field == "#path"
    no_pkts = zeek(
        tmp_path / "x.log",
        "conn",
        [f for f in CONN_FIELDS if f != "orig_pkts"],
        [" ".join(r.split(" ")[:16] + r.split(" ")[17:]) for r in CONN_ROWS],
    )
    with pytest.raises(DataFormatError, match="missing field") as err:
        io.read_flows(no_pkts)
    assert (err.value.field, err.value.line) == ("orig_pkts", 7)
    with pytest.raises(DataFormatError, match="not a zeek flows field.*format='csv'"):
        io.read_flows(conn_log, columns={"sourceip": "id.orig_h"})
    with pytest.raises(DataFormatError, match="not a table flows field"):
        io.read_flows(conn_log, format="csv", columns={"sourceip": "id.orig_h"})
    with pytest.raises(DataFormatError, match="holds flows, not http"):
        io.read_http(_argus(tmp_path))
    (tmp_path / "broken.gz").write_bytes(gzip.compress(b"#fields\tts\n1\n")[:-6])
    with pytest.raises(DataFormatError, match="cannot read file"):
        io.read_flows(tmp_path / "broken.gz")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"ts": 1}\n{"ts": \n')
    with pytest.raises(DataFormatError, match="not a JSON object") as err:
        io.read_flows(bad_json)
    assert err.value.line == 2
    with pytest.raises(ValueError, match="unknown format"):
        io.read_flows(conn_log, format="pcap")


def _argus(tmp_path):
    path = tmp_path / "a.binetflow"
    path.write_text(
        "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,"
        "TotPkts,TotBytes,SrcBytes,Label\n"
    )
    return path


def test_empty_and_header_only_files(conn_log, tmp_path):
    header_only = zeek(tmp_path / "empty.log", "conn", CONN_FIELDS, [])
    df = io.read_flows(header_only)
    assert len(df) == 0 and list(df.columns) == list(io.COLUMNS["flows"]) + [
        "label",
        "detailed_label",
    ]
    assert len(io.read_flows(_argus(tmp_path))) == 0


def test_quoted_csv_fields_and_lenient_json(tmp_path):
    path = tmp_path / "http.csv"
    path.write_text(
        "ts,client,server,host,path,method,user_agent\n"
        '1,c,s,h,/a,GET,"Mozilla/5.0 (X11, Linux)"\n'
        '2,c,s,h,/b,GET,"multi\nline, agent"\n'
        "3,c,s,h,/c,GET\n"
    )
    with pytest.raises(DataFormatError) as err:
        io.read_http(path)
    assert (err.value.line, err.value.field) == (5, "user_agent")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        h = io.read_http(path, lenient=True)
    assert h.user_agent.tolist() == ["Mozilla/5.0 (X11, Linux)", "multi\nline, agent"]
    js = tmp_path / "dns.json"
    js.write_text(
        '{"ts": 1, "id.orig_h": "c", "query": "a.b", "answers": ["1.2.3.4"], '
        '"TTLs": [30.0]}\nnot json\n{"ts": 2, "id.orig_h": "c", "query": "x.y"}\n'
    )
    with pytest.warns(UserWarning, match="skipped 1 malformed line"):
        d = io.read_dns(js, lenient=True)
    assert d.answers.tolist() == [["1.2.3.4"], []] and d.ttls.tolist() == [[30], []]


def test_detect_format(conn_log, tmp_path):
    assert io.detect_format(conn_log) == "zeek"
    assert io.detect_format(_argus(tmp_path)) == "argus"
    (tmp_path / "z.csv").write_text("ts,uid,id.orig_h,id.resp_h\n")
    assert io.detect_format(tmp_path / "z.csv") == "zeek-csv"
    (tmp_path / "n.csv").write_text("ts,te,td,sa,da,sp,dp\n")
    assert io.detect_format(tmp_path / "n.csv") == "nfdump"
    (tmp_path / "p.csv").write_text("a,b\n")
    assert io.detect_format(tmp_path / "p.csv") == "csv"


# -- every staged real file (../shared/data) -------------------------------------------------
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROWS = {  # data rows per file, from each SOURCE.md
    "ctu-benign-2023-02-20.dns.log.labeled.gz": 9359,
    "ctu-malware-botnet-355-1-simda.first1000.dns.log.gz": 992,
    "ctu-malware-capture-botnet-4.dns.log.labeled.gz": 43,
    "android-mischief-rat01-androidtester.conn.log.gz": 361,
    "ctu-benign-2023-02-20.conn.log.labeled.gz": 7124,
    "ctu-malware-capture-botnet-4.conn.log.labeled.gz": 22913,
    "ctu-normal-40-day1.conn.log.labeled.gz": 5663,
    "ctu-normal-42-day2.conn.log.labeled.gz": 5347,
    "ctu-normal-43-day1.conn.log.labeled.gz": 9048,
    "ctu-sme11-ubuntu2204-1-2023-02-25.conn.log.labeled.gz": 3445,
    "ctu-sme11-win7ad-1-2023-02-26.conn.log.labeled.gz": 2363,
    "ctu-sme11-win7full3-2023-02-22.first5000pkts.conn.log.labeled.gz": 766,
    "ctu13-s6-capture20110816.binetflow.gz": 558919,
    "CTU-Honeypot-Capture-4-1-labeled.csv.gz": 452,
    "CTU-Honeypot-Capture-5-1-labeled.csv.gz": 1374,
    "CTU-Honeypot-Capture-7-1-labeled.csv.gz": 130,
    "CTU-Malware-Capture-8-1-labeled.csv.gz": 10403,
    "CTU-Malware-Capture-20-1-labeled.csv.gz": 3209,
    "CTU-Malware-Capture-21-1-labeled.csv.gz": 3286,
    "CTU-Malware-Capture-34-1-labeled.csv.gz": 23145,
    "CTU-Malware-Capture-42-1-labeled.csv.gz": 4426,
    "CTU-Malware-Capture-44-1-labeled.csv.gz": 237,
    "ctu-benign-2023-02-20.http.log.labeled.gz": 838,
    "ctu-malware-botnet-219-2-kovter.http.log.labeled.gz": 1464,
    "ctu-malware-botnet-355-1-simda.first1000.http.log.gz": 992,
    "ctu-malware-capture-botnet-4.http.log.labeled.gz": 2614,
    "ctu-normal-40-day1.http.log.labeled.gz": 342,
    "ctu-normal-42-day2.http.log.labeled.gz": 5,
    "ctu-normal-43-day1.http.log.labeled.gz": 25,
}
# The 559k-line CTU-13 file is read (and checked) by test_datasets' load of its set.
SMALL = sorted(p for p in DATA.glob("*/*.gz") if p.name != "ctu13-s6-capture20110816.binetflow.gz")


def test_every_real_file_is_known():
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not present")
    assert sorted(p.name for p in DATA.glob("*/*.gz")) == sorted(ROWS)


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
def test_real_file_loads(path):
    kind = path.parent.name.split("-")[0]
    df = {"flows": io.read_flows, "http": io.read_http, "dns": io.read_dns}[kind](path)
    check_schema(
        df,
        kind,
        labels=path.name
        not in {
            "android-mischief-rat01-androidtester.conn.log.gz",
            "ctu-malware-botnet-355-1-simda.first1000.dns.log.gz",
            "ctu-malware-botnet-355-1-simda.first1000.http.log.gz",
        },
    )
    assert df.attrs["skipped_lines"] == 0 and df.attrs["absent_fields"] == []
    assert len(df) + df.attrs["dropped_halves"] == ROWS[path.name] * (2 if kind == "flows" else 1)


# -- the reader checks in ../shared/data/readers-real (counts from its SOURCE.md) --------------
REAL = DATA / "readers-real"
EVE_EVENTS = {  # events per type of each EVE file
    "stratosphere-2021-06-06-honeypot192.168.1.129.eve.json.gz": {
        "flow": 3512,
        "alert": 745,
        "dns": 680,
        "http": 56,
        "fileinfo": 3,
        "anomaly": 3,
        "tls": 1,
    },
    "slips-test7-malicious.eve.json.gz": {"flow": 333, "dns": 66, "dhcp": 3, "stats": 1},
    "ctu-sme11-honeypot-rpi-2023-02-21.eve.json.gz": {"ssh": 50, "flow": 50, "stats": 5},
}
LABELLED_ROWS = {  # rows per (label, detailed label) of each labelled flow file
    "eve/slips-test7-malicious.conn.log.labeled.gz": {(1, ""): 322, (0, ""): 51, (-1, ""): 1},
    "eve/ctu-sme11-honeypot-rpi-2023-02-21.conn.log.labeled.gz": {(0, ""): 10},
    "iot23-zeek/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz": {
        (1, "DDoS"): 14394,
        (1, "C&C"): 6706,
        (0, ""): 1923,
        (1, "PartOfAHorizontalPortScan"): 122,
    },
    "unsw-nb15/UNSW-NB15_1.first3000rows.rcarmas-Book1a.csv.gz": {
        (0, ""): 2902,
        (1, "Exploits"): 57,
        (1, "Reconnaissance"): 23,
        (1, "DoS"): 8,
        (1, "Generic"): 6,
        (1, "Shellcode"): 4,
    },
}


@pytest.fixture
def real():
    if not REAL.is_dir():
        pytest.skip(f"{REAL} not present")
    return REAL


def test_every_reader_check_file_is_known(real):
    assert sorted(p.relative_to(real).as_posix() for p in real.glob("*/*.gz")) == sorted(
        [f"eve/{name}" for name in EVE_EVENTS] + list(LABELLED_ROWS)
    )


@pytest.mark.parametrize("name", sorted(EVE_EVENTS))
def test_real_eve_events_per_type(real, name):
    """Every event counted once: as a kind's records or in its attrs["ignored"]."""
    events, path = EVE_EVENTS[name], real / "eve" / name
    kinds = {"flows": "flow", "http": "http", "dns": "dns"}
    for kind, read in (("flows", io.read_flows), ("http", io.read_http), ("dns", io.read_dns)):
        df = read(path, **({"keep_empty": True} if kind == "flows" else {}))
        check_schema(df, kind, labels=False)
        assert df.attrs["skipped_lines"] == 0
        others = {k: v for k, v in events.items() if k != kinds[kind]}
        ignored = {k: v for k, v in df.attrs["ignored"].items() if k.startswith("event_type")}
        assert ignored == {f"event_type {k}": v for k, v in others.items()}
        mine = events.get(kinds[kind], 0)
        if kind == "flows":
            assert len(df) == 2 * mine  # both directions of every flow event
        elif kind == "http":
            assert len(df) == mine and df.attrs["filled"] == ({"bytes_out": mine} if mine else {})
        else:  # every request merged into its response here
            merged = df.attrs["ignored"].get("dns request merged into its response", 0)
            assert len(df) + merged == mine and merged == mine // 2


def test_real_eve_values(real):
    path = real / "eve" / "stratosphere-2021-06-06-honeypot192.168.1.129.eve.json.gz"
    assert io.read_http(path).host.value_counts().to_dict() == {"147.32.82.197": 44, "": 12}
    assert set(io.read_dns(path)["query"]) == {"www.myedimax.com", "www.google.com"}
    flows = io.read_flows(real / "eve" / "slips-test7-malicious.eve.json.gz", keep_empty=True)
    assert flows.server.nunique() == 287  # distinct dest_ip of the flow events
    assert set(flows.src.iloc[::2]) >= {"192.168.2.16"}


@pytest.mark.parametrize("name", sorted(LABELLED_ROWS))
def test_real_labelled_flow_rows(real, name):
    """Rows per label: with keep_empty every row is two records, forward first."""
    df = io.read_flows(real / name, keep_empty=True)
    check_schema(df, "flows")
    assert df.attrs["skipped_lines"] == 0 and df.attrs["dropped_halves"] == 0
    rows = df.iloc[::2]
    counts = rows.groupby(["label", "detailed_label"]).size().to_dict()
    assert counts == LABELLED_ROWS[name]
    assert (df.label.iloc[1::2].to_numpy() == rows.label.to_numpy()).all()


def test_real_iot23_original_layout_equals_its_csv_copy(real):
    """IoT-23's space-separated last columns: the same records as the CSV copy staged in
    flows-iot23-small (the same capture, never counted twice)."""
    original = io.read_flows(
        real / "iot23-zeek" / "CTU-IoT-Malware-Capture-34-1.conn.log.labeled.gz", keep_empty=True
    )
    copy = DATA / "flows-iot23-small" / "CTU-Malware-Capture-34-1-labeled.csv.gz"
    pd.testing.assert_frame_equal(original, io.read_flows(copy, keep_empty=True))
    servers = original.groupby("server")["label"].agg(["min", "max"])  # by id.resp_h
    assert len(servers) == 49 and (servers["min"] == 1).sum() == 4
    assert ((servers["min"] == 0) & (servers["max"] == 1)).sum() == 2


def test_real_unsw_nb15_with_byte_order_mark_and_crlf(real):
    path = real / "unsw-nb15" / "UNSW-NB15_1.first3000rows.rcarmas-Book1a.csv.gz"
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == 3000
    assert io.detect_format(path) == "unsw-nb15"
    df = io.read_flows(path)
    assert df.ts.min() == 1421927377 and (df.ts + df.duration).max() <= 1421927509
    assert df.server.nunique() == 26 and df.src.iloc[0] == "59.166.0.0"
