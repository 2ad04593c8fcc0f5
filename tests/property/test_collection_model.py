"""Hypothesis state machine: a Collection behaves like a dict {id: (vector, metadata)} under add / upsert /
delete / reopen, and its exact query agrees with brute force over that dict."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lookalike
from lookalike.errors import DuplicateIdError, IdNotFoundError

pytestmark = pytest.mark.property
DIM = 4
ids = st.one_of(st.integers(-5, 30), st.text(alphabet="abcé😀", min_size=1, max_size=3))
vectors = st.lists(st.integers(-8, 8), min_size=DIM, max_size=DIM).map(lambda v: [float(x) for x in v])
metadata = st.one_of(st.none(), st.fixed_dictionaries({"n": st.integers(0, 3)}))


class CollectionMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.db = lookalike.Database(self.dir + "/db")
        self.col = self.db.create_collection("m", dim=DIM, metric="l2")
        self.model: dict = {}

    def teardown(self):
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def key(i):
        return (type(i), i)

    @rule(batch=st.lists(st.tuples(ids, vectors, metadata), min_size=1, max_size=5, unique_by=lambda t: (type(t[0]), t[0])))
    def add(self, batch):
        keys = [self.key(i) for i, _, _ in batch]
        if any(k in self.model for k in keys):
            with pytest.raises(DuplicateIdError):
                self.col.add([b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch])
            return
        self.col.add([b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch])
        for (i, v, m), k in zip(batch, keys):
            self.model[k] = (v, m)

    @rule(batch=st.lists(st.tuples(ids, vectors, metadata), min_size=1, max_size=5, unique_by=lambda t: (type(t[0]), t[0])))
    def upsert(self, batch):
        self.col.upsert([b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch])
        for i, v, m in batch:
            self.model[self.key(i)] = (v, m)

    @rule(data=st.data())
    def delete(self, data):
        if self.model and data.draw(st.booleans()):
            chosen = data.draw(st.lists(st.sampled_from(sorted(self.model, key=repr)), min_size=1, max_size=3, unique=True))
            self.col.delete([k[1] for k in chosen])
            for k in chosen:
                del self.model[k]
        else:
            missing = data.draw(ids)
            if self.key(missing) not in self.model:
                with pytest.raises(IdNotFoundError):
                    self.col.delete([missing])

    @rule()
    def reopen(self):
        self.db.close()
        self.db = lookalike.Database(self.dir + "/db")
        self.col = self.db.get_collection("m")

    @invariant()
    def same_content(self):
        assert len(self.col) == len(self.model)
        if self.model:
            keys = sorted(self.model, key=repr)
            got = self.col.get([k[1] for k in keys])
            np.testing.assert_array_equal(got.vectors, [self.model[k][0] for k in keys])
            assert got.metadatas == [self.model[k][1] for k in keys]

    @precondition(lambda self: len(self.model) > 0)
    @invariant()
    def exact_query_matches_brute_force(self):
        q = np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32)
        k = min(3, len(self.model))
        result = self.col.query(q, k=k)
        vecs = np.array([v for v, _ in self.model.values()], dtype=np.float32)
        want = np.sort(np.sqrt(((vecs - q) ** 2).sum(1)))[:k]
        np.testing.assert_allclose(result.distances[0], want, rtol=1e-5, atol=1e-5)
        for i, d in zip(result.ids[0], result.distances[0]):
            v = self.model[self.key(i)][0]
            assert np.sqrt(((np.array(v) - q[0]) ** 2).sum()) == pytest.approx(float(d), abs=1e-4)


CollectionMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestCollectionMachine = CollectionMachine.TestCase
