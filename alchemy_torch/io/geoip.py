"""Country of an IP address: a MaxMind ``.mmdb`` database or a ``prefix,country`` CSV.

    geoip = GeoIP("GeoLite2-Country.mmdb")   # needs the maxminddb package (extra ``geoip``)
    geoip = GeoIP("prefixes.csv")            # rows prefix,country; header optional
    geoip.countries(np.array(["1.2.3.4", "2001:db8::1"], dtype=object))  # ISO codes or None

In a CSV the longest matching prefix wins, countries are upper-cased and a row with an empty
country maps nothing. The file is read when the object is built.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pandas as pd

from alchemy_torch.io.errors import DataFormatError

__all__ = ["GeoIP"]


class GeoIP:
    """Country lookups from ``path``: a ``.mmdb`` (read with ``maxminddb``) or a CSV."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"geoip database {self.path!r} does not exist")
        self.mmdb = self.path.endswith(".mmdb")
        if self.mmdb:
            try:
                import maxminddb  # noqa: F401
            except ImportError as err:
                raise ImportError(
                    f"reading the MaxMind database {self.path!r} needs the maxminddb package: "
                    "pip install maxminddb (or pass a prefix,country CSV)"
                ) from err
            self.tables = None
        else:
            self.tables = self._read_csv()

    def _read_csv(self) -> dict:
        """{(version, prefix length): {network int: country}}."""
        table = pd.read_csv(
            self.path, dtype=str, header=None, keep_default_na=False, skip_blank_lines=False
        )
        if table.shape[1] < 2:
            raise DataFormatError(self.path, None, None, "needs two columns prefix,country")
        header = int(table.iloc[0, 0].strip().lower() == "prefix")
        tables: dict = {}
        rows = zip(
            range(1 + header, len(table) + 1), table.iloc[header:, 0], table.iloc[header:, 1]
        )
        for line, prefix, country in rows:
            try:
                net = ipaddress.ip_network(prefix.strip(), strict=False)
            except ValueError as err:
                raise DataFormatError(
                    self.path, line, "prefix", f"bad prefix {prefix!r} ({err})"
                ) from None
            if country.strip():
                tables.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = (
                    country.strip().upper()
                )
        return tables

    def countries(self, addresses: np.ndarray) -> np.ndarray:
        """(I,) ISO country (or None) of every canonical address string."""
        if self.mmdb:
            import maxminddb

            with maxminddb.open_database(self.path) as reader:
                return np.array([_mmdb_country(reader.get(a)) for a in addresses], dtype=object)
        lengths = {
            4: sorted((n for v, n in self.tables if v == 4), reverse=True),
            6: sorted((n for v, n in self.tables if v == 6), reverse=True),
        }
        out = np.full(len(addresses), None, dtype=object)
        for k, text in enumerate(addresses):
            address = ipaddress.ip_address(text)
            bits, value = address.max_prefixlen, int(address)
            for n in lengths[address.version]:
                network = (value >> (bits - n)) << (bits - n)
                country = self.tables[(address.version, n)].get(network)
                if country is not None:
                    out[k] = country
                    break
        return out


def _mmdb_country(record) -> str | None:
    if not isinstance(record, dict):
        return None
    for field in ("country", "registered_country"):
        code = (record.get(field) or {}).get("iso_code")
        if code:
            return str(code).upper()
    return None
