"""The command-line parts: argument parsing (no Ray) and one end-to-end run (slow)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from lookalike.distributed.cli import (
    add_reshard_arguments,
    add_shard_arguments,
    add_shards_arguments,
    ray_address,
    run_reshard,
    run_shards,
)

from .conftest import seeded


def _parser(add) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser


@pytest.mark.cli
def test_serve_options_parse_without_ray():
    args = _parser(add_shard_arguments).parse_args(["--ray-address", "auto", "--shards", "8"])
    assert (ray_address(args), args.shards) == ("auto", 8)
    local = _parser(add_shard_arguments).parse_args(["--ray-address", "local"])
    assert ray_address(local) is None and local.shards is None


@pytest.mark.cli
def test_reshard_and_shards_commands_parse():
    args = _parser(add_reshard_arguments).parse_args(["--db", "d", "--shards", "3"])
    assert (args.db, args.shards, args.batch_size) == ("d", 3, 5_000)
    args = _parser(add_shards_arguments).parse_args(["ingest", "items", "x.npy", "--db", "d", "--start-id", "7"])
    assert (args.shards_action, args.name, str(args.source), args.start_id) == ("ingest", "items", "x.npy", 7)
    with pytest.raises(SystemExit):
        _parser(add_reshard_arguments).parse_args(["--db", "d"])  # --shards is required


@pytest.mark.cli
@pytest.mark.slow
def test_create_ingest_index_info_and_reshard_from_the_command_line(ray_local, tmp_path, capsys):
    db = str(tmp_path / "db")
    np.save(tmp_path / "x.npy", seeded(500, 6, seed=40))
    shards = _parser(add_shards_arguments)
    assert run_shards(shards.parse_args(["create", "items", "--dim", "6", "--metric", "l2", "--db", db,
                                         "--shards", "2"])) == 0
    assert run_shards(shards.parse_args(["ingest", "items", str(tmp_path / "x.npy"), "--db", db])) == 0
    assert run_shards(shards.parse_args(["index", "items", "--type", "ivf", "--param", "nlist=4", "--db", db])) == 0
    assert run_reshard(_parser(add_reshard_arguments).parse_args(["--db", db, "--shards", "3"])) == 0
    assert run_shards(shards.parse_args(["info", "--db", db])) == 0
    out = capsys.readouterr().out
    assert "added 500" in out and "resharded 2 -> 3 shards: 500 points" in out
    assert "items: 500 points" in out and "3 shards" in out
