"""The server under load: ``lookalike bench --load DB[:COLLECTION]`` (on loopback only, bounded in requests and
time; it stops by itself).

    lookalike bench --load fashion-db --load-levels 1,4,16,32 --load-requests 2500 --load-mixed
    lookalike bench --load-url http://127.0.0.1:8000 --load fashion-db:fashion-mnist     # a running server

Starts ``lookalike serve`` on 127.0.0.1 (``bench.serving``, or targets ``--load-url``, which must be a loopback
address), then drives ``/search`` with text, vector and photo queries at rising concurrency, and optionally a
mixed load (index rebuilds while searching).  Per level: requests, QPS, p50/p95/p99 latency, errors (0 for valid
requests), and the server's resident memory (growth check).  (Formerly bench/load_test.py, now its thin caller.)
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import time
from urllib.parse import urlparse

import numpy as np

from .measures import latency_percentiles
from .serving import free_port, start_lookalike

TEXTS = ["white sneakers", "black dress", "ankle boots", "a bag", "warm coat", "striped shirt", "trousers",
         "pullover", "sandals for summer", "t-shirt with logo"]
API_KEY = "load-test-key"


def check_loopback(url: str) -> None:
    from ..errors import InvalidParameterError

    host = urlparse(url).hostname or ""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise InvalidParameterError(f"refusing to load {host}: the load test only targets loopback addresses")


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
    summary = latency_percentiles(latencies)
    return {"concurrency": concurrency, "requests": len(latencies), "qps": len(latencies) / elapsed,
            "p50_ms": summary["p50"], "p95_ms": summary["p95"], "p99_ms": summary["p99"], "errors": len(errors),
            "first_errors": errors[:3], "mixed_writes": writer}


def measure_load(db: str | None, collection: str, *, url: str | None = None, levels: tuple[int, ...] = (1, 4, 16, 32),
                 requests: int = 2500, time_limit: float = 45.0, modes: tuple[str, ...] = ("text", "vector", "photo"),
                 mixed: bool = False, k: int = 10, progress=print) -> dict:
    """Every level (and, with ``mixed``, each again with rebuilds going on) against a server of ``db`` started
    here, or the running server at ``url``."""
    import httpx

    from ..errors import InvalidParameterError

    proc = None
    if url:
        check_loopback(url)
        base, api_key = url.rstrip("/"), None
    else:
        port = free_port()
        proc = start_lookalike(db, port, workers=1, api_key=API_KEY)  # one process, as its figures were measured
        base, api_key = f"http://127.0.0.1:{port}", API_KEY
    try:
        info = {c["name"]: c for c in httpx.get(f"{base}/api/collections").json()}
        if collection not in info:
            raise InvalidParameterError(f"no collection {collection!r} on the server: {sorted(info)}")
        dim = info[collection]["dim"]
        rows = []
        rss_start = rss_mb(proc.pid) if proc else None
        for level in levels:
            for with_writes in ([False, True] if mixed else [False]):
                row = asyncio.run(run_level(base, collection, level, requests, list(modes), dim, k, time_limit,
                                            with_writes, api_key))
                row["server_rss_mb"] = rss_mb(proc.pid) if proc else None
                rows.append(row)
                progress(_level_line(row))
        return {"collection": collection, "levels": rows, "rss_start_mb": rss_start,
                "rss_end_mb": rss_mb(proc.pid) if proc else None,
                "total_requests": sum(r["requests"] for r in rows), "total_errors": sum(r["errors"] for r in rows)}
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except Exception:  # noqa: BLE001 - a server that will not stop is killed
                proc.kill()


def _level_line(row: dict) -> str:
    return (f"c={row['concurrency']:3d}{' mixed' if row['mixed_writes'] else '      '} {row['requests']:6d} req  "
            f"{row['qps']:8.1f} QPS  p50 {row['p50_ms']:7.1f}  p95 {row['p95_ms']:7.1f}  p99 {row['p99_ms']:7.1f} ms  "
            f"errors {row['errors']}  rss {row['server_rss_mb'] or 0:.0f} MB")


def report(summary: dict) -> str:
    return (f"total {summary['total_requests']} requests, {summary['total_errors']} errors; server RSS "
            f"{summary['rss_start_mb'] or 0:.0f} -> {summary['rss_end_mb'] or 0:.0f} MB")
