# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of weighted k-means (driven by ``kmeans.py``).

Everything here works on float64 points ``X`` of shape (M, D) — for images
the distinct colours, D = channels, padded with zero columns to four by the
caller — with weights ``w`` (M,) (their pixel counts) and centres (K, D).
The Python layer validates, allocates, splits work over threads and
orchestrates; these functions only loop, without the GIL. Output arrays are
passed in and named ``*_out`` (``*_inout`` when they are read too).

Why the loops look like this:

* Lloyd iterations use Hamerly's bounds (Hamerly 2010) — one upper bound on
  the distance to the own centre, one lower bound on the distance to every
  other centre — so that most points cost O(1) per iteration once the
  centres settle; the points whose bounds fail are searched in order of
  their centre's neighbours, nearest first (Celebi's sort-means, Celebi
  2009), and the search stops as soon as no unvisited centre can be nearer.
  Both only skip work: the labels are exactly Lloyd's. The bounds are kept
  relative to the centres' total movement and the cluster sums are updated
  with the points that change cluster only, so a point whose bounds hold
  is two reads and no write (see :func:`hamerly_pass`).
* Four columns take an unrolled distance, 2-5x faster than the loop, and
  its summation order, ``(t0² + t1²) + (t2² + t3²)``, is part of the
  engine's results: the same seed gives the same bytes on every build.
