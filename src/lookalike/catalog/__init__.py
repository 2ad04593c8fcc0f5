"""Catalogs: ingest of product image collections (Fashion-MNIST, H&M layout, any folder of images)."""
