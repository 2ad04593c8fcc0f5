"""Ray for the distributed tests: one local instance for the whole session (num_cpus=2, no dashboard)."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="lookalike.distributed needs Ray: pip install 'ray[data]==2.60.0'")


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray started once; left alone if the session already has one."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def mixed_ids(n: int) -> list:
    """Half int ids, half str ids: routing must keep the int 1 and the str "1" apart."""
    return [i if i % 2 == 0 else str(i) for i in range(n)]


def seeded(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
