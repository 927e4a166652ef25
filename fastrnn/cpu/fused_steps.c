/* The elementwise part of one LSTM or GRU step on the CPU path, one call instead of 5-8 ATen ops;
and, for small LSTMs, the whole time loop of a segment with its recurrent products.

Dimensions: n rows of the step, H hidden size. Every matrix argument is row-major with its own
row stride (ld_*, in elements) and a hidden-unit block of H contiguous elements, so a step view of
any buffer of the layout (fastrnn/cpu/layout.py) is passed as a pointer and its row stride. The
recurrent products stay ATen's (BLAS) calls between the step calls, except in the whole loops,
whose products are the GEMM below; fused.py loads this file and documents when each is used.
Nothing here allocates or checks: the callers pass views of buffers with every row in bounds.

Why: each ATen op costs a few microseconds of dispatch and a pass over memory, and a step's
pointwise part is 5-8 of them; at B=64, H=64 they took 43-65 us against the product's 18-41.
Here a step is one pass with the gate values in registers.

Numerics. double: libm's exp and tanh (the float64 oracle's precision). float: the polynomials
below, branch-free so that the compiler vectorizes the loops; exp_f is Cephes' expf (relative
error about 2 ulp over the clamped range), tanh_f Cephes' tanhf (|x| < 0.625: an odd polynomial,
else 1 - 2/(e^{2|x|} + 1); about 2 ulp). NaN propagates (every clamp and select keeps a NaN
operand); +-inf give torch's limits exactly (sigmoid 0 or 1, tanh +-1).

Every formula is the one fastrnn/cpu/lstm.py and gru.py document and their ATen fallback computes.
*/

#include <math.h>
#include <stdint.h>
#include <string.h>

#define RESTRICT __restrict__

/* ---- float activations -------------------------------------------------------------------- */

