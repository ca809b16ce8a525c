"""Benchmark the readers on 1M-line files: Suricata EVE, CICFlowMeter (CSE-CIC-IDS2018 and
the corrected CIC-IDS2017 layout) and Squid's native access.log.

Writes the files to a folder (default /tmp/alchemy-bench-readers, reused when present), then
times ``io.read_flows`` (and, for EVE, ``read_http`` and ``read_dns``) and prints input lines
per second and output records per second (best wall time of ``--repeat`` runs, and the CPU
time of that run: on a shared machine the CPU time is the steadier number), with the cores.

EVE mix (Suricata 7 style): 60% flow, 10% http, 20% dns (version 2: a query and its answer),
10% other types (alert, tls, stats). CICFlowMeter: the 84 CSE-CIC-IDS2018 columns with IPs;
corrected: the 91 columns of Engelen et al.'s release (the header of the test fixture), ISO
times with microseconds, 10% '- Attempted' labels. Squid: 80% DIRECT misses with a query
string, 10% cache hits (no peer: the URL's host), 10% CONNECT tunnels.

    python experiments/bench_readers.py [--lines 1000000] [--folder /tmp/...] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from alchemy_torch import io

CIC_HEADER = (
    "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,"
    "Tot Bwd Pkts,TotLen Fwd Pkts,TotLen Bwd Pkts,Fwd Pkt Len Max,Fwd Pkt Len Min,"
    "Fwd Pkt Len Mean,Fwd Pkt Len Std,Bwd Pkt Len Max,Bwd Pkt Len Min,Bwd Pkt Len Mean,"
    "Bwd Pkt Len Std,Flow Byts/s,Flow Pkts/s,Flow IAT Mean,Flow IAT Std,Flow IAT Max,"
    "Flow IAT Min,Fwd IAT Tot,Fwd IAT Mean,Fwd IAT Std,Fwd IAT Max,Fwd IAT Min,Bwd IAT Tot,"
    "Bwd IAT Mean,Bwd IAT Std,Bwd IAT Max,Bwd IAT Min,Fwd PSH Flags,Bwd PSH Flags,"
    "Fwd URG Flags,Bwd URG Flags,Fwd Header Len,Bwd Header Len,Fwd Pkts/s,Bwd Pkts/s,"
    "Pkt Len Min,Pkt Len Max,Pkt Len Mean,Pkt Len Std,Pkt Len Var,FIN Flag Cnt,SYN Flag Cnt,"
    "RST Flag Cnt,PSH Flag Cnt,ACK Flag Cnt,URG Flag Cnt,CWE Flag Count,ECE Flag Cnt,"
    "Down/Up Ratio,Pkt Size Avg,Fwd Seg Size Avg,Bwd Seg Size Avg,Fwd Byts/b Avg,"
    "Fwd Pkts/b Avg,Fwd Blk Rate Avg,Bwd Byts/b Avg,Bwd Pkts/b Avg,Bwd Blk Rate Avg,"
    "Subflow Fwd Pkts,Subflow Fwd Byts,Subflow Bwd Pkts,Subflow Bwd Byts,Init Fwd Win Byts,"
    "Init Bwd Win Byts,Fwd Act Data Pkts,Fwd Seg Size Min,Active Mean,Active Std,Active Max,"
    "Active Min,Idle Mean,Idle Std,Idle Max,Idle Min,Label"
)


def write_eve(path: Path, lines: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["flow", "http", "dns", "other"], lines, p=[0.6, 0.1, 0.2, 0.1])
    t0 = 1.709e9
    with open(path, "w") as out:
        for i, kind in enumerate(kinds):
            ts = _iso(t0 + i * 0.001)
            ends = dict(
                src_ip=f"10.0.{i % 250}.{i % 199}",
                src_port=1024 + i % 60000,
                dest_ip=f"93.184.{i % 97}.{i % 13}",
                dest_port=(443, 80, 53)[i % 3],
            )
            if kind == "flow":
                event = dict(
                    timestamp=ts,
                    flow_id=i,
                    event_type="flow",
                    **ends,
                    proto="TCP",
                    app_proto="tls",
                    flow=dict(
                        pkts_toserver=1 + i % 40,
                        pkts_toclient=i % 30,
                        bytes_toserver=60 + i % 5000,
                        bytes_toclient=(i % 30) * 700,
                        start=_iso(t0 + i * 0.001 - 3),
                        end=ts,
                        age=3,
                        state="closed",
                        reason="timeout",
                        alerted=False,
                    ),
                    tcp=dict(tcp_flags="1b", tcp_flags_ts="1b", tcp_flags_tc="1a", syn=True),
                )
            elif kind == "http":
                event = dict(
                    timestamp=ts,
                    flow_id=i,
                    event_type="http",
                    **ends,
                    proto="TCP",
                    tx_id=0,
                    http=dict(
                        hostname=f"host{i % 5000}.example.com",
                        url=f"/path/{i % 777}/index.php?id={i}",
                        http_user_agent="Mozilla/5.0 (X11; Linux x86_64)",
                        http_method="GET",
                        protocol="HTTP/1.1",
                        status=200,
                        length=i % 100000,
                    ),
                )
            elif kind == "dns":
                query = f"name{i % 20000}.example.org"
                dns = dict(type="query", id=i % 65536, rrname=query, rrtype="A", tx_id=0)
                if i % 2:
                    dns = dict(
                        version=2,
                        type="answer",
                        id=(i - 1) % 65536,
                        flags="8180",
                        qr=True,
                        rd=True,
                        ra=True,
                        rrname=f"name{(i - 1) % 20000}.example.org",
                        rrtype="A",
                        rcode="NOERROR",
                        answers=[
                            dict(rrname=query, rrtype="A", ttl=300, rdata=f"192.0.2.{i % 250}"),
                            dict(rrname=query, rrtype="A", ttl=300, rdata=f"192.0.3.{i % 250}"),
                        ],
                        grouped=dict(A=[f"192.0.2.{i % 250}", f"192.0.3.{i % 250}"]),
                    )
                event = dict(timestamp=ts, flow_id=i - i % 2, event_type="dns", **ends, dns=dns)
            else:
                event = dict(timestamp=ts, event_type=("alert", "tls", "stats")[i % 3], **ends)
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


def _iso(seconds: float) -> str:
    whole = int(seconds)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        + f".{int((seconds - whole) * 1e6):06d}+0000"
    )


def write_cicflowmeter(path: Path, lines: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    tails = [
        ",".join(f"{v:.6g}" for v in rng.random(71) * 1000) for _ in range(1000)
    ]  # the 71 columns the reader does not use
    labels = np.array(["Benign"] * 8 + ["DoS attacks-Hulk", "Bot"])
    with open(path, "w") as out:
        out.write(CIC_HEADER + "\n")
        for i in range(lines):
            src, dst = f"172.31.{i % 250}.{i % 199}", f"18.219.{i % 97}.{i % 13}"
            sport, dport = 1024 + i % 60000, (443, 80, 53)[i % 3]
            stamp = time.strftime("%d/%m/%Y %H:%M:%S", time.gmtime(1518739200 + i // 20))
            fwd, bwd = 1 + i % 40, i % 30
            out.write(
                f"{dst}-{src}-{dport}-{sport}-6,{src},{sport},{dst},{dport},6,{stamp},"
                f"{1000 + i % 99999},{fwd},{bwd},{fwd * 60},{bwd * 700},"
                f"{tails[i % 1000]},{labels[i % 10]}\n"
            )


CORRECTED_HEADER = (
    Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "io" / "cicids2017-improved.csv"
)


def write_cic_corrected(path: Path, lines: int, seed: int = 0) -> None:
    header = CORRECTED_HEADER.read_text().splitlines()[0]
    rng = np.random.default_rng(seed)
    tails = [",".join(f"{v:.6g}" for v in rng.random(76) * 1000) for _ in range(1000)]
    labels = ["BENIGN,-1"] * 8 + ["Botnet,-1", "Botnet - Attempted,0"]
    with open(path, "w") as out:
        out.write(header + "\n")
        for i in range(lines):
            src, dst = f"192.168.{i % 250}.{i % 199}", f"205.174.{i % 97}.{i % 13}"
            sport, dport = 1024 + i % 60000, (443, 80, 8080)[i % 3]
            whole = 1499414400 + i // 20
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)) + f".{i % 10**6:06d}"
            fwd, bwd = 1 + i % 40, i % 30
            out.write(
                f"{i},{src}-{dst}-{sport}-{dport}-6,{src},{sport},{dst},{dport},6,{stamp},"
                f"{1000 + i % 99999},{fwd},{bwd},{fwd * 60},{bwd * 700},"
                f"{tails[i % 1000]},{labels[i % 10]}\n"
            )


def write_squid(path: Path, lines: int, seed: int = 0) -> None:
    with open(path, "w") as out:
        for i in range(lines):
            client, host = f"10.{i % 7}.{i % 250}.{i % 199}", f"host{i % 5000}.example.com"
            stamp = f"{1286536308 + i * 0.01:.3f}"
            if i % 10 == 8:
                request, peer, code = f"GET http://{host}/logo.png", "NONE/-", "TCP_MEM_HIT/200"
            elif i % 10 == 9:
                request, code = f"CONNECT {host}:443", "TCP_TUNNEL/200"
                peer = f"HIER_DIRECT/93.184.{i % 97}.{i % 13}"
            else:
                request = f"GET http://{host}/path/{i % 777}/index.php?id={i}"
                peer, code = f"DIRECT/93.184.{i % 97}.{i % 13}", "TCP_MISS/200"
            out.write(f"{stamp} {i % 5000:6d} {client} {code} {400 + i % 9000} {request} - ")
            out.write(f"{peer} text/html\n")


def timed(read, path, repeat: int):
    """(best wall seconds, CPU seconds of that run (all threads), the frame)."""
    best, cpu, df = float("inf"), 0.0, None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        df = read(path)
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/alchemy-bench-readers"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    eve = args.folder / f"eve-{args.lines}.json"
    cic = args.folder / f"cicflowmeter-{args.lines}.csv"
    corrected = args.folder / f"cic-corrected-{args.lines}.csv"
    squid = args.folder / f"squid-{args.lines}.log"
    for path, write in (
        (eve, write_eve),
        (cic, write_cicflowmeter),
        (corrected, write_cic_corrected),
        (squid, write_squid),
    ):
        if not path.exists():
            start = time.perf_counter()
            write(path.with_suffix(".part"), args.lines)
            path.with_suffix(".part").rename(path)
            size, took = path.stat().st_size / 2**20, time.perf_counter() - start
            print(f"wrote {path} ({size:.0f} MiB) in {took:.0f} s")
    cores = len(os.sched_getaffinity(0))
    print(f"cores available: {cores} (os.cpu_count {os.cpu_count()}, arrow {pa.cpu_count()})")
    for name, read, path in (
        ("EVE flows", io.read_flows, eve),
        ("EVE http", io.read_http, eve),
        ("EVE dns", io.read_dns, eve),
        ("CICFlowMeter flows", io.read_flows, cic),
        ("CIC corrected flows", io.read_flows, corrected),
        ("Squid http", io.read_http, squid),
    ):
        seconds, cpu, df = timed(read, path, args.repeat)
        print(
            f"{name:20s} {args.lines / seconds:12,.0f} lines/s {len(df) / seconds:12,.0f} records/s"
            f"  ({seconds:.2f} s wall, {cpu:.2f} s CPU, {len(df):,} records)"
        )


if __name__ == "__main__":
    main()
