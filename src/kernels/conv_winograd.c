/* conv_winograd.c - 3x3 stride-1 convolutions by Winograd's minimal filtering, channels-last: F(2x2, 3x3) and
 * F(4x4, 3x3). Design and measurements: docs/conv.md.
 *
 * An m x m block of outputs (a tile; m = 2 or 4) needs an a x a patch d of the padded input, a = m + 2. With
 * fixed matrices B (a x a), G (a x 3) and A (a x m),
 *     Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 * per channel pair, (.) the element-wise product: a^2 multiplications per tile (16 for 4 outputs, 36 for 16)
 * instead of the 9 m^2 of the direct form. Summed over input channels, each of the a^2 positions is a matrix
 * product, M_pos (tiles x cout) = V_pos (tiles x cin) . U_pos (cin x cout), done by nr__gemm; the transforms
 * only add and scale by small constants, 16 channels at a time. Padding, odd sides and tiles that hang over
 * the border read zeros; outputs past the border are dropped.
 *
 * Backward, with dM = A dY A^T per tile (the adjoint of the output transform):
 *   dW: dU_pos (cin x cout) = V_pos^T . dM_pos summed over the tiles, then dW = G^T dU G.
 *   dX: the forward algorithm on dY padded by 2 - pad, with the kernel rotated by 180 degrees and its
 *       channels swapped; the outputs are added to dx.
 *
 * Memory: the tiles of the whole batch are numbered (image, tile row, tile column) and cut into chunks of a
 * few dozen to a few hundred, sized so that a chunk's transformed input and products (a^2 x tiles x
 * (cin + cout) floats) stay in L2. Chunks form at most GROUPS contiguous groups, each with its own partial
 * dU and bias sums; a thread takes a run of whole groups and reuses one set of buffers for all their chunks.
 * Chunk and group boundaries depend on the batch size and the layer only, and the partials are added in
 * group order, so the numbers do not depend on the thread count. Backward recomputes what it needs from x
 * and w (unlike the im2col path, it does not depend on what forward left in scratch).
 *
 * Accuracy (tests/test_conv_torch.py holds every path to 2e-5 of the result's scale): F(2x2) transforms
 * add at most 9 values with coefficients +-1 and 1/2, and the results are within 2 to 3 times the rounding
 * of im2col (~3e-7 of the scale). F(4x4) multiplies by up to 8 in A and 5 in B before the products and
 * divides by 6 and 24 in G, which costs about ten times more (~2e-6 on the CNN's layers); docs/conv.md has
 * the measurements. */
#include "core/internal.h"

/* 16 floats handled as one value: GCC/clang vector extensions, compiled by NR_SIMD_CLONES into zmm, ymm or
 * xmm code, element-wise and in the same order, so every version computes the same numbers. */
typedef float v16 __attribute__((vector_size(64)));
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

enum {
    LANES = 16,                  /* channels per vector step */
    MAXPOS = 36,                 /* positions of the largest tile (6 x 6) */
    GROUPS = 8,                  /* most groups of chunks: partial sums, and slots of buffers */
    CHUNK_BYTES = 640 * 1024,    /* one chunk's transformed input and products: within a 1 MiB L2 */
    MIN_TILES = 24,
    MAX_TILES = 480,
    MAX_CHANNELS_4 = 128,        /* F(4x4) for at most this many input and output channels */
};

/* Loads `cnt` floats (at most the vector's lanes) into v and zeros the rest; stores the first `cnt` of v.
 * Macros, because a 64-byte vector passed to a function changes the calling convention between the
 * instruction sets. */
#define LOADN(v, p, cnt)                                                                                      \
    do {                                                                                                      \
        if ((cnt) * sizeof(float) == sizeof(v)) {                                                             \
            memcpy(&(v), (p), sizeof(v));                                                                     \
        } else {                                                                                              \
            memset(&(v), 0, sizeof(v));                                                                       \
            memcpy(&(v), (p), (cnt) * sizeof(float));                                                         \
        }                                                                                                     \
    } while (0)
#define STOREN(p, v, cnt)                                                                                     \
    do {                                                                                                      \
        if ((cnt) * sizeof(float) == sizeof(v))                                                               \
            memcpy((p), &(v), sizeof(v));                                                                     \
        else                                                                                                  \
            memcpy((p), &(v), (cnt) * sizeof(float));                                                         \
    } while (0)
#define INLINE static inline __attribute__((always_inline))

/* ---- tilings ---- */

/* m x m blocks of an output image (oh x ow) whose a x a patches (a = m + 2) are read from an input image
 * (h x w x c, `pad` zeros around it). */
typedef struct tspace {
    size_t h, w, c, pad;
    size_t oh, ow;
    size_t m, a, np;     /* output tile side, input patch side, positions a * a */
    size_t th, tw, per;  /* tile rows, tile columns, tiles per image */
} tspace;

static tspace make_space(size_t m, size_t h, size_t w, size_t c, size_t pad, size_t oh, size_t ow)
{
    tspace s = {h, w, c, pad, oh, ow, m, m + 2, (m + 2) * (m + 2), (oh + m - 1) / m, (ow + m - 1) / m, 0};
    s.per = s.th * s.tw;
    return s;
}

/* Products per image for tiles of side m: a measure of the work, for the choice of m. */
static size_t work(const nr__wino_shape *s, size_t m)
{
    return ((s->oh + m - 1) / m) * ((s->ow + m - 1) / m) * (m + 2) * (m + 2);
}

