"""Data in: readers from raw logs to the canonical record DataFrames of DESIGN.md.

    flows = read_flows("conn.log.gz")   # Zeek TSV/JSON, Argus, nfdump, CSV, Parquet; gzip or not
    flows.attrs["dropped_halves"], flows.attrs["skipped_lines"]

See :mod:`alchemy_torch.io.schema` for the columns and dtypes of each kind.
"""

from .errors import DataFormatError
from .readers import FORMATS, detect_format, read_dns, read_flows, read_http
from .schema import COLUMNS, KINDS, TARGET

__all__ = [
    "COLUMNS",
    "DataFormatError",
    "FORMATS",
    "KINDS",
    "TARGET",
    "detect_format",
    "read_dns",
    "read_flows",
    "read_http",
]
