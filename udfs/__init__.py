"""numba kernels (distances, HNSW, k-means, IVF, PQ) and their registration in DuckDB."""
