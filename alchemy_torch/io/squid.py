"""Squid's native ``access.log`` (``logformat squid``, Squid's default) -> HTTP requests.

One request per line, ten fields separated by runs of spaces (Squid's documented layout
``%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt``)::

    1286536308.779    180 10.0.0.7 TCP_MISS/200 411 GET http://a.org/b?c=1 - DIRECT/9.9.9.9 text/x

time (epoch seconds, milliseconds) -> ``ts``; elapsed (ms, not read); client address ->
``client``; result code / HTTP status -> ``status`` (``000``: none, read as 0); reply size
(bytes sent to the client) -> ``bytes_in``; method -> ``method``; URL -> ``host``, ``path``
and ``query`` (``CONNECT host:443``: the host); user (not read); hierarchy code / peer; MIME
type (not read).

The server is the peer address Squid logged (``DIRECT/9.9.9.9``); where it logged none
(``NONE/-``, a cache hit) or the peer is a cache parent or sibling (``*PARENT/*``,
``*SIBLING/*``), the server is the URL's host as written in the record: never resolved over
the network, so it may be a name; such records are counted in
``df.attrs["filled"]["server"]``. What the native format does not log is unknown: the
request size (``bytes_out`` 0), ``referrer`` and ``user_agent`` (''), counted in
``df.attrs["filled"]`` for every record. A line with another number of fields (a custom
``logformat``) is an error naming the line.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import schema
from .errors import DataFormatError
from .fields import Fields
from .source import RawTable, Text

COLUMNS = (
    "time",
    "elapsed",
    "client",
    "code_status",
    "bytes",
    "method",
    "url",
    "user",
    "hierarchy_peer",
    "type",
)
FIELDS = ("time", "client", "code_status", "bytes", "method", "url", "hierarchy_peer")
NUMERIC = frozenset({"time", "bytes"})
UNSET = ("-",)
#: kind -> what a Squid line never holds (``df.attrs["filled"]`` counts every record for each)
NOT_LOGGED = {"http": ("bytes_out", "referrer", "user_agent")}
#: the first line of a native access.log (detection)
LINE = re.compile(rb"^\d+\.\d{3}\s+-?\d+\s+\S+\s+[A-Z_]+/\d{3}\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+/\S+")
_URL = (  # scheme://[user@]host[:port][path][?query]
    r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@?#]*@)?(?P<host>\[[^\]]*\]|[^/:?#]*)(?::\d*)?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?"
)
_AUTHORITY = r"^(?P<host>\[[^\]]*\]|[^/:?#\s]+):\d+$"  # CONNECT's host:port
_ADDRESS = r"^(?:\d{1,3}\.){3}\d{1,3}$|^[0-9A-Fa-f]*:[0-9A-Fa-f:.]*$"


def is_squid(first_line: bytes) -> bool:
    """Whether a file's first line is a native access.log line."""
    return LINE.match(first_line) is not None


def read(text: Text, *, lenient: bool) -> RawTable:
    """The lines of a native access.log as a raw table of :data:`FIELDS` (text), split at
    runs of whitespace by arrow."""
    records = np.flatnonzero(~text.empty)
    data = text.buffer(records).decode("utf-8", "replace").removesuffix("\n")
    lines = pc.list_flatten(pc.split_pattern(pa.array([data], pa.large_string()), "\n"))
    if not len(records):
        lines = lines.slice(0, 0)
    tokens = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(lines))
    counts = pc.list_value_length(tokens).to_numpy(zero_copy_only=False)
    wrong = counts != len(COLUMNS)
    problems = []
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        line = int(text.number[records[i]])
        message = f"{counts[i]} fields where Squid's native format (logformat squid) has 10"
        if not lenient:
            raise DataFormatError(text.path, line, None, message)
        problems.append((line, None, message))
        records, tokens = records[~wrong], tokens.filter(pa.array(~wrong))
    flat = pc.list_flatten(tokens)
    frame = pd.DataFrame(
        {
            name: pd.Series(
                flat.take(pa.array(np.arange(j, len(flat), len(COLUMNS)))).to_numpy(
                    zero_copy_only=False
                ),
                dtype="str",
            )
            for j, name in enumerate(COLUMNS)
            if name in FIELDS
        }
    )
    return RawTable(
        text.path,
        frame,
        text.number[records],
        skipped=int(wrong.sum()),
        problems=problems,
        columns=list(COLUMNS),
    )


def http(f: Fields, options: dict) -> tuple[dict, dict]:
    """access.log lines -> requests (module docstring)."""
    f.require(*FIELDS)
    _, status = _split(f.text("code_status", required=True))
    hierarchy, peer = _split(f.text("hierarchy_peer"))
    url, method = f.text("url", required=True), f.text("method")
    parts = _extract(url, _URL)
    authority = _extract(url, _AUTHORITY)["host"].where((method == "CONNECT").to_numpy(), "")
    host = parts["host"].where(parts["host"] != "", authority).str.strip("[]")
    via_peer = peer.str.match(_ADDRESS).to_numpy(bool) & ~hierarchy.str.contains(
        "PARENT|SIBLING", regex=True
    ).to_numpy(bool)
    numbers = pd.Series(status).str.fullmatch(r"\d{3}").to_numpy(bool)
    f.flag(~numbers, "code_status", "not a Squid result code/HTTP status", f.frame["code_status"])
    n = len(host)
    cols = f.commit(
        {
            "ts": f.time("time"),
            "client": f.text("client", required=True),
            "server": peer.where(via_peer, host),
            "host": host,
            "path": parts["path"],
            "query": parts["query"],
            "method": method,
            "user_agent": pd.Series("", index=range(n), dtype="str"),
            "referrer": pd.Series("", index=range(n), dtype="str"),
            "bytes_out": np.zeros(n, np.int64),
            "bytes_in": f.number("bytes", **schema.COUNT),
            "status": np.where(numbers, pd.to_numeric(status, errors="coerce"), 0).astype(np.int64),
            "from_url": ~via_peer,
        }
    )
    from_url = int(cols.pop("from_url").sum())
    records = len(cols["ts"])
    filled = {column: records for column in NOT_LOGGED["http"] if records}
    if from_url:
        filled["server"] = from_url
    return cols, {"filled": filled}


def _extract(values: pd.Series, pattern: str) -> dict:
    """{group: str Series} of ``pattern``'s named groups in every value ('' where it does not
    match or a group takes no part), matched by arrow (RE2)."""
    found = pc.extract_regex(pa.array(values.to_numpy(object), pa.string()), pattern)
    return {
        group.name: pd.Series(
            pc.fill_null(pc.struct_field(found, i), "").to_numpy(zero_copy_only=False),
            dtype="str",
        )
        for i, group in enumerate(found.type)
    }


def _split(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``A/B`` -> (A, B) per value; B is '' where there is no '/', or '-'."""
    parts = _extract(values, r"^(?P<a>[^/]*)(?:/(?P<b>.*))?$")
    return parts["a"], parts["b"].where(parts["b"] != "-", "")


ADAPTERS = {"http": http}