"""

import numpy as np

from libc.math cimport INFINITY, sqrt
from libc.stdint cimport int32_t, int64_t


cdef inline double _dist2(const double* a, const double* b, Py_ssize_t d) noexcept nogil:
    """|a - b|^2 over d coordinates."""
    cdef double t0, t1, t2, t3, s
    cdef Py_ssize_t c
    if d == 4:
        t0 = a[0] - b[0]
        t1 = a[1] - b[1]
        t2 = a[2] - b[2]
        t3 = a[3] - b[3]
        return (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
    s = 0.0
    for c in range(d):
        t0 = a[c] - b[c]
        s += t0 * t0
    return s


cdef inline void _accumulate(double* sums, double* weights, Py_ssize_t j, const double* x, double wi, Py_ssize_t d) noexcept nogil:
    """sums[j] += wi * x; weights[j] += wi."""
    cdef double* row = sums + j * d
    cdef Py_ssize_t c
    weights[j] += wi
    if d == 4:
        row[0] += wi * x[0]
        row[1] += wi * x[1]
        row[2] += wi * x[2]
        row[3] += wi * x[3]
    else:
        for c in range(d):
            row[c] += wi * x[c]


def assign_labels(const double[:, ::1] X, const double[:, ::1] centers, int32_t[::1] labels_out, double[::1] dist2_out):
    """Nearest centre of every point, by brute force.

    X (M, D) float64, centers (K, D) float64 -> labels_out (M,) int32 and
    dist2_out (M,) float64 (squared Euclidean distance to that centre).
    Ties go to the lowest centre index.
    """
    cdef Py_ssize_t i, j, n_points = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef double best, dd
    cdef int32_t best_j
    if n_points == 0:
        return
    cdef const double* xp = &X[0, 0]
    cdef const double* cp = &centers[0, 0]
    with nogil:
        for i in range(n_points):
            best = INFINITY
            best_j = 0
            for j in range(k):
                dd = _dist2(xp + i * d, cp + j * d, d)
                if dd < best:
                    best = dd
                    best_j = <int32_t>j
            labels_out[i] = best_j
            dist2_out[i] = best


# -- k-means++ ----------------------------------------------------------------


def kmeans_plusplus_seeds(const double[:, ::1] X, const double[::1] w, Py_ssize_t first, const double[:, ::1] uniforms, int64_t[::1] indices_out):
    """Greedy weighted k-means++ (Arthur & Vassilvitskii 2007, greedy variant).

    Centre 0 is ``X[first]``. Centre c >= 1 is the best of T candidates drawn
    with probability proportional to ``w * D^2`` (D: distance to the nearest
    centre so far) by inverse transform of ``uniforms[c - 1]``; "best" is the
    candidate that leaves the smallest weighted potential.

    Parameters
    ----------
    X : (M, D) float64; w : (M,) float64, non-negative
    first : int, index of the first centre
    uniforms : (K - 1, T) float64 in [0, 1)
    indices_out : (K,) int64, OUT — rows of X chosen as centres; when the
        potential reaches 0 (fewer distinct weighted points than K) the
        rest are the unused rows in order.
    """
    cdef Py_ssize_t n_points = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t n_centers = indices_out.shape[0], n_trials = uniforms.shape[1]
    closest_a = np.empty(n_points)
    cumulative_a = np.empty(n_points)
    candidates_a = np.empty(max(n_trials, 1), dtype=np.int64)
    used_a = np.zeros(n_points, dtype=np.uint8)
    cdef double[::1] closest = closest_a
    cdef double[::1] cumulative = cumulative_a
    cdef int64_t[::1] candidates = candidates_a
    cdef unsigned char[::1] used = used_a
    cdef const double* xp = &X[0, 0]
    cdef Py_ssize_t i, k, kk, t, lo, hi, mid, nxt, best_t, chosen
    cdef double potential, total, target, p, dd, best_potential
    with nogil:
        indices_out[0] = first
        used[first] = 1
        potential = 0.0
        for i in range(n_points):
            dd = _dist2(xp + i * d, xp + first * d, d)
            closest[i] = dd
            potential += w[i] * dd
        for k in range(1, n_centers):
            if potential <= 0.0:
                nxt = 0
                for kk in range(k, n_centers):
                    while used[nxt]:
                        nxt += 1
                    indices_out[kk] = nxt
                    used[nxt] = 1
                break
            total = 0.0
            for i in range(n_points):
                total += w[i] * closest[i]
                cumulative[i] = total
            best_t = 0
            best_potential = INFINITY
            for t in range(n_trials):
                # First index whose cumulative potential exceeds the draw.
                target = uniforms[k - 1, t] * total
                lo = 0
                hi = n_points - 1
                while lo < hi:
                    mid = (lo + hi) // 2
                    if cumulative[mid] <= target:
                        lo = mid + 1
                    else:
                        hi = mid
                candidates[t] = lo
                p = 0.0
                for i in range(n_points):
                    dd = _dist2(xp + i * d, xp + lo * d, d)
                    if dd > closest[i]:
                        dd = closest[i]
                    p += w[i] * dd
                if p < best_potential:
                    best_potential = p
                    best_t = t
            chosen = candidates[best_t]
            indices_out[k] = chosen
            used[chosen] = 1
            # Recomputing the winner's distances costs one pass; keeping every
            # trial's would cost T arrays of M.
            for i in range(n_points):
                dd = _dist2(xp + i * d, xp + chosen * d, d)
                if dd < closest[i]:
                    closest[i] = dd
            potential = best_potential


# -- Lloyd with Hamerly bounds and sorted neighbours ---------------------------


def weighted_sse(const double[:, ::1] X, const double[::1] w, const double[:, ::1] centers, const int32_t[::1] labels):
    """sum_i w[i] * |X[i] - centers[labels[i]]|^2 (the inertia), float64."""
    cdef Py_ssize_t i, n = X.shape[0], d = X.shape[1]
    cdef double total = 0.0
    if n == 0:
        return 0.0
    cdef const double* xp = &X[0, 0]
    cdef const double* cp = &centers[0, 0]
    with nogil:
        for i in range(n):
            total += w[i] * _dist2(xp + i * d, cp + labels[i] * d, d)
    return total


def weighted_moments(const double[:, ::1] X, const double[::1] w, Py_ssize_t n_features, double[::1] sums_out, double[::1] squares_out):
    """sums_out[c] = sum_i w[i] X[i, c], squares_out[c] = sum_i w[i] X[i, c]^2
    for c < n_features: X (M, D) float64, D >= n_features <= 4 (a padded
    array's real columns), w (M,). One pass in index order, no temporaries
    (three (M, D) arrays in numpy, each a fresh allocation)."""
    cdef Py_ssize_t i, c, n = X.shape[0]
    cdef double s[4]
    cdef double q[4]
    cdef double v, wi
    if n_features < 1 or n_features > 4 or n_features > X.shape[1]:
        raise ValueError("1 to 4 features, at most X's columns")
    for c in range(4):
        s[c] = 0.0
        q[c] = 0.0
    with nogil:
        for i in range(n):
            wi = w[i]
            for c in range(n_features):
                v = wi * X[i, c]
                s[c] += v
                q[c] += v * X[i, c]
    for c in range(n_features):
        sums_out[c] = s[c]
        squares_out[c] = q[c]


def update_centers(const double[:, ::1] sums, const double[::1] weights, double[:, ::1] centers_inout, double[::1] drift_out):
    """Move each non-empty centre to the weighted mean of its points.

    sums (K, D), weights (K,) from an assignment pass; centers_inout (K, D);
    drift_out (K,) — distance each centre moved (0 for empty clusters, which
    keep their place). Returns (squared movement summed over centres,
    number of empty clusters).
    """
    cdef Py_ssize_t j, c, k = centers_inout.shape[0], d = centers_inout.shape[1]
    cdef double shift = 0.0, dd, new, t
    cdef Py_ssize_t n_empty = 0
    with nogil:
        for j in range(k):
            if weights[j] > 0:
                dd = 0.0
                for c in range(d):
                    new = sums[j, c] / weights[j]
                    t = new - centers_inout[j, c]
                    dd += t * t
                    centers_inout[j, c] = new
                drift_out[j] = sqrt(dd)
                shift += dd
            else:
                drift_out[j] = 0.0
                n_empty += 1
    return shift, n_empty


def center_geometry(const double[:, ::1] centers, double[:, ::1] dist_out, int32_t[:, ::1] order_out, double[::1] half_sep_out):
    """Distances between centres, each centre's neighbours sorted, and half
    the distance to the nearest other centre.

    centers (K, D) float64 -> dist_out (K, K) float64 (Euclidean),
    order_out (K, K) int32, in/out (row j: all centres by increasing
    distance from j, j itself first; a row that is not a permutation on
    entry is reset), half_sep_out (K,) float64.
    """
    cdef Py_ssize_t n = centers.shape[0], d = centers.shape[1]
    seen_a = np.zeros(n, dtype=np.uint8)
    cdef unsigned char[::1] seen = seen_a
    cdef Py_ssize_t a, b, c, r, q, gap
    cdef int32_t bb
    cdef double dd, t, key, nearest
    cdef bint valid
    with nogil:
        for a in range(n):
            dist_out[a, a] = 0.0
            for b in range(a + 1, n):
                dd = 0.0
                for c in range(d):
                    t = centers[a, c] - centers[b, c]
                    dd += t * t
                dd = sqrt(dd)
                dist_out[a, b] = dd
                dist_out[b, a] = dd
        for a in range(n):
            # Sort the row starting from the previous order, which the caller
            # keeps between iterations, when it hardly changes: one insertion
            # pass is then O(K); a row that is not a permutation (first call)
            # is reset and shell-sorted.
            valid = True
            for r in range(n):
                seen[r] = 0
            for r in range(n):
                bb = order_out[a, r]
                if bb < 0 or bb >= n or seen[bb]:
                    valid = False
                    break
                seen[bb] = 1
            if valid:
                gap = 1
            else:
                for r in range(n):
                    order_out[a, r] = <int32_t>r
                gap = n // 2
            while gap > 0:
                for r in range(gap, n):
                    bb = order_out[a, r]
                    key = dist_out[a, bb]
                    q = r
                    while q >= gap and dist_out[a, order_out[a, q - gap]] > key:
                        order_out[a, q] = order_out[a, q - gap]
                        q -= gap
                    order_out[a, q] = bb
                if gap == 1:
                    gap = 0
                elif gap == 2:
                    gap = 1
                else:
                    gap = (gap * 5) // 11
            # a itself first, even when another centre coincides with it.
            q = 0
            while order_out[a, q] != a:
                q += 1
            while q > 0:
                order_out[a, q] = order_out[a, q - 1]
                q -= 1
            order_out[a, 0] = <int32_t>a
            nearest = INFINITY
            for b in range(n):
                if b != a and dist_out[a, b] < nearest:
                    nearest = dist_out[a, b]
            half_sep_out[a] = 0.5 * nearest


cdef inline Py_ssize_t _scan(
    const double* x, const double* cp, Py_ssize_t d, Py_ssize_t k, Py_ssize_t a, double u2,
    const double* dist, const int32_t* order, double* best2_out, double* second_out,
) noexcept nogil:
    """Exact nearest centre of point x and the distance to the second
    nearest, visiting a's neighbours nearest first.

    u2 is the squared distance from x to centre a. A centre c can only be
    nearer than the second best found so far when d(a, c) - d(x, a) <=
    second, and the neighbours come in increasing d(a, c), so the scan stops
    at the first one past that. Returns the nearest centre.
    """
    cdef double u = sqrt(u2)
    cdef Py_ssize_t best = a, r, c
    cdef double best2 = u2, second2 = INFINITY, second = INFINITY, d2
    for r in range(1, k):
        c = order[a * k + r]
        if dist[a * k + c] - u > second:
            break
        d2 = _dist2(x, cp + c * d, d)
        if d2 < best2 or (d2 == best2 and c < best):
            second2 = best2
            best = c
            best2 = d2
        elif d2 < second2:
            second2 = d2
        else:
            continue
        second = sqrt(second2)
    best2_out[0] = best2
    second_out[0] = second
    return best


cdef inline Py_ssize_t _scan_all(const double* x, const double* cp, Py_ssize_t d, Py_ssize_t k, double* best2_out, double* second_out) noexcept nogil:
    """Brute-force nearest centre of x and the distance to the second nearest."""
    cdef Py_ssize_t best = 0, c
    cdef double best2 = INFINITY, second2 = INFINITY, d2
    for c in range(k):
        d2 = _dist2(x, cp + c * d, d)
        if d2 < best2:
            second2 = best2
            best2 = d2
            best = c
        elif d2 < second2:
            second2 = d2
    best2_out[0] = best2
    second_out[0] = sqrt(second2)
    return best


def hamerly_init(
    const double[:, ::1] X, const double[::1] w, const double[:, ::1] centers, const double[:, ::1] dist,
    const int32_t[:, ::1] order, const int32_t[::1] guess, Py_ssize_t start, Py_ssize_t stop,
    int32_t[::1] labels_out, double[::1] upper_out, double[::1] lower_out, double[:, ::1] sums_out, double[::1] weights_out,
):
    """First assignment of points ``start:stop`` with exact bounds.

    guess (M,) int32: a likely nearest centre per point (the search starts
    there), or -1 for a brute-force search over all centres. ``dist`` and
    ``order`` are those of :func:`center_geometry` (K, K), or (1, 1) when
    every guess is -1. Fills labels, upper (distance to the own centre) and
    lower (distance to the second nearest) for the range and adds the
    weighted coordinate sums (K, D) and weights (K,) of the range to
    ``sums_out``/``weights_out``.
    """
    cdef Py_ssize_t i, g, best, d = X.shape[1], k = centers.shape[0]
    cdef double best2, second
    if stop <= start:
        return
    cdef const double* xp = &X[0, 0]
    cdef const double* cp = &centers[0, 0]
    cdef const double* dp = &dist[0, 0]
    cdef const int32_t* op = &order[0, 0]
    with nogil:
        for i in range(start, stop):
            g = guess[i]
            if g < 0:
                best = _scan_all(xp + i * d, cp, d, k, &best2, &second)
            else:
                best = _scan(xp + i * d, cp, d, k, g, _dist2(xp + i * d, cp + g * d, d), dp, op, &best2, &second)
            labels_out[i] = <int32_t>best
            upper_out[i] = sqrt(best2)
            lower_out[i] = second
            _accumulate(&sums_out[0, 0], &weights_out[0], best, xp + i * d, w[i], d)


def hamerly_pass(
    const double[:, ::1] X, const double[::1] w, const double[:, ::1] centers, const double[:, ::1] dist,
    const int32_t[:, ::1] order, const double[::1] half_sep, const double[::1] drift_total, double lower_drift_total,
    double slack, bint sorted_search, Py_ssize_t start, Py_ssize_t stop,
    int32_t[::1] labels_inout, double[::1] upper_inout, double[::1] lower_inout, double[:, ::1] sums_out, double[::1] weights_out,
):
    """One Lloyd assignment of points ``start:stop`` after the centres moved.

    The bounds are stored relative to how far the centres have moved in
    total, so that a point whose bounds still hold costs two reads and no
    write (most points, once the centres settle):

    * ``drift_total`` (K,): distance each centre has moved, summed over the
      run's updates so far; a point's upper bound on the distance to its
      centre a is ``upper_inout[i] + drift_total[a]``.
    * ``lower_drift_total``: the largest drift of any centre, summed over
      the updates; a point's lower bound on the distance to every other
      centre is ``lower_inout[i] - lower_drift_total``.

    slack: a tiny distance added to every bound test so that rounding never
    makes a bound wrong. A point is searched again only when its upper bound
    reaches max(lower bound, half the gap from its centre to the nearest
    other centre); comparisons are strict, so a skipped point's centre is
    its unique nearest one.

    sorted_search: search failing points through ``order`` (needs ``dist``
    and ``order`` of all K centres) or, when False, over all centres.

    The cluster sums are kept up to date by the caller: only the points that
    change cluster are added here, with weight ``+w`` to their new cluster
    and ``-w`` to their old one, into ``sums_out`` (K, D) and
    ``weights_out`` (K,). Returns the number of points whose label changed.
    """
    cdef Py_ssize_t i, a, best, d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t changed = 0
    cdef double u, m, u2, best2, second
    if stop <= start:
        return 0
    cdef const double* xp = &X[0, 0]
    cdef const double* cp = &centers[0, 0]
    cdef const double* dp = &dist[0, 0]
    cdef const int32_t* op = &order[0, 0]
    cdef double* sp = &sums_out[0, 0]
    cdef double* wp = &weights_out[0]
    with nogil:
        for i in range(start, stop):
            a = labels_inout[i]
            u = upper_inout[i] + drift_total[a] + slack
            m = lower_inout[i] - lower_drift_total - slack
            if half_sep[a] > m:
                m = half_sep[a]
            if u < m:
                continue
            u2 = _dist2(xp + i * d, cp + a * d, d)
            u = sqrt(u2)
            if u + slack < m:
                upper_inout[i] = u - drift_total[a]
                continue
            if sorted_search:
                best = _scan(xp + i * d, cp, d, k, a, u2, dp, op, &best2, &second)
            else:
                best = _scan_all(xp + i * d, cp, d, k, &best2, &second)
            if best != a:
                changed += 1
                labels_inout[i] = <int32_t>best
                _accumulate(sp, wp, a, xp + i * d, -w[i], d)
                _accumulate(sp, wp, best, xp + i * d, w[i], d)
            upper_inout[i] = sqrt(best2) - drift_total[best]
            lower_inout[i] = second + lower_drift_total
    return changed


def deal_points(
    const double[:, ::1] X, const double[::1] w, const int32_t[::1] guess, const int32_t[::1] index,
    Py_ssize_t start, Py_ssize_t stop, double[:, ::1] X_out, double[::1] w_out, int32_t[::1] guess_out,
):
    """Rows ``start:stop`` of the points in the order ``index``, padded:
    X_out[r, :D] = X[index[r]], X_out[r, D:] = 0, w_out[r] = w[index[r]],
    guess_out[r] = guess[index[r]].

    X (M, D) float64, D <= X_out's columns (4); w (M,) float64; guess (M,)
    int32; index (M,) int32, a permutation of the rows. One pass where
    NumPy made four (the padding copy and three gathers), on ranges of rows
    that threads share.
    """
    cdef Py_ssize_t r, i, c, d = X.shape[1], d_out = X_out.shape[1], n = X.shape[0]
    if d > d_out or not (w.shape[0] == guess.shape[0] == index.shape[0] == n == X_out.shape[0] == w_out.shape[0] == guess_out.shape[0]):
        raise ValueError("deal_points: the outputs must hold the M rows of X, with at least its columns")
    if not (0 <= start <= stop <= n):
        raise ValueError("deal_points: the rows must satisfy 0 <= start <= stop <= M")
    if stop == start:
        return
    with nogil:
        for r in range(start, stop):
            i = index[r]
            for c in range(d):
                X_out[r, c] = X[i, c]
            for c in range(d, d_out):
                X_out[r, c] = 0.0
            w_out[r] = w[i]
            guess_out[r] = guess[i]


def moved_distance(const double[:, ::1] previous, const double[:, ::1] centers, double[::1] drift_out):
    """drift_out[j] = |centers[j] - previous[j]|; returns the sum of squares."""
    cdef Py_ssize_t j, c, k = centers.shape[0], d = centers.shape[1]
    cdef double shift = 0.0, dd, t
    with nogil:
        for j in range(k):
            dd = 0.0
            for c in range(d):
                t = centers[j, c] - previous[j, c]
                dd += t * t
            drift_out[j] = sqrt(dd)
            shift += dd
    return shift


def relocate_empty(
    const double[:, ::1] X, const double[::1] w, const int32_t[::1] labels, const double[:, ::1] previous_centers,
    const double[::1] weights, double[:, ::1] centers_inout,
):
    """Move each empty cluster onto one of the points farthest (weighted)
    from their centres, so that no palette entry is wasted.

    The cost of a point is ``w * |x - previous centre|^2`` for the labels of
    the last assignment; empty clusters (``weights == 0``), in index order,
    take the points by decreasing cost (ties: lower index first).
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cost_a = np.empty(n)
    cdef double[::1] cost = cost_a
    cdef Py_ssize_t i, j, c, best
    cdef double best_cost
    cdef const double* xp = &X[0, 0]
    cdef const double* pp = &previous_centers[0, 0]
    with nogil:
        for i in range(n):
            cost[i] = w[i] * _dist2(xp + i * d, pp + labels[i] * d, d)
        # Empty clusters are few: one scan for the largest remaining cost
        # each (first index on ties) beats sorting.
        for j in range(weights.shape[0]):
            if weights[j] != 0:
                continue
            best = -1
            best_cost = 0.0
            for i in range(n):
                if cost[i] > best_cost:
                    best_cost = cost[i]
                    best = i
            if best < 0:
                break
            cost[best] = 0.0
            for c in range(d):
                centers_inout[j, c] = X[best, c]
