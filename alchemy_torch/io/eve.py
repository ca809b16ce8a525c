"""Suricata EVE JSON (``eve.json``, Suricata 6, 7 and 8) -> flows, http and dns records.

One JSON object per line, its ``event_type`` says what it is. A kind reads its own events
(flows: ``flow``, http: ``http``, dns: ``dns``); every other type is counted in
``df.attrs["ignored"]`` (``{"event_type alert": n, ...}``). A line that is not a JSON object,
has no ``event_type``, or gives a field read here the wrong JSON type is bad: a
:class:`DataFormatError` naming file, line and field (skipped and counted with ``lenient``).
Lines are parsed by arrow, read for the fields named below only.

flow: two one-way records, ``src_ip`` -> ``dest_ip`` (the responder = server) with
``flow.pkts_toserver``/``bytes_toserver`` and back with ``*_toclient`` (an empty half is
dropped); ts = ``flow.start``, duration = ``flow.end - flow.start`` (else ``flow.age``);
flags: the TCP flags seen in each direction (``tcp.tcp_flags_ts``/``tcp_flags_tc``, hex) as
letters in nfdump's order (CEUAPRSF); flows without ports (ICMP) have port 0.

http: client ``src_ip``, server ``dest_ip``, ``hostname``, ``url`` (split at '?'),
``http_method``, ``http_user_agent``, ``http_refer``, ``status``, ``length`` (the response
body: ``bytes_in``). EVE does not log the request size: ``bytes_out`` is unknown, 0 on every
record and counted in ``df.attrs["filled"]["bytes_out"]`` (see :data:`NOT_LOGGED`).

dns: one record per transaction, from any of the EVE DNS formats:

- ``version`` 1 (Suricata 6's old format): a ``query`` event, then one ``answer`` event per
  answer (``rrname``, ``rrtype``, ``ttl``, ``rdata`` in the dns object; an answer without
  records is one event with its ``rcode``). The answer events of one response (same flow,
  client, client port, server, DNS ``id`` and timestamp) make one record, whose query is the
  first answer's ``rrname`` and qtype the ``rrtype`` of its query where the query is logged.
- ``version`` 2 (Suricata 6 and 7): ``query`` and ``answer`` events; the query is ``rrname``
  and ``rrtype``; the answers an ``answers`` list (format "detailed") and/or a ``grouped``
  object of rdata lists by type (format "grouped").
- ``version`` 3 (Suricata 8): ``request`` and ``response`` events, the query is
  ``queries[0]``, answers as in 2; a response's ``src_ip`` is the server.

The client is the asker (``src_ip``, but ``dest_ip`` of version-3 responses). A response is a
record (query, qtype, rcode, answers with their TTLs; an answer's text is its ``rdata``, for
SOA its ``soa.mname``, for SRV its ``srv.name``). A request is merged into its response (same
flow, client, client port, server, DNS id and query name; counted in ``ignored``), or else
is a record of its own without answers and with rcode ''. An answer without a TTL (known
only from ``grouped``, of types A, AAAA, CNAME, MX, NS, PTR, TXT; or a version-1 answer
without ``ttl``) has TTL -1, the records counted in ``df.attrs["filled"]["ttls"]``.
Record times are the event times.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from . import directions, schema
from .errors import DataFormatError
from .fields import Fields
from .source import RawTable, Text

EVENT = {"flows": "flow", "http": "http", "dns": "dns"}
#: kind -> record columns no EVE event gives (unknown: 0 or '', counted in attrs["filled"])
NOT_LOGGED = {"http": ("bytes_out",)}
GROUPED = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "TXT")
_S, _I = pa.string(), pa.int64()
_ENDPOINTS = [("src_ip", _S), ("src_port", _I), ("dest_ip", _S), ("dest_port", _I)]
FIELD_TYPES = {  # the fields read, as arrow types (any other field is not parsed)
    "flows": pa.schema(
        [
            *_ENDPOINTS,
            ("proto", _S),
            (
                "flow",
                pa.struct(
                    [
                        (f"{x}_to{end}", _I)
                        for x in ("pkts", "bytes")
                        for end in ("server", "client")
                    ]
                    + [("start", _S), ("end", _S), ("age", _I)]
                ),
            ),
            ("tcp", pa.struct([("tcp_flags_ts", _S), ("tcp_flags_tc", _S)])),
        ]
    ),
    "http": pa.schema(
        [
            ("timestamp", _S),
            *_ENDPOINTS,
            (
                "http",
                pa.struct(
                    [
                        ("hostname", _S),
                        ("url", _S),
                        ("http_method", _S),
                        ("http_user_agent", _S),
                        ("http_refer", _S),
                        ("status", _I),
                        ("length", _I),
                    ]
                ),
            ),
        ]
    ),
    "dns": pa.schema(
        [
            ("timestamp", _S),
            ("flow_id", pa.uint64()),
            *_ENDPOINTS,
            (
                "dns",
                pa.struct(
                    [
                        ("version", _I),
                        ("type", _S),
                        ("id", _I),
                        ("rrname", _S),
                        ("rrtype", _S),
                        ("rcode", _S),
                        ("ttl", _I),
                        ("rdata", _S),
                        ("queries", pa.list_(pa.struct([("rrname", _S), ("rrtype", _S)]))),
                        (
                            "answers",
                            pa.list_(
                                pa.struct(
                                    [
                                        ("ttl", _I),
                                        ("rdata", _S),
                                        ("soa", pa.struct([("mname", _S)])),
                                        ("srv", pa.struct([("name", _S)])),
                                    ]
                                )
                            ),
                        ),
                        ("grouped", pa.struct([(t, pa.list_(_S)) for t in GROUPED])),
                    ]
                ),
            ),
        ]
    ),
}
_EVENT_TYPE = pa.schema([("event_type", _S)])
TCP_FLAGS = "CEUAPRSF"  # bit 7 .. bit 0


def fields(kind: str) -> frozenset:
    return frozenset(_flat_names(FIELD_TYPES[kind]))


def _flat_names(schema_or_type, prefix="") -> list[str]:
    names = []
    for fld in schema_or_type:
        if pa.types.is_struct(fld.type):
            names += _flat_names(fld.type, f"{prefix}{fld.name}.")
        else:
            names.append(prefix + fld.name)
    return names


# -- container ---------------------------------------------------------------------------------
def read(text: Text, kind: str, *, lenient: bool) -> RawTable:
    """The ``kind``'s events of an EVE file, one row per event, columns named by dotted path
    (``flow.pkts_toserver``); list fields of dns events are flattened (see :func:`_dns_lists`).

    Every line is parsed at once with the kind's schema; where arrow refuses that (a line that
    is no JSON, or a field of the wrong type in any event), the event types are read first and
    then the kind's own events, so that other events cannot spoil them.
    """
    parsed = _Parsed(text, lenient)
    records = np.flatnonzero(~text.empty)
    table = parsed.attempt(records, pa.schema([("event_type", _S), *FIELD_TYPES[kind]]))
    if table is None:
        records = parsed.parse(records, _EVENT_TYPE)
        table = parsed.table
    types = table.column("event_type")
    untyped = types.is_null().to_numpy(zero_copy_only=False)
    if untyped.any():
        parsed.bad(records, untyped, "event_type", "missing: not an EVE event")
        records, table = records[~untyped], table.filter(pa.array(~untyped))
        types = table.column("event_type")
    counts = pc.value_counts(types).to_pylist()
    ignored = {f"event_type {c['values']}": c["counts"] for c in counts}
    ignored.pop(f"event_type {EVENT[kind]}", None)
    mine = pc.equal(types, EVENT[kind]).to_numpy(zero_copy_only=False)
    if table.num_columns > 1:
        records, table = records[mine], table.filter(pa.array(mine)).drop_columns("event_type")
    else:
        records = parsed.parse(records[mine], FIELD_TYPES[kind])
        table = parsed.table
    table = table.flatten().flatten()
    if kind == "dns":
        table = _dns_lists(table)
    return RawTable(
        text.path,
        table.to_pandas(),
        text.number[records],
        skipped=parsed.skipped,
        problems=parsed.problems,
        ignored=ignored,
    )


class _Parsed:
    """Lines of ``text`` parsed by arrow with an explicit schema; bad lines located in Python
    (only when arrow refuses a block) and raised or, lenient, skipped and counted."""

    def __init__(self, text: Text, lenient: bool):
        self.text, self.lenient = text, lenient
        self.skipped, self.problems, self.table, self.refusal = 0, [], None, ""

    def parse(self, records: np.ndarray, schema: pa.Schema) -> np.ndarray:
        """Parse ``records`` into ``self.table``; returns the records kept."""
        self.table = self.attempt(records, schema)
        if self.table is None:
            bad, first = _bad_lines(self.text, records, schema)
            if bad.any():
                self.bad(records, bad, *first)
                records = records[~bad]
                self.table = self.attempt(records, schema)
        if self.table is None:  # arrow refuses what Python reads (a rare JSON corner)
            raise DataFormatError(self.text.path, None, None, f"unreadable EVE: {self.refusal}")
        return records

    def attempt(self, records: np.ndarray, schema: pa.Schema) -> pa.Table | None:
        """``records`` parsed by arrow, or None where arrow refuses them."""
        if len(records) == 0:
            return schema.empty_table()
        longest = int((self.text.ends[records] - self.text.starts[records]).max())
        try:
            return pj.read_json(
                io.BytesIO(self.text.buffer(records)),
                read_options=pj.ReadOptions(block_size=max(1 << 20, 2 * longest + 16)),
                parse_options=pj.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="ignore"
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            self.refusal = str(exc)
            return None

    def bad(self, records: np.ndarray, bad: np.ndarray, field: str | None, message: str):
        """Raise for the first of ``records`` marked ``bad``, or count them (lenient)."""
        line = int(self.text.number[records[np.argmax(bad)]])
        if not self.lenient:
            raise DataFormatError(self.text.path, line, field, message)
        self.skipped += int(bad.sum())
        self.problems.append((line, field, message))


def _bad_lines(text: Text, records: np.ndarray, schema: pa.Schema):
    """(mask of the records arrow cannot read with ``schema``, (field, message) of the
    first). Python, one line at a time: only run when arrow has refused the file."""
    bad, first = np.zeros(len(records), bool), None
    for i, r in enumerate(records):
        problem = _problem(text.data[text.starts[r] : text.ends[r]], schema)
        if problem:
            bad[i] = True
            first = first or problem
    return bad, first


def _problem(line: bytes, schema: pa.Schema) -> tuple[str | None, str] | None:
    try:
        value = json.loads(line, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(value, dict):
        return None, "not a JSON object"
    return _type_problem(value, pa.struct(list(schema)), "")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _type_problem(value, type_: pa.DataType, path: str):
    """(field, message) where ``value`` does not fit ``type_`` (nested), else None."""
    if value is None:
        return None
    if pa.types.is_struct(type_):
        if not isinstance(value, dict):
            return path or None, f"expected a JSON object, got {value!r}"
        for child in type_:
            if child.name in value:
                found = _type_problem(value[child.name], child.type, f"{path}{child.name}")
                if found:
                    return found
        return None
    if pa.types.is_list(type_):
        if not isinstance(value, list):
            return path, f"expected a list, got {value!r}"
        for item in value:
            found = _type_problem(item, type_.value_type, path)
            if found:
                return found
        return None
    if pa.types.is_string(type_):
        ok = isinstance(value, str)
    else:  # integers
        lo, hi = (0, 2**64) if pa.types.is_unsigned_integer(type_) else (-(2**63), 2**63)
        ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value < hi
    return None if ok else (path, f"expected {type_}, got {value!r}")


def _dns_lists(table: pa.Table) -> pa.Table:
    """dns events' list fields as flat columns: the first query's ``dns.queries.rrname`` and
    ``.rrtype``; ``dns.answers.rdata`` (text of each answer) and ``dns.answers.ttl``;
    ``dns.grouped`` (every grouped rdata, in GROUPED order); ``flow_id`` as text (a key)."""
    queries = table.column("dns.queries").combine_chunks()
    first = pc.list_slice(queries, 0, 1)
    first_query = pc.list_flatten(first)
    has_query = pc.greater(pc.fill_null(pc.list_value_length(queries), 0), 0).to_numpy(
        zero_copy_only=False
    )
    answers = table.column("dns.answers").combine_chunks()
    flat = pc.list_flatten(answers)
    text = pc.coalesce(
        pc.struct_field(flat, "rdata"),
        pc.struct_field(flat, ["soa", "mname"]),
        pc.struct_field(flat, ["srv", "name"]),
        pa.scalar(""),
    )
    lengths = pc.fill_null(pc.list_value_length(answers), 0).to_numpy(zero_copy_only=False)
    columns = {
        "dns.queries.rrname": _spread(pc.struct_field(first_query, "rrname"), has_query),
        "dns.queries.rrtype": _spread(pc.struct_field(first_query, "rrtype"), has_query),
        "dns.answers.rdata": _lists(text, lengths),
        "dns.answers.ttl": _lists(pc.struct_field(flat, "ttl"), lengths),
        "dns.grouped": _grouped(table, len(lengths)),
    }
    keep = [n for n in table.column_names if not n.startswith(("dns.queries", "dns.answers"))]
    keep = [n for n in keep if not n.startswith("dns.grouped") and n != "flow_id"]
    out = table.select(keep).append_column("flow_id", pc.cast(table.column("flow_id"), _S))
    for name, column in columns.items():
        out = out.append_column(name, column)
    return out


def _spread(values: pa.Array, where: np.ndarray) -> pa.Array:
    """``values`` placed at the rows marked ``where``, null elsewhere."""
    index = np.full(len(where), -1)
    index[where] = np.arange(int(where.sum()))
    return pc.take(values, pa.array(index, mask=index < 0))


def _lists(values: pa.Array, lengths: np.ndarray) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def _grouped(table: pa.Table, n: int) -> pa.Array:
    values, owner = [], []
    for t in GROUPED:
        column = table.column(f"dns.grouped.{t}").combine_chunks()
        values.append(pc.list_flatten(column))
        owner.append(pc.list_parent_indices(column).to_numpy(zero_copy_only=False))
    owner = np.concatenate(owner) if owner else np.zeros(0, np.int64)
    order = np.argsort(owner, kind="stable")
    flat = pa.concat_arrays([v.cast(pa.string()) for v in values]).take(pa.array(order))
    return _lists(flat, np.bincount(owner, minlength=n))


# -- adapters ----------------------------------------------------------------------------------
def flow(f: Fields, options: dict) -> tuple[dict, dict]:
    """``flow`` events -> one-way flows (module docstring)."""
    start = f.time("flow.start")
    end = f.time("flow.end", required=False)
    age = f.number("flow.age", integer=False, lo=0, default=np.nan)
    c = f.commit(
        {
            "ts": start,
            "duration": np.where(np.isnan(end), age, end - start),
            "proto": f.text("proto", required=True).str.lower(),
            "src": f.text("src_ip", required=True),
            "dst": f.text("dest_ip", required=True),
            "sport": f.number("src_port", **schema.PORT, default=0),
            "dport": f.number("dest_port", **schema.PORT, default=0),
            "spkts": f.number("flow.pkts_toserver", **schema.COUNT),
            "dpkts": f.number("flow.pkts_toclient", **schema.COUNT),
            "sbytes": f.number("flow.bytes_toserver", **schema.COUNT),
            "dbytes": f.number("flow.bytes_toclient", **schema.COUNT),
            "sflags": _flag_letters(f, "tcp.tcp_flags_ts"),
            "dflags": _flag_letters(f, "tcp.tcp_flags_tc"),
        }
    )
    out, dropped = directions.one_way(
        c,
        {"pkts": ("spkts", "dpkts"), "bytes": ("sbytes", "dbytes"), "flags": ("sflags", "dflags")},
        keep_empty=options.get("keep_empty", False),
    )
    return out, {"dropped_halves": dropped}


def _flag_letters(f: Fields, name: str) -> pd.Series:
    """Hex TCP flags ('1b') -> letters in TCP_FLAGS order ('APSF'); '' where unset."""
    text = f.text(name)
    letters = text.map(_FLAG_LETTERS)
    f.flag(letters.isna().to_numpy(), name, "not hex TCP flags", text)
    return letters.fillna("").astype("str")


_FLAG_LETTERS = {  # every spelling of a byte in hex -> its flag letters
    spelling: "".join(ch for i, ch in enumerate(TCP_FLAGS) if byte >> (7 - i) & 1)
    for byte in range(256)
    for spelling in {f"{byte:x}", f"{byte:02x}", f"{byte:X}", f"{byte:02X}"}
}
_FLAG_LETTERS[""] = ""


def http(f: Fields, options: dict) -> tuple[dict, dict]:
    """``http`` events -> requests (module docstring)."""
    cols = f.commit(
        {
            "ts": f.time("timestamp"),
            "client": f.text("src_ip", required=True),
            "server": f.text("dest_ip", required=True),
            "host": f.text("http.hostname"),
            "uri": f.text("http.url"),
            "method": f.text("http.http_method"),
            "user_agent": f.text("http.http_user_agent"),
            "referrer": f.text("http.http_refer"),
            "bytes_out": np.zeros(len(f.frame), np.int64),
            "bytes_in": f.number("http.length", **schema.COUNT, default=0),
            "status": f.number("http.status", **schema.STATUS, default=0),
        }
    )
    cols["path"], cols["query"] = schema.split_uri(cols.pop("uri"))
    n = len(cols["ts"])
    return cols, {"filled": {column: n for column in NOT_LOGGED["http"]} if n else {}}


def dns(f: Fields, options: dict) -> tuple[dict, dict]:
    """``dns`` events -> one record per transaction (module docstring)."""
    events = _dns_events(f)
    per_answer = (events["response"] & (events["version"] == 1)).to_numpy()
    groups = _answer_groups(events[per_answer])
    responses = pd.concat([_whole_responses(events[events["response"] & ~per_answer]), groups])
    requests = events[~events["response"]]
    answered = _keys(requests).isin(_keys(responses))
    n = int((~answered).sum())
    unanswered = requests[~answered].assign(
        rcode="", answers=_empty_lists(n), ttls=_empty_lists(n), unknown_ttls=False
    )
    records = pd.concat([_with_request_qtypes(responses, requests), unanswered])
    records = records.sort_values("event", kind="stable")
    ignored = {
        "dns request merged into its response": int(answered.sum()),
        "dns answer event merged into its response": int(per_answer.sum()) - len(groups),
    }
    unknown = int(records["unknown_ttls"].sum())
    return {c: records[c].reset_index(drop=True) for c in schema.COLUMNS["dns"]}, {
        "ignored": {k: v for k, v in ignored.items() if v},
        "filled": {"ttls": unknown} if unknown else {},
    }


KEY = ["flow_id", "client", "cport", "server", "id", "query"]  # a request and its response


def _dns_events(f: Fields) -> pd.DataFrame:
    """One row per dns event: validated fields, the asker and server, the query name."""
    kind = f.text("dns.type", required=True)
    response = kind.isin(("answer", "response")).to_numpy()
    known = response | kind.isin(("query", "request")).to_numpy()
    f.flag(~known & (kind != "").to_numpy(), "dns.type", "not a DNS request or response", kind)
    answers, n_answers = f.lists("dns.answers.rdata")
    ttls, _ = f.lists("dns.answers.ttl", integer=True)  # one per answer (a null is an error)
    grouped, n_grouped = f.lists("dns.grouped")
    name, first_name = f.text("dns.rrname"), f.text("dns.queries.rrname")
    qtype, first_qtype = f.text("dns.rrtype"), f.text("dns.queries.rrtype")
    c = f.commit(
        {
            "ts": f.time("timestamp"),
            "response": response,
            "version": f.number("dns.version", lo=1, default=1),
            "src": f.text("src_ip", required=True),
            "dst": f.text("dest_ip", required=True),
            "sport": f.number("src_port", **schema.PORT, default=0),
            "dport": f.number("dest_port", **schema.PORT, default=0),
            "flow_id": f.text("flow_id"),
            "id": f.number("dns.id", lo=0, default=-1),
            "query": schema.domain(name.where(name != "", first_name)),
            "qtype": qtype.where(name != "", first_qtype),
            "rcode": f.text("dns.rcode"),
            "answers": answers,
            "ttls": ttls,
            "n_answers": n_answers,
            "grouped": grouped,
            "n_grouped": n_grouped,
            "rdata": f.text("dns.rdata"),
            "ttl": f.number("dns.ttl", lo=0, default=-1),
        }
    )
    responder = c["response"] & (c["version"] >= 3)  # version 3 responses come from the server
    src, dst = c.pop("src"), c.pop("dst")
    return pd.DataFrame(
        {
            **c,
            "event": np.arange(len(src)),
            "client": src.where(~responder, dst),
            "server": dst.where(~responder, src),
            "cport": np.where(responder, c["dport"], c["sport"]),
        }
    )


def _whole_responses(r: pd.DataFrame) -> pd.DataFrame:
    """Version 2 and 3 responses: the detailed answers, else the grouped ones (TTL -1)."""
    grouped_only = (r["n_answers"] == 0).to_numpy() & (r["n_grouped"] > 0).to_numpy()
    lengths = r["n_grouped"].to_numpy()[grouped_only]
    unknown = _lists(pa.array(np.full(int(lengths.sum()), -1, np.int64)), lengths).to_pylist()
    answers, ttls = r["answers"].to_numpy().copy(), r["ttls"].to_numpy().copy()
    answers[grouped_only] = r["grouped"].to_numpy()[grouped_only]
    ttls[grouped_only] = _object_array(unknown)
    return r.assign(answers=answers, ttls=ttls, unknown_ttls=grouped_only)


def _answer_groups(a: pd.DataFrame) -> pd.DataFrame:
    """Version 1 answer events -> one response each: the first event, with every event's
    ``rdata`` and ``ttl`` (-1 where absent) as its answers. The query type comes from the
    request (:func:`_with_request_qtypes`)."""
    group = a.groupby(["flow_id", "client", "cport", "server", "id", "ts"], sort=False).ngroup()
    group = group.to_numpy()
    first = np.unique(group, return_index=True)[1]
    has = (a["rdata"] != "").to_numpy()
    order = np.argsort(group[has], kind="stable")
    lengths = np.bincount(group[has], minlength=len(first))
    ttl = a["ttl"].to_numpy()[has]
    rdata = pa.array(a["rdata"].to_numpy(object)[has][order], pa.string())
    return a.iloc[first].assign(
        qtype="",
        answers=_object_array(_lists(rdata, lengths).to_pylist()),
        ttls=_object_array(_lists(pa.array(ttl[order], pa.int64()), lengths).to_pylist()),
        unknown_ttls=np.bincount(group[has], weights=ttl < 0, minlength=len(first)) > 0,
    )


def _with_request_qtypes(responses: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """Responses without a query type take their request's."""
    known = requests.drop_duplicates(KEY).set_index(KEY)["qtype"]
    from_request = known.reindex(_keys(responses)).fillna("").to_numpy(object)
    qtype = responses["qtype"].to_numpy(object)
    return responses.assign(qtype=np.where(qtype == "", from_request, qtype))


def _keys(events: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(events[KEY])


def _empty_lists(n: int) -> np.ndarray:
    return _object_array(_lists(pa.array([], pa.string()), np.zeros(n, np.int64)).to_pylist())


def _object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), object)
    out[:] = items
    return out


ADAPTERS = {"flows": flow, "http": http, "dns": dns}
