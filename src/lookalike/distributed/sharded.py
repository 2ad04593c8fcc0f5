"""ShardedDatabase / ShardedCollection: the Database and Collection API over shards that are Ray actors.

    sdb = ShardedDatabase("path/", n_shards=4, address=None)     # None: start or join a local Ray
    col = sdb.create_collection("products", dim=512, metric="cosine")
    col.add(ids, vectors, metadata); col.create_index("ivf", nlist=1024); col.query(Q, k=10, nprobe=16)

A point lives on the shard its id hashes to (``routing.py``), so add/upsert/get/delete talk to owner shards only,
and "this id is already stored" is checked where it would be stored.  A query goes to every shard at once and the
per-shard top-k lists are merged (``merge.py``).  Every call waits for every shard it needs: a shard that cannot
answer fails the call with ShardUnavailableError naming it, never a silently partial answer.  Errors a shard
raises on purpose (DimensionMismatchError, IdNotFoundError, ...) reach the caller as themselves.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError

from .._validation import as_matrix, check_k, check_positive_int
from ..collection import Points, check_ids, check_points
from ..database import MAX_DIM, check_name
from ..errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DuplicateIdError,
    IdNotFoundError,
    InvalidInputError,
    InvalidParameterError,
    LookalikeError,
)
from ..metrics import get_metric
from ..types import SearchResult
from .errors import ShardLayoutError, ShardUnavailableError
from .layout import MANIFEST, Layout, open_layout, read_layout, write_layout
from .merge import merge_answers
from .routing import group_by_shard, shard_of
from .shard import start_shard

log = logging.getLogger(__name__)

LARGE_ARGUMENT = 100 * 1024  # bytes: Ray inlines smaller arguments in the call itself

NOT_RETRIED = ("this write is not retried on a restarted shard (run twice it would fail): other shards may have "
               "applied their part; repeat it with upsert, which is safe to run twice")


def connect_ray(address: str | None = None, init_kwargs: dict[str, Any] | None = None) -> bool:
    """Join (or start) Ray unless this process already did.  Returns whether this call started the connection.

    ``address`` None starts a local Ray, or joins the one ``RAY_ADDRESS`` / the latest ``ray start`` names;
    "auto" joins the cluster this node belongs to; "ray://host:10001" connects through the Ray Client."""
    if ray.is_initialized():
        return False
    kwargs = dict(init_kwargs or {})
    if address is None:
        kwargs.setdefault("include_dashboard", False)  # a local Ray needs no web dashboard (nor its port)
    ray.init(address=address, **kwargs)
    return True


class ShardGroup:
    """The shard actors of one layout, called all at once; a failure names its shard."""

    def __init__(self, path: Path, layout: Layout, shards: list, query_timeout_s: float | None):
        self.path = path
        self.layout = layout
        self.shards = shards
        self.query_timeout_s = query_timeout_s

    @property
    def n_shards(self) -> int:
        return self.layout.n_shards

    def shard_directory(self, shard: int) -> Path:
        return self.path / self.layout.shards[shard]

    def shard_info(self) -> list[dict[str, Any]]:
        """Each shard's number, process id, node and directory (waits for restarting shards)."""
        return self.fanout("ping", timeout=self.query_timeout_s)

    def fanout(self, method: str, *args: Any, shards: list[int] | None = None, timeout: float | None = None,
               hint: str = "") -> list[Any]:
        """Call ``method(*args)`` on shards (default: all) at once and wait for every answer, in shard order."""
        targets = range(self.n_shards) if shards is None else shards
        return self.gather([(s, getattr(self.shards[s], method).remote(*args)) for s in targets], timeout, hint)

    def gather(self, calls: list[tuple[int, Any]], timeout: float | None, hint: str = "") -> list[Any]:
        """Wait for ``(shard, ObjectRef)`` calls already running in parallel (``timeout`` for all of them), and
        return their answers in order.  Any failure fails the whole call, naming the shard: no partial answer."""
        refs = [ref for _, ref in calls]
        ready = set(ray.wait(refs, num_returns=len(refs), timeout=timeout)[0]) if refs else set()
        answers, failure, late = [], None, []
        for shard, ref in calls:
            if ref not in ready:
                late.append(shard)
                continue
            try:  # every answer is fetched, errors included, so none is left unhandled
                answers.append(ray.get(ref))
            except Exception as exc:  # noqa: BLE001  (translated below, or re-raised as is)
                failure = failure or self._translate(shard, exc, hint)
        if failure is not None:
            raise failure
        if late:
            shards = ", ".join(f"{s} ({self.shard_directory(s)})" for s in late)
            raise ShardUnavailableError(
                f"shard(s) {shards} did not answer within {timeout:g}s: restarting or overloaded; retry, or open the "
                "database with a larger query_timeout_s", late[0])
        return answers

    def _translate(self, shard: int, exc: Exception, hint: str) -> Exception:
        """The error the caller sees for a shard's failure: its lookalike error, or ShardUnavailableError."""
        where = f"shard {shard} ({self.shard_directory(shard)})"
        if isinstance(exc, RayTaskError):
            cause = lookalike_cause(exc)
            if cause is None:
                return exc
            cause.add_note(f"raised by {where}")
            return cause
        if isinstance(exc, RayActorError):
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
            detail = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # the last line names the cause
            return ShardUnavailableError(f"{where} is unavailable ({detail})" + (f"; {hint}" if hint else ""), shard)
        return exc


