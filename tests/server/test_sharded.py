"""``lookalike serve`` over a sharded database: the same HTTP API and page over 2 shards on a local Ray.

The served database is a copy of the synthetic catalog of ``support.build_catalog`` spread over 2 shards, and the
single-node catalog it was copied from is kept as the oracle: exact searches through the server must return what
one machine returns.  The Ray tests are slow (Ray start, shard and build actors); the serve-command checks are not.
"""

from __future__ import annotations

import argparse
import time

import httpx
import numpy as np
import pytest

from lookalike import Database
from lookalike.server.cli import add_serve_arguments, prepare_database

from .conftest import assert_error, serve
from .support import API_KEY, N_ITEMS, build_catalog, product_photo

KEY = {"X-API-Key": API_KEY}
SHARDS = 2


# ----------------------------------------------------------------------------------------- fixtures (Ray, served db)
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="serving a sharded database needs Ray: pip install 'ray[data]==2.60.0'")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def twin(ray_local, tmp_path_factory, embedder):
    """(single-node database path, sharded database path): the same points, ids, metadata and indexes."""
    from lookalike.distributed import ShardedDatabase

    root = tmp_path_factory.mktemp("sharded-served")
    build_catalog(root / "single", embedder, with_ivf=False)
    sdb = ShardedDatabase(root / "sharded", n_shards=SHARDS)
    with Database(root / "single", create=False) as single:
        for name in single.list_collections():
            source = single.get_collection(name)
            points = source.get(source.ids())
            sdb.create_collection(name, source.dim, source.metric, embedder=source.embedder).add(
                points.ids, points.vectors, points.metadatas)
    sdb.close()
    return root / "single", root / "sharded"


@pytest.fixture(scope="module")
def sharded(twin):
    """An httpx client of a real uvicorn serving the sharded database (its own ShardedDatabase, on the test Ray)."""
    running = serve(twin[1])
    with httpx.Client(base_url=running.url, timeout=120) as http:
        yield http
    running.stop()


@pytest.fixture(scope="module")
def single(twin):
    with Database(twin[0], create=False) as db:
        yield db


def assert_same_hits(hits: list[dict], want) -> None:
    """The hits one machine gives (``want``: its SearchResult of one query), up to the order of equal distances."""
    np.testing.assert_allclose([h["distance"] for h in hits], want.distances[0], rtol=1e-5, atol=1e-5)
    distance_of = dict(zip(want.ids[0].tolist(), want.distances[0].tolist()))
    from lookalike.server.search import public_metadata

    metadata_of = dict(zip(want.ids[0].tolist(), map(public_metadata, want.metadatas[0])))  # paths stay server-side
    for hit in hits:  # an id one machine does not return may only tie with its last hit
        assert hit["distance"] == pytest.approx(distance_of.get(hit["id"], want.distances[0, -1]), abs=1e-5)
        assert hit["id"] not in metadata_of or hit["metadata"] == metadata_of[hit["id"]]


# ------------------------------------------------------------------------------------------------ reads (slow: Ray)
@pytest.mark.slow
def test_collections_report_their_shards(sharded, embedder):
    health = sharded.get("/api/health").json()
    assert health["sharded"] is True and health["collections"] == 2
    collections = {c["name"]: c for c in sharded.get("/api/collections").json()}
    catalog = collections["catalog"]
    assert (catalog["count"], catalog["dim"], catalog["metric"], catalog["embedder"]) == (
        N_ITEMS, embedder.dim, "cosine", embedder.name)
    assert catalog["n_shards"] == SHARDS and sum(catalog["shard_counts"]) == N_ITEMS
    assert min(catalog["shard_counts"]) > 0  # the hash spreads the points
    assert [i["name"] for i in catalog["indexes"]] == ["flat"] and catalog["default_index"] == "flat"
    assert sharded.get("/api/collections/vectors").json()["count"] == 50
    assert_error(sharded.get("/api/collections/nope"), 404, "CollectionNotFoundError")
    assert sharded.get("/").status_code == 200  # the page: it speaks only the routes above


@pytest.mark.slow
def test_vector_search_equals_one_machine(sharded, single):
    rng = np.random.default_rng(11)
    for _ in range(3):
        vector = rng.normal(size=8).astype(np.float32)
        body = sharded.post("/api/collections/vectors/search", json={"vector": vector.tolist(), "k": 9}).json()
        assert_same_hits(body["hits"], single.get_collection("vectors").query(vector, k=9))
        assert body["index"] == "flat" and body["latency_ms"]["search"] is not None


@pytest.mark.slow
def test_text_search_equals_one_machine(sharded, single, embedder):
    from lookalike.embed.base import query_route
    from lookalike.server.state import shared_embedder

    text = "a long red dress"
    body = sharded.post("/api/collections/catalog/search", json={"text": text, "k": 7, "with_recall": True}).json()
    route = shared_embedder(query_route(embedder.name))  # the text route the server takes for this collection
    want = single.get_collection("catalog").query(route.embed_texts([text])[0], k=7)
    assert body["mode"] == "text" and body["latency_ms"]["embed"] is not None
    assert_same_hits(body["hits"], want)
    assert body["recall"] == 1.0 and all(h["true_knn"] for h in body["hits"])


