"""A small CNN that maps 28x28 Fashion-MNIST images into all-MiniLM-L6-v2's 384-d text space.

Training follows LiT, "locked-image tuning" turned around (Zhai et al. 2022, arXiv:2111.07991): one tower is
pre-trained and locked, the other learns to meet it.  Here the *text* tower (MiniLM) is locked and the image tower
is trained from scratch with CLIP's contrastive objective (Radford et al. 2021): a batch of images and one caption
per image, cosine similarities scaled by a learnable temperature, cross-entropy in both directions.  Each picture's
caption says what it shows, computed from its pixels (its class, and some of its lightness, pattern and shape:
:mod:`lookalike.embed.descriptions`).  Every caption of the batch that fits a picture is a true match, so the
targets spread over all of them instead of the diagonal only, as in UniCL (Yang et al. 2022, arXiv:2204.03610); a
caption of the picture's class that names values it does not show ("a black dress" for a white one) keeps a small
weight, so that the classes stay together and the values order the pictures inside them.  A share of each batch's
pictures are replaced by their round trip as a shopper's product photo (:mod:`lookalike.embed.photos`).

Because the text tower is locked, each caption is embedded once before training, and a text query at search time
is just MiniLM: the image tower's output lives in MiniLM's space and is searched with MiniLM's query vectors.

Weights are stored as safetensors (tensors + string metadata, no pickle), 1-3 MB.  The first tower (class captions
only, ``fmnist_image_tower.safetensors``) stays for the collections it made (``"minilm-fmnist"``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidParameterError, StorageFormatError
from .base import EmbedderUnavailableError, l2_normalise

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
FIRST_WEIGHTS = MODELS_DIR / "fmnist_image_tower.safetensors"  # the first tower (class captions): "minilm-fmnist"
DEFAULT_WEIGHTS = MODELS_DIR / "fmnist_described_tower.safetensors"  # captions that describe each picture
WEIGHTS_FORMAT = "lookalike-image-tower/1"
TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

def centroids_path(weights_path: str | os.PathLike) -> Path:
    """Where the described centres of a tower live: beside its weights ("x.safetensors" -> "x_centroids.npy")."""
    weights_path = Path(weights_path)
    return weights_path.with_name(weights_path.stem + "_centroids.npy")


def write_described_centroids(weights_path: Path, images: np.ndarray, labels: np.ndarray,
                              values: np.ndarray) -> Path:
    """The tower's class centres and the centres of the pictures showing each described value (the text route
    pulls a query toward them: :mod:`lookalike.embed.described_route`), saved beside the weights."""
    from .described_route import described_centroids

    vectors = ImageTower(weights_path).embed_pixels(images)
    path = centroids_path(weights_path)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, described_centroids(vectors, np.asarray(labels), values), allow_pickle=False)
    os.replace(tmp, path)
    return path


SAME_CLASS_WEIGHT = 0.3  # target weight of a caption of the picture's class that does not fit its values
PHOTO_SHARE = 0.3  # of each batch's pictures, the share replaced by their product-photo round trip
TOWER_WIDTHS = (48, 96, 192)  # channels of the three conv blocks (the first tower had 32, 64, 128)

# Fashion-MNIST pixel statistics (train split, pixels / 255): inputs are standardised with them.
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530


def build_cnn(widths: tuple[int, ...] = TOWER_WIDTHS, dim: int = 384):
    """Three 3x3 conv blocks (conv, batch norm, ReLU), max-pooling between them (28 -> 14 -> 7), then a 2x2 average
    pool, so the head still sees where the garment's parts are (sleeves, soles), and a linear map to ``dim``."""
    from torch import nn

    layers: list = []
    channels = 1
    for i, width in enumerate(widths):
        if i > 0:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.1), nn.Linear(channels * 4, dim)]
    return nn.Sequential(*layers)


