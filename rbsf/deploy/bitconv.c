/* Bit-packed binary convolution for the RB-SF CPU engine (C ABI, loaded with ctypes).
 *
 * Bit convention: bit 1 = value -1, bit 0 = value +1 (so +1 padding and unused tail channels
 * are zero bits). Activations are packed along channels into 64-bit words, layout
 * [N][Hp][Wp][G][CW] with CW = ceil(Cg / 64). Weights use [G][OB][K][K][CW][LANES]: blocks of
 * LANES output channels innermost, so one activation word is XORed with LANES filters at once.
 * For +-1 vectors of real length n: dot = n - 2 * popcount(a XOR w) (tail bits are 0 in both).
 * Output: out[n][oy][ox][o] = scale[o] * dot + shift[o] (float, NHWC).
 *
 * Also here, so a tracker frame needs no PyTorch kernel: the real-valued first convolution
 * (rbsf_conv_real, exact fp32 FMAs in a fixed order), its 8-bit variant (rbsf_conv_int8, exact
 * integer sums), and SiamFC's correlation head (rbsf_xcorr).
 *
 * Instruction sets are levels (ISA_*): scalar < avx2 (+FMA, POPCNT) < avx512 (F/BW/DQ/VL) <
 * vnni (+VNNI, VPOPCNTDQ) < bf16 (+AVX512_BF16). A level is supported when the CPU has its
 * defining feature and it is not above the cap (rbsf_set_max_isa, from RBSF_MAX_ISA); each
 * entry point takes a level (-1: the best supported) and runs its best kernel at or below it,
 * using only the features of that level that the CPU has (so a cap stands for an older CPU).
 * All paths compute the same floats: the affine map is one multiply then one add, never fused
 * (-ffp-contract=off), the stem's taps are explicit, correctly rounded FMAs in one order.
 *
 * The boundary checks itself: output sizes come from rbsf_out_size only, every entry point
 * takes the output's dimensions as allocated by the caller and refuses a mismatch, bad
 * geometry or a failed allocation before any kernel runs (return codes RBSF_*).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

#define LANES 8
#define MAX_CHANNELS 4096
#define AVX2 "avx2,popcnt,fma"
#define AVX512 "avx512f,avx512vl,avx512dq,avx512bw"
#define AVX512_POPCNT AVX512 ",avx512vpopcntdq"
#define VNNI AVX512 ",avx512vnni"

enum { RBSF_OK = 0, RBSF_UNSUPPORTED = -1, RBSF_NO_MEMORY = -2, RBSF_BAD_ARGUMENT = -3 };
enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_VNNI = 3, ISA_BF16 = 4, ISA_LEVELS = 5 };
enum { F_AVX2 = 1, F_AVX512 = 2, F_VPOPCNT = 4, F_VNNI = 8, F_BF16 = 16 };

/* Features each level may use; the first feature a level adds defines it. */
static const unsigned LEVEL_FEATURES[ISA_LEVELS] = {
    0, F_AVX2, F_AVX2 | F_AVX512, F_AVX2 | F_AVX512 | F_VNNI | F_VPOPCNT,
    F_AVX2 | F_AVX512 | F_VNNI | F_VPOPCNT | F_BF16};
static const unsigned LEVEL_DEFINES[ISA_LEVELS] = {0, F_AVX2, F_AVX512, F_VNNI, F_BF16};
static atomic_int max_level = ISA_LEVELS - 1;

static unsigned cpu_features(void)
{
    __builtin_cpu_init();
    unsigned f = 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
        && __builtin_cpu_supports("popcnt"))
        f |= F_AVX2;
    if ((f & F_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")) {
        f |= F_AVX512;
        if (__builtin_cpu_supports("avx512vpopcntdq")) f |= F_VPOPCNT;
        if (__builtin_cpu_supports("avx512vnni")) f |= F_VNNI;
        if (__builtin_cpu_supports("avx512bf16")) f |= F_BF16;
    }
    return f;
}

int rbsf_lanes(void) { return LANES; }

/* Cap the levels every later call may use (RBSF_MAX_ISA); returns the cap in force. */
int rbsf_set_max_isa(int level)
{
    if (level >= 0 && level < ISA_LEVELS) atomic_store(&max_level, level);
    return atomic_load(&max_level);
}

int rbsf_isa_supported(int isa)
{
    if (isa < 0 || isa >= ISA_LEVELS || isa > atomic_load(&max_level)) return 0;
    return (cpu_features() & LEVEL_DEFINES[isa]) == LEVEL_DEFINES[isa];
}

int rbsf_best_isa(void)
{
    for (int isa = ISA_LEVELS - 1; isa > ISA_SCALAR; --isa)
        if (rbsf_isa_supported(isa)) return isa;
    return ISA_SCALAR;
}

/* The features a call at level `isa` may use (-1: best level); -1 when the level is not
 * supported. */
static int usable_features(int *isa)
{
    if (*isa < 0) *isa = rbsf_best_isa();
    if (!rbsf_isa_supported(*isa)) return -1;
    return (int)(cpu_features() & LEVEL_FEATURES[*isa]);
}

/* Output length of a valid (no padding beyond `pad`) window of size k and stride s over n
 * inputs: floor((n + 2 pad - k) / s) + 1, or -1 when the window does not fit or a parameter
 * is out of range. The one place where output sizes are computed (Python calls it too). */
int64_t rbsf_out_size(int64_t n, int64_t k, int64_t stride, int64_t pad)
{
    if (n < 1 || k < 1 || stride < 1 || pad < 0 || n + 2 * pad < k) return -1;
    return (n + 2 * pad - k) / stride + 1;
}

/* ---- Row pool: a few persistent pthreads sharing the rows of one job ----------------------
 * The caller posts a job, works on it too, and returns as soon as every row is done: rows are
 * claimed one at a time through an atomic counter, so a worker that the OS has not scheduled
 * yet (a busy machine) simply claims nothing, instead of stalling the job at a barrier.
 * Workers sleep on a condition variable between jobs. fork(): the prepare handler waits for
 * the running job to end and holds the pool's locks, so the child starts from an idle pool
 * (its locks released, no workers, no job, nothing counted as active). */
#define MAX_WORKERS 63

typedef void (*row_fn)(const void *job, int64_t row);

