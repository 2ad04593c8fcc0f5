"""Presets: named comparisons of ``lookalike bench --preset NAME``, each one TOML file under ``presets/`` with the
data, algorithms, parameter grids and modes that comparison needs (what the scripts bench_core.py, bench_hnsw.py
and bench_lsh_rpf.py measured with timing code of their own, now measured by the harness):

    [preset]
    description = "..."

    [[preset.run]]                  # one harness run per mode of each entry, in order
    dataset = "synthetic:100000:128"
    metric = "angular"              # optional, as --metric
    queries = 1000                  # optional, as --queries
    algorithms = "lookalike-hnsw,hnswlib,faiss-hnsw"
    modes = ["single", "batch"]

    [lookalike-hnsw]                # algorithm tables as in configs/: for this preset they replace the built-ins
    library = "lookalike"
    ...

Options given on the command line win over a run's (``-d``, ``--queries``, ``--metric``, ``-a``): the same
comparison on a smaller set is ``lookalike bench --preset hnsw -d synthetic:20000:64``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidParameterError
from .definitions import Definition, parse_tables, read_toml

PRESET_DIR = Path(__file__).with_name("presets")
MODES = ("single", "batch")


@dataclass
class PresetRun:
    dataset: str
    modes: list[str]
    algorithms: str | None = None
    metric: str | None = None
    queries: int | None = None


@dataclass
class Preset:
    name: str
    description: str
    runs: list[PresetRun]
    definitions: list[Definition]


def preset_names() -> list[str]:
    return sorted(file.stem for file in PRESET_DIR.glob("*.toml"))


def load_preset(name: str, sweep: str = "quick") -> Preset:
    file = PRESET_DIR / f"{name}.toml"
    if not file.is_file():
        raise InvalidParameterError(f"no preset {name!r}: the presets are {preset_names()}")
    tables = read_toml(file)
    head = tables.pop("preset", None)
    if not isinstance(head, dict) or not head.get("run"):
        raise InvalidParameterError(f"{file}: a preset needs a [preset] table with at least one [[preset.run]]")
    runs = [_run_of(entry, file) for entry in head["run"]]
    return Preset(name, str(head.get("description", "")), runs, parse_tables(tables, file, sweep))


def _run_of(entry: dict, file: Path) -> PresetRun:
    modes = list(entry.get("modes", ["single"]))
    if "dataset" not in entry or not modes or set(modes) - set(MODES):
        raise InvalidParameterError(f"{file}: each [[preset.run]] needs a dataset and modes among {MODES}")
    return PresetRun(str(entry["dataset"]), modes, entry.get("algorithms"), entry.get("metric"),
                     entry.get("queries"))
