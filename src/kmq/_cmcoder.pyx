# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The ``.kmq`` version 2 index coder: context mixing + binary arithmetic coding.

Every pixel's palette index is coded as binary decisions: first "is it the
i-th distinct neighbour (W, N, NE, NW)?", then, if none matched, the
index's bits from the most significant down through a binary tree. Each
decision's probability is the logistic mix of a few adaptive context
models; an arithmetic coder (carry-less, 32-bit, as in lpaq1) turns the
decisions into bytes. All arithmetic is integer and fully specified in
FORMAT.md ("Coder 4: cm"), so the decoder is exact on every platform.

The encoder and the decoder share one pixel loop (:c:func:`_run`), so they
cannot disagree on a context; it runs without the GIL. Work and memory are
bounded by width x height and the palette size, whatever the payload holds:
the decoder reads zeros past the payload's end.
"""

import numpy as np
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t, int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free

# ---------------------------------------------------------------------------
# Fixed tables (FORMAT.md gives their definitions)
# ---------------------------------------------------------------------------

cdef int _SQ[33]
_sq_values = (1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101,
              1546, 2047, 2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022,
              4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094)
for _i in range(33):
    _SQ[_i] = _sq_values[_i]

cdef int _STRETCH[4096]
cdef int _RATE[256]


cdef inline int squash(int d) noexcept nogil:
    """Logistic 4096 / (1 + e^(-d/256)), d in stretch units, result 1..4095."""
    cdef int w
    if d > 2047:
        return 4095
    if d < -2047:
        return 1
    w = d & 127
    d = (d >> 7) + 16
    return (_SQ[d] * (128 - w) + _SQ[d + 1] * w + 64) >> 7


cdef void _init_tables() noexcept:
    cdef int pi = 0, x, v, i
    for x in range(-2047, 2048):
        v = squash(x)
        for i in range(pi, v + 1):
            _STRETCH[i] = x
        pi = v + 1
    for i in range(pi, 4096):
        _STRETCH[i] = 2047
    for i in range(256):
        _RATE[i] = 131072 // (2 * i + 3)


_init_tables()

# ---------------------------------------------------------------------------
# Model constants
# ---------------------------------------------------------------------------

cdef enum:
    NCAND = 4           # candidates: W, N, NE, NW
    NF = 3              # flag models
    NT = 4              # tree models
    LIMIT_DIRECT = 255  # adaptation-count limits
    LIMIT_HASHED = 127
    LR_FLAG = 6         # mixer learning rates
    LR_TREE = 4
    WMAX = 1 << 22      # mixer weights are clamped to [-WMAX, WMAX]
    W_INIT_FLAG = 21845 # 65536 / NF
    W_INIT_TREE = 16384 # 65536 / NT
    TABLE_BITS = 16     # every hashed table has 2**16 counters (L2-resident)

# A counter at probability one half, count 0.
cdef uint32_t P_INIT = 0x80000000u


cdef inline uint32_t hash2(uint32_t a, uint32_t b) noexcept nogil:
    cdef uint32_t h = (a * <uint32_t>0x9E3779B1u) ^ (b * <uint32_t>0x85EBCA6Bu)
    h ^= h >> 15
    h *= <uint32_t>0xC2B2AE35u
    h ^= h >> 13
    return h


cdef inline int sm_p(uint32_t s) noexcept nogil:
    """The 12-bit probability of a 1 held by a counter state."""
    return <int>(s >> 20)


cdef inline uint32_t sm_update(uint32_t s, int bit, uint32_t limit) noexcept nogil:
    cdef int64_t p = s >> 16
    cdef uint32_t n = s & 0xFFFF
    cdef int64_t target = 65535 if bit else 0
    p += ((target - p) * _RATE[n]) >> 16
    if n < limit:
        n += 1
    return (<uint32_t>p << 16) | n


ctypedef struct Coder:
    uint32_t x1
    uint32_t x2
    uint32_t x
    uint8_t* buf
    size_t pos
    size_t cap
    int decoding
    int failed


cdef inline int _in_byte(Coder* c) noexcept nogil:
    cdef int b = 0
    if c.pos < c.cap:
        b = c.buf[c.pos]
    c.pos += 1
    return b


cdef inline void _out_byte(Coder* c, uint32_t b) noexcept nogil:
    cdef size_t ncap
    cdef uint8_t* nb
    if c.pos >= c.cap:
        ncap = c.cap * 2 + 4096
        nb = <uint8_t*>realloc(c.buf, ncap)
        if nb == NULL:
            c.failed = 1
            c.pos = 0  # keep going into the old buffer; the result is discarded
            return
        c.buf = nb
        c.cap = ncap
    c.buf[c.pos] = <uint8_t>b
    c.pos += 1


cdef inline int code_bit(Coder* c, int p, int bit) noexcept nogil:
    """Code one binary decision with P(1) = p / 4096, 1 <= p <= 4095."""
    cdef uint32_t r = c.x2 - c.x1
    cdef uint32_t xmid = c.x1 + (r >> 12) * <uint32_t>p + (((r & 0xFFF) * <uint32_t>p) >> 12)
    if c.decoding:
        bit = 1 if c.x <= xmid else 0
    if bit:
        c.x2 = xmid
    else:
        c.x1 = xmid + 1
    while ((c.x1 ^ c.x2) & 0xFF000000u) == 0:
        if c.decoding:
            c.x = (c.x << 8) | <uint32_t>_in_byte(c)
        else:
            _out_byte(c, c.x2 >> 24)
        c.x1 <<= 8
        c.x2 = (c.x2 << 8) | 255
    return bit


cdef inline int mix_code(Coder* c, uint32_t** slots, int n, int32_t* w, int lr,
                         uint32_t limit_first, uint32_t limit_rest, int bit) noexcept nogil:
    """Mix n counters with weight set w, code the bit, update everything."""
    cdef int st[8]
    cdef int64_t dot = 0
    cdef int i, p, err
    cdef int64_t nw
    for i in range(n):
        st[i] = _STRETCH[sm_p(slots[i][0])]
        dot += <int64_t>st[i] * w[i]
    p = squash(<int>(dot >> 16))
    bit = code_bit(c, p, bit)
    err = ((bit << 12) - p) * lr
    for i in range(n):
        nw = w[i] + ((<int64_t>st[i] * err) >> 10)
        if nw > WMAX:
            nw = WMAX
        elif nw < -WMAX:
            nw = -WMAX
        w[i] = <int32_t>nw
        slots[i][0] = sm_update(slots[i][0], bit, limit_first if i == 0 else limit_rest)
    return bit


cdef int _run(uint16_t* lab, Py_ssize_t width, Py_ssize_t height, int bits,
              Coder* c) noexcept nogil:
    """Code (or decode into) lab, H*W indices of `bits` bits. 0, or -1 on OOM."""
    cdef int tb = TABLE_BITS
    cdef uint32_t tsize = <uint32_t>1 << tb
    cdef uint32_t mask = tsize - 1
    cdef uint32_t nodes = <uint32_t>1 << bits
    cdef uint32_t* f1 = <uint32_t*>malloc(NCAND * 64 * 5 * sizeof(uint32_t))
    cdef uint32_t* f2 = <uint32_t*>malloc(tsize * sizeof(uint32_t))
    cdef uint32_t* f3 = <uint32_t*>malloc(tsize * sizeof(uint32_t))
    cdef uint32_t* ta = <uint32_t*>malloc(nodes * sizeof(uint32_t))
    cdef uint32_t* tbm = <uint32_t*>malloc(tsize * sizeof(uint32_t))
    cdef uint32_t* tc = <uint32_t*>malloc(tsize * sizeof(uint32_t))
    cdef uint32_t* td = <uint32_t*>malloc(tsize * sizeof(uint32_t))
    cdef int32_t wf[NCAND * 5 * NF]
    cdef int32_t wt[16 * NT]
    cdef uint32_t* slots[8]
    cdef uint32_t cand[NCAND]
    cdef Py_ssize_t x, y, i, j, nc
    cdef uint32_t W, N, NW, NE, v, node, hd, hw, hn, shift
    cdef int eq, ph, bit, hit
    cdef uint16_t* row
    cdef uint16_t* up
    if f1 == NULL or f2 == NULL or f3 == NULL or ta == NULL or tbm == NULL or tc == NULL or td == NULL:
        free(f1); free(f2); free(f3); free(ta); free(tbm); free(tc); free(td)
        return -1
    for i in range(NCAND * 64 * 5):
        f1[i] = P_INIT
    for i in range(tsize):
        f2[i] = P_INIT
        f3[i] = P_INIT
        tbm[i] = P_INIT
        tc[i] = P_INIT
        td[i] = P_INIT
    for i in range(nodes):
        ta[i] = P_INIT
    for i in range(NCAND * 5 * NF):
        wf[i] = W_INIT_FLAG
    for i in range(16 * NT):
        wt[i] = W_INIT_TREE
    shift = 32 - tb
    ph = 4
    for y in range(height):
        row = lab + y * width
        up = row - width
        for x in range(width):
            if y == 0:
                W = row[x - 1] if x > 0 else 0
                N = W
                NW = W
                NE = W
            elif x == 0:
                N = up[0]
                W = N
                NW = N
                NE = up[1] if width > 1 else N
            else:
                W = row[x - 1]
                N = up[x]
                NW = up[x - 1]
                NE = up[x + 1] if x + 1 < width else N
            eq = ((W == N) | ((W == NE) << 1) | ((W == NW) << 2)
                  | ((N == NE) << 3) | ((N == NW) << 4) | ((NE == NW) << 5))
            cand[0] = W
            nc = 1
            if N != W:
                cand[nc] = N
                nc += 1
            if NE != W and NE != N:
                cand[nc] = NE
                nc += 1
            if NW != W and NW != N and NW != NE:
                cand[nc] = NW
                nc += 1
            v = 0 if c.decoding else row[x]
            hit = 4
            for i in range(nc):
                slots[0] = f1 + ((i * 64 + eq) * 5 + ph)
                slots[1] = f2 + ((hash2(W * 4 + <uint32_t>i + 1, N) >> shift) & mask)
                slots[2] = f3 + ((hash2(cand[i] * 4 + <uint32_t>i + 0x40000, <uint32_t>eq) >> shift) & mask)
                bit = mix_code(c, slots, NF, wf + (i * 5 + ph) * NF, LR_FLAG,
                               LIMIT_DIRECT, LIMIT_HASHED, 1 if v == cand[i] else 0)
                if bit:
                    hit = <int>i
                    v = cand[i]
                    break
            if hit == 4:
                if bits <= 8:  # W * 2**bits + node < 2**16: exact, no collision
                    hw = W << bits
                    hn = N << bits
                else:
                    hw = hash2(W + 0x20000, 0) >> shift
                    hn = hash2(N + 0x30000, 0) >> shift
                hd = hash2(W + 0x10000, N) >> shift
                node = 1
                for j in range(bits - 1, -1, -1):
                    slots[0] = ta + node
                    slots[1] = tbm + ((hw + node) & mask)
                    slots[2] = tc + ((hn + node) & mask)
                    slots[3] = td + ((hd + node) & mask)
                    bit = mix_code(c, slots, NT, wt + j * NT, LR_TREE,
                                   LIMIT_DIRECT, LIMIT_HASHED, <int>((v >> j) & 1))
                    node = (node << 1) | <uint32_t>bit
                v = node - nodes
            ph = hit
            if c.decoding:
                row[x] = <uint16_t>v
    free(f1); free(f2); free(f3); free(ta); free(tbm); free(tc); free(td)
    return 0


def encode_indices(labels, int bits):
    """Code an (H, W) index map (any unsigned dtype, values < 2**bits).

    Returns the payload bytes. Raises MemoryError if the model's tables
    cannot be allocated.
    """
    cdef uint16_t[:, ::1] lab = np.ascontiguousarray(labels, dtype=np.uint16)
    cdef Py_ssize_t h = lab.shape[0], w = lab.shape[1]
    cdef Coder c
    cdef int rc
    cdef uint16_t* p = &lab[0, 0]
    if bits < 1 or bits > 16:
        raise ValueError(f"bits must be 1..16, got {bits}")
    c.x1 = 0
    c.x2 = 0xFFFFFFFFu
    c.x = 0
    c.cap = <size_t>(h * w // 4 + 4096)
    c.buf = <uint8_t*>malloc(c.cap)
    c.pos = 0
    c.decoding = 0
    c.failed = 0
    if c.buf == NULL:
        raise MemoryError()
    with nogil:
        rc = _run(p, w, h, bits, &c)
        if rc == 0:
            # One byte suffices: with the bytes that follow read as zeros it
            # lies in [x1, x2] because x1 and x2 differ in their top byte.
            _out_byte(&c, c.x2 >> 24)
    try:
        if rc != 0 or c.failed:
            raise MemoryError()
        return (<char*>c.buf)[:c.pos]
    finally:
        free(c.buf)


def decode_indices(const uint8_t[::1] payload, Py_ssize_t width, Py_ssize_t height, int bits):
    """Decode a payload into an (H, W) uint16 index map (values < 2**bits).

    Reads zeros past the payload's end, so any payload decodes in
    O(width * height * bits) steps. Returns (labels, bytes_read): bytes_read
    is how far the decoder read (it may exceed len(payload)).
    """
    arr = np.zeros((height, width), np.uint16)
    cdef uint16_t[:, ::1] out = arr
    cdef Coder c
    cdef int rc, i
    if bits < 1 or bits > 16:
        raise ValueError(f"bits must be 1..16, got {bits}")
    c.buf = <uint8_t*>&payload[0] if payload.shape[0] > 0 else NULL
    c.cap = payload.shape[0]
    c.pos = 0
    c.decoding = 1
    c.failed = 0
    c.x1 = 0
    c.x2 = 0xFFFFFFFFu
    c.x = 0
    with nogil:
        for i in range(4):
            c.x = (c.x << 8) | <uint32_t>_in_byte(&c)
        rc = _run(&out[0, 0], width, height, bits, &c)
    if rc != 0:
        raise MemoryError()
    return arr, c.pos