static struct {
    pthread_mutex_t mu;          /* guards fn / job / total / want / gen and worker start-up */
    pthread_cond_t wake;
    pthread_mutex_t submit;      /* one job at a time */
    int workers;
    long gen;
    row_fn fn;                   /* NULL once the current job is closed */
    const void *job;
    int64_t total;
    int want;
    atomic_llong next, done;
    atomic_int active;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
        .submit = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

static void run_rows(row_fn fn, const void *job, int64_t total)
{
    for (;;) {
        const int64_t row = atomic_fetch_add(&pool.next, 1);
        if (row >= total) return;
        fn(job, row);
        atomic_fetch_add(&pool.done, 1);
    }
}

static void *worker_main(void *arg)
{
    const int index = (int)(intptr_t)arg;
    long seen = 0;
    for (;;) {
        pthread_mutex_lock(&pool.mu);
        while (pool.gen == seen) pthread_cond_wait(&pool.wake, &pool.mu);
        seen = pool.gen;
        const row_fn fn = pool.fn;
        const void *job = pool.job;
        const int64_t total = pool.total;
        const int join = fn != NULL && index < pool.want - 1;
        if (join) atomic_fetch_add(&pool.active, 1);
        pthread_mutex_unlock(&pool.mu);
        if (join) {
            run_rows(fn, job, total);
            atomic_fetch_sub(&pool.active, 1);
        }
    }
    return NULL;
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&pool.submit);  /* no job runs from here until the fork is done */
    pthread_mutex_lock(&pool.mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.submit);
}

static void fork_child(void)
{
    pthread_cond_init(&pool.wake, NULL);  /* its waiters were the parent's workers */
    pool.workers = 0;  /* the child has none: its first job starts new ones */
    pool.gen = 0;
    pool.fn = NULL;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.done, 0);
    atomic_store(&pool.active, 0);
    pthread_mutex_unlock(&pool.mu);  /* held by this thread since fork_prepare */
    pthread_mutex_unlock(&pool.submit);
}

static void register_fork_handler(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }

static void parallel_rows(row_fn fn, const void *job, int64_t total, int threads)
{
    pthread_once(&fork_handler_once, register_fork_handler);
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    if (threads <= 1 || total <= 1) {
        for (int64_t row = 0; row < total; ++row) fn(job, row);
        return;
    }
    pthread_mutex_lock(&pool.submit);
    pthread_mutex_lock(&pool.mu);
    while (pool.workers < threads - 1) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, (void *)(intptr_t)pool.workers) != 0) break;
        pthread_detach(thread);
        ++pool.workers;  /* when none can start, the caller does every row itself */
    }
    atomic_store(&pool.next, 0);
    atomic_store(&pool.done, 0);
    pool.fn = fn;
    pool.job = job;
    pool.total = total;
    pool.want = threads;
    ++pool.gen;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);

    run_rows(fn, job, total);
    while (atomic_load(&pool.done) < total) sched_yield();  /* rows claimed by workers */
    pthread_mutex_lock(&pool.mu);
    pool.fn = NULL;  /* late workers see a closed job */
    pthread_mutex_unlock(&pool.mu);
    while (atomic_load(&pool.active) > 0) sched_yield();
    pthread_mutex_unlock(&pool.submit);
}

typedef struct {
    const float *x;
    int64_t n, h, w, c, groups, pad;
    int pool;
    const float *scale, *shift;
    uint64_t *out;
    int64_t cg, cw, ho, wo, hp, wp;
} pack_args;

/* The value of every channel at output pixel (b, y, xx): pooled, then affine. */
static inline __attribute__((always_inline))
void pack_values(const pack_args *a, int64_t b, int64_t y, int64_t xx, float *v)
{
    const int64_t c = a->c;
    if (a->pool) {
        const float *src = a->x + ((b * a->h + 2 * y) * a->w + 2 * xx) * c;
        memcpy(v, src, sizeof(float) * c);
        for (int64_t dy = 0; dy < 3; ++dy)
            for (int64_t dx = 0; dx < 3; ++dx) {
                const float *q = src + (dy * a->w + dx) * c;
                for (int64_t i = 0; i < c; ++i) v[i] = q[i] > v[i] ? q[i] : v[i];
            }
    } else {
        memcpy(v, a->x + ((b * a->h + y) * a->w + xx) * c, sizeof(float) * c);
    }
    if (a->scale)
        for (int64_t i = 0; i < c; ++i) v[i] = v[i] * a->scale[i] + a->shift[i];
}

static inline uint64_t *pack_dst(const pack_args *a, int64_t b, int64_t y, int64_t xx)
{
    return a->out + ((b * a->hp + y + a->pad) * a->wp + xx + a->pad) * a->groups * a->cw;
}

static void pack_scalar(const pack_args *a, int64_t b, int64_t y, float *v)
{
    for (int64_t xx = 0; xx < a->wo; ++xx) {
        pack_values(a, b, y, xx, v);
        uint64_t *dst = pack_dst(a, b, y, xx);
        for (int64_t g = 0; g < a->groups; ++g)
            for (int64_t wd = 0; wd < a->cw; ++wd) {
                const float *src = v + g * a->cg + wd * 64;
                const int64_t len = a->cg - wd * 64 < 64 ? a->cg - wd * 64 : 64;
                uint64_t word = 0;
                for (int64_t j = 0; j < len; ++j) word |= (uint64_t)(src[j] < 0.0f) << j;
                dst[g * a->cw + wd] = word;
            }
    }
}

__attribute__((target(AVX2)))
static void pack_avx2(const pack_args *a, int64_t b, int64_t y, float *v)
{
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t xx = 0; xx < a->wo; ++xx) {
        pack_values(a, b, y, xx, v);
        uint64_t *dst = pack_dst(a, b, y, xx);
        for (int64_t g = 0; g < a->groups; ++g)
            for (int64_t wd = 0; wd < a->cw; ++wd) {
                const float *src = v + g * a->cg + wd * 64;
                const int64_t len = a->cg - wd * 64 < 64 ? a->cg - wd * 64 : 64;
                uint64_t word = 0;
                int64_t j = 0;
                for (; j + 8 <= len; j += 8) {  /* 8 comparisons at once */
                    const __m256 lt = _mm256_cmp_ps(_mm256_loadu_ps(src + j), zero, _CMP_LT_OQ);
                    word |= (uint64_t)_mm256_movemask_ps(lt) << j;
                }
                for (; j < len; ++j) word |= (uint64_t)(src[j] < 0.0f) << j;
                dst[g * a->cw + wd] = word;
            }
    }
}