size_t nr__wino_tile(const nr__wino_shape *s)
{
    if (s->m == 2 || s->m == 4)
        return s->m;
    /* 4x4 tiles did fewer products and ran faster on every shape measured (docs/conv.md), but round about ten
     * times worse; the error grows with the length of the channel sums, so past 128 channels the 2x2 tiles
     * keep it near im2col's. And 2x2 when the image is so small that the larger tiles' overhang eats the
     * saving (a 6 x 6 output: 4 tiles of 36 products against 9 of 16). */
    if (s->cin > MAX_CHANNELS_4 || s->cout > MAX_CHANNELS_4)
        return 2;
    return 8 * work(s, 4) < 7 * work(s, 2) ? 4 : 2;
}

/* The layer's two tilings: forward (and dW) over the output, dX over the input. */
static tspace fwd_space(const nr__wino_shape *s, size_t m)
{
    return make_space(m, s->h, s->w, s->cin, s->pad, s->oh, s->ow);
}

static tspace bwd_space(const nr__wino_shape *s, size_t m)
{
    return make_space(m, s->oh, s->ow, s->cout, 2 - s->pad, s->h, s->w);
}

/* ---- the plan: chunks, groups and where everything lies in scratch ---- */

typedef struct plan {
    size_t m, np;                   /* tile side, positions */
    size_t tc;                      /* tiles per chunk */
    size_t groups;                  /* the most groups: partial sums, and slots of buffers */
    size_t u, ub, wr, du, db, zeros, bufs;  /* offsets into scratch, in floats */
    size_t buf_in, buf_out;         /* floats per slot: np x tc x cin, np x tc x cout, then a sink */
    size_t chans;                   /* max(cin, cout): the zeros' and the sinks' length */
    size_t total;
} plan;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

static size_t groups_for(size_t tiles, size_t tc)
{
    size_t chunks = (tiles + tc - 1) / tc;
    return chunks < GROUPS ? chunks : GROUPS;
}

/* One slot's buffers: the transformed inputs, the products, a sink for outputs past an image's edge. */
static size_t slot_floats(const plan *p) { return round16(p->buf_in) + round16(p->buf_out) + round16(p->chans); }

/* Everything for batches of up to n; false on overflow. Channel counts and sides are bounded by setup. */
static bool make_plan(const nr__wino_shape *s, size_t n, plan *p)
{
    p->m = nr__wino_tile(s);
    const tspace f = fwd_space(s, p->m), b = bwd_space(s, p->m);
    p->np = f.np;
    size_t tf, tb, kern, taps;
    if (!nr__mul(n, f.per, &tf) || !nr__mul(n, b.per, &tb) || !nr__mul(s->cin, s->cout, &kern) ||
        !nr__mul(kern, 9, &taps) || !nr__mul(kern, p->np, &kern))
        return false;
    size_t tc = CHUNK_BYTES / (p->np * (s->cin + s->cout) * sizeof(float));
    tc = tc < MIN_TILES ? MIN_TILES : tc > MAX_TILES ? MAX_TILES : tc;
    p->tc = (tc + 11) / 12 * 12;  /* whole row panels of the products (6 or 12 rows) */
    size_t gf = groups_for(tf, p->tc), gb = groups_for(tb, p->tc);
    p->groups = gf > gb ? gf : gb;
    p->buf_in = p->np * p->tc * s->cin;
    p->buf_out = p->np * p->tc * s->cout;
    p->chans = s->cin > s->cout ? s->cin : s->cout;
    size_t off = 0, sz;
    bool ok = true;
    p->u = off;
    ok &= nr__add(off, round16(kern), &off);
    p->ub = off;
    ok &= nr__add(off, round16(kern), &off);
    p->wr = off;
    ok &= nr__add(off, round16(taps), &off);
    p->du = off;
    ok &= nr__mul(kern, p->groups, &sz) && nr__add(off, round16(sz), &off);
    p->db = off;  /* doubles: two floats each */
    ok &= nr__mul(s->cout, 2 * p->groups, &sz) && nr__add(off, round16(sz), &off);
    p->zeros = off;
    ok &= nr__add(off, round16(p->chans), &off);
    p->bufs = off;
    ok &= nr__mul(slot_floats(p), p->groups, &sz) && nr__add(off, sz, &off);
    p->total = off;
    return ok;
}

size_t nr__wino_scratch(const nr__wino_shape *s, size_t n)
{
    plan p;
    return make_plan(s, n, &p) ? p.total : NR_MAX_FLOATS + 1;
}

/* The chunks [*c0, *c1) of group g when `chunks` chunks form `groups` groups. */
static void group_chunks(size_t chunks, size_t groups, size_t g, size_t *c0, size_t *c1)
{
    *c0 = chunks * g / groups;
    *c1 = chunks * (g + 1) / groups;
}

/* ---- the transforms of one tile, 16 channels at a time ----
 * Each works on a run of cnt <= LANES channels. They are inlined and called with cnt = LANES, a constant,
 * so that their vectors stay in registers, and once more for any last channels. Pixels outside an image are
 * read from a run of zeros and written to a sink, so the code has no branches. ps is the distance between
 * positions in the transformed buffers. */

