"""Storage: each collection's SQLite file (ids, metadata, change log; WAL) and its vector log (the vectors,
appended and memory-mapped) are the data; index files under ``derived/`` are rebuildable caches."""
