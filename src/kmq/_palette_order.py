"""Palette order chosen for compression (applied once, after the fit).

Palette indices are labels, but their order still matters to the coders:
PNG packs 1-, 2- and 4-bit indices several to a byte, so deflate sees pairs
of neighbours, and the ``.kmq`` cm coder codes an index through a binary
tree whose upper nodes are shared by nearby indices. Measured on 8 Kodak
images quantized by kmq (total bytes against the fit's own order):

==========  =================  =================  ===============  ===============
order       cm, K=16 / 64      cm, K=256          PNG, K=16        PNG, K=64 / 256
==========  =================  =================  ===============  ===============
luminance   -0.1 % / -0.4 %    -1.1 %             -9.1 %           0.0 % / 0.0 %
co-occur.   -0.1 % / -0.6 %    -1.3 %             -11.8 %          0.0 % / -0.05 %
==========  =================  =================  ===============  ===============

so the greedy co-occurrence order is used: start from the most frequent
colour, then repeatedly append the unplaced colour that is most often a
horizontal or vertical neighbour of the last one placed. Entries that are
not fully opaque go first (ordered the same way among themselves), so a
PNG's tRNS chunk, which lists alphas up to the last non-opaque entry, is
as short as it can be. Above K = 1024 the K x K co-occurrence table is too
large and the palette is sorted by luminance instead (transparent first).
"""

from __future__ import annotations

import numpy as np

#: Largest K for the co-occurrence order (a K x K table of counts).
_COOC_MAX_K = 1024


def _luma(palette: np.ndarray) -> np.ndarray:
    if palette.shape[1] >= 3:
        return palette[:, :3].astype(np.int64) @ np.array([299, 587, 114])
    return palette[:, 0].astype(np.int64)


def _greedy_chain(members: np.ndarray, cooc: np.ndarray, freq: np.ndarray, first: int | None) -> list[int]:
    """Order `members` by greedy co-occurrence, starting next to `first`."""
    order: list[int] = []
    left = np.zeros(len(freq), bool)
    left[members] = True
    last = first
    # Ties (and colours that never touch the last one) go to the most
    # frequent, then the lowest index: the order is deterministic.
    tiebreak = freq.astype(np.float64) / (freq.sum() + 1.0)
    for _ in range(len(members)):
        score = tiebreak.copy() if last is None else cooc[last] + tiebreak
        score[~left] = -1.0
        nxt = int(np.argmax(score))
        order.append(nxt)
        left[nxt] = False
        last = nxt
    return order


def _stored(labels: np.ndarray, k: int) -> np.ndarray:
    """``labels`` as the compiled loops take them: C-contiguous uint8 or
    uint16 (a copy only when they are not already)."""
    if labels.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(labels)
    return np.ascontiguousarray(labels, dtype=np.uint16 if k > 256 else np.uint8)


def compression_order(palette: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The permutation of palette entries to store: ``order[new] = old``.

    palette (K, C) uint8, labels (H, W) integer < K; returns (K,) int64.
    """
    from ._palette_order_kernels import cooccurrence, label_counts

    k, channels = palette.shape
    lab = _stored(labels, k)
    freq = np.zeros(k, np.int64)
    label_counts(lab.reshape(-1), freq)
    opaque = palette[:, -1] == 255 if channels in (2, 4) else np.ones(k, bool)
    groups = [np.flatnonzero(~opaque), np.flatnonzero(opaque)]
    if k > _COOC_MAX_K:
        luma = _luma(palette)
        return np.concatenate([g[np.argsort(luma[g], kind="stable")] for g in groups]).astype(np.int64)
    counts = np.zeros((k, k), np.int64)
    # A compiled count in place: pairs of 2 x H x W indices would cost
    # 8 bytes a pixel (0.8 GB at 100 MP).
    cooccurrence(lab, counts)
    cooc = counts.astype(np.float64)
    cooc += cooc.T
    np.fill_diagonal(cooc, 0.0)
    order: list[int] = []
    for g in groups:
        if len(g):
            order += _greedy_chain(g, cooc, freq, order[-1] if order else None)
    return np.array(order, np.int64)


def reorder(palette: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Palette and labels permuted by :func:`compression_order`.

    ``new_palette[new_labels]`` equals ``palette[labels]`` pixel for pixel;
    labels keep their dtype.
    """
    from ._palette_order_kernels import relabel

    order = compression_order(palette, labels)
    inverse = np.empty(len(order), np.int64)
    inverse[order] = np.arange(len(order))
    if labels.dtype not in (np.uint8, np.uint16):
        return np.ascontiguousarray(palette[order]), inverse.astype(labels.dtype)[labels]
    flat = np.ascontiguousarray(labels).reshape(-1)
    out = np.empty_like(flat)
    relabel(inverse.astype(labels.dtype), flat, out)
    return np.ascontiguousarray(palette[order]), out.reshape(labels.shape)