__attribute__((target(AVX512)))
static void pack_avx512(const pack_args *a, int64_t b, int64_t y, float *v)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t xx = 0; xx < a->wo; ++xx) {
        pack_values(a, b, y, xx, v);
        uint64_t *dst = pack_dst(a, b, y, xx);
        for (int64_t g = 0; g < a->groups; ++g)
            for (int64_t wd = 0; wd < a->cw; ++wd) {
                const float *src = v + g * a->cg + wd * 64;
                const int64_t len = a->cg - wd * 64 < 64 ? a->cg - wd * 64 : 64;
                uint64_t word = 0;
                for (int64_t j = 0; j < len; j += 16) {
                    const int64_t rest = len - j;
                    const __mmask16 m = rest >= 16 ? 0xffff : (__mmask16)((1u << rest) - 1);
                    const __m512 x = _mm512_maskz_loadu_ps(m, src + j);
                    word |= (uint64_t)_mm512_mask_cmp_ps_mask(m, x, zero, _CMP_LT_OQ) << j;
                }
                dst[g * a->cw + wd] = word;
            }
    }
}

typedef struct {
    const pack_args *a;
    void (*kernel)(const pack_args *, int64_t, int64_t, float *);
} pack_job;

static void pack_row(const void *job, int64_t row)
{
    const pack_job *j = (const pack_job *)job;
    float v[MAX_CHANNELS];  /* c <= MAX_CHANNELS, checked by rbsf_pack_nhwc */
    j->kernel(j->a, row / j->a->ho, row % j->a->ho, v);
}

/* Pack the signs of an NHWC float tensor (N, H, W, C) into [N][Ho+2p][Wo+2p][G][CW], where
 * each value first goes through the ops pending from the previous layer: an optional 3x3 /
 * stride-2 max-pool (Ho = rbsf_out_size(H, 3, 2, 0), else Ho = H), then an optional
 * per-channel affine map v * scale[c] + shift[c] (scale NULL: none). Bit = (v < 0).
 * out_h, out_w: the padded output size the caller allocated (Ho + 2p, Wo + 2p). */
int rbsf_pack_nhwc(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, int64_t groups,
                   int64_t pad, int pool, const float *scale, const float *shift, uint64_t *out,
                   int64_t out_h, int64_t out_w, int isa, int threads)
{
    const int features = usable_features(&isa);
    if (features < 0) return RBSF_UNSUPPORTED;
    if (x == NULL || out == NULL || n < 1 || c < 1 || c > MAX_CHANNELS || groups < 1
        || c % groups != 0 || pad < 0 || (scale == NULL) != (shift == NULL))
        return RBSF_BAD_ARGUMENT;
    pack_args a = {x, n, h, w, c, groups, pad, pool, scale, shift, out, c / groups, 0, 0, 0, 0, 0};
    a.cw = (a.cg + 63) / 64;
    a.ho = pool ? rbsf_out_size(h, 3, 2, 0) : rbsf_out_size(h, 1, 1, 0);
    a.wo = pool ? rbsf_out_size(w, 3, 2, 0) : rbsf_out_size(w, 1, 1, 0);
    if (a.ho < 1 || a.wo < 1) return RBSF_BAD_ARGUMENT;
    a.hp = a.ho + 2 * pad;
    a.wp = a.wo + 2 * pad;
    if (a.hp != out_h || a.wp != out_w) return RBSF_BAD_ARGUMENT;
    memset(out, 0, sizeof(uint64_t) * n * a.hp * a.wp * groups * a.cw);
    pack_job job = {&a, (features & F_AVX512) ? pack_avx512
                        : (features & F_AVX2) ? pack_avx2 : pack_scalar};
    parallel_rows(pack_row, &job, n * a.ho, threads);
    return RBSF_OK;
}

typedef struct {
    const uint64_t *act;
    int64_t n, hp, wp, groups, cw;
    const uint64_t *wts;
    int64_t out_channels, k, stride, kreal;
    const float *scale, *shift;
    float *out;
    int64_t ho, wo, og, ob;
    const int64_t *offsets;  /* word offset of tap (ky, kx, w) from its window's corner */
} conv_args;

static inline void finish(const conv_args *a, const int64_t *acc, int64_t g, int64_t blk,
                          float *dst)
{
    for (int l = 0; l < LANES; ++l) {
        const int64_t o = blk * LANES + l;
        if (o >= a->og) break;
        const int64_t oc = g * a->og + o;
        dst[oc] = a->scale[oc] * (float)(a->kreal - 2 * acc[l]) + a->shift[oc];
    }
}

#define ROW_OF(a, b, oy, ox, ky) \
    ((a)->act + (((b) * (a)->hp + (oy) * (a)->stride + (ky)) * (a)->wp + (ox) * (a)->stride) \
                * (a)->groups * (a)->cw)

static void conv_scalar(const conv_args *a, int64_t b, int64_t oy)
{
    const int64_t pix = a->groups * a->cw, kkw = a->k * a->k * a->cw;
    for (int64_t ox = 0; ox < a->wo; ++ox) {
        float *dst = a->out + ((b * a->ho + oy) * a->wo + ox) * a->out_channels;
        for (int64_t g = 0; g < a->groups; ++g)
            for (int64_t blk = 0; blk < a->ob; ++blk) {
                int64_t acc[LANES] = {0};
                const uint64_t *wt = a->wts + (g * a->ob + blk) * kkw * LANES;
                for (int64_t ky = 0; ky < a->k; ++ky) {
                    const uint64_t *row = ROW_OF(a, b, oy, ox, ky) + g * a->cw;
                    for (int64_t kx = 0; kx < a->k; ++kx)
                        for (int64_t w = 0; w < a->cw; ++w, wt += LANES) {
                            const uint64_t v = row[kx * pix + w];
                            for (int l = 0; l < LANES; ++l)
                                acc[l] += __builtin_popcountll(v ^ wt[l]);
                        }
                }
                finish(a, acc, g, blk, dst);
            }
    }
}

/* Byte-wise popcounts of a 256-bit vector (nibble table). */
__attribute__((target(AVX2), always_inline))
static inline __m256i popcnt_bytes(__m256i v, __m256i table, __m256i low)
{
    const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(v, low));
    const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
    return _mm256_add_epi8(lo, hi);
}

/* AVX2 tile: one block of 8 output channels (two vectors of 4 words) x NP neighbouring pixels.
 * Popcounts add up byte-wise (at most 8 a tap), folded into 64-bit sums every 31 taps. */