/* F(2x2): B^T d B, rows d0 - d2, d1 + d2, d2 - d1, d1 - d3, then the same on the columns. */
INLINE void in_tile2(const float *const *px, size_t cb, size_t cnt, float *out, size_t ps)
{
    v16 t[16];
    for (int j = 0; j < 4; j++) {
        v16 d0, d1, d2, d3;
        LOADN(d0, px[j] + cb, cnt);
        LOADN(d1, px[4 + j] + cb, cnt);
        LOADN(d2, px[8 + j] + cb, cnt);
        LOADN(d3, px[12 + j] + cb, cnt);
        t[j] = d0 - d2;
        t[4 + j] = d1 + d2;
        t[8 + j] = d2 - d1;
        t[12 + j] = d1 - d3;
    }
    for (int i = 0; i < 4; i++) {
        const v16 c0 = t[4 * i], c1 = t[4 * i + 1], c2 = t[4 * i + 2], c3 = t[4 * i + 3];
        const v16 o[4] = {c0 - c2, c1 + c2, c2 - c1, c1 - c3};
        for (int k = 0; k < 4; k++)
            STOREN(out + (size_t)(4 * i + k) * ps + cb, o[k], cnt);
    }
}

/* F(4x4): B^T d B with B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 * 0 4 0 -5 0 1], on the rows then the columns. */
#define B4(r, d0, d1, d2, d3, d4, d5)                                                                         \
    do {                                                                                                      \
        const v16 p_ = (d4) - 4.0f * (d2), q_ = (d3) - 4.0f * (d1);                                           \
        const v16 u_ = (d4) - (d2), w_ = 2.0f * ((d3) - (d1));                                                \
        (r)[0] = (4.0f * (d0) + (d4)) - 5.0f * (d2);                                                          \
        (r)[1] = p_ + q_;                                                                                     \
        (r)[2] = p_ - q_;                                                                                     \
        (r)[3] = u_ + w_;                                                                                     \
        (r)[4] = u_ - w_;                                                                                     \
        (r)[5] = (4.0f * (d1) + (d5)) - 5.0f * (d3);                                                          \
    } while (0)

INLINE void in_tile4(const float *const *px, size_t cb, size_t cnt, float *out, size_t ps)
{
    v16 t[6][6];  /* t[row of B^T d][column] */
    for (int j = 0; j < 6; j++) {
        v16 d[6], r[6];
        for (int i = 0; i < 6; i++)
            LOADN(d[i], px[6 * i + j] + cb, cnt);
        B4(r, d[0], d[1], d[2], d[3], d[4], d[5]);
        for (int i = 0; i < 6; i++)
            t[i][j] = r[i];
    }
    for (int i = 0; i < 6; i++) {
        v16 r[6];
        B4(r, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5]);
        for (int k = 0; k < 6; k++)
            STOREN(out + (size_t)(6 * i + k) * ps + cb, r[k], cnt);
    }
}

/* F(2x2): A^T M A with A^T = [1 1 1 0; 0 1 -1 -1]. */
INLINE void out_tile2(const float *in, size_t ps, size_t cb, size_t cnt, v16 *y)
{
    v16 q[8];
    for (int j = 0; j < 4; j++) {
        v16 m0, m1, m2, m3;
        LOADN(m0, in + (size_t)j * ps + cb, cnt);
        LOADN(m1, in + (size_t)(4 + j) * ps + cb, cnt);
        LOADN(m2, in + (size_t)(8 + j) * ps + cb, cnt);
        LOADN(m3, in + (size_t)(12 + j) * ps + cb, cnt);
        q[j] = m0 + m1 + m2;
        q[4 + j] = m1 - m2 - m3;
    }
    y[0] = q[0] + q[1] + q[2];
    y[1] = q[1] - q[2] - q[3];
    y[2] = q[4] + q[5] + q[6];
    y[3] = q[5] - q[6] - q[7];
}

/* F(4x4): A^T M A with A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
#define A4(r, m0, m1, m2, m3, m4, m5)                                                                         \
    do {                                                                                                      \
        const v16 s1_ = (m1) + (m2), d1_ = (m1) - (m2), s2_ = (m3) + (m4), d2_ = (m3) - (m4);               \
        (r)[0] = ((m0) + s1_) + s2_;                                                                          \
        (r)[1] = d1_ + 2.0f * d2_;                                                                            \
        (r)[2] = s1_ + 4.0f * s2_;                                                                            \
        (r)[3] = (d1_ + 8.0f * d2_) + (m5);                                                                   \
    } while (0)

INLINE void out_tile4(const float *in, size_t ps, size_t cb, size_t cnt, v16 *y)
{
    v16 q[4][6];  /* q[row of A^T M][column] */
    for (int j = 0; j < 6; j++) {
        v16 m[6], r[4];
        for (int i = 0; i < 6; i++)
            LOADN(m[i], in + (size_t)(6 * i + j) * ps + cb, cnt);
        A4(r, m[0], m[1], m[2], m[3], m[4], m[5]);
        for (int i = 0; i < 4; i++)
            q[i][j] = r[i];
    }
    for (int i = 0; i < 4; i++)
        A4(y + 4 * i, q[i][0], q[i][1], q[i][2], q[i][3], q[i][4], q[i][5]);
}

/* F(2x2): A e A^T of a 2x2 block e, A = [1 0; 1 1; 1 -1; 0 -1]: rows e0, e0 + e1, e0 - e1, -e1, then the
 * columns. */