class ShardedDatabase(ShardGroup):
    """Named collections split over ``n_shards`` Ray actors, each owning a local Database under ``path``.

    ``n_shards`` None reopens with the count the manifest records (4 for a new database); another count than the
    recorded one raises ShardLayoutError (use ``reshard``).  ``actor_options`` go to every shard's
    ``.options(...)`` (a dict, or a function of the shard number, e.g. to pin shard i to the node holding its
    directory with a custom resource).  ``query_timeout_s`` bounds how long a read waits for a restarting shard."""

    def __init__(self, path: str | Path, n_shards: int | None = None, address: str | None = None, *,
                 max_restarts: int = -1, actor_options: dict[str, Any] | Callable[[int], dict] | None = None,
                 query_timeout_s: float | None = 120.0, init_kwargs: dict[str, Any] | None = None):
        root = Path(path).resolve()
        layout = open_layout(root, n_shards)
        self._owns_ray = connect_ray(address, init_kwargs)
        self._collections: dict[str, ShardedCollection] = {}
        self._closed = False
        self.actor_options = actor_options
        shards = [start_shard(str(directory), i, max_restarts=max_restarts, options=actor_options)
                  for i, directory in enumerate(layout.shard_paths(root))]
        super().__init__(root, layout, shards, query_timeout_s)
        try:  # waits until every shard has opened its database, and repairs a create that missed a shard
            self.fanout("ensure_collections", self.layout.collections, timeout=None)
        except BaseException:
            self.close(flush=False)  # no actor is left running behind a failed open
            raise

    # ------------------------------------------------------------------ collections
    def create_collection(self, name: str, dim: int, metric: str = "cosine", *, embedder: str | None = None,
                          exist_ok: bool = False) -> ShardedCollection:
        check_name(name)
        dim = check_positive_int(dim, "dim")
        if dim > MAX_DIM:
            raise InvalidParameterError(f"dim must be <= {MAX_DIM}, got {dim}")
        metric = get_metric(metric).name
        self._refresh_layout()
        known = self.layout.collections.get(name)
        if known is not None:
            if not exist_ok:
                raise CollectionExistsError(f"collection {name!r} already exists: use get_collection or drop it first")
            if (known["dim"], known["metric"]) != (dim, metric):
                raise CollectionExistsError(f"collection {name!r} exists with dim={known['dim']}, metric="
                                            f"{known['metric']!r}, not dim={dim}, metric={metric!r}")
            return self.get_collection(name)
        config = {"dim": dim, "metric": metric, "embedder": embedder}
        self.fanout("ensure_collections", {name: config})  # on every shard first, then in the manifest
        self.layout.collections[name] = config
        write_layout(self.path, self.layout)
        return self.get_collection(name)

    def get_or_create_collection(self, name: str, dim: int, metric: str = "cosine", **kw: Any) -> ShardedCollection:
        return self.create_collection(name, dim, metric, exist_ok=True, **kw)

    def get_collection(self, name: str) -> ShardedCollection:
        check_name(name)
        if name not in self.layout.collections:
            self._refresh_layout()
        config = self.layout.collections.get(name)
        if config is None:
            raise CollectionNotFoundError(
                f"no collection {name!r} in {self.path}; existing: {self.list_collections() or 'none'}")
        if name not in self._collections:
            self._collections[name] = ShardedCollection(self, name, config)
        return self._collections[name]

    def list_collections(self) -> list[str]:
        self._refresh_layout()
        return sorted(self.layout.collections)

    def drop_collection(self, name: str) -> None:
        check_name(name)
        self._refresh_layout()
        if name not in self.layout.collections:
            raise CollectionNotFoundError(f"no collection {name!r} in {self.path}")
        del self.layout.collections[name]  # out of the manifest first: a half-done drop leaves no visible half
        write_layout(self.path, self.layout)
        self._collections.pop(name, None)
        self.fanout("drop_collection", name)

    def __contains__(self, name: str) -> bool:
        return name in self.list_collections()

    def _refresh_layout(self) -> None:
        """Pick up collections another process created or dropped; refuse to go on over a resharded layout."""
        current = read_layout(self.path)
        if (current.generation, current.shards) != (self.layout.generation, self.layout.shards):
            raise ShardLayoutError(
                f"{self.path} was resharded to {current.n_shards} shards since it was opened here: reopen it")
        self.layout.collections = current.collections

    # ------------------------------------------------------------------ lifecycle
    def flush(self) -> None:
        """Save every shard's in-memory indexes (data needs no flushing: each write already committed)."""
        self.fanout("flush")

    def close(self, *, flush: bool = True) -> None:
        """Flush, stop the shard actors, and disconnect from Ray if this object connected."""
        if self._closed:
            return
        self._closed = True
        try:
            if flush:
                self.flush()
        except LookalikeError as exc:  # a shard that cannot flush loses only a cache: its index is rebuilt on open
            log.warning("could not flush every shard of %s: %s", self.path, exc)
        finally:
            for actor in self.shards:
                ray.kill(actor, no_restart=True)
            self._collections.clear()
            if self._owns_ray:
                ray.shutdown()

    def __enter__(self) -> ShardedDatabase:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ShardedDatabase({str(self.path)!r}, n_shards={self.n_shards})"


