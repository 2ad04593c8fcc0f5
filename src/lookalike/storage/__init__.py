"""Storage: SQLite (WAL) is the source of truth; index files under ``derived/`` are rebuildable caches."""
