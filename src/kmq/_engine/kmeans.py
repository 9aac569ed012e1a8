"""Stage 3 of the pipeline: weighted k-means (Lloyd) with k-means++ seeding.

:class:`KMeans` follows scikit-learn's estimator contract — ``__init__``
only stores parameters, ``fit`` returns ``self``, learned state ends in
``_`` — but the algorithm is kmq's own, written for colour data: few
dimensions, many points, and weights (the pixel count of each distinct
colour), so that fitting on the histogram minimises exactly the pixel
objective. The loops live in ``_kmeans.py``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._errors import UsageError
from .._estimator import ParamsMixin, check_fitted
from . import _histogram, _kmeans
from .colorspace import level_scale
from ._parallel import Chunks, cores as _cores, n_threads as _n_threads, pool as _pool, run_chunked

__all__ = ["KMeans", "kmeans_plusplus", "fit_colors", "coarse_histogram"]


def _check_random_state(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise UsageError(f"the seed (random_state) must be a whole number >= 0, got {random_state}")
        return np.random.default_rng(int(random_state))
    raise UsageError(f"the seed (random_state) must be None, a whole number >= 0 or a numpy Generator, got {random_state!r}")


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None, n_local_trials=None):
    """Greedy weighted k-means++ seeding.

    Each new centre is the best of ``n_local_trials`` candidates drawn with
    probability proportional to ``weight * D(x)^2``, where D is the distance
    to the nearest centre chosen so far; "best" means the one that most
    reduces the weighted potential (Arthur & Vassilvitskii 2007, greedy
    variant).

    Parameters
    ----------
    X : ndarray, shape (M, D), float64
    n_clusters : int, 1 <= n_clusters <= M
    sample_weight : ndarray, shape (M,), optional
        Non-negative weights; default all ones.
    random_state : None, int or numpy.random.Generator
    n_local_trials : int, optional
        Default ``2 + int(log(n_clusters))``.

    Returns
    -------
    centers : ndarray, shape (n_clusters, D), float64
    indices : ndarray, shape (n_clusters,), intp
        Rows of ``X`` chosen as centres.
    """
    X = KMeans._check_X(X)
    k = n_clusters
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"n_clusters must be an integer >= 1, got {k!r}")
    if k > X.shape[0]:
        raise UsageError(f"n_clusters={k} is larger than the number of points, {X.shape[0]}")
    if n_local_trials is not None and (
        isinstance(n_local_trials, bool) or not isinstance(n_local_trials, (int, np.integer)) or n_local_trials < 1
    ):
        raise UsageError(f"n_local_trials must be an integer >= 1, got {n_local_trials!r}")
    w = _check_weights(sample_weight, X.shape[0])
    _check_scale(X, w)
    return _plusplus_plan(X, w, int(k), _check_random_state(random_state), n_local_trials)()


#: Coordinates are refused above this magnitude: squared distances summed
#: over points must stay finite in float64 (1e308 squared is inf).
_MAX_ABS_COORDINATE = 1e100


def _check_weights(sample_weight, n_points: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n_points)
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "iuf" or w.shape != (n_points,):
        raise UsageError(f"sample_weight must be {n_points} finite non-negative numbers with a positive sum")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all() or (w < 0).any() or not w.sum() < np.inf:
        raise UsageError(f"sample_weight must be {n_points} finite non-negative numbers with a positive sum")
    if not w.sum() > 0:
        raise UsageError("sample_weight is all zero: at least one weight must be positive")
    return w


def _check_scale(X: np.ndarray, w: np.ndarray | None = None) -> None:
    """Refuse points whose squared distances would overflow (UsageError)."""
    biggest = float(np.abs(X).max(initial=0.0))
    if biggest > _MAX_ABS_COORDINATE:
        raise UsageError(
            f"X holds values up to {biggest:.3g} in magnitude; squared distances would overflow: "
            f"scale the data to within +-{_MAX_ABS_COORDINATE:g}"
        )


def _plusplus_plan(X, w, n_clusters, rng, n_local_trials=None):
    """Draw the random numbers of a k-means++ seeding now; return a function
    that computes the seeding, ``() -> (centers, indices)``, and may run in
    any thread: the draws, and so the result, do not depend on when."""

    n_points = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    first = int(rng.choice(n_points, p=w / w.sum()))
    # All draws up front, in the order the greedy loop consumes them, so the
    # whole seeding runs in one compiled call.
    uniforms = rng.uniform(size=(max(n_clusters - 1, 0), n_local_trials))

    def compute():
        indices = np.empty(n_clusters, dtype=np.int64)
        _kmeans.kmeans_plusplus_seeds(_pad(X), w, first, uniforms, indices)
        indices = indices.astype(np.intp)
        return X[indices].copy(), indices

    return compute


def check_tol(tol) -> float:
    """``tol`` as a float; UsageError unless it is a number >= 0."""
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise UsageError(f"tol must be a number >= 0, got {tol!r}")
    return float(tol)


class KMeans(ParamsMixin):
    """Weighted k-means clustering (Lloyd's algorithm).

    scikit-learn's estimator contract: ``get_params``/``set_params``
    (``sklearn.base.clone`` and ``Pipeline`` work), ``fit``, ``predict``,
    ``fit_predict``, ``transform`` (distances to the centres),
    ``fit_transform``, ``score`` (minus the inertia); ``predict`` before
    ``fit`` raises :class:`kmq.NotFittedError`. It passes
    ``sklearn.utils.estimator_checks`` (tests/test_sklearn_contract.py).

    Parameters
    ----------
    n_clusters : int
        Number of clusters K, >= 1.
    init : {"k-means++", "random"} or ndarray of shape (K, D)
        Seeding: greedy weighted k-means++, K distinct points drawn with
        probability proportional to their weight, or given centres.
    n_init : int
        Runs with different seeds; the one with the lowest inertia is kept.
        Must be 1 when ``init`` is an array.
    max_iter : int
        Maximum Lloyd iterations per run.
    tol : float
        Stop when the squared centre movement summed over centres is at most
        ``tol`` times the mean per-feature (weighted) variance of ``X``, as
        in scikit-learn; a run also stops when no label changes.
    random_state : None, int or numpy.random.Generator
        Seeds the whole fit: the same value gives bit-identical results.

    Attributes
    ----------
    cluster_centers_ : ndarray, shape (K, D), float64
    labels_ : ndarray, shape (M,), int32
        Nearest centre of each training point, consistent with ``predict``.
    inertia_ : float
        Weighted sum of squared distances of points to their centre.
    n_iter_ : int
        Lloyd iterations of the kept run.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0, 0], [0, 0, 2], [10, 10, 10], [10, 10, 12]])
    >>> km = KMeans(2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_[:, 2].tolist())
    [1.0, 11.0]
    >>> float(km.inertia_)
    4.0
    """

    _estimator_type = "clusterer"
    _is_transformer = True

    def __init__(self, n_clusters=8, *, init="k-means++", n_init=1, max_iter=300, tol=1e-4, random_state=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    # -- validation -----------------------------------------------------
    def _check_params(self, X):
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise UsageError(f"n_clusters must be an integer >= 1, got {k!r}")
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise UsageError(f"n_init must be an integer >= 1, got {self.n_init!r}")
        if not isinstance(self.max_iter, (int, np.integer)) or self.max_iter < 1:
            raise UsageError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        check_tol(self.tol)
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise UsageError(f"init must be 'k-means++', 'random' or an array of centres, got {self.init!r}")
        else:
            try:
                init = np.asarray(self.init, dtype=np.float64)
            except (TypeError, ValueError):
                raise UsageError(f"init must be 'k-means++', 'random' or an array of centres, got {self.init!r}") from None
            if init.shape != (k, X.shape[1]):
                raise UsageError(f"init array must have shape ({k}, {X.shape[1]}), got {init.shape}")
            if not np.isfinite(init).all():
                raise UsageError("the init array of centres contains NaN or infinity")
            _check_scale(init)
            if self.n_init != 1:
                raise UsageError("n_init must be 1 when init is an array of centres")

    @staticmethod
    def _check_X(X):
        if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
            raise TypeError("kmq's k-means does not support sparse input; give a dense array (X.toarray())")
        X = np.asarray(X)
        if X.dtype.kind == "c":
            raise UsageError("Complex data not supported: X must hold real numbers")
        if X.ndim != 2:
            raise UsageError(
                f"X must be a 2-D array of shape (n_samples, n_features), got shape {X.shape}; "
                "Reshape your data with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample"
            )
        if X.shape[0] < 1:
            raise UsageError(f"found an array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
        if X.shape[1] < 1:
            raise UsageError(f"found an array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
        if X.dtype.kind == "O":
            X = X.astype(np.float64)  # TypeError for objects that are not numbers
        elif X.dtype.kind not in "biuf":
            raise UsageError(f"X must hold numbers, got dtype {X.dtype}")
        X = np.ascontiguousarray(X, dtype=np.float64)
        if not np.isfinite(X).all():
            raise UsageError("X contains NaN or infinity")
        _check_scale(X)
        return X

    # -- fitting ----------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Cluster X.

        Parameters
        ----------
        X : array_like, shape (M, D)
            Points (for colours, D = channels, values 0..255).
        y : ignored
        sample_weight : array_like, shape (M,), optional
            Non-negative weight of each point (pixel counts).

        Returns
        -------
        self
        """
        X = self._check_X(X)
        self._check_params(X)
        n_points = X.shape[0]
        w = _check_weights(sample_weight, n_points)
        k = int(self.n_clusters)
        if k > n_points:
            raise UsageError(f"n_clusters={k} is larger than the number of samples, {n_points}")

        rng = _check_random_state(self.random_state)
        tol = _absolute_tol(X, w, self.tol)

        best = None
        for _ in range(self.n_init):
            centers = self._init_centers(X, w, k, rng)
            run = _lloyd(X, w, centers, self.max_iter, tol)
            if best is None or run[2] < best[2]:
                best = run
        centers, labels, inertia, n_iter = best

        # bincount, not np.unique: np.unique imports numpy.ma (7 ms of an
        # icon's whole run) and sorts.
        n_distinct = int(np.count_nonzero(np.bincount(labels, minlength=k)))
        if n_distinct < k:
            warnings.warn(
                f"found {n_distinct} distinct clusters, fewer than n_clusters={k}: "
                "the data have fewer distinct points than clusters",
                stacklevel=2,
            )
        self.cluster_centers_ = centers
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.n_features_in_ = X.shape[1]
        return self

    def _init_centers(self, X, w, k, rng):
        if isinstance(self.init, str):
            return _seed(X, w, k, self.init, rng)
        return np.array(self.init, dtype=np.float64, copy=True)

    def _check_fitted_X(self, X):
        check_fitted(self, "cluster_centers_")
        X = self._check_X(X)
        if X.shape[1] != self.cluster_centers_.shape[1]:
            raise UsageError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.cluster_centers_.shape[1]} features as input"
            )
        return X

    def predict(self, X):
        """Index of the nearest centre of each point: (M, D) -> (M,) int32."""
        X = self._check_fitted_X(X)

        labels = np.empty(X.shape[0], dtype=np.int32)
        _kmeans.assign_labels(X, self.cluster_centers_, labels, np.empty(X.shape[0]))
        return labels

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit(X).labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance of each point to each centre.

        (M, D) -> (M, K) float64, as scikit-learn's ``KMeans.transform``."""
        X = self._check_fitted_X(X)
        centers = self.cluster_centers_
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, clipped at 0 against rounding.
        d2 = (X * X).sum(axis=1)[:, None] - 2.0 * (X @ centers.T) + (centers * centers).sum(axis=1)[None, :]
        return np.sqrt(np.maximum(d2, 0.0))

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit(X).transform(X)``: (M, D) -> (M, K) float64."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Minus the (weighted) sum of squared distances of X to its nearest
        centres: higher is better, as scikit-learn's ``KMeans.score``."""
        X = self._check_fitted_X(X)
        w = _check_weights(sample_weight, X.shape[0])
        labels = self.predict(X)
        return -_inertia(X, w, self.cluster_centers_, labels)


