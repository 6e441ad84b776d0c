"""k-means: degenerate inputs, empty clusters, determinism and agreement with a numpy Lloyd."""

import numpy as np
import pytest

from udfs import kmeans as kmeans_module
from udfs.kmeans import assign, kmeans
from vsql.errors import NotSupportedError, ProgrammingError

METRICS = ["l2", "ip", "cosine"]


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _blobs(n_per_blob, centers, scale, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centers)), n_per_blob)
    x = centers[labels] + scale * rng.standard_normal((len(labels), centers.shape[1]))
    return x.astype(np.float32), labels


@pytest.mark.parametrize("metric", METRICS)
def test_duplicates_only(metric):
    row = _unit(np.array([[3.0, 4.0, 0.0, 1.0]], dtype=np.float32))
    x = np.repeat(row, 100, axis=0)
    centroids, assignment = kmeans(x, 5, metric=metric, seed=3)
    assert centroids.shape == (5, 4)
    assert np.isfinite(centroids).all()
    np.testing.assert_allclose(centroids, np.repeat(row, 5, axis=0), atol=1e-6)
    assert (assignment == 0).all()


@pytest.mark.parametrize("metric", METRICS)
def test_more_clusters_than_distinct_rows(metric):
    distinct = _unit(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    x = np.repeat(distinct, 10, axis=0)
    centroids, assignment = kmeans(x, 8, metric=metric, seed=1)
    assert np.isfinite(centroids).all()
    # Every centroid is one of the distinct rows, and every row sits on its own centroid.
    gaps = np.abs(centroids[:, None, :] - distinct[None, :, :]).max(axis=2)
    assert (gaps.min(axis=1) < 1e-6).all()
    np.testing.assert_allclose(centroids[assignment], x, atol=1e-6)


def test_k_equals_one():
    x, _ = _blobs(50, np.array([[0.0, 0.0], [4.0, 1.0]]), 0.5, seed=2)
    centroids, assignment = kmeans(x, 1, metric="l2")
    np.testing.assert_allclose(centroids[0], x.mean(axis=0), rtol=1e-5, atol=1e-5)
    assert (assignment == 0).all()

    xu = _unit(x + 10.0)
    centroids, _ = kmeans(xu, 1, metric="cosine")
    expected = xu.mean(axis=0) / np.linalg.norm(xu.mean(axis=0))
    np.testing.assert_allclose(centroids[0], expected, rtol=1e-5, atol=1e-5)


def test_empty_cluster_reseeded_from_farthest_row():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [9.0, 9.0], [2.0, 0.0]], dtype=np.float32)
    centroids = np.array([[0.0, 0.0], [50.0, 50.0]], dtype=np.float32)
    counts = np.array([4, 0])
    proxies = ((x - centroids[0]) ** 2).sum(axis=1).astype(np.float32)
    n_empty = kmeans_module._reseed_empty(x, centroids, counts, proxies, spherical=False)
    assert n_empty == 1
    np.testing.assert_array_equal(centroids[1], [9.0, 9.0])
    np.testing.assert_array_equal(centroids[0], [0.0, 0.0])


def test_no_empty_cluster_after_training():
    # Two tight far-apart blobs plus one outlier: any cluster left empty is moved onto a row.
    x, _ = _blobs(200, np.array([[0.0, 0.0], [100.0, 100.0]]), 0.1, seed=4)
    x = np.vstack([x, [[50.0, -50.0]]]).astype(np.float32)
    centroids, assignment = kmeans(x, 3, metric="l2", seed=0)
    assert np.isfinite(centroids).all()
    assert np.bincount(assignment, minlength=3).min() >= 1


@pytest.mark.parametrize("metric", METRICS)
def test_deterministic_for_a_seed(metric):
    x, _ = _blobs(300, np.random.default_rng(0).standard_normal((6, 16)) * 3, 1.0, seed=5)
    first = kmeans(x, 6, metric=metric, seed=7, sample_size=1000)
    second = kmeans(x, 6, metric=metric, seed=7, sample_size=1000)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[1].shape == (1800,)


def _numpy_lloyd(x, initial, n_iter=50):
    centroids = initial.astype(np.float64)
    for _ in range(n_iter):
        distances = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        labels = distances.argmin(axis=1)
        centroids = np.stack([x[labels == c].mean(axis=0) for c in range(len(centroids))])
    return centroids, labels


def test_matches_numpy_lloyd_on_separable_data():
    centers = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], dtype=np.float64)
    x, true_labels = _blobs(250, centers, 0.7, seed=6)
    # The reference starts from one row of each blob, so it converges to the true partition.
    initial = x[[0, 250, 500, 750]]
    expected_centroids, expected_labels = _numpy_lloyd(x.astype(np.float64), initial)
    assert (expected_labels == true_labels).all()

    centroids, assignment = kmeans(x, 4, metric="l2", seed=0)
    # Match our cluster numbers to the reference's through the first row of each blob.
    mapping = {assignment[i]: expected_labels[i] for i in (0, 250, 500, 750)}
    assert len(mapping) == 4
    relabelled = np.array([mapping[a] for a in assignment])
    np.testing.assert_array_equal(relabelled, expected_labels)
    for ours, theirs in mapping.items():
        np.testing.assert_allclose(centroids[ours], expected_centroids[theirs], atol=1e-4)


def test_invalid_arguments():
    x = np.ones((4, 2), dtype=np.float32)
    with pytest.raises(ProgrammingError, match="number of clusters must be at least 1, not 0"):
        kmeans(x, 0)
    with pytest.raises(NotSupportedError, match="does not support metric l1"):
        kmeans(x, 2, metric="l1")


@pytest.mark.parametrize("k", [1, 5, 16, 17, 33, 64, 257])
@pytest.mark.parametrize("dim", [4, 64])
def test_assign_picks_first_of_tied_centroids(k, dim):
    # Few distinct centroids repeated, so most rows tie between several of them: as np.argmin,
    # assignment must pick the first (the running minima of first_argmin run in 16 lanes).
    rng = np.random.default_rng(k + dim)
    distinct = rng.integers(-2, 3, size=(4, dim)).astype(np.float32)
    centroids = distinct[rng.integers(0, 4, size=k)]
    x = rng.integers(-2, 3, size=(300, dim)).astype(np.float32)
    labels, proxies = assign(x, centroids, spherical=False)
    scores = (centroids.astype(np.float64) ** 2).sum(axis=1)[None, :] - 2.0 * x.astype(np.float64) @ centroids.T
    assert labels.tolist() == np.argmin(scores, axis=1).tolist()
    np.testing.assert_allclose(proxies, scores.min(axis=1) + (x.astype(np.float64) ** 2).sum(axis=1), atol=1e-3)


def test_vsql_kmeans_is_the_index_kmeans():
    import vsql

    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(loc, 0.1, size=(50, 3)) for loc in (-5.0, 0.0, 5.0)]).astype(np.float32)
    centroids, assignment = vsql.kmeans(x, 3, seed=2)
    want_centroids, want_assignment = kmeans(x, 3, seed=2)
    np.testing.assert_array_equal(centroids, want_centroids)
    np.testing.assert_array_equal(assignment, want_assignment)
    # Three well separated groups: each group gets one centroid of its own.
    assert sorted(set(assignment[:50])) != sorted(set(assignment[50:100]))
    assert len(set(assignment[:50].tolist())) == len(set(assignment[100:].tolist())) == 1