static inline float bits_to_float(int32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* e^x for x clamped to [-87, 87] (beyond it sigmoid and tanh are saturated to float precision;
   the clamp keeps 2^n a normal float). A NaN fails both comparisons and stays NaN. */
static inline float exp_f(float x) {
    x = x > 87.0f ? 87.0f : x;
    x = x < -87.0f ? -87.0f : x;
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    /* x - n ln 2 in two parts, the first exact in float (Cody-Waite). */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* n is in [-126, 126] after the clamp (NaN: any bits; the product stays NaN). */
    int32_t exponent = (int32_t)n + 127;
    return p * bits_to_float(exponent << 23);
}

/* Exactly 0 below -88 (torch's is a denormal down to -103, then 0), so that sigmoid(-inf) is 0 and
   a gate closed by -inf times an infinite state is NaN as in torch, not the clamp's 1.6e-38 * inf. */
static inline float sigmoid_f(float x) {
    float s = 1.0f / (1.0f + exp_f(-x));
    return x < -88.0f ? 0.0f : s;
}

static inline float tanh_f(float x) {
    float a = fabsf(x);
    float z = x * x;
    float small = -5.70498872745e-3f;
    small = small * z + 2.06390887954e-2f;
    small = small * z - 5.37397155531e-2f;
    small = small * z + 1.33314422036e-1f;
    small = small * z - 3.33332819422e-1f;
    small = small * z * a + a;
    float large = 1.0f - 2.0f / (exp_f(2.0f * a) + 1.0f);
    return copysignf(a < 0.625f ? small : large, x);
}

/* ---- double activations ------------------------------------------------------------------- */

static inline double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double tanh_d(double x) { return tanh(x); }

/* ---- the steps, once per type --------------------------------------------------------------- */

/* LSTM forward step, gates (i, f, g, o), pre = h_{t-1} W_hh^T (the product, (n, 4H)):
     a = pre[j] + gx[index ? index[j] : j]
     i, f, o = sigmoid(a);  g = tanh(a);  c = f*c + i*g;  h = o*tanh(c)
   work (n, 5H): (i f g o | c), c read and written in place; rec, when given, receives the same
   row (the step's record); h (n, H): o*tanh(c) (the output, or the projection's input). */
#define LSTM_FORWARD(NAME, T, SIGMOID, TANH)                                                        \
    void NAME(int64_t n, int64_t H, const T *RESTRICT pre, int64_t ld_pre, const T *RESTRICT gx,   \
              int64_t ld_gx, const int64_t *RESTRICT index, T *RESTRICT work, int64_t ld_work,     \
              T *RESTRICT rec, int64_t ld_rec, T *RESTRICT h, int64_t ld_h) {                      \
        for (int64_t j = 0; j < n; ++j) {                                                          \
            const T *p = pre + j * ld_pre;                                                         \
            const T *x = gx + (index ? index[j] : j) * ld_gx;                                      \
            T *w = work + j * ld_work, *hj = h + j * ld_h;                                         \
            for (int64_t u = 0; u < H; ++u) {                                                      \
                T i = SIGMOID(p[u] + x[u]), f = SIGMOID(p[H + u] + x[H + u]);                      \
                T g = TANH(p[2 * H + u] + x[2 * H + u]), o = SIGMOID(p[3 * H + u] + x[3 * H + u]);  \
                T c = f * w[4 * H + u] + i * g;                                                    \
                w[u] = i; w[H + u] = f; w[2 * H + u] = g; w[3 * H + u] = o; w[4 * H + u] = c;      \
                hj[u] = o * TANH(c);                                                               \
            }                                                                                      \
            if (rec) memcpy(rec + j * ld_rec, w, 5 * H * sizeof(T));                               \
        }                                                                                          \
    }

/* LSTM backward step, from the step's record (i f g o | c_t) and c_{t-1}:
     dc += dh * o * (1 - tanh(c_t)^2)
     dgates = (dc * g * i(1-i), dc * c_{t-1} * f(1-f), dc * i * (1-g^2), dh * tanh(c_t) * o(1-o))
     dc = dc * f;  hp = o * tanh(c_t) when hp is given (the projection's input, for dW_hr)
   dc (n, H) contiguous, read and written. */
#define LSTM_BACKWARD(NAME, T, TANH)                                                                \
    void NAME(int64_t n, int64_t H, const T *RESTRICT rec, int64_t ld_rec,                          \
              const T *RESTRICT c_prev, int64_t ld_c_prev, const T *RESTRICT dh, int64_t ld_dh,    \
              T *RESTRICT dc, T *RESTRICT dgates, int64_t ld_dgates, T *RESTRICT hp,               \
              int64_t ld_hp) {                                                                     \
        for (int64_t j = 0; j < n; ++j) {                                                          \
            const T *r = rec + j * ld_rec, *cp = c_prev + j * ld_c_prev, *d = dh + j * ld_dh;      \
            T *dcj = dc + j * H, *dg = dgates + j * ld_dgates;                                     \
            for (int64_t u = 0; u < H; ++u) {                                                      \
                T i = r[u], f = r[H + u], g = r[2 * H + u], o = r[3 * H + u];                      \
                T tc = TANH(r[4 * H + u]);                                                         \
                T dcu = dcj[u] + d[u] * (o * (1 - tc * tc));                                       \
                dg[u] = dcu * (g * (i - i * i));                                                   \
                dg[H + u] = dcu * (cp[u] * (f - f * f));                                           \
                dg[2 * H + u] = dcu * (i * (1 - g * g));                                           \
                dg[3 * H + u] = d[u] * (tc * (o - o * o));                                         \
                dcj[u] = dcu * f;                                                                  \
            }                                                                                      \
            if (hp) {                                                                              \
                T *hpj = hp + j * ld_hp;                                                           \
                for (int64_t u = 0; u < H; ++u) hpj[u] = r[3 * H + u] * TANH(r[4 * H + u]);        \
            }                                                                                      \
        }                                                                                          \
    }

/* GRU forward step, gates (r, z, n), gh = b_hh + h_{t-1} W_hh^T (the product, (n, 3H)):
     r, z = sigmoid(gx_rz + gh_rz);  m = tanh(gx_n + r*gh_n);  h = m + z*(h_{t-1} - m)
   (ATen's form of the update, which keeps -inf states -inf). gx's row j is gx[index[j]] when index
   is given. work (n, 4H): (r z gh_n m); rec, when given, receives the same row. */
#define GRU_FORWARD(NAME, T, SIGMOID, TANH)                                                         \
    void NAME(int64_t n, int64_t H, const T *RESTRICT gh, int64_t ld_gh, const T *RESTRICT gx,     \
              int64_t ld_gx, const int64_t *RESTRICT index, const T *RESTRICT h_prev,              \
              int64_t ld_h_prev, T *RESTRICT work, int64_t ld_work, T *RESTRICT rec,               \
              int64_t ld_rec, T *RESTRICT h, int64_t ld_h) {                                       \
        for (int64_t j = 0; j < n; ++j) {                                                          \
            const T *p = gh + j * ld_gh, *x = gx + (index ? index[j] : j) * ld_gx;                 \
            const T *hp = h_prev + j * ld_h_prev;                                                  \
            T *w = work + j * ld_work, *hj = h + j * ld_h;                                         \
            for (int64_t u = 0; u < H; ++u) {                                                      \
                T r = SIGMOID(x[u] + p[u]), z = SIGMOID(x[H + u] + p[H + u]);                      \
                T ghn = p[2 * H + u];                                                              \
                T m = TANH(x[2 * H + u] + r * ghn);                                                \
                w[u] = r; w[H + u] = z; w[2 * H + u] = ghn; w[3 * H + u] = m;                      \
                hj[u] = m + z * (hp[u] - m);                                                       \
            }                                                                                      \
            if (rec) memcpy(rec + j * ld_rec, w, 4 * H * sizeof(T));                               \
        }                                                                                          \
    }

/* GRU backward step, from the step's record (r z gh_n m) and h_{t-1}:
     k = (1-z)(1-m^2);  dgates = (dh k gh_n r(1-r), dh (h_{t-1}-m) z(1-z), dh k);  dhn = dh k r
     carry = dprev + dh*z   (dh_{t-1} is carry + (dr, dz) W_hh[:2H] + dhn W_hh[2H:], two products)
   dgates (n, >= 3H) gets (r, z, n); dhn (n, H) its own pointer (a fourth block of the same buffer,
   or a buffer apart); dprev is dout of the step before (zeros at the first step). */
#define GRU_BACKWARD(NAME, T)                                                                       \
    void NAME(int64_t n, int64_t H, const T *RESTRICT rec, int64_t ld_rec,                          \
              const T *RESTRICT h_prev, int64_t ld_h_prev, const T *RESTRICT dh, int64_t ld_dh,    \
              const T *RESTRICT dprev, int64_t ld_dprev, T *RESTRICT dgates, int64_t ld_dgates,    \
              T *RESTRICT dhn, int64_t ld_dhn, T *RESTRICT carry, int64_t ld_carry) {              \
        for (int64_t j = 0; j < n; ++j) {                                                          \
            const T *w = rec + j * ld_rec, *hp = h_prev + j * ld_h_prev, *d = dh + j * ld_dh;      \
            const T *dp = dprev + j * ld_dprev;                                                    \
            T *dg = dgates + j * ld_dgates, *dn = dhn + j * ld_dhn, *cj = carry + j * ld_carry;    \
            for (int64_t u = 0; u < H; ++u) {                                                      \
                T r = w[u], z = w[H + u], ghn = w[2 * H + u], m = w[3 * H + u], du = d[u];         \
                T k = (1 - z) * (1 - m * m);                                                       \
                T dm = du * k;                                                                     \
                dg[u] = dm * (ghn * (r - r * r));                                                  \
                dg[H + u] = du * ((hp[u] - m) * (z - z * z));                                      \
                dg[2 * H + u] = dm;                                                                \
                dn[u] = dm * r;                                                                    \
                cj[u] = dp[u] + du * z;                                                            \
            }                                                                                      \
        }                                                                                          \
    }

/* ---- small products and whole loops ---------------------------------------------------------- */

/* c (n, N) = a1 b1 + a2 b2, or c += a1 b1 + a2 b2 when `accumulate`: a1 (n, K1; row stride lda1),
   b1 (K1, N), and likewise a2, b2 (K2 = 0: no second term, a2 and b2 repeating a1 and b1, never
   read); c's row stride ldc. Each b comes packed in panels (fused.py's pack_panels): N / COLS panels of COLS columns, panel p at
   bp + p*K*COLS holding b[k, p*COLS + u] at k*COLS + u, then the R = N % COLS remaining columns
   at bp + (N/COLS)*K*COLS, b[k, N - R + u] at k*R + u. Contiguous panels keep the columns a
   register block reads together (b's own rows, 4N bytes apart, map to few cache sets: at H=64
   the unpacked product ran at 72 GFLOP/s, packed 120). Register blocks of 6, 4, 2 and 1 rows by
   one panel (float: 6 x 4 accumulators of 16 with AVX-512) run over the whole of K1 then K2, so
   the accumulators are loaded and stored once per block; the panel streams from the L2 cache,
   each k's 256-byte row prefetched GEMM_PREFETCH rows ahead (the hardware prefetcher alone left
   the block waiting: B=64 H=128, x_t W_ih^T + h W_hh^T per step, 104 GFLOP/s with K in 64-deep
   blocks and c reloaded between them, 113 whole-K with one prefetch a row, 124 with the row's
   four cache lines; this core's FMA peak is 152). Every sum runs in the order k = 0..K1-1, then
   0..K2-1. For the small batches where a library call's fixed cost is most of the product and
   MKL repacks the weight on every call (fused.py). */
enum { GEMM_PREFETCH = 4 };

#define GEMM_TERM(T, ROWS, COLS, a, lda, K, panel)                                                  \
    for (int64_t k = 0; k < K; ++k) {                                                              \
        const T *bk = panel + k * COLS;                                                            \
        for (int q = 0; q < 4; ++q)                                                                \
            __builtin_prefetch((const char *)(bk + GEMM_PREFETCH * COLS) + 64 * q);                \
        for (int r = 0; r < ROWS; ++r) {                                                           \
            T ar = a[r * lda + k];                                                                 \
            for (int u = 0; u < COLS; ++u) acc[r][u] += ar * bk[u];                                \
        }                                                                                          \
    }

#define GEMM_BLOCK(NAME, T, ROWS, COLS)                                                             \
    static inline void NAME(const T *RESTRICT a1, int64_t lda1, int64_t K1, const T *RESTRICT p1, \
                            const T *RESTRICT a2, int64_t lda2, int64_t K2, const T *RESTRICT p2, \
                            T *RESTRICT c, int64_t ldc, int load) {                                \
        T acc[ROWS][COLS];                                                                         \
        if (load) {                                                                                \
            for (int r = 0; r < ROWS; ++r) memcpy(acc[r], c + r * ldc, sizeof acc[r]);            \
        } else {                                                                                   \
            for (int r = 0; r < ROWS; ++r)                                                         \
                for (int u = 0; u < COLS; ++u) acc[r][u] = 0;                                      \
        }                                                                                          \
        GEMM_TERM(T, ROWS, COLS, a1, lda1, K1, p1)                                                 \
        GEMM_TERM(T, ROWS, COLS, a2, lda2, K2, p2)                                                 \
        for (int r = 0; r < ROWS; ++r) memcpy(c + r * ldc, acc[r], sizeof acc[r]);                \
    }

/* The R < COLS columns after the panels, one row at a time, in the same order of sums. */
#define GEMM_REST(NAME, T)                                                                          \
    static void NAME(int64_t n, int64_t R, const T *RESTRICT a1, int64_t lda1, int64_t K1,        \
                     const T *RESTRICT r1, const T *RESTRICT a2, int64_t lda2, int64_t K2,        \
                     const T *RESTRICT r2, T *RESTRICT c, int64_t ldc, int load) {                 \
        for (int64_t j = 0; j < n; ++j) {                                                          \
            T *cj = c + j * ldc;                                                                   \
            if (!load)                                                                             \
                for (int64_t u = 0; u < R; ++u) cj[u] = 0;                                         \
            for (int64_t k = 0; k < K1; ++k)                                                       \
                for (int64_t u = 0; u < R; ++u) cj[u] += a1[j * lda1 + k] * r1[k * R + u];        \
            for (int64_t k = 0; k < K2; ++k)                                                       \
                for (int64_t u = 0; u < R; ++u) cj[u] += a2[j * lda2 + k] * r2[k * R + u];        \
        }                                                                                          \
    }

#define GEMM(NAME, T, COLS, REST, B6, B4, B2, B1)                                                   \
    static void NAME(int64_t n, int64_t N, const T *RESTRICT a1, int64_t lda1, int64_t K1,        \
                     const T *RESTRICT bp1, const T *RESTRICT a2, int64_t lda2, int64_t K2,       \
                     const T *RESTRICT bp2, T *RESTRICT c, int64_t ldc, int accumulate) {          \
        const int64_t panels = N / COLS;                                                           \
        for (int64_t p = 0; p < panels; ++p) {                                                     \
            const T *q1 = bp1 + p * K1 * COLS, *q2 = bp2 + p * K2 * COLS;                          \
            T *cp = c + p * COLS;                                                                  \
            int64_t j = 0;                                                                         \
            /* eight rows left run as two blocks of four, not six and two: each block streams   \
               the panel once, and a 2-row block's FMAs wait on its loads */                       \
            for (; j + 6 <= n && n - j != 8; j += 6)                                               \
                B6(a1 + j * lda1, lda1, K1, q1, a2 + j * lda2, lda2, K2, q2, cp + j * ldc, ldc, accumulate); \
            for (; j + 4 <= n; j += 4)                                                             \
                B4(a1 + j * lda1, lda1, K1, q1, a2 + j * lda2, lda2, K2, q2, cp + j * ldc, ldc, accumulate); \
            if (j + 2 <= n) {                                                                      \
                B2(a1 + j * lda1, lda1, K1, q1, a2 + j * lda2, lda2, K2, q2, cp + j * ldc, ldc, accumulate); \
                j += 2;                                                                            \
            }                                                                                      \
            if (j < n)                                                                             \
                B1(a1 + j * lda1, lda1, K1, q1, a2 + j * lda2, lda2, K2, q2, cp + j * ldc, ldc, accumulate); \
        }                                                                                          \
        if (N > panels * COLS)                                                                     \
            REST(n, N - panels * COLS, a1, lda1, K1, bp1 + panels * K1 * COLS, a2, lda2, K2,       \
                 bp2 + panels * K2 * COLS, c + panels * COLS, ldc, accumulate);                    \
    }

/* b (K, N), element (k, u) at b[k*ld_k + u*ld_n] (a transposed weight: ld_k = 1), into the
   GEMM's panels above at out (K*N elements). Reads each panel column by column, so a weight's
   rows are read contiguously and the writes (COLS apart) stay within the panel in the L1 cache;
   torch's strided copy of the same two transposes took 0.4 ms of an H=128 layer's call. */
#define PACK_PANELS(NAME, T, COLS)                                                                  \
    void NAME(int64_t K, int64_t N, const T *RESTRICT b, int64_t ld_k, int64_t ld_n,               \
              T *RESTRICT out) {                                                                   \
        for (int64_t start = 0; start < N; start += COLS) {                                        \
            const int64_t width = N - start < COLS ? N - start : COLS;                             \
            T *panel = out + start * K;                                                            \
            for (int64_t u = 0; u < width; ++u)                                                    \
                for (int64_t k = 0; k < K; ++k)                                                    \
                    panel[k * width + u] = b[k * ld_k + (start + u) * ld_n];                       \
        }                                                                                          \
    }

#define AT(T, address) ((T *)(intptr_t)(address))

/* The LSTM forward of one segment's `steps` steps on n rows, without a projection: per step
   pre = h_{t-1} W_hh^T (wt = W_hh^T, (K, 4H), packed in panels), then the step above. Step s's
   views come as arrays of addresses and row strides (a zero address: no record, no gather
   index). */
#define LSTM_FORWARD_LOOP(NAME, STEP, GEMM_T, T)                                                    \
    void NAME(int64_t steps, int64_t n, int64_t H, int64_t K, const T *RESTRICT wt,                \
              const int64_t *gx, const int64_t *ld_gx, const int64_t *index, const int64_t *h_in,  \
              const int64_t *ld_h_in, T *work, int64_t ld_work, const int64_t *rec,                \
              const int64_t *ld_rec, const int64_t *h, const int64_t *ld_h, T *pre) {              \
        for (int64_t s = 0; s < steps; ++s) {                                                      \
            const T *hs = AT(const T, h_in[s]);                                                    \
            GEMM_T(n, 4 * H, hs, ld_h_in[s], K, wt, hs, ld_h_in[s], 0, wt, pre, 4 * H, 0);         \
            STEP(n, H, pre, 4 * H, AT(const T, gx[s]), ld_gx[s], AT(const int64_t, index[s]), work, \
                 ld_work, AT(T, rec[s]), ld_rec[s], AT(T, h[s]), ld_h[s]);                         \
        }                                                                                          \
    }

/* The LSTM inference forward of one segment (no record, no projection) with the input
   projection inside the loop: per step pre = x_t W_ih^T + h_{t-1} W_hh^T (wi = W_ih^T (I, 4H)
   and wh = W_hh^T (K, 4H), both packed in panels), then the step above with the bias (4H,) as
   every row's gx. No (T, B, 4H) gx is written and read back: at B=64, H=64 that round trip
   through memory and the library's product of all steps cost more than the products here. */
#define LSTM_INFERENCE_LOOP(NAME, STEP, GEMM_T, T)                                                  \
    void NAME(int64_t steps, int64_t n, int64_t H, int64_t I, int64_t K, const T *RESTRICT wi,    \
              const T *RESTRICT wh, const T *RESTRICT bias, const int64_t *x, const int64_t *ld_x, \
              const int64_t *h_in, const int64_t *ld_h_in, T *work, int64_t ld_work,               \
              const int64_t *h, const int64_t *ld_h, T *pre) {                                     \
        for (int64_t s = 0; s < steps; ++s) {                                                      \
            GEMM_T(n, 4 * H, AT(const T, x[s]), ld_x[s], I, wi, AT(const T, h_in[s]), ld_h_in[s], K, \
                   wh, pre, 4 * H, 0);                                                             \
            STEP(n, H, pre, 4 * H, bias, 0, 0, work, ld_work, 0, 0, AT(T, h[s]), ld_h[s]);         \
        }                                                                                          \
    }

/* The LSTM backward of one segment, last step first, without a projection: per step the step
   above, then dh_{t-1} += dgates W_hh (w = W_hh, (4H, K), packed in panels). */
#define LSTM_BACKWARD_LOOP(NAME, STEP, GEMM_T, T)                                                   \
    void NAME(int64_t steps, int64_t n, int64_t H, int64_t K, const T *RESTRICT w,                 \
              const int64_t *rec, const int64_t *ld_rec, const int64_t *c_prev,                    \
              const int64_t *ld_c_prev, const int64_t *dh, const int64_t *ld_dh, T *dc,            \
              const int64_t *dgates, const int64_t *ld_dgates, const int64_t *dh_in,               \
              const int64_t *ld_dh_in) {                                                           \
        for (int64_t s = steps - 1; s >= 0; --s) {                                                 \
            STEP(n, H, AT(const T, rec[s]), ld_rec[s], AT(const T, c_prev[s]), ld_c_prev[s],       \
                 AT(const T, dh[s]), ld_dh[s], dc, AT(T, dgates[s]), ld_dgates[s], 0, 0);          \
            const T *ds = AT(const T, dgates[s]);                                                  \
            GEMM_T(n, K, ds, ld_dgates[s], 4 * H, w, ds, ld_dgates[s], 0, w, AT(T, dh_in[s]),      \
                   ld_dh_in[s], 1);                                                                \
        }                                                                                          \
    }

LSTM_FORWARD(fastrnn_lstm_forward_f32, float, sigmoid_f, tanh_f)
LSTM_FORWARD(fastrnn_lstm_forward_f64, double, sigmoid_d, tanh_d)
LSTM_BACKWARD(fastrnn_lstm_backward_f32, float, tanh_f)
LSTM_BACKWARD(fastrnn_lstm_backward_f64, double, tanh_d)
GRU_FORWARD(fastrnn_gru_forward_f32, float, sigmoid_f, tanh_f)
GRU_FORWARD(fastrnn_gru_forward_f64, double, sigmoid_d, tanh_d)
GRU_BACKWARD(fastrnn_gru_backward_f32, float)
GRU_BACKWARD(fastrnn_gru_backward_f64, double)
/* A panel row is 256 bytes in both types: 64 floats, 32 doubles (4 AVX-512 registers). */
GEMM_BLOCK(block6_f32, float, 6, 64)
GEMM_BLOCK(block4_f32, float, 4, 64)
GEMM_BLOCK(block2_f32, float, 2, 64)
GEMM_BLOCK(block1_f32, float, 1, 64)
GEMM_BLOCK(block6_f64, double, 6, 32)
GEMM_BLOCK(block4_f64, double, 4, 32)
GEMM_BLOCK(block2_f64, double, 2, 32)
GEMM_BLOCK(block1_f64, double, 1, 32)
GEMM_REST(gemm_rest_f32, float)
GEMM_REST(gemm_rest_f64, double)
GEMM(gemm_f32, float, 64, gemm_rest_f32, block6_f32, block4_f32, block2_f32, block1_f32)
GEMM(gemm_f64, double, 32, gemm_rest_f64, block6_f64, block4_f64, block2_f64, block1_f64)
PACK_PANELS(fastrnn_pack_panels_f32, float, 64)
PACK_PANELS(fastrnn_pack_panels_f64, double, 32)
LSTM_FORWARD_LOOP(fastrnn_lstm_forward_loop_f32, fastrnn_lstm_forward_f32, gemm_f32, float)
LSTM_FORWARD_LOOP(fastrnn_lstm_forward_loop_f64, fastrnn_lstm_forward_f64, gemm_f64, double)
LSTM_INFERENCE_LOOP(fastrnn_lstm_inference_loop_f32, fastrnn_lstm_forward_f32, gemm_f32, float)
LSTM_INFERENCE_LOOP(fastrnn_lstm_inference_loop_f64, fastrnn_lstm_forward_f64, gemm_f64, double)
LSTM_BACKWARD_LOOP(fastrnn_lstm_backward_loop_f32, fastrnn_lstm_backward_f32, gemm_f32, float)
LSTM_BACKWARD_LOOP(fastrnn_lstm_backward_loop_f64, fastrnn_lstm_backward_f64, gemm_f64, double)

/* The float activations alone, for the tests that hold them against torch's. */
void fastrnn_sigmoid_f32(int64_t n, const float *RESTRICT x, float *RESTRICT y) {
    for (int64_t k = 0; k < n; ++k) y[k] = sigmoid_f(x[k]);
}

void fastrnn_tanh_f32(int64_t n, const float *RESTRICT x, float *RESTRICT y) {
    for (int64_t k = 0; k < n; ++k) y[k] = tanh_f(x[k]);
}