#: Above this many centres the K x K neighbour tables of sort-means cost
#: more memory and set-up than they save; the bounds still apply, failing
#: points are then searched over all centres.
_MAX_SORTED_K = 1024
class _Geometry:
    """Centre-to-centre distances, sorted neighbours and half separations of
    the current centres (see ``_kmeans.center_geometry``)."""

    def __init__(self, n_centers: int):
        self.sorted_search = n_centers <= _MAX_SORTED_K
        size = n_centers if self.sorted_search else 1
        self.dist = np.zeros((size, size))
        self.order = np.zeros((size, size), dtype=np.int32)
        self.half_sep = np.zeros(n_centers)

    def update(self, centers):
        if self.sorted_search:

            _kmeans.center_geometry(centers, self.dist, self.order, self.half_sep)


def _lloyd(X, w, centers, max_iter, tol, guess=None, min_iter=1):
    """One weighted Lloyd run from ``centers`` (K, D).

    Assignments use Hamerly's bounds and sort-means searches (see
    ``_kmeans.pyx``), which give exactly Lloyd's labels. The run stops when no
    label changes, when the squared centre movement summed over centres is at
    most ``tol`` (absolute), or after ``max_iter`` centre updates.

    Parameters
    ----------
    X : (M, D) float64; w : (M,) float64; centers : (K, D) float64
    max_iter : int; tol : float
    guess : (M,) int32, optional
        A likely nearest centre of each point for the first assignment
        (e.g. from a fit on a coarser histogram); default: search all.
    min_iter : int
        Centre updates before ``tol`` may stop the run (no label change
        always stops it).

    Returns
    -------
    centers : (K, D) float64
    labels : (M,) int32
        Nearest centre of each point for the returned centres (ties to the
        lowest index).
    inertia : float
        Weighted sum of squared distances to those centres.
    n_iter : int
        Centre updates done (at least 1).
    """

    X_in, n_features = X, X.shape[1]
    n_points, n_dims = X.shape[0], max(4, n_features)
    n_centers = centers.shape[0]
    centers = _pad(np.asarray(centers, dtype=np.float64)).copy()
    labels = np.empty(n_points, dtype=np.int32)
    upper = np.empty(n_points)
    lower = np.empty(n_points)
    sorted_search = n_centers <= _MAX_SORTED_K
    if guess is None or not sorted_search:
        guess = np.full(n_points, -1, dtype=np.int32)
    guess = np.ascontiguousarray(guess, dtype=np.int32)
    w = np.ascontiguousarray(w, dtype=np.float64)
    # Rounding in the bound updates is far below this; a wrong skip would
    # need an error larger than it.
    # (max |X| from the extremes: np.abs(X) would copy X, 32 bytes a point.)
    slack = 1e-9 * (1.0 + max(abs(float(X.max())), abs(float(X.min()))))
    geometry = _Geometry(n_centers)
    chunks = Chunks(n_points, [(n_centers, n_dims), (n_centers,)])
    if chunks.n_parts == 1:
        X = _pad(X)
        n_iter = _lloyd_loop(X, w, centers, guess, geometry, chunks, max_iter, tol, min_iter, slack, labels, upper, lower)
    else:
        # Deal the points out like cards, so that each range is a sample of
        # the whole colour space: in key order, one range would be the reds
        # and another the rest, and the points near cluster boundaries (the
        # ones that cost work) would not be shared evenly. Dealt by ranges,
        # not threads: the order of every sum is the same on any machine.
        dealt = np.concatenate([np.arange(t, n_points, chunks.n_parts, dtype=np.int32) for t in range(chunks.n_parts)])
        X_dealt, w_dealt, guess_dealt = np.empty((n_points, n_dims)), np.empty(n_points), np.empty(n_points, np.int32)
        # Padded and gathered in one compiled pass on the threads: NumPy's
        # pad copy and three gathers took 0.22 s of a fresh process at
        # 1.4 M points (its 4-D gather alone 24-140 ms, bimodal).
        run_chunked(
            _kmeans.deal_points, n_points,
            (np.ascontiguousarray(X, dtype=np.float64), w, guess, dealt), (X_dealt, w_dealt, guess_dealt),
            min_per_thread=1 << 16,
        )
        dealt_labels = np.empty_like(labels)
        n_iter = _lloyd_loop(
            X_dealt, w_dealt, centers, guess_dealt, geometry, chunks, max_iter, tol, min_iter, slack,
            dealt_labels, upper, lower,
        )
        labels[dealt] = dealt_labels
    centers = np.ascontiguousarray(centers[:, :n_features])
    return centers, labels, _inertia(X_in, w, centers, labels), max(n_iter, 1)


