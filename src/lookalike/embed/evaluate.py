"""How well an image tower and a text tower share one space, measured on Fashion-MNIST.

- zero-shot accuracy: each test image gets the class of its nearest query text (the CLIP zero-shot protocol);
- text->image: each query text retrieves test images; top-1 accuracy (is the nearest image of the query's class?)
  and precision@10 (the fraction of the 10 nearest that are);
- image->image precision@10: each test image queries the 60,000 training images; the fraction of its 10 nearest
  neighbours that share its class.

All vectors are unit rows, so the nearest neighbour is the largest dot product (exact search, NumPy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .captions import class_name_queries, held_out_queries


@dataclass
class AlignmentReport:
    zero_shot_class_names: float  # test images classified by the 10 class-name prompts
    zero_shot_held_out: float  # test images classified by the nearest held-out paraphrase
    text_to_image_top1_class_names: float
    text_to_image_top1_held_out: float
    text_to_image_p10_held_out: float
    image_to_image_p10: float | None  # None when no base set was given

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)

    def lines(self) -> list[str]:
        pct = {k: "n/a" if v is None else f"{100 * v:.1f}%" for k, v in self.as_dict().items()}
        return [
            f"zero-shot accuracy, class-name prompts:        {pct['zero_shot_class_names']}",
            f"zero-shot accuracy, held-out paraphrases:      {pct['zero_shot_held_out']}",
            f"text->image top-1 class, class-name queries:   {pct['text_to_image_top1_class_names']}",
            f"text->image top-1 class, held-out paraphrases: {pct['text_to_image_top1_held_out']}",
            f"text->image precision@10, held-out paraphrases: {pct['text_to_image_p10_held_out']}",
            f"image->image precision@10 (test vs train):     {pct['image_to_image_p10']}",
        ]


def measure_alignment(embed_texts, test_vectors: np.ndarray, test_labels: np.ndarray,
                      base_vectors: np.ndarray | None = None, base_labels: np.ndarray | None = None) -> AlignmentReport:
    """All figures of the module docstring.  ``embed_texts(list[str]) -> unit rows`` embeds the query texts."""
    names = class_name_queries()
    name_vectors = embed_texts(names)
    name_labels = np.arange(len(names))
    paraphrases, paraphrase_labels = held_out_queries()
    paraphrase_vectors = embed_texts(paraphrases)
    paraphrase_labels = np.asarray(paraphrase_labels)
    image_p10 = None
    if base_vectors is not None:
        image_p10 = precision_at_k(test_vectors, test_labels, base_vectors, base_labels, k=10)
    return AlignmentReport(
        zero_shot_class_names=zero_shot_accuracy(test_vectors, test_labels, name_vectors, name_labels),
        zero_shot_held_out=zero_shot_accuracy(test_vectors, test_labels, paraphrase_vectors, paraphrase_labels),
        text_to_image_top1_class_names=precision_at_k(name_vectors, name_labels, test_vectors, test_labels, k=1),
        text_to_image_top1_held_out=precision_at_k(paraphrase_vectors, paraphrase_labels, test_vectors, test_labels,
                                                   k=1),
        text_to_image_p10_held_out=precision_at_k(paraphrase_vectors, paraphrase_labels, test_vectors, test_labels,
                                                  k=10),
        image_to_image_p10=image_p10,
    )


def zero_shot_accuracy(image_vectors: np.ndarray, image_labels: np.ndarray, text_vectors: np.ndarray,
                       text_labels: np.ndarray) -> float:
    """The fraction of images whose nearest text carries the image's class."""
    nearest = np.argmax(image_vectors @ text_vectors.T, axis=1)
    return float(np.mean(np.asarray(text_labels)[nearest] == image_labels))


def precision_at_k(queries: np.ndarray, query_labels: np.ndarray, base: np.ndarray, base_labels: np.ndarray,
                   k: int, chunk: int = 1024) -> float:
    """Mean over queries of the fraction of the k nearest base rows (largest dot product) sharing the query's
    class.  Queries go in chunks so a 10k x 60k similarity matrix is never held at once."""
    base_labels = np.asarray(base_labels)
    hits = 0
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ base.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        hits += int(np.sum(base_labels[top] == np.asarray(query_labels)[start : start + chunk, None]))
    return hits / (len(queries) * k)
