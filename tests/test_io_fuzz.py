"""Readers on bad input: DataFormatError naming the file (line, field) or a clean read, never
anything else.

Every single-field corruption of a small Zeek, Argus and nfdump file (tests/fixtures/io), strict
and lenient; random bytes (alone, after a valid header, or flipped into a valid file) read as
every kind and format; a truncated gzip; an empty file.
"""

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from alchemy_torch import io
from alchemy_torch.io import DataFormatError, cicflowmeter, eve, unsw

FIXTURES = Path(__file__).parent / "fixtures" / "io"
READERS = {"flows": io.read_flows, "http": io.read_http, "dns": io.read_dns}


class Delimited:
    """A small delimited fixture: header lines, data rows split into fields, trailer lines."""

    def __init__(self, name, sep, header_lines, trailer_lines=0):
        lines = (FIXTURES / name).read_text().splitlines()
        self.name, self.sep = name, sep
        self.head = lines[:header_lines]
        self.rows = [r.split(sep) for r in lines[header_lines : len(lines) - trailer_lines]]
        self.tail = lines[len(lines) - trailer_lines :]
        self.first_row_line = header_lines + 1

    def text(self, rows) -> str:
        return "\n".join(self.head + [self.sep.join(r) for r in rows] + self.tail) + "\n"


SOURCES = {
    "zeek": Delimited("zeek-conn.log", "\t", header_lines=8, trailer_lines=1),
    "argus": Delimited("argus.binetflow", ",", header_lines=1),
    "nfdump": Delimited("nfdump.csv", ",", header_lines=1, trailer_lines=3),
    "cicflowmeter": Delimited("cicids2018.csv", ",", header_lines=1),
    "unsw-nb15": Delimited("unsw-nb15_1.csv", ",", header_lines=0),
}
FIELDS = {  # field names, in file order
    "zeek": SOURCES["zeek"].head[6].split("\t")[1:],
    "argus": SOURCES["argus"].head[0].split(","),
    "nfdump": SOURCES["nfdump"].head[0].split(","),
    "cicflowmeter": SOURCES["cicflowmeter"].head[0].split(","),
    "unsw-nb15": list(unsw.COLUMNS),
}
# Fields whose corruption the reader must catch (the others may be read as they come).
MUST_FAIL = {
    "zeek": {
        "not-a-number": {"ts", "id.orig_p", "id.resp_p", "duration", "orig_pkts", "resp_pkts"}
        | {"orig_ip_bytes", "resp_ip_bytes", "label"},
        "negative": {"id.orig_p", "id.resp_p", "orig_pkts", "resp_pkts", "orig_ip_bytes"}
        | {"resp_ip_bytes", "label"},
    },
    "argus": {
        "not-a-number": {"StartTime", "Dur", "Sport", "Dport", "TotPkts", "TotBytes", "SrcBytes"}
        | {"Label"},
        "negative": {"Sport", "Dport", "TotPkts", "TotBytes", "SrcBytes", "Label"},
    },
    "nfdump": {
        "not-a-number": {"ts", "td", "sp", "dp", "ipkt", "ibyt", "opkt", "obyt"},
        "negative": {"sp", "dp", "ipkt", "ibyt", "opkt", "obyt"},
    },
    "cicflowmeter": {
        "not-a-number": {"Src Port", "Dst Port", "Protocol", "Timestamp", "Flow Duration"}
        | {"Tot Fwd Pkts", "Tot Bwd Pkts", "TotLen Fwd Pkts", "TotLen Bwd Pkts"},
        "negative": {"Src Port", "Dst Port", "Protocol", "Tot Fwd Pkts", "Tot Bwd Pkts"}
        | {"TotLen Fwd Pkts", "TotLen Bwd Pkts"},
    },
    "unsw-nb15": {
        "not-a-number": {"sport", "dsport", "dur", "sbytes", "dbytes", "spkts", "dpkts"}
        | {"stime", "label"},
        "negative": {"sport", "dsport", "sbytes", "dbytes", "spkts", "dpkts", "label"},
    },
}
WIDE = {  # formats with many columns that are not read: their read fields and a few others
    "cicflowmeter": set(cicflowmeter.FIELDS) | {"Flow ID", "Flow Byts/s", "Fwd Header Len"},
    "unsw-nb15": set(unsw.FIELDS) | {"state", "service", "ct_ftp_cmd"},
}
ROW = 3  # the data row that gets corrupted (0-based)


def corrupt(fields: list[str], field: int, how: str) -> list[str]:
    out = list(fields)
    if how == "not-a-number":
        out[field] = "x?"
    elif how == "negative":
        out[field] = "-7"
    elif how == "missing":
        del out[field]
    else:  # extra
        out.insert(field, "0")
    return out


CASES = [
    (fmt, field, how)
    for fmt, names in FIELDS.items()
    for field in range(len(names))
    if fmt not in WIDE or names[field] in WIDE[fmt]
    for how in ("not-a-number", "negative", "missing")
] + [(fmt, 0, "extra") for fmt in FIELDS]


