import json, sys, numpy as np, lookalike
db = lookalike.Database(sys.argv[1])
rng = np.random.default_rng(11)
out = {}
for name, index in [("shop", "flat"), ("shop", "hnsw"), ("plain", "flat"), ("plain", "ivf")]:
    col = db.get_collection(name)
    q = rng.normal(size=(5, col.dim)).astype(np.float32)
    r = col.query(q, k=5, index=index)
    out[f"{name}/{index}"] = {"queries": q.tolist(), "ids": r.ids.tolist(), "distances": r.distances.tolist()}
out["shop/p1"] = {"vector": db.get_collection("shop").get(["p1"]).vectors[0].tolist(),
                  "metadata": db.get_collection("shop").get(["p1"]).metadatas[0]}
out["counts"] = {n: len(db.get_collection(n)) for n in db.list_collections()}
json.dump(out, open(sys.argv[2], "w"))