class ShardedCollection:
    """The Collection API over the shards.  Do not construct directly: use ``ShardedDatabase.get_collection``."""

    def __init__(self, db: ShardedDatabase, name: str, config: dict[str, Any]):
        self._db = db
        self.name = name
        self.dim: int = int(config["dim"])
        self.metric: str = config["metric"]
        self.embedder: str | None = config.get("embedder")
        self._spec = get_metric(self.metric)

    @property
    def n_shards(self) -> int:
        return self._db.n_shards

    def _read(self, method: str, *args: Any, shards: list[int] | None = None) -> list[Any]:
        return self._db.fanout(method, self.name, *args, shards=shards, timeout=self._db.query_timeout_s)

    # ================================================================== info
    def __len__(self) -> int:
        return sum(self._read("count"))

    def count(self) -> int:
        return len(self)

    def shard_counts(self) -> list[int]:
        """How many points each shard holds."""
        return self._read("count")

    def owner_shards(self, ids: Any) -> list[int]:
        """The shard each id belongs to (stored or not)."""
        return [shard_of(i, self.n_shards) for i in check_ids(ids)]

    def info(self) -> dict[str, Any]:
        infos = self._read("info")
        built = [set(info["indexes"]) for info in infos]
        complete = set.intersection(*built)
        return {
            "name": self.name, "dim": self.dim, "metric": self.metric, "embedder": self.embedder,
            "count": sum(info["count"] for info in infos),
            "version": sum(info["version"] for info in infos),  # changes whenever any shard is written
            "indexes": {name: config for name, config in infos[0]["indexes"].items() if name in complete},
            "default_index": infos[0]["default_index"],
            "metadata_indexes": infos[0].get("metadata_indexes", []),
            "n_shards": self.n_shards,
            "shard_counts": [info["count"] for info in infos],
            "incomplete_indexes": sorted(set.union(*built) - complete),  # a build that did not finish everywhere
        }

    @property
    def indexes(self) -> list[str]:
        return list(self.info()["indexes"])

    @property
    def default_index(self) -> str:
        return self.info()["default_index"]

    def __repr__(self) -> str:
        return f"ShardedCollection({self.name!r}, dim={self.dim}, metric={self.metric!r}, shards={self.n_shards})"

    # ================================================================== writes
    def add(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add new points.  An id already stored (on its owner shard) or given twice raises DuplicateIdError before
        anything is written."""
        self._write(ids, vectors, metadata, replace=False)

    def upsert(self, ids: Any, vectors: Any, metadata: Any = None) -> None:
        """Add points, replacing the vector and metadata of ids already stored."""
        self._write(ids, vectors, metadata, replace=True)

    def _write(self, ids: Any, vectors: Any, metadata: Any, *, replace: bool) -> None:
        # every check a shard would make, made here on the whole batch, so errors name the caller's row numbers
        ext_ids, x, _ = check_points(ids, vectors, metadata, self.dim, refuse_zero=self._spec.normalize)
        metas = [metadata] if isinstance(metadata, dict) else metadata
        groups = group_by_shard(ext_ids, self.n_shards)
        if not replace:
            self._refuse_stored(ext_ids, groups)
        calls = [(s, getattr(self._db.shards[s], "upsert" if replace else "add").remote(
            self.name, [ext_ids[i] for i in pos], x[pos], None if metas is None else [metas[i] for i in pos]))
            for s, pos in groups.items()]
        self._db.gather(calls, None, "" if replace else NOT_RETRIED)

    def _stored_flags(self, ext_ids: list, groups: dict[int, np.ndarray]) -> np.ndarray:
        flags = np.zeros(len(ext_ids), dtype=bool)
        calls = [(s, self._db.shards[s].has.remote(self.name, [ext_ids[i] for i in pos])) for s, pos in groups.items()]
        for (s, pos), found in zip(groups.items(), self._db.gather(calls, self._db.query_timeout_s)):
            flags[pos] = found
        return flags

    def _refuse_stored(self, ext_ids: list, groups: dict[int, np.ndarray]) -> None:
        stored = np.flatnonzero(self._stored_flags(ext_ids, groups))
        if len(stored):
            raise DuplicateIdError(
                f"id {ext_ids[stored[0]]!r} is already in collection {self.name!r}: use upsert to replace it")

    def delete(self, ids: Any = None, *, where: dict[str, Any] | None = None) -> int:
        """Delete points by id (every id must exist, else IdNotFoundError and nothing is deleted) or by filter on
        every shard.  Returns how many were deleted."""
        if (ids is None) == (where is None):
            raise InvalidInputError("delete takes ids or where=, exactly one of them")
        if where is not None:
            return sum(self._db.fanout("delete", self.name, None, where, hint=NOT_RETRIED))
        ext_ids = check_ids(ids)
        groups = group_by_shard(ext_ids, self.n_shards)
        missing = [ext_ids[i] for i in np.flatnonzero(~self._stored_flags(ext_ids, groups))]
        if missing:
            raise IdNotFoundError(
                f"{len(missing)} id(s) not in collection {self.name!r}, first {missing[0]!r}; nothing deleted")
        calls = [(s, self._db.shards[s].delete.remote(self.name, [ext_ids[i] for i in pos], None))
                 for s, pos in groups.items()]
        return sum(self._db.gather(calls, None, NOT_RETRIED))

    # ================================================================== reads
    def get(self, ids: Any) -> Points:
        """Vectors and metadata of ids, in the order given.  An unknown id raises IdNotFoundError."""
        ext_ids = check_ids(ids)
        groups = group_by_shard(ext_ids, self.n_shards)
        calls = [(s, self._db.shards[s].get.remote(self.name, [ext_ids[i] for i in pos])) for s, pos in groups.items()]
        vectors = np.empty((len(ext_ids), self.dim), dtype=np.float32)
        metadatas: list[dict[str, Any] | None] = [None] * len(ext_ids)
        for pos, (vecs, metas) in zip(groups.values(), self._db.gather(calls, self._db.query_timeout_s)):
            vectors[pos] = vecs
            for i, meta in zip(pos, metas):
                metadatas[i] = meta
        return Points(ids=ext_ids, vectors=vectors, metadatas=metadatas)

    def has(self, ids: Any) -> list[bool]:
        """Whether each id is stored (asked of its owner shard only)."""
        ext_ids = check_ids(ids)
        return self._stored_flags(ext_ids, group_by_shard(ext_ids, self.n_shards)).tolist()

    def ids(self) -> list[Any]:
        """Every id: shard by shard, each in its insertion order."""
        return [i for shard_ids in self._read("ids") for i in shard_ids]

    def get_vectors(self, ids: Any = None) -> np.ndarray:
        """Vectors as stored, of ``ids`` or of every point in ``ids()`` order."""
        every = self.ids() if ids is None else ids
        if ids is None and not every:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.get(every).vectors

    def query(self, vectors: Any, k: int = 10, where: dict[str, Any] | None = None, index: str | None = None, *,
              with_recall: bool = False, include_metadata: bool = True, **query_params: Any) -> SearchResult:
        """The k nearest points of each query over all shards: every shard searches its part at once with the same
        index, filter and parameters, and the k best of the S * k candidates are kept.  ``with_recall`` measures
        against the merged exact search of all shards."""
        k = check_k(k)
        q = as_matrix(vectors, self.dim, what="queries")
        t0 = time.perf_counter()
        # a large batch goes once to the object store, read by every shard; a small one rides inside each call
        q_arg = ray.put(q) if q.nbytes > LARGE_ARGUMENT and self.n_shards > 1 else q
        answers = self._read("query", q_arg, k, where, index, with_recall, include_metadata, query_params)
        result = merge_answers(answers, k, self._spec, include_metadata=include_metadata, with_recall=with_recall)
        result.stats["fanout_ms"] = 1000 * (time.perf_counter() - t0)
        return result

    # ================================================================== indexes
    def create_index(self, type: str, *, default: bool = True, online: bool = False, **params: Any) -> dict[str, Any]:
        """Build the index on every shard in parallel (each over its own points, with the same parameters).
        Bad parameters raise before any shard starts.  ``build_s`` is the wall time of the slowest shard.

        A shard answers one call at a time, so during a build its queries wait.  ``online=True`` builds in
        separate actors over the same shard directories instead (the shards keep answering; each node needs the
        memory of a second copy of its shards meanwhile), then the shards reopen to load the new index files."""
        from ..index.registry import from_config

        if type != "flat":
            from_config({"type": type, "dim": self.dim, "metric": self.metric, **params})
        t0 = time.perf_counter()
        if online:
            reports = self._build_aside(type, default, params)
        else:
            reports = self._db.fanout("create_index", self.name, type, default, params)
        report = {key: value for key, value in reports[0].items() if key not in ("build_s", "count")}
        return {**report, "build_s": time.perf_counter() - t0, "count": sum(r.get("count", 0) for r in reports),
                "shard_build_s": [r["build_s"] for r in reports]}

    def _build_aside(self, type: str, default: bool, params: dict[str, Any]) -> list[dict[str, Any]]:
        db = self._db
        builders = [start_shard(str(db.shard_directory(i)), i, max_restarts=0, options=db.actor_options)
                    for i in range(db.n_shards)]
        try:
            group = ShardGroup(db.path, db.layout, builders, None)
            reports = group.fanout("create_index", self.name, type, default, params)
            group.fanout("flush")
        finally:
            for actor in builders:
                ray.kill(actor, no_restart=True)
        db.fanout("reopen")
        return reports

    def create_metadata_index(self, key: str) -> None:
        """A B-tree on one metadata key, on every shard (filters apply per shard).  Idempotent."""
        self._db.fanout("create_metadata_index", self.name, key)

    def drop_index(self, type: str) -> None:
        self._db.fanout("drop_index", self.name, type)

    def flush(self) -> None:
        self._db.flush()


def lookalike_cause(exc: BaseException) -> LookalikeError | None:
    """The lookalike error inside a Ray task error, however deeply wrapped (a shard calling another shard, a Ray
    Data task calling a shard, ...), or None."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, LookalikeError) and not isinstance(exc, (RayTaskError, RayActorError)):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__
        seen += 1
    return None


def open_database(path: str | Path, ray_address: str | None = None, n_shards: int | None = None):
    """What ``lookalike serve --db PATH [--ray-address A]`` opens: a ShardedDatabase when the directory holds one
    (or when a Ray address is given for a new directory), else a local ``lookalike.Database``.  Both have
    ``list_collections`` / ``get_collection`` / ``create_collection`` and collections with ``info``, ``query``,
    ``get``, ``has``, ``create_index`` and ``len``."""
    root = Path(path)
    if (root / MANIFEST).exists() or (ray_address is not None and not (root / "lookalike.json").exists()):
        return ShardedDatabase(root, n_shards=n_shards, address=ray_address)
    if ray_address is not None:
        raise InvalidParameterError(
            f"{root} is a single-node database: serve it without --ray-address, or ingest it into a sharded one")
    from ..database import Database

    return Database(root)


__all__ = ["ShardGroup", "ShardedCollection", "ShardedDatabase", "connect_ray", "lookalike_cause", "open_database"]
