"""Data in: readers from raw logs to the canonical record DataFrames of DESIGN.md.

    flows = read_flows("conn.log.gz")  # gzip or not; the format is detected from the content
    flows = read_flows("captures/")    # a folder: its log files, one capture each (io.log_files)
    flows.attrs["dropped_halves"], flows.attrs["skipped_lines"], flows.attrs["ignored"]

Formats (FORMATS): Zeek TSV/JSON/CSV, Argus binetflow, nfdump CSV, Suricata EVE JSON,
CICFlowMeter CSV (CIC-IDS2017/2018, original and corrected), UNSW-NB15 CSV, Squid's native
access.log, plain CSV or Parquet; each module (:mod:`.zeek`, :mod:`.argus`, :mod:`.eve`,
:mod:`.cicflowmeter`, :mod:`.unsw`, :mod:`.squid`, :mod:`.tables`) documents what it reads.

See :mod:`alchemy_torch.io.schema` for the columns and dtypes of each kind.
"""

from .errors import DataFormatError
from .readers import (
    FORMATS,
    NOT_LOGGED,
    detect_format,
    log_files,
    not_logged,
    read_dns,
    read_flows,
    read_http,
)
from .schema import COLUMNS, KINDS, TARGET

__all__ = [
    "COLUMNS",
    "DataFormatError",
    "FORMATS",
    "KINDS",
    "NOT_LOGGED",
    "TARGET",
    "detect_format",
    "log_files",
    "not_logged",
    "read_dns",
    "read_flows",
    "read_http",
]