INLINE void grad_tile2(const v16 *e, size_t cb, size_t cnt, float *out, size_t ps)
{
    const v16 rows[4][2] = {{e[0], e[1]}, {e[0] + e[2], e[1] + e[3]}, {e[0] - e[2], e[1] - e[3]}, {-e[2], -e[3]}};
    for (int i = 0; i < 4; i++) {
        const v16 p0 = rows[i][0], p1 = rows[i][1];
        const v16 o[4] = {p0, p0 + p1, p0 - p1, -p1};
        for (int k = 0; k < 4; k++)
            STOREN(out + (size_t)(4 * i + k) * ps + cb, o[k], cnt);
    }
}

/* F(4x4): A e A^T of a 4x4 block, A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1]. */
#define AT4(r, e0, e1, e2, e3)                                                                                \
    do {                                                                                                      \
        const v16 s_ = (e0) + (e2), d_ = (e1) + (e3);                                                         \
        const v16 s4_ = (e0) + 4.0f * (e2), d4_ = 2.0f * ((e1) + 4.0f * (e3));                                \
        (r)[0] = (e0);                                                                                        \
        (r)[1] = s_ + d_;                                                                                     \
        (r)[2] = s_ - d_;                                                                                     \
        (r)[3] = s4_ + d4_;                                                                                   \
        (r)[4] = s4_ - d4_;                                                                                   \
        (r)[5] = (e3);                                                                                        \
    } while (0)

INLINE void grad_tile4(const v16 *e, size_t cb, size_t cnt, float *out, size_t ps)
{
    v16 t[6][4];  /* t[row of A e][column] */
    for (int j = 0; j < 4; j++) {
        v16 r[6];
        AT4(r, e[j], e[4 + j], e[8 + j], e[12 + j]);
        for (int i = 0; i < 6; i++)
            t[i][j] = r[i];
    }
    for (int i = 0; i < 6; i++) {
        v16 r[6];
        AT4(r, t[i][0], t[i][1], t[i][2], t[i][3]);
        for (int k = 0; k < 6; k++)
            STOREN(out + (size_t)(6 * i + k) * ps + cb, r[k], cnt);
    }
}

/* ---- the transforms of a chunk of tiles ---- */

/* A tile's place, stepped through the tiles in order without divisions. */
typedef struct walk {
    size_t img, ty, tx;
} walk;

static walk walk_at(const tspace *s, size_t t)
{
    const size_t r = t % s->per;
    return (walk){t / s->per, r / s->tw, r % s->tw};
}

static void walk_next(const tspace *s, walk *w)
{
    if (++w->tx == s->tw) {
        w->tx = 0;
        if (++w->ty == s->th) {
            w->ty = 0;
            w->img++;
        }
    }
}

/* V[t - t0][pos][c] = (B^T d B)[pos] for the tiles [t0, t1) of s, d read from src; tm is s->m as a constant, so
 * that each tile side gets its own code. */
INLINE void input_chunk(const tspace *s, const size_t tm, const float *src, const float *zeros, size_t t0, size_t t1,
                        float *v)
{
    enum { A_MAX = 6 };
    const size_t c = s->c, a = tm + 2, np = a * a, ps = c, full = c / LANES * LANES;
    size_t off[A_MAX * A_MAX];
    for (size_t i = 0; i < a; i++)
        for (size_t j = 0; j < a; j++)
            off[a * i + j] = (i * s->w + j) * c;
    walk w = walk_at(s, t0);
    for (size_t t = t0; t < t1; t++, walk_next(s, &w)) {
        const ptrdiff_t y0 = (ptrdiff_t)(tm * w.ty) - (ptrdiff_t)s->pad;
        const ptrdiff_t x0 = (ptrdiff_t)(tm * w.tx) - (ptrdiff_t)s->pad;
        const float *base = src + w.img * s->h * s->w * c;
        const float *px[A_MAX * A_MAX];
        if (y0 >= 0 && x0 >= 0 && y0 + (ptrdiff_t)a <= (ptrdiff_t)s->h && x0 + (ptrdiff_t)a <= (ptrdiff_t)s->w) {
            const float *p00 = base + ((size_t)y0 * s->w + (size_t)x0) * c;
            for (size_t k = 0; k < np; k++)
                px[k] = p00 + off[k];
        } else {
            for (size_t i = 0; i < a; i++)
                for (size_t j = 0; j < a; j++) {
                    const ptrdiff_t yy = y0 + (ptrdiff_t)i, xx = x0 + (ptrdiff_t)j;
                    const bool in = yy >= 0 && xx >= 0 && yy < (ptrdiff_t)s->h && xx < (ptrdiff_t)s->w;
                    px[a * i + j] = in ? base + ((size_t)yy * s->w + (size_t)xx) * c : zeros;
                }
        }
        float *out = v + (t - t0) * np * c;
        size_t cb = 0;
        if (tm == 2) {
            for (; cb < full; cb += LANES)
                in_tile2(px, cb, LANES, out, ps);
            if (cb < c)
                in_tile2(px, cb, c - cb, out, ps);
        } else {
            for (; cb < full; cb += LANES)
                in_tile4(px, cb, LANES, out, ps);
            if (cb < c)
                in_tile4(px, cb, c - cb, out, ps);
        }
    }
}

NR_SIMD_CLONES static void input_transform(const tspace *s, const float *src, const float *zeros, size_t t0,
                                           size_t t1, float *v)
{
    if (s->m == 2)
        input_chunk(s, 2, src, zeros, t0, t1, v);
    else
        input_chunk(s, 4, src, zeros, t0, t1, v);
}