__attribute__((target(AVX2), always_inline))
static inline void tile_avx2(const conv_args *a, int64_t b, int64_t oy, int64_t ox, int64_t g,
                             int64_t blk, const int NP)
{
    const int64_t pix = a->groups * a->cw, kkw = a->k * a->k * a->cw, step = a->stride * pix;
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    __m256i sum[2][2], bytes[2][2];
    for (int p = 0; p < NP; ++p) sum[p][0] = sum[p][1] = zero;
    const uint64_t *wt = a->wts + (g * a->ob + blk) * kkw * LANES;
    const uint64_t *base = ROW_OF(a, b, oy, ox, 0) + g * a->cw;
    for (int64_t j0 = 0; j0 < kkw; j0 += 31) {
        const int64_t end = j0 + 31 < kkw ? j0 + 31 : kkw;
        for (int p = 0; p < NP; ++p) bytes[p][0] = bytes[p][1] = zero;
        for (int64_t j = j0; j < end; ++j) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wt + j * LANES));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wt + j * LANES + 4));
            for (int p = 0; p < NP; ++p) {
                const __m256i v = _mm256_set1_epi64x((long long)base[a->offsets[j] + p * step]);
                bytes[p][0] = _mm256_add_epi8(bytes[p][0],
                                              popcnt_bytes(_mm256_xor_si256(v, w0), table, low));
                bytes[p][1] = _mm256_add_epi8(bytes[p][1],
                                              popcnt_bytes(_mm256_xor_si256(v, w1), table, low));
            }
        }
        for (int p = 0; p < NP; ++p)
            for (int h = 0; h < 2; ++h)
                sum[p][h] = _mm256_add_epi64(sum[p][h], _mm256_sad_epu8(bytes[p][h], zero));
    }
    for (int p = 0; p < NP; ++p) {
        int64_t acc[LANES];
        _mm256_storeu_si256((__m256i *)acc, sum[p][0]);
        _mm256_storeu_si256((__m256i *)(acc + 4), sum[p][1]);
        finish(a, acc, g, blk, a->out + ((b * a->ho + oy) * a->wo + ox + p) * a->out_channels);
    }
}

__attribute__((target(AVX2)))
static void conv_avx2(const conv_args *a, int64_t b, int64_t oy)
{
    int64_t ox = 0;
    for (; ox + 2 <= a->wo; ox += 2)
        for (int64_t g = 0; g < a->groups; ++g)
            for (int64_t blk = 0; blk < a->ob; ++blk) tile_avx2(a, b, oy, ox, g, blk, 2);
    for (; ox < a->wo; ++ox)
        for (int64_t g = 0; g < a->groups; ++g)
            for (int64_t blk = 0; blk < a->ob; ++blk) tile_avx2(a, b, oy, ox, g, blk, 1);
}

/* AVX-512 tile: NB blocks of 8 output channels x NP neighbouring output pixels; every weight
 * vector is loaded once per tile and every activation word broadcast once, NB * NP accumulators
 * stay in registers (NB, NP are constants after inlining). */
__attribute__((target(AVX512_POPCNT), always_inline))
static inline void tile_avx512(const conv_args *a, int64_t b, int64_t oy, int64_t ox, int64_t g,
                               int64_t blk0, const int NB, const int NP)
{
    const int64_t pix = a->groups * a->cw, kkw = a->k * a->k * a->cw, step = a->stride * pix;
    __m512i acc[4][4];
    for (int p = 0; p < NP; ++p)
        for (int q = 0; q < NB; ++q) acc[p][q] = _mm512_setzero_si512();
    const uint64_t *wt0 = a->wts + (g * a->ob + blk0) * kkw * LANES;
    const uint64_t *base = ROW_OF(a, b, oy, ox, 0) + g * a->cw;
    for (int64_t j = 0; j < kkw; ++j) {  /* one flat loop over (ky, kx, word) */
        const uint64_t *at = base + a->offsets[j];
        __m512i v[4];
        for (int p = 0; p < NP; ++p) v[p] = _mm512_set1_epi64((long long)at[p * step]);
        for (int q = 0; q < NB; ++q) {
            const __m512i wv = _mm512_loadu_si512((const void *)(wt0 + (q * kkw + j) * LANES));
            for (int p = 0; p < NP; ++p)
                acc[p][q] = _mm512_add_epi64(acc[p][q],
                                             _mm512_popcnt_epi64(_mm512_xor_si512(v[p], wv)));
        }
    }
    const __m512i kreal = _mm512_set1_epi64(a->kreal);
    for (int q = 0; q < NB; ++q) {
        const int64_t o = (blk0 + q) * LANES, oc = g * a->og + o;
        const __mmask8 m = a->og - o >= LANES ? 0xff : (__mmask8)((1u << (a->og - o)) - 1);
        const __m256 scale = _mm256_maskz_loadu_ps(m, a->scale + oc);
        const __m256 shift = _mm256_maskz_loadu_ps(m, a->shift + oc);
        for (int p = 0; p < NP; ++p) {
            float *dst = a->out + ((b * a->ho + oy) * a->wo + ox + p) * a->out_channels + oc;
            const __m512i dot = _mm512_sub_epi64(kreal, _mm512_slli_epi64(acc[p][q], 1));
            const __m256 value =
                _mm256_add_ps(_mm256_mul_ps(scale, _mm512_cvtepi64_ps(dot)), shift);
            _mm256_mask_storeu_ps(dst, m, value);
        }
    }
}

__attribute__((target(AVX512_POPCNT)))
static void conv_avx512(const conv_args *a, int64_t b, int64_t oy)
{
    int64_t ox = 0;
    for (; ox + 4 <= a->wo; ox += 4)
        for (int64_t g = 0; g < a->groups; ++g) {
            int64_t blk = 0;
            for (; blk + 4 <= a->ob; blk += 4) tile_avx512(a, b, oy, ox, g, blk, 4, 4);
            for (; blk < a->ob; ++blk) tile_avx512(a, b, oy, ox, g, blk, 1, 4);
        }
    for (; ox < a->wo; ++ox)
        for (int64_t g = 0; g < a->groups; ++g) {
            int64_t blk = 0;
            for (; blk + 4 <= a->ob; blk += 4) tile_avx512(a, b, oy, ox, g, blk, 4, 1);
            for (; blk < a->ob; ++blk) tile_avx512(a, b, oy, ox, g, blk, 1, 1);
        }
}

typedef struct {
    const conv_args *a;
    void (*kernel)(const conv_args *, int64_t, int64_t);
} conv_job;

static void conv_row(const void *job, int64_t row)
{
    const conv_job *j = (const conv_job *)job;
    j->kernel(j->a, row / j->a->ho, row % j->a->ho);
}

/* Binary convolution of packed activations [N][Hp][Wp][G][CW] with packed weights; out is
 * NHWC float (N, out_h, out_w, out_channels), out_h / out_w as the caller allocated them.
 * kreal (the +-1 products per dot product, Cg * K * K) must fit the packed words. */
