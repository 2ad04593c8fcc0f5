"""Colour words placed by the grey level a grayscale photo gives them.

A Fashion-MNIST picture is grayscale: it shows how light a product is, not its hue.  A colour name still tells how
light the product is ("navy" is dark, "cream" light), so each name of a colour table gets the grey level that the
usual grayscale conversion (ITU-R 601 luma, PIL's ``convert("L")``, the one the catalog's photos went through) gives
its RGB value, and from it one of five lightness steps.  Names of equal grey level (a red and a green, 68 and 113
here) are told apart by nothing in such a picture: :func:`read_colour` says so, so the search can say it too.

The table is matplotlib's named colours: the 949 names of the xkcd colour survey (Munroe 2010) and the 148 CSS4
names, a systematic source rather than a hand-made list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

# The five lightness steps, darkest first, and the word that names each.
LIGHTNESS_WORDS = ("black", "dark", "grey", "light", "white")
# Upper luma bound (0..255) of each step but the last.
LUMA_BOUNDS = (45.0, 100.0, 160.0, 215.0)
# Everyday colour names whose neighbours in grey a reader may want to hear about ("red looks like green").
BASIC_HUES = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige", "navy", "burgundy",
              "olive", "teal", "khaki", "cream", "turquoise", "lilac", "mustard")
# Words that shift a colour's lightness or stand for a step alone ("a dark dress", "pale pink").
# Names of the colour table that a shop reads as a material first ("a leather jacket" says nothing of its grey).
MATERIALS = frozenset({"leather", "denim", "linen", "velvet", "suede", "silk", "satin", "tweed", "corduroy"})
DARKER = frozenset({"dark", "deep", "darkest"})
LIGHTER = frozenset({"light", "pale", "pastel", "lightest"})


def luma(hex_colour: str) -> float:
    """ITU-R 601 luma of ``#rrggbb`` (0 black .. 255 white): the grey a grayscale photo shows."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b


def lightness_step(grey: float) -> int:
    """The step (0 black .. 4 white) of a grey level."""
    return int(sum(grey >= bound for bound in LUMA_BOUNDS))


@lru_cache(maxsize=1)
def colour_table() -> dict[str, float]:
    """Colour name (lower case, words separated by spaces) -> grey level, from matplotlib's xkcd and CSS4 tables.
    CSS4 names written as one word ("darkslategray") are kept only when they are not compounds of other names."""
    from matplotlib import colors

    table = {name.removeprefix("xkcd:").replace("/", " "): luma(value) for name, value in colors.XKCD_COLORS.items()}
    for name, value in colors.CSS4_COLORS.items():
        compound = any(part in name and part != name for part in ("dark", "light", "medium", "pale", "deep"))
        if not compound:
            table.setdefault(name, luma(value))
    for material in MATERIALS:
        table.pop(material, None)
    table["grey"] = table["gray"] = 128.0  # the survey's "grey" is a light one; the word means the middle
    table["white"], table["black"] = 255.0, 0.0
    return table


@dataclass
class ColourReading:
    """What a text says about lightness: the step, the words that said it, and the hues it cannot tell apart."""

    step: int
    words: str
    grey: float
    same_grey: list[str] = field(default_factory=list)  # basic hues a grayscale picture shows alike

    def note(self) -> str | None:
        if not self.same_grey:
            return None
        return (f"'{self.words}' is read as {LIGHTNESS_WORDS[self.step]} (grey level {self.grey:.0f} of 255): the "
                f"catalog's pictures are grayscale, so it looks the same as {', '.join(self.same_grey[:4])}")


def read_colour(text: str) -> ColourReading | None:
    """The lightness a text names, from its longest colour name (with "dark" / "light" shifting it), or a
    lightness word alone ("a dark dress"); None when it names none."""
    words = re.findall(r"[a-z]+", text.lower())
    table = colour_table()
    for size in (3, 2, 1):
        for start in range(len(words) - size + 1):
            name = " ".join(words[start:start + size])
            if name in table and name not in DARKER | LIGHTER:
                grey = table[name]
                before = words[start - 1] if start > 0 else ""
                step = lightness_step(grey)
                if before in DARKER and size == 1:
                    step, name = max(0, step - 1), f"{before} {name}"
                elif before in LIGHTER and size == 1:
                    step, name = min(4, step + 1), f"{before} {name}"
                return ColourReading(step, name, grey, _hues_like(name, grey))
    for word in words:
        if word in DARKER:
            return ColourReading(1, word, 70.0)
        if word in LIGHTER:
            return ColourReading(3, word, 190.0)
    return None


def _hues_like(name: str, grey: float) -> list[str]:
    """Basic hues whose grey level is within 25 of ``grey`` (none for white, black and greys: they are greys)."""
    if name.split()[-1] in ("white", "black", "grey", "gray"):
        return []
    table = colour_table()
    return [hue for hue in BASIC_HUES if hue not in name.split() and abs(table[hue] - grey) <= 25]


def colours_of_step(step: int) -> list[str]:
    """Every colour name of the table whose grey level falls in ``step``: the words a caption may use for it."""
    return sorted(name for name, grey in colour_table().items() if lightness_step(grey) == step)
