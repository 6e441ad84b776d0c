"""HnswIndex: recall against exact numpy search, filters, tombstones, copies and persistence."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import udfs.hnsw
from udfs.hnsw import HnswIndex
from udfs.metrics import prepare_rows
from vsql.errors import DataError, ProgrammingError

N, DIM, K = 3000, 32, 10
N_COPIES = 50
METRICS = ("l2", "ip", "cosine", "l1")


def clustered(n: int, n_queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters; the last ``N_COPIES`` base rows are exact copies of row 11."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, DIM)) * 4
    xb = centers[rng.integers(0, 40, n)] + rng.standard_normal((n, DIM))
    xq = centers[rng.integers(0, 40, n_queries)] + rng.standard_normal((n_queries, DIM))
    xb[-N_COPIES:] = xb[11]
    return xb.astype(np.float32), xq.astype(np.float32)


def exact_proxies(metric: str, xb: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Proxies of ``q`` to every row of ``xb``, computed with numpy in float64."""
    xb64, q64 = xb.astype(np.float64), q.astype(np.float64)
    if metric == "l2":
        return ((xb64 - q64) ** 2).sum(axis=1)
    if metric == "l1":
        return np.abs(xb64 - q64).sum(axis=1)
    if metric == "ip":
        return -(xb64 @ q64)
    return 1.0 - xb64 @ q64


def tie_aware_hits(metric, xb, q, ids, k, candidates=None) -> int:
    """Count returned ids whose exact proxy is within 1e-5 of the k-th best among ``candidates``."""
    proxies = exact_proxies(metric, xb, q)
    pool = proxies if candidates is None else proxies[candidates]
    kth = np.sort(pool)[min(k, pool.shape[0]) - 1]
    return int((proxies[ids] <= kth + 1e-5).sum())


@pytest.fixture(scope="module")
def data():
    return clustered(N, 40)


@pytest.fixture(scope="module")
def indexes(data):
    xb, _ = data
    built = {}
    for metric in METRICS:
        rows, indexable = prepare_rows(metric, xb)
        assert indexable.all()
        index = HnswIndex(DIM, metric, m=16, ef_construction=64, seed=3)
        index.add(rows)
        built[metric] = (index, rows)
    return built


