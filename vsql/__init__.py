"""vsql: vector search for DuckDB, with pgvector's SQL."""

from vsql.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)

__version__ = "0.1.0"

# PEP 249 module globals. Threads may share the module but not a connection,
# because one DuckDB connection runs one statement at a time.
apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"

__all__ = [
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Warning",
    "apilevel",
    "connect",
    "kmeans",
    "paramstyle",
    "threadsafety",
]


def connect(database: str = ":memory:", read_only: bool = False, config: dict | None = None):
    """Open a DuckDB database through vsql and return a PEP 249 connection."""
    from vsql.connection import Connection

    return Connection(database, read_only=read_only, config=config)


def kmeans(x, k: int, *, metric: str = "l2", n_iter: int = 20, seed: int = 0, sample_size: int | None = None):
    """Cluster the rows of ``x`` into ``k`` groups with the k-means that trains IVF indexes.

    Returns ``(centroids, assignment)``: float32[k, d] and the int64 centroid number of each
    row. ``metric`` ``ip`` or ``cosine`` runs spherical k-means. See ``udfs.kmeans.kmeans``.
    """
    from udfs.kmeans import kmeans as train

    return train(x, k, metric=metric, n_iter=n_iter, seed=seed, sample_size=sample_size)