int rbsf_bconv(const uint64_t *act, int64_t n, int64_t hp, int64_t wp, int64_t groups,
               int64_t cw, const uint64_t *wts, int64_t out_channels, int64_t k, int64_t stride,
               int64_t kreal, const float *scale, const float *shift, float *out,
               int64_t out_h, int64_t out_w, int isa, int threads)
{
    const int features = usable_features(&isa);
    if (features < 0) return RBSF_UNSUPPORTED;
    if (act == NULL || wts == NULL || scale == NULL || shift == NULL || out == NULL || n < 1
        || groups < 1 || cw < 1 || out_channels < 1 || out_channels % groups != 0 || k < 1
        || kreal < 1 || kreal % (k * k) != 0 || kreal / (k * k) > 64 * cw
        || kreal / (k * k) <= 64 * (cw - 1))
        return RBSF_BAD_ARGUMENT;
    conv_args a = {act, n, hp, wp, groups, cw, wts, out_channels, k, stride, kreal, scale, shift,
                   out, rbsf_out_size(hp, k, stride, 0), rbsf_out_size(wp, k, stride, 0),
                   out_channels / groups, 0, NULL};
    if (a.ho < 1 || a.wo < 1 || a.ho != out_h || a.wo != out_w) return RBSF_BAD_ARGUMENT;
    a.ob = (a.og + LANES - 1) / LANES;
    int64_t *offsets = malloc(sizeof(int64_t) * k * k * cw);
    if (offsets == NULL) return RBSF_NO_MEMORY;
    for (int64_t ky = 0, j = 0; ky < k; ++ky)
        for (int64_t kx = 0; kx < k; ++kx)
            for (int64_t w = 0; w < cw; ++w) offsets[j++] = (ky * wp + kx) * groups * cw + w;
    a.offsets = offsets;
    conv_job job = {&a, (features & F_AVX512) && (features & F_VPOPCNT) ? conv_avx512
                        : (features & F_AVX2) ? conv_avx2 : conv_scalar};
    parallel_rows(conv_row, &job, n * a.ho, threads);
    free(offsets);
    return RBSF_OK;
}

typedef struct {
    const float *x;
    int64_t n, h, w, c;
    const float *wts, *bias;
    int64_t oc, ocp, k, stride;
    float *out;
    int64_t ho, wo;
} real_args;

/* One output row of the stem for one instruction set: tiles of NP neighbouring output pixels x
 * NV vectors of VW channels (row tail: one pixel x one vector). Per tap the tile's weight vectors
 * are loaded once and each input value is broadcast once. The AVX2 and AVX-512 kernels differ
 * only in vector width and tile shape, so both give the same floats. */