def _lloyd_loop(X, w, centers, guess, geometry, chunks, max_iter, tol, min_iter, slack, labels, upper, lower):
    """The iterations of :func:`_lloyd`, each assignment pass split over
    ``chunks``; updates ``centers``, ``labels``, ``upper`` and ``lower`` in
    place and returns the number of centre updates.

    The loop stays in Python: fused into one compiled function it saved
    0.6 ms of 30 ms (Kodak, K=64, median) and cost 3.4 s more compiling on
    the first run, LLVM optimising the inlined passes as one function."""

    n_centers = centers.shape[0]
    geometry.update(centers)
    _, (sums, weights) = chunks.run(
        _kmeans.hamerly_init,
        (X, w, centers, geometry.dist, geometry.order, guess),
        (labels, upper, lower),
    )
    # The cluster sums are updated with the points that change cluster only.
    # On the exact histogram (integer colours and counts) they stay exact.
    sums, weights = sums.copy(), weights.copy()
    n_iter = 0
    drift = np.empty(n_centers)
    drift_total = np.zeros(n_centers)
    lower_drift_total = 0.0
    previous = np.empty_like(centers)
    while n_iter < max_iter:
        previous[:] = centers
        shift, n_empty = _kmeans.update_centers(sums, weights, centers, drift)
        if n_empty:
            _kmeans.relocate_empty(X, w, labels, previous, weights, centers)
            shift = _kmeans.moved_distance(previous, centers, drift)
        n_iter += 1
        geometry.update(centers)
        drift_total += drift
        lower_drift_total += float(drift.max())
        changed, (sums_moved, weights_moved) = chunks.run(
            _kmeans.hamerly_pass,
            (X, w, centers, geometry.dist, geometry.order, geometry.half_sep, drift_total, lower_drift_total, slack, geometry.sorted_search),
            (labels, upper, lower),
        )
        sums += sums_moved
        weights += weights_moved
        if sum(changed) == 0 or (shift <= tol and n_iter >= min_iter):
            break
    return n_iter