/* One tile's outputs from M, plus the bias (if any) or plus what the pixels hold (accumulate). */
INLINE void out_tile(const size_t tm, const float *in, size_t ps, float *const *o, const float *bias,
                     bool accumulate, size_t cb, size_t cnt)
{
    v16 y[16];
    const size_t outs = tm * tm;
    if (tm == 2)
        out_tile2(in, ps, cb, cnt, y);
    else
        out_tile4(in, ps, cb, cnt, y);
    if (bias) {
        v16 b;
        LOADN(b, bias + cb, cnt);
        for (size_t k = 0; k < outs; k++)
            y[k] += b;
    }
    for (size_t k = 0; k < outs; k++) {
        if (accumulate) {
            v16 a;
            LOADN(a, o[k] + cb, cnt);
            y[k] = a + y[k];
        }
        STOREN(o[k] + cb, y[k], cnt);
    }
}

/* The tm x tm outputs of the tiles [t0, t1) from M[t - t0][pos][c] into s's output image; outputs past its
 * edge go to `sink` (c floats). */
INLINE void output_chunk(const tspace *s, const size_t tm, size_t c, const float *m, size_t t0, size_t t1,
                         const float *bias, bool accumulate, float *dst, float *sink)
{
    const size_t ps = c, full = c / LANES * LANES, np = (tm + 2) * (tm + 2);
    walk w = walk_at(s, t0);
    for (size_t t = t0; t < t1; t++, walk_next(s, &w)) {
        const size_t y0 = tm * w.ty, x0 = tm * w.tx;
        float *o[16];
        float *o00 = dst + ((w.img * s->oh + y0) * s->ow + x0) * c;
        for (size_t i = 0; i < tm; i++)
            for (size_t j = 0; j < tm; j++)
                o[tm * i + j] = y0 + i < s->oh && x0 + j < s->ow ? o00 + (i * s->ow + j) * c : sink;
        const float *in = m + (t - t0) * np * c;
        size_t cb = 0;
        /* One loop per case, so that each inlined copy has no tests inside. */
        if (accumulate) {
            for (; cb < full; cb += LANES)
                out_tile(tm, in, ps, o, NULL, true, cb, LANES);
            if (cb < c)
                out_tile(tm, in, ps, o, NULL, true, cb, c - cb);
        } else if (bias) {
            for (; cb < full; cb += LANES)
                out_tile(tm, in, ps, o, bias, false, cb, LANES);
            if (cb < c)
                out_tile(tm, in, ps, o, bias, false, cb, c - cb);
        } else {
            for (; cb < full; cb += LANES)
                out_tile(tm, in, ps, o, NULL, false, cb, LANES);
            if (cb < c)
                out_tile(tm, in, ps, o, NULL, false, cb, c - cb);
        }
    }
}

NR_SIMD_CLONES static void output_transform(const tspace *s, size_t c, const float *m, size_t t0, size_t t1,
                                            const float *bias, bool accumulate, float *dst, float *sink)
{
    if (s->m == 2)
        output_chunk(s, 2, c, m, t0, t1, bias, accumulate, dst, sink);
    else
        output_chunk(s, 4, c, m, t0, t1, bias, accumulate, dst, sink);
}

/* Adds the m x m values of a tile to acc (the bias gradient) in double, in a fixed order. */
INLINE void add_bias_sums(const v16 *e, int outs, size_t cb, size_t cnt, double *acc)
{
    if (cnt == LANES) {
        v8d lo, hi;
        memcpy(&lo, acc + cb, sizeof lo);
        memcpy(&hi, acc + cb + 8, sizeof hi);
        for (int k = 0; k < outs; k++) {
            v8f l8, h8;
            memcpy(&l8, &e[k], sizeof l8);
            memcpy(&h8, (const float *)&e[k] + 8, sizeof h8);
            lo += __builtin_convertvector(l8, v8d);
            hi += __builtin_convertvector(h8, v8d);
        }
        memcpy(acc + cb, &lo, sizeof lo);
        memcpy(acc + cb + 8, &hi, sizeof hi);
    } else {
        /* The same sums, one channel at a time: the vector form would touch acc past its end. */
        for (size_t i = 0; i < cnt; i++)
            for (int k = 0; k < outs; k++)
                acc[cb + i] += (double)e[k][i];
    }
}

INLINE void grad_tile(const size_t tm, const float *const *ep, size_t cb, size_t cnt, float *out, size_t ps,
                      double *acc)
{
    v16 e[16];
    const size_t outs = tm * tm;
    for (size_t k = 0; k < outs; k++)
        LOADN(e[k], ep[k] + cb, cnt);
    if (acc)
        add_bias_sums(e, (int)outs, cb, cnt, acc);
    if (tm == 2)
        grad_tile2(e, cb, cnt, out, ps);
    else
        grad_tile4(e, cb, cnt, out, ps);
}

/* dM[t - t0][pos][c] = (A e A^T)[pos] for the tm x tm blocks e of dy (s's output image) of the tiles [t0, t1);
 * with acc, also the bias gradient's sums (tile by tile). */
