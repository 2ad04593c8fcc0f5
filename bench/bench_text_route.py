"""Text understanding of the default embedder: shoppers' words and languages, English paraphrases, latency.

    python bench/bench_text_route.py      # minilm-fmnist+use-m (the first tower) vs minilm-fmnist-described+use-m
    python bench/bench_text_route.py --embedders minilm-fmnist+use-m --repeats 200
    python bench/bench_text_route.py --write-centroids            # recompute models/fmnist_class_centroids.npy

The catalog is the demo's: all 70,000 Fashion-MNIST images (train + test) embedded by the image tower.  A query
succeeds when at least 6 of its 10 nearest images (exact search, cosine) are of its class.  The query sets:
- DEV_WORDS / DEV_LANGUAGES: the sets the route's design choices were measured on;
- FRESH_WORDS / FRESH_LANGUAGES: written after the design was frozen and never tuned on, the honest estimate
  of how the route generalises;
- the captions module's held-out English paraphrases and the ten class-name prompts (English as before).
No word of these lists is used by the route itself: its vocabulary is WordNet's and its languages USE's.
Latency: one text per call, p50 / p95 over ``--repeats`` calls after warm-up, the way a search request embeds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

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


def right_in_top10(query_vectors: np.ndarray, base: np.ndarray, base_labels: np.ndarray,
                   expected: list[int]) -> np.ndarray:
    """How many of each query's 10 nearest catalog images are of its class."""
    top = np.argpartition(-(query_vectors @ base.T), 10, axis=1)[:, :10]
    return (base_labels[top] == np.asarray(expected)[:, None]).sum(axis=1)


def query_sets() -> dict[str, list[tuple[str, int]]]:
    from lookalike.embed.captions import class_name_queries, held_out_queries

    paraphrases, labels = held_out_queries()
    return {"dev words": DEV_WORDS, "dev languages": DEV_LANGUAGES, "fresh words": FRESH_WORDS,
            "fresh languages": FRESH_LANGUAGES, "English paraphrases": list(zip(paraphrases, labels)),
            "class names": list(zip(class_name_queries(), range(10)))}


def latency_ms(embedder, repeats: int) -> tuple[float, float]:
    for text in LATENCY_QUERIES:
        embedder.embed_texts([text])
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        embedder.embed_texts([LATENCY_QUERIES[i % len(LATENCY_QUERIES)]])
        times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return statistics.median(times), times[round(0.95 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default="minilm-fmnist+use-m,minilm-fmnist-described+use-m")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--write-centroids", action="store_true",
                        help="recompute the class centroids from the tower and the training split, and save them")
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args()

    from lookalike.catalog.fashion_mnist import load_fashion_mnist
    from lookalike.embed import get_embedder
    from lookalike.embed.multilingual import CENTROIDS_FILE, class_centroids

    names = args.embedders.split(",")
    embedders = {name: get_embedder(name) for name in names}
    splits = [load_fashion_mnist(split) for split in ("train", "test")]
    base_labels = np.concatenate([labels for _, labels in splits])
    catalogs = {}  # one catalog per vector space: each embedder searches the pictures its own tower embedded
    for embedder in embedders.values():
        if embedder.space not in catalogs:
            catalogs[embedder.space] = np.concatenate([embedder.embed_pixels(pixels) for pixels, _ in splits])
    if args.write_centroids:
        first = next(iter(embedders.values()))
        train = catalogs[first.space][: len(splits[0][1])]
        np.save(CENTROIDS_FILE, class_centroids(train, splits[0][1]), allow_pickle=False)
        print(f"wrote {CENTROIDS_FILE}")
    print(f"catalog: {len(base_labels)} Fashion-MNIST images; success = >= 6 of the 10 nearest of the query's class\n")
    print(f"{'query set':22s}" + "".join(f"{name:>24s}" for name in names))
    for set_name, items in query_sets().items():
        texts, expected = [t for t, _ in items], [c for _, c in items]
        cells = []
        for name, embedder in embedders.items():
            right = right_in_top10(embedder.embed_texts(texts), catalogs[embedder.space], base_labels, expected)
            cells.append(f"{np.sum(right >= 6)}/{len(items)} = {100 * np.mean(right >= 6):3.0f}%")
            if args.show_failures:
                print(f"  {name} fails: {[t for t, r in zip(texts, right) if r < 6]}")
        print(f"{set_name:22s}" + "".join(f"{cell:>24s}" for cell in cells))
    print("\nsingle-text embedding latency (ms, p50 / p95):")
    for name, embedder in embedders.items():
        p50, p95 = latency_ms(embedder, args.repeats)
        print(f"  {name:24s} {p50:6.1f} / {p95:6.1f}")


if __name__ == "__main__":
    main()
