"""Load test of the HTTP server, on loopback only, bounded in requests and time; it stops by itself.

Starts `lookalike serve` on 127.0.0.1 (or targets --url, which must be a loopback address), then drives
/search with text, vector and photo queries at rising concurrency, and optionally a mixed read/write load
(index rebuilds and point writes while searching).  Reports per level: requests, QPS, p50/p95/p99 latency,
error count (must be 0 for valid requests), and the server's resident memory before and after (growth check).

    python bench/load_test.py --db fashion-db --collection fashion-mnist --levels 1,4,16,32 --requests 2500
"""

from __future__ import annotations

import argparse
import asyncio
import io
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from _serve import start_server

TEXTS = ["white sneakers", "black dress", "ankle boots", "a bag", "warm coat", "striped shirt", "trousers",
         "pullover", "sandals for summer", "t-shirt with logo"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing to load {host}: this script only targets loopback addresses")


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def photo_bytes(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = np.zeros((28, 28), dtype=np.uint8)
    img[4:24, 8:20] = rng.integers(120, 255)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


async def one_request(client, base: str, collection: str, mode: str, i: int, dim: int, k: int):
    url = f"{base}/api/collections/{collection}/search"
    if mode == "text":
        return await client.post(url, json={"text": TEXTS[i % len(TEXTS)], "k": k, "with_recall": i % 10 == 0})
    if mode == "vector":
        v = np.random.default_rng(i).normal(size=dim)
        return await client.post(url, json={"vector": (v / np.linalg.norm(v)).tolist(), "k": k})
    files = {"file": (f"q{i}.png", photo_bytes(i % 50), "image/png")}
    return await client.post(url + "/image", files=files, data={"k": str(k)})


async def run_level(base: str, collection: str, concurrency: int, n_requests: int, modes: list[str], dim: int,
                    k: int, time_limit: float, writer: bool, api_key: str | None) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(n_requests))
    deadline = time.time() + time_limit
    limits = httpx.Limits(max_connections=concurrency + 2)
    headers = {"X-API-Key": api_key} if api_key else {}
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as client:

        async def worker():
            for i in counter:
                if time.time() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    r = await one_request(client, base, collection, modes[i % len(modes)], i, dim, k)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:120]}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                latencies.append(time.perf_counter() - t0)

        async def rebuilder():
            n = 0
            while time.time() < deadline and len(latencies) < n_requests:
                r = await client.post(f"{base}/api/collections/{collection}/index",
                                      json={"type": "ivf", "params": {"nlist": 64 + (n % 2) * 32}})
                if r.status_code not in (200, 202, 409):
                    errors.append(f"rebuild {r.status_code} {r.text[:120]}")
                n += 1
                await asyncio.sleep(2)

        t0 = time.perf_counter()
        tasks = [worker() for _ in range(concurrency)] + ([rebuilder()] if writer else [])
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "qps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "errors": len(errors), "first_errors": errors[:3],
            "mixed_writes": writer}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", help="database to serve (a server is started on a free loopback port)")
    p.add_argument("--url", help="an already running server on loopback, e.g. http://127.0.0.1:8000")
    p.add_argument("--collection", default="fashion-mnist")
    p.add_argument("--levels", default="1,4,16,32", help="concurrency levels")
    p.add_argument("--requests", type=int, default=2500, help="requests per level (bounded)")
    p.add_argument("--time-limit", type=float, default=45, help="seconds per level at most")
    p.add_argument("--modes", default="text,vector,photo")
    p.add_argument("--mixed", action="store_true", help="also run each level with index rebuilds going on")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--out", default="results/load_test.json")
    args = p.parse_args()
    api_key = os.environ.get("LOOKALIKE_API_KEY") or ("load-test-key" if args.db else None)
    proc = None
    if args.url:
        check_loopback(args.url)
        base = args.url.rstrip("/")
    elif args.db:
        port = free_port()
        proc = start_server(args.db, port, api_key=api_key)
        base = f"http://127.0.0.1:{port}"
    else:
        p.error("give --db or --url")
    import httpx

    info = {c["name"]: c for c in httpx.get(f"{base}/api/collections").json()}
    if args.collection not in info:
        raise SystemExit(f"no collection {args.collection!r} on the server: {sorted(info)}")
    dim = info[args.collection]["dim"]
    modes = args.modes.split(",")
    rows = []
    try:
        rss_start = rss_mb(proc.pid) if proc else None
        for level in map(int, args.levels.split(",")):
            for mixed in ([False, True] if args.mixed else [False]):
                row = asyncio.run(run_level(base, args.collection, level, args.requests, modes, dim, args.k,
                                            args.time_limit, mixed, api_key))
                row["server_rss_mb"] = rss_mb(proc.pid) if proc else None
                rows.append(row)
                print(f"c={level:3d}{' mixed' if mixed else '      '} {row['requests']:6d} req  {row['qps']:8.1f} QPS  "
                      f"p50 {row['p50_ms']:7.1f}  p95 {row['p95_ms']:7.1f}  p99 {row['p99_ms']:7.1f} ms  "
                      f"errors {row['errors']}  rss {row['server_rss_mb'] or 0:.0f} MB", flush=True)
        summary = {"levels": rows, "rss_start_mb": rss_start, "rss_end_mb": rss_mb(proc.pid) if proc else None,
                   "total_requests": sum(r["requests"] for r in rows), "total_errors": sum(r["errors"] for r in rows)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1))
        print(f"total {summary['total_requests']} requests, {summary['total_errors']} errors; server RSS "
              f"{summary['rss_start_mb'] or 0:.0f} -> {summary['rss_end_mb'] or 0:.0f} MB; written {args.out}")
        return 0 if summary["total_errors"] == 0 else 1
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
