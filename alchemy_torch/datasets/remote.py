"""Download public datasets (CTU-13, IoT-23) once, verify them, keep them in a local cache.

    path = fetch("ctu13-6")   # ~/.cache/alchemy_torch/ctu13-6/capture20110816.binetflow
    flows = alchemy_torch.io.read_flows(path)      # or: datasets.load("ctu13-6")

Cache: ``cache_dir``, else $ALCHEMY_TORCH_CACHE, else ~/.cache/alchemy_torch; one folder per
name. Downloads go to ``<file>.part`` (resumed with an HTTP Range request when the server
allows it) and are renamed into place only after the SHA-256 matches, so the cache never
holds a partial or wrong file. Where no checksum is published (``sha256=None`` in
:data:`REMOTE`) the first download's hash is recorded beside the file (``<file>.sha256``)
and checked from then on (trust on first use); a warning says so. Offline, :func:`fetch`
raises :class:`UnreachableError` naming the set, its URL and the cache path where a copy
obtained by other means can be put (it is used from there, checked as above).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "ALCHEMY_TORCH_CACHE"
_CHUNK = 1 << 20
_MCFP = "https://mcfp.felk.cvut.cz/publicDatasets"


class ChecksumError(OSError):
    """A download (or a cached file) does not have the expected SHA-256."""


class UnreachableError(ConnectionError):
    """A named set's URL cannot be reached (no network, DNS, a firewall): the message says
    where in the cache a copy obtained by other means can be put."""


@dataclass(frozen=True)
class Remote:
    """A downloadable file; ``kind``/``label_rule`` make it loadable by ``datasets.load``."""

    url: str
    sha256: str | None = None
    kind: str | None = None
    label_rule: str = "any"
    notes: tuple = ()

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


def _ctu13(botnet: int, capture: str, sha256: str | None = None) -> Remote:
    return Remote(
        f"{_MCFP}/CTU-Malware-Capture-Botnet-{botnet}/detailed-bidirectional-flow-"
        f"labels/{capture}.binetflow",
        sha256,
        kind="flows",
        label_rule="ctu13",
        notes=(
            "CTU-13 bidirectional Argus flows; C&C servers malicious, other botnet "
            "destinations and Background-only servers removed",
        ),
    )


# CTU-13 scenario -> MCFP capture (www.stratosphereips.org/datasets-ctu13); IoT-23 captures
# (www.stratosphereips.org/datasets-iot23, one conn.log.labeled each, or the whole small
# archive). Only CTU-13 scenario 6 has a known checksum: that of the file reassembled in
# shared/data/flows-ctu13-s6-menti (SOURCE.md; identity with the MCFP original is unverified).
S6_SHA256 = "801800eeda9a5a44868b1e3e492f93dc6d52b5d14566c1d8431c9e85d0d2adaa"
REMOTE = {
    **{
        f"ctu13-{i}": _ctu13(botnet, capture, S6_SHA256 if i == 6 else None)
        for i, (botnet, capture) in enumerate(
            [
                (42, "capture20110810"),
                (43, "capture20110811"),
                (44, "capture20110812"),
                (45, "capture20110815"),
                (46, "capture20110815-2"),
                (47, "capture20110816"),
                (48, "capture20110816-2"),
                (49, "capture20110816-3"),
                (50, "capture20110817"),
                (51, "capture20110818"),
                (52, "capture20110818-2"),
                (53, "capture20110819"),
                (54, "capture20110815-3"),
            ],
            start=1,
        )
    },
    **{
        f"iot23-{name}": Remote(
            f"{_MCFP}/IoT-23-Dataset/IndividualScenarios/CTU-{capture}/bro/conn.log.labeled",
            kind="flows",
            label_rule="any",
            notes=(
                "IoT-23 Zeek conn.log.labeled; any Malicious flow makes its responder malicious",
            ),
        )
        for name, capture in [
            (c, f"IoT-Malware-Capture-{c}")
            for c in (
                "1-1",
                "3-1",
                "7-1",
                "8-1",
                "9-1",
                "17-1",
                "20-1",
                "21-1",
                "33-1",
                "34-1",
                "35-1",
                "36-1",
                "39-1",
                "42-1",
                "43-1",
                "44-1",
                "48-1",
                "49-1",
                "52-1",
                "60-1",
            )
        ]
        + [(f"honeypot-{c}", f"Honeypot-Capture-{c}") for c in ("4-1", "5-1", "7-1")]
    },
    "iot23-small": Remote(f"{_MCFP}/IoT-23-Dataset/iot_23_datasets_small.tar.gz"),  # 8.8 GB
}


def cache_root(cache_dir=None) -> Path:
    return Path(cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "alchemy_torch")


def fetch(name: str, cache_dir=None, url: str | None = None, sha256: str | None = None) -> Path:
    """Path of the verified local copy of ``name`` (a key of :data:`REMOTE`), downloading it
    if needed. ``url`` and ``sha256`` override the registry's (a mirror, a newer release)."""
    if name not in REMOTE:
        raise KeyError(f"unknown remote dataset {name!r}; known: {', '.join(sorted(REMOTE))}")
    entry = REMOTE[name]
    url, expected = url or entry.url, (sha256 or entry.sha256)
    folder = cache_root(cache_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / entry.filename
    recorded = dest.with_name(dest.name + ".sha256")
    if expected is None and recorded.exists():
        expected = recorded.read_text().split()[0]
    if dest.exists():
        if expected is None or _sha256(dest) == expected:
            return dest
        warnings.warn(f"{dest}: cached file has the wrong SHA-256; downloading again", stacklevel=2)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    try:
        _download(url, part)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        if part.exists() and part.stat().st_size == 0:
            part.unlink()
        check = (
            f"checked against its SHA-256 {expected}"
            if expected
            else "its SHA-256 recorded on first use"
        )
        raise UnreachableError(
            f"{name}: cannot reach {url} ({getattr(exc, 'reason', exc)}); on a machine "
            f"without network, download that file by other means and put it at {dest} "
            f"({check})"
        ) from exc
    actual = _sha256(part)
    if expected is not None and actual != expected:
        part.unlink()
        raise ChecksumError(
            f"{url}: SHA-256 {actual} where {expected} was expected; the "
            "download was deleted (pass sha256= if the source changed)"
        )
    os.replace(part, dest)
    if expected is None:
        recorded.write_text(f"{actual}  {dest.name}\n")
        warnings.warn(
            f"{name}: no published checksum; recorded SHA-256 {actual} in {recorded}", stacklevel=2
        )
    return dest


def _download(url: str, part: Path) -> None:
    """Download ``url`` into ``part``, resuming an earlier partial download if possible."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = have and getattr(response, "status", 200) == 206
            with open(part, "ab" if resumed else "wb") as fh:
                shutil.copyfileobj(response, fh, _CHUNK)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part is complete
            return
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