#define REAL_KERNEL(NAME, TARGET, VEC, VW, TILE_P, TILE_V, LOAD, SET1, FMA)                   \
__attribute__((target(TARGET), always_inline))                                                \
static inline void NAME##_tile(const real_args *a, int64_t b, int64_t oy, int64_t ox,         \
                               int64_t v0, const int NP, const int NV)                        \
{                                                                                             \
    const int64_t kc = a->k * a->c, step = a->stride * a->c;                                  \
    VEC acc[TILE_P][TILE_V];                                                                  \
    for (int v = 0; v < NV; ++v) {                                                            \
        const VEC bias = LOAD(a->bias + (v0 + v) * VW);                                       \
        for (int p = 0; p < NP; ++p) acc[p][v] = bias;                                        \
    }                                                                                         \
    for (int64_t ky = 0; ky < a->k; ++ky) {                                                   \
        const float *row =                                                                    \
            a->x + ((b * a->h + oy * a->stride + ky) * a->w + ox * a->stride) * a->c;        \
        const float *wr = a->wts + ky * kc * a->ocp + v0 * VW;                                \
        for (int64_t t = 0; t < kc; ++t, wr += a->ocp) {                                      \
            VEC wv[TILE_V];                                                                   \
            for (int v = 0; v < NV; ++v) wv[v] = LOAD(wr + v * VW);                           \
            for (int p = 0; p < NP; ++p) {                                                    \
                const VEC xv = SET1(row[p * step + t]);                                       \
                for (int v = 0; v < NV; ++v) acc[p][v] = FMA(xv, wv[v], acc[p][v]);          \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    for (int v = 0; v < NV; ++v) {                                                            \
        const int64_t o = (v0 + v) * VW, count = a->oc - o < VW ? a->oc - o : VW;             \
        for (int p = 0; p < NP; ++p) {                                                        \
            float lanes[VW];                                                                  \
            memcpy(lanes, &acc[p][v], sizeof lanes);                                          \
            memcpy(a->out + ((b * a->ho + oy) * a->wo + ox + p) * a->oc + o, lanes,           \
                   sizeof(float) * count);                                                    \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
__attribute__((target(TARGET)))                                                               \
static void NAME(const real_args *a, int64_t b, int64_t oy)                                   \
{                                                                                             \
    const int64_t vectors = (a->oc + VW - 1) / VW;                                            \
    int64_t ox = 0;                                                                           \
    for (; ox + TILE_P <= a->wo; ox += TILE_P) {                                              \
        int64_t v = 0;                                                                        \
        for (; v + TILE_V <= vectors; v += TILE_V) NAME##_tile(a, b, oy, ox, v, TILE_P, TILE_V); \
        for (; v < vectors; ++v) NAME##_tile(a, b, oy, ox, v, TILE_P, 1);                     \
    }                                                                                         \
    for (; ox < a->wo; ++ox) { /* row tail: one pixel, still TILE_V independent sums */       \
        int64_t v = 0;                                                                        \
        for (; v + TILE_V <= vectors; v += TILE_V) NAME##_tile(a, b, oy, ox, v, 1, TILE_V);  \
        for (; v < vectors; ++v) NAME##_tile(a, b, oy, ox, v, 1, 1);                          \
    }                                                                                         \
}

REAL_KERNEL(real_avx2, AVX2, __m256, 8, 2, 4, _mm256_loadu_ps, _mm256_set1_ps,
            _mm256_fmadd_ps)
REAL_KERNEL(real_avx512, AVX512, __m512, 16, 4, 6, _mm512_loadu_ps, _mm512_set1_ps,
            _mm512_fmadd_ps)

typedef struct {
    const real_args *a;
    void (*kernel)(const real_args *, int64_t, int64_t);
} real_job;

static void real_row(const void *job, int64_t row)
{
    const real_job *j = (const real_job *)job;
    j->kernel(j->a, row / j->a->ho, row % j->a->ho);
}

/* Real-valued convolution (see real_args) of stride `stride`, no padding, with AVX2 or AVX-512
 * (the scalar level has no fused multiply-add: RBSF_UNSUPPORTED); out is NHWC float
 * (N, out_h, out_w, oc) as the caller allocated it. */
int rbsf_conv_real(const float *x, int64_t n, int64_t h, int64_t w, int64_t c, const float *wts,
                   const float *bias, int64_t oc, int64_t k, int64_t stride, float *out,
                   int64_t out_h, int64_t out_w, int isa, int threads)
{
    const int features = usable_features(&isa);
    if (features < 0 || !(features & F_AVX2)) return RBSF_UNSUPPORTED;
    if (x == NULL || wts == NULL || bias == NULL || out == NULL || n < 1 || c < 1 || oc < 1)
        return RBSF_BAD_ARGUMENT;
    real_args a = {x, n, h, w, c, wts, bias, oc, (oc + 15) / 16 * 16, k, stride, out,
                   rbsf_out_size(h, k, stride, 0), rbsf_out_size(w, k, stride, 0)};
    if (a.ho < 1 || a.wo < 1 || a.ho != out_h || a.wo != out_w) return RBSF_BAD_ARGUMENT;
    real_job job = {&a, (features & F_AVX512) ? real_avx512 : real_avx2};
    parallel_rows(real_row, &job, n * a.ho, threads);
    return RBSF_OK;
}

/* ---- 8-bit stem convolution, the fast conv1 --------------------------------------------------
 * x: NHWC float (N, H, W, C), first rounded to the nearest integer in [0, 255] (ties to even),
 * or NHWC uint8 pixels as they are (x_is_uint8).
 * Weights: int8 [K][K * C][OCP] (taps of one kernel row in (kx, c) order, OCP = out channels
 * rounded up to 16, zero padded), scale and bias float [OCP]. In NHWC the K * C inputs under
 * one kernel row are contiguous, so the kernels take taps in groups: VNNI 4 uint8 x int8
 * products per VPDPBUSD lane, AVX2 2 int16 products per VPMADDWD lane (pixels widened to
 * int16). Both sums are exact int32 (and below 2^24 for a 3 x 11 x 11 filter, so their float
 * conversion is exact too), so both kernels give the same floats:
 * out (NHWC float, N x Ho x Wo x OC) = (float)sum * scale + bias, one multiply then one add. */
typedef struct {
    const float *src;
    void *x;                 /* uint8 (VNNI) or int16 (AVX2) copy of the pixels */
    int64_t n, h, w, c;
    const void *wts;         /* the kernel's own layout, see rbsf_conv_int8 */
    const float *scale, *bias;
    int64_t oc, ocp, k, stride, groups;  /* groups: taps per kernel row in units of 4 / 2 */
    float *out;
    int64_t ho, wo;
} int8_args;

/* One image row of floats to uint8: clamp to [0, 255], round to nearest even. */
__attribute__((target(VNNI)))
static void to_uint8_row(const void *job, int64_t row)
{
    const int8_args *a = (const int8_args *)job;
    const int64_t len = a->w * a->c;
    const float *src = a->src + row * len;
    uint8_t *dst = (uint8_t *)a->x + row * len;
    const __m512 low = _mm512_setzero_ps(), high = _mm512_set1_ps(255.0f);
    for (int64_t i = 0; i < len; i += 16) {
        const __mmask16 m = len - i >= 16 ? 0xffff : (__mmask16)((1u << (len - i)) - 1);
        const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_maskz_loadu_ps(m, src + i), low), high);
        _mm512_mask_cvtepi32_storeu_epi8(dst + i, m, _mm512_cvtps_epi32(v));
    }
}

/* The same to int16 (AVX2). */
__attribute__((target(AVX2)))
static void to_int16_row(const void *job, int64_t row)
{
    const int8_args *a = (const int8_args *)job;
    const int64_t len = a->w * a->c;
    const float *src = a->src + row * len;
    int16_t *dst = (int16_t *)a->x + row * len;
    const __m256 low = _mm256_setzero_ps(), high = _mm256_set1_ps(255.0f);
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        const __m256i v = _mm256_cvtps_epi32(
            _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(src + i), low), high));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_packs_epi32(_mm256_castsi256_si128(v),
                                                               _mm256_extracti128_si256(v, 1)));
    }
    for (; i < len; ++i) {
        const float v = src[i] < 0.0f ? 0.0f : src[i] > 255.0f ? 255.0f : src[i];
        dst[i] = (int16_t)_mm_cvtss_si32(_mm_set_ss(v));  /* rounds to nearest even */
    }
}

/* VNNI: NP neighbouring output pixels x NV vectors of 16 channels (NP <= 4, NV <= 6);
 * weights [K][G4][OCP / 16][16][4]. */
__attribute__((target(VNNI), always_inline))
static inline void vnni_tile(const int8_args *a, int64_t b, int64_t oy, int64_t ox, int64_t v0,
                             const int NP, const int NV)
{
    const int64_t step = a->stride * a->c;
    __m512i acc[4][6];
    for (int p = 0; p < NP; ++p)
        for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_setzero_si512();
    for (int64_t ky = 0; ky < a->k; ++ky) {
        const uint8_t *row = (const uint8_t *)a->x
            + ((b * a->h + oy * a->stride + ky) * a->w + ox * a->stride) * a->c;
        const int8_t *wr = (const int8_t *)a->wts + (ky * a->groups * a->ocp + v0 * 16) * 4;
        for (int64_t t = 0; t < a->groups; ++t, wr += a->ocp * 4) {
            __m512i wv[6];
            for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_si512((const void *)(wr + v * 64));
            for (int p = 0; p < NP; ++p) {
                int32_t quad;
                memcpy(&quad, row + p * step + 4 * t, sizeof quad);
                const __m512i xv = _mm512_set1_epi32(quad);
                for (int v = 0; v < NV; ++v) acc[p][v] = _mm512_dpbusd_epi32(acc[p][v], xv, wv[v]);
            }
        }
    }
    for (int v = 0; v < NV; ++v) {
        const int64_t o = (v0 + v) * 16, count = a->oc - o < 16 ? a->oc - o : 16;
        const __mmask16 m = (__mmask16)((1u << count) - 1);
        const __m512 scale = _mm512_loadu_ps(a->scale + o), bias = _mm512_loadu_ps(a->bias + o);
        for (int p = 0; p < NP; ++p) {
            const __m512 value =
                _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[p][v]), scale), bias);
            _mm512_mask_storeu_ps(a->out + ((b * a->ho + oy) * a->wo + ox + p) * a->oc + o, m,
                                  value);
        }
    }
}