INLINE void grad_chunk(const tspace *s, const size_t tm, size_t c, const float *dy, const float *zeros, size_t t0,
                       size_t t1, float *dm, double *acc)
{
    const size_t ps = c, full = c / LANES * LANES, np = (tm + 2) * (tm + 2);
    walk w = walk_at(s, t0);
    for (size_t t = t0; t < t1; t++, walk_next(s, &w)) {
        const size_t y0 = tm * w.ty, x0 = tm * w.tx;
        const float *e[16];
        const float *e00 = dy + ((w.img * s->oh + y0) * s->ow + x0) * c;
        for (size_t i = 0; i < tm; i++)
            for (size_t j = 0; j < tm; j++)
                e[tm * i + j] = y0 + i < s->oh && x0 + j < s->ow ? e00 + (i * s->ow + j) * c : zeros;
        float *out = dm + (t - t0) * np * c;
        size_t cb = 0;
        if (acc) {
            for (; cb < full; cb += LANES)
                grad_tile(tm, e, cb, LANES, out, ps, acc);
        } else {
            for (; cb < full; cb += LANES)
                grad_tile(tm, e, cb, LANES, out, ps, NULL);
        }
        if (cb < c)
            grad_tile(tm, e, cb, c - cb, out, ps, acc);
    }
}

NR_SIMD_CLONES static void grad_transform(const tspace *s, size_t c, const float *dy, const float *zeros, size_t t0,
                                          size_t t1, float *dm, double *acc)
{
    if (s->m == 2)
        grad_chunk(s, 2, c, dy, zeros, t0, t1, dm, acc);
    else
        grad_chunk(s, 4, c, dy, zeros, t0, t1, dm, acc);
}

/* ---- the kernel's transforms ---- */

typedef struct kern_job {
    size_t m, np;
    size_t rows, cols;   /* the kernel's input and output channels */
    const float *w;      /* (3, 3, rows, cols) */
    float *u;            /* [pos][rows][cols] */
    float *wr;           /* rotate_range: the rotated kernel, (3, 3, cols, rows) */
    const float *du;     /* weight_grad_range: [group][pos][rows][cols] partials */
    size_t groups;
    float *dw;
    bool overwrite;
} kern_job;

/* G g for 3 values: F(2x2) G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]; F(4x4) G = [1/4 0 0;
 * -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]. */
INLINE void g_apply(size_t m, const v16 *p0, const v16 *p1, const v16 *p2, v16 *r)
{
    const v16 g0 = *p0, g1 = *p1, g2 = *p2, sum = g0 + g2;
    if (m == 2) {
        r[0] = g0;
        r[1] = 0.5f * (sum + g1);
        r[2] = 0.5f * (sum - g1);
        r[3] = g2;
    } else {
        const v16 a = 0.25f * g0 + g2, b = 0.5f * g1;
        r[0] = 0.25f * g0;
        r[1] = (sum + g1) * (-1.0f / 6.0f);
        r[2] = (sum - g1) * (-1.0f / 6.0f);
        r[3] = (a + b) * (1.0f / 6.0f);
        r[4] = (a - b) * (1.0f / 6.0f);
        r[5] = g2;
    }
}

/* G^T u for a values: the adjoint of g_apply. */
INLINE void gt_apply(size_t m, const v16 *u, v16 *h)
{
    if (m == 2) {
        const v16 p = 0.5f * (u[1] + u[2]), q = 0.5f * (u[1] - u[2]);
        h[0] = u[0] + p;
        h[1] = q;
        h[2] = p + u[3];
    } else {
        const v16 s12 = u[1] + u[2], d12 = u[1] - u[2], s34 = u[3] + u[4], d34 = u[3] - u[4];
        h[0] = 0.25f * u[0] + (0.25f * s34 - s12) * (1.0f / 6.0f);
        h[1] = (0.5f * d34 - d12) * (1.0f / 6.0f);
        h[2] = (s34 - s12) * (1.0f / 6.0f) + u[5];
    }
}

/* Items are the kernel's input channels: U = G g G^T. */
NR_SIMD_CLONES static void kernel_range(void *ctx, size_t b, size_t e)
{
    const kern_job *j = ctx;
    const size_t rows = j->rows, cols = j->cols, plane = rows * cols, a = j->m + 2;
    for (size_t ci = b; ci < e; ci++)
        for (size_t cb = 0; cb < cols; cb += LANES) {
            const size_t cnt = cols - cb < LANES ? cols - cb : LANES;
            v16 g[9], h[6][3], u[6];
            for (int k = 0; k < 9; k++)
                LOADN(g[k], j->w + ((size_t)k * rows + ci) * cols + cb, cnt);
            for (int col = 0; col < 3; col++) {
                v16 r[6];
                g_apply(j->m, &g[col], &g[3 + col], &g[6 + col], r);
                for (size_t i = 0; i < a; i++)
                    h[i][col] = r[i];
            }
            for (size_t i = 0; i < a; i++) {
                g_apply(j->m, &h[i][0], &h[i][1], &h[i][2], u);
                for (size_t k = 0; k < a; k++)
                    STOREN(j->u + (a * i + k) * plane + ci * cols + cb, u[k], cnt);
            }
        }
}