def _pad(X):
    """(M, D) -> (M, 4) float64 with zero columns when D < 4: the kernels'
    unrolled four-column path, same distances."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.shape[1] >= 4:
        return X
    padded = np.zeros((X.shape[0], 4))
    padded[:, : X.shape[1]] = X
    return padded


def _inertia(X, w, centers, labels):

    X = np.ascontiguousarray(X, dtype=np.float64)
    return float(_kmeans.weighted_sse(X, w, np.ascontiguousarray(centers, dtype=np.float64), labels))


# -- fitting a palette to a colour histogram -----------------------------------

#: Bits per channel of the coarse histograms, coarsest first, by channel
#: count. Each level's bins nest in the previous level's, so a bin's parent
#: label is a good first guess. Which levels run depends on the histogram
#: (see fit_colors): Kodak photographs (13k-72k colours) use 5 and/or 6
#: bits, a 12 MP photograph (1.2 M colours) 5, 6 and 7.
_COARSE_LEVELS = {1: (), 2: (5,), 3: (5, 6, 7), 4: (4, 5, 6)}
#: Fit on coarse histograms first when there are more distinct colours than
#: this; below it the exact histogram is already small.
_COARSE_MIN_COLORS = 8192
#: A level is used only if it has at most this fraction of the next finer
#: level's points; otherwise it would cost nearly as much as that level.
_LEVEL_MAX_FRACTION = 0.5
#: Work budget of each level after the first, in point-iterations: a level
#: with M points runs at most max(_LEVEL_MIN_ITER, _LEVEL_WORK // M) Lloyd
#: iterations. Kodak photographs (<= 72k colours) never reach it; a 12 MP
#: upscaled photograph (1.2 M colours) gets 6 exact iterations after
#: converging on 60k and 300k bins, where each further iteration moved the
#: inertia by < 0.1 % (measured) at 80 ms each.
_LEVEL_WORK = 1 << 22
#: The coarsest level used must have at least this many bins per centre.
_MIN_BINS_PER_CENTER = 16
#: ... and its weights must be at least as spread as this many even bins per
#: centre (see fit_colors). 2 changed more photographs, for the worse as
#: often as for the better on SSIMULACRA2 (docs/benchmarks.md, "Dark
#: photographs").
_MIN_EFFECTIVE_BINS_PER_CENTER = 1
_LEVEL_MIN_ITER = 5
#: Lloyd iterations a finer level runs before ``tol`` may stop it. A finer
#: level starts next to a minimum of the coarser objective, so its first
#: centre movements are small although its own minimum is still some
#: iterations away; stopping there left a 256 x 256 Kodak crop at K=16
#: 0.5 % above scikit-learn (median of 5 seeds), 10 iterations bring it to
#: +0.1 % at no measurable cost on full Kodak images (they run longer anyway).
_FINE_MIN_ITER = 10


def coarse_histogram(colors: np.ndarray, counts: np.ndarray, bits: int):
    """Merge colours into bins of the top ``bits`` bits of each channel.

    Parameters
    ----------
    colors : (M, C) uint8; counts : (M,) int64
    bits : int, 1..8

    Returns
    -------
    means : (B, C) float64
        Count-weighted mean colour of each non-empty bin (in key order).
    weights : (B,) float64
        Pixels in each bin.
    bin_of_color : (M,) int64
        Row of ``means`` holding each colour.
    """

    channels = colors.shape[1]
    colors = np.ascontiguousarray(colors, dtype=np.uint8)
    n_words = max(1, (1 << (bits * channels)) >> 6)
    occupied = np.zeros(n_words, dtype=np.uint64)
    rank = np.empty(n_words, dtype=np.int32)
    n_bins = _histogram.number_bins(colors, bits, occupied, rank)
    bin_of_color = np.empty(len(colors), dtype=np.int64)
    sums = np.zeros((n_bins, channels))
    weights = np.zeros(n_bins)
    _histogram.sum_bins(colors, np.ascontiguousarray(counts, dtype=np.int64), bits, occupied, rank, bin_of_color, sums, weights)
    return sums / weights[:, None], weights, bin_of_color


def fit_colors(colors, counts, k, *, random_state, n_init, max_iter, tol, init="k-means++", points=None, space=None):
    """k-means on a colour histogram, coarse to fine.

    When the histogram is large, the seeding and the first Lloyd iterations
    run on coarse histograms (:func:`coarse_histogram`), whose bins are
    count-weighted means: the same objective up to the constant scatter
    inside the bins, on far fewer points. Each finer level continues from
    the previous level's centres (each point's search starting at its
    parent bin's label), and the last level is the exact distinct colours,
    so the result is a local minimum of the exact pixel objective up to
    ``tol`` — or, for histograms of more than ``_LEVEL_WORK / 5`` colours,
    after the work budget of the finer levels.

    Parameters
    ----------
    colors : (M, C) uint8, distinct; counts : (M,) int64, pixels per colour
    k : int, 1 <= k <= M
    random_state : numpy.random.Generator
    n_init : int
        Seedings; each is followed by Lloyd on the coarsest level and the
        best of them (lowest coarse inertia) goes on to the finer levels.
    max_iter, tol, init : as :class:`KMeans` (``tol`` relative to the mean
        per-channel variance of the pixels; ``max_iter`` per level).
    points : (M, D) float64, optional
        The colours in a working space (``colorspace.to_space``): k-means
        runs on these. The coarse levels still bin the uint8 colours (their
        keys), and each bin's point is the count-weighted mean of its
        colours' points. Default: the colours themselves.
    space : str, optional
        The space of ``points`` (``colorspace.SPACES``). When the sRGB
        levels' coarse bins hold most pixels in a few bins (a dark image;
        see below), the levels are built again with each colour channel on
        the space's lightness scale (``colorspace.level_scale``): bins of
        about even size in the space. Alpha stays on its own levels.

    Returns
    -------
    centers : (k, C) float64 (or (k, D), in the points' space)
    labels : (M,) int32 — nearest centre of each colour
    inertia : float — pixel-space sum of squared distances to ``centers``
    n_iter : int — Lloyd iterations, all levels
    """
    n_channels = colors.shape[1]
    source = colors if points is None else np.ascontiguousarray(points, dtype=np.float64)
    n_features = source.shape[1]
    # Not padded here: _lloyd pads (and deals out) the points itself.
    X = np.ascontiguousarray(source, dtype=np.float64)
    w = counts.astype(np.float64)
    levels = _COARSE_LEVELS[n_channels]
    if len(colors) <= _COARSE_MIN_COLORS or not isinstance(init, str) or not levels:
        return fit_colors_exact(X, w, k, random_state, n_init, max_iter, tol, init)
    tol_abs = _absolute_tol(X, w, tol, n_features)
    points = None if points is None else X
    binned = _coarse_levels(colors, counts, w, points, levels, k)
    # Many bins are not enough when a few of them hold most of the pixels:
    # each can hold one centre only, and Lloyd on the finer levels does not
    # bring more in. A night photograph at 768 px (Futuristic, 85 % of its
    # pixels darker than L* 10) seeded on 6712 6-bit bins at K = 256, but
    # their weights were as spread as 58 even bins, and its Oklab fit ended
    # 36 % above the exact colours'. So the seeding level's weights must be
    # as spread as k even bins (the exponential of their entropy:
    # _effective_bins). When they are not, the colours are binned
    # again on the working space's lightness levels, even in the space
    # where sRGB levels are not (so dark pixels fill more bins), and the
    # coarser levels still too concentrated are dropped. The finest is
    # kept: the exact colours would cost more than they gain (Futuristic at
    # 3840 x 2560, K = 256: compress took 2.65 s against 0.64 s, for an
    # inertia 9 % lower).
    # Histograms whose sRGB levels are spread enough are binned as before.
    if points is not None and space is not None and binned and _too_concentrated(binned[0], k):
        keys = level_scale(space)[colors]
        if n_channels in (2, 4):
            keys[:, -1] = colors[:, -1]
        binned = _coarse_levels(keys, counts, w, points, levels, k)
    while len(binned) > 1 and _too_concentrated(binned[0], k):
        binned.pop(0)
    if not binned:
        return fit_colors_exact(X, w, k, random_state, n_init, max_iter, tol)
    binned = [(_pad(m), wt, b) for m, wt, b in binned]
    means, weights, _ = binned[0]
    coarse_k = min(k, len(means))
    plans = [_seed_plan(means, weights, coarse_k, init, random_state) for _ in range(n_init)]

    def lloyd(seed):
        return _lloyd(means, weights, seed, max_iter, tol_abs)

    def run(plan):
        return lloyd(plan())

    if n_init > 1 and _cores() > 1 and _n_threads(len(means)) == 1:
        # Each seeding and its Lloyd run is one compiled call on a few
        # thousand bins: run them side by side. (Only then: a run that
        # splits its own passes over the threads must not wait on them; and
        # not in a process limited to one thread, a batch worker.)
        futures = [_pool().submit(run, plan) for plan in plans[1:]]
        runs = [run(plans[0])] + [future.result() for future in futures]
    elif n_init > 1 and _cores() > 1:
        # More bins: the seedings, one single-threaded compiled call each
        # (~0.1 s on 26k bins at K=256), run side by side; the Lloyd runs,
        # which use every core themselves, one after the other.
        futures = [_pool().submit(plan) for plan in plans[1:]]
        seeds = [plans[0]()] + [future.result() for future in futures]
        runs = [lloyd(seed) for seed in seeds]
    else:
        runs = [run(plan) for plan in plans]
    best = runs[0]
    for candidate in runs[1:]:
        if candidate[2] < best[2]:
            best = candidate
    centers, labels, _, total_iter = best
    if coarse_k < k:
        # Fewer coarse bins than colours asked for: seed the rest on the
        # exact colours and start the exact level from scratch.
        extra = _seed(_pad(X), w, k, "k-means++", random_state)[coarse_k:]
        centers = np.concatenate([centers, extra])
        finer = [(X, w)]
    else:
        finer = [(m, wt) for m, wt, _ in binned[1:]] + [(X, w)]
    parent_of = [b for _, _, b in binned]
    for level, (points, point_weights) in enumerate(finer, start=1):
        guess = None
        if coarse_k == k:
            # A point's bin at the previous level: its parent holds the label.
            guess = labels[_parent_bins(parent_of, level)].astype(np.int32)
        level_iter = min(max_iter, max(_LEVEL_MIN_ITER, _LEVEL_WORK // len(points)))
        centers, labels, inertia, n_iter = _lloyd(points, point_weights, centers, level_iter, tol_abs, guess=guess, min_iter=_FINE_MIN_ITER)
        total_iter += n_iter
    return np.ascontiguousarray(centers[:, :n_features]), labels, inertia, total_iter


def _coarse_levels(keys, counts, w, points, levels, k):
    """The coarse histograms fit_colors seeds and iterates on, coarsest
    first: [(means (B, D) float64, weights (B,), bin_of_color (M,))],
    binned on ``keys`` (M, C) uint8 (the colours, or their levels on a
    space's lightness scale); the means are of ``points`` when given."""
    n_channels = keys.shape[1]
    binned = []
    finer_size = len(keys)
    for bits in reversed(levels):
        if (1 << (bits * n_channels)) > 16 * finer_size:
            # Its table would dwarf the points: the level cannot be much
            # smaller than the next one, and building it costs a table scan.
            continue
        level = coarse_histogram(keys, counts, bits)
        if points is not None:
            level = (_bin_means(points, w, level[2], level[1]), level[1], level[2])
        if len(level[0]) <= _LEVEL_MAX_FRACTION * finer_size:
            binned.insert(0, level)
            finer_size = len(level[0])
    # Seeding needs room: with few bins per centre, a heavy bin that the
    # exact colours would split between centres holds one centre only, and
    # Lloyd on the exact colours does not climb out (kodim20 at K=256 on
    # 2046 5-bit bins: 15 % worse than starting on 7645 6-bit bins).
    while binned and len(binned[0][0]) < _MIN_BINS_PER_CENTER * k:
        binned.pop(0)
    return binned


def _too_concentrated(level, k: int) -> bool:
    """Whether a coarse level's weights are as spread as fewer than
    _MIN_EFFECTIVE_BINS_PER_CENTER x k even bins (see fit_colors)."""
    return _effective_bins(level[1]) < _MIN_EFFECTIVE_BINS_PER_CENTER * k


def _effective_bins(weights: np.ndarray) -> float:
    """exp(entropy) of the bins' weight shares (B,): B for even bins, 1
    when one bin holds everything."""
    share = weights[weights > 0] / weights.sum()
    return float(np.exp(-(share * np.log(share)).sum()))


def _bin_means(points, weights, bin_of_color, bin_weights):
    """Count-weighted mean point of each coarse bin: points (M, D) float64,
    weights (M,), bin_of_color (M,) -> (B, D) float64."""
    sums = np.zeros((len(bin_weights), points.shape[1]))
    _histogram.sum_points_by_bin(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(weights, dtype=np.float64),
        np.ascontiguousarray(bin_of_color, dtype=np.int64),
        sums,
    )
    return sums / bin_weights[:, None]


def fit_colors_exact(X, w, k, random_state, n_init, max_iter, tol, init="k-means++"):
    """Plain weighted k-means on the given points (no coarse levels)."""
    estimator = KMeans(k, init=init, n_init=n_init, max_iter=max_iter, tol=tol, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, sample_weight=w)
    return estimator.cluster_centers_, estimator.labels_, estimator.inertia_, estimator.n_iter_


def _parent_bins(bin_of_color, level):
    """Row of level ``level - 1`` holding each point of level ``level``
    (level len(bin_of_color) is the exact colours)."""
    previous = bin_of_color[level - 1]
    if level == len(bin_of_color):
        return previous
    # Points of this level are its bins; map one colour of each bin up.
    current = bin_of_color[level]
    first_color = np.empty(current.max() + 1, dtype=np.int64)
    first_color[current] = np.arange(len(current))
    return previous[first_color]


def _absolute_tol(X, w, tol, n_features=None):
    """``tol`` times the mean per-feature weighted variance of X (M, D)
    float64, over its first ``n_features`` columns (default all)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n_features = X.shape[1] if n_features is None else n_features
    total = w.sum()
    # One compiled pass (numpy's sums, not BLAS's w @ X, would give the
    # same bits on every processor too, but through three fresh (M, D)
    # arrays: 0.05-0.16 s for a million colours, most of it faulting in
    # their pages).
    if n_features <= 4:
        sums, squares = np.empty(n_features), np.empty(n_features)
        _kmeans.weighted_moments(X, np.ascontiguousarray(w, dtype=np.float64), n_features, sums, squares)
    else:  # the estimator's wider data (colours have at most 4 features)
        Xt = np.ascontiguousarray(X[:, :n_features].T)
        weighted = Xt * w
        sums, squares = weighted.sum(axis=1), (weighted * Xt).sum(axis=1)
    mean = sums / total
    variance = squares / total - mean * mean
    return float(np.mean(np.maximum(variance, 0.0))) * tol


def _seed(X, w, k, init, rng):
    """Initial centres (k, D): k-means++ or k weighted random points."""
    return _seed_plan(X, w, k, init, rng)()


def _seed_plan(X, w, k, init, rng):
    """:func:`_seed` in two steps: the random draws now, the computation in
    the function returned, ``() -> centers``."""
    if init == "k-means++":
        compute = _plusplus_plan(np.ascontiguousarray(X, dtype=np.float64), w, k, rng)
        return lambda: compute()[0]
    nonzero = np.flatnonzero(w > 0)
    take = min(k, len(nonzero))
    chosen = rng.choice(nonzero, size=take, replace=False, p=w[nonzero] / w[nonzero].sum())
    if take < k:  # fewer weighted points than clusters
        rest = np.setdiff1d(np.arange(len(w)), chosen)[: k - take]
        chosen = np.concatenate([chosen, rest])
    return lambda: X[chosen].copy()
