"""Every client fault answers 4xx with the JSON error shape, and the server stays up (never a 500 on bad input)."""

from __future__ import annotations

import io

import pytest

from .conftest import LIMITS, assert_error

SEARCH = "/api/collections/catalog/search"
IMAGE = "/api/collections/catalog/search/image"


@pytest.fixture(autouse=True)
def server_stays_up(client):
    yield
    assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize("body, status, type_name", [
    ({"text": "dress", "k": 0}, 422, "ValidationError"),
    ({"text": "dress", "k": -1}, 422, "ValidationError"),
    ({"text": "dress", "k": 10**9}, 422, "ValidationError"),
    ({"text": "dress", "k": 1001}, 422, "ValidationError"),
    ({"text": "dress", "k": "10"}, 422, "ValidationError"),
    ({"text": "dress", "k": 2.5}, 422, "ValidationError"),
    ({"text": "dress", "k": True}, 422, "ValidationError"),
    ({"text": ""}, 422, "ValidationError"),
    ({"text": "   \n"}, 422, "ValidationError"),
    ({"text": "x" * 5000}, 422, "ValidationError"),
    ({}, 422, "ValidationError"),
    ({"text": "dress", "vector": [1.0]}, 422, "ValidationError"),
    ({"text": "dress", "nprobe": 3}, 422, "ValidationError"),  # unknown field: a typo is not ignored
    ({"text": 42}, 422, "ValidationError"),
    ({"vector": ["a", "b"]}, 422, "ValidationError"),
    ({"vector": [1.0, 2.0, 3.0]}, 400, "DimensionMismatchError"),
    ({"vector": []}, 400, None),
    ({"text": "dress", "index": "nope"}, 400, "UnknownIndexTypeError"),
    ({"text": "dress", "index": "hnsw"}, 409, "IndexNotBuiltError"),
    ({"text": "dress", "index": "ivf", "params": {"bogus": 1}}, 400, "InvalidParameterError"),
    ({"text": "dress", "index": "ivf", "params": {"nprobe": 0}}, 400, "InvalidParameterError"),
    ({"text": "dress", "index": "ivf", "params": {"nprobe": "many"}}, 400, "InvalidParameterError"),
    ({"text": "dress", "params": {"where": 1}}, 400, "InvalidParameterError"),
    ({"text": "dress", "params": {"k": 1}}, 400, "InvalidParameterError"),
    ({"text": "dress", "params": {"nprobe": [1]}}, 422, "ValidationError"),
    ({"text": "dress", "where": {"class": {"$regex": "D.*"}}}, 400, "InvalidFilterError"),
    ({"text": "dress", "where": {"$or": "x"}}, 400, "InvalidFilterError"),
    ({"text": "dress", "where": {"class'; DROP TABLE points; --": "x"}}, None, None),
    ({"like_id": "no-such-item"}, 404, "IdNotFoundError"),
    ({"like_id": 3.5}, 422, "ValidationError"),
])
def test_bad_search_bodies(client, body, status, type_name):
    response = client.post(SEARCH, json=body)
    if status is None:  # accepted or refused, but as a client fault, and the table is still there
        assert response.status_code < 500, response.text
        assert client.get("/api/collections/catalog").json()["count"] > 0
    else:
        assert_error(response, status, type_name)


def test_deeply_nested_filter(client):
    where: dict = {"class": "Dress"}
    for _ in range(200):
        where = {"$and": [where]}
    assert_error(client.post(SEARCH, json={"text": "dress", "where": where}), 400, "InvalidFilterError")


