"""Test support shared by tests/server and tests/web: a small synthetic catalog, the embedder that indexes it, and
a real uvicorn server on a free loopback port in a background thread."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np

from lookalike.embed.base import IMAGE, TEXT, Embedder, EmbedderSpec, EmbedderUnavailableError
from lookalike.embed.base import register_embedder

CLASSES = ("Trouser", "Bag", "Dress", "Sneaker", "Shirt", "Coat")
COLOURS = ("white", "black", "red", "blue")
N_ITEMS = 240
REAL_EMBEDDER = "minilm-fmnist-described"  # the default's space; text queries take its described route
FAKE_EMBEDDER = "test-pixels"
API_KEY = "test-key-123"


class PixelEmbedder(Embedder):
    """A stand-in embedder for speed: an image is its 8x8 thumbnail (centred), a text a seeded random vector."""

    name = FAKE_EMBEDDER
    dim = 64
    modalities = frozenset({TEXT, IMAGE})

    def _embed_text_batch(self, texts):
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.lower().encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=self.dim))
        return np.asarray(rows, dtype=np.float32)

    def _embed_image_batch(self, images):
        from PIL import Image

        rows = []
        for image in images:
            small = np.asarray(image.convert("L").resize((8, 8), Image.BILINEAR), dtype=np.float32).ravel()
            rows.append(small - small.mean() + 1e-3)
        return np.asarray(rows, dtype=np.float32)


register_embedder(FAKE_EMBEDDER, EmbedderSpec(f"{__name__}:PixelEmbedder", frozenset({TEXT, IMAGE}), 64,
                                              "tests only: 8x8 pixels / hashed texts"))


@functools.lru_cache(maxsize=1)
def pick_embedder():
    """The real default embedder when it loads (and the tests are not told to skip it), else the stand-in.
    Taken from the server's per-process cache, so the servers under test reuse it instead of loading it again."""
    from lookalike.server.state import shared_embedder

    if not os.environ.get("LOOKALIKE_TEST_FAKE_EMBEDDER"):
        try:
            return shared_embedder(REAL_EMBEDDER)
        except (EmbedderUnavailableError, ImportError, OSError):
            pass
    return shared_embedder(FAKE_EMBEDDER)


