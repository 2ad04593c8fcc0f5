"""Embedders, measured as a search uses them: ``lookalike bench --embedders [LIST]``.

    lookalike bench --embedders                                    # the shopper's route and the described route
    lookalike bench --embedders minilm-fmnist-described+use-m --queries 2000 --runs 50

For each embedder (a comma list of ``lookalike.embed`` names), over the Fashion-MNIST catalog (70,000 images,
train + test; ``--queries N``: the first N of each split only):

  catalog      the time to embed the catalog's pictures with its image tower (images/s)
  alignment    ``lookalike.embed.evaluate``: zero-shot accuracy, text->image top-1 and precision@10 with class
               names and held-out paraphrases, image->image precision@10 (test split against the training split)
  text words   shoppers' queries (everyday garment words and other languages, the sets the route's design was
               measured on and fresh ones written after it was frozen, the held-out English paraphrases and the
               class names): a query succeeds when at least 6 of its 10 nearest catalog images (exact search,
               cosine) are of its class
  latency      p50 / p95 of embedding one text, one 28x28 catalog image and one 600x800 photo, as a search
               request does, with 1 and 2 torch threads (``--runs`` calls each, after warm-up)

(formerly bench/bench_embed.py and bench/bench_text_route.py, now thin callers of it.)  Timings on a shared
machine are noisy: compare embedders measured in the same run.
"""

from __future__ import annotations

import time

import numpy as np

DEFAULT_EMBEDDERS = "minilm-fmnist+use-m,minilm-fmnist-described+use-m"
SUCCESS = 6  # of the 10 nearest catalog images, how many must be of the query's class

# (text, Fashion-MNIST class index): 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,
# 7 Sneaker, 8 Bag, 9 Ankle boot.  Everyday garment words that captions.SYNONYMS does not contain.
DEV_WORDS = [
    ("camisole", 0), ("singlet", 0), ("tube top", 0), ("halter top", 0), ("undershirt", 0), ("vest top", 0),
    ("sweatpants", 1), ("joggers", 1), ("culottes", 1), ("capris", 1), ("corduroys", 1), ("khakis", 1),
    ("breeches", 1), ("bell-bottoms", 1), ("cardigan", 2), ("hoodie", 2), ("turtleneck", 2), ("fleece", 2),
    ("polo neck", 2), ("kaftan", 3), ("pinafore", 3), ("ballgown", 3), ("sheath dress", 3), ("shirtwaister", 3),
    ("gilet", 4), ("blazer", 4), ("anorak", 4), ("windbreaker", 4), ("raincoat", 4), ("mackintosh", 4),
    ("peacoat", 4), ("bomber", 4), ("cagoule", 4), ("slingbacks", 5), ("espadrilles", 5), ("mules", 5),
    ("huaraches", 5), ("jelly shoes", 5), ("overshirt", 6), ("button-down", 6), ("oxford shirt", 6), ("tunic", 6),
    ("plimsolls", 7), ("high-tops", 7), ("kicks", 7), ("cross-trainers", 7), ("gym shoes", 7), ("runners", 7),
    ("rucksack", 8), ("satchel", 8), ("clutch", 8), ("tote", 8), ("holdall", 8), ("duffel", 8), ("pouch", 8),
    ("knapsack", 8), ("briefcase", 8), ("chukkas", 9), ("wellies", 9), ("galoshes", 9), ("desert boots", 9),
    ("doc martens", 9),
]
DEV_LANGUAGES = [
    ("des baskets blanches", 7), ("une robe rouge", 3), ("un manteau d'hiver", 4), ("un pantalon noir", 1),
    ("une chemise à carreaux", 6), ("un pull en laine", 2), ("des sandales d'été", 5), ("un sac à main en cuir", 8),
    ("des bottines en cuir", 9), ("un t-shirt blanc", 0), ("une veste en jean", 4), ("un sac à dos", 8),
    ("zapatillas deportivas", 7), ("un vestido de fiesta", 3), ("abrigo de invierno", 4), ("pantalones vaqueros", 1),
    ("camisa blanca", 6), ("jersey de lana", 2), ("sandalias de playa", 5), ("bolso de cuero", 8),
    ("botines negros", 9), ("camiseta de algodón", 0), ("chaqueta de cuero", 4), ("mochila", 8),
    ("weiße Turnschuhe", 7), ("ein rotes Kleid", 3), ("ein Wintermantel", 4), ("eine schwarze Hose", 1),
    ("ein kariertes Hemd", 6), ("ein Wollpullover", 2), ("Sandalen für den Sommer", 5),
    ("eine Handtasche aus Leder", 8), ("Stiefeletten", 9), ("ein weißes T-Shirt", 0), ("eine Lederjacke", 4),
    ("ein Rucksack", 8), ("scarpe da ginnastica bianche", 7), ("un vestito lungo", 3), ("cappotto invernale", 4),
    ("pantaloni neri", 1), ("camicia bianca", 6), ("maglione di lana", 2), ("sandali estivi", 5),
    ("borsa di pelle", 8), ("stivaletti neri", 9), ("maglietta bianca", 0), ("giacca di pelle", 4), ("zaino", 8),
]
FRESH_WORDS = [
    ("shorts", 1), ("overalls", 1), ("cargoes", 1), ("flares", 1), ("jeggings", 1), ("knitwear", 2),
    ("crewneck", 2), ("smock", 3), ("muumuu", 3), ("cheongsam", 3), ("trench", 4), ("puffer", 4), ("greatcoat", 4),
    ("mac", 4), ("cape", 4), ("thongs", 5), ("gladiators", 5), ("wedges", 5), ("kurta", 6), ("henley", 6),
    ("skate shoes", 7), ("converse", 7), ("pocketbook", 8), ("fanny pack", 8), ("bum bag", 8), ("reticule", 8),
    ("carpetbag", 8), ("gumboots", 9), ("mukluks", 9), ("waders", 9), ("uggs", 9), ("halterneck", 0),
    ("bandeau", 0),
]
FRESH_LANGUAGES = [
    ("un blouson en cuir", 4), ("un débardeur", 0), ("un jean slim", 1), ("un sweat à capuche", 2), ("des tongs", 5),
    ("un cabas", 8), ("une doudoune", 4), ("des chaussures de course", 7), ("une sacoche", 8),
    ("des bottes courtes", 9), ("una sudadera", 2), ("unas chanclas", 5), ("un bolso bandolera", 8),
    ("un abrigo largo", 4), ("una blusa", 6), ("unos tenis", 7), ("un vestido corto", 3),
    ("unos pantalones cortos", 1), ("una camiseta de tirantes", 0), ("botas de tobillo", 9),
    ("ein Kapuzenpulli", 2), ("Badelatschen", 5), ("Laufschuhe", 7), ("ein Sommerkleid", 3), ("eine Daunenjacke", 4),
    ("eine Jeans", 1), ("ein Trägertop", 0), ("eine Bluse", 6), ("ein Rucksack aus Stoff", 8),
    ("Chelsea-Stiefel", 9), ("una felpa", 2), ("infradito", 5), ("scarpe da corsa", 7), ("un abito da sera", 3),
    ("un piumino", 4), ("jeans strappati", 1), ("una canottiera", 0), ("una camicetta", 6), ("una borsetta", 8),
    ("stivaletti in pelle", 9),
]
LATENCY_QUERIES = ["white sneakers", "des baskets blanches", "slingbacks", "a warm coat for winter",
                   "ein Wintermantel", "una borsa di pelle", "a hoodie"]



