"""Passive-DNS features, EXPOSURE-derived (METHOD.md §7.3): about 20 values per bag or draw.

A bag is every record whose query is the target domain; a record carries the answers of that
query (IP addresses or names such as CNAME targets) with one TTL each. Definitions, for the
records of one draw (all of the bag for the originals); ``W`` = ``window_hours`` (8):

Temporal (hourly series: hour ``h = floor((ts - first_ts) / 3600)`` relative to the draw's first
record, ``L = floor(lifetime_h) + 1`` hours, empty hours included):

1. ``bag_flag_short_life`` = 1[lifetime_h < ``short_life_hours`` (72)], lifetime_h =
   (last_ts - first_ts) / 3600; ``bag_ratio_lifetime`` = lifetime / monitoring period. The
   period is ``monitoring_period`` (seconds) or learnt by :meth:`DnsFeatures.fit` as the span of
   the training records; the ratio is 0 when that span is 0 and not clipped at 1.
2. ``day_mean_distance``: every UTC calendar day with a query gives its 24 hourly counts,
   z-normalised (population std; std 0 -> zeros); the mean Euclidean distance over all pairs of
   days (0 with fewer than two days).
3. CUSUM change points on the hourly series (``P = count / max count``): at every hour
   ``t in [1, L)``, ``P-`` is the mean of ``P`` over ``[max(0, t-W), t)`` and ``P+`` over
   ``[t, min(L, t+W))``, ``d = |P+ - P-|``, ``S = max(0, S + d - local_max)``; ``S > cusum_max``
   is a change point at ``t``: ``S`` is reset to 0 and held there for the next ``W - 1`` hours
   (no detection before ``t + W``). ``hour_count_changepoints`` and
   ``hour_std_changepoint_gaps`` (population std of the hours between consecutive change
   points; 0 with fewer than two change points).
4. ``hour_ratio_active``: hours with a query / L.

Answers (``address`` = an answer that parses as an IPv4/IPv6 address, compared in canonical form):

5. ``answer_nunique_ip``: distinct addresses.
6. ``answer_nunique_country``: distinct countries of those addresses, only with ``geoip`` (a
   MaxMind ``.mmdb`` read with ``maxminddb``, or a CSV of ``prefix,country`` rows, header
   optional, longest prefix wins; see :mod:`alchemy_torch.io.geoip`, read by :meth:`fit`);
   addresses without a country are not counted. Without ``geoip`` the feature is dropped and
   the first :meth:`fit` warns.
7. ``ip_nunique_other_domains``: distinct domains other than the target that resolved to any of
   the draw's addresses, in the IP -> domains index that :meth:`DnsFeatures.fit` builds from the
   training bags (GLOBAL: the index does not shrink with the draw). Addresses never seen in
   training add nothing.

TTL (over the known TTLs of address answers; of every answer with
``include_cname_ttls=True``; a TTL of -1 is unknown and not counted):

8. ``answer_mean_ttl``, ``answer_std_ttl`` (population std).
9. ``answer_nunique_ttl``: distinct TTL values.
10. ``record_changes_ttl``: per record the minimum of those TTLs (records without one are
    skipped); the number of consecutive records, in time order, whose values differ.
11. ``answer_frac_ttl_{lo}_{hi}``: fractions of the TTLs in [0,1), [1,10), [10,100), [100,300),
    [300,900), [900,inf) (6 values).

Domain:

12. ``name_ratio_digits``: digits / characters of the registered-domain label (the label left
    of the public suffix; ``name_scope="fqdn"``: the whole name without dots). Public suffixes
    come from the Public Suffix List shipped by the ``publicsuffixlist`` package (offline):
    its ICANN section by default (``co.uk``, ``k12.ca.us``, ``in-addr.arpa``), the private
    section too with ``private_suffixes=True`` (``cloudfront.net``, ``s3.amazonaws.com``, ...).
    Unlisted top-level labels count as one-label suffixes; a name that is itself a public
    suffix (``co.uk``) or a single label (``wpad``) gives its first label.

EXPOSURE's optional reverse-DNS and longest-meaningful-substring features need external lookups
or a dictionary and are not implemented.

Empty and tiny bags: every statistic of an empty draw is 0 (the invariant name feature keeps its
value); a one-record draw has lifetime 0, one active hour, no day pair and no change point. All
values are finite.

Vectorization: per-answer values (is it an address, its canonical form, country, index entry)
are computed once per unique answer string of the vocabulary and cached on the Bags, as is the
per-record minimum TTL. Rows of a draw are in time order (the Draws contract). The CUSUM
recursion is sequential in time: it loops over hour steps, vectorized over all draws, and visits
only the hours near a query (from ``W - 1`` before to ``W + ceil(cusum_max / local_max) + 1``
after an active hour; elsewhere ``d = 0`` and ``S`` is exactly 0), so the loop runs at most
min(longest lifetime, about 28 x the most active hours of one draw) times and its total work is
O(active hours x 28). Daily similarity costs O(sum over draws of days^2 x 24) and feature 7
O(sum over draws of the index lists of their addresses); both run in chunks bounded by
``chunk_records``.
"""

