"""The same index at every layer a user meets: a thin caller of ``lookalike bench --layers``
(``lookalike.bench.layers``), kept for the commands the docs used.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_layers.py --chroma-python PY
"""

from lookalike.bench.layers import main

if __name__ == "__main__":
    main()