def pixels_to_tensor(pixels: np.ndarray):
    """uint8 ``(n, 28, 28)`` -> standardised float32 ``(n, 1, 28, 28)`` tensor."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(torch.float32).div_(255.0)
    return x.sub_(PIXEL_MEAN).div_(PIXEL_STD).unsqueeze(1)


class ImageTower:
    """The trained CNN, loaded from safetensors: ``embed_pixels(uint8 (n, 28, 28)) -> (n, 384)`` unit rows."""

    def __init__(self, weights_path: str | os.PathLike | None = None, device: str = "cpu") -> None:
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        self.weights_path = Path(weights_path) if weights_path is not None else DEFAULT_WEIGHTS
        if not self.weights_path.is_file():
            raise EmbedderUnavailableError(
                f"no image tower weights at {self.weights_path}: train them with `lookalike train-image-tower`"
            )
        self.metadata = read_metadata(self.weights_path)
        widths = tuple(json.loads(self.metadata["widths"]))
        self.dim = int(self.metadata["dim"])
        self.model = build_cnn(widths, self.dim)
        try:
            state = load_file(str(self.weights_path))
            state.pop("logit_scale", None)
            self.model.load_state_dict(state)
        except (SafetensorError, RuntimeError, OSError) as exc:
            raise StorageFormatError(f"{self.weights_path} does not hold image tower weights: {exc}") from None
        self.device = torch.device(device)
        self.model.eval().to(self.device)

    def embed_pixels(self, pixels: np.ndarray, batch_size: int = 256) -> np.ndarray:
        import torch

        out = np.empty((len(pixels), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(pixels), batch_size):
                x = pixels_to_tensor(pixels[start : start + batch_size]).to(self.device)
                out[start : start + batch_size] = self.model(x).float().cpu().numpy()
        return l2_normalise(out)


def read_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise StorageFormatError(f"{path} is not a safetensors file: {exc}") from None
    if metadata.get("format") != WEIGHTS_FORMAT:
        raise StorageFormatError(
            f"{path} is not lookalike image tower weights (format {metadata.get('format')!r}, "
            f"expected {WEIGHTS_FORMAT!r})"
        )
    return metadata


# --- training -------------------------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    out_path: Path
    epochs: int
    seed: int
    n_train: int
    seconds: float
    final_loss: float
    figures: dict = field(default_factory=dict)  # AlignmentReport.as_dict() when evaluated


def train_image_tower(out_path: str | os.PathLike | None = None, *, epochs: int = 16, seed: int = 0,
                      batch_size: int = 256, lr: float = 3e-3, weight_decay: float = 1e-4, threads: int = 2,
                      limit: int | None = None, evaluate: bool = True, text_embedder=None,
                      captions=None, photo_share: float = PHOTO_SHARE,
                      log: Callable[[str], None] = print) -> TrainingResult:
    """Train the image tower against locked MiniLM caption embeddings and save it to ``out_path`` (safetensors).

    Each picture is paired with a caption that says what it shows (:mod:`lookalike.embed.descriptions`: its class,
    and some of its lightness, pattern and shape in words); ``photo_share`` of the pictures of each batch are
    replaced by their round trip as a shopper's product photo (:mod:`lookalike.embed.photos`).  Seeded (NumPy and
    torch), ``threads`` torch threads.  ``limit`` trains on the first ``limit`` training images only and
    ``captions`` replaces the caption bank (a :class:`~lookalike.embed.captions.CaptionBank`, or ``(texts,
    classes)`` of captions that name the class only): both for smoke tests.  ``text_embedder`` reuses an already
    loaded MiniLM.  With ``evaluate`` the result carries the Fashion-MNIST test figures of
    :mod:`lookalike.embed.evaluate` (image->image against the training images used)."""
    import torch

    from ..catalog.fashion_mnist import load_fashion_mnist

    _check_training_args(epochs, batch_size, lr, threads, limit)
    out_path = Path(out_path) if out_path is not None else DEFAULT_WEIGHTS
    bank = _as_bank(captions)
    if any(not np.any(bank.labels == c) for c in range(10)):
        raise InvalidParameterError("captions must include at least one caption of each of the 10 classes")
    started = time.perf_counter()
    images, labels = load_fashion_mnist("train")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if text_embedder is None:
        from .minilm import MiniLMEmbedder

        text_embedder = MiniLMEmbedder()

    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        from .descriptions import describe

        values = describe(images, labels).values
        pairing = CaptionPairing(bank, labels, values)
        photos = _product_photos(images, seed, photo_share, log)
        log(f"embedding {len(bank.texts)} captions with the locked text tower ...")
        caption_vectors = torch.from_numpy(text_embedder.embed_texts(bank.texts, batch_size=128))
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = build_cnn(TOWER_WIDTHS, caption_vectors.shape[1])
        logit_scale = torch.nn.Parameter(torch.tensor(math.log(10.0)))  # CLIP learns log(1/T); start at T = 0.1
        optimizer = torch.optim.AdamW([{"params": model.parameters(), "weight_decay": weight_decay},
                                       {"params": [logit_scale], "weight_decay": 0.0}], lr=lr)
        steps_per_epoch = math.ceil(len(images) / batch_size)
        schedule = _warmup_cosine(optimizer, total=epochs * steps_per_epoch, warmup=min(200, steps_per_epoch))
        log(f"training on {len(images)} images, {epochs} epochs of {steps_per_epoch} steps, {threads} threads")
        for epoch in range(epochs):
            loss_value = _train_one_epoch(model, logit_scale, optimizer, schedule, images, photos, pairing,
                                          caption_vectors, batch_size, photo_share, rng)
            log(f"epoch {epoch + 1}/{epochs}: loss {loss_value:.4f}, "
                f"temperature {math.exp(-logit_scale.item()):.4f}, {time.perf_counter() - started:.0f}s")
        save_weights(out_path, model, logit_scale, TOWER_WIDTHS, seed=seed, epochs=epochs, n_train=len(images),
                     captions=len(bank.texts), photo_share=photo_share)
        centres = write_described_centroids(out_path, images, labels, values)
        seconds = time.perf_counter() - started
        log(f"saved {out_path} ({out_path.stat().st_size / 1e6:.2f} MB) and {centres.name} after {seconds:.0f}s")
        result = TrainingResult(out_path, epochs, seed, len(images), seconds, loss_value)
        if evaluate:
            result.figures = _evaluate(out_path, text_embedder, images, labels, log)
    finally:
        torch.set_num_threads(threads_before)
    return result


class CaptionPairing:
    """Which captions of the bank fit which pictures: a caption fits a picture of its class when every value it
    names is one the picture shows (a caption naming only the class fits them all)."""

    def __init__(self, bank, labels: np.ndarray, values: np.ndarray) -> None:
        from .descriptions import fits

        self.bank = bank
        self.labels = np.asarray(labels, dtype=np.int64)
        self.values = np.asarray(values, dtype=np.int8)
        keys, self.key_of = np.unique(np.column_stack([self.labels, self.values]), axis=0, return_inverse=True)
        self.key_of = self.key_of.reshape(-1)
        self.fitting = []
        for key in keys:
            same_class = np.flatnonzero(bank.labels == key[0])
            self.fitting.append(same_class[fits(key[1:][None, :], bank.mentioned[same_class])])

    def sample(self, pictures: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One fitting caption (bank index) per picture."""
        return np.asarray([rng.choice(self.fitting[self.key_of[i]]) for i in pictures])

    def targets(self, pictures: np.ndarray, captions: np.ndarray) -> np.ndarray:
        """``(b, b)`` float32: 1 where caption j fits picture i, ``SAME_CLASS_WEIGHT`` where it names the picture's
        class but a value the picture does not show ("a black dress" is still about a dress: the classes stay
        together in the image space, and the values order the pictures inside them), 0 otherwise."""
        from .descriptions import fits

        same = self.labels[pictures][:, None] == self.bank.labels[captions][None, :]
        told = fits(self.values[pictures][:, None, :], self.bank.mentioned[captions][None, :, :])
        return np.where(same, np.where(told, 1.0, SAME_CLASS_WEIGHT), 0.0).astype(np.float32)