@pytest.mark.parametrize("metric", METRICS)
def test_recall_at_10(metric, data, indexes):
    _, xq = data
    index, rows = indexes[metric]
    queries, _ = prepare_rows(metric, xq)
    ids, proxies = index.search_batch(queries, K, ef_search=64)
    hits = sum(
        tie_aware_hits(metric, rows, q, found, K) for q, found in zip(queries, ids, strict=True)
    )
    assert ids.shape == (len(queries), K)
    assert hits / ids.size >= 0.95
    expected = np.array(
        [exact_proxies(metric, rows, q)[found] for q, found in zip(queries, ids, strict=True)]
    )
    np.testing.assert_allclose(proxies, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", METRICS)
def test_single_search_matches_batch(metric, data, indexes):
    _, xq = data
    index, _ = indexes[metric]
    queries, _ = prepare_rows(metric, xq[:5])
    batch_ids, _ = index.search_batch(queries, K, ef_search=40)
    for q, expected in zip(queries, batch_ids, strict=True):
        ids, proxies = index.search(q, K, ef_search=40)
        np.testing.assert_array_equal(ids, expected)
        assert np.all(np.diff(proxies) >= 0)


def test_cosine_caller_drops_zero_rows():
    xb, _ = clustered(200, 1)
    xb[5] = 0.0
    rows, indexable = prepare_rows("cosine", xb)
    assert not indexable[5]
    assert indexable.sum() == 199
    index = HnswIndex(DIM, "cosine")
    index.add(rows[indexable])
    np.testing.assert_allclose(np.linalg.norm(index._xb[: len(index)], axis=1), 1.0, rtol=1e-5)
    ids, _ = index.search(rows[6], 1)
    assert ids[0] == 5  # row 6 of the table is id 5 once row 5 is left out


def test_exact_copies_all_reachable(indexes):
    index, rows = indexes["l2"]
    copies = np.r_[11, np.arange(N - N_COPIES, N)]
    ids, proxies = index.search(rows[11], len(copies), ef_search=len(copies))
    assert set(ids.tolist()) == set(copies.tolist())
    assert np.all(proxies == 0.0)


def test_exact_copies_under_filter(indexes, monkeypatch):
    monkeypatch.setattr(udfs.hnsw, "EXACT_SCAN_ROWS", 0)
    index, rows = indexes["l2"]
    allowed = np.zeros(len(index), dtype=bool)
    allowed[N - 7 :] = True
    allowed[:1500] = True
    ids, proxies = index.search(rows[11], 9, ef_search=40, allowed=allowed)
    assert set(ids[:8].tolist()) == {11} | set(range(N - 7, N))
    assert np.all(proxies[:8] == 0.0)
    assert proxies[8] > 0.0


def test_tombstones_never_returned(data):
    xb, xq = data
    index = HnswIndex(DIM, "l2", seed=1)
    index.add(xb)
    q = xq[0]
    nearest = np.argsort(exact_proxies("l2", xb, q), kind="stable")[:40]
    index.remove(nearest)
    assert index.n_live == N - 40
    ids, _ = index.search(q, K, ef_search=40)
    assert ids.shape == (K,)
    assert not np.isin(ids, nearest).any()
    live = np.setdiff1d(np.arange(N), nearest)
    assert tie_aware_hits("l2", xb, q, ids, K, candidates=live) >= 9


def test_remove_is_idempotent_and_checked(data):
    xb, _ = data
    index = HnswIndex(DIM, "l2")
    index.add(xb[:100])
    index.remove([3, 3, 4])
    index.remove([4])
    assert index.n_live == 98
    with pytest.raises(ProgrammingError, match="id 100 is out of range for an index of 100 ids"):
        index.remove([100])


@pytest.mark.parametrize("selectivity", [0.01, 0.10, 0.50])
@pytest.mark.parametrize("path", ["graph", "exact scan"])
def test_allowed_mask(selectivity, path, data, indexes, monkeypatch):
    if path == "graph":
        monkeypatch.setattr(udfs.hnsw, "EXACT_SCAN_ROWS", 0)
    _, xq = data
    index, rows = indexes["l2"]
    rng = np.random.default_rng(int(selectivity * 100))
    allowed = rng.random(len(index)) < selectivity
    allowed_ids = np.flatnonzero(allowed)
    hits = 0
    for q in xq[:20]:
        ids, proxies = index.search(q, K, ef_search=40, allowed=allowed)
        assert ids.shape == (K,)
        assert allowed[ids].all()
        assert np.all(np.diff(proxies) >= 0)
        hits += tie_aware_hits("l2", rows, q, ids, K, candidates=allowed_ids)
    assert hits / (20 * K) >= 0.95


def test_allowed_with_tombstones(data):
    xb, xq = data
    index = HnswIndex(DIM, "l2")
    index.add(xb)
    allowed = np.zeros(N, dtype=bool)
    allowed[:12] = True
    index.remove(np.arange(6))
    ids, _ = index.search(xq[0], K, allowed=allowed)
    assert sorted(ids.tolist()) == list(range(6, 12))


def test_k_above_live_count_returns_all_live(data):
    xb, xq = data
    index = HnswIndex(DIM, "l2")
    index.add(xb[:30])
    index.remove([0, 1, 2])
    ids, proxies = index.search(xq[0], 100, ef_search=10)
    assert sorted(ids.tolist()) == list(range(3, 30))
    assert proxies.shape == (27,)
    batch_ids, _ = index.search_batch(xq[:3], 100)
    assert batch_ids.shape == (3, 27)


def test_empty_index_returns_nothing():
    index = HnswIndex(DIM, "l2")
    ids, proxies = index.search(np.zeros(DIM, dtype=np.float32), 5)
    assert ids.shape == (0,)
    assert proxies.shape == (0,)


def test_build_is_deterministic(data):
    xb, _ = data
    threads = numba.get_num_threads()
    built = []
    for n_threads in (1, threads, threads):
        numba.set_num_threads(n_threads)
        index = HnswIndex(DIM, "l2", seed=5)
        index.add(xb)
        built.append(index.to_arrays())
    numba.set_num_threads(threads)
    for arrays in built[1:]:
        assert arrays.keys() == built[0].keys()
        for name in arrays:
            np.testing.assert_array_equal(arrays[name], built[0][name], err_msg=name)
    other_seed = HnswIndex(DIM, "l2", seed=6)
    other_seed.add(xb)
    assert not np.array_equal(other_seed.to_arrays()["levels"], built[0]["levels"])


def test_round_trip_gives_same_results(data, indexes):
    xb, xq = data
    index, rows = indexes["cosine"]
    queries, _ = prepare_rows("cosine", xq)
    index.remove([5, 6, 7])
    try:
        reopened = HnswIndex.from_arrays(index.to_arrays(), rows)
        assert len(reopened) == len(index)
        assert reopened.n_live == index.n_live
        expected = index.search_batch(queries, K, ef_search=40)
        found = reopened.search_batch(queries, K, ef_search=40)
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])
        copies = reopened.search(rows[11], N_COPIES + 1, ef_search=N_COPIES + 1)[0]
        assert len(set(copies.tolist())) == N_COPIES + 1
    finally:
        index._deleted[[5, 6, 7]] = False
        index._n_deleted -= 3


