"""The k-means engine: exactness of the accelerated Lloyd, seeding, empty
clusters, determinism, the estimator contract."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kmq import KMeans, kmeans_plusplus
from kmq._engine import _kmeans as kernels, _parallel, kmeans as _kmeans
from kmq._errors import UsageError


def reference_lloyd(X, w, centers, max_iter, tol_abs):
    """Plain weighted Lloyd in numpy, the textbook way (no bounds, no
    relocation): the accelerated engine must give exactly these results."""
    centers = centers.astype(np.float64).copy()
    labels = None
    n_iter = 0
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    labels = d2.argmin(axis=1)  # first minimum: ties to the lowest index
    while n_iter < max_iter:
        new = np.array([np.average(X[labels == j], axis=0, weights=w[labels == j]) for j in range(len(centers))])
        shift = ((new - centers) ** 2).sum()
        centers = new
        n_iter += 1
        d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
        new_labels = d2.argmin(axis=1)
        changed = (new_labels != labels).sum()
        labels = new_labels
        if changed == 0 or shift <= tol_abs:
            break
    return centers, labels, n_iter


@pytest.fixture(scope="module")
def colors_and_counts(request):
    """Distinct colours of a real photograph crop with their pixel counts."""
    from PIL import Image

    from kmq import sample_image_path

    with Image.open(sample_image_path()) as image:
        pixels = np.asarray(image.convert("RGB"))[150:278, 200:328].reshape(-1, 3)
    colors, counts = np.unique(pixels, axis=0, return_counts=True)
    return colors, counts


@pytest.mark.parametrize("k", [1, 2, 7, 33])
def test_accelerated_lloyd_equals_textbook_lloyd(colors_and_counts, k):
    colors, counts = colors_and_counts
    X = colors.astype(np.float64)
    w = counts.astype(np.float64)
    init = X[np.linspace(0, len(X) - 1, k).astype(int)]
    ref_centers, ref_labels, ref_iter = reference_lloyd(X, w, init, 100, 0.0)
    km = KMeans(k, init=init, max_iter=100, tol=0.0).fit(X, sample_weight=w)
    np.testing.assert_array_equal(km.labels_, ref_labels)
    np.testing.assert_allclose(km.cluster_centers_, ref_centers, rtol=0, atol=1e-9)
    assert km.n_iter_ == ref_iter
    assert km.inertia_ == pytest.approx(float((w * ((X - ref_centers[ref_labels]) ** 2).sum(1)).sum()), rel=1e-12)


def test_threaded_and_brute_force_paths_equal_the_default(colors_and_counts, monkeypatch):
    colors, counts = colors_and_counts
    X = colors.astype(np.float64)
    base = KMeans(20, random_state=3, tol=0.0).fit(X, sample_weight=counts)
    # Two threads on disjoint ranges (sums of integers: exact in any order).
    monkeypatch.setattr(_parallel, "_MIN_POINTS_PER_THREAD", 16)
    monkeypatch.setattr(_parallel, "_thread_limit", 2)
    threaded = KMeans(20, random_state=3, tol=0.0).fit(X, sample_weight=counts)
    # No sorted neighbour tables: failing points are searched over all centres.
    monkeypatch.setattr(_kmeans, "_MAX_SORTED_K", 0)
    brute = KMeans(20, random_state=3, tol=0.0).fit(X, sample_weight=counts)
    for other in (threaded, brute):
        np.testing.assert_array_equal(other.labels_, base.labels_)
        np.testing.assert_array_equal(other.cluster_centers_, base.cluster_centers_)
        assert other.n_iter_ == base.n_iter_


def test_weights_equal_repeated_points():
    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (200, 3)).astype(np.float64)
    counts = rng.integers(1, 5, 200)
    init = X[:6].copy()
    weighted = KMeans(6, init=init, tol=0.0).fit(X, sample_weight=counts)
    repeated = KMeans(6, init=init, tol=0.0).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=0, atol=1e-9)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-12)


def test_fixed_seed_is_bit_identical_and_seeds_differ(colors_and_counts):
    colors, counts = colors_and_counts
    X = colors.astype(np.float64)
    a = KMeans(16, random_state=11).fit(X, sample_weight=counts)
    b = KMeans(16, random_state=11).fit(X, sample_weight=counts)
    c = KMeans(16, random_state=12).fit(X, sample_weight=counts)
    assert a.cluster_centers_.tobytes() == b.cluster_centers_.tobytes()
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_
    assert a.cluster_centers_.tobytes() != c.cluster_centers_.tobytes()


def test_empty_cluster_is_relocated_to_the_farthest_point():
    X = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [100, 100, 100], [101, 100, 100], [140, 0, 0]])
    w = np.array([1.0, 1, 1, 1, 1, 5])
    # Centre 2 starts far from every point and gets none; centre 0 takes
    # everything but the (100, 100, 100) group, so the heaviest cost is the
    # weight-5 point at (140, 0, 0), where the empty centre goes.
    init = np.array([[0.0, 0, 0], [100, 100, 100], [-1000, -1000, -1000]])
    km = KMeans(3, init=init, max_iter=1, tol=0.0).fit(X, sample_weight=w)
    np.testing.assert_array_equal(km.cluster_centers_[2], [140.0, 0, 0])
    np.testing.assert_array_equal(km.labels_, [0, 0, 0, 1, 1, 2])
    full = KMeans(3, init=init, tol=0.0).fit(X, sample_weight=w)
    assert sorted(np.bincount(full.labels_, minlength=3).tolist()) == [1, 2, 3]
    assert full.inertia_ == pytest.approx(4 / 3 + 0.5)


def test_relocate_empty_kernel_order():
    X = np.array([[0.0, 0, 0, 0], [10, 0, 0, 0], [0, 3, 0, 0], [0, 0, 0, 0]])
    w = np.array([1.0, 1.0, 4.0, 1.0])
    labels = np.array([0, 0, 0, 0], dtype=np.int32)
    previous = np.zeros((3, 4))
    weights = np.array([4.0, 0.0, 0.0])
    centers = previous.copy()
    kernels.relocate_empty(X, w, labels, previous, weights, centers)
    # Costs: 0, 100, 36, 0 -> the empty centres 1 and 2 take points 1 then 2.
    np.testing.assert_array_equal(centers[1], X[1])
    np.testing.assert_array_equal(centers[2], X[2])
    np.testing.assert_array_equal(centers[0], 0.0)


def test_k_equal_to_distinct_points_gives_those_points():
    X = np.array([[5.0, 5, 5], [5, 5, 5], [9, 0, 1], [200, 100, 0], [9, 0, 1]])
    km = KMeans(3, random_state=0).fit(X)
    assert sorted(map(tuple, km.cluster_centers_.tolist())) == [(5.0, 5.0, 5.0), (9.0, 0.0, 1.0), (200.0, 100.0, 0.0)]
    assert km.inertia_ == 0.0
    np.testing.assert_array_equal(km.cluster_centers_[km.labels_], X)
    # More clusters than distinct points: a warning, the points still kept.
    with pytest.warns(UserWarning, match="fewer than n_clusters=4"):
        km4 = KMeans(4, random_state=0).fit(X)
    assert km4.inertia_ == 0.0


def test_predict_matches_labels_and_brute_force(colors_and_counts):
    colors, counts = colors_and_counts
    X = colors.astype(np.float64)
    km = KMeans(9, random_state=0).fit(X, sample_weight=counts)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    d2 = ((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(km.labels_, d2.argmin(axis=1))


def test_tol_stops_early_and_max_iter_caps(colors_and_counts):
    colors, counts = colors_and_counts
    X = colors.astype(np.float64)
    full = KMeans(12, random_state=2, tol=0.0).fit(X, sample_weight=counts)
    loose = KMeans(12, random_state=2, tol=1e-2).fit(X, sample_weight=counts)
    capped = KMeans(12, random_state=2, tol=0.0, max_iter=2).fit(X, sample_weight=counts)
    assert loose.n_iter_ < full.n_iter_
    assert capped.n_iter_ == 2
    assert full.inertia_ <= loose.inertia_
    assert full.inertia_ <= capped.inertia_


def test_more_dimensions_than_four():
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(0, 1, (50, 6)), rng.normal(10, 1, (50, 6))])
    km = KMeans(2, random_state=0).fit(X)
    assert sorted(np.bincount(km.labels_).tolist()) == [50, 50]
    np.testing.assert_array_equal(km.predict(X), km.labels_)


@pytest.mark.parametrize("n_features", [1, 3, 4, 6])
def test_dealing_the_points_pads_and_gathers_rows(n_features):
    rng = np.random.default_rng(n_features)
    n = 1000
    X = rng.normal(size=(n, n_features)) * 50
    w = rng.random(n)
    guess = rng.integers(-1, 9, n).astype(np.int32)
    index = rng.permutation(n).astype(np.int32)
    width = max(4, n_features)
    X_out, w_out, g_out = np.full((n, width), np.nan), np.full(n, np.nan), np.full(n, 99, np.int32)
    kernels.deal_points(X, w, guess, index, 10, 990, X_out, w_out, g_out)
    np.testing.assert_array_equal(X_out[10:990, :n_features], X[index[10:990]])
    assert (X_out[10:990, n_features:] == 0).all()
    np.testing.assert_array_equal(w_out[10:990], w[index[10:990]])
    np.testing.assert_array_equal(g_out[10:990], guess[index[10:990]])
    # Rows outside the range are not written.
    assert np.isnan(X_out[:10]).all() and np.isnan(w_out[990:]).all() and (g_out[:10] == 99).all()
    with pytest.raises(ValueError, match="at least its columns"):
        kernels.deal_points(X, w, guess, index, 0, n, X_out[:, :0], w_out, g_out)
    with pytest.raises(ValueError, match="0 <= start <= stop <= M"):
        kernels.deal_points(X, w, guess, index, 5, n + 1, X_out, w_out, g_out)


def test_kmeans_plusplus_picks_distinct_weighted_rows():
    X = np.array([[0.0, 0], [0, 0.1], [50, 50], [100, 0], [100, 0.1]])
    centers, indices = kmeans_plusplus(X, 3, sample_weight=np.array([1.0, 1, 1, 1, 1]), random_state=0)
    assert len(set(indices.tolist())) == 3
    np.testing.assert_array_equal(centers, X[indices])
    # One point from each of the three groups.
    assert sorted((X[indices, 0] // 50).tolist()) == [0.0, 1.0, 2.0]
    again, again_indices = kmeans_plusplus(X, 3, sample_weight=np.ones(5), random_state=0)
    np.testing.assert_array_equal(again_indices, indices)
    # Zero-weight points are never drawn while others remain.
    _, idx = kmeans_plusplus(X, 2, sample_weight=np.array([0.0, 0, 1, 1, 0]), random_state=4)
    assert set(idx.tolist()) == {2, 3}


def test_invalid_parameters():
    X = np.zeros((4, 3))
    with pytest.raises(UsageError, match="n_clusters"):
        KMeans(0).fit(X)
    with pytest.raises(UsageError, match="larger than the number of samples"):
        KMeans(5).fit(X)
    with pytest.raises(UsageError, match="sample_weight"):
        KMeans(2).fit(X, sample_weight=-np.ones(4))
    with pytest.raises(UsageError, match="init array"):
        KMeans(2, init=np.zeros((3, 3))).fit(X)


def test_fit_colors_coarse_to_fine_is_exact_for_its_centres(monkeypatch):
    from PIL import Image

    from pathlib import Path

    pixels = np.asarray(Image.open(Path(__file__).with_name("data") / "kodim05-crop256.png").convert("RGB"))
    colors, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    assert len(colors) > _kmeans._COARSE_MIN_COLORS  # the coarse levels run
    centers, labels, inertia, n_iter = _kmeans.fit_colors(
        colors, counts, 24, random_state=np.random.default_rng(0), n_init=1, max_iter=300, tol=1e-4
    )
    X = colors.astype(np.float64)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, d2.argmin(axis=1))
    assert inertia == pytest.approx(float((counts * d2.min(axis=1)).sum()), rel=1e-12)
    # Same generator state, same result.
    again = _kmeans.fit_colors(colors, counts, 24, random_state=np.random.default_rng(0), n_init=1, max_iter=300, tol=1e-4)
    assert again[0].tobytes() == centers.tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert n_iter >= 1


def test_parallel_seedings_do_not_depend_on_timing(monkeypatch):
    """n_init seedings and their coarse Lloyd runs go side by side on the
    thread pool; running them one after the other, in reverse order, must
    give the same bytes (their random draws are taken before either runs)."""
    from concurrent.futures import Future
    from pathlib import Path

    from PIL import Image

    pixels = np.asarray(Image.open(Path(__file__).with_name("data") / "kodim05-crop256.png").convert("RGB"))
    colors, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)

    def fit():
        return _kmeans.fit_colors(colors, counts, 32, random_state=np.random.default_rng(11), n_init=3, max_iter=300, tol=1e-4)

    parallel = fit()

    class Deferred:
        """Runs submitted work only when its result is asked for, last
        submitted first."""

        def __init__(self):
            self.pending = []

        def submit(self, fn, *args):
            future = Future()
            self.pending.append((future, fn, args))
            future.result = lambda timeout=None, f=future: self._drain(f)
            return future

        def _drain(self, wanted):
            while self.pending:
                future, fn, args = self.pending.pop()
                Future.set_result(future, fn(*args))
            return Future.result(wanted)

    monkeypatch.setattr(_kmeans, "_pool", lambda pool=Deferred(): pool)
    serial = fit()
    for a, b in zip(parallel, serial):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


@pytest.mark.parametrize("n_features, width", [(1, 4), (3, 3), (3, 4), (4, 4), (6, 6)])
def test_absolute_tol_is_tol_times_the_mean_weighted_variance(n_features, width):
    from kmq._engine.kmeans import _absolute_tol

    rng = np.random.default_rng(n_features * 10 + width)
    X = rng.normal(50, 20, (5000, width))
    w = rng.integers(1, 9, 5000).astype(np.float64)
    mean = np.average(X[:, :n_features], axis=0, weights=w)
    variance = np.average((X[:, :n_features] - mean) ** 2, axis=0, weights=w)
    got = _absolute_tol(X, w, 1e-4, n_features if width != n_features else None)
    assert got == pytest.approx(1e-4 * variance.mean(), rel=1e-10)


def _night_crop():
    """kodim05's crop as a night shot: its top 224 of 256 rows 5 stops
    darker (linear light / 32), (256, 256, 3) uint8, 9175 distinct colours."""
    from pathlib import Path

    from PIL import Image

    v = np.asarray(Image.open(Path(__file__).with_name("data") / "kodim05-crop256.png").convert("RGB")) / 255.0
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    linear[:224] /= 32
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.rint(255 * encoded).astype(np.uint8)


def test_level_scale_is_the_greys_lightness():
    from kmq._engine.colorspace import level_scale, to_space

    oklab = level_scale("oklab")
    assert oklab.dtype == np.uint8 and oklab.shape == (256,)
    # Oklab lightness of the greys 0, 1, 7, 248, 255: 0, 6.72, 12.86, 97.91, 100.
    assert oklab[[0, 1, 7, 248, 255]].tolist() == [0, 17, 33, 250, 255]
    lab = level_scale("lab")
    # CIELAB's linear toe: L* of grey 1 is 0.27, of grey 7 1.92.
    assert lab[[0, 1, 7, 255]].tolist() == [0, 1, 5, 255]
    assert np.all(np.diff(oklab.astype(int)) >= 0) and np.all(np.diff(lab.astype(int)) >= 0)
    grey = to_space(np.arange(256, dtype=np.uint8)[:, None], "oklab")[:, 0]
    np.testing.assert_array_equal(oklab, np.rint(2.55 * grey).astype(np.uint8))
    assert level_scale("rgb") is None
    with pytest.raises(ValueError, match="unknown colour space 'xyz'"):
        level_scale("xyz")


def test_effective_bins():
    assert _kmeans._effective_bins(np.full(40, 3.0)) == pytest.approx(40.0, rel=1e-12)
    assert _kmeans._effective_bins(np.array([5.0, 0.0, 0.0])) == pytest.approx(1.0)
    # Two bins holding 90 % and 10 %: exp(0.325) = 1.384.
    assert _kmeans._effective_bins(np.array([9.0, 1.0])) == pytest.approx(1.3842, abs=1e-4)


def _night_fit(monkeypatch, k, space, effective=None):
    """fit_colors on the night crop's Oklab points: (inertia, its ratio to
    the exact colours' fit, the keys each coarse level was binned on, the
    number of points the seeding ran on)."""
    from kmq._engine.colorspace import to_space

    colors, counts = np.unique(_night_crop().reshape(-1, 3), axis=0, return_counts=True)
    assert len(colors) > _kmeans._COARSE_MIN_COLORS
    points = to_space(colors, "oklab")
    exact = _kmeans.fit_colors_exact(points, counts.astype(np.float64), k, np.random.default_rng(0), 1, 300, 1e-4)[2]
    binned_keys, seeded = [], []
    coarse, seed_plan = _kmeans.coarse_histogram, _kmeans._seed_plan

    def spy_coarse(keys, counts, bits):
        binned_keys.append(keys)
        return coarse(keys, counts, bits)

    def spy_seed(means, *args):
        seeded.append(len(means))
        return seed_plan(means, *args)

    monkeypatch.setattr(_kmeans, "coarse_histogram", spy_coarse)
    monkeypatch.setattr(_kmeans, "_seed_plan", spy_seed)
    if effective is not None:
        monkeypatch.setattr(_kmeans, "_effective_bins", lambda weights: effective)
    centers, labels, inertia, _ = _kmeans.fit_colors(
        colors, counts, k, random_state=np.random.default_rng(0), n_init=1, max_iter=300, tol=1e-4,
        points=points, space=space,
    )
    d2 = ((points[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, d2.argmin(axis=1))
    return inertia, inertia / exact, binned_keys, seeded, colors


def test_dark_photograph_is_binned_on_lightness_levels(monkeypatch):
    """The night crop's 5-bit sRGB bins (557) are enough for K = 32, but
    their weights are as spread as 26 even bins only: the colours are
    binned again on Oklab's lightness levels (620 bins, as spread as 80),
    and the fit ends within 1 % of the exact colours'. Binned on sRGB levels
    whatever the spread, it ended 25 % above."""
    from kmq._engine.colorspace import level_scale

    _, ratio, keys, seeded, colors = _night_fit(monkeypatch, 32, "oklab")
    assert ratio <= 1.01
    assert keys[0] is colors and np.array_equal(keys[-1], level_scale("oklab")[colors])
    assert seeded == [620]
    _, ratio, keys, seeded, colors = _night_fit(monkeypatch, 32, "oklab", effective=float("inf"))
    assert ratio > 1.2 and all(k is colors for k in keys) and seeded == [557]


def test_spread_histograms_keep_their_srgb_bins(monkeypatch):
    """A photograph whose sRGB bins are spread is binned once, on them."""
    from pathlib import Path

    from PIL import Image

    from kmq._engine.colorspace import to_space

    pixels = np.asarray(Image.open(Path(__file__).with_name("data") / "kodim05-crop256.png").convert("RGB"))
    colors, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    binned_keys = []
    coarse = _kmeans.coarse_histogram
    monkeypatch.setattr(_kmeans, "coarse_histogram", lambda keys, counts, bits: binned_keys.append(keys) or coarse(keys, counts, bits))
    _kmeans.fit_colors(
        colors, counts, 24, random_state=np.random.default_rng(0), n_init=1, max_iter=300, tol=1e-4,
        points=to_space(colors, "oklab"), space="oklab",
    )
    assert binned_keys and all(keys is colors for keys in binned_keys)


def test_without_a_space_concentrated_levels_fall_to_the_finest(monkeypatch):
    """RGB fits (no lightness scale) drop concentrated coarse levels, down
    to the finest, never to the exact colours (whose fit costs more)."""
    seeded = []
    seed_plan = _kmeans._seed_plan
    monkeypatch.setattr(_kmeans, "_seed_plan", lambda means, *args: seeded.append(len(means)) or seed_plan(means, *args))
    colors, counts = np.unique(_night_crop().reshape(-1, 3), axis=0, return_counts=True)
    levels = _kmeans._coarse_levels(colors, counts, counts.astype(np.float64), None, _kmeans._COARSE_LEVELS[3], 32)
    assert [len(level[0]) for level in levels] == [557]
    assert _kmeans._effective_bins(levels[0][1]) < _kmeans._MIN_EFFECTIVE_BINS_PER_CENTER * 32
    centers, labels, inertia, n_iter = _kmeans.fit_colors(
        colors, counts, 32, random_state=np.random.default_rng(0), n_init=1, max_iter=300, tol=1e-4
    )
    assert seeded == [557]
    X = colors.astype(np.float64)
    d2 = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, d2.argmin(axis=1))
    assert inertia == pytest.approx(float((counts * d2.min(axis=1)).sum()), rel=1e-12)
