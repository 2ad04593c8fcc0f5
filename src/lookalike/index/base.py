"""The Index protocol and the logic every index shares.

An index speaks int64 *labels* (the Collection maps the user's ids to them).  Internally each added vector gets a
*row*, in insertion order; rows are what the algorithms store in their lists, graphs and trees.  The base class
keeps, per row, the prepared vector (normalised for cosine), its label, and a live flag: ``remove`` clears the
flag (a tombstone that search skips) and ``compact`` rebuilds without the dead rows.

An index may *share* its vectors (``attach(source)``): it then reads the rows, vectors and labels of another
index (a collection's exact index, the one float32 copy of its data, memory-mapped) and keeps only its own
structure and live flags.  Such an index is fed labels, not vectors (``add(None, labels)``: the source must hold
them), saves no vectors, and loads only beside the same source (``load(dir, source=...)``).

A subclass implements:
  * ``_on_add(start, stop)``: index rows [start, stop) that were just appended to ``self.vectors``;
  * ``_search_rows(queries, k, mask, **query_params)`` -> (rows (q,k) int64 padded -1, raw (q,k) float32);
  * ``_state()`` / ``_restore(state, extra)``: its own arrays (+ JSON extra) for save/load;
and may implement ``search_one(query, k, params)``: one checked query without filter answered whole by a kernel
(labels, distances), or None to decline; its own ``search`` and the collection's plain query try it first.
Build parameters go to the constructor, query parameters to ``search`` (as ann-benchmarks separates them).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._validation import as_labels, as_matrix, check_k
from ..errors import (
    DuplicateIdError,
    IdNotFoundError,
    IndexNotBuiltError,
    InvalidInputError,
    InvalidParameterError,
    StorageFormatError,
)
from ..kernels.topk import exact_topk, scan_rows
from ..metrics import MetricSpec, finalize, get_metric, prepare
from ..storage.formats import read_format_json
from ..types import AllowedRows, SearchResult, empty_result

FORMAT = "lookalike-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: a memory-mapped file up to this size is still checksummed on load; a larger one is checked by size and
#: header only (reading it all would cost what mapping it saves: the pages a search never touches)
MMAP_CRC_LIMIT = 64 << 20


class GrowableArray:
    """An array that grows by doubling along axis 0; ``view`` is the used part, its first ``n`` rows."""

    def __init__(self, shape_tail: tuple[int, ...], dtype: Any, data: np.ndarray | None = None):
        self._tail = shape_tail
        self._dtype = np.dtype(dtype)
        self._buf = data if data is not None else np.empty((0, *shape_tail), dtype=self._dtype)
        self.n = 0 if data is None else len(data)

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self.n]

    def __len__(self) -> int:
        return self.n

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self._buf) or not self._buf.flags.writeable:
            capacity = max(need, 2 * len(self._buf), 16)
            grown = np.empty((capacity, *self._tail), dtype=self._dtype)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown
        self._buf[self.n : need] = values
        self.n = need

    def writable_view(self) -> np.ndarray:
        if not self._buf.flags.writeable:  # memory-mapped read-only after load(mmap=True): copy on first write
            self._buf = np.array(self._buf[: self.n])
        return self._buf[: self.n]


class Index:
    """Base of every index.  See the module docstring for the protocol."""

    type_name: ClassVar[str] = "base"
    #: default query parameters; ``search`` rejects any name not listed here
    query_defaults: ClassVar[dict[str, Any]] = {}
    #: whether ``train`` must run before ``add`` (IVF, PQ); the first add trains on its own batch if needed
    needs_training: ClassVar[bool] = False
    #: whether this index, attached, is fastest with its source's rows in its ``source_order`` (IVF's scans)
    wants_source_order: ClassVar[bool] = False
    #: whether this index, attached, reads its source's rows at random (re-ranking a few candidates): the
    #: collection then tells the kernel not to read ahead in the mapped store
    reads_source_at_random: ClassVar[bool] = False
    #: whether searches may run while ``add_source_rows`` runs (they then see ``searchable_rows`` rows): the
    #: collection's indexer then holds the index shared, not exclusively
    concurrent_add: ClassVar[bool] = False

    def __init__(self, dim: int, metric: str = "l2", **params: Any):
        from .._validation import check_positive_int

        self.dim = check_positive_int(dim, "dim")
        self.spec: MetricSpec = get_metric(metric)
        self.params: dict[str, Any] = dict(params)
        self._vectors = GrowableArray((self.dim,), np.float32)
        self._labels = GrowableArray((), np.int64)
        self._live = GrowableArray((), np.bool_)
        self._n_live = 0
        self._sorted_cache: tuple[np.ndarray, np.ndarray] | None = None  # (sorted labels, their rows)
        self.stamp: dict[str, Any] = {}  # set by load(): what the saver recorded about the data's version
        self._source: Index | None = None  # the index whose rows this one shares (see attach)
        #: names this row numbering: a new one whenever rows are renumbered (a new index, compact, permute)
        self.generation = uuid.uuid4().hex
        self._searchable: int | None = None  # set while rows past it are being added beside searches

    # ------------------------------------------------------------------ properties
    @property
    def metric(self) -> str:
        return self.spec.name

    @property
    def vectors(self) -> np.ndarray:
        """Prepared vectors (normalised under cosine), one per row, dead rows included."""
        if self._source is not None:
            return self._source.vectors[: self._live.n]
        return self._vectors.view

    @property
    def labels(self) -> np.ndarray:
        if self._source is not None:
            return self._source.labels[: self._live.n]
        return self._labels.view

    @property
    def live(self) -> np.ndarray:
        return self._live.view

    @property
    def n_rows(self) -> int:
        return self._live.n  # (not len(): read on every query, and a Python __len__ is one more call)

    @property
    def searchable_rows(self) -> int:
        """Rows a search finds: all of them, except while ``add_source_rows`` inserts new ones beside searches."""
        searchable = self._searchable
        return self.n_rows if searchable is None else searchable

    @property
    def owns_vectors(self) -> bool:
        """False when the vectors are another index's (``attach``)."""
        return self._source is None

    @property
    def source(self) -> "Index | None":
        return self._source

    def attach(self, source: "Index") -> None:
        """Share ``source``'s rows: this index's row r is the source's row r, its vectors and labels are read
        from the source (no copy).  Only an empty index can attach; the source must be an owning index of the
        same dim and metric, and must keep its rows (a source that renumbers them is a new source)."""
        if self.n_rows:
            raise InvalidParameterError("only an empty index can attach to a vector source")
        if not source.owns_vectors or source.dim != self.dim or source.metric != self.metric:
            raise InvalidParameterError(
                f"a vector source must own its vectors and match dim {self.dim} and metric {self.metric!r}"
            )
        self._source = source
        self._vectors = self._labels = None

    @property
    def n_deleted(self) -> int:
        return self.n_rows - self._n_live

    @property
    def is_trained(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._n_live

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}(dim={self.dim}, metric={self.metric!r}{', ' + params if params else ''}; n={len(self)})"

    def config(self) -> dict[str, Any]:
        """Everything ``registry.from_config`` needs to make an empty twin of this index."""
        return {"type": self.type_name, "dim": self.dim, "metric": self.metric, **self.params}

    # ------------------------------------------------------------------ writing
    def train(self, vectors: Any) -> None:
        """Learn whatever the index needs from sample vectors (no-op for indexes without training)."""
        if self.needs_training:
            self._train(prepare(as_matrix(vectors, self.dim), self.spec))

    def add(self, vectors: Any, ids: Any = None) -> np.ndarray:
        """Add vectors under int64 labels ``ids`` (default: the next free integers).  Returns the labels.
        An attached index takes ``vectors=None`` and the labels: their vectors are the source's."""
        if self._source is not None:
            return self._add_shared(vectors, ids)
        x = prepare(as_matrix(vectors, self.dim), self.spec)
        if ids is None:
            start = int(self.labels.max()) + 1 if self.n_rows else 0
            ids = np.arange(start, start + len(x), dtype=np.int64)
        labels = as_labels(ids, len(x))
        if self.n_rows:
            known = self.has(labels)  # a removed label may come back under a new row
            if known.any():
                raise DuplicateIdError(f"id {int(labels[known][0])} is already in the index: remove it first")
        if self.needs_training and not self.is_trained:
            self._train(x)
        start = self.n_rows
        self._vectors.extend(x)
        self._labels.extend(labels)
        self._live.extend(np.ones(len(x), dtype=np.bool_))
        self._n_live += len(x)
        self._sorted_cache = None
        self._on_add(start, self.n_rows)
        return labels

    def _add_shared(self, vectors: Any, ids: Any) -> np.ndarray:
        """Index source rows by label.  Rows between the last indexed one and the new ones that the source
        holds but were not asked for (points deleted before this index caught up) become dead rows here."""
        if vectors is not None:
            raise InvalidInputError("this index reads its vectors from its source: call add(None, labels)")
        labels = as_labels(ids)
        found, rows = self._source._rows_of(labels)
        found &= self._source.live[rows]
        if not found.all():
            raise IdNotFoundError(f"label {int(labels[~found][0])} is not a live point of the vector source")
        if len(rows) == 0:
            return labels
        if int(rows.min()) < self.n_rows:
            raise DuplicateIdError(f"row {int(rows.min())} of the source is already indexed (or was skipped)")
        if self.needs_training and not self.is_trained:
            self._train(self._source.vectors[rows])
        start, stop = self.n_rows, int(rows.max()) + 1
        live = np.zeros(stop - start, dtype=np.bool_)
        live[rows - start] = True
        self._live.extend(live)
        self._n_live += len(rows)
        self._sorted_cache = None
        self._on_add(start, stop)
        return labels

    def add_source_rows(self, stop: int) -> int:
        """Attached index: take the source's rows [n_rows, stop), its live ones as points and the others as dead
        rows (what the background indexer does, step by step).  Returns how many rows were taken."""
        start = self.begin_source_rows(stop)
        if start is None:
            return 0
        self.link_source_rows(start, stop)
        return stop - start

    def begin_source_rows(self, stop: int) -> int | None:
        """The first half of ``add_source_rows``: the live flags of the new rows and room for them (the
        collection holds the index exclusively for it).  Returns the first new row, or None when there is
        nothing to take yet.  Searches see the rows before it until ``link_source_rows`` is done."""
        start = self.n_rows
        if self._source is None or stop <= start:
            return None
        live = np.array(self._source.live[start:stop], dtype=np.bool_)
        n_live = int(live.sum())
        if self.needs_training and not self.is_trained:
            if n_live == 0:
                return None  # nothing to learn from yet: wait for live rows
            self._train(self._source.vectors[start:stop][live])
        self._searchable = start
        self._live.extend(live)
        self._n_live += n_live
        self._sorted_cache = None
        self._grow(start, stop)
        return start

    def link_source_rows(self, start: int, stop: int) -> None:
        """The second half: index the rows.  For a ``concurrent_add`` index the collection runs it without
        holding the index, beside searches and writes; for any other, exclusively."""
        try:
            self._link(start, stop)
        finally:
            self._searchable = None

    def _grow(self, start: int, stop: int) -> None:
        """Room for rows [start, stop) in the index's own arrays (default: none; ``_link`` does everything)."""

    def _link(self, start: int, stop: int) -> None:
        self._on_add(start, stop)

    def _reorder_new_rows(self, start: int, order: np.ndarray) -> None:
        """Put the rows just added, [start, start + len(order)), in the order ``order`` (positions relative to
        start).  Only an owning index may: an attached one's rows are its source's."""
        stop = start + len(order)
        for part in (self._vectors, self._labels, self._live):
            view = part.writable_view()
            view[start:stop] = view[start:stop][order]
        self._sorted_cache = None

    def remove(self, ids: Any) -> None:
        """Tombstone the rows of these labels: search skips them from now on.  Unknown ids raise, nothing changes."""
        labels = as_labels(ids)
        found, rows = self._rows_of(labels)
        alive = found & self.live[rows]
        if not alive.all():
            missing = labels[~alive]
            raise IdNotFoundError(f"{len(missing)} id(s) not in the index, first {int(missing[0])}")
        self._live.writable_view()[rows] = False
        self._n_live -= len(rows)
        self._on_remove(rows)

    def compact(self) -> "Index":
        """A new index of the same kind holding only the live rows (tombstones gone)."""
        return self.rebased(self._source)

    def rebased(self, source: "Index | None") -> "Index":
        """A twin of this index over the live rows, attached to ``source`` (None: owning its vectors).  The
        default builds it afresh; indexes with a cheaper way (keeping trained centroids) override it."""
        from .registry import from_config

        fresh = from_config(self.config())
        self._fill(fresh, source)
        return fresh

    def reordered_with(self, source: "Index", order: np.ndarray) -> "Index":
        """This attached index over ``source``, the reordered twin of its old source (``source.row i`` = old row
        ``order[i]``).  The default builds it again; an index whose structure only names rows renumbers them."""
        return self.rebased(source)

    def _renumbered_twin(self, source: "Index", order: np.ndarray) -> tuple["Index", np.ndarray]:
        """For ``reordered_with``: an empty twin (build parameters, trained parts through ``_adopt_training``)
        attached to ``source`` with this index's live flags moved to their new rows, and
        ``new_row_of`` (old row -> new row) to rename whatever the index's structure stores."""
        new_row_of = np.empty(len(order), dtype=np.int64)
        new_row_of[order] = np.arange(len(order))
        fresh = type(self)(self.dim, self.metric, **self.params)
        fresh._adopt_training(self)
        fresh.attach(source)
        live = np.zeros(len(order), dtype=np.bool_)
        live[new_row_of[: self.n_rows]] = self.live
        fresh._live.extend(live)
        fresh._n_live = self._n_live
        return fresh, new_row_of

    def source_order(self) -> np.ndarray:
        """The order of the source's rows this index reads fastest (see ``wants_source_order``)."""
        raise NotImplementedError

    def _fill(self, fresh: "Index", source: "Index | None") -> None:
        """Give ``fresh`` this index's live points: by label from ``source``, else as vectors."""
        keep = np.flatnonzero(self.live)
        if source is not None:
            fresh.attach(source)
            if len(keep):
                fresh.add(None, self.labels[keep])
        elif len(keep):
            fresh.add(self._user_vectors(keep), self.labels[keep])

    def _user_vectors(self, rows: np.ndarray) -> np.ndarray:
        # prepared vectors are valid input again: cosine normalisation is idempotent
        return self.vectors[rows]

    # ------------------------------------------------------------------ reading
    def search_one(self, query: np.ndarray, k: int, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """The short way for the commonest call, one query without filter, for a caller that has checked it as
        ``_validation.one_query`` does ((1, dim) float32, C-contiguous; 1 <= k <= MAX_K): (labels, distances),
        each (1, k), exactly as ``search`` answers them, or None when the short way does not apply (a parameter
        it does not take, tombstones, fewer than k hits, a NaN or a zero query...), and the caller then calls
        ``search``, which answers or raises.  An index whose kernel answers one query whole overrides it; here,
        None: every query takes ``search``."""
        return None

    def search(self, queries: Any, k: int = 10, *, allowed_ids: Any = None, **query_params: Any) -> SearchResult:
        """The k nearest live points of each query.  ``allowed_ids`` restricts the answer to those labels;
        rows that the approximate search leaves short are completed by an exact search over the allowed set,
        so a filtered query returns k hits whenever k allowed points exist."""
        q = as_matrix(queries, self.dim, what="queries")
        q = prepare(q, self.spec, what="queries")
        k = check_k(k)
        params = self._query_params(query_params)
        if self._n_live == 0:
            return empty_result(len(q), k)
        if allowed_ids is None and self.n_deleted == 0:
            mask = None
            n_candidates = self._n_live
        else:
            mask = self.live  # read only: the kernels never write a mask
            if allowed_ids is not None:
                mask = mask & self._mask_of(allowed_ids)
            n_candidates = int(np.count_nonzero(mask))
            if n_candidates == 0:
                return empty_result(len(q), k)
        rows, raw = self._search_rows(q, k, mask, **params)
        if allowed_ids is not None:
            rows, raw = self._complete_short_rows(q, k, mask, n_candidates, rows, raw)
        return self._result(rows, raw)

    def _query_params(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.query_defaults)
        if unknown:
            allowed = sorted(self.query_defaults) or "none"
            raise InvalidParameterError(
                f"{type(self).__name__}.search got unknown parameter(s) {sorted(unknown)}; it takes: {allowed}"
            )
        params = dict(self.query_defaults)
        params.update({k: v for k, v in given.items() if v is not None})
        return params

    def _scan_masked_rows(self, query: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact (rows, raw) of one prepared query (1, dim) among the rows ``mask`` allows, reading only those rows
        in place (no scores for the others, no copy of them): what a selective filter costs least with."""
        return scan_rows(query, self.vectors, np.flatnonzero(mask), mask, False, k, self.spec.kind == "ip", False)

    def _complete_short_rows(self, q, k, mask, n_candidates, rows, raw):
        want = min(k, n_candidates)
        short = np.flatnonzero((rows >= 0).sum(axis=1) < want)
        if len(short):
            exact_rows, exact_raw = exact_topk(q[short], self.vectors, k, self.spec.kind, mask)
            rows, raw = rows.copy(), raw.copy()
            rows[short], raw[short] = exact_rows, exact_raw
        return rows, raw

    def _result(self, rows: np.ndarray, raw: np.ndarray) -> SearchResult:
        found = rows >= 0
        ids = np.where(found, self.labels[np.where(found, rows, 0)], -1).astype(np.int64)
        return SearchResult(ids=ids, distances=finalize(np.where(found, raw, np.inf), self.spec))

    def get_vectors(self, ids: Any) -> np.ndarray:
        """Stored (prepared) vectors of live labels."""
        labels = as_labels(ids)
        found, rows = self._rows_of(labels)
        if not found.all() or not self.live[rows].all():
            raise IdNotFoundError("some ids are not in the index")
        return self.vectors[rows]

    def has(self, labels: Any) -> np.ndarray:
        """Bool per label: is it a live point of this index (no error for unknown labels)."""
        labels = np.asarray(labels, dtype=np.int64).ravel()
        if len(labels) == 0 or self.n_rows == 0:
            return np.zeros(len(labels), dtype=bool)
        found, rows = self._rows_of(labels)
        return found & self.live[rows]

    def __contains__(self, label: int) -> bool:
        return bool(self.has([label])[0])

    # ------------------------------------------------------------------ label <-> row
    def _rows_of(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, rows) of labels; a label tombstoned and re-added maps to its newest row."""
        if self._sorted_cache is None:
            order = np.argsort(self.labels, kind="stable")
            self._sorted_cache = (self.labels[order], order)
        sorted_labels, order = self._sorted_cache
        if len(sorted_labels) == 0:
            return np.zeros(len(labels), bool), np.zeros(len(labels), np.int64)
        pos = np.searchsorted(sorted_labels, labels, side="right") - 1
        pos = np.clip(pos, 0, len(sorted_labels) - 1)
        found = sorted_labels[pos] == labels
        return found, order[pos].astype(np.int64)

    def _mask_of(self, allowed_ids: Any) -> np.ndarray:
        if type(allowed_ids) is AllowedRows:
            allowed_ids = allowed_ids.mask
        allowed = np.asarray(allowed_ids)
        if allowed.dtype == np.bool_ and len(allowed) >= self.n_rows:
            return allowed[: self.n_rows]  # a row mask (an attached index's: over its source's rows)
        allowed = allowed.astype(np.int64, copy=False).ravel()
        mask = np.zeros(self.n_rows, dtype=np.bool_)
        found, rows = self._rows_of(allowed)
        mask[rows[found]] = True
        return mask

    # ------------------------------------------------------------------ hooks
    def _train(self, vectors: np.ndarray) -> None:
        pass

    def _adopt_training(self, trained: "Index") -> None:
        """Take over what ``trained`` (a twin) learnt, for a twin that is filled again without relearning."""

    def _on_add(self, start: int, stop: int) -> None:
        pass

    def _on_remove(self, rows: np.ndarray) -> None:
        pass

    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None, **params: Any):
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _extra(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, stamp: dict[str, Any] | None = None) -> None:
        """Write the index as a directory of .npy files plus manifest.json.  The directory is written aside and
        swapped in, so a crash leaves either the old index or the new one, never a mix.  ``stamp`` (JSON) is
        stored in the manifest and given back as ``index.stamp`` on load: the Collection records there which
        version of its SQLite data the index was built from."""
        path = Path(path)
        arrays = {"live": self.live, **self._state()}
        if self.owns_vectors:
            arrays = {"vectors": self.vectors, "labels": self.labels, **arrays}
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        try:
            files = {name: _write_npy(tmp / f"{name}.npy", arr) for name, arr in arrays.items()}
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                **self.config(),
                "count": len(self),
                "n_rows": self.n_rows,
                "files": files,
                "extra": self._extra(),
                "stamp": stamp or {},
                "generation": self.generation,
                "source_generation": None if self._source is None else self._source.generation,
            }
            _write_json(tmp / MANIFEST, manifest)
            _swap_dir(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = False, *, source: "Index | None" = None,
             verify: bool = False) -> "Index":
        """Open a saved index; ``mmap=True`` maps the arrays read-only instead of reading them (copy on write).
        An index saved attached to a vector source loads only beside that source (same ``generation``).
        A missing, foreign, truncated or corrupted file raises StorageFormatError: every file's checksum is
        verified, except, when mapped, files over MMAP_CRC_LIMIT (reading them whole is what mapping avoids)
        unless ``verify``."""
        from .registry import get_index_class

        path = Path(path)
        manifest = read_manifest(path)
        klass = get_index_class(manifest["type"])
        if cls is not Index and not issubclass(klass, cls):
            raise StorageFormatError(f"{path} holds a {manifest['type']!r} index, not a {cls.type_name!r} one")
        params = {k: v for k, v in manifest.items() if k not in _MANIFEST_KEYS}
        index = klass(manifest["dim"], manifest["metric"], **params)
        arrays = {name: _read_npy(path / f"{name}.npy", meta, mmap, verify)
                  for name, meta in manifest["files"].items()}
        n_rows = manifest["n_rows"]
        shared = manifest.get("source_generation") is not None
        if shared:
            if source is None or source.generation != manifest["source_generation"] or source.n_rows < n_rows:
                raise StorageFormatError(f"{path} was saved beside another vector source (rows renumbered since)")
            index.attach(source)
        for name in ("live",) if shared else ("vectors", "labels", "live"):
            if name not in arrays or len(arrays[name]) != n_rows:
                raise StorageFormatError(f"{path}: {name}.npy does not hold {n_rows} rows")
        if not shared:
            if arrays["vectors"].shape[1:] != (index.dim,):
                raise StorageFormatError(f"{path}: vectors.npy has shape {arrays['vectors'].shape}, dim is {index.dim}")
            index._vectors = GrowableArray((index.dim,), np.float32, arrays.pop("vectors"))
            index._labels = GrowableArray((), np.int64, arrays.pop("labels"))
        index._live = GrowableArray((), np.bool_, arrays.pop("live"))
        index._n_live = int(index.live.sum())
        if index._n_live != manifest["count"]:
            raise StorageFormatError(f"{path}: manifest says {manifest['count']} live points, live.npy has {index._n_live}")
        index._restore(arrays, manifest.get("extra", {}))
        index.stamp = manifest.get("stamp", {})
        index.generation = manifest.get("generation") or index.generation
        return index

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise IndexNotBuiltError(f"{type(self).__name__} is not trained: call train() or add() first")