@pytest.mark.slow
def test_filters_like_and_photo_search(sharded, single):
    where = {"class": "Dress", "colour": {"$in": ["red", "blue"]}}
    hits = sharded.post("/api/collections/catalog/search", json={"text": "dress", "k": 5, "where": where}).json()
    assert hits["hits"] and all(h["metadata"]["class"] == "Dress" and h["metadata"]["colour"] in ("red", "blue")
                                for h in hits["hits"])
    like = sharded.post("/api/collections/catalog/search", json={"like_id": 12, "k": 3}).json()
    assert like["hits"][0]["distance"] == pytest.approx(0.0, abs=1e-5)
    upload = {"file": ("p.jpg", product_photo(), "image/jpeg")}
    photo = sharded.post("/api/collections/catalog/search/image", files=upload, data={"k": "4"})
    assert photo.status_code == 200 and len(photo.json()["hits"]) == 4 and photo.json()["mode"] == "image"
    log = sharded.get("/api/query-log", params={"collection": "catalog"}).json()
    assert log["enabled"] and {"text", "item", "image"} <= {row["mode"] for row in log["queries"]}


@pytest.mark.slow
def test_item_routes(sharded, single):
    body = sharded.get("/api/collections/catalog/items/9?with_vector=true").json()
    want = single.get_collection("catalog").get([9])
    from lookalike.server.search import public_metadata, public_metadatas

    assert body["id"] == 9 and body["metadata"] == public_metadata(want.metadatas[0])
    assert np.allclose(body["vector"], want.vectors[0], atol=1e-6)
    assert sharded.get("/api/collections/catalog/items/sku%2Fa%20b").json()["id"] == "sku/a b"
    assert sharded.get("/api/collections/catalog/items/007?id_type=str").json()["id"] == "007"
    image = sharded.get(body["image_url"], params={"size": 64})
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert_error(sharded.get("/api/collections/catalog/items/999999"), 404, "IdNotFoundError")
    got = sharded.post("/api/collections/catalog/points/get", json={"ids": [3, "007", 5], "include": ["metadatas"]})
    assert got.json()["metadatas"] == public_metadatas(single.get_collection("catalog").get([3, "007", 5]).metadatas)
    every = sharded.post("/api/collections/vectors/points/get", json={"ids": None, "include": []}).json()
    assert sorted(every["ids"]) == list(range(50))
    has = sharded.post("/api/collections/catalog/points/has", json={"ids": [3, "nope"]}).json()
    assert has["found"] == [True, False]


@pytest.mark.slow
def test_facets_sum_the_shards(sharded, twin):
    from lookalike.database import SQLITE_FILE
    from lookalike.server.facets import collection_facets

    got = sharded.get("/api/collections/catalog/facets").json()["facets"]
    assert got == collection_facets(twin[0] / "collections" / "catalog" / SQLITE_FILE)
    assert set(got) == {"class", "colour"}


@pytest.mark.slow
def test_facets_read_on_the_shards_node(ray_local, twin):
    """The path for shard directories on other nodes' disks: a task on the shard's node reads its file."""
    from lookalike.server.facets import read_on_node, shard_facets

    sqlite_file = next((twin[1] / "shard-000").rglob("catalog/collection.sqlite"))
    node = ray_local.get_runtime_context().get_node_id()
    remote = ray_local.get(read_on_node(node, str(sqlite_file)), timeout=120)
    assert remote == shard_facets(sqlite_file) and remote["class"]


@pytest.mark.slow
def test_batch_query_and_tune(sharded, single):
    queries = np.random.default_rng(3).normal(size=(4, 8)).astype(np.float32)
    body = sharded.post("/api/collections/vectors/query", json={"vectors": queries.tolist(), "k": 6}).json()
    want = single.get_collection("vectors").query(queries, k=6)
    assert body["ids"] == want.ids.tolist()  # random vectors: no ties
    assert body["stats"]["shards"] == SHARDS
    assert_error(sharded.post("/api/collections/vectors/tune", headers=KEY, json={"index": "flat"}),
                 400, "InvalidParameterError")