__attribute__((target(VNNI)))
static void vnni_row(const void *job, int64_t row)
{
    const int8_args *a = (const int8_args *)job;
    const int64_t b = row / a->ho, oy = row % a->ho, vectors = a->ocp / 16;
    int64_t ox = 0;
    for (; ox + 4 <= a->wo; ox += 4) {
        int64_t v = 0;
        for (; v + 6 <= vectors; v += 6) vnni_tile(a, b, oy, ox, v, 4, 6);
        for (; v < vectors; ++v) vnni_tile(a, b, oy, ox, v, 4, 1);
    }
    for (; ox < a->wo; ++ox) {  /* row tail: one pixel, still 6 independent sums */
        int64_t v = 0;
        for (; v + 6 <= vectors; v += 6) vnni_tile(a, b, oy, ox, v, 1, 6);
        for (; v < vectors; ++v) vnni_tile(a, b, oy, ox, v, 1, 1);
    }
}

/* AVX2: NP neighbouring output pixels x NV vectors of 8 channels (NP <= 4, NV <= 2);
 * weights int16 [K][G2][OCP / 8][8][2]. */
__attribute__((target(AVX2), always_inline))
static inline void madd_tile(const int8_args *a, int64_t b, int64_t oy, int64_t ox, int64_t v0,
                             const int NP, const int NV)
{
    const int64_t step = a->stride * a->c;
    __m256i acc[4][2];
    for (int p = 0; p < NP; ++p)
        for (int v = 0; v < NV; ++v) acc[p][v] = _mm256_setzero_si256();
    for (int64_t ky = 0; ky < a->k; ++ky) {
        const int16_t *row = (const int16_t *)a->x
            + ((b * a->h + oy * a->stride + ky) * a->w + ox * a->stride) * a->c;
        const int16_t *wr = (const int16_t *)a->wts + (ky * a->groups * a->ocp + v0 * 8) * 2;
        for (int64_t t = 0; t < a->groups; ++t, wr += a->ocp * 2) {
            __m256i wv[2];
            for (int v = 0; v < NV; ++v) wv[v] = _mm256_loadu_si256((const __m256i *)(wr + v * 16));
            for (int p = 0; p < NP; ++p) {
                int32_t pair;
                memcpy(&pair, row + p * step + 2 * t, sizeof pair);
                const __m256i xv = _mm256_set1_epi32(pair);
                for (int v = 0; v < NV; ++v)
                    acc[p][v] = _mm256_add_epi32(acc[p][v], _mm256_madd_epi16(xv, wv[v]));
            }
        }
    }
    for (int v = 0; v < NV; ++v) {
        const int64_t o = (v0 + v) * 8, count = a->oc - o < 8 ? a->oc - o : 8;
        const __m256 scale = _mm256_loadu_ps(a->scale + o), bias = _mm256_loadu_ps(a->bias + o);
        for (int p = 0; p < NP; ++p) {
            float lanes[8];
            _mm256_storeu_ps(lanes, _mm256_add_ps(
                _mm256_mul_ps(_mm256_cvtepi32_ps(acc[p][v]), scale), bias));
            memcpy(a->out + ((b * a->ho + oy) * a->wo + ox + p) * a->oc + o, lanes,
                   sizeof(float) * count);
        }
    }
}

__attribute__((target(AVX2)))
static void madd_row(const void *job, int64_t row)
{
    const int8_args *a = (const int8_args *)job;
    const int64_t b = row / a->ho, oy = row % a->ho, vectors = (a->oc + 7) / 8;
    int64_t ox = 0;
    for (; ox + 4 <= a->wo; ox += 4) {
        int64_t v = 0;
        for (; v + 2 <= vectors; v += 2) madd_tile(a, b, oy, ox, v, 4, 2);
        for (; v < vectors; ++v) madd_tile(a, b, oy, ox, v, 4, 1);
    }
    for (; ox < a->wo; ++ox) {
        int64_t v = 0;
        for (; v + 2 <= vectors; v += 2) madd_tile(a, b, oy, ox, v, 1, 2);
        for (; v < vectors; ++v) madd_tile(a, b, oy, ox, v, 1, 1);
    }
}

/* 8-bit convolution (see int8_args) of stride `stride`, no padding; weights int8
 * [K][K * C][OCP]; out as the caller allocated it (N, out_h, out_w, oc). VNNI where the level
 * allows, else AVX2; the scalar level is RBSF_UNSUPPORTED (the caller has a fallback). */
int rbsf_conv_int8(const void *x, int x_is_uint8, int64_t n, int64_t h, int64_t w, int64_t c,
                   const int8_t *wts, const float *scale, const float *bias, int64_t oc,
                   int64_t k, int64_t stride, float *out, int64_t out_h, int64_t out_w, int isa,
                   int threads)
{
    const int features = usable_features(&isa);
    if (features < 0 || !(features & F_AVX2)) return RBSF_UNSUPPORTED;
    if (x == NULL || wts == NULL || scale == NULL || bias == NULL || out == NULL || n < 1
        || c < 1 || oc < 1)
        return RBSF_BAD_ARGUMENT;
    const int vnni = (features & F_VNNI) != 0;
    const int64_t per = vnni ? 4 : 2, kc = k * c, ocp = (oc + 15) / 16 * 16;
    int8_args a = {(const float *)x, NULL, n, h, w, c, NULL, scale, bias, oc, ocp, k, stride, (kc + per - 1) / per,
                   out, rbsf_out_size(h, k, stride, 0), rbsf_out_size(w, k, stride, 0)};
    if (a.ho < 1 || a.wo < 1 || a.ho != out_h || a.wo != out_w) return RBSF_BAD_ARGUMENT;
    const int64_t elem = vnni ? 1 : 2, lanes = vnni ? 16 : 8, taps = a.groups * per;
    void *pixels = malloc((size_t)(n * h * w * c + per) * elem);  /* read in groups of `per` */
    void *packed = malloc((size_t)(k * taps * ocp) * elem);
    if (pixels == NULL || packed == NULL) {
        free(pixels);
        free(packed);
        return RBSF_NO_MEMORY;
    }
    memset((char *)pixels + n * h * w * c * elem, 0, per * elem);
    /* [K][KC][OCP] -> [K][G][OCP / lanes][lanes][per], zero past K * C */
    for (int64_t ky = 0; ky < k; ++ky)
        for (int64_t t = 0; t < taps; ++t)
            for (int64_t o = 0; o < ocp; ++o) {
                const int8_t value = t < kc ? wts[(ky * kc + t) * ocp + o] : 0;
                const int64_t at = (((ky * a.groups + t / per) * (ocp / lanes) + o / lanes)
                                    * lanes + o % lanes) * per + t % per;
                if (vnni) ((int8_t *)packed)[at] = value;
                else ((int16_t *)packed)[at] = value;
            }
    a.x = pixels;
    a.wts = packed;
    if (x_is_uint8 && vnni) {
        memcpy(pixels, x, (size_t)(n * h * w * c));
    } else if (x_is_uint8) {
        for (int64_t i = 0; i < n * h * w * c; ++i) ((int16_t *)pixels)[i] = ((const uint8_t *)x)[i];
    } else {
        parallel_rows(vnni ? to_uint8_row : to_int16_row, &a, n * h, threads);
    }
    parallel_rows(vnni ? vnni_row : madd_row, &a, n * a.ho, threads);
    free(pixels);
    free(packed);
    return RBSF_OK;
}