def test_absurdly_nested_json(client):
    body = '{"text": "a", "where": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}"
    response = client.post(SEARCH, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 and "error" in response.json()


@pytest.mark.parametrize("content, content_type", [
    (b"{not json", "application/json"),
    (b"", "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b"text=dress", "application/x-www-form-urlencoded"),
    (b"dress", "text/plain"),
])
def test_non_json_bodies(client, content, content_type):
    assert_error(client.post(SEARCH, content=content, headers={"Content-Type": content_type}), 422)


def test_nan_in_a_vector(client):
    response = client.post("/api/collections/vectors/search", content=b'{"vector": [NaN, 1, 1, 1, 1, 1, 1, 1]}',
                           headers={"Content-Type": "application/json"})
    assert_error(response, 400, "NonFiniteVectorError")


def test_zero_vector_under_cosine(client, embedder):
    assert_error(client.post(SEARCH, json={"vector": [0.0] * embedder.dim}), 400)


def test_text_on_a_collection_without_embedder(client):
    assert_error(client.post("/api/collections/vectors/search", json={"text": "dress"}), 400, "NoEmbedderError")


@pytest.mark.parametrize("name, status", [
    ("no-such-collection", 404), ("..", 404), ("a%00b", 400), ("x" * 10_000, 400), ("%2E%2E%2Fetc", 404),
    ("sp%20ace", 400), ("%C3%A9t%C3%A9", 400),
])
def test_bad_collection_names(client, name, status):
    assert_error(client.post(f"/api/collections/{name}/search", json={"text": "dress"}), status)
    assert_error(client.get(f"/api/collections/{name}/items/1"), status)


def test_unknown_item_and_item_without_image(client):
    assert_error(client.get("/api/collections/catalog/items/123456"), 404, "IdNotFoundError")
    assert_error(client.get("/api/collections/catalog/items/236/image"), 404, "IdNotFoundError")  # no picture
    assert_error(client.get("/api/collections/catalog/items/" + "z" * 600), 400, "InvalidIdError")
    assert_error(client.get("/api/collections/catalog/items/1/image?size=5"), 422)
    assert_error(client.get("/api/collections/catalog/items/..%2F..%2Fetc%2Fpasswd/image"), 404)


def test_unknown_route_and_method(client):
    assert_error(client.get("/api/nothing-here"), 404, "NotFound")
    assert_error(client.delete("/api/collections/catalog"), 405, "MethodNotAllowed")
    assert_error(client.get("/api/query-log?format=csv"), 422)


# --------------------------------------------------------------------------------------------------- uploads
def _upload(client, data: bytes, **fields):
    return client.post(IMAGE, files={"file": ("photo", data, "application/octet-stream")}, data=fields)


def test_upload_that_is_not_an_image(client):
    assert_error(_upload(client, b"%PDF-1.4 definitely not a picture"), 400, "UnreadableImageError")


def test_zero_byte_upload(client):
    assert_error(_upload(client, b""), 400, "UnreadableImageError")


def test_truncated_image(client):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 30, 30)).save(buffer, format="JPEG")
    assert_error(_upload(client, buffer.getvalue()[: len(buffer.getvalue()) // 3]), 400, "UnreadableImageError")


def test_decompression_bomb(client):
    """A small PNG that decodes to more pixels than the server allows is refused from its header."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (3000, 3000)).save(buffer, format="PNG")  # 9 Mpx in a few KB
    assert len(buffer.getvalue()) < LIMITS["max_upload_bytes"]
    assert_error(_upload(client, buffer.getvalue()), 413, "PayloadTooLargeError")


def test_oversized_upload(client):
    too_big = b"\x89PNG" + b"\0" * (LIMITS["max_upload_bytes"] + 100_000)
    assert_error(_upload(client, too_big), 413)


def test_oversized_json_body(client):
    response = client.post(SEARCH, content=b'{"text": "' + b"a" * (LIMITS["max_body_bytes"] + 10) + b'"}',
                           headers={"Content-Type": "application/json"})
    assert_error(response, 413, "PayloadTooLarge")


def test_oversized_body_without_content_length(client):
    def chunks():
        for _ in range(40):
            yield b"a" * 100_000

    response = client.post(SEARCH, content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(response, 413, "PayloadTooLarge")


def test_bad_form_fields(client):
    photo = _photo_bytes()
    assert_error(_upload(client, photo, k="ten"), 422)
    assert_error(_upload(client, photo, k="0"), 422)
    assert_error(_upload(client, photo, params="{nprobe: 3"), 400, "InvalidParameterError")
    assert_error(_upload(client, photo, params="[1]"), 400, "InvalidParameterError")
    assert_error(_upload(client, photo, where="not json"), 400, "InvalidFilterError")
    assert_error(client.post(IMAGE, data={"k": "3"}), 422)  # no file
    assert_error(client.post(IMAGE, json={"k": 3}), 422)


def test_photo_on_a_collection_without_embedder(client):
    response = client.post("/api/collections/vectors/search/image",
                           files={"file": ("p.png", _photo_bytes(), "image/png")})
    assert_error(response, 400, "NoEmbedderError")


def _photo_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (250, 250, 250)).save(buffer, format="PNG")
    return buffer.getvalue()
