"""The query log: every query is recorded (mode, text or digest, index, params, k, latency, recall, top ids) and
exported as JSON or Parquet."""

from __future__ import annotations

import hashlib
import io
import uuid

import numpy as np

from lookalike.server.querylog import QueryLog, to_parquet

from .support import product_photo


def test_every_query_is_logged(client, catalog):
    text = f"log me {uuid.uuid4().hex[:8]}"
    photo = product_photo("Coat")
    vector = catalog[1][4]
    client.post("/api/collections/catalog/search", json={"text": text, "k": 3, "index": "ivf",
                                                         "params": {"nprobe": 2}, "with_recall": True})
    client.post("/api/collections/catalog/search/image", files={"file": ("p.jpg", photo, "image/jpeg")},
                data={"k": "4", "where": '{"class": "Coat"}'})
    client.post("/api/collections/catalog/search", json={"vector": vector.tolist(), "k": 2})
    client.post("/api/collections/catalog/search", json={"like_id": 5, "k": 2})
    rows = client.get("/api/query-log?format=json&limit=4&collection=catalog").json()["queries"]
    assert [r["mode"] for r in rows] == ["text", "image", "vector", "item"]
    by_text, by_photo, by_vector, by_item = rows
    assert by_text["text"] == text and by_text["index_name"] == "ivf" and by_text["params"] == {"nprobe": 2}
    assert by_text["k"] == 3 and len(by_text["top_ids"]) == 3 and 0 <= by_text["recall"] <= 1
    assert by_text["latency_ms"] >= by_text["search_ms"] >= 0 and by_text["exact_ms"] is not None
    assert by_photo["digest"] == hashlib.sha256(photo).hexdigest() and by_photo["text"] is None
    assert by_photo["filter"] == {"class": "Coat"} and by_photo["embed_ms"] is not None
    assert by_vector["digest"] == hashlib.sha256(np.asarray(vector, dtype="<f4").tobytes()).hexdigest()
    assert by_vector["top_ids"][0] == 4 and by_vector["recall"] is None
    assert by_item["text"] == "5"


def test_failed_queries_are_not_logged(client):
    before = client.get("/api/query-log").json()["total"]
    client.post("/api/collections/catalog/search", json={"text": "x", "k": 0})
    assert client.get("/api/query-log").json()["total"] == before


def test_parquet_export_matches_json(client):
    import pyarrow.parquet as pq

    client.post("/api/collections/catalog/search", json={"text": "parquet please", "k": 2})
    response = client.get("/api/query-log?format=parquet")
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    rows = client.get(f"/api/query-log?limit={table.num_rows}").json()["queries"]
    assert table.num_rows == len(rows) == client.get("/api/query-log").json()["total"]
    assert table.column("mode").to_pylist() == [r["mode"] for r in rows]
    assert table.column("top_ids").to_pylist()[-1] == [str(i) for i in rows[-1]["top_ids"]]
    assert str(table.schema.field("time").type) == "timestamp[ms, tz=UTC]"


def test_log_file_lives_in_the_database(catalog):
    assert (catalog[0] / "querylog.sqlite").is_file()


def test_querylog_unit(tmp_path):
    log = QueryLog(tmp_path / "q.sqlite", max_rows=5)
    for i in range(3):
        log.record(mode="text", collection="c", text="t" * 5000, index="flat", k=i + 1, top_ids=list(range(50)),
                   latency_ms={"total": 1.0, "search": 0.5, "embed": 0.2, "exact": None}, recall=None)
    rows = log.rows()
    assert [r["k"] for r in rows] == [1, 2, 3]
    assert len(rows[0]["text"]) == 1000 and rows[0]["top_ids"] == list(range(10))
    assert log.rows(limit=1)[0]["k"] == 3 and log.rows(collection="other") == []
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(to_parquet(rows)))
    assert table.column("k").to_pylist() == [1, 2, 3]
    assert table.column("exact_ms").to_pylist() == [None, None, None]
    log.close()


def test_querylog_never_fails_a_query(tmp_path):
    log = QueryLog(tmp_path / "q.sqlite")
    log.close()  # a closed connection: writes fail, and are swallowed
    assert log.record(mode="text", collection="c", text="x") is None


def test_tune_from_the_query_log_tunes_text_queries(client, catalog, capsys):
    """`lookalike tune --from-log` re-embeds what shoppers typed and keeps the result for text queries only."""
    from lookalike import Database
    from lookalike.cli import main

    words = ["red dress", "black trousers", "white sneakers", "a warm coat", "leather bag", "ankle boots",
             "striped shirt", "summer sandals", "wool pullover", "cotton t-shirt", "blue jeans", "a handbag"]
    for text in words:
        client.post("/api/collections/catalog/search", json={"text": text, "k": 3, "index": "ivf"})
    client.get("/api/query-log?format=json&limit=1")  # the log is flushed by any read
    db_path = catalog[0]
    assert main(["tune", "catalog", "--index", "ivf", "--from-log", "--target", "0.9", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "distinct text queries of the query log" in out and "nprobe=" in out
    with Database(db_path) as db:
        col = db.get_collection("catalog")
        assert set(col.tuned_params("ivf", "text")) == {"nprobe"}
        with col._store.transaction():  # leave the shared fixture as it was
            col._store.conn.execute("DELETE FROM meta WHERE key = 'tuned:ivf@text'")
