"""Numba kernels: plain functions over arrays and scalars (no classes, no dicts), compiled with
``numba.njit(cache=True)``.  Each is checked against a NumPy reference in tests/unit."""
