"""Request and response bodies of the HTTP API (Pydantic).  The field names are a contract: tests and outside
clients rely on them (see docs/server.md).  Requests forbid unknown fields, so a typo ("nprobes") is a 422, not a
silently ignored setting; ``k`` is a strict integer (``"10"`` is refused) between 1 and ``MAX_K``."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

MAX_K = 1000
MAX_TEXT = 2000  # characters of a text query
MAX_VECTOR = 65_536  # the largest dim a collection may have
MAX_BATCH = 100_000  # points in one upsert, ids in one get / has / delete
MAX_QUERY_BATCH = 10_000  # query vectors in one batch query
MAX_HITS = 1_000_000  # queries x k in one batch query

Id = Union[StrictInt, StrictStr]
ParamValue = Union[StrictInt, StrictFloat, StrictStr, StrictBool, None]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncodedArray(Strict):
    """A float32 array as base64, the compact way vectors travel (see ``lookalike.server.protocol``)."""

    dtype: Literal["float32"] = Field("float32", description="always little-endian float32")
    shape: list[StrictInt] = Field(min_length=1, max_length=2, description="[n, dim] for a batch, [dim] for one")
    data: StrictStr = Field(description="base64 of the array's bytes, little-endian float32, row-major")


# a batch of vectors: the compact encoding, or JSON lists of numbers (handy with curl, ~3x larger and slower)
Vectors = Union[EncodedArray, Annotated[list[list[float]], Field(min_length=1, max_length=MAX_BATCH)]]


class SearchRequest(Strict):
    """Exactly one of ``text``, ``vector`` or ``like_id`` (an item whose stored vector is the query)."""

    text: str | None = Field(None, max_length=MAX_TEXT, description="a text query, embedded with the collection's embedder")
    vector: list[float] | None = Field(None, max_length=MAX_VECTOR, description="a query vector of the collection's dim")
    like_id: Id | None = Field(None, description="search with the stored vector of this item ('more like this')")
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="number of hits")
    index: str | None = Field(None, max_length=64, description="index to use (default: the collection's default)")
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=16,
                                          description="query parameters of the index, e.g. {\"nprobe\": 8} or {\"ef\": 64}")
    where: dict[str, Any] | None = Field(None, description="metadata filter, e.g. {\"class\": \"Dress\"}")
    with_recall: StrictBool = Field(False, description="also run exact search: true_knn per hit and recall@k")

    @model_validator(mode="after")
    def _one_query(self) -> "SearchRequest":
        given = [name for name in ("text", "vector", "like_id") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of text, vector or like_id (got {given or 'none'})")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty: type at least one word")
        return self


class Hit(BaseModel):
    id: Id
    score: float = Field(description="similarity: cosine for cosine collections, dot product, or 1/(1+L2)")
    distance: float
    metadata: dict[str, Any] | None
    true_knn: bool | None = Field(description="is this hit among the exact k nearest? (null without with_recall)")
    image_url: str | None


class Latency(BaseModel):
    embed: float | None = Field(description="ms to embed the text or photo (null for vector queries)")
    search: float = Field(description="ms in the index")
    exact: float | None = Field(description="ms of the exact search behind recall (null without with_recall)")
    total: float = Field(description="ms from request to answer, server side")


class SearchResponse(BaseModel):
    hits: list[Hit]
    recall: float | None = Field(description="recall@k against exact search (null without with_recall)")
    latency_ms: Latency
    index: str
    k: int
    mode: Literal["text", "image", "vector", "item"]
    crop: dict[str, Any] | None = None
    params: dict[str, Any] | None = Field(None, description="the query parameters the index used: the request's, "
                                          "else the ones tuned for this mode (text / image), else the defaults")
    understood: dict[str, Any] | None = Field(None, description="how a text query was read (its class, its "
                                              "description: lightness, pattern, shape; notes such as colours a "
                                              "grayscale catalog cannot tell apart), when the text route says")


class IndexInfo(BaseModel):
    name: str
    type: str
    params: dict[str, Any]


class CollectionInfo(BaseModel):
    name: str
    count: int
    dim: int
    metric: str
    embedder: str | None
    indexes: list[IndexInfo]
    default_index: str
    version: int | None = Field(None, description="data version: goes up with every committed write")
    metadata_indexes: list[str] = Field(default_factory=list, description="the expression indexes on metadata keys")
    n_shards: int | None = Field(None, description="shards of a sharded collection (null for a single-node one)")
    shard_counts: list[int] | None = Field(None, description="points per shard of a sharded collection")


class CreateCollectionRequest(Strict):
    name: StrictStr = Field(max_length=128)
    dim: StrictInt = Field(ge=1, le=MAX_VECTOR)
    metric: Literal["cosine", "dot", "l2"] = "cosine"
    embedder: StrictStr | None = Field(None, max_length=200)
    exist_ok: StrictBool = Field(False, description="answer the existing collection (200) when it has this dim and "
                                                    "metric, instead of 409")


class IndexRequest(Strict):
    type: StrictStr = Field(max_length=64, description="index type: ivf, hnsw, rp_forest, ...")
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=16,
                                          description="build parameters, e.g. {\"nlist\": 256}")
    default: StrictBool = Field(True, description="make it the index queries use by default")
    wait: StrictBool = Field(False, description="answer only when the build is done (else 202 at once)")


class UpsertRequest(Strict):
    ids: list[Id] = Field(min_length=1, max_length=MAX_BATCH)
    vectors: Vectors = Field(description="one row per id: an encoded array [n, dim] or lists of numbers")
    metadata: list[dict[str, Any] | None] | None = None
    replace: StrictBool = Field(True, description="upsert (true) or add, refusing ids already stored (false)")


class DeleteRequest(Strict):
    ids: list[Id] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    where: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> "DeleteRequest":
        if (self.ids is None) == (self.where is None):
            raise ValueError("give exactly one of ids or where")
        return self


class GetPointsRequest(Strict):
    ids: list[Id] | None = Field(None, min_length=1, max_length=MAX_BATCH,
                                 description="ids to read, in this order (every one must exist); null: every point, "
                                             "in insertion order")
    include: list[Literal["vectors", "metadatas"]] = Field(["vectors", "metadatas"], max_length=2)


class PointsResponse(BaseModel):
    ids: list[Id]
    vectors: EncodedArray | None = Field(description="[n, dim] as stored (not normalised); null unless included")
    metadatas: list[dict[str, Any] | None] | None


class HasRequest(Strict):
    ids: list[Id] = Field(min_length=1, max_length=MAX_BATCH)


class QueryRequest(Strict):
    """A batch query by vectors: the k nearest points of each row, as ``Collection.query``."""

    vectors: Vectors = Field(description="queries: an encoded array [q, dim] (or [dim] for one) or lists of numbers")
    k: StrictInt = Field(10, description=f"hits per query, 1 to {MAX_K}")
    where: dict[str, Any] | None = Field(None, description="metadata filter, e.g. {\"class\": \"Dress\"}")
    index: str | None = Field(None, max_length=64, description="index to use (default: the collection's default)")
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=16,
                                          description="query parameters of the index, e.g. {\"nprobe\": 8}")
    with_recall: StrictBool = Field(False, description="also run exact search: true_knn per hit and recall@k")
    include_metadata: StrictBool = True


class QueryResponse(BaseModel):
    ids: list[list[Id | None]] = Field(description="[q][k] ids, null where fewer than k points matched")
    distances: EncodedArray = Field(description="[q, k] float32, +inf where padded")
    similarities: EncodedArray = Field(description="[q, k] float32 similarity of each hit")
    metadatas: list[list[dict[str, Any] | None]] | None
    true_knn: list[list[bool]] | None = Field(description="[q][k]: is the hit among the exact k nearest? "
                                                          "(null without with_recall)")
    recall: list[float] | None = Field(description="[q] recall@k per query (null without with_recall)")
    stats: dict[str, Any]


class DropIndexRequest(Strict):
    type: StrictStr = Field(max_length=64, description="the index to drop (ivf, hnsw, ...)")


class MetadataIndexRequest(Strict):
    key: StrictStr = Field(min_length=1, max_length=256, description="the metadata key filters use")


class TuneRequest(Strict):
    index: str | None = Field(None, max_length=64, description="index to tune (default: the collection's default)")
    target_recall: StrictFloat | StrictInt = 0.95
    k: StrictInt = 10
    sample: StrictInt = Field(200, ge=1, le=10_000)
    apply: StrictBool = Field(True, description="make the value found the index's default query parameter")
    queries: Vectors | None = Field(None, description="query vectors to tune on (their exact neighbours are the "
                                                      "truth): an encoded array [q, dim] or lists of numbers")
    modality: Literal["text", "image"] | None = Field(None, description="keep the value for this kind of query only")