def read_quietly(reader, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reader(path, **kw)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """{format: (records of the fixture, records of its row ROW)}."""
    out = {}
    for fmt, source in SOURCES.items():
        path = tmp_path_factory.mktemp(fmt) / source.name
        path.write_text(source.text(source.rows[:ROW] + source.rows[ROW + 1 :]))
        n = len(io.read_flows(FIXTURES / source.name))
        out[fmt] = n, n - len(io.read_flows(path))
    return out


@pytest.mark.parametrize("fmt, field, how", CASES, ids=lambda v: str(v))
def test_single_field_corruption(tmp_path, clean, fmt, field, how):
    source = SOURCES[fmt]
    rows = [list(r) for r in source.rows]
    rows[ROW] = corrupt(rows[ROW], field, how)
    path = tmp_path / source.name
    path.write_text(source.text(rows))
    line, name = source.first_row_line + ROW, FIELDS[fmt][field]
    must_fail = how in ("missing", "extra") or name in MUST_FAIL[fmt][how]
    try:
        strict = io.read_flows(path)
    except DataFormatError as err:
        assert (err.path, err.line) == (str(path), line), str(err)
        assert err.field is not None and str(path) in str(err) and f"line {line}" in str(err)
        assert err.field == name or how in ("missing", "extra"), str(err)
        failed = True
    else:
        assert not must_fail, f"{name}: corruption not caught"
        assert len(strict) == clean[fmt][0]
        failed = False
    lenient = read_quietly(io.read_flows, path, lenient=True)
    assert lenient.attrs["skipped_lines"] == int(failed)
    records, of_row = clean[fmt]
    assert records - len(lenient) in ((of_row, of_row - 1, of_row + 1) if failed else (0,))


def test_every_field_is_corrupted():
    assert {(f, h) for f, _, h in CASES} == {
        (f, h) for f in FIELDS for h in ("not-a-number", "negative", "missing", "extra")
    }
    fields = {f: len(WIDE[f]) if f in WIDE else len(names) for f, names in FIELDS.items()}
    assert len(CASES) == 3 * sum(fields.values()) + len(FIELDS)


@pytest.mark.parametrize("at", range(8))
@pytest.mark.parametrize("how", ["removed", "emptied", "bad escape", "doubled"])
def test_broken_zeek_header(tmp_path, at, how):
    source = SOURCES["zeek"]
    head = list(source.head)
    key, _, value = head[at].partition(" " if at == 0 else "\t")
    if how == "removed":
        del head[at]
    elif how == "emptied":
        head[at] = key
    elif how == "bad escape":
        head[at] = f"{key} \\x0" if at == 0 else f"{key}\t\\x0\t{value}"
    else:
        head.insert(at, head[at] + "\tts")
    path = tmp_path / source.name
    path.write_text("\n".join(head + ["\t".join(r) for r in source.rows]) + "\n")
    assert_reads_or_names_file(path, formats=(None, "zeek"))


# -- random and broken bytes --------------------------------------------------------------------
HEADERS = {
    "none": b"",
    "zeek": ("\n".join(SOURCES["zeek"].head) + "\n").encode(),
    "argus": (SOURCES["argus"].head[0] + "\n").encode(),
    "nfdump": (SOURCES["nfdump"].head[0] + "\n").encode(),
    "cicflowmeter": (SOURCES["cicflowmeter"].head[0] + "\n").encode(),
    "unsw-nb15": (",".join(SOURCES["unsw-nb15"].rows[0]) + "\n").encode(),
    "json": b'{"ts": 1.5, "id.orig_h": "10.0.0.1", "id.resp_h": "10.0.0.2", "query": "a.b"}\n',
    "eve": b'{"timestamp": "2024-03-01T10:00:00Z", "event_type": "dns", "dns": {"id": 1}}\n',
    "parquet": b"PAR1",
}
FILES = [s.name for s in SOURCES.values()] + ["eve.json"]
FORMATS = (None,) + io.FORMATS


def assert_reads_or_names_file(path, formats=FORMATS):
    """Every kind, strict and lenient, as each of ``formats``: a frame or a DataFormatError."""
    for kind, reader in READERS.items():
        for fmt in formats:
            for lenient in (False, True):
                try:
                    df = read_quietly(reader, path, format=fmt, lenient=lenient)
                except DataFormatError as err:
                    assert err.path == str(path) and str(path) in str(err)
                else:
                    assert list(df.columns[: len(io.COLUMNS[kind])]) == list(io.COLUMNS[kind])


def random_bytes(rng, n):
    alphabet = np.frombuffer(b'0123456789abc-.,:\t\n\r\x00"#{}[] \xff\xfe', np.uint8)
    pick = rng.integers(0, 2, n).astype(bool)  # half structured characters, half any byte
    return np.where(pick, rng.choice(alphabet, n), rng.integers(0, 256, n)).astype(np.uint8)


@pytest.mark.parametrize("header", list(HEADERS))
@pytest.mark.parametrize("seed", range(2))
def test_random_bytes(tmp_path, header, seed):
    rng = np.random.default_rng([seed, len(header)])
    path = tmp_path / "random.bin"
    path.write_bytes(HEADERS[header] + random_bytes(rng, int(rng.integers(1, 4000))).tobytes())
    assert_reads_or_names_file(path)


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("seed", range(2))
def test_flipped_bytes(tmp_path, name, seed):
    rng = np.random.default_rng([seed, len(name)])
    data = np.frombuffer((FIXTURES / name).read_bytes(), np.uint8).copy()
    at = rng.integers(0, len(data), 8)
    data[at] = random_bytes(rng, len(at))
    path = tmp_path / name
    path.write_bytes(data.tobytes())
    assert_reads_or_names_file(path)


JSON_VALUES = [None, True, -1, 0, 2**70, 1.5e308, "", "-", "x?", "1e3", [], [1, "a"], {}, {"a": 1}]


@pytest.mark.parametrize("seed", range(3))
def test_json_values_of_any_type(tmp_path, seed):
    rng = np.random.default_rng(seed)
    names = ["ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "orig_pkts"]
    names += ["resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "uri", "query", "answers", "TTLs"]
    rows = [
        {n: JSON_VALUES[rng.integers(len(JSON_VALUES))] for n in names if rng.random() < 0.8}
        for _ in range(20)
    ]
    path = tmp_path / "typed.json"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert_reads_or_names_file(path)


def any_json(rng, type_):
    """A value shaped like arrow type ``type_``, with any JSON value in a fifth of places."""
    if rng.random() < 0.2:
        return JSON_VALUES[rng.integers(len(JSON_VALUES))]
    if isinstance(type_, pa.StructType):
        return {f.name: any_json(rng, f.type) for f in type_ if rng.random() < 0.8}
    if isinstance(type_, pa.ListType):
        return [any_json(rng, type_.value_type) for _ in range(rng.integers(3))]
    return int(rng.integers(-2, 70000)) if pa.types.is_integer(type_) else str(rng.random())


@pytest.mark.parametrize("seed", range(3))
def test_eve_values_of_any_type(tmp_path, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(30):
        kind = io.KINDS[rng.integers(3)]
        event = any_json(rng, pa.struct(list(eve.FIELD_TYPES[kind])))
        event = event if isinstance(event, dict) else {"value": event}
        rows.append({"event_type": eve.EVENT[kind] if rng.random() < 0.9 else "alert", **event})
    path = tmp_path / "eve.json"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert io.detect_format(path) == "eve"
    assert_reads_or_names_file(path)


@pytest.mark.parametrize("name", FILES)
def test_truncated_gzip(tmp_path, name):
    data = gzip.compress((FIXTURES / name).read_bytes())
    for cut in (2, 5, 12, len(data) // 2, len(data) - 4):  # from the magic number on
        path = tmp_path / f"cut{cut}.gz"
        path.write_bytes(data[:cut])
        for reader in READERS.values():
            for lenient in (False, True):
                with pytest.raises(DataFormatError, match="cannot read file") as err:
                    reader(path, lenient=lenient)
                assert err.value.path == str(path)


def test_empty_and_blank_files(tmp_path):
    for name, content in [("nothing", b""), ("blank", b"\n\n\r\n"), ("bom", b"\xef\xbb\xbf\n")]:
        path = tmp_path / name
        path.write_bytes(content)
        for reader in READERS.values():
            with pytest.raises(DataFormatError) as err:
                reader(path)
            assert err.value.path == str(path) and "empty file" in err.value.message
        assert_reads_or_names_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="cannot read file"):
        io.read_flows(tmp_path / "nope.log")


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_byte_order_mark_crlf_and_stray_cr(tmp_path, fmt):
    source = SOURCES[fmt]
    clean = io.read_flows(FIXTURES / source.name)
    windows = tmp_path / "windows"
    windows.write_bytes(b"\xef\xbb\xbf" + source.text(source.rows).replace("\n", "\r\n").encode())
    assert windows.read_bytes().count(b"\r\n") == len(source.head + source.rows + source.tail)
    pd.testing.assert_frame_equal(io.read_flows(windows), clean)
    rows = [list(r) for r in source.rows]
    rows[ROW][2] = rows[ROW][2][:3] + "\r" + rows[ROW][2][3:]  # an address with a CR inside
    stray = tmp_path / "stray"
    stray.write_text(source.text(rows), newline="")
    try:
        df = io.read_flows(stray)
    except DataFormatError as err:  # the field is not free text: its line is named
        assert err.line == source.first_row_line + ROW
    else:
        assert len(df) == len(clean) and df.isin([rows[ROW][2]]).any().any()