def test_from_arrays_checks_rows(indexes):
    index, rows = indexes["l2"]
    with pytest.raises(DataError, match=f"expected {N} rows for the HNSW index, not 10"):
        HnswIndex.from_arrays(index.to_arrays(), rows[:10])


def test_incremental_add_keeps_recall(data):
    xb, xq = data
    index = HnswIndex(DIM, "l2", seed=2)
    first = index.add(xb[:1000])
    second = index.add(xb[1000:])
    assert first.tolist() == list(range(1000))
    assert second.tolist() == list(range(1000, N))
    ids, _ = index.search_batch(xq, K, ef_search=64)
    hits = sum(tie_aware_hits("l2", xb, q, found, K) for q, found in zip(xq, ids, strict=True))
    assert hits / ids.size >= 0.95


def test_progress_reports_done_and_total(data):
    xb, _ = data
    calls = []
    index = HnswIndex(DIM, "l2")
    index.add(xb[:500], progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (500, 500)
    assert all(total == 500 for _, total in calls)


def test_memory_estimate_close_to_actual(data):
    xb, _ = data
    index = HnswIndex(DIM, "l2")
    index.add(xb)
    estimate = HnswIndex.estimate_memory(N, DIM, 16)
    assert 0.7 * index.memory_bytes() <= estimate <= 1.3 * index.memory_bytes()


def test_input_errors():
    index = HnswIndex(DIM, "l2")
    with pytest.raises(DataError, match=f"expected {DIM} dimensions, not 3"):
        index.add(np.zeros((2, 3), dtype=np.float32))
    index.add(np.ones((4, DIM), dtype=np.float32) * np.arange(4)[:, None])
    with pytest.raises(DataError, match=f"expected {DIM} dimensions, not 5"):
        index.search(np.zeros(5, dtype=np.float32), 1)
    with pytest.raises(ProgrammingError, match="allowed must be a bool array of 4 elements"):
        index.search(np.zeros(DIM, dtype=np.float32), 1, allowed=np.ones(3, dtype=bool))
    with pytest.raises(ProgrammingError, match='unknown metric "hamming"'):
        HnswIndex(DIM, "hamming")
    with pytest.raises(ProgrammingError, match='value 1 out of bounds for option "m"'):
        HnswIndex(DIM, "l2", m=1)