from __future__ import annotations

import functools
import math
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from publicsuffixlist import PublicSuffixList
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.features.base import (
    Behaviour,
    Feature,
    FeatureExtractor,
    Segments,
    require_choice,
    require_integer,
)
from alchemy_torch.io.addresses import canonical_addresses
from alchemy_torch.io.geoip import GeoIP
from alchemy_torch.ops import segment as seg

__all__ = ["DnsFeatures", "TTL_EDGES"]

#: The time alignment of the features that read absolute time (``Feature.clock``).
CLOCK_SHARED = "one clock for all training records: epoch, or align_time='capture'"
CLOCK_EPOCH_DAYS = "epoch: UTC calendar days (align_time='capture': 24 h from capture start)"

#: TTL range edges of feature 11 (seconds).
TTL_EDGES = (0.0, 1.0, 10.0, 100.0, 300.0, 900.0, math.inf)

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24  # the length of a day vector (feature 2)


@dataclass
class _Index:
    """IP -> domains of the training corpus: CSR over ``ips`` (sorted canonical strings)."""

    ips: np.ndarray  # (I,) canonical address strings
    domains: np.ndarray  # (T,) training domains
    offsets: Tensor  # (I+1,) int64
    domain_ids: Tensor  # (E,) int64, sorted within each ip
    keys: Tensor  # (E,) int64 ip * len(domains) + domain, sorted
    token: str  # identifies this fit in per-Bags caches
    copies: dict = field(default_factory=dict, repr=False)  # device -> this index there

    def on(self, device: torch.device) -> "_Index":
        """This index with its tensors on ``device`` (copied once per device)."""
        if device not in self.copies:
            self.copies[device] = _Index(
                self.ips,
                self.domains,
                self.offsets.to(device),
                self.domain_ids.to(device),
                self.keys.to(device),
                self.token,
            )
        return self.copies[device]