# ----------------------------------------------------------------------------------------------- writes (slow: Ray)
@pytest.mark.slow
def test_collection_lifecycle_and_points(sharded):
    created = sharded.post("/api/collections", headers=KEY, json={"name": "scratch", "dim": 4, "metric": "l2"})
    assert created.status_code == 201 and created.json()["n_shards"] == SHARDS
    again = sharded.post("/api/collections", headers=KEY, json={"name": "scratch", "dim": 4, "metric": "l2",
                                                                "exist_ok": True})
    assert again.status_code == 200
    ids = list(range(20)) + ["a", "b"]
    vectors = np.random.default_rng(1).normal(size=(len(ids), 4)).round(3).tolist()
    points = {"ids": ids, "vectors": vectors, "metadata": [{"n": i} for i in range(22)]}
    written = sharded.post("/api/collections/scratch/points", headers=KEY, json=points)
    assert written.json() == {"written": 22, "count": 22}
    assert_error(sharded.post("/api/collections/scratch/points", headers=KEY,
                              json={"ids": [3], "vectors": [vectors[0]], "replace": False}), 409, "DuplicateIdError")
    hit = sharded.post("/api/collections/scratch/search", json={"vector": vectors[21], "k": 1}).json()["hits"][0]
    assert hit["id"] == "b" and hit["metadata"] == {"n": 21}
    deleted = sharded.post("/api/collections/scratch/points/delete", headers=KEY, json={"ids": ["a", 0]}).json()
    assert deleted == {"deleted": 2, "count": 20}
    assert sharded.post("/api/collections/scratch/points/delete", headers=KEY,
                        json={"where": {"n": {"$lt": 5}}}).json() == {"deleted": 4, "count": 16}
    assert sharded.post("/api/collections/scratch/drop", headers=KEY).json() == {"dropped": "scratch"}
    assert "scratch" not in [c["name"] for c in sharded.get("/api/collections").json()]
    assert_error(sharded.get("/api/collections/scratch"), 404, "CollectionNotFoundError")


def _query_until_built(client, path: str, body: dict, timeout: float = 300.0) -> tuple[int, dict]:
    """Queries back to back while the build runs, each one answered; (queries while 'building', final status)."""
    during = 0
    deadline = time.monotonic() + timeout
    while True:
        answer = client.post(f"/api/collections/{path}/search", json=body)
        assert answer.status_code == 200, answer.text
        status = client.get(f"/api/collections/{path}/index").json()
        if status["state"] != "building":
            return during, status
        during += 1
        assert time.monotonic() < deadline, "the build did not finish"


@pytest.mark.slow
def test_index_builds_while_queries_go_on(sharded, embedder):
    index = "/api/collections/catalog/index"
    started = sharded.post(index, headers=KEY, json={"type": "ivf", "params": {"nlist": 4}})
    assert started.status_code == 202 and started.json()["state"] == "building"
    assert_error(sharded.post(index, headers=KEY, json={"type": "ivf", "params": {"nlist": 2}}),
                 409, "BuildInProgressError")
    point = np.random.default_rng(5).normal(size=embedder.dim).tolist()
    written = sharded.post("/api/collections/catalog/points", headers=KEY,
                           json={"ids": ["written-during-build"], "vectors": [point]})
    assert written.status_code == 200
    during, status = _query_until_built(sharded, "catalog", {"text": "coat", "k": 5})
    assert during >= 1
    assert status["state"] == "done", status
    assert status["default_index"] == "ivf" and "ivf" in status["indexes"]
    assert status["count"] == N_ITEMS + 1 and len(status["config"]["shard_build_s"]) == SHARDS
    answer = sharded.post("/api/collections/catalog/search", json={"vector": point, "k": 1,
                                                                   "params": {"nprobe": 4}}).json()
    assert answer["index"] == "ivf" and answer["hits"][0]["id"] == "written-during-build"

    # a rebuild with other parameters: the old IVF answers meanwhile, explicitly named
    rebuilt = sharded.post(index, headers=KEY, json={"type": "ivf", "params": {"nlist": 8}})
    assert rebuilt.status_code == 202
    during, status = _query_until_built(sharded, "catalog", {"text": "shirt", "k": 5, "index": "ivf",
                                                             "params": {"nprobe": 2}})
    assert status["state"] == "done", status
    info = sharded.get("/api/collections/catalog").json()
    assert {i["name"]: i["params"] for i in info["indexes"]}["ivf"]["nlist"] == 8
    assert_error(sharded.post(index, headers=KEY, json={"type": "ivf", "params": {"nlist": -1}}), 400)


# ------------------------------------------------------------------------------------- the serve command (no Ray)
def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_serve_takes_ray_address_and_shards():
    args = _serve_args("--db", "x", "--ray-address", "auto", "--shards", "3")
    assert (args.ray_address, args.shards) == ("auto", 3)
    assert (_serve_args().ray_address, _serve_args().shards) == (None, None)


def test_create_writes_a_sharded_manifest(tmp_path):
    from lookalike.distributed.layout import read_layout

    db = tmp_path / "new"
    assert "--create" in prepare_database(db, ray_address="local", n_shards=3)
    assert prepare_database(db, create=True, ray_address="local", n_shards=3) is None
    assert read_layout(db).n_shards == 3 and not (db / "lookalike.json").exists()
    assert prepare_database(db) is None  # a sharded directory is served as one, address or not


def test_serve_refuses_mixed_layouts(tmp_path):
    Database(tmp_path / "single").close()
    assert "single-node" in prepare_database(tmp_path / "single", ray_address="auto")
    assert "--ray-address" in prepare_database(tmp_path / "other", create=True, n_shards=2)
    assert not (tmp_path / "other").exists()


def test_a_single_node_database_is_not_opened_on_ray(tmp_path):
    from lookalike.errors import InvalidParameterError
    from lookalike.server.state import ServerConfig, ServerState

    Database(tmp_path / "single").close()
    with pytest.raises(InvalidParameterError, match="single-node"):
        ServerState(ServerConfig(db_path=tmp_path / "single", ray_address="local"))
