"""Compiled loops of the k-means engine (Numba).

Everything here works on float64 points ``X`` of shape (M, D) — for images
the distinct colours, D = channels — with weights ``w`` (M,) (their pixel
counts) and centres (K, D). The Python layers (``_kmeans.py``,
``_histogram.py``, ``_remap.py``) validate, allocate, split work over
threads and orchestrate; these functions only loop. Output arrays are passed
in and named ``*_out`` (``*_inout`` when they are read too).

Why the kernels look like this:

* ``cache=True``: compiled machine code is kept next to this file, so only
  the first run after installing pays for compilation.
* No ``parallel=True``: Numba's parallel backend multiplies compile time
  (seconds per function) for a gain we get anyway by running ``nogil``
  kernels on disjoint ranges of points from a few Python threads.
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
* Nearest-palette searches run in exact integer arithmetic (uint8 colours,
  uint8 palette), so ties are resolved exactly (lowest index).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "assign_labels",
    "pack_rgb",
    "count_dense",
    "count_keys_hashed",
    "dense_entries",
    "gather",
    "number_bins",
    "sum_bins",
    "kmeans_plusplus_seeds",
    "hamerly_init",
    "hamerly_pass",
    "moved_distance",
    "weighted_sse",
    "update_centers",
    "center_geometry",
    "nearest_palette_sorted",
    "relocate_empty",
]


@njit(cache=True, nogil=True, inline="always")
def _dist2(X, i, centers, j):
    """|X[i] - centers[j]|^2. Four columns (the orchestration pads colours
    with zero columns) take an unrolled path, 2-5x faster than the loop."""
    if X.shape[1] == 4:
        t0 = X[i, 0] - centers[j, 0]
        t1 = X[i, 1] - centers[j, 1]
        t2 = X[i, 2] - centers[j, 2]
        t3 = X[i, 3] - centers[j, 3]
        return (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
    d = 0.0
    for c in range(X.shape[1]):
        t = X[i, c] - centers[j, c]
        d += t * t
    return d


@njit(cache=True, nogil=True, inline="always")
def _accumulate(sums, weights, j, X, i, wi):
    """sums[j] += wi * X[i]; weights[j] += wi (unrolled for four columns)."""
    weights[j] += wi
    if X.shape[1] == 4:
        sums[j, 0] += wi * X[i, 0]
        sums[j, 1] += wi * X[i, 1]
        sums[j, 2] += wi * X[i, 2]
        sums[j, 3] += wi * X[i, 3]
    else:
        for c in range(X.shape[1]):
            sums[j, c] += wi * X[i, c]


@njit(cache=True, nogil=True)
def assign_labels(X, centers, labels_out, dist2_out):
    """Nearest centre of every point, by brute force.

    X (M, D) float64, centers (K, D) float64 -> labels_out (M,) int32 and
    dist2_out (M,) float64 (squared Euclidean distance to that centre).
    Ties go to the lowest centre index.
    """
    n_points, n_dims = X.shape
    n_centers = centers.shape[0]
    for i in range(n_points):
        best = np.inf
        best_j = 0
        for j in range(n_centers):
            d = _dist2(X, i, centers, j)
            if d < best:
                best = d
                best_j = j
        labels_out[i] = best_j
        dist2_out[i] = best


# -- histogram ----------------------------------------------------------------


@njit(cache=True, nogil=True)
def pack_rgb(pixels, keys_out):
    """keys_out[i] = pixels[i, 0] << 16 | pixels[i, 1] << 8 | pixels[i, 2];
    pixels (N, 3) uint8, keys_out (N,) uint32. One pass, no temporaries."""
    for i in range(pixels.shape[0]):
        keys_out[i] = (np.uint32(pixels[i, 0]) << np.uint32(16)) | (np.uint32(pixels[i, 1]) << np.uint32(8)) | np.uint32(pixels[i, 2])


@njit(cache=True, nogil=True)
def count_dense(keys, counts_inout):
    """counts_inout[key] += 1 for every key; counts_inout (T,) int32 zeroed,
    T > max(keys). For many pixels: the distinct keys are then the nonzero
    entries, already in order."""
    for i in range(keys.shape[0]):
        counts_inout[keys[i]] += 1


@njit(cache=True, nogil=True)
def dense_entries(table, channels):
    """The distinct keys counted by :func:`count_dense`, in key order.

    table (T,) int32 of counts; channels: C, the bytes of a key.
    Returns keys (M,) uint32, counts (M,) int64 and colours (M, C) uint8
    (the keys unpacked, channel 0 in the most significant byte). Two passes
    over the table, four times faster than numpy's flatnonzero and gathers
    on a 2**24 table.
    """
    n = 0
    for t in range(table.shape[0]):
        if table[t] != 0:
            n += 1
    keys = np.empty(n, dtype=np.uint32)
    counts = np.empty(n, dtype=np.int64)
    colors = np.empty((n, channels), dtype=np.uint8)
    j = 0
    for t in range(table.shape[0]):
        v = table[t]
        if v != 0:
            keys[j] = t
            counts[j] = v
            for c in range(channels):
                colors[j, c] = (t >> (8 * (channels - 1 - c))) & 0xFF
            j += 1
    return keys, counts, colors


@njit(cache=True, nogil=True)
def count_keys_hashed(keys, slot_keys, slot_index, shift, distinct_out, counts_out):
    """Distinct values of ``keys`` and how often each occurs, in one pass
    through an open-addressing hash table: for images with few pixels a
    table of ~2N slots stays in cache, where a 2**24-entry one would fault
    in thousands of pages (see :func:`count_dense` for many pixels).

    Parameters
    ----------
    keys : (N,) uint32, all < 0xFFFFFFFF
    slot_keys : (S,) uint32 filled with 0xFFFFFFFF; slot_index : (S,) int32
        S = 2**(32 - shift) >= 2 N. Multiplicative hashing (Knuth), linear
        probing.
    distinct_out : (N,) uint32, OUT — distinct keys in order of first
        occurrence, in ``distinct_out[:m]``.
    counts_out : (N,) int64, zero on entry, OUT — ``counts_out[:m]``.

    Returns
    -------
    m : int — number of distinct keys.
    """
    mask = slot_keys.shape[0] - 1
    m = 0
    for i in range(keys.shape[0]):
        key = keys[i]
        h = ((np.uint64(key) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(shift)
        s = np.int64(h)
        while True:
            k = slot_keys[s]
            if k == key:
                counts_out[slot_index[s]] += 1
                break
            if k == np.uint32(0xFFFFFFFF):
                slot_keys[s] = key
                slot_index[s] = m
                distinct_out[m] = key
                counts_out[m] += 1
                m += 1
                break
            s = (s + 1) & mask
    return m


@njit(cache=True, nogil=True)
def gather(table, keys, out):
    """``out[i] = table[keys[i]]`` (a numpy fancy index without the temporary)."""
    for i in range(keys.shape[0]):
        out[i] = table[keys[i]]


@njit(cache=True, nogil=True)
def number_bins(colors, bits, table_inout):
    """Mark the bins of ``bits`` bits per channel that hold a colour and
    number them in key order.

    colors (M, C) uint8; table_inout (2**(bits * C),) int32, zeroed: on
    return, the entry of each occupied bin holds its row. Returns the number
    of occupied bins.
    """
    shift = 8 - bits
    for i in range(colors.shape[0]):
        key = 0
        for c in range(colors.shape[1]):
            key = (key << bits) | (np.int64(colors[i, c]) >> shift)
        table_inout[key] = 1
    n_bins = 0
    for t in range(table_inout.shape[0]):
        if table_inout[t] != 0:
            table_inout[t] = n_bins
            n_bins += 1
    return n_bins


@njit(cache=True, nogil=True)
def sum_bins(colors, counts, bits, table, bin_of_color_out, sums_out, weights_out):
    """Row of each colour's bin (from :func:`number_bins`) and, per bin, the
    pixel count and the count-weighted sum of its colours.

    colors (M, C) uint8; counts (M,) int64; table as left by
    :func:`number_bins` -> bin_of_color_out (M,) int64; sums_out (B, C)
    float64 and weights_out (B,) float64, zeroed. Sums of integers: exact.
    """
    shift = 8 - bits
    for i in range(colors.shape[0]):
        key = 0
        for c in range(colors.shape[1]):
            key = (key << bits) | (np.int64(colors[i, c]) >> shift)
        b = table[key]
        bin_of_color_out[i] = b
        w = np.float64(counts[i])
        weights_out[b] += w
        for c in range(colors.shape[1]):
            sums_out[b, c] += w * np.float64(colors[i, c])


# -- k-means++ ----------------------------------------------------------------


@njit(cache=True, nogil=True)
def kmeans_plusplus_seeds(X, w, first, uniforms, indices_out):
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
    n_points, n_dims = X.shape
    n_centers = indices_out.shape[0]
    n_trials = uniforms.shape[1]
    closest = np.empty(n_points)
    cumulative = np.empty(n_points)
    candidates = np.empty(n_trials, dtype=np.int64)
    used = np.zeros(n_points, dtype=np.bool_)
    indices_out[0] = first
    used[first] = True
    potential = 0.0
    for i in range(n_points):
        d = _dist2(X, i, X, first)
        closest[i] = d
        potential += w[i] * d
    for k in range(1, n_centers):
        if potential <= 0.0:
            nxt = 0
            for kk in range(k, n_centers):
                while used[nxt]:
                    nxt += 1
                indices_out[kk] = nxt
                used[nxt] = True
            return
        total = 0.0
        for i in range(n_points):
            total += w[i] * closest[i]
            cumulative[i] = total
        best_t = 0
        best_potential = np.inf
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
                d = _dist2(X, i, X, lo)
                if d > closest[i]:
                    d = closest[i]
                p += w[i] * d
            if p < best_potential:
                best_potential = p
                best_t = t
        chosen = candidates[best_t]
        indices_out[k] = chosen
        used[chosen] = True
        # Recomputing the winner's distances costs one pass; keeping every
        # trial's would cost T arrays of M.
        for i in range(n_points):
            d = _dist2(X, i, X, chosen)
            if d < closest[i]:
                closest[i] = d
        potential = best_potential


# -- Lloyd with Hamerly bounds and sorted neighbours ---------------------------


@njit(cache=True, nogil=True)
def weighted_sse(X, w, centers, labels):
    """sum_i w[i] * |X[i] - centers[labels[i]]|^2 (the inertia), float64."""
    total = 0.0
    for i in range(X.shape[0]):
        total += w[i] * _dist2(X, i, centers, labels[i])
    return total


@njit(cache=True, nogil=True)
def update_centers(sums, weights, centers_inout, drift_out):
    """Move each non-empty centre to the weighted mean of its points.

    sums (K, D), weights (K,) from an assignment pass; centers_inout (K, D);
    drift_out (K,) — distance each centre moved (0 for empty clusters, which
    keep their place). Returns (squared movement summed over centres,
    number of empty clusters).
    """
    n_centers, n_dims = centers_inout.shape
    shift = 0.0
    n_empty = 0
    for j in range(n_centers):
        if weights[j] > 0:
            d = 0.0
            for c in range(n_dims):
                new = sums[j, c] / weights[j]
                t = new - centers_inout[j, c]
                d += t * t
                centers_inout[j, c] = new
            drift_out[j] = math.sqrt(d)
            shift += d
        else:
            drift_out[j] = 0.0
            n_empty += 1
    return shift, n_empty


@njit(cache=True, nogil=True)
def center_geometry(centers, dist_out, order_out, half_sep_out):
    """Distances between centres, each centre's neighbours sorted, and half
    the distance to the nearest other centre.

    centers (K, D) float64 -> dist_out (K, K) float64 (Euclidean),
    order_out (K, K) int32, in/out (row j: all centres by increasing
    distance from j, j itself first; a row that is not a permutation on
    entry is reset), half_sep_out (K,) float64.
    """
    n_centers, n_dims = centers.shape
    for a in range(n_centers):
        dist_out[a, a] = 0.0
        for b in range(a + 1, n_centers):
            d = 0.0
            for c in range(n_dims):
                t = centers[a, c] - centers[b, c]
                d += t * t
            d = math.sqrt(d)
            dist_out[a, b] = d
            dist_out[b, a] = d
    seen = np.zeros(n_centers, dtype=np.bool_)
    for a in range(n_centers):
        # Sort the row starting from the previous order, which the caller
        # keeps between iterations, when it hardly changes: one insertion
        # pass is then O(K); a row that is not a permutation (first call)
        # is reset and shell-sorted. Quick to compile, unlike argsort.
        row = order_out[a]
        valid = True
        for r in range(n_centers):
            seen[r] = False
        for r in range(n_centers):
            b = row[r]
            if b < 0 or b >= n_centers or seen[b]:
                valid = False
                break
            seen[b] = True
        if valid:
            gap = 1
        else:
            for r in range(n_centers):
                row[r] = r
            gap = n_centers // 2
        while gap > 0:
            for r in range(gap, n_centers):
                b = row[r]
                key = dist_out[a, b]
                q = r
                while q >= gap and dist_out[a, row[q - gap]] > key:
                    row[q] = row[q - gap]
                    q -= gap
                row[q] = b
            gap = 0 if gap == 1 else (1 if gap == 2 else (gap * 5) // 11)
        # a itself first, even when another centre coincides with it.
        q = 0
        while row[q] != a:
            q += 1
        while q > 0:
            row[q] = row[q - 1]
            q -= 1
        row[0] = a
        nearest = np.inf
        for b in range(n_centers):
            if b != a and dist_out[a, b] < nearest:
                nearest = dist_out[a, b]
        half_sep_out[a] = 0.5 * nearest


@njit(cache=True, nogil=True)
def _scan(X, i, centers, a, u2, dist, order):
    """Exact nearest centre of point i and the distance to the second
    nearest, visiting a's neighbours nearest first.

    u2 is the squared distance from point i to centre a. A centre c can only
    be nearer than the second best found so far when
    d(a, c) - d(x, a) <= second, and the neighbours come in increasing
    d(a, c), so the scan stops at the first one past that.
    Returns (best, best_dist2, second_distance).
    """
    n_centers = centers.shape[0]
    u = math.sqrt(u2)
    best = a
    best2 = u2
    second2 = np.inf
    second = np.inf
    for r in range(1, n_centers):
        c = order[a, r]
        if dist[a, c] - u > second:
            break
        d2 = _dist2(X, i, centers, c)
        if d2 < best2 or (d2 == best2 and c < best):
            second2 = best2
            best = c
            best2 = d2
        elif d2 < second2:
            second2 = d2
        else:
            continue
        second = math.sqrt(second2)
    return best, best2, second


@njit(cache=True, nogil=True)
def _scan_all(X, i, centers):
    """Brute-force nearest and second-nearest distance of point i."""
    best = 0
    best2 = np.inf
    second2 = np.inf
    for c in range(centers.shape[0]):
        d2 = _dist2(X, i, centers, c)
        if d2 < best2:
            second2 = best2
            best2 = d2
            best = c
        elif d2 < second2:
            second2 = d2
    return best, best2, math.sqrt(second2)


@njit(cache=True, nogil=True)
def hamerly_init(X, w, centers, dist, order, guess, start, stop, labels_out, upper_out, lower_out, sums_out, weights_out):
    """First assignment of points ``start:stop`` with exact bounds.

    guess (M,) int32: a likely nearest centre per point (the search starts
    there), or -1 for a brute-force search over all centres. Fills labels,
    upper (distance to the own centre) and lower (distance to the second
    nearest) for the range and adds the weighted coordinate sums (K, D) and
    weights (K,) of the range to ``sums_out``/``weights_out``.
    """
    for i in range(start, stop):
        g = guess[i]
        if g < 0:
            best, best2, second = _scan_all(X, i, centers)
        else:
            best, best2, second = _scan(X, i, centers, g, _dist2(X, i, centers, g), dist, order)
        labels_out[i] = best
        upper_out[i] = math.sqrt(best2)
        lower_out[i] = second
        _accumulate(sums_out, weights_out, best, X, i, w[i])


@njit(cache=True, nogil=True)
def hamerly_pass(
    X, w, centers, dist, order, half_sep, drift_total, lower_drift_total, slack, sorted_search, start, stop,
    labels_inout, upper_inout, lower_inout, sums_out, weights_out,
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
    changed = 0
    for i in range(start, stop):
        a = labels_inout[i]
        u = upper_inout[i] + drift_total[a] + slack
        m = max(half_sep[a], lower_inout[i] - lower_drift_total - slack)
        if u < m:
            continue
        u2 = _dist2(X, i, centers, a)
        u = math.sqrt(u2)
        if u + slack < m:
            upper_inout[i] = u - drift_total[a]
            continue
        if sorted_search:
            best, best2, second = _scan(X, i, centers, a, u2, dist, order)
        else:
            best, best2, second = _scan_all(X, i, centers)
        if best != a:
            changed += 1
            labels_inout[i] = best
            _accumulate(sums_out, weights_out, a, X, i, -w[i])
            _accumulate(sums_out, weights_out, best, X, i, w[i])
        upper_inout[i] = math.sqrt(best2) - drift_total[best]
        lower_inout[i] = second + lower_drift_total
    return changed


@njit(cache=True, nogil=True)
def moved_distance(previous, centers, drift_out):
    """drift_out[j] = |centers[j] - previous[j]|; returns the sum of squares."""
    shift = 0.0
    for j in range(centers.shape[0]):
        d = 0.0
        for c in range(centers.shape[1]):
            t = centers[j, c] - previous[j, c]
            d += t * t
        drift_out[j] = math.sqrt(d)
        shift += d
    return shift


# -- mapping colours to a palette -----------------------------------------------


@njit(cache=True, nogil=True)
def nearest_palette_sorted(colors, palette, guess, pal_dist2, order, start, stop, labels_out, dist2_out):
    """Exact nearest palette entry of colours ``start:stop``, integer arithmetic.

    Parameters
    ----------
    colors : (M, C) uint8; palette : (K, C) uint8
    guess : (M,) int32 — where each search starts (any valid index).
    pal_dist2 : (K, K) int64 — squared distances between palette entries.
    order : (K, K) int32 — each entry's neighbours nearest first, itself
        first (see :func:`center_geometry`).
    labels_out : (M,) int32, OUT; dist2_out : (M,) int64, OUT.

    Sort-means stopping rule in squared integers: a neighbour c of the start
    g with |g - c|^2 > 4 |x - g|^2 is strictly farther from x than g, hence
    so are all later ones. Ties go to the lowest index.
    """
    n_centers, n_dims = palette.shape
    for i in range(start, stop):
        g = guess[i]
        dg = 0
        for c in range(n_dims):
            t = np.int64(colors[i, c]) - np.int64(palette[g, c])
            dg += t * t
        best = g
        best2 = dg
        limit = 4 * dg
        for r in range(1, n_centers):
            j = order[g, r]
            if pal_dist2[g, j] > limit:
                break
            d = 0
            for c in range(n_dims):
                t = np.int64(colors[i, c]) - np.int64(palette[j, c])
                d += t * t
            if d < best2 or (d == best2 and j < best):
                best = j
                best2 = d
        labels_out[i] = best
        dist2_out[i] = best2


@njit(cache=True, nogil=True)
def relocate_empty(X, w, labels, previous_centers, weights, centers_inout):
    """Move each empty cluster onto one of the points farthest (weighted)
    from their centres, so that no palette entry is wasted.

    The cost of a point is ``w * |x - previous centre|^2`` for the labels of
    the last assignment; empty clusters (``weights == 0``), in index order,
    take the points by decreasing cost (ties: lower index first).
    """
    n_points = X.shape[0]
    cost = np.empty(n_points)
    for i in range(n_points):
        cost[i] = w[i] * _dist2(X, i, previous_centers, labels[i])
    # Empty clusters are few: one scan for the largest remaining cost each
    # (first index on ties) beats sorting, and compiles faster.
    for j in range(weights.shape[0]):
        if weights[j] != 0:
            continue
        best = -1
        best_cost = 0.0
        for i in range(n_points):
            if cost[i] > best_cost:
                best_cost = cost[i]
                best = i
        if best < 0:
            break
        cost[best] = 0.0
        for c in range(X.shape[1]):
            centers_inout[j, c] = X[best, c]
