"""Request and response bodies of the HTTP API (Pydantic).  The field names are a contract: tests and outside
clients rely on them (see docs/server.md).  Requests forbid unknown fields, so a typo ("nprobes") is a 422, not a
silently ignored setting; ``k`` is a strict integer (``"10"`` is refused) between 1 and ``MAX_K``."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

MAX_K = 1000
MAX_TEXT = 2000  # characters of a text query
MAX_VECTOR = 65_536  # the largest dim a collection may have
MAX_BATCH = 100_000  # points in one upsert

Id = Union[StrictInt, StrictStr]
ParamValue = Union[StrictInt, StrictFloat, StrictStr, StrictBool, None]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class CreateCollectionRequest(Strict):
    name: StrictStr = Field(max_length=128)
    dim: StrictInt = Field(ge=1, le=MAX_VECTOR)
    metric: Literal["cosine", "dot", "l2"] = "cosine"
    embedder: StrictStr | None = Field(None, max_length=200)


class IndexRequest(Strict):
    type: StrictStr = Field(max_length=64, description="index type: ivf, hnsw, rp_forest, ...")
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=16,
                                          description="build parameters, e.g. {\"nlist\": 256}")
    default: StrictBool = Field(True, description="make it the index queries use by default")
    wait: StrictBool = Field(False, description="answer only when the build is done (else 202 at once)")


class UpsertRequest(Strict):
    ids: list[Id] = Field(min_length=1, max_length=MAX_BATCH)
    vectors: list[list[float]] = Field(min_length=1, max_length=MAX_BATCH)
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
