"""The one answer to "is this text an IP address": IPv4 or IPv6 as :mod:`ipaddress` parses it.

Values are stripped of surrounding spaces; anything else (names, CNAME targets, '') is not
an address. Each distinct value is parsed once, so a column of many repeated answers costs
one parse per distinct string.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd

__all__ = ["canonical_addresses", "is_address"]


def canonical_addresses(values) -> np.ndarray:
    """(V,) object array: the canonical text of every value that is an IP address, else None.

    Canonical: :mod:`ipaddress`'s form (IPv6 compressed and lower-case, '1.2.3.4' as is), so
    two spellings of one address compare equal.
    """
    codes, uniques = pd.factorize(pd.Series(values, dtype=object).astype(str), sort=False)
    parsed = np.array([_canonical(u) for u in uniques], dtype=object)
    return parsed[codes] if len(codes) else np.empty(0, dtype=object)


def is_address(values) -> np.ndarray:
    """(V,) bool: which values are IP addresses (see :func:`canonical_addresses`)."""
    return np.not_equal(canonical_addresses(values), None)


def _canonical(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None