def garment_image(cls: str, rng: np.random.Generator, side: int = 28):
    """A light garment-like shape on black, as in Fashion-MNIST, jittered."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(image)
    s = side / 28
    dx, dy = (rng.integers(-2, 3, size=2) * s).tolist()
    shade = int(rng.integers(150, 256))
    j = lambda *xy: [v * s + (dx if i % 2 == 0 else dy) for i, v in enumerate(xy)]  # noqa: E731
    if cls == "Trouser":
        draw.rectangle(j(9, 3, 13, 25), fill=shade)
        draw.rectangle(j(15, 3, 19, 25), fill=shade)
        draw.rectangle(j(9, 3, 19, 8), fill=shade)
    elif cls == "Bag":
        draw.rectangle(j(5, 10, 23, 24), fill=shade)
        draw.arc(j(9, 3, 19, 14), 180, 360, fill=shade, width=max(1, int(2 * s)))
    elif cls == "Dress":
        draw.polygon(j(11, 3, 17, 3, 23, 25, 5, 25), fill=shade)
    elif cls == "Sneaker":
        draw.polygon(j(3, 14, 14, 12, 25, 18, 25, 22, 3, 22), fill=shade)
    elif cls == "Shirt":
        draw.rectangle(j(8, 5, 20, 24), fill=shade)
        draw.polygon(j(8, 5, 2, 14, 5, 16, 8, 10), fill=shade)
        draw.polygon(j(20, 5, 26, 14, 23, 16, 20, 10), fill=shade)
    else:  # Coat
        draw.rectangle(j(7, 3, 21, 26), fill=shade)
        draw.rectangle(j(3, 4, 7, 22), fill=shade)
        draw.rectangle(j(21, 4, 25, 22), fill=shade)
        draw.line(j(14, 3, 14, 26), fill=0)
    return image


def product_photo(cls: str = "Dress", side: int = 240) -> bytes:
    """A "shopper's photo": a dark garment on a light, slightly noisy background, as JPEG bytes."""
    from PIL import Image, ImageOps

    rng = np.random.default_rng(7)
    garment = ImageOps.invert(garment_image(cls, rng, side=side)).convert("RGB")
    noise = rng.integers(0, 12, size=(side, side, 3), dtype=np.uint8)
    photo = Image.fromarray(np.clip(np.asarray(garment).astype(int) - noise, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def item_ids(n: int) -> list:
    """Mostly int ids, plus string ids that test the URL rules: digits as a string, a slash, unicode."""
    ids: list = list(range(n - 3))
    ids += ["007", "sku/a b", "robe-été"]
    return ids


def build_catalog(db_path: Path, embedder, n: int = N_ITEMS, with_ivf: bool = True):
    """A collection 'catalog' of n synthetic items (PNG files + metadata) embedded by ``embedder``, plus a
    vector-only collection 'vectors' (no embedder, no images)."""
    from lookalike import Database

    rng = np.random.default_rng(0)
    image_dir = db_path.parent / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    images, metadata = [], []
    for i in range(n):
        cls, colour = CLASSES[i % len(CLASSES)], COLOURS[(i // len(CLASSES)) % len(COLOURS)]
        image = garment_image(cls, rng)
        path = image_dir / f"item-{i:04d}.png"
        image.save(path)
        images.append(image)
        metadata.append({"name": f"{colour} {cls.lower()} {i}", "class": cls, "colour": colour, "image": str(path)})
    metadata[-4].pop("image")  # one item without a picture
    vectors = embedder.embed_images(images)
    with Database(db_path) as db:
        col = db.create_collection("catalog", dim=embedder.dim, metric="cosine", embedder=embedder.name)
        col.add(item_ids(n), vectors, metadata)
        if with_ivf:
            col.create_index("ivf", nlist=16, default=False)
        plain = db.create_collection("vectors", dim=8, metric="l2")
        plain.add(list(range(50)), rng.normal(size=(50, 8)).astype(np.float32),
                  [{"group": "a" if i % 2 else "b"} for i in range(50)])
    return vectors


ITEMS_DIM = 8  # the dimension of the ``items_db`` fixture's collection


class CountingApp:
    """An ASGI app counting the HTTP requests that reach it (``app`` beneath it; its ``state`` shown through)."""

    def __init__(self, app):
        self.app, self.state, self.calls = app, getattr(app, "state", None), 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def query_body(vectors, **fields) -> dict:
    """A POST .../query body: the vectors encoded, k=5, ``fields`` added."""
    from lookalike.server.protocol import encode_array

    return {"vectors": encode_array(np.asarray(vectors, dtype=np.float32)), "k": 5, **fields}


class ServerThread:
    """uvicorn serving ``app`` (behind the query fast lane and with the server's HTTP protocol, as ``lookalike
    serve``) on 127.0.0.1 at a free port, in a daemon thread; ``stop()`` shuts it down.  ``lane=False``: ``app``
    already has its lane (a test wrapping it); ``access_log``: uvicorn logs every request (``--access-log``)."""

    def __init__(self, app, *, lane: bool = True, access_log: bool = False):
        import uvicorn

        from lookalike.server.fast_lane import QueryFastLane
        from lookalike.server.http_protocol import LaneHttpProtocol

        if lane:
            app = QueryFastLane(app)  # as `lookalike serve` serves it

        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets it recognises as TCP (else Nagle adds ~40 ms)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5, access_log=access_log,
                                http=LaneHttpProtocol)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self, timeout: float = 60.0) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve_process(path, *, workers: int | None = 1, env: dict | None = None):
    """``lookalike serve --db path`` in a process of its own on a free port (no API key), once it answers
    /api/health: ``(process, url)``.  ``workers`` None leaves ``--workers`` at its default."""
    import subprocess
    import sys

    import httpx

    port = free_port()
    environment = {**os.environ, "LOOKALIKE_API_KEY": "", **(env or {})}
    workers_flag = [] if workers is None else ["--workers", str(workers)]
    process = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "serve", "--db", str(path), "--port",
                                str(port), *workers_flag, "--log-level", "warning"], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"lookalike serve exited: {process.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("lookalike serve did not start")
        time.sleep(0.3)