_MANIFEST_KEYS = {"format", "format_version", "type", "dim", "metric", "count", "n_rows", "files", "extra", "stamp",
                  "generation", "source_generation"}


def read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    manifest = read_format_json(file, FORMAT, FORMAT_VERSION, "a lookalike index")
    for key in ("type", "dim", "metric", "count", "n_rows", "files"):
        if key not in manifest:
            raise StorageFormatError(f"{file} lacks {key!r}")
    return manifest


def _write_npy(file: Path, arr: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(arr)
    with open(file, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return {"shape": list(arr.shape), "dtype": arr.dtype.str, "bytes": file.stat().st_size, "crc32": _crc32(file)}


def _read_npy(file: Path, meta: dict[str, Any], mmap: bool, verify: bool = False) -> np.ndarray:
    try:
        if file.stat().st_size != meta["bytes"]:
            raise StorageFormatError(f"{file} has {file.stat().st_size} bytes, the manifest says {meta['bytes']}")
        if (verify or not mmap or meta["bytes"] <= MMAP_CRC_LIMIT) and _crc32(file) != meta["crc32"]:
            raise StorageFormatError(f"{file} is corrupt: its checksum does not match the manifest")
        arr = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except StorageFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StorageFormatError(f"{file} is missing or unreadable: {exc}") from None
    if list(arr.shape) != meta["shape"] or arr.dtype.str != meta["dtype"]:
        raise StorageFormatError(f"{file} has shape {arr.shape} {arr.dtype}, the manifest says {meta}")
    return arr


def _crc32(file: Path) -> int:
    crc = 0
    with open(file, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _write_json(file: Path, data: Any) -> None:
    with open(file, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())


def _swap_dir(new: Path, target: Path) -> None:
    """Put directory ``new`` in place of ``target``: rename(2) is atomic, a directory swap needs two of them."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(new, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