class DnsFeatures(FeatureExtractor):
    """EXPOSURE-derived passive-DNS features; see the module docstring for the definitions.

    Options: ``geoip`` (path to a ``.mmdb`` or a ``prefix,country`` CSV, read by :meth:`fit`;
    without it the country feature is dropped and the first :meth:`fit` warns),
    ``monitoring_period`` (seconds; default learnt in :meth:`fit`), ``short_life_hours`` (72),
    ``window_hours`` (8), ``local_max`` (0.1), ``cusum_max`` (1.0), ``include_cname_ttls``
    (False), ``name_scope`` (``"registered"`` or ``"fqdn"``), ``private_suffixes`` (False:
    the Public Suffix List's ICANN section only), ``chunk_records`` and ``dtype`` (see
    :class:`FeatureExtractor`). :meth:`fit` must run before extraction: it learns
    ``period_``, the IP -> domains ``index_`` and loads ``geoip_``.
    """

    kind = "dns"
    corpus_context = True
    NAME_SCOPES = ("registered", "fqdn")

    def __init__(
        self,
        geoip: str | Path | None = None,
        monitoring_period: float | None = None,
        short_life_hours: float = 72.0,
        window_hours: int = 8,
        local_max: float = 0.1,
        cusum_max: float = 1.0,
        include_cname_ttls: bool = False,
        name_scope: str = "registered",
        private_suffixes: bool = False,
        chunk_records: int = seg.CHUNK_RECORDS,
        dtype: str | torch.dtype = "float64",
    ):
        super().__init__(chunk_records, dtype)
        require_choice("name_scope", name_scope, self.NAME_SCOPES)
        if monitoring_period is not None and not monitoring_period > 0:
            raise ValueError(f"monitoring_period must be > 0 seconds, got {monitoring_period!r}")
        if not short_life_hours > 0:
            raise ValueError(f"short_life_hours must be > 0, got {short_life_hours!r}")
        require_integer("window_hours", window_hours, 1)
        if not (local_max > 0 and cusum_max > 0):
            raise ValueError(
                f"local_max and cusum_max must be > 0, got {local_max!r}, {cusum_max!r}"
            )
        self._keep(locals())

    # ------------------------------------------------------------------ declaration
    @property
    def features(self) -> list[Feature]:
        b = Behaviour
        ttl = "TTLs of " + ("all answers" if self.include_cname_ttls else "address answers")
        out = [
            Feature(
                "bag_flag_short_life",
                b.RATE_SENSITIVE,
                f"1 if lifetime < {self.short_life_hours:g} h",
            ),
            Feature(
                "bag_ratio_lifetime",
                b.RATE_SENSITIVE,
                "lifetime / monitoring period",
                clock=CLOCK_SHARED if self.monitoring_period is None else "",
            ),
            Feature(
                "day_mean_distance",
                b.SPREAD,
                "mean Euclidean distance between z-normalised 24-h day vectors",
                clock=CLOCK_EPOCH_DAYS,
            ),
            Feature(
                "hour_count_changepoints",
                b.RATE_SENSITIVE,
                "CUSUM change points of the hourly series",
            ),
            Feature(
                "hour_std_changepoint_gaps",
                b.SPREAD,
                "std of the hours between consecutive change points",
            ),
            Feature("hour_ratio_active", b.RATE_SENSITIVE, "hours with a query / lifetime hours"),
            Feature(
                "answer_nunique_ip", b.RATE_SENSITIVE, "distinct IP addresses among the answers"
            ),
        ]
        if self.geoip is not None:
            out.append(
                Feature(
                    "answer_nunique_country",
                    b.RATE_SENSITIVE,
                    "distinct countries of those IPs (GeoIP)",
                )
            )
        out += [
            Feature(
                "ip_nunique_other_domains",
                b.GLOBAL,
                "other training domains resolving to any of those IPs",
            ),
            Feature("answer_mean_ttl", b.CENTRED, f"mean of the {ttl}"),
            Feature("answer_std_ttl", b.SPREAD, f"std of the {ttl}"),
            Feature("answer_nunique_ttl", b.RATE_SENSITIVE, f"distinct {ttl}"),
            Feature(
                "record_changes_ttl",
                b.RATE_SENSITIVE,
                "changes of the per-record minimum TTL in time order",
            ),
        ]
        for lo, hi in zip(TTL_EDGES[:-1], TTL_EDGES[1:]):
            out.append(
                Feature(
                    f"answer_frac_ttl_{lo:g}_{hi:g}",
                    b.CENTRED,
                    f"fraction of {ttl} in [{lo:g}, {hi:g})",
                )
            )
        scope = (
            "registered-domain label" if self.name_scope == "registered" else "FQDN without dots"
        )
        out.append(Feature("name_ratio_digits", b.INVARIANT, f"digits / characters of the {scope}"))
        return out

    # ------------------------------------------------------------------ fit
    def fit(self, bags: Bags) -> "DnsFeatures":
        """Learn the monitoring period (unless given), the IP -> domains index: TRAINING bags.

        Also reads the ``geoip`` database; without one the first fit warns that the country
        feature is dropped.
        """
        self._check_kind(bags)
        if self.geoip is None and not hasattr(self, "geoip_"):
            warnings.warn(
                "DnsFeatures: no geoip database given, so 'answer_nunique_country' (number of "
                "distinct countries) is dropped; pass geoip=PATH (.mmdb or prefix,country CSV)",
                UserWarning,
                stacklevel=2,
            )
        self.geoip_ = None if self.geoip is None else GeoIP(self.geoip)
        ts = bags.columns["ts"]
        self.period_ = (
            float(self.monitoring_period)
            if self.monitoring_period is not None
            else float(ts.max() - ts.min())
        )
        ip_of_answer, ip_names = _answer_ips(bags)
        items = bags.ragged["answers"].numel()
        record = seg.segment_ids(bags.ragged_offsets, items)
        domain = seg.segment_ids(bags.offsets, bags.num_records)[record]
        ip = ip_of_answer[bags.ragged["answers"]]
        keep = ip >= 0
        pairs = torch.unique(ip[keep] * len(bags) + domain[keep]).cpu()  # sorted by (ip, domain)
        used, ip_compact = torch.unique(
            torch.div(pairs, len(bags), rounding_mode="floor"), return_inverse=True
        )
        domain_ids = pairs % len(bags)
        self.index_ = _Index(
            ips=ip_names[used.numpy()],
            domains=bags.targets,
            offsets=seg.offsets_from_lengths(torch.bincount(ip_compact, minlength=used.numel())),
            domain_ids=domain_ids,
            keys=ip_compact * len(bags) + domain_ids,
            token=uuid.uuid4().hex,
        )
        return self

    # ------------------------------------------------------------------ compute
    def compute(self, segments: Segments) -> Tensor:
        if not hasattr(self, "index_"):
            raise RuntimeError(
                "DnsFeatures is not fitted: call extractor.fit(train_bags) first (it learns the "
                "IP -> domains index of 'ip_nunique_other_domains' and the monitoring period)"
            )
        offsets, ids = segments.offsets, segments.ids
        ts = segments.column("ts")
        first, last = seg.segment_min(ts, offsets), seg.segment_max(ts, offsets)
        nonempty = offsets.diff() > 0
        span = last - first
        cols = [
            nonempty & (span / SECONDS_PER_HOUR < self.short_life_hours),
            span / self.period_ if self.period_ > 0 else torch.zeros_like(span),
            # a day pair materialises HOURS_PER_DAY values per day
            _daily_distance(ts, ids, offsets, max(1, self.chunk_records // HOURS_PER_DAY)),
        ]
        lifetime = torch.where(nonempty, torch.floor(span / SECONDS_PER_HOUR).long() + 1, 0)
        cols += self._hourly(ts, ids, first, lifetime)
        cols += self._answers(segments, ids)
        digits = _name_digit_ratio(segments.bags, self.name_scope, self.private_suffixes)
        cols.append(digits[segments.owner])
        return torch.stack([c.to(torch.float64) for c in cols], dim=1)

    def _hourly(self, ts: Tensor, ids: Tensor, first: Tensor, lifetime: Tensor) -> list[Tensor]:
        """Features 3 and 4 from the active hours relative to each draw's first record.

        ``lifetime``: (P,) int64 hours of every draw (0 when empty).
        """
        n_draws = lifetime.numel()
        hour = torch.floor((ts - first[ids]) / SECONDS_PER_HOUR).long()
        hours = seg.run_offsets(ids, hour)  # the active hours of every draw
        bin_draw, bin_hour = ids[hours[:-1]], hour[hours[:-1]]
        bin_offsets = seg.offsets_from_ids(bin_draw, n_draws)
        n_cp, gap_std = self._changepoints(bin_draw, bin_hour, hours.diff(), bin_offsets, lifetime)
        return [n_cp, gap_std, bin_offsets.diff().to(torch.float64) / lifetime.clamp(min=1)]

    def _changepoints(
        self,
        bin_draw: Tensor,
        bin_hour: Tensor,
        counts: Tensor,
        bin_offsets: Tensor,
        lifetime: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """(P,) number of CUSUM change points and (P,) std of the gaps between them.

        Active hours: (H,) draw, hour and count, sorted by (draw, hour), CSR ``bin_offsets``.
        """
        n_draws, w = lifetime.numel(), self.window_hours
        zeros = torch.zeros(n_draws, dtype=torch.float64, device=lifetime.device)
        # steps [1, L) where d != 0 (within W of an active hour), each followed by the steps that
        # bring S back to exactly 0; merged per draw into runs of consecutive steps
        decay = math.ceil(self.cusum_max / self.local_max) + 1
        lo = (bin_hour - w + 1).clamp(min=1)
        hi = torch.minimum(bin_hour + w + decay, lifetime[bin_draw] - 1)
        ok = lo <= hi
        run_draw, lo, hi = bin_draw[ok], lo[ok], hi[ok]
        if run_draw.numel() == 0:
            return zeros, zeros
        new = torch.ones(run_draw.numel(), dtype=torch.bool, device=run_draw.device)
        new[1:] = (run_draw[1:] != run_draw[:-1]) | (
            lo[1:] > hi[:-1] + 1
        )  # lo, hi non-decreasing per draw
        first = seg.nonzero(new)
        last = torch.cat([first[1:], first.new_full((1,), new.numel())]) - 1
        run_lo, run_len = lo[first], hi[last] - lo[first] + 1
        t = seg.expand_ranges(run_lo, run_len)
        run_of_step = seg.segment_ids(seg.offsets_from_lengths(run_len), t.numel())
        step_draw = run_draw[first][run_of_step]

        # window sums: the counts of every run laid out densely with W empty hours on each side
        # (no other active hour of the draw can fall in a window of the run's steps)
        padded = run_len + 2 * w
        origin = torch.cumsum(padded, 0) - padded + w - run_lo  # position of hour h = origin + h
        dense = torch.zeros(int(padded.sum()), dtype=torch.int64, device=t.device)
        run_of_bin = new.cumsum(0) - 1
        dense[origin[run_of_bin] + bin_hour[ok]] = counts[ok]
        cum = torch.cat([dense.new_zeros(1), dense.cumsum(0)]).to(
            torch.float64
        )  # exact: integer sums
        pos = origin[run_of_step] + t
        n_minus = t.clamp(max=w).to(torch.float64)
        n_plus = (lifetime[step_draw] - t).clamp(max=w).to(torch.float64)
        peak = seg.segment_max(counts, bin_offsets)[step_draw]
        d = ((cum[pos + w] - cum[pos]) / n_plus - (cum[pos] - cum[pos - w]) / n_minus).abs() / peak

        cp = seg.nonzero(self._cusum(d, t, seg.offsets_from_ids(step_draw, n_draws)))
        cp_offsets = seg.offsets_from_ids(step_draw[cp], n_draws)
        gaps, gap_offsets = seg.segment_diff(t[cp].to(torch.float64), cp_offsets)
        return cp_offsets.diff().to(torch.float64), seg.segment_std(gaps, gap_offsets, correction=0)

    def _cusum(self, d: Tensor, t: Tensor, step_offsets: Tensor) -> Tensor:
        """(T,) bool change-point flags of the steps (CSR per draw); one loop step per index."""
        device, w = d.device, self.window_hours
        lengths = step_offsets.diff()
        order = torch.argsort(lengths, descending=True, stable=True)
        start = step_offsets[:-1][order]
        longest = int(lengths.max())
        active = (
            lengths.numel() - torch.bincount(lengths, minlength=longest + 1).cumsum(0)[:longest]
        ).tolist()
        level = torch.zeros(lengths.numel(), dtype=torch.float64, device=device)
        last = torch.full((lengths.numel(),), -w, dtype=torch.int64, device=device)
        flags = torch.zeros(d.numel(), dtype=torch.bool, device=device)
        for j, n in enumerate(active):
            idx = start[:n] + j
            tj = t[idx]
            s = (level[:n] + d[idx] - self.local_max).clamp(min=0.0)
            s = torch.where(
                tj < last[:n] + w, torch.zeros_like(s), s
            )  # held at 0 after a change point
            hit = s > self.cusum_max
            level[:n] = torch.where(hit, torch.zeros_like(s), s)
            last[:n] = torch.where(hit, tj, last[:n])
            flags[idx] = hit
        return flags

    def _answers(self, segments: Segments, ids: Tensor) -> list[Tensor]:
        """Features 5-11 from the answers of the draws' records."""
        bags, n_draws = segments.bags, len(segments)
        items, record_items = seg.csr_gather(bags.ragged_offsets, segments.rows)
        item_offsets = record_items[segments.offsets]
        item_draw = seg.segment_ids(item_offsets, items.numel())
        ip = _answer_ips(bags)[0][bags.ragged["answers"][items]]
        address = ip >= 0

        ip_draw, ip = _distinct_pairs(item_draw[address], ip[address])
        cols = [torch.bincount(ip_draw, minlength=n_draws)]
        if self.geoip_ is not None:
            country = _ip_countries(bags, self.geoip_)[ip]
            known = country >= 0
            cols.append(
                torch.bincount(
                    _distinct_pairs(ip_draw[known], country[known])[0], minlength=n_draws
                )
            )
        cols.append(self._other_domains(bags, ip_draw, ip, segments.owner))

        ttl = bags.ragged["ttls"][items]
        counted = ttl >= 0 if self.include_cname_ttls else (ttl >= 0) & address
        ttl, ttl_draw = ttl[counted], item_draw[counted]
        ttl_offsets = seg.offsets_from_ids(ttl_draw, n_draws)
        distinct_ttls = torch.bincount(_distinct_pairs(ttl_draw, ttl)[0], minlength=n_draws)
        ttl = ttl.to(torch.float64)
        cols += [
            seg.segment_mean(ttl, ttl_offsets),
            seg.segment_std(ttl, ttl_offsets, correction=0),
            distinct_ttls,
        ]

        record_ttl, has = _record_min_ttl(bags, self.include_cname_ttls)
        has = has[segments.rows]
        diffs, diff_offsets = seg.segment_diff(
            record_ttl[segments.rows][has], seg.offsets_from_ids(ids[has], n_draws)
        )
        cols.append(seg.segment_sum((diffs != 0).to(torch.float64), diff_offsets))

        edges = torch.tensor(TTL_EDGES, dtype=torch.float64, device=bags.device)
        hist = seg.segment_histogram(ttl, ttl_offsets, edges).to(torch.float64)
        return cols + list((hist / ttl_offsets.diff().clamp(min=1).unsqueeze(1)).unbind(1))

    def _other_domains(self, bags: Bags, draw: Tensor, ip: Tensor, owner: Tensor) -> Tensor:
        """(P,) distinct index domains, other than the draw's own, of its distinct addresses."""
        n_draws, device = owner.numel(), owner.device
        index = self.index_.on(device)
        ip_to_index, own_domain = _index_lookup(bags, index)
        ip = ip_to_index[ip]
        keep = ip >= 0
        draw, ip = draw[keep], ip[keep]
        degree = index.offsets.diff()[ip]
        # is the draw's own domain on the address? binary search of (ip, own) in the sorted index
        own = own_domain[owner[draw]]
        probe = ip * max(len(index.domains), 1) + own.clamp(min=0)
        pos = torch.searchsorted(index.keys, probe).clamp(max=index.keys.numel() - 1)
        found = (own >= 0) & (index.keys[pos] == probe)
        useful = ~(found & (degree == 1))  # an address of the own domain only adds nothing
        draw, ip, degree, found = draw[useful], ip[useful], degree[useful], found[useful]
        own_in = torch.zeros(n_draws, dtype=torch.int64, device=device)
        own_in[draw[found]] = 1
        # union sizes: one address -> its degree; several -> distinct domains of the expanded lists
        union = torch.zeros(n_draws, dtype=torch.int64, device=device)
        single = torch.bincount(draw, minlength=n_draws)[draw] == 1
        union[draw[single]] = degree[single]
        several = ~single
        if bool(several.any()):
            union += _union_sizes(
                draw[several], ip[several], degree[several], index, n_draws, self.chunk_records
            )
        return (union - own_in).to(torch.float64)


# ---------------------------------------------------------------------- helpers
def _daily_distance(ts: Tensor, ids: Tensor, offsets: Tensor, pairs_per_chunk: int) -> Tensor:
    """(P,) mean Euclidean distance between the z-normalised UTC-day vectors of each draw."""
    n_draws, device = offsets.numel() - 1, ts.device
    hour = torch.floor(ts / SECONDS_PER_HOUR).long()
    hours = seg.run_offsets(ids, hour)  # the active UTC hours of every draw
    counts = hours.diff().to(torch.float64)
    hour_draw, hour = ids[hours[:-1]], hour[hours[:-1]]
    day = torch.div(hour, HOURS_PER_DAY, rounding_mode="floor")
    days = seg.run_offsets(hour_draw, day)
    n_days = days.numel() - 1
    vectors = torch.zeros(n_days, HOURS_PER_DAY, dtype=torch.float64, device=device)
    vectors[seg.segment_ids(days, hour.numel()), hour - HOURS_PER_DAY * day] = counts
    std = vectors.std(1, correction=0, keepdim=True)
    z = torch.where(
        std > 0, (vectors - vectors.mean(1, keepdim=True)) / torch.where(std > 0, std, 1.0), 0.0
    )
    day_draw = hour_draw[days[:-1]]
    day_offsets = seg.offsets_from_ids(day_draw, n_draws)
    partners = (
        day_offsets[1:][day_draw] - torch.arange(n_days, device=device) - 1
    )  # later days of the draw
    total = torch.zeros(n_draws, dtype=torch.float64, device=device)
    bounds = seg.chunk_bounds(partners, pairs_per_chunk)
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        count = partners[r0:r1]
        i = torch.repeat_interleave(torch.arange(r0, r1, device=device), count)
        j = i + 1 + seg.expand_ranges(torch.zeros_like(count), count)
        total.index_add_(0, day_draw[i], (z[i] - z[j]).pow(2).sum(1).sqrt())
    n = day_offsets.diff().to(torch.float64)
    return total / (n * (n - 1) / 2).clamp(min=1)


def _union_sizes(
    draw: Tensor, ip: Tensor, degree: Tensor, index: _Index, n_draws: int, entries_per_chunk: int
) -> Tensor:
    """(P,) distinct domains in the index lists of (draw, ip) pairs sorted by draw, chunked."""
    out = torch.zeros(n_draws, dtype=torch.int64, device=draw.device)
    bounds = seg.chunk_bounds(degree, entries_per_chunk, allowed=seg.run_starts(draw))
    for a, b in zip(bounds[:-1], bounds[1:]):
        entries, _ = seg.csr_gather(index.offsets, ip[a:b])
        entry_draw = torch.repeat_interleave(draw[a:b], degree[a:b], output_size=entries.numel())
        out += torch.bincount(
            _distinct_pairs(entry_draw, index.domain_ids[entries])[0], minlength=n_draws
        )
    return out


def _distinct_pairs(segment_of: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct (segment, value) pairs of two (N,) int64 tensors, sorted by segment then value.

    One sort of a combined key when it fits in int64, else a two-pass stable sort.
    """
    if segment_of.numel() == 0:
        return segment_of, values
    low = values.min()
    width = int(values.max() - low) + 1
    if width * (int(segment_of.max()) + 1) < 2**62:
        key = torch.unique(segment_of * width + (values - low))
        return torch.div(key, width, rounding_mode="floor"), key % width + low
    order = torch.argsort(values, stable=True)
    order = order[torch.argsort(segment_of[order], stable=True)]
    segment_of, values = segment_of[order], values[order]
    start = seg.run_starts(segment_of, values)
    return segment_of[start], values[start]


def _answer_ips(bags: Bags) -> tuple[Tensor, np.ndarray]:
    """(V,) canonical-address id of every answer string (-1: not an address) and the addresses."""

    def build():
        ids, addresses = pd.factorize(canonical_addresses(bags.vocab["answer"]))  # None -> -1
        ids = torch.from_numpy(ids.astype(np.int64)).to(bags.device)
        return ids, np.asarray(addresses, dtype=object)

    return bags.cached("dns:answer_ip", build)


def _record_min_ttl(bags: Bags, all_answers: bool) -> tuple[Tensor, Tensor]:
    """(N,) int64 minimum TTL of every record's (address) answers and (N,) bool: has one."""

    def build():
        ttl = bags.ragged["ttls"]
        record = seg.segment_ids(bags.ragged_offsets, ttl.numel())
        counted = ttl >= 0  # an unknown TTL (-1, e.g. EVE 'grouped' answers) is no TTL
        if not all_answers:
            counted &= _answer_ips(bags)[0][bags.ragged["answers"]] >= 0
        ttl, record = ttl[counted], record[counted]
        out = torch.zeros(bags.num_records, dtype=torch.int64, device=bags.device)
        out.scatter_reduce_(0, record, ttl, reduce="amin", include_self=False)
        return out, torch.bincount(record, minlength=bags.num_records) > 0

    return bags.cached(f"dns:record_min_ttl:{all_answers}", build)


def _index_lookup(bags: Bags, index: _Index) -> tuple[Tensor, Tensor]:
    """(canonical address -> index ip id, target -> index domain id), -1 when absent."""

    def build():
        _, addresses = _answer_ips(bags)
        ip = (
            pd.Index(index.ips).get_indexer(addresses)
            if len(index.ips)
            else np.full(len(addresses), -1)
        )
        own = pd.Index(index.domains).get_indexer(bags.targets)
        as_tensor = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64)).to(bags.device)  # noqa: E731
        return as_tensor(ip), as_tensor(own)

    return bags.cached(f"dns:index:{index.token}", build)


def _ip_countries(bags: Bags, geoip: GeoIP) -> Tensor:
    """(I,) country code of every canonical address of the bags (-1: unknown)."""

    def build():
        countries = geoip.countries(_answer_ips(bags)[1])
        codes, _ = pd.factorize(pd.Series(countries, dtype=object), use_na_sentinel=True)
        return torch.from_numpy(codes.astype(np.int64)).to(bags.device)

    return bags.cached(f"dns:country:{geoip.path}", build)


def _name_digit_ratio(bags: Bags, scope: str, private: bool) -> Tensor:
    """(B,) digit share of every target's registered-domain label (or whole name)."""

    def build():
        ratios = [_digit_share(_name_part(str(name), scope, private)) for name in bags.targets]
        return torch.tensor(ratios, dtype=torch.float64, device=bags.device)

    return bags.cached(f"dns:name_digits:{scope}:{private}", build)


@functools.cache
def _suffix_list(private: bool) -> PublicSuffixList:
    return PublicSuffixList(only_icann=not private)


def _name_part(name: str, scope: str, private: bool = False) -> str:
    """The registered-domain label of ``name`` (left of its public suffix), or the FQDN
    without dots; a name that is a public suffix or a single label gives its first label."""
    labels = [p for p in name.strip().rstrip(".").lower().split(".") if p]
    if not labels:
        return ""
    if scope == "fqdn":
        return "".join(labels)
    registered = _suffix_list(private).privatesuffix(".".join(labels))
    return registered.split(".", 1)[0] if registered else labels[0]


def _digit_share(text: str) -> float:
    return sum(c.isdigit() and c.isascii() for c in text) / len(text) if text else 0.0