/* Items are taps: wr[ki][kj][co][ci] = w[2 - ki][2 - kj][ci][co], the kernel that takes dY to dX. */
static void rotate_range(void *ctx, size_t b, size_t e)
{
    enum { BT = 16 };
    const kern_job *j = ctx;
    const size_t rows = j->rows, cols = j->cols, plane = rows * cols;
    for (size_t tap = b; tap < e; tap++) {
        const float *src = j->w + (8 - tap) * plane;
        float *dst = j->wr + tap * plane;
        /* In square blocks, so that both sides are read and written a cache line at a time. */
        for (size_t r0 = 0; r0 < rows; r0 += BT)
            for (size_t c0 = 0; c0 < cols; c0 += BT) {
                const size_t r1 = r0 + BT < rows ? r0 + BT : rows, c1 = c0 + BT < cols ? c0 + BT : cols;
                for (size_t c = c0; c < c1; c++)
                    for (size_t r = r0; r < r1; r++)
                        dst[c * rows + r] = src[r * cols + c];
            }
    }
}

/* Items are input channels: dU = the groups' partials in group order, then dW = G^T dU G. */
NR_SIMD_CLONES static void weight_grad_range(void *ctx, size_t b, size_t e)
{
    const kern_job *j = ctx;
    const size_t rows = j->rows, cols = j->cols, plane = rows * cols, a = j->m + 2;
    for (size_t ci = b; ci < e; ci++)
        for (size_t cb = 0; cb < cols; cb += LANES) {
            const size_t cnt = cols - cb < LANES ? cols - cb : LANES;
            v16 h[3][6], g[9];
            for (size_t col = 0; col < a; col++) {
                v16 u[6], r[3];
                for (size_t i = 0; i < a; i++) {
                    const float *src = j->du + (a * i + col) * plane + ci * cols + cb;
                    LOADN(u[i], src, cnt);
                    for (size_t grp = 1; grp < j->groups; grp++) {
                        v16 part;
                        LOADN(part, src + grp * j->np * plane, cnt);
                        u[i] += part;
                    }
                }
                gt_apply(j->m, u, r);
                for (int k = 0; k < 3; k++)
                    h[k][col] = r[k];
            }
            for (int row = 0; row < 3; row++)
                gt_apply(j->m, h[row], g + 3 * row);
            for (int k = 0; k < 9; k++) {
                float *d = j->dw + ((size_t)k * rows + ci) * cols + cb;
                if (!j->overwrite) {
                    v16 old;
                    LOADN(old, d, cnt);
                    g[k] = old + g[k];
                }
                STOREN(d, g[k], cnt);
            }
        }
}

static size_t kernel_grain(size_t cols) { return 4096 / (cols * 9) + 1; }

/* ---- the passes over the tiles ----
 * Each pass runs its groups on `slots` sets of buffers, one per thread at most: slot s takes a contiguous run
 * of groups and reuses its buffers for all of them, so they stay in the thread's L2. Which slot runs a group
 * changes nothing in its numbers. */

typedef struct tile_job tile_job;
/* One group: its chunks in order, with a slot's buffers (`in`: np x tc x cin, `out`: np x tc x cout). */
typedef void (*group_fn)(const tile_job *j, size_t g, float *in, float *out, float *sink);

struct tile_job {
    const nr__wino_shape *s;
    const plan *p;
    tspace sp;           /* the tiling of this pass */
    size_t tiles, chunks, groups, slots;
    group_fn body;
    const float *x, *dy, *bias, *kern;
    float *y, *dx;
    float *scratch;
};

static const float *zero_run(const tile_job *j) { return j->scratch + j->p->zeros; }

/* Items are slots. */
static void slots_range(void *ctx, size_t s0, size_t s1)
{
    const tile_job *j = ctx;
    for (size_t sl = s0; sl < s1; sl++) {
        float *in = j->scratch + j->p->bufs + sl * slot_floats(j->p);
        float *out = in + round16(j->p->buf_in), *sink = out + round16(j->p->buf_out);
        for (size_t g = j->groups * sl / j->slots; g < j->groups * (sl + 1) / j->slots; g++)
            j->body(j, g, in, out, sink);
    }
}

/* The tiles [*t0, *t1) of chunk ch. */
static void chunk_range(const tile_job *j, size_t ch, size_t *t0, size_t *t1)
{
    *t0 = ch * j->p->tc;
    *t1 = *t0 + j->p->tc < j->tiles ? *t0 + j->p->tc : j->tiles;
}

/* The products of a chunk of t tiles: C_pos (t x n) = A_pos (t x k) . B_pos (k x n) for every position. */
static void products(size_t np, size_t t, size_t n, size_t k, const float *a, const float *b, float *c)
{
    for (size_t pos = 0; pos < np; pos++)
        nr__gemm(NR_NO_TRANS, NR_NO_TRANS, t, n, k, 1.0f, a + pos * k, np * k, b + pos * k * n, n, 0.0f, c + pos * n,
                 np * n);
}

/* The forward algorithm over a group's chunks: dst = conv(src) (+ bias), or dst += conv(src) when accumulating;
 * `from` channels in, `to` out. in_t holds a chunk's transformed input, prod its products. */
static void conv_group(const tile_job *j, size_t g, const float *src, size_t from, size_t to, const float *bias,
                       bool accumulate, float *dst, float *in_t, float *prod, float *sink)
{
    size_t c0, c1, t0, t1;
    group_chunks(j->chunks, j->groups, g, &c0, &c1);
    for (size_t ch = c0; ch < c1; ch++) {
        chunk_range(j, ch, &t0, &t1);
        input_transform(&j->sp, src, zero_run(j), t0, t1, in_t);
        products(j->sp.np, t1 - t0, to, from, in_t, j->kern, prod);
        output_transform(&j->sp, to, prod, t0, t1, bias, accumulate, dst, sink);
    }
}

