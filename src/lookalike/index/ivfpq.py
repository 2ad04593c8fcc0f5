"""IVFPQIndex: the IVFADC system of Jégou, Douze & Schmid ("Product quantization for nearest neighbor search",
TPAMI 2011, section IV), with exact re-ranking, as faiss's IndexIVFPQ + IndexRefineFlat.

    training   k-means gives ``nlist`` coarse centroids (as IVFIndex); the residuals x - c(x) of a sample are
               cut into ``m`` sub-vectors and each sub-space gets a codebook of 2**nbits centroids; with
               ``opq=True`` the residuals are first rotated by a learnt orthogonal matrix (Ge et al. 2013);
    adding     each vector goes to the list of its nearest centroid as m one-byte codes of its residual;
    searching  a query ranks the centroids, scores every code of its ``nprobe`` nearest lists by table lookups
               (asymmetric distances: the query is not quantized), keeps the ``rerank * k`` best and re-scores
               them with exact distances from the float vectors.  ``rerank=0`` returns the approximate scores.

Memory: m bytes of code (padded to 4), 4 bytes of decoded norm and 8 bytes of row per vector, against 4 * dim for the floats (128-d, m=16: 24 bytes
instead of 512).  The floats are read only for the re-ranked candidates, so inside a collection (where the index
shares the collection's memory-mapped vector store) they may stay on disk.  The kernels are in kernels/pq.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_positive_int
from ..errors import InvalidParameterError, StorageFormatError
from ..kernels.kmeans import assign
from ..kernels.pq import (TRAIN_POINTS_PER_CODE, code_width, decode, encode, pack_codes, search_pq_lists,
                          single_blas_thread, train_codebooks, train_rotation)
from .ivf import _NO_MASK, IVFIndex, InvertedLists


class IVFPQIndex(IVFIndex):
    """Inverted file with product-quantized residuals and exact re-ranking.

    Build parameters: ``nlist`` (k-means cells), ``m`` (sub-quantizers; must divide dim; bytes per vector),
    ``nbits`` (bits per sub-quantizer code, 1..8: 2**nbits codewords each), ``opq`` (learn a rotation first),
    ``n_iter``, ``seed``, ``max_train_points``.  Query parameters: ``nprobe`` (cells scanned) and ``rerank``
    (candidates re-scored exactly, as a multiple of k; 0 = none, approximate distances returned).

    Everything IVFIndex documents about small first batches, probing wider when lists are thin, tombstones and
    compaction holds here too; re-ranking needs the float vectors, which the index keeps by row (its own, or
    its vector source's when attached)."""

    type_name = "ivfpq"
    wants_source_order = False  # the scan reads codes, in the lists; the floats only for re-ranking
    reads_source_at_random = True
    query_defaults: dict[str, Any] = {"nprobe": 8, "rerank": 4}

    def __init__(
        self,
        dim: int,
        metric: str = "l2",
        nlist: int = 100,
        m: int = 8,
        nbits: int = 8,
        opq: bool = False,
        n_iter: int = 20,
        seed: int = 0,
        max_train_points: int | None = None,
    ):
        m = check_positive_int(m, "m")
        nbits = check_positive_int(nbits, "nbits")
        if nbits > 8:
            raise InvalidParameterError(f"nbits must be 1..8 (codes are stored in one byte), got {nbits}")
        if dim % m:
            raise InvalidParameterError(f"m={m} must divide dim={dim}: each sub-quantizer takes dim/m dimensions")
        if not isinstance(opq, (bool, np.bool_)):
            raise InvalidParameterError(f"opq must be True or False, got {opq!r}")
        super().__init__(dim, metric, nlist=nlist, n_iter=n_iter, seed=seed, max_train_points=max_train_points)
        self.m, self.nbits, self.opq = m, nbits, bool(opq)
        self.params.update(m=m, nbits=nbits, opq=self.opq)
        self.codebooks: np.ndarray | None = None  # (m, 2**nbits, dim/m) float32
        self.rotation: np.ndarray | None = None  # (dim, dim) orthogonal (identity without OPQ)
        self._transposed: tuple[np.ndarray, np.ndarray] | None = None  # (codebooks, their kernel layout)

    @property
    def ksub(self) -> int:
        return 1 << self.nbits

    @property
    def _codebooks_t(self) -> np.ndarray:
        """The codebooks as the search kernel reads them, (m, dim/m, ksub); recomputed when they change."""
        if self._transposed is None or self._transposed[0] is not self.codebooks:
            self._transposed = (self.codebooks, np.ascontiguousarray(self.codebooks.transpose(0, 2, 1)))
        return self._transposed[1]

    # ------------------------------------------------------------------ training and adding
    @property
    def _spherical_cells(self) -> bool:
        # cosine vectors are unit vectors, scanned in the L2 form (kernels/pq.py): plain k-means centroids,
        # the means of their cells, leave smaller residuals to quantize than unit ones
        return self.spec.kind == "ip" and not self.spec.normalize


    def _train(self, vectors: np.ndarray) -> None:
        """The coarse quantizer (IVFIndex), then the rotation and codebooks on a sample of residuals."""
        self.codebooks = None  # the parent re-adds the stored rows: they are encoded once the codebooks exist
        rng = np.random.default_rng(self.seed)
        sample = vectors
        if len(vectors) > TRAIN_POINTS_PER_CODE * self.ksub:
            sample = vectors[np.sort(rng.choice(len(vectors), TRAIN_POINTS_PER_CODE * self.ksub, replace=False))]
        super()._train(vectors)  # may call _add_to_lists for rows already stored: deferred below
        nearest, _ = assign(sample, self.centroids)
        residuals = sample - self.centroids[nearest]
        self.rotation = (train_rotation(residuals, self.m, self.ksub, seed=self.seed) if self.opq
                         else np.eye(self.dim, dtype=np.float32))
        self.codebooks = train_codebooks(residuals @ self.rotation, self.m, self.ksub, n_iter=self.n_iter,
                                         seed=self.seed)
        self._assign_rows(np.flatnonzero(self.live))  # the rows stored before (re)training, now encoded

    def _empty_lists(self, n_lists: int) -> InvertedLists:
        return InvertedLists(n_lists, code_width(self.m), np.uint8)

    def _add_to_lists(self, list_ids: np.ndarray, rows: np.ndarray) -> None:
        if self.codebooks is None:  # during the parent's training step: encoded once the codebooks are learnt
            return
        centroids = self.centroids[list_ids]
        codes = encode((self.vectors[rows] - centroids) @ self.rotation, self.codebooks)
        decoded = centroids + decode(codes, self.codebooks) @ self.rotation.T
        self._lists.append(list_ids, rows, pack_codes(codes, np.einsum("ij,ij->i", decoded, decoded)))

    def _adopt_training(self, trained: "IVFPQIndex") -> None:
        super()._adopt_training(trained)
        self.codebooks, self.rotation = trained.codebooks, trained.rotation

    # ------------------------------------------------------------------ search
    def search(self, queries: Any, k: int = 10, *, allowed_ids: Any = None, **query_params: Any):
        # not IVFIndex.search: its short way for one query runs the IVF-Flat kernel
        return super(IVFIndex, self).search(queries, k, allowed_ids=allowed_ids, **query_params)

    def search_one(self, query: np.ndarray, k: int, params: dict[str, Any]) -> None:
        return None  # not IVFIndex.search_one (the IVF-Flat kernel): every query takes ``search``

    def _search_rows(self, queries: np.ndarray, k: int, mask: np.ndarray | None, nprobe: Any = 8, rerank: Any = 4):
        rerank = check_positive_int(rerank, "rerank", minimum=0)
        return super()._search_rows(queries, k, mask, nprobe=nprobe, rerank=rerank)

    def _scan(self, queries: np.ndarray, k: int, mask: np.ndarray | None, nprobe: int, rerank: int = 4):
        lists = self._lists
        with single_blas_thread():
            rotated = np.ascontiguousarray(queries @ self.rotation)
        return search_pq_lists(
            queries,
            rotated,
            self.centroids,
            self._centroid_sq_norms,
            nprobe,
            lists.start,
            lists.size,
            lists.slot_codes,
            lists.slot_rows,
            self._codebooks_t,
            self.vectors,
            _NO_MASK if mask is None else mask,
            k,
            rerank * k,
            self.spec.kind == "l2",
            self.spec.kind == "l2" or self.spec.normalize,
        )

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        state = super()._state()
        if self.is_trained:
            state.update(codebooks=self.codebooks, rotation=self.rotation)
        return state

    def _restore(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        if "codebooks" in state:
            codebooks, rotation = np.asarray(state.pop("codebooks")), np.asarray(state.pop("rotation", None))
            if codebooks.shape != (self.m, self.ksub, self.dim // self.m) or rotation.shape != (self.dim, self.dim):
                raise StorageFormatError(f"IVF-PQ codebooks {codebooks.shape} / rotation {rotation.shape} do not "
                                         f"fit m={self.m}, nbits={self.nbits}, dim={self.dim}")
            self.codebooks, self.rotation = codebooks, rotation
        super()._restore(state, extra)
        if self.is_trained and self.codebooks is None:
            raise StorageFormatError("an IVF-PQ index with rows needs codebooks.npy and rotation.npy")


__all__ = ["IVFPQIndex"]
