"""Make a database with release 1's layout (vectors in SQLite rows), for the migration test."""
import sys, numpy as np, lookalike, shutil
root = sys.argv[1]
shutil.rmtree(root, ignore_errors=True)
rng = np.random.default_rng(7)
db = lookalike.Database(root)
a = db.create_collection("shop", dim=8, metric="cosine")
x = rng.normal(size=(300, 8)).astype(np.float32)
a.add([f"p{i}" for i in range(300)], x, [{"colour": ["red", "blue", "white"][i % 3], "price": i} for i in range(300)])
a.create_index("hnsw", M=8, ef_construction=40)
a.upsert(["p1", "p2"], -x[1:3], [{"colour": "green", "price": 1}, None])
a.delete(["p5", "p6"])
a.add(list(range(1000, 1020)), rng.normal(size=(20, 8)).astype(np.float32))  # int ids, not indexed before save? saved on close
b = db.create_collection("plain", dim=4, metric="l2")
b.add([1, "1", 2], [[0, 0, 0, 0], [1, 2, 3, 4], [5, 5, 5, 5]])
b.create_index("ivf", nlist=2)
c = db.create_collection("empty", dim=3, metric="ip")
db.close()