/* y = conv(x) + bias. */
static void forward_group(const tile_job *j, size_t g, float *v, float *m, float *sink)
{
    conv_group(j, g, j->x, j->s->cin, j->s->cout, j->bias, false, j->y, v, m, sink);
}

/* The group's dU partial (and bias sums), chunk after chunk in order. */
static void weight_group(const tile_job *j, size_t g, float *v, float *dm, float *sink)
{
    (void)sink;
    const size_t cin = j->s->cin, cout = j->s->cout, plane = cin * cout, np = j->sp.np;
    float *du = j->scratch + j->p->du + g * np * plane;
    double *acc = j->bias ? (double *)(void *)(j->scratch + j->p->db) + g * cout : NULL;
    if (acc)
        memset(acc, 0, cout * sizeof *acc);
    size_t c0, c1, t0, t1;
    group_chunks(j->chunks, j->groups, g, &c0, &c1);
    for (size_t ch = c0; ch < c1; ch++) {
        chunk_range(j, ch, &t0, &t1);
        const size_t t = t1 - t0;
        input_transform(&j->sp, j->x, zero_run(j), t0, t1, v);
        grad_transform(&j->sp, cout, j->dy, zero_run(j), t0, t1, dm, acc);
        for (size_t pos = 0; pos < np; pos++)
            nr__gemm(NR_TRANS, NR_NO_TRANS, cin, cout, t, 1.0f, v + pos * cin, np * cin, dm + pos * cout, np * cout,
                     ch == c0 ? 0.0f : 1.0f, du + pos * plane, cout);
    }
}

/* dx += the forward algorithm on dy with the rotated kernel. */
static void data_group(const tile_job *j, size_t g, float *m, float *z, float *sink)
{
    conv_group(j, g, j->dy, j->s->cout, j->s->cin, NULL, true, j->dx, z, m, sink);
}

static tile_job tiles_job(const nr__wino_shape *s, const plan *p, tspace sp, size_t n, float *scratch,
                          group_fn body)
{
    tile_job j = {.s = s, .p = p, .sp = sp, .scratch = scratch, .body = body};
    j.tiles = n * sp.per;
    j.chunks = (j.tiles + p->tc - 1) / p->tc;
    j.groups = j.chunks < GROUPS ? j.chunks : GROUPS;
    const size_t threads = (size_t)nr_threads();
    j.slots = j.groups < threads ? j.groups : threads;
    return j;
}

void nr__wino_forward(const nr__wino_shape *s, const float *w, const float *bias, const float *x, float *y,
                      size_t n, float *scratch)
{
    plan p;
    make_plan(s, n, &p);
    memset(scratch + p.zeros, 0, p.chans * sizeof(float));
    kern_job k = {.m = p.m, .np = p.np, .rows = s->cin, .cols = s->cout, .w = w, .u = scratch + p.u};
    nr__parallel_for(s->cin, kernel_grain(s->cout), kernel_range, &k);
    tile_job j = tiles_job(s, &p, fwd_space(s, p.m), n, scratch, forward_group);
    j.x = x;
    j.y = y;
    j.bias = bias;
    j.kern = scratch + p.u;
    nr__parallel_for(j.slots, 1, slots_range, &j);
}

void nr__wino_backward(const nr__wino_shape *s, const float *w, const float *x, const float *dy, float *dx,
                       float *dw, float *db, bool overwrite, size_t n, float *scratch)
{
    plan p;
    make_plan(s, n, &p);
    memset(scratch + p.zeros, 0, p.chans * sizeof(float));
    /* dW and db: partials per group, then added in group order. */
    tile_job j = tiles_job(s, &p, fwd_space(s, p.m), n, scratch, weight_group);
    j.x = x;
    j.dy = dy;
    j.bias = db;  /* only its presence matters here */
    nr__parallel_for(j.slots, 1, slots_range, &j);
    kern_job k = {.m = p.m, .np = p.np, .rows = s->cin, .cols = s->cout, .du = scratch + p.du,
                  .groups = j.groups, .dw = dw, .overwrite = overwrite};
    nr__parallel_for(s->cin, kernel_grain(s->cout), weight_grad_range, &k);
    if (db) {
        const double *acc = (const double *)(const void *)(scratch + p.db);
        for (size_t c = 0; c < s->cout; c++) {
            double sum = 0;
            for (size_t g = 0; g < j.groups; g++)
                sum += acc[g * s->cout + c];
            db[c] = (float)sum + (overwrite ? 0.0f : db[c]);
        }
    }
    if (!dx)
        return;
    /* dX: the rotated kernel (cout in, cin out) and its transform. */
    kern_job r = {.m = p.m, .np = p.np, .rows = s->cin, .cols = s->cout, .w = w, .wr = scratch + p.wr};
    nr__parallel_for(9, 1, rotate_range, &r);
    kern_job kb = {.m = p.m, .np = p.np, .rows = s->cout, .cols = s->cin, .w = scratch + p.wr, .u = scratch + p.ub};
    nr__parallel_for(s->cout, kernel_grain(s->cin), kernel_range, &kb);
    tile_job d = tiles_job(s, &p, bwd_space(s, p.m), n, scratch, data_group);
    d.dy = dy;
    d.dx = dx;
    d.kern = scratch + p.ub;
    nr__parallel_for(d.slots, 1, slots_range, &d);
}