def query_sets() -> dict[str, list[tuple[str, int]]]:
    from ..embed.captions import class_name_queries, held_out_queries

    paraphrases, labels = held_out_queries()
    return {"dev words": DEV_WORDS, "dev languages": DEV_LANGUAGES, "fresh words": FRESH_WORDS,
            "fresh languages": FRESH_LANGUAGES, "English paraphrases": list(zip(paraphrases, labels)),
            "class names": list(zip(class_name_queries(), range(10)))}


def right_in_top10(query_vectors: np.ndarray, base: np.ndarray, base_labels: np.ndarray,
                   expected: list[int]) -> np.ndarray:
    """How many of each query's 10 nearest catalog images are of its class."""
    top = np.argpartition(-(query_vectors @ base.T), 10, axis=1)[:, :10]
    return (base_labels[top] == np.asarray(expected)[:, None]).sum(axis=1)


def catalog_splits(limit: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pixels, labels) of the training and the test split, each cut to its first ``limit`` images."""
    from ..catalog.fashion_mnist import load_fashion_mnist

    return [(pixels[:limit], labels[:limit]) for pixels, labels in map(load_fashion_mnist, ("train", "test"))]


def embed_pixels(embedder, pixels: np.ndarray) -> np.ndarray:
    """Fashion-MNIST pixels -> vectors, directly when the embedder takes pixels, else through PIL images."""
    if hasattr(embedder, "embed_pixels"):
        return embedder.embed_pixels(pixels)
    from PIL import Image

    return embedder.embed_images([Image.fromarray(p) for p in pixels])


def measure_embedders(names: str = DEFAULT_EMBEDDERS, *, limit: int | None = None, repeats: int = 100,
                      latency_threads: tuple[int, ...] = (1, 2), show_failures: bool = False) -> dict:
    """Every figure of the module docstring, per embedder."""
    import torch

    from ..embed import get_embedder
    from ..embed.evaluate import measure_alignment
    from .measures import latency_percentiles

    splits = catalog_splits(limit)
    (train_pixels, train_labels), (test_pixels, test_labels) = splits
    base_labels = np.concatenate([train_labels, test_labels])
    figures: dict = {"catalog_images": int(len(base_labels)), "embedders": {}}
    catalogs: dict = {}  # one catalog per vector space: each embedder searches the pictures its own tower embedded
    for name in names.split(","):
        started = time.perf_counter()
        embedder = get_embedder(name)
        row: dict = {"dim": embedder.dim, "load_s": time.perf_counter() - started}
        if embedder.space not in catalogs:
            started = time.perf_counter()
            catalogs[embedder.space] = np.concatenate([embed_pixels(embedder, train_pixels),
                                                       embed_pixels(embedder, test_pixels)])
            row["catalog_images_per_s"] = len(base_labels) / (time.perf_counter() - started)
        vectors = catalogs[embedder.space]
        train_vectors, test_vectors = vectors[: len(train_labels)], vectors[len(train_labels):]
        row["alignment"] = measure_alignment(embedder.embed_texts, test_vectors, test_labels, train_vectors,
                                             train_labels).as_dict()
        row["text_queries"] = {}
        for set_name, items in query_sets().items():
            texts, expected = [t for t, _ in items], [c for _, c in items]
            right = right_in_top10(embedder.embed_texts(texts), vectors, base_labels, expected)
            row["text_queries"][set_name] = {"right": int(np.sum(right >= SUCCESS)), "of": len(items)}
            if show_failures:
                row["text_queries"][set_name]["failures"] = [t for t, r in zip(texts, right) if r < SUCCESS]
        row["latency_ms"] = {}
        calls = _latency_calls(embedder, test_pixels[0])
        for threads in latency_threads:
            torch.set_num_threads(threads)
            for label, call in calls.items():
                call(), call()  # warm-up
                times = []
                for i in range(repeats):
                    start = time.perf_counter()
                    call(i)
                    times.append(time.perf_counter() - start)
                summary = latency_percentiles(times)
                row["latency_ms"][f"{label}, {threads} thread(s)"] = {"p50": summary["p50"], "p95": summary["p95"]}
        figures["embedders"][name] = row
    return figures


LATENCY_QUERIES = ["white sneakers", "des baskets blanches", "slingbacks", "a warm coat for winter",
                   "ein Wintermantel", "una borsa di pelle", "a hoodie"]


def _latency_calls(embedder, catalog_pixels: np.ndarray) -> dict:
    """label -> call(i=0): what a search request embeds."""
    from PIL import Image

    photo = Image.new("RGB", (600, 800), "white")  # a user's photo: large, colour, light background
    photo.paste((40, 40, 110), (150, 100, 450, 700))
    catalog_image = Image.fromarray(catalog_pixels)
    return {"one text": lambda i=0: embedder.embed_texts([LATENCY_QUERIES[i % len(LATENCY_QUERIES)]]),
            "one 28x28 catalog image": lambda i=0: embedder.embed_images([catalog_image]),
            "one 600x800 photo": lambda i=0: embedder.embed_images([photo])}


def write_centroids(name: str) -> str:
    """Recompute the class centroids the multilingual route reads, from ``name``'s image tower over the training
    split, and save them (models/fmnist_class_centroids.npy): model data, not a measure."""
    from ..embed import get_embedder
    from ..embed.multilingual import CENTROIDS_FILE, class_centroids

    (pixels, labels), _ = catalog_splits()
    np.save(CENTROIDS_FILE, class_centroids(embed_pixels(get_embedder(name), pixels), labels), allow_pickle=False)
    return str(CENTROIDS_FILE)


def report(figures: dict) -> str:
    rows = figures["embedders"]
    names = list(rows)
    lines = [f"catalog: {figures['catalog_images']} Fashion-MNIST images; a text query succeeds when >= {SUCCESS} of "
             "its 10 nearest are of its class", f"{'':50s}" + "".join(f"{name:>32s}" for name in names)]
    for set_name in next(iter(rows.values()))["text_queries"]:
        cells = [rows[n]["text_queries"][set_name] for n in names]
        lines.append(f"{set_name:50s}" + "".join(
            f"{c['right']:>22d}/{c['of']:<3d} {100 * c['right'] / c['of']:3.0f}%" for c in cells))
    for key in next(iter(rows.values()))["alignment"]:
        values = [rows[n]["alignment"][key] for n in names]
        lines.append(f"{key:50s}" + "".join(f"{'n/a' if v is None else f'{100 * v:.1f}%':>32s}" for v in values))
    for key in next(iter(rows.values()))["latency_ms"]:
        lines.append(f"{key + ' (ms p50/p95)':50s}" + "".join(
            f"{rows[n]['latency_ms'][key]['p50']:>23.2f} / {rows[n]['latency_ms'][key]['p95']:<6.2f}" for n in names))
    for name, row in rows.items():
        rate = row.get("catalog_images_per_s")
        lines.append(f"{name}: {row['dim']}-d, loaded in {row['load_s']:.1f} s"
                     + (f", catalog embedded at {rate:,.0f} images/s" if rate else " (catalog shared)"))
        for set_name, cell in row["text_queries"].items():
            if cell.get("failures"):
                lines.append(f"  {set_name} fails: {cell['failures']}")
    return "\n".join(lines)
