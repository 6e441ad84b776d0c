"""Vector indexes of one connection: creation, loading, synchronisation with their tables, search.

An index maps internal ids (rows of the numba kernel) to DuckDB ``rowid``s and keeps a hash of
each row's vector. Before an index is searched, :meth:`ManagedIndex.sync` compares those
pairs with the table and applies every difference, so an index is never stale, whichever client
wrote the table:

- a row whose rowid and hash are unchanged keeps its node;
- a row whose rowid changed but whose vector did not (DuckDB renumbers rows when it compacts a
  table) keeps its node under the new rowid;
- a deleted row, or the old version of an updated one, becomes a tombstone;
- a new row, or the new version of an updated one, is added to the graph or lists.

Rows whose vector is NULL, and zero vectors under cosine, are not indexed ("excluded" rows), but
searches still return them wherever exact search would, so no row is lost to the index.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from planner.knn import UDF_NAME  # the function the planner's correlated rewrite calls
from udfs import metrics
from udfs.hnsw import TWO_HOP_BELOW  # share of matching rows below which HNSW walks two hops
from vsql import catalog, kernels, persistence
from vsql.catalog import IndexDefinition
from vsql.errors import Error, OperationalError, ProgrammingError
from vsql.progress import Progress

if TYPE_CHECKING:
    from vsql.connection import Connection

log = logging.getLogger("vsql")

# A full rebuild replaces incremental updates once this share of the indexed rows changed,
# because an HNSW graph with a majority of tombstones searches slowly.
REBUILD_FRACTION = 0.5
# At most this many matching rows, a filtered search scans them exactly. Measured on the
# 100,000 x 384 pypi-minilm set (2 cores): the exact numba scan of 10,000 scattered rows takes
# about 4 ms. The filtered HNSW walk at 3.5% selectivity (3,460 rows) reached only recall@10
# 0.80 at ef_search 40 (python -m benchmarks).
EXACT_FILTER_ROWS = 10_000
# INCLUDE column types that an index-only scan returns itself, because Arrow converts them to the
# same Python values as DuckDB's fetchall(). A column of any other type sends the query to DuckDB.
COVERING_TYPES = frozenset(
    (
        "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
        "UBIGINT", "FLOAT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP",
    )
)
# A stored index of a table with at least this many rows loads in the background on first use,
# while queries run as exact scans. Smaller ones load at once: the first query on a stored index
# of 20,000 rows of 384 dimensions took 0.32 s, most of it loading the numba kernels.
BACKGROUND_LOAD_ROWS = 50_000
# Write the index back to the file once this share of its rows changed since the last write.
PERSIST_FRACTION = 0.1


def _kernel_class(method: str):
    if method == "hnsw":
        from udfs.hnsw import HnswIndex

        return HnswIndex
    if method == "ivfflat":
        from udfs.ivf import IvfFlatIndex

        return IvfFlatIndex
    if method == "ivfpq":
        from udfs.pq import IvfPqIndex

        return IvfPqIndex
    raise ProgrammingError(f'access method "{method}" does not exist; valid methods are hnsw, ivfflat, ivfpq')


def _kernel_options(definition: IndexDefinition) -> dict:
    return {key: value for key, value in definition.options.items() if key != "metric"}


def _available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class ManagedIndex:
    """One vector index: its definition, numba kernel and rowid bookkeeping."""

    def __init__(self, connection: Connection, definition: IndexDefinition) -> None:
        self.connection = connection
        self.definition = definition
        self.kernel = None
        self.node_rowids = np.empty(0, dtype=np.int64)  # -1 for tombstones
        self.node_hashes = np.empty(0, dtype=np.uint64)
        self.excluded_rowids = np.empty(0, dtype=np.int64)
        self.excluded_hashes = np.empty(0, dtype=np.uint64)
        self.excluded_is_null = np.empty(0, dtype=bool)
        self.dirty = True
        self.changes_since_persist = 0
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None
        # Copies of the INCLUDE columns, one row per node, for index-only scans.
        self.included: pa.Table | None = None
        self._included_types: list | None = None
        self._included_numpy: tuple[pa.Table, dict[int, np.ndarray]] | None = None
        # True until the arrays stored in the file are read: opening a database stays cheap,
        # and kernels compile only for a process that searches.
        self.stored = False
        self._loader: Future | None = None  # the background load of a large stored index
        self.generation = 0  # writes that may have changed the table, counted for that load

    def mark_dirty(self) -> None:
        """Record that the table may have changed: the next search syncs the index first."""
        self.dirty = True
        self.generation += 1

    # -- facts ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def n_live(self) -> int:
        return int((self.node_rowids >= 0).sum())

    def memory_bytes(self) -> int:
        kernel_bytes = self.kernel.memory_bytes() if self.kernel is not None else 0
        included_bytes = self.included.nbytes if self.included is not None else 0
        return kernel_bytes + included_bytes + self.node_rowids.nbytes + self.node_hashes.nbytes

    def search_setting(self) -> tuple[str, int]:
        """Return the name and value of the setting that widens this index's search."""
        setting = {"hnsw": "hnsw.ef_search", "ivfflat": "ivfflat.probes", "ivfpq": "ivfpq.probes"}
        name = setting[self.definition.method]
        return name, int(self.connection.settings.get(name))

    # -- table access -----------------------------------------------------------------------

    def _scan_table(self, with_vectors: bool = False, reader=None):
        """Return rowid, vector hash and NULL flag of every row, sorted by rowid.

        ``with_vectors`` adds the vectors in the table's scan order and, for each sorted position,
        the row of that array: sorting 150 MB of vectors would cost more than the whole scan.
        """
        d = self.definition
        columns = f"rowid, {self._hash_sql()}, {d.quoted_column} IS NULL"
        if with_vectors:
            columns += f", {d.quoted_column}" + "".join(f", {c}" for c in self._included_sql())
        table = (reader or self.connection).query_arrow(f"SELECT {columns} FROM {d.qualified_table}")
        rowids = table.column(0).to_numpy().astype(np.int64, copy=False)
        hashes = table.column(1).to_numpy().astype(np.uint64, copy=False)
        is_null = table.column(2).to_numpy(zero_copy_only=False).astype(bool)
        order = np.argsort(rowids, kind="stable")
        vectors = self._vector_values(table.column(3)) if with_vectors else None
        included = table.select(range(4, table.num_columns)) if with_vectors and d.include else None
        return rowids[order], hashes[order], is_null[order], (vectors, order, included)

    def _hash_sql(self) -> str:
        """Return the SQL hash of a row's vector and INCLUDE columns, which changes when the row does."""
        return f"hash({', '.join([self.definition.quoted_column, *self._included_sql()])})"

    def _included_sql(self) -> list[str]:
        return [catalog.quote_identifier(name) for name in self.definition.include]

    def _vector_values(self, column: pa.ChunkedArray) -> np.ndarray:
        """Return a fixed-size list column as float32 rows (NaN where a vector or value is NULL).

        ``values`` keeps the child slots of NULL vectors, unlike ``flatten()``, so the rows line
        up with the column. It ignores the array's offset, so the code slices it.
        """
        dims = self.definition.dims
        rows = []
        for array in column.chunks:
            values = array.values.slice(array.offset * dims, len(array) * dims)
            rows.append(values.to_numpy(zero_copy_only=False).reshape(len(array), dims))
        if not rows:
            return np.empty((0, dims), dtype=np.float32)
        stacked = rows[0] if len(rows) == 1 else np.concatenate(rows)
        return stacked.astype(np.float32, copy=False)

    def _fetch_vectors(self, rowids: np.ndarray, total_rows: int) -> tuple[np.ndarray, pa.Table | None]:
        """Return the vectors of ``rowids`` (sorted) as float32 rows, and their INCLUDE columns."""
        d = self.definition
        columns = ", ".join([f"rowid, {d.quoted_column}", *self._included_sql()])
        if len(rowids) > total_rows // 4:
            sql = f"SELECT {columns} FROM {d.qualified_table} WHERE {d.quoted_column} IS NOT NULL"
            table = self.connection.query_arrow(sql)
        else:
            sql = f"SELECT {columns} FROM {d.qualified_table} WHERE rowid IN (SELECT unnest($1::BIGINT[]))"
            table = self.connection.query_arrow(sql, [rowids])
        got_rowids = table.column(0).to_numpy().astype(np.int64, copy=False)
        column = table.column(1).combine_chunks()
        values = column.values.to_numpy(zero_copy_only=False)
        vectors = values.reshape(len(column), d.dims).astype(np.float32, copy=False)
        order = np.argsort(got_rowids)
        rows = order[np.searchsorted(got_rowids[order], rowids)]
        included = table.select(range(2, table.num_columns)).take(rows) if d.include else None
        return np.ascontiguousarray(vectors[rows]), included

    # -- synchronisation --------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the index up to date with its table (see the module docstring)."""
        scan = self._load_stored() if self.stored else None
        if not self.dirty:
            return
        started = time.perf_counter()
        rowids, hashes, is_null = scan if scan is not None else self._scan_table()[:3]
        claimed = np.zeros(len(rowids), dtype=bool)

        live = np.flatnonzero(self.node_rowids >= 0)
        kept, gone = self._match(live, self.node_rowids, self.node_hashes, rowids, hashes, claimed)
        kept_excluded, _ = self._match(
            np.arange(len(self.excluded_rowids)),
            self.excluded_rowids,
            self.excluded_hashes,
            rowids,
            hashes,
            claimed,
        )
        relabeled = self._relabel(gone, rowids, hashes, claimed, is_null)
        gone = np.setdiff1d(gone, relabeled, assume_unique=True)

        new_rows = np.flatnonzero(~claimed & ~is_null)
        rebuild = self.kernel is None or (
            len(gone) + len(new_rows) > REBUILD_FRACTION * max(len(live), 1) and len(live) > 0
        )
        if rebuild:
            self._build(rowids, hashes, is_null)
        else:
            if len(gone):
                self.kernel.remove(gone)
                self.node_rowids[gone] = -1
            previous_excluded = (
                self.excluded_rowids[kept_excluded],
                self.excluded_hashes[kept_excluded],
                self.excluded_is_null[kept_excluded],
            )
            self._reset_excluded(*previous_excluded)
            self._add_rows(rowids[new_rows], hashes[new_rows], len(rowids))
            new_null = np.flatnonzero(~claimed & is_null)
            self._add_excluded(rowids[new_null], hashes[new_null], np.ones(len(new_null), dtype=bool))
        self.changes_since_persist += len(gone) + len(new_rows)
        self._lookup = None
        self.dirty = False
        if len(gone) or len(new_rows) or len(relabeled):
            log.info(
                "index %s synced with %s: %d added, %d removed, %d renumbered in %.3f s",
                self.name,
                self.definition.table_name,
                len(new_rows),
                len(gone),
                len(relabeled),
                time.perf_counter() - started,
            )
        registered = self.connection.indexes.get(self.name) is self
        if registered and self.changes_since_persist > PERSIST_FRACTION * max(self.n_live, 1):
            self.persist()

    @staticmethod
    def _match(nodes, node_rowids, node_hashes, rowids, hashes, claimed):
        """Split ``nodes`` into those whose (rowid, hash) is still in the table and the rest."""
        if len(nodes) == 0:
            return nodes, nodes
        position = np.searchsorted(rowids, node_rowids[nodes])
        position = np.minimum(position, max(len(rowids) - 1, 0))
        if len(rowids) == 0:
            return nodes[:0], nodes
        same = (rowids[position] == node_rowids[nodes]) & (hashes[position] == node_hashes[nodes])
        claimed[position[same]] = True
        return nodes[same], nodes[~same]

    def _relabel(self, gone, rowids, hashes, claimed, is_null) -> np.ndarray:
        """Give vanished nodes the new rowid of an unclaimed row with the same vector hash."""
        if len(gone) == 0:
            return gone
        unclaimed = np.flatnonzero(~claimed & ~is_null)
        if len(unclaimed) == 0:
            return gone[:0]
        by_hash: dict[int, list[int]] = {}
        for position in unclaimed.tolist():
            by_hash.setdefault(int(hashes[position]), []).append(position)
        relabeled = []
        for node in gone.tolist():
            positions = by_hash.get(int(self.node_hashes[node]))
            if positions:
                position = positions.pop()
                self.node_rowids[node] = rowids[position]
                claimed[position] = True
                relabeled.append(node)
        return np.asarray(relabeled, dtype=np.int64)

    def _reset_excluded(self, rowids, hashes, is_null) -> None:
        self.excluded_rowids, self.excluded_hashes, self.excluded_is_null = rowids, hashes, is_null

    def _add_excluded(self, rowids, hashes, is_null) -> None:
        self.excluded_rowids = np.concatenate([self.excluded_rowids, rowids])
        self.excluded_hashes = np.concatenate([self.excluded_hashes, hashes])
        self.excluded_is_null = np.concatenate([self.excluded_is_null, is_null])

    def _new_kernel(self):
        d = self.definition
        kernels.ensure_compiled(d.method)
        return _kernel_class(d.method)(d.dims, d.metric, **_kernel_options(d))

    def _check_memory(self, n: int) -> None:
        kernel_class = _kernel_class(self.definition.method)
        estimate = getattr(kernel_class, "estimate_memory", None)
        available = _available_memory()
        if estimate is None or available is None:
            return
        needed = (
            estimate(
                n, self.definition.dims, **{k: v for k, v in _kernel_options(self.definition).items() if k in ("m",)}
            )
            + n * self.definition.dims * 4
        )
        if needed > available:
            raise OperationalError(
                f'index "{self.name}" needs about {needed / 2**30:.1f} GiB of memory for {n:,} rows, '
                f"but only {available / 2**30:.1f} GiB is free; free memory or use ivfpq, "
                "which stores compressed vectors"
            )

    def _build(self, rowids, hashes, is_null) -> None:
        """Build the kernel from every row of the table."""
        indexable = np.flatnonzero(~is_null)
        self._check_memory(len(indexable))
        self.kernel = self._new_kernel()
        self.node_rowids = np.empty(0, dtype=np.int64)
        self.node_hashes = np.empty(0, dtype=np.uint64)
        self.included = None
        self._included_types = None
        self._reset_excluded(rowids[is_null], hashes[is_null], np.ones(int(is_null.sum()), dtype=bool))
        self._add_rows(rowids[indexable], hashes[indexable], len(rowids), progress=True)

    def _add_rows(self, rowids, hashes, total_rows: int, progress: bool = False) -> None:
        if len(rowids) == 0:
            return
        vectors, included = self._fetch_vectors(rowids, total_rows)
        prepared, indexable = metrics.prepare_rows(self.definition.metric, vectors)
        if not indexable.all():
            skipped = ~indexable
            self._add_excluded(rowids[skipped], hashes[skipped], np.zeros(int(skipped.sum()), dtype=bool))
        prepared = np.ascontiguousarray(prepared[indexable])
        rowids, hashes = rowids[indexable], hashes[indexable]
        if len(prepared) == 0:
            return
        kernel = self.kernel
        if hasattr(kernel, "is_trained") and not kernel.is_trained:
            warnings = kernel.train(prepared)
            for text in warnings or []:
                log.warning("index %s: %s", self.name, text)
        label = f'Building index "{self.name}"'
        reporter = Progress(label) if progress else None
        kwargs = {"progress": reporter} if reporter is not None and self.definition.method == "hnsw" else {}
        ids = kernel.add(prepared, **kwargs)
        if reporter is not None:
            reporter.finish(len(prepared))
        expected = np.arange(len(self.node_rowids), len(self.node_rowids) + len(ids))
        if not np.array_equal(ids, expected):
            raise OperationalError(f"index {self.name}: kernel returned unexpected ids")
        self.node_rowids = np.concatenate([self.node_rowids, rowids])
        self.node_hashes = np.concatenate([self.node_hashes, hashes])
        if included is not None:
            self._append_included(included.filter(pa.array(indexable)))

    def _append_included(self, rows: pa.Table) -> None:
        if self.included is None or self.included.num_rows == 0:
            self.included = rows
            return
        self.included = pa.concat_tables([self.included, rows.cast(self.included.schema)])
        if self.included.column(0).num_chunks > 64:  # many small inserts: keep take() fast
            self.included = self.included.combine_chunks()

    # -- persistence ------------------------------------------------------------------------

    def persist(self) -> None:
        """Write the index to the database file (skipped for read-only databases)."""
        if self.connection.read_only or not self.storable:
            return
        arrays = self.arrays()

        def store() -> None:
            catalog.ensure_catalog(self.connection)  # files from before vsql.index_rows existed
            persistence.write_arrays(self.connection, self.name, arrays)

        self.connection.in_own_transaction(store)
        self.changes_since_persist = 0

    @property
    def storable(self) -> bool:
        """False while there is nothing to store: no kernel yet, or an IVF index not yet trained."""
        return self.kernel is not None and getattr(self.kernel, "is_trained", True)

    def arrays(self) -> dict[str, np.ndarray]:
        """Return everything :meth:`load` needs: kernel arrays, rows and rowid bookkeeping.

        The prepared rows are stored too, as pgvector and DuckDB's vss store vectors in their
        index pages: another client may delete or change rows while vsql is away, and the graph
        still needs the old vectors to navigate until those nodes are retired.
        """
        arrays = {f"kernel.{key}": value for key, value in self.kernel.to_arrays().items()}
        arrays["xb"] = np.ascontiguousarray(self.kernel.rows(np.arange(len(self.node_rowids))))
        # Rows deleted through vsql are gone from the table but still guide the graph: stored
        # apart as well, so that load() can take every other row from the table.
        arrays["xb_deleted"] = np.ascontiguousarray(arrays["xb"][self.node_rowids < 0])
        arrays["node_rowids"] = self.node_rowids
        arrays["node_hashes"] = self.node_hashes
        return arrays

    def _load_stored(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Load the stored index, or leave it to be rebuilt; return the table scan made, if any."""
        self.stored = False
        try:
            if self._loader is not None:
                loaded, generation = self._loader.result()
                self._loader = None
                scan = self._adopt(loaded)
                # A write since the background load began may have changed the table.
                return scan if generation == self.generation else None
            return self.load()
        except (duckdb.Error, Error, ValueError, KeyError, TypeError) as error:
            log.warning("index %s could not be loaded (%s); it will be rebuilt", self.name, error)
            self.kernel = None
            self.dirty = True
            return None

    def loading(self) -> bool:
        """Return True while a large stored index loads in the background, starting that load.

        Until it is ready, queries run as exact scans, so the first query of a process does not
        wait for the table's vectors to be read (0.4 s or more for 100,000 rows of 384 floats).
        """
        if not self.stored:
            return False
        if self._loader is None:
            if self.connection.in_transaction or self._estimated_rows() < BACKGROUND_LOAD_ROWS:
                return False
            cursor = self.connection.duckdb.cursor()
            # A new connection starts in the default database; after USE, names would resolve elsewhere.
            current = "SELECT current_database(), current_schema()"
            if cursor.execute(current).fetchall() != self.connection.send(current).fetchall():
                cursor.close()
                return False
            self._loader = self.connection.indexes.loader_pool().submit(self._load_in_background, cursor)
        return not self._loader.done()

    def _estimated_rows(self) -> int:
        d = self.definition
        rows = self.connection.send(
            "SELECT estimated_size FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [d.schema_name, d.table_name],
        ).fetchall()
        return int(rows[0][0] or 0) if rows else 0

    def _load_in_background(self, cursor: duckdb.DuckDBPyConnection):
        """Read the stored index on a second DuckDB connection and return it with the write count.

        The second connection reads committed data only. That is enough because a load starts
        only outside a transaction, and any later write through vsql raises ``generation``.
        """
        generation = self.generation
        try:
            return self._read_stored(_CursorReader(cursor)), generation
        finally:
            cursor.close()

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Load the stored index and return the table scan it made (None when none is stored)."""
        return self._adopt(self._read_stored(self.connection))

    def _read_stored(self, reader) -> dict | None:
        """Read the stored index through ``reader`` (anything with ``query_arrow``).

        The rows come from the table itself wherever a node's rowid and vector hash still match
        (one scan that sync() also uses), and from the stored copy only when some node's row is
        gone or changed. Loading the numba kernels from their cache overlaps DuckDB's reads,
        which release the GIL.
        """
        method = self.definition.method
        with ThreadPoolExecutor(1, thread_name_prefix="vsql-kernels") as pool:
            compiled = pool.submit(kernels.ensure_compiled, method)
            arrays = persistence.read_arrays(reader, self.name)
            if "node_rowids" not in arrays:
                compiled.result()
                return None
            node_rowids, node_hashes = arrays.pop("node_rowids"), arrays.pop("node_hashes")
            scan = self._scan_table(with_vectors=True, reader=reader)
            source = self._node_sources(node_rowids, node_hashes, scan)
            xb = arrays.pop("xb", None)
            if xb is None:
                xb = self._rows_from_table(node_rowids, source, arrays.pop("xb_deleted", None), scan)
            if xb is None:
                xb = persistence.read_rows(reader, self.name)["xb"]
            compiled.result()
        kernel_arrays = {key[len("kernel.") :]: value for key, value in arrays.items() if key.startswith("kernel.")}
        # xb is a fresh array here, so HNSW may keep it rather than copy it.
        options = {"copy": False} if method == "hnsw" else {}
        included = scan[3][2]
        return {
            "kernel": _kernel_class(method).from_arrays(kernel_arrays, xb, **options),
            "node_rowids": node_rowids,
            "node_hashes": node_hashes,
            # Nodes whose row is gone get NULLs: sync() retires them before any search.
            "included": None if included is None else included.take(pa.array(source, mask=source < 0)),
            "scan": scan[:3],
        }

    def _adopt(self, loaded: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        if loaded is None:
            return None
        self.kernel = loaded["kernel"]
        self.node_rowids, self.node_hashes = loaded["node_rowids"], loaded["node_hashes"]
        self.included = loaded["included"]
        self.dirty = True
        return loaded["scan"]

    @staticmethod
    def _node_sources(node_rowids, node_hashes, scan) -> np.ndarray:
        """Return, for each node, its row in the scan's arrays, or -1 if its row is gone or changed."""
        rowids, hashes, _, (_, order, _) = scan
        source = np.full(len(node_rowids), -1, dtype=np.int64)
        live = np.flatnonzero(node_rowids >= 0)
        if len(rowids) == 0 or len(live) == 0:
            return source
        position = np.minimum(np.searchsorted(rowids, node_rowids[live]), len(rowids) - 1)
        same = (rowids[position] == node_rowids[live]) & (hashes[position] == node_hashes[live])
        source[live[same]] = order[position[same]]
        return source

    def _rows_from_table(self, node_rowids, source, xb_deleted, scan) -> np.ndarray | None:
        """Return the prepared rows of every node from a table scan, or None if one is missing.

        A node's row is missing when another client deleted or changed it after the index was
        stored. The graph still needs its old vector, and only the stored copy contains it. Nodes
        deleted through vsql come with their rows in ``xb_deleted``.
        """
        vectors = scan[3][0]
        live = np.flatnonzero(node_rowids >= 0)
        deleted = np.flatnonzero(node_rowids < 0)
        if len(deleted) and (xb_deleted is None or len(xb_deleted) != len(deleted)):
            return None
        if (source[live] < 0).any():
            return None
        xb = np.empty((len(node_rowids), self.definition.dims), dtype=np.float32)
        if len(deleted):
            xb[deleted] = xb_deleted
        if len(live):
            metrics.prepare_rows_into(self.definition.metric, vectors, source[live], xb, live)
        return xb

    # -- search -----------------------------------------------------------------------------

    def _rowid_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Return live rowids sorted and the node of each, for mapping filters to nodes."""
        if self._lookup is None:
            live = np.flatnonzero(self.node_rowids >= 0)
            order = np.argsort(self.node_rowids[live], kind="stable")
            self._lookup = (self.node_rowids[live][order], live[order])
        return self._lookup

    def allowed_nodes(self, allowed_rowids: np.ndarray) -> np.ndarray:
        sorted_rowids, nodes = self._rowid_lookup()
        if len(sorted_rowids) == 0:
            return np.empty(0, dtype=np.int64)
        position = np.minimum(np.searchsorted(sorted_rowids, allowed_rowids), len(sorted_rowids) - 1)
        hit = sorted_rowids[position] == allowed_rowids
        return nodes[position[hit]]

    def choose_strategy(self, n_matching: int | None) -> str:
        """Name the search strategy for a filter matching ``n_matching`` indexed rows.

        ``exact``: few rows match, so scanning them beats any walk. ``two-hop``: an HNSW walk that
        looks through non-matching neighbours to theirs (ACORN-style), because at low selectivity
        most direct neighbours fail the filter. ``post-filter``: most rows match, so an ordinary
        walk that skips non-matching rows and widens until k match is cheapest. IVF indexes
        probe further lists until k rows match (``probe``).
        """
        if n_matching is None:
            return "index"
        if n_matching <= EXACT_FILTER_ROWS:
            return "exact"
        if self.definition.method != "hnsw":
            return "probe"
        share = n_matching / max(self.n_live, 1)
        return "two-hop" if share < TWO_HOP_BELOW else "post-filter"

    def search(
        self, q: np.ndarray | None, k: int, allowed_rowids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return rowids, exact distances and NULL flags of the ``k`` rows nearest ``q``, best first.

        Every excluded row (NULL vector, or zero vector under cosine) that passes the filter is
        appended with distance NULL or NaN, so DuckDB's exact ORDER BY places it where exact
        search would: NaN sorts after every number and NULL after NaN. A NULL query, or a zero
        query under cosine, has no nearest rows: exact search gives every row the same NULL or
        NaN distance, so any ``k`` matching rows are a correct answer.
        """
        metric = metrics.METRIC_CODES[self.definition.metric]
        query = None
        if q is not None:
            prepared, indexable = metrics.prepare_rows(self.definition.metric, q.astype(np.float32))
            query = prepared[0] if indexable[0] else None
        if query is None or self.kernel is None:
            nodes = self._any_nodes(k, allowed_rowids)
            distances = np.full(len(nodes), np.nan)
            null = np.full(len(nodes), q is None)
        else:
            nodes, distances = self._search_nodes(metric, query, k, allowed_rowids)
            null = np.zeros(len(nodes), dtype=bool)
        extra_rowids, extra_null = self._excluded_rows(k - len(nodes), allowed_rowids)
        return (
            np.concatenate([self.node_rowids[nodes], extra_rowids]),
            np.concatenate([distances, np.full(len(extra_rowids), np.nan)]),
            np.concatenate([null, extra_null | (q is None)]),
        )

    def can_cover(self, columns: list[str]) -> bool:
        """True when an index-only scan may return ``columns``: INCLUDE columns of a type whose
        Python values from Arrow are those DuckDB's own fetch gives."""
        include = [c.lower() for c in self.definition.include]
        if any(name.lower() not in include for name in columns):
            return False
        types = self._column_types()
        return all(str(types[include.index(name.lower())]) in COVERING_TYPES for name in columns)

    def covering_ready(self) -> bool:
        """Return False while rows without a vector exist, because exact search may return them and
        the index keeps no copy of their columns: DuckDB must then run the query."""
        return self.included is not None and self.kernel is not None and len(self.excluded_rowids) == 0

    def covering_search(
        self, q: np.ndarray | None, k: int, allowed_rowids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the nodes and exact distances of the ``k`` rows nearest ``q`` for an index-only
        scan, or None when the query has no direction (NULL, or zero under cosine)."""
        if q is None or not self.covering_ready():
            return None
        prepared, indexable = metrics.prepare_rows(self.definition.metric, q.astype(np.float32))
        if not indexable[0]:
            return None
        return self._search_nodes(metrics.METRIC_CODES[self.definition.metric], prepared[0], k, allowed_rowids)

    def covering_columns(self, columns: list[str]) -> tuple[list, list[np.ndarray]]:
        """Return the DuckDB types of ``columns`` (then DOUBLE) and their values by node, as numpy.

        numpy arrays gather a few nodes much faster than Arrow's take(); they are made once per
        version of ``included``.
        """
        if self._included_numpy is None or self._included_numpy[0] is not self.included:
            self._included_numpy = (self.included, {})
        cache = self._included_numpy[1]
        positions = [self._include_position(name) for name in columns]
        for position in positions:
            if position not in cache:
                cache[position] = self.included.column(position).to_numpy(zero_copy_only=False)
        types = self._column_types()
        return [types[p] for p in positions] + [types[-1]], [cache[p] for p in positions]

    def _include_position(self, name: str) -> int:
        return [c.lower() for c in self.definition.include].index(name.lower())

    def _column_types(self) -> list:
        """DuckDB types of the INCLUDE columns, then DOUBLE for the distance."""
        if self._included_types is None:
            d = self.definition
            columns = ", ".join([*self._included_sql(), "0::DOUBLE"])
            sql = f"SELECT {columns} FROM {d.qualified_table} LIMIT 0"
            self._included_types = self.connection.duckdb.sql(sql).types
        return self._included_types

    def _any_nodes(self, k: int, allowed_rowids: np.ndarray | None) -> np.ndarray:
        nodes = (
            self.allowed_nodes(allowed_rowids) if allowed_rowids is not None else np.flatnonzero(self.node_rowids >= 0)
        )
        return nodes[:k]

    def _search_nodes(self, metric: int, query: np.ndarray, k: int, allowed_rowids):
        kernel = self.kernel
        setting_name, width = self.search_setting()
        options = {"ef_search": width} if self.definition.method == "hnsw" else {"probes": width}
        if self.definition.method == "ivfpq":
            options["rerank"] = int(self.connection.settings.get("ivfpq.rerank"))
        if allowed_rowids is None:
            nodes, proxies = kernel.search(query, k, **options)
        else:
            allowed = self.allowed_nodes(allowed_rowids)
            if self.choose_strategy(len(allowed)) == "exact":
                # HNSW and IVF-PQ keep their rows in id order; IVF-Flat keeps them by list.
                xb = getattr(kernel, "xb", None)
                if xb is not None:
                    order, proxies = metrics.brute_force(metric, xb, allowed, query, k)
                else:
                    rows = np.ascontiguousarray(kernel.rows(allowed))
                    order, proxies = metrics.brute_force(metric, rows, np.arange(len(allowed)), query, k)
                nodes = allowed[order]
            else:
                mask = np.zeros(len(self.node_rowids), dtype=bool)
                mask[allowed] = True
                nodes, proxies = kernel.search(query, k, allowed=mask, **options)
        nodes = np.asarray(nodes, dtype=np.int64)
        # Exact distances of the results, whatever proxies the kernel ranked them by.
        distances = metrics.sql_distances(metric, np.ascontiguousarray(kernel.rows(nodes)), query)
        order = np.argsort(distances, kind="stable")
        return nodes[order], distances[order]

    def _excluded_rows(self, missing: int, allowed_rowids) -> tuple[np.ndarray, np.ndarray]:
        """Return the excluded rows a result must carry, and which of them have a NULL vector."""
        rowids, is_null = self.excluded_rowids, self.excluded_is_null
        if allowed_rowids is not None and len(rowids):
            keep = np.isin(rowids, allowed_rowids)
            rowids, is_null = rowids[keep], is_null[keep]
        # NaN rows (zero vectors under cosine) sort first under DESC, so they always come back;
        # NULL rows sort last either way and are needed only to fill a short result.
        take = ~is_null if missing <= 0 else np.ones(len(rowids), dtype=bool)
        return rowids[take], is_null[take]


class _CursorReader:
    """Runs the reads of a background index load on its own DuckDB connection."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor

    def query_arrow(self, sql: str, parameters=None) -> pa.Table:
        log.debug("duckdb (index load): %s", sql)
        return self.cursor.sql(sql, params=parameters).to_arrow_table()


class IndexManager:
    """The vector indexes of one connection, by name, and the UDF DuckDB calls to search them."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.indexes: dict[str, ManagedIndex] = {}
        self.version = 0  # bumped when indexes are created or dropped, for the plan cache
        self._loader_pool: ThreadPoolExecutor | None = None
        self._register_udf()

    def loader_pool(self) -> ThreadPoolExecutor:
        if self._loader_pool is None:
            self._loader_pool = ThreadPoolExecutor(1, thread_name_prefix="vsql-load")
        return self._loader_pool

    # -- catalog ----------------------------------------------------------------------------

    def load(self) -> None:
        """Read the index definitions; each index loads its arrays when first used."""
        for definition in catalog.read_definitions(self.connection):
            index = ManagedIndex(self.connection, definition)
            index.stored = True
            self.indexes[definition.name] = index
        self.version += 1

    def find(self, schema_name: str, table_name: str, column_name: str) -> list[ManagedIndex]:
        return [
            index
            for index in self.indexes.values()
            if index.definition.schema_name.lower() == schema_name.lower()
            and index.definition.table_name.lower() == table_name.lower()
            and index.definition.column_name.lower() == column_name.lower()
        ]

    def for_table(self, table_name: str) -> list[ManagedIndex]:
        return [i for i in self.indexes.values() if i.definition.table_name.lower() == table_name.lower()]

    def get(self, name: str) -> ManagedIndex | None:
        return self.indexes.get(name.lower())

    def create(self, definition: IndexDefinition) -> ManagedIndex:
        index = ManagedIndex(self.connection, definition)
        index.sync()  # builds from the whole table

        def store() -> None:
            catalog.ensure_catalog(self.connection)
            catalog.write_definition(self.connection, definition)
            if index.storable:
                persistence.write_arrays(self.connection, definition.name, index.arrays())

        if self.connection.read_only:
            log.warning("index %s is kept in memory only: the database is read-only", definition.name)
        else:
            self.connection.in_own_transaction(store)
        index.changes_since_persist = 0
        self.indexes[definition.name] = index
        self.version += 1
        return index

    def save_definition(self, index: ManagedIndex) -> None:
        if not self.connection.read_only:
            self.connection.in_own_transaction(lambda: catalog.write_definition(self.connection, index.definition))
        self.version += 1

    def revalidate(self) -> None:
        """Drop indexes whose column no longer exists or is no longer a fixed-size array."""
        from vsql.commands import VECTOR_COLUMN_TYPE

        for index in list(self.indexes.values()):
            d = index.definition
            rows = self.connection.send(
                "SELECT data_type FROM duckdb_columns() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ? AND column_name = ?",
                [d.schema_name, d.table_name, d.column_name],
            ).fetchall()
            match = VECTOR_COLUMN_TYPE.match(rows[0][0]) if rows else None
            present = {
                row[0].lower()
                for row in self.connection.send(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                    "AND schema_name = ? AND table_name = ?",
                    [d.schema_name, d.table_name],
                ).fetchall()
            }
            if any(name.lower() not in present for name in d.include):
                log.warning("index %s dropped: an INCLUDE column of %s is gone", d.name, d.table_name)
                self.drop(d.name)
            elif match is None or int(match.group(2)) != d.dims:
                log.warning(
                    "index %s dropped: column %s.%s is gone or changed type", d.name, d.table_name, d.column_name
                )
                self.drop(d.name)
            else:
                index.mark_dirty()
                index._included_types = None

    def refresh_listing(self) -> None:
        """Fill the temporary table ``vsql_indexes`` with every index and its current size."""
        names, tables, columns, methods, metrics_, options, rows, memory = [], [], [], [], [], [], [], []
        for index in self.indexes.values():
            index.sync()
            d = index.definition
            names.append(d.name)
            tables.append(d.table_name)
            columns.append(d.column_name)
            methods.append(d.method)
            metrics_.append(d.metric)
            settings = [f"{k}={v}" for k, v in sorted(d.options.items())]
            if d.include:
                settings.append(f"include=({', '.join(d.include)})")
            options.append(", ".join(settings))
            rows.append(index.n_live)
            memory.append(index.memory_bytes())
        listing = pa.table(
            {
                "index_name": pa.array(names, pa.string()),
                "table_name": pa.array(tables, pa.string()),
                "column_name": pa.array(columns, pa.string()),
                "method": pa.array(methods, pa.string()),
                "metric": pa.array(metrics_, pa.string()),
                "options": pa.array(options, pa.string()),
                "rows": pa.array(rows, pa.int64()),
                "memory_bytes": pa.array(memory, pa.int64()),
            }
        )
        self.connection.duckdb.register("__vsql_listing", listing)
        try:
            self.connection.send("CREATE OR REPLACE TEMP TABLE vsql_indexes AS SELECT * FROM __vsql_listing")
        finally:
            self.connection.duckdb.unregister("__vsql_listing")

    def describe_filter(self, match, parameters) -> str:
        """Return the EXPLAIN line about a kNN query's WHERE clause and the strategy it gets."""
        from sqlglot import exp

        from planner.dialect import to_duckdb

        where = match.where
        if where is None:
            return ""
        if where.find(exp.Placeholder):
            return (
                "Filter: matching rows are counted when the query runs; at most "
                f"{EXACT_FILTER_ROWS:,} get an exact scan, more a filtered index search"
            )
        index = match.index
        index.sync()
        table_sql = to_duckdb(match.table)
        try:
            matching = self.connection.send(
                f"SELECT count(*) FROM {table_sql} WHERE {to_duckdb(where)}"
            ).fetchall()[0][0]
        except ProgrammingError:
            return "Filter: depends on the outer query, so matching rows are counted for each outer row"
        total = len(index.node_rowids) and index.n_live + len(index.excluded_rowids)
        share = 100.0 * matching / total if total else 0.0
        strategy = index.choose_strategy(matching)
        why = {
            "exact": f"exact scan of the matching rows (at most {EXACT_FILTER_ROWS:,} match)",
            "two-hop": f"filtered HNSW walk through the neighbours of non-matching rows "
            f"(under {TWO_HOP_BELOW:.0%} match)",
            "post-filter": f"HNSW walk that skips non-matching rows until k match (at least {TWO_HOP_BELOW:.0%} match)",
            "probe": "IVF probes more lists until k matching rows are found",
        }[strategy]
        return f"Filter: {matching:,} of {total:,} rows match ({share:.1f}%): {why}"

    def drop(self, name: str) -> None:
        index = self.indexes.pop(name.lower())
        self.connection.in_own_transaction(lambda: catalog.delete_definition(self.connection, index.name))
        self.version += 1

    # -- statement hooks --------------------------------------------------------------------

    def after_statement(self, written_tables: set[str] | None | bool) -> None:
        """Mark indexes dirty after a statement that may have written their tables.

        ``written_tables`` is a set of lower-case table names, an empty set for read-only
        statements, or None when the statement could not be analysed (every index is marked).
        """
        if written_tables is None:
            for index in self.indexes.values():
                index.mark_dirty()
            return
        for table in written_tables:
            for index in self.for_table(table):
                index.mark_dirty()

    def after_transaction(self, rolled_back: bool) -> None:
        for index in self.indexes.values():
            index.mark_dirty()

    def drop_for_table(self, table_name: str) -> None:
        for index in self.for_table(table_name):
            self.indexes.pop(index.name, None)
            self.version += 1

    def close(self) -> None:
        if self._loader_pool is not None:
            self._loader_pool.shutdown(wait=True)  # background loads read through this database
        if self.connection.read_only:
            return
        for index in self.indexes.values():
            if index.changes_since_persist and index.storable:
                try:
                    index.persist()
                except Exception as error:  # noqa: BLE001 - closing must not fail; reopen syncs
                    log.warning("index %s was not saved on close (%s); it will sync on open", index.name, error)

    # -- the search function DuckDB calls ---------------------------------------------------

    def _register_udf(self) -> None:
        self.connection.duckdb.create_function(
            UDF_NAME,
            self._udf,
            [
                duckdb.sqltype("VARCHAR"),
                duckdb.sqltype("DOUBLE[]"),
                duckdb.sqltype("BIGINT"),
                duckdb.sqltype("BIGINT[]"),
                duckdb.sqltype("BOOLEAN"),
            ],
            duckdb.sqltype("STRUCT(vsql_rowid BIGINT, vsql_distance DOUBLE)[]"),
            type="arrow",
            null_handling="special",
            side_effects=True,
        )

    def _udf(self, names, queries, ks, allowed_lists, filtered):
        results = []
        names, queries, ks = names.to_pylist(), queries, ks.to_pylist()
        filtered = filtered.to_pylist()
        for row, name in enumerate(names):
            index = self.indexes[name]
            query = queries[row]
            q = (
                None
                if not query.is_valid
                else np.asarray(query.values.to_numpy(zero_copy_only=False), dtype=np.float32)
            )
            allowed = None
            if filtered[row]:
                allowed_value = allowed_lists[row]
                allowed = (
                    np.sort(np.asarray(allowed_value.values.to_numpy(zero_copy_only=False), dtype=np.int64))
                    if allowed_value.is_valid
                    else np.empty(0, np.int64)
                )
            if q is not None and len(q) != index.definition.dims:
                raise ValueError(f"expected {index.definition.dims} dimensions, not {len(q)}")
            results.append(index.search(q, int(ks[row]), allowed))
        return _to_arrow(results)


def _to_arrow(results: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pa.Array:
    """Pack per-row search results into DuckDB's LIST(STRUCT(vsql_rowid, vsql_distance))."""
    offsets = np.zeros(len(results) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(rowids) for rowids, _, _ in results])
    rowids = np.concatenate([r[0] for r in results]) if results else np.empty(0, np.int64)
    distances = np.concatenate([r[1] for r in results]) if results else np.empty(0)
    null = np.concatenate([r[2] for r in results]) if results else np.empty(0, bool)
    struct = pa.StructArray.from_arrays(
        [pa.array(rowids, pa.int64()), pa.array(distances, pa.float64(), mask=null)],
        names=["vsql_rowid", "vsql_distance"],
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct)
