"""Synthetic labelled records that show the problems Alchemy exists for.

``synthetic(kind, ...)`` -> (records, labels): canonical records (:mod:`alchemy_torch.io.schema`)
with ``label``/``detailed_label`` columns, and an int8 Series target -> 0/1.

Shared model (all kinds). Every target i gets a latent *style* m_i in [0, 1]: 0 = typical
benign behaviour, 1 = typical malicious behaviour. Benign targets draw m ~ Beta(1, 1 + k),
malicious ones m ~ Beta(1 + k, 1), with k = min(100, 1.7 (1 - d) / d) for ``difficulty`` d:
d = 0 separates the classes, d = 1 makes them identical, and the default d = 0.5 (k = 1.7)
leaves a random forest on per-target aggregates near AUC 0.9 (the slides' flows: 0.89).
Each behaviour parameter interpolates between its benign and malicious value at m_i plus its
own N(0, 0.15) jitter (so no single parameter is the label), and every record is drawn
around those parameters, so small bags give noisy statistics. Across kinds:

* bag sizes are log-normal (heavy-tailed): benign median 60 records (sigma 1.3), malicious
  median 12 (sigma 0.8) -- for flows, connections of one or two records -- so malicious
  targets are rare (``malicious_fraction``) and small;
* clients: benign targets are visited by many clients (Zipf-like reuse), malicious ones by few
  infected hosts;
* time: over ``days`` days, benign activity follows a diurnal load (peak 14:00, 80 %) over
  the whole window; malicious targets live a short while and a share of their records
  (up to 95 %) follows a beacon with period 30 s - 1 h and a relative jitter of 5 % (up to
  50 % as m -> 0).

Kind-specific models are in the docstrings of :func:`flows`, :func:`http` and :func:`dns`.
Vectorized (numpy, and pyarrow kernels for strings): a million records take a few seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..io import directions, schema

DAY = 86400.0
FLOW_RECORDS_PER_CONNECTION = 1.9  # a request, and a reply for about 90 % of connections
_ALNUM = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", np.uint8)
_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", np.uint8)
_CONSONANTS = np.frombuffer(b"bcdfghjklmnpqrstvwxz", np.uint8)
_VOWELS = np.frombuffer(b"aeiouy", np.uint8)
_WORDS = pa.array(
    "news shop cloud mail media cdn static img api login account search video music "
    "travel sport weather bank market photo blog forum docs help support store update "
    "portal games maps health food books home office live app data play secure web "
    "social stream files drive learn jobs auto city radio press tech".split()
)
_EXT = pa.array(["", "", ".html", ".js", ".css", ".png", ".jpg", ".json", ".php"])
_TLDS = pa.array(["com", "com", "com", "net", "org", "de", "io", "cz"])
_DGA_TLDS = pa.array(["com", "net", "info", "ru", "biz", "top"])
_AGENTS = pa.array(
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 "
        "Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile",
        "Microsoft-CryptoAPI/10.0",
        "okhttp/4.12.0",
        "curl/8.5.0",
    ]
)
_ODD_AGENTS = pa.array(
    [
        "",
        "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; Trident/4.0)",
        "WinHTTP",
        "Python-urllib/2.7",
        "Go-http-client/1.1",
    ]
)


def synthetic(
    kind: str,
    n_targets: int = 1000,
    malicious_fraction: float = 0.1,
    seed: int = 0,
    difficulty: float = 0.5,
    days: float = 3.0,
    n_records: int | None = None,
):
    """Labelled synthetic records of ``kind`` ('flows', 'http', 'dns'); see the module doc.

    ``n_targets`` targets (bags), ``round(malicious_fraction * n_targets)`` of them malicious;
    ``difficulty`` in [0, 1] sets the class overlap; ``days`` the observation window. About
    80 records per target by default (flows: 150 one-way records); ``n_records`` scales all
    bag sizes (same shape) so the total is about ``n_records``.

    Returns (records, labels): records sorted by time with ``label`` (int8, the target's) and
    ``detailed_label`` ('benign' or the malicious behaviour); labels an int8 Series
    target -> 0/1 over exactly the targets in records. Same seed, same data.
    """
    if kind not in schema.KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {schema.KINDS}")
    if not 0.0 <= difficulty <= 1.0 or not 0.0 <= malicious_fraction <= 1.0:
        raise ValueError("difficulty and malicious_fraction must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    units = (
        None
        if n_records is None
        else n_records / (FLOW_RECORDS_PER_CONNECTION if kind == "flows" else 1)
    )
    targets = _Targets(rng, n_targets, malicious_fraction, difficulty, days, units)
    columns, detail = {"flows": flows, "http": http, "dns": dns}[kind](targets)
    names, owner = columns.pop("_names"), columns.pop("owner", targets.owner)
    bad = targets.malicious[owner]
    records = schema.frame(
        kind,
        {
            **columns,
            "label": bad.astype(np.int8),
            "detailed_label": np.where(bad, detail, "benign"),
        },
    )
    records = records.sort_values("ts", kind="stable", ignore_index=True)
    labels = pd.Series(
        targets.malicious.astype(np.int8),
        index=pd.Index(text(names), name=schema.TARGET[kind]),
        name="label",
    )
    return records, labels.sort_index()


class _Targets:
    """Per-target styles, bag sizes, record owners, clients and timestamps (shared model)."""

    def __init__(self, rng, n, malicious_fraction, difficulty, days, total=None):
        self.rng, self.n, self.days = rng, n, days
        n_mal = int(round(n * malicious_fraction))
        if malicious_fraction > 0 and n_mal == 0 and n > 1:
            n_mal = 1
        self.malicious = np.zeros(n, bool)
        self.malicious[rng.permutation(n)[:n_mal]] = True
        k = min(100.0, 1.7 * (1.0 - difficulty) / max(difficulty, 1e-3))
        self.style = np.where(self.malicious, rng.beta(1 + k, 1, n), rng.beta(1, 1 + k, n))
        size = self.log_lerp(60, 12, sigma=(1.3, 0.8))
        if total is not None:
            size *= total / size.sum()
        self.size = np.maximum(1, np.rint(size)).astype(np.int64)
        self.owner = np.repeat(np.arange(n), self.size)
        self.offsets = np.concatenate([[0], np.cumsum(self.size)])
        self.pos = np.arange(len(self.owner)) - self.offsets[self.owner]

    @property
    def n_records(self) -> int:
        return len(self.owner)

    def mix(self, jitter: float = 0.15) -> np.ndarray:
        """The style seen by one behaviour parameter: m_i plus its own jitter, in [0, 1]."""
        return np.clip(self.style + jitter * self.rng.standard_normal(self.n), 0, 1)

    def lerp(self, benign, malicious) -> np.ndarray:
        """Per-target parameter interpolated between its benign and malicious value."""
        m = self.mix()
        return (1 - m) * benign + m * malicious

    def log_lerp(self, benign, malicious, sigma=(0.0, 0.0)) -> np.ndarray:
        """Per-target log-normal draw whose median and sigma interpolate geometrically."""
        m = self.mix()
        median = np.exp((1 - m) * np.log(benign) + m * np.log(malicious))
        s = (1 - m) * sigma[0] + m * sigma[1]
        return median * np.exp(s * self.rng.standard_normal(self.n))

    def per_record(self, values: np.ndarray, sigma=None) -> np.ndarray:
        """Per-record values around each target's value (log-normal with per-target sigma)."""
        v = values[self.owner]
        if sigma is None:
            return v
        return v * np.exp(sigma[self.owner] * self.rng.standard_normal(self.n_records))

    def chance(self, p_target: np.ndarray) -> np.ndarray:
        """Per-record Bernoulli draws with per-target probabilities."""
        return self.rng.random(self.n_records) < p_target[self.owner]

    def clients(self, pool: int = 5000) -> pa.Array:
        """Client address per record: many (Zipf-like reuse) for benign, few for malicious."""
        n_clients = np.maximum(
            1, np.rint(self.log_lerp(np.maximum(self.size * 0.4, 1), 1.5, sigma=(0.5, 0.4)))
        ).astype(np.int64)
        n_clients = np.minimum(n_clients, self.size)
        local = np.floor(n_clients[self.owner] * self.rng.random(self.n_records) ** 2)
        base = self.rng.integers(0, pool, self.n)
        ids = (base[self.owner] + local.astype(np.int64) * 7919) % pool
        return take(ipv4(0x0A000100 + np.arange(pool)), ids)  # 10.0.1.0 + id

    def times(self, t0: float = 1.7e9) -> np.ndarray:
        """Record timestamps: diurnal over the window, short-lived and beaconing as m -> 1."""
        rng, span = self.rng, self.days * DAY
        life = self.lerp(span, 0.15 * span).clip(600, span)
        start = t0 + rng.random(self.n) * (span - life)
        periodic = self.chance(self.lerp(0.0, 0.95))
        period = np.exp(rng.uniform(np.log(30), np.log(3600), self.n))
        period = np.minimum(period, life / np.maximum(self.size, 1))
        jitter = self.lerp(0.5, 0.05)
        beacon = (self.pos + jitter[self.owner] * rng.standard_normal(self.n_records)) * period[
            self.owner
        ]
        day = np.floor(rng.random(self.n_records) * np.ceil(life[self.owner] / DAY))
        hour = np.where(
            rng.random(self.n_records) < 0.8,
            rng.normal(14, 3.5, self.n_records) % 24,
            rng.uniform(0, 24, self.n_records),
        )
        diurnal = np.minimum(day * DAY + hour * 3600, life[self.owner])
        return start[self.owner] + np.where(periodic, beacon.clip(0, life[self.owner]), diurnal)

    def names(self) -> pa.Array:
        """Unique public-looking IPv4 addresses, one per target."""
        ids = self.rng.choice(np.arange(0x0B000000, 0xDF000000, 97), self.n, replace=False)
        return ipv4(ids)


# -- vectorized strings (pyarrow: C++ kernels, no Python loop over records) ---------------
def take(values: pa.Array, index) -> pa.Array:
    return values.take(pa.array(np.asarray(index, np.int64)))


def pick(rng, vocabulary: pa.Array, n: int) -> pa.Array:
    """``n`` uniform draws from ``vocabulary``."""
    return take(vocabulary, rng.integers(0, len(vocabulary), n))


def join(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and scalars."""
    return pc.binary_join_element_wise(*parts, "")


def where(condition: np.ndarray, a, b) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(condition, bool)), a, b)


def digits(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, np.int64)), pa.string())


def ipv4(ids: np.ndarray) -> pa.Array:
    """Dotted quads of 32-bit integers."""
    ids = np.asarray(ids, np.int64)
    return pc.binary_join_element_wise(*[digits((ids >> s) & 255) for s in (24, 16, 8, 0)], ".")


def random_strings(rng, lengths: np.ndarray, alphabet: np.ndarray) -> pa.Array:
    """One random string per entry of ``lengths`` over ``alphabet`` (uint8 codes)."""
    codes = alphabet[rng.integers(0, len(alphabet), (len(lengths), max(int(lengths.max()), 1)))]
    return _strings(codes, lengths)


def pronounceable(rng, lengths: np.ndarray) -> pa.Array:
    """DGA-style consonant-vowel strings (Simda-like 'lykygur')."""
    width = max(int(lengths.max()), 1)
    cons = _CONSONANTS[rng.integers(0, len(_CONSONANTS), (len(lengths), width))]
    vow = _VOWELS[rng.integers(0, len(_VOWELS), (len(lengths), width))]
    return _strings(np.where(np.arange(width) % 2 == 0, cons, vow).astype(np.uint8), lengths)


def _strings(codes: np.ndarray, lengths: np.ndarray) -> pa.Array:
    codes[np.arange(codes.shape[1]) >= lengths[:, None]] = 0  # numpy bytes drop trailing NULs
    return pa.array(codes.view(f"S{codes.shape[1]}").ravel()).cast(pa.string())


def text(values) -> pd.Series:
    """A pandas ``str`` Series of a string array (zero-copy for arrow)."""
    return pd.Series(values, dtype="str")


def flows(t: _Targets):
    """Flows: target = server IP; a bag of connections, each a request and (if answered) a
    reply record (one-way records, server = the responder, as the readers produce).

    Per target (benign -> malicious style): server port 443/80/8080/22 -> also random high
    ports; reply probability 0.97 -> 0.75 (unanswered C&C attempts: unmatched flows, TCP flags
    'S'); packets per request log-normal median 8 -> 3 with per-target sigma 1.0 -> 0.15
    (varied -> small and uniform); bytes/packet 300 -> 150 (sigma 0.6 -> 0.1); packets per
    reply median 12 -> 3 (sigma 1.3 -> 0.15), bytes/packet 900 -> 200 (sigma 0.5 -> 0.1);
    duration median 2 s -> 0.5 s. 10 % of benign-style servers are UDP services (53, 123).
    """
    rng, n, conns = t.rng, t.n, t.n_records
    names = t.names()
    server = text(take(names, t.owner))
    client = text(t.clients())
    reply_rate = t.lerp(0.97, 0.75).clip(0, 1)
    answered = t.chance(reply_rate)
    udp = rng.random(n) < 0.1 * (1 - t.style)
    port = np.where(
        rng.random(n) < t.lerp(0.05, 0.6),
        rng.integers(1024, 10000, n),
        rng.choice([443, 443, 443, 80, 80, 8080, 22], n),
    )
    port = np.where(udp, rng.choice([53, 123], n), port)[t.owner]
    udp = udp[t.owner]
    sport = rng.integers(49152, 65536, conns)
    sizes = []  # (packets, bytes) of requests, then of replies
    for pkts, pkts_sigma, bpp, bpp_sigma in (
        ((8, 3), (1.0, 0.15), (300, 150), (0.6, 0.1)),
        ((12, 3), (1.3, 0.15), (900, 200), (0.5, 0.1)),
    ):
        p = np.maximum(
            1, np.rint(t.per_record(t.log_lerp(*pkts, (0.4, 0.1)), t.lerp(*pkts_sigma)))
        ).astype(np.int64)
        b = np.clip(t.per_record(t.log_lerp(*bpp, (0.3, 0.1)), t.lerp(*bpp_sigma)), 40, 1500)
        sizes.append((p, np.rint(p * b).astype(np.int64)))
    flags = np.where(udp, "", "SAPF")
    out, _ = directions.one_way(
        dict(
            ts=t.times(),
            proto=np.where(udp, "udp", "tcp"),
            duration=t.per_record(t.log_lerp(2.0, 0.5, (0.8, 0.2)), t.lerp(1.0, 0.3)),
            owner=t.owner,
            src=client,
            dst=server,
            sport=sport,
            dport=port,
            request_pkts=sizes[0][0],
            request_bytes=sizes[0][1],
            reply_pkts=sizes[1][0],
            reply_bytes=sizes[1][1],
            request_flags=np.where(answered | udp, flags, "S"),
            reply_flags=flags,
        ),
        {
            "pkts": ("request_pkts", "reply_pkts"),
            "bytes": ("request_bytes", "reply_bytes"),
            "flags": ("request_flags", "reply_flags"),
        },
        keep_empty=True,
        shared=("owner",),
        backward=answered,
    )
    return out | {"_names": names}, "c&c"


def http(t: _Targets):
    """HTTP: target = server IP; one record per request.

    Per target (benign -> malicious style): Host is a word-based name, -> a DGA-like name or the
    bare IP; paths: words with file extensions (new on every request) -> a few fixed
    random-looking paths ('/x7f3k9q2.php'); query: none or 'id=..&lang=..' -> base64 blobs
    ('d=aGVsbG8...'); method POST share 0.1 -> 0.7; user agent from a browser pool per request
    -> one odd agent per target ('' or MSIE 6); referrer present 60 % -> 5 %; bytes_in
    log-normal median 5 kB (sigma 1.5) -> 200 B (sigma 0.3); bytes_out: POST bodies median
    800 B -> 300 B; status 200/304/404/302 -> 200/404.
    """
    rng, n, N = t.rng, t.n, t.n_records
    names = t.names()
    dga = rng.random(n) < t.lerp(0.0, 0.8)
    word_host = join(pick(rng, _WORDS, n), "-", pick(rng, _WORDS, n), ".", pick(rng, _TLDS, n))
    dga_host = join(pronounceable(rng, rng.integers(6, 12, n)), ".", pick(rng, _DGA_TLDS, n))
    host = where(dga, where(rng.random(n) < 0.3, names, dga_host), word_host)
    fixed = join(
        "/",
        random_strings(rng, rng.integers(6, 17, 3 * n), _ALNUM),
        where(rng.random(3 * n) < 0.5, ".php", ""),
    )  # 3 fixed paths per target
    word_path = join("/", pick(rng, _WORDS, N), "/", pick(rng, _WORDS, N), pick(rng, _EXT, N))
    path = where(
        t.chance(t.lerp(0.03, 0.9)), take(fixed, 3 * t.owner + rng.integers(0, 3, N)), word_path
    )
    blob = join("d=", random_strings(rng, 4 * rng.integers(4, 17, N), _B64))
    plain = join(
        "id=",
        digits(rng.integers(1, 100000, N)),
        "&lang=",
        pick(rng, pa.array(["en", "de", "cs", "fr"]), N),
    )
    query = where(t.chance(t.lerp(0.05, 0.8)), blob, where(rng.random(N) < 0.3, plain, ""))
    post = t.chance(t.lerp(0.1, 0.7))
    agent = where(
        t.chance(t.lerp(0.02, 0.95)),
        take(pick(rng, _ODD_AGENTS, n), t.owner),
        pick(rng, _AGENTS, N),
    )
    referrer = where(t.chance(t.lerp(0.6, 0.05)), join("http://", take(host, t.owner), "/"), "")
    bytes_in = t.per_record(t.log_lerp(5000, 200, (0.5, 0.2)), t.lerp(1.5, 0.3))
    bytes_out = np.where(post, t.per_record(t.log_lerp(800, 300, (0.5, 0.1)), t.lerp(1.0, 0.2)), 0)
    status = np.where(t.chance(t.lerp(0.15, 0.3)), rng.choice([304, 404, 302, 404], N), 200)
    return {
        "_names": names,
        "ts": t.times(),
        "client": t.clients(),
        "server": take(names, t.owner),
        "host": take(host, t.owner),
        "path": path,
        "query": query,
        "method": np.where(post, "POST", "GET"),
        "user_agent": agent,
        "bytes_out": np.rint(bytes_out).astype(np.int64),
        "bytes_in": np.rint(bytes_in).astype(np.int64),
        "referrer": referrer,
        "status": status.astype(np.int64),
    }, "c&c"


def dns(t: _Targets):
    """DNS: target = queried domain; one record per resolution seen below a resolver.

    Per target (benign -> malicious style): name word-based ('shop-news.com', some with a
    'www'/'cdn'/'api' label) -> DGA-like ('lykygur.info') with probability 0 -> 0.85;
    lifetime the whole window -> a few hours (shared model); NXDOMAIN share 0.02 -> 0.35 (no
    answers); 1-2 -> 1-6 answers per record, consecutive addresses of a per-domain pool of 2
    -> 300 (stable answers -> fast flux: a random rotation of many distinct IPs on every
    record); TTL per domain 300 s - 1 day (log-uniform), seen counting down in cached answers
    half of the time -> low (10-300 s) and redrawn on every record (changing TTLs). 15 % of
    benign-style domains are CDN-like: low TTLs and rotating pools (the benign side of the
    overlap). qtype A, else AAAA (35 % -> 10 %).
    """
    rng, n, N = t.rng, t.n, t.n_records
    dga = rng.random(n) < t.lerp(0.0, 0.85)
    word = join(
        pick(rng, pa.array(["", "", "", "", "", "", "www.", "cdn.", "api."]), n),
        pick(rng, _WORDS, n),
        "-",
        pick(rng, _WORDS, n),
        ".",
        pick(rng, _TLDS, n),
    )
    names = where(
        dga, join(pronounceable(rng, rng.integers(6, 13, n)), ".", pick(rng, _DGA_TLDS, n)), word
    )
    duplicate = pd.Series(names.to_numpy(zero_copy_only=False)).duplicated().to_numpy()
    names = join(names, where(duplicate, digits(np.arange(n)), ""))  # unique domains
    cdn = rng.random(n) < 0.15 * (1 - t.style)
    flux = np.maximum(t.lerp(0.0, 1.0), 0.6 * cdn)
    nx = t.chance(t.lerp(0.02, 0.35))
    n_answers = np.where(nx, 0, 1 + np.floor(rng.random(N) * (1 + 5 * flux[t.owner]))).astype(
        np.int64
    )
    pool = np.rint(np.exp((1 - flux) * np.log(2) + flux * np.log(300))).astype(np.int64)
    record = np.repeat(np.arange(N), n_answers)
    offsets = np.concatenate([[0], np.cumsum(n_answers)])
    rotation = np.where(flux[t.owner] > 0.3, rng.integers(0, 1 << 20, N), 0)
    slot = (rotation[record] + np.arange(len(record)) - offsets[record]) % pool[t.owner][record]
    base = rng.integers(0, 1 << 24, n)
    aaaa = t.chance(t.lerp(0.35, 0.1))
    addresses = ipv4(0x0B000000 + (base[t.owner][record] + slot * 131) % 0xD0000000)
    addresses = where(aaaa[record], join("::ffff:", addresses), addresses)  # IPv4-mapped
    ts = t.times()
    ttl_domain = np.exp(rng.uniform(np.log(300), np.log(DAY), n))[t.owner]
    low = (rng.random(n) < np.maximum(t.lerp(0.0, 1.0), cdn))[t.owner]
    ttl = np.where(
        low,
        rng.uniform(10, 300, N),
        np.where(rng.random(N) < 0.5, ttl_domain - np.mod(ts, ttl_domain), ttl_domain),
    )
    ttls = np.repeat(np.maximum(np.rint(ttl), 0).astype(np.int64), n_answers)
    offsets = pa.array(offsets, pa.int64())
    return {
        "_names": names,
        "ts": ts,
        "client": t.clients(),
        "query": take(names, t.owner),
        "qtype": np.where(aaaa, "AAAA", "A"),
        "rcode": np.where(nx, "NXDOMAIN", "NOERROR"),
        "answers": _lists(pa.LargeListArray.from_arrays(offsets, addresses)),
        "ttls": _lists(pa.LargeListArray.from_arrays(offsets, pa.array(ttls))),
    }, "dga/fast-flux"


def _lists(values: pa.Array) -> np.ndarray:
    """Object array of python lists (pyarrow builds them in C++)."""
    out = np.empty(len(values), object)
    out[:] = values.to_pylist()
    return out