def _as_bank(captions):
    from .captions import CaptionBank, caption_bank
    from .descriptions import ATTRIBUTES, UNSAID

    if captions is None:
        return caption_bank()
    if isinstance(captions, CaptionBank):
        return captions
    texts, labels = captions
    return CaptionBank(list(texts), np.asarray(labels, dtype=np.int64),
                       np.full((len(texts), len(ATTRIBUTES)), UNSAID, dtype=np.int8))


def _product_photos(images: np.ndarray, seed: int, photo_share: float, log) -> np.ndarray | None:
    """Every training picture's round trip as a product photo (about 2 ms each on 2 processes)."""
    if photo_share <= 0:
        return None
    from .photos import round_trip_parallel

    log(f"turning {len(images)} pictures into product photos and back ...")
    return round_trip_parallel(images, seed=seed + 1)


def _train_one_epoch(model, logit_scale, optimizer, schedule, images, photos, pairing, caption_vectors,
                     batch_size: int, photo_share: float, rng: np.random.Generator) -> float:
    """One pass over the images in a random order, each image (or its product photo) paired with a caption that
    fits it; returns the mean loss."""
    import torch

    model.train()
    order = rng.permutation(len(images))
    total = 0.0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        pictures = images[batch]
        if photos is not None:
            as_photo = rng.random(len(batch)) < photo_share
            pictures = np.where(as_photo[:, None, None], photos[batch], pictures)
        x = pixels_to_tensor(augment(pictures, rng))
        captions = pairing.sample(batch, rng)
        targets = torch.from_numpy(pairing.targets(batch, captions))
        loss = multi_positive_clip_loss(model(x), caption_vectors[captions], targets, logit_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            logit_scale.clamp_(0.0, math.log(100.0))  # CLIP's cap: temperature >= 0.01
        total += loss.item() * len(batch)
    return total / len(order)


def multi_positive_clip_loss(image_embeddings, text_embeddings, targets, logit_scale):
    """Symmetric InfoNCE whose targets are spread uniformly over the (image, caption) pairs that fit (``targets``
    ``(b, b)``, 1 where caption j fits image i; the diagonal always does)."""
    import torch
    import torch.nn.functional as F

    images = F.normalize(image_embeddings, dim=1)
    texts = F.normalize(text_embeddings, dim=1)
    logits = logit_scale.exp() * images @ texts.T
    image_to_text = torch.sum(-(targets / targets.sum(dim=1, keepdim=True)) * F.log_softmax(logits, dim=1), dim=1)
    text_to_image = torch.sum(-(targets / targets.sum(dim=0, keepdim=True)) * F.log_softmax(logits, dim=0), dim=0)
    return (image_to_text.mean() + text_to_image.mean()) / 2


def augment(pixels: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Random horizontal flips and shifts of up to ``max_shift`` pixels (garments are left-right symmetric enough,
    and a user's photo is never centred to the pixel)."""
    n, h, w = pixels.shape
    flipped = np.where(rng.random(n)[:, None, None] < 0.5, pixels[:, :, ::-1], pixels)
    padded = np.pad(flipped, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
    rows = dy[:, None] + np.arange(h)[None, :]  # (n, h)
    cols = dx[:, None] + np.arange(w)[None, :]  # (n, w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def save_weights(path: Path, model, logit_scale, widths: tuple[int, ...], **recipe) -> None:
    """Tensors + the metadata needed to rebuild the CNN; written to a temp file, then renamed into place."""
    from safetensors.torch import save_file

    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    state["logit_scale"] = logit_scale.detach().reshape(1)
    metadata = {"format": WEIGHTS_FORMAT, "widths": json.dumps(list(widths)), "dim": str(model[-1].out_features),
                "text_model": TEXT_MODEL, "pixel_mean": str(PIXEL_MEAN), "pixel_std": str(PIXEL_STD),
                **{k: str(v) for k, v in recipe.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _evaluate(weights: Path, text_embedder, train_images, train_labels, log) -> dict:
    from ..catalog.fashion_mnist import load_fashion_mnist
    from .evaluate import measure_alignment

    tower = ImageTower(weights)
    test_images, test_labels = load_fashion_mnist("test")
    report = measure_alignment(text_embedder.embed_texts, tower.embed_pixels(test_images), test_labels,
                               tower.embed_pixels(train_images), train_labels)
    for line in report.lines():
        log(line)
    return report.as_dict()


def _warmup_cosine(optimizer, total: int, warmup: int):
    """Linear warm-up, then cosine decay to zero (the CLIP/LiT schedule)."""
    import torch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _check_training_args(epochs, batch_size, lr, threads, limit) -> None:
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and 0 < lr < 1):
        raise InvalidParameterError(f"lr must be a number in (0, 1), got {lr!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 2):
        raise InvalidParameterError(f"limit must be None or an integer >= 2, got {limit!r}")
