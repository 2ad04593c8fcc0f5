"""ann-benchmarks-style harness behind ``lookalike bench``: data sets (HDF5, synthetic, Fashion-MNIST, a
collection), ground truth by FlatIndex, algorithm adapters (lookalike's registry + faiss / hnswlib / annoy),
the runner, JSON results, the Pareto table and the recall-QPS plot.  See docs/bench.md."""

from .cli import add_bench_arguments, run_bench

__all__ = ["add_bench_arguments", "run_bench"]
