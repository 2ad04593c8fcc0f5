"""``lookalike bench --descriptions DB[:COLLECTION]``: does text search read the description, not just the garment?

On a Fashion-MNIST catalog collection (the demo's), shopper phrasings are generated, seeded, from a few templates
and word lists (colour words from the colour table, pattern and shape words), searched through
``Collection.search(text=...)`` by exact search (k=10), and each hit scored by where its picture sits in its own
class, by a measure of its pixels (:mod:`lookalike.embed.attributes`):

- "white X" / "black X" for each of the 10 classes: the hits' mean within-class lightness percentile (goal >= 80 /
  <= 20);
- "a striped X" or "a patterned X" / "a plain X" on t-shirts, pullovers, dresses, shirts and bags: texture
  percentile (goal >= 75 / <= 30);
- "a long dress" / "a short dress", high / low shoes: percentile of the silhouette's height-to-width ratio (goal
  >= 65 / <= 35);
- the share of hits of the class the phrase names (goal >= 95%);
- photo search: catalog pictures as queries (1,000 drawn at random), precision@10 of their class among the other
  catalog items, as stored and turned into product photos (dark on white, tinted, 480 px, JPEG; goal >= 0.90 /
  >= 0.88); and the same with test-split pictures only, which the image tower never trained on (no goal: the
  stricter figure).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Class nouns a shopper would use, per Fashion-MNIST class (0 T-shirt/top ... 9 Ankle boot).
NOUNS = (("t-shirt", "tee", "top"), ("trousers", "pants", "jeans"), ("sweater", "pullover", "jumper"),
         ("dress", "gown", "frock"), ("coat", "jacket", "overcoat"), ("sandals", "sandal", "flip-flops"),
         ("shirt", "blouse", "button-up shirt"), ("sneakers", "trainers", "running shoes"),
         ("bag", "handbag", "purse"), ("ankle boots", "boots", "booties"))
TEXTURE_CLASSES = (0, 2, 3, 6, 8)
SHOE_CLASSES = (5, 7, 9)
LIGHT_WORDS = {"light": ("white", "ivory", "snow white", "off-white", "cream"),
               "dark": ("black", "jet black", "charcoal black", "navy", "ebony")}
PATTERN_PHRASES = {"patterned": ("striped", "patterned", "printed", "with stripes"),
                   "plain": ("plain", "solid-colour", "plain coloured", "unpatterned")}
TEMPLATES = ("{adj} {noun}", "a {adj} {noun}", "{noun} in {adj}", "i want a {adj} {noun}", "show me {adj} {noun}")
GOALS = {"white": (">=", 80.0), "black": ("<=", 20.0), "patterned": (">=", 75.0), "plain": ("<=", 30.0),
         "long dress": (">=", 65.0), "short dress": ("<=", 35.0), "high shoes": (">=", 65.0),
         "low shoes": ("<=", 35.0), "right class": (">=", 95.0), "photo p@10 stored": (">=", 0.90),
         "photo p@10 as product photos": (">=", 0.88)}
PHOTO_QUERY_SETS = ("catalog", "held-out")  # random catalog pictures; test-split pictures only


@dataclass
class PhraseGroup:
    name: str  # "white", "plain", ...
    measure: str  # the pixel measure scored: lightness, texture, aspect
    phrases: list[tuple[str, int]] = field(default_factory=list)  # (text, class)


def phrase_groups(seed: int = 0, per_class: int = 3) -> list[PhraseGroup]:
    """The generated phrasings, seeded: ``per_class`` phrasings per class in each group."""
    rng = np.random.default_rng(seed)

    def phrase(adj: str, noun: str) -> str:
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        if adj.startswith("with ") or (template == "{noun} in {adj}" and adj not in sum(LIGHT_WORDS.values(), ())):
            template = "{adj} {noun}" if not adj.startswith("with ") else "a {noun} {adj}"
        text = template.format(adj=adj, noun=noun)
        return text.replace("a a", "an a").replace("a i", "an i").replace("a o", "an o").replace("a u", "an u")

    groups = []
    for name, words in (("white", LIGHT_WORDS["light"]), ("black", LIGHT_WORDS["dark"])):
        group = PhraseGroup(name, "lightness")
        for label in range(10):
            for _ in range(per_class):
                group.phrases.append((phrase(str(rng.choice(words)), str(rng.choice(NOUNS[label]))), label))
        groups.append(group)
    for name, words in PATTERN_PHRASES.items():
        group = PhraseGroup(name, "texture")
        for label in TEXTURE_CLASSES:
            for _ in range(per_class):
                group.phrases.append((phrase(str(rng.choice(words)), str(rng.choice(NOUNS[label]))), label))
        groups.append(group)
    for name, adjectives, labels in (("long dress", ("long", "maxi", "floor-length"), (3,)),
                                     ("short dress", ("short", "mini", "short little"), (3,)),
                                     ("high shoes", ("high", "high-top", "tall"), SHOE_CLASSES),
                                     ("low shoes", ("low", "low-top", "low-cut"), SHOE_CLASSES)):
        group = PhraseGroup(name, "aspect")
        for label in labels:
            for _ in range(per_class * (3 if len(labels) == 1 else 1)):
                group.phrases.append((phrase(str(rng.choice(adjectives)), str(rng.choice(NOUNS[label]))), label))
        groups.append(group)
    return groups


def catalog_pixels(col) -> tuple[list, np.ndarray, np.ndarray, dict]:
    """Every item of a Fashion-MNIST catalog collection: ids, stored pixels, classes, and id -> row."""
    from ..catalog.fashion_mnist import CLASS_NAMES, load_fashion_mnist

    ids = col.ids()
    points = col.get(ids)
    splits = {s: load_fashion_mnist(s) for s in ("train", "test")}
    pixels = np.empty((len(ids), 28, 28), dtype=np.uint8)
    labels = np.empty(len(ids), dtype=np.int64)
    for row, meta in enumerate(points.metadatas):
        if not meta or meta.get("split") not in splits or meta.get("class") not in CLASS_NAMES:
            from ..errors import InvalidInputError

            raise InvalidInputError(f"collection {col.name!r} is not a Fashion-MNIST catalog (item {ids[row]!r} has "
                                    "no split / index / class): ingest one with --source fashion-mnist")
        images, _ = splits[meta["split"]]
        pixels[row] = images[meta["index"]]
        labels[row] = CLASS_NAMES.index(meta["class"])
    return list(ids), pixels, labels, {item: row for row, item in enumerate(ids)}


def measure_descriptions(col, seed: int = 0, photo_queries: int = 1000, log=print) -> dict:
    """Every figure of the module docstring, on collection ``col``; returns them as a dict."""
    from ..embed.attributes import measure, within_class_percentiles

    ids, pixels, labels, row_of = catalog_pixels(col)
    log(f"{col.name}: {len(ids)} items; measuring their pixels ...")
    measures = measure(pixels)
    percentiles = {name: within_class_percentiles(measures.column(name), labels)
                   for name in ("lightness", "texture", "aspect")}
    figures: dict = {"groups": {}}
    right = total = 0
    for group in phrase_groups(seed):
        scores, examples = [], []
        for text, label in group.phrases:
            result = col.search(text=text, k=10, index="flat")
            rows = [row_of[item] for item in result.ids[0] if item is not None]
            scores.append(float(np.mean(percentiles[group.measure][rows])))
            right += int(np.sum(labels[rows] == label))
            total += len(rows)
            examples.append((text, round(scores[-1], 1)))
        figures["groups"][group.name] = {"measure": group.measure, "mean_percentile": float(np.mean(scores)),
                                         "phrases": len(group.phrases), "examples": examples[:4]}
        log(f"  {group.name:12} {group.measure:9} hits' within-class percentile {np.mean(scores):5.1f} "
            f"({len(group.phrases)} phrasings, e.g. {examples[0][0]!r})")
    figures["right_class"] = 100.0 * right / max(total, 1)
    log(f"  hits of the class named: {figures['right_class']:.1f}%")
    figures.update(photo_precision(col, pixels, labels, ids, photo_queries, seed, log))
    figures["goals"] = goals_met(figures)
    return figures


def photo_precision(col, pixels, labels, ids, n_queries: int, seed: int, log) -> dict:
    """Precision@10 of catalog pictures as photo queries (the query item itself left out), as stored and as
    product photos (:func:`lookalike.embed.photos.round_trip`): queries drawn from the whole catalog (the goals),
    then from the test split only (pictures the tower never trained on)."""
    from ..embed.photos import round_trip
    from ..embed.queries import query_embedder

    rng = np.random.default_rng(seed)
    held_out = np.flatnonzero(np.asarray([str(i).startswith("test-") for i in ids]))
    pools = {"catalog": np.arange(len(ids)), "held-out": held_out}
    embedder = query_embedder(col.embedder)
    label_of = dict(zip(ids, labels))
    out = {}
    for pool_name in PHOTO_QUERY_SETS:
        pool = pools[pool_name]
        if len(pool) == 0:  # a catalog without test-split items has no held-out pictures
            continue
        chosen = rng.choice(pool, size=min(n_queries, len(pool)), replace=False)
        for name, queries in (("stored", pixels[chosen]),
                              ("as product photos", round_trip(pixels[chosen], seed=seed + 7))):
            result = col.query(embedder.embed_pixels(queries), k=11, index="flat", include_metadata=False)
            hits = 0
            for q, row in enumerate(chosen):
                others = [i for i in result.ids[q] if i is not None and i != ids[row]][:10]
                hits += sum(int(label_of[i] == labels[row]) for i in others)
            key = f"photo p@10 {name}" + ("" if pool_name == "catalog" else f" ({pool_name})")
            out[key] = hits / (10 * len(chosen))
            log(f"  photo precision@10, {name}, {pool_name} pictures: {out[key]:.3f} ({len(chosen)} queries)")
    return out


def goals_met(figures: dict) -> dict:
    """Each goal of the issue, with the figure and whether it is met."""
    values = {name: g["mean_percentile"] for name, g in figures["groups"].items()}
    values["right class"] = figures["right_class"]
    values["photo p@10 stored"] = figures["photo p@10 stored"]
    values["photo p@10 as product photos"] = figures["photo p@10 as product photos"]
    out = {}
    for name, (op, bound) in GOALS.items():
        value = values.get(name)
        met = value is not None and (value >= bound if op == ">=" else value <= bound)
        out[name] = {"value": value, "goal": f"{op} {bound}", "met": bool(met)}
    for name in ("photo p@10 stored (held-out)", "photo p@10 as product photos (held-out)"):
        out[name] = {"value": figures.get(name), "goal": "-", "met": None}
    return out


def report(figures: dict) -> str:
    lines = [f"{'figure':40} {'value':>7}   {'goal':8} met"]
    for name, goal in figures["goals"].items():
        value = goal["value"]
        shown = "-" if value is None else (f"{value:.3f}" if value <= 1.0 else f"{value:.1f}")
        met = "" if goal["met"] is None else "yes" if goal["met"] else "NO"
        lines.append(f"{name:40} {shown:>7}   {goal['goal']:8} {met}")
    return "\n".join(lines)
