"""The HTTP API of the collection lifecycle, spoken directly: compact vectors, the JSON error shape and 4xx rules,
and the OpenAPI document."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from lookalike.server.protocol import decode_array, encode_array, rebuild_error

from .conftest import API_KEY

KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def http(server, client):
    client.create_collection("wire", 3, "l2")
    with httpx.Client(base_url=server.url, timeout=30) as session:
        yield session
    client.drop_collection("wire")


def assert_error(response: httpx.Response, status: int, type_name: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and (type_name is None or error["type"] == type_name), error
    return error


def test_vectors_travel_as_base64_float32(http):
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    body = encode_array(x)
    assert body["shape"] == [3, 3] and base64.b64decode(body["data"]) == x.astype("<f4").tobytes()
    written = http.post("/api/collections/wire/points", headers=KEY, json={"ids": [1, "b", 3], "vectors": body})
    assert written.json() == {"written": 3, "count": 3}
    lists = http.post("/api/collections/wire/points", headers=KEY, json={"ids": [4], "vectors": [[1, 1, 0]]})
    assert lists.status_code == 200  # JSON lists of numbers are still accepted
    answer = http.post("/api/collections/wire/query", json={"vectors": encode_array(x[:2]), "k": 6}).json()
    assert answer["ids"][0][:1] == [1] and answer["ids"][1][:1] == ["b"] and answer["ids"][0][-1] is None
    distances = decode_array(answer["distances"])
    assert distances.shape == (2, 6) and distances[0, 0] == 0 and np.isinf(distances[0, -1])
    got = http.post("/api/collections/wire/points/get", json={"ids": ["b", 1]}).json()
    np.testing.assert_array_equal(decode_array(got["vectors"]), x[[1, 0]])
    assert got["ids"] == ["b", 1] and got["metadatas"] == [None, None]
    everything = http.post("/api/collections/wire/points/get", json={"ids": None, "include": []}).json()
    assert everything == {"ids": [1, "b", 3, 4], "vectors": None, "metadatas": None}
    found = http.post("/api/collections/wire/points/has", json={"ids": [1, "1", 4]}).json()
    assert found == {"found": [True, False, True]}


@pytest.mark.parametrize("vectors, status, type_name", [
    ({"dtype": "float32", "shape": [1, 3], "data": base64.b64encode(b"\0" * 8).decode()}, 400, "InvalidInputError"),
    ({"dtype": "float32", "shape": [1, 3], "data": "not base64!"}, 400, "InvalidInputError"),
    ({"dtype": "float64", "shape": [1, 3], "data": ""}, 422, "ValidationError"),
    ({"dtype": "float32", "shape": [1, 1, 3], "data": ""}, 422, "ValidationError"),
    ({"dtype": "float32", "shape": [1, 3], "data": 5}, 422, "ValidationError"),
    (encode_array(np.ones((1, 4))), 400, "DimensionMismatchError"),
    (encode_array(np.full((1, 3), np.nan)), 400, "NonFiniteVectorError"),
])
def test_malformed_vectors_are_client_faults(http, vectors, status, type_name):
    assert_error(http.post("/api/collections/wire/points", headers=KEY, json={"ids": [9], "vectors": vectors}),
                 status, type_name)
    assert_error(http.post("/api/collections/wire/query", json={"vectors": vectors}), status, type_name)
    assert http.get("/api/collections/wire").json()["count"] == 0  # nothing was written


@pytest.mark.parametrize("path, body, status, type_name", [
    ("/api/collections/wire/query", {"vectors": [[1, 0, 0]], "k": 0}, 400, "InvalidKError"),
    ("/api/collections/wire/query", {"vectors": [[1, 0, 0]], "k": 1001}, 400, "InvalidKError"),
    ("/api/collections/wire/query", {"vectors": [[1, 0, 0]], "k": "3"}, 422, "ValidationError"),
    ("/api/collections/wire/query", {"vectors": [[1, 0, 0]], "nprobe": 3}, 422, "ValidationError"),
    ("/api/collections/wire/query", {"vectors": [[1, 0, 0]], "params": {"k": 3}}, 400, "InvalidParameterError"),
    ("/api/collections/wire/query", {"vectors": [[1, 0, 0]], "where": {"$or": 1}}, 400, "InvalidFilterError"),
    ("/api/collections/wire/query", {"vectors": encode_array(np.ones((10_001, 3)))}, 400, "InvalidInputError"),
    ("/api/collections/nope/query", {"vectors": [[1, 0, 0]]}, 404, "CollectionNotFoundError"),
    ("/api/collections/wire/points/get", {"ids": ["absent"]}, 404, "IdNotFoundError"),
    ("/api/collections/wire/points/get", {"ids": []}, 422, "ValidationError"),
    ("/api/collections/wire/points/get", {"ids": [1, 1]}, 409, "DuplicateIdError"),
    ("/api/collections/wire/points/has", {"ids": [1.5]}, 422, "ValidationError"),
    ("/api/collections/wire/points/get", {"include": ["everything"]}, 422, "ValidationError"),
])
def test_bad_requests_answer_4xx_with_the_error_shape(http, path, body, status, type_name):
    assert_error(http.post(path, json=body), status, type_name)


def test_lifecycle_routes_and_their_refusals(http):
    created = http.post("/api/collections", headers=KEY, json={"name": "wire-2", "dim": 3, "exist_ok": True})
    assert created.status_code == 201
    again = http.post("/api/collections", headers=KEY, json={"name": "wire-2", "dim": 3, "exist_ok": True})
    assert again.status_code == 200 and again.json()["name"] == "wire-2"
    assert_error(http.post("/api/collections", headers=KEY, json={"name": "wire-2", "dim": 4, "exist_ok": True}),
                 409, "CollectionExistsError")
    drop_index = "/api/collections/wire-2/index/drop"
    assert_error(http.post(drop_index, headers=KEY, json={"type": "flat"}), 400, "InvalidInputError")
    assert_error(http.post(drop_index, headers=KEY, json={"type": "hnsw"}), 409, "IndexNotBuiltError")
    assert_error(http.post("/api/collections/wire-2/metadata-indexes", headers=KEY, json={"key": "a\x01"}),
                 400, "InvalidFilterError")
    assert_error(http.post("/api/collections/wire-2/tune", headers=KEY, json={"k": 5}), 400, "InvalidParameterError")
    assert_error(http.post("/api/collections/wire-2/drop"), 401, "UnauthorizedError")
    assert http.post("/api/collections/wire-2/drop", headers=KEY).json() == {"dropped": "wire-2"}
    assert_error(http.post("/api/collections/wire-2/drop", headers=KEY), 404, "CollectionNotFoundError")
    assert_error(http.get("/api/collections/wire-2"), 404, "CollectionNotFoundError")


def test_health_publishes_the_limits_clients_batch_by(http):
    limits = http.get("/api/health").json()["limits"]
    assert limits["max_body_bytes"] == 200_000 and limits["max_batch"] >= 1 and limits["max_k"] >= 1


def test_the_openapi_document_covers_the_lifecycle(http):
    spec = http.get("/openapi.json").json()
    routes = {(method, path) for path, item in spec["paths"].items() for method in item}
    for route in [("post", "/api/collections/{name}/drop"), ("post", "/api/collections/{name}/points"),
                  ("post", "/api/collections/{name}/points/get"), ("post", "/api/collections/{name}/points/has"),
                  ("post", "/api/collections/{name}/points/delete"), ("post", "/api/collections/{name}/query"),
                  ("post", "/api/collections/{name}/index"), ("get", "/api/collections/{name}/index"),
                  ("post", "/api/collections/{name}/index/drop")]:
        assert route in routes, route
    schemas = spec["components"]["schemas"]
    assert {"EncodedArray", "QueryRequest", "QueryResponse", "PointsResponse"} <= set(schemas)
    assert "data" in schemas["EncodedArray"]["properties"]


@pytest.mark.parametrize("status, body, expected", [
    (400, {"error": {"type": "DimensionMismatchError", "message": "m"}}, "DimensionMismatchError"),
    (409, {"error": {"type": "BuildInProgressError", "message": "m"}}, "BuildInProgressError"),
    (503, {"error": {"type": "EmbedderUnavailableError", "message": "m"}}, "EmbedderUnavailableError"),
    (413, {"error": {"type": "PayloadTooLarge", "message": "m"}}, "PayloadTooLargeError"),
    (422, {"error": {"type": "ValidationError", "message": "m"}}, "InvalidInputError"),
    (500, {"error": {"type": "InternalError", "message": "m"}}, "InternalError"),
    (502, "<html>bad gateway</html>", "HTTPError"),
])
def test_error_answers_are_rebuilt_by_type_name(status, body, expected):
    error = rebuild_error(status, body)
    assert error.type_name == expected and error.http_status == status
