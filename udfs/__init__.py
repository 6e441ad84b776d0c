"""numba kernels (distances, HNSW, k-means, IVF, PQ) and their registration in DuckDB."""

import os

# numba's OpenMP threads spin while they wait for work. Next to DuckDB's own threads on a small
# machine that spinning slowed kernel tests about tenfold (measured on 2 cores), so waiting
# threads sleep instead unless the user chose otherwise. It must be set before OpenMP starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
