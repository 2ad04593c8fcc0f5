"""What a picture shows, from its pixels (lightness, pattern, shape), and what a query says of it."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.embed.attributes import measure, product_pixels, silhouettes, within_class_percentiles
from lookalike.embed.colours import LIGHTNESS_WORDS, colours_of_step, lightness_step, read_colour
from lookalike.embed.described_route import (
    DescribedCentroids, QueryDescription, SLOT_OF, add_voted, described_centroids, read_description,
)
from lookalike.embed.descriptions import (
    ATTRIBUTES, LENGTH, LIGHTNESS, PATTERN, PATTERNED, PLAIN, SLEEVES, STRIPED, UNSAID, describe, fits,
)
from lookalike.errors import InvalidInputError

pytestmark = pytest.mark.unit


def picture(value: int = 200, top: int = 2, bottom: int = 26, left: int = 6, right: int = 22) -> np.ndarray:
    """A stored picture (light on black) of a rectangle of ``value``."""
    stored = np.zeros((28, 28), dtype=np.uint8)
    stored[top:bottom, left:right] = value
    return stored


def test_lightness_is_the_product_grey_with_the_negation_undone():
    dark_product, light_product = picture(230), picture(40)  # stored light = product dark
    m = measure(np.stack([dark_product, light_product]))
    assert m.lightness[0] == pytest.approx(25, abs=1) and m.lightness[1] == pytest.approx(215, abs=1)
    assert product_pixels(dark_product)[0, 0] == 255  # the background is white again


def test_texture_and_stripes_tell_plain_from_striped():
    plain = picture(150)
    striped = plain.copy()
    striped[2:26:2, 6:22] = 250  # horizontal stripes, two pixels a period
    checked = plain.copy()
    checked[2:26:2, 6:22:2] = 250
    m = measure(np.stack([plain, striped, checked]))
    assert m.texture[0] < 1 < m.texture[2] and m.texture[0] < m.texture[1]
    assert m.stripes[1] > 0.9 and m.stripes[2] < 0.5


def test_aspect_sleeves_and_handle_from_the_silhouette():
    tall, wide = picture(top=0, bottom=28, left=10, right=18), picture(top=10, bottom=18, left=0, right=28)
    long_sleeves = picture(left=8, right=20)
    long_sleeves[4:24, 3:8] = 200  # arms hanging beside the body, down to the hem
    long_sleeves[4:24, 20:25] = 200
    short_sleeves = picture(left=8, right=20)
    short_sleeves[4:9, 3:8] = 200
    short_sleeves[4:9, 20:25] = 200
    bag = picture(top=12, bottom=26, left=4, right=24)
    bag[3:12, 8:10] = bag[3:12, 18:20] = bag[3:5, 8:20] = 200  # a handle: a loop over the body
    m = measure(np.stack([tall, wide, long_sleeves, short_sleeves, bag]))
    assert m.aspect[0] == pytest.approx(28 / 8) and m.aspect[1] == pytest.approx(8 / 28)
    assert m.sleeves[2] > 0.95 > 0.75 > m.sleeves[3]
    assert m.handle[4] > 0.2 and m.handle[0] == 0


def test_background_seen_through_straps_is_not_the_product():
    sandal = np.zeros((28, 28), dtype=np.uint8)
    sandal[8:20, 4:24] = 220
    sandal[10:18, 6:22] = 0  # a hole between straps shows the background
    body = silhouettes(sandal)[0]
    assert not body[14, 14] and body[8, 4]
    assert measure(sandal).lightness[0] == pytest.approx(35, abs=1)  # the straps alone


def test_bad_pictures_are_refused():
    with pytest.raises(InvalidInputError):
        measure(np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(InvalidInputError):
        measure(np.zeros((28,), dtype=np.uint8))


def test_within_class_percentiles_rank_inside_each_class():
    values = np.array([1.0, 2.0, 3.0, 100.0, 200.0])
    labels = np.array([0, 0, 0, 1, 1])
    pct = within_class_percentiles(values, labels)
    assert pct[0] < pct[1] < pct[2] and pct[3] == pytest.approx(25) and pct[4] == pytest.approx(75)


def test_describe_gives_class_relative_words():
    rng = np.random.default_rng(0)
    stored = np.stack([picture(int(v)) for v in rng.integers(20, 240, size=40)])
    for i in range(40):  # plain pictures with a little grain each, of different strengths
        stored[i, 2:26, 6:22] += rng.integers(0, 1 + i % 7, size=(24, 16)).astype(np.uint8)
    stored[::4, 2:26:2, 6:22] = 255  # every fourth is striped
    labels = np.full(40, 3)  # dresses
    d = describe(stored, labels)
    lightest = int(np.argmax(d.measures.lightness))
    darkest = int(np.argmin(d.measures.lightness))
    assert d.values[lightest, LIGHTNESS] == 4 and d.values[darkest, LIGHTNESS] == 0
    assert set(d.values[::4, PATTERN]) <= {PATTERNED, STRIPED} and PLAIN in d.values[:, PATTERN]
    assert (d.values[:, ATTRIBUTES.index("handle")] == UNSAID).all()  # dresses have no handle


def test_a_caption_fits_the_pictures_that_show_what_it_says():
    picture_values = np.array([4, STRIPED, UNSAID, 1, UNSAID, UNSAID], dtype=np.int8)
    says = lambda **kw: np.array([kw.get(a, UNSAID) for a in ATTRIBUTES], dtype=np.int8)  # noqa: E731
    assert fits(picture_values, says())
    assert fits(picture_values, says(lightness=4, pattern=PATTERNED))  # "patterned" fits a striped picture
    assert not fits(picture_values, says(lightness=0))
    assert not fits(picture_values, says(pattern=PLAIN))


def test_colour_names_are_placed_by_the_grey_they_show():
    assert read_colour("a navy dress").step == 0 and read_colour("cream sweater").step == 4
    assert read_colour("white sneakers").words == "white" and read_colour("jet black boots").step == 0
    assert read_colour("a light blue shirt").step == 3 and read_colour("a dark dress").step == 1
    assert read_colour("a dress") is None and read_colour("a leather jacket") is None  # a material, not a colour
    red = read_colour("a red dress")
    assert red.step == lightness_step(red.grey) and "green" not in red.same_grey
    assert "grayscale" in red.note() and red.same_grey
    assert read_colour("white shirt").note() is None  # white is a grey: nothing to warn about
    for step in range(len(LIGHTNESS_WORDS)):
        assert colours_of_step(step)


def test_reading_a_description():
    d = read_description("a long black striped dress", 3)
    assert d.values == {LIGHTNESS: 0, PATTERN: STRIPED, LENGTH: 1}
    shirt = read_description("a white shirt with long sleeves", 6)
    assert shirt.values == {LIGHTNESS: 4, SLEEVES: 1}  # "long" is about the sleeves, not the length
    sneakers = read_description("striped sneakers", 7)
    assert PATTERN not in sneakers.values and "does not change the ranking" in sneakers.notes[0]
    assert read_description("high-top sneakers", 7).values == {LENGTH: 1}
    assert read_description("a dress", 3).values == {}


def test_voters_fill_what_the_words_left_open():
    voters = np.full((30, len(ATTRIBUTES)), UNSAID, dtype=np.int8)
    voters[:20, LIGHTNESS] = 0  # two thirds of the nearest captions say black
    voters[:3, PATTERN] = PLAIN  # too few say anything of the pattern
    d = add_voted(QueryDescription(), voters)
    assert d.values == {LIGHTNESS: 0} and d.source[LIGHTNESS] == "use-m"
    said = add_voted(QueryDescription({LIGHTNESS: 4}, {LIGHTNESS: "white"}), voters)
    assert said.values[LIGHTNESS] == 4  # the query's own words win


def test_the_pull_goes_toward_the_part_of_the_class_described():
    rng = np.random.default_rng(1)
    n, dim = 400, 8
    labels = np.repeat([0, 1], n // 2)
    values = np.full((n, len(ATTRIBUTES)), UNSAID, dtype=np.int8)
    values[:, LIGHTNESS] = rng.integers(0, 5, size=n)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors[:, 0] += 3 * labels  # the class
    vectors[:, 1] += values[:, LIGHTNESS] - 2.0  # lightness along axis 1
    table = described_centroids(vectors, labels, values)
    assert table.shape == (2, 1 + len(SLOT_OF), dim) and np.isnan(table[0, SLOT_OF[(PATTERN, PLAIN)]]).all()
    centres = DescribedCentroids(table)
    white = centres.target(1, QueryDescription({LIGHTNESS: 4}))
    black = centres.target(1, QueryDescription({LIGHTNESS: 0}))
    plain = centres.target(1, QueryDescription({PATTERN: PLAIN}))  # no pictures: the class centre
    assert white[1] > plain[1] > black[1] and np.allclose(plain, table[1, 0] / np.linalg.norm(table[1, 0]))
    assert np.linalg.norm(white) == pytest.approx(1.0)


def test_product_photo_round_trip_is_seeded_and_keeps_the_garment():
    from lookalike.embed.photos import as_product_photo, round_trip

    stored = np.stack([picture(200, left=8, right=20), picture(120)])
    once, again = round_trip(stored, seed=3), round_trip(stored, seed=3)
    assert once.dtype == np.uint8 and once.shape == stored.shape and np.array_equal(once, again)
    assert np.abs(once.astype(int) - stored).mean() < 40
    photo = as_product_photo(stored[0], np.random.default_rng(0))
    assert photo.size == (480, 480) and photo.mode == "RGB" and photo.getpixel((0, 0))[0] > 240  # white background