/* ---- SiamFC's correlation head ---------------------------------------------------------------
 * z: one exemplar embedding, NHWC float (1, HZ, WZ, C); x: search embeddings (N, HX, WX, C);
 * out[b][i][j] = scale * sum over (u, v, c) of z[u][v][c] * x[b][i + u][j + v][c], float
 * (N, HX - HZ + 1, WX - WZ + 1). Per output, each of the HZ rows of the exemplar is one
 * contiguous dot product of WZ * C floats with the search row under it. */
typedef struct {
    const float *z, *x;
    int64_t hz, wz, c, hx, wx;
    float scale;
    float *out;
    int64_t ho, wo;
} xcorr_args;

static void xcorr_scalar(const void *job, int64_t row)
{
    const xcorr_args *a = (const xcorr_args *)job;
    const int64_t b = row / a->ho, i = row % a->ho, len = a->wz * a->c;
    for (int64_t j = 0; j < a->wo; ++j) {
        float sum = 0.0f;
        for (int64_t u = 0; u < a->hz; ++u) {
            const float *zr = a->z + u * len, *xr = a->x + ((b * a->hx + i + u) * a->wx + j) * a->c;
            for (int64_t t = 0; t < len; ++t) sum += zr[t] * xr[t];
        }
        a->out[row * a->wo + j] = sum * a->scale;
    }
}

/* NP neighbouring outputs share each exemplar vector (NP <= 4). */
__attribute__((target(AVX2), always_inline))
static inline void xcorr_avx2_tile(const xcorr_args *a, int64_t row, int64_t j, const int NP)
{
    const int64_t b = row / a->ho, i = row % a->ho, len = a->wz * a->c;
    __m256 acc[4];
    float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int p = 0; p < NP; ++p) acc[p] = _mm256_setzero_ps();
    for (int64_t u = 0; u < a->hz; ++u) {
        const float *zr = a->z + u * len, *xr = a->x + ((b * a->hx + i + u) * a->wx + j) * a->c;
        int64_t t = 0;
        for (; t + 8 <= len; t += 8) {
            const __m256 zv = _mm256_loadu_ps(zr + t);
            for (int p = 0; p < NP; ++p)
                acc[p] = _mm256_fmadd_ps(zv, _mm256_loadu_ps(xr + p * a->c + t), acc[p]);
        }
        for (; t < len; ++t)
            for (int p = 0; p < NP; ++p) tail[p] += zr[t] * xr[p * a->c + t];
    }
    for (int p = 0; p < NP; ++p) {
        float lanes[8], sum = tail[p];
        _mm256_storeu_ps(lanes, acc[p]);
        for (int l = 0; l < 8; ++l) sum += lanes[l];
        a->out[row * a->wo + j + p] = sum * a->scale;
    }
}

__attribute__((target(AVX2)))
static void xcorr_avx2(const void *job, int64_t row)
{
    const xcorr_args *a = (const xcorr_args *)job;
    int64_t j = 0;
    for (; j + 4 <= a->wo; j += 4) xcorr_avx2_tile(a, row, j, 4);
    for (; j < a->wo; ++j) xcorr_avx2_tile(a, row, j, 1);
}

__attribute__((target(AVX512), always_inline))
static inline void xcorr_avx512_tile(const xcorr_args *a, int64_t row, int64_t j, const int NP)
{
    const int64_t b = row / a->ho, i = row % a->ho, len = a->wz * a->c;
    __m512 acc[4];
    for (int p = 0; p < NP; ++p) acc[p] = _mm512_setzero_ps();
    for (int64_t u = 0; u < a->hz; ++u) {
        const float *zr = a->z + u * len, *xr = a->x + ((b * a->hx + i + u) * a->wx + j) * a->c;
        for (int64_t t = 0; t < len; t += 16) {
            const __mmask16 m = len - t >= 16 ? 0xffff : (__mmask16)((1u << (len - t)) - 1);
            const __m512 zv = _mm512_maskz_loadu_ps(m, zr + t);
            for (int p = 0; p < NP; ++p)
                acc[p] = _mm512_fmadd_ps(zv, _mm512_maskz_loadu_ps(m, xr + p * a->c + t), acc[p]);
        }
    }
    for (int p = 0; p < NP; ++p) a->out[row * a->wo + j + p] = _mm512_reduce_add_ps(acc[p]) * a->scale;
}

__attribute__((target(AVX512)))
static void xcorr_avx512(const void *job, int64_t row)
{
    const xcorr_args *a = (const xcorr_args *)job;
    int64_t j = 0;
    for (; j + 4 <= a->wo; j += 4) xcorr_avx512_tile(a, row, j, 4);
    for (; j < a->wo; ++j) xcorr_avx512_tile(a, row, j, 1);
}

/* The correlation head (see xcorr_args); out as the caller allocated it (n, out_h, out_w). */
int rbsf_xcorr(const float *z, int64_t hz, int64_t wz, int64_t c, const float *x, int64_t n,
               int64_t hx, int64_t wx, float scale, float *out, int64_t out_h, int64_t out_w,
               int isa, int threads)
{
    const int features = usable_features(&isa);
    if (features < 0) return RBSF_UNSUPPORTED;
    if (z == NULL || x == NULL || out == NULL || n < 1 || c < 1) return RBSF_BAD_ARGUMENT;
    xcorr_args a = {z, x, hz, wz, c, hx, wx, scale, out, rbsf_out_size(hx, hz, 1, 0),
                    rbsf_out_size(wx, wz, 1, 0)};
    if (a.ho < 1 || a.wo < 1 || a.ho != out_h || a.wo != out_w) return RBSF_BAD_ARGUMENT;
    parallel_rows((features & F_AVX512) ? xcorr_avx512 : (features & F_AVX2) ? xcorr_avx2
                  : xcorr_scalar, &a, n * a.ho, threads);
    return RBSF_OK;
}
