/* The relay's seen-id cache: a keyed-hash table of 56-bit fingerprints in cache-line buckets,
 * expired by generation tags instead of timestamps or sweeps. The layout, bounds and
 * guarantees are documented in tn_dedup.h. */
#include "tn_dedup.h"

#include <math.h>
#include <stddef.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define TAG_MASK ((uint64_t)0xff)

_Static_assert(sizeof(tn_dedup_bucket_t) == 64, "a bucket is one cache line");

/* Generation g's tag: 1..255, so that 0 always means an empty slot. */
static inline uint64_t tag_of(uint64_t g)
{
    return 1 + g % 255;
}

static inline size_t next_bucket(const tn_dedup_t *d, size_t b)
{
    return b + 1 == d->nbuckets ? 0 : b + 1;
}

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-2-4 with 128-bit output (libsodium's crypto_shorthash_siphashx24, the reference
 * siphash.c with outlen 16) unrolled for exactly 32 bytes of input. Inlined it is ~20 %
 * faster per call than the library's generic one and, what matters more, short enough that
 * the CPU overlaps the next lookup's memory access with it; test_dedup.c checks it against
 * libsodium bit for bit. */
static inline void siphash128_32(const uint8_t key[16], const uint8_t in[32], uint64_t out[2])
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    v1 ^= 0xee;
    for (int i = 0; i < 4; i++) {
        uint64_t m = le64(in + 8 * i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    const uint64_t b = (uint64_t)32 << 56; /* the length byte; no tail bytes */
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    out[0] = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    out[1] = v0 ^ v1 ^ v2 ^ v3;
}

void tn_dedup_hash(const tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t out[2])
{
    siphash128_32(d->key, id, out);
}

static inline size_t home_of(const tn_dedup_t *d, uint64_t h0)
{
    return (size_t)(((unsigned __int128)h0 * d->nbuckets) >> 64); /* Lemire's range map */
}

/* Zeroes the slots and the spill word of a bucket whose tags are neither tc nor tp; writes
 * the line only when something changes. */
static inline void scrub_bucket(tn_dedup_bucket_t *bk, uint64_t tc, uint64_t tp)
{
    uint64_t *w = bk->slot; /* the 7 slots and the spill word: a tag in the low byte each */
    _Static_assert(offsetof(tn_dedup_bucket_t, spill) == TN_DEDUP_SLOTS * 8, "layout");
    unsigned stale = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t t = w[i] & TAG_MASK;
        stale |= (unsigned)(t != 0 && t != tc && t != tp) << i;
    }
    if (stale)
        for (int i = 0; i < 8; i++)
            if (stale & (1u << i)) w[i] = 0;
}

/* Advances the scrub walk (which retires old tags before they recur) by n buckets. */
static void scrub_run(tn_dedup_t *d, size_t n)
{
    uint64_t tc = tag_of(d->gen), tp = tag_of(d->gen - 1);
    while (n > 0) {
        size_t end = TN_MIN(d->nbuckets, d->scrub_next + n);
        for (size_t i = d->scrub_next; i < end; i++) scrub_bucket(&d->b[i], tc, tp);
        n -= end - d->scrub_next;
        d->scrub_next = end;
        if (end == d->nbuckets) { /* a walk done: every tag left is from scrub_from - 1 on */
            d->scrub_next = 0;
            d->oldest = d->scrub_from - 1;
            d->scrub_from = d->gen;
        }
    }
}

/* Advances the current generation by steps (1: the current becomes the previous; 2: both
 * expire), and the scrub walk by steps / TN_DEDUP_SCRUB_GENS of the table, so that a walk
 * covers the table within TN_DEDUP_SCRUB_GENS generations and the tags in the table span at
 * most 2 * TN_DEDUP_SCRUB_GENS + 1 < TN_DEDUP_TAG_SPAN generations. The walk is done here
 * rather than a bucket per insert: a sequential pass costs ~25 ns a bucket, per insert that
 * was 20 ns of every insert, here it is ~0.3 ms per rotation at 4M entries. */
static void rotate(tn_dedup_t *d, unsigned steps)
{
    d->gen += steps;
    d->n_prev = steps == 1 ? d->n_cur : 0;
    d->n_cur = 0;
    d->rotations++;
    scrub_run(d, steps * d->scrub_chunk);
    if (d->gen - d->oldest > TN_DEDUP_TAG_SPAN) {
        /* Not expected (the walk above keeps the span near 2 * TN_DEDUP_SCRUB_GENS); kept
         * so a mistake costs one long rotation, not a resurrected id. */
        uint64_t tc = tag_of(d->gen), tp = tag_of(d->gen - 1);
        for (size_t i = 0; i < d->nbuckets; i++) scrub_bucket(&d->b[i], tc, tp);
        d->oldest = d->gen - 1;
        d->scrub_next = 0;
        d->scrub_from = d->gen;
        d->scrub_stalls++;
    }
}

/* How many generations the clock has moved past the current one's span (0, 1 or 2: two
 * or more expire everything) and where the next span starts. */
static unsigned elapsed_gens(const tn_dedup_t *d, uint64_t now_ms, uint64_t *start)
{
    *start = d->gen_start;
    if (!d->started || now_ms <= d->gen_start || now_ms - d->gen_start < d->half_ms) return 0;
    uint64_t k = (now_ms - d->gen_start) / d->half_ms;
    *start = d->gen_start + k * d->half_ms; /* stay on the grid: retention <= window */
    return k >= 2 ? 2 : 1;
}

static inline void advance_clock(tn_dedup_t *d, uint64_t now_ms)
{
    if (!d->started) {
        d->started = true;
        d->gen_start = now_ms;
        return;
    }
    uint64_t start;
    unsigned steps = elapsed_gens(d, now_ms, &start);
    if (steps) {
        rotate(d, steps);
        d->gen_start = start;
    }
}

/* Whether bucket bk holds fingerprint fp tagged tc or tp: all 7 slots compared without
 * branches (a hit is as likely as a miss, a branch per slot would mispredict). */
static inline bool bucket_has(const tn_dedup_bucket_t *bk, uint64_t wc, uint64_t wp)
{
    bool m = false;
    for (int s = 0; s < TN_DEDUP_SLOTS; s++) m |= (bk->slot[s] == wc) | (bk->slot[s] == wp);
    return m;
}

/* First slot of bk free for generation tc (empty or stale), or -1; without a branch per
 * slot, as where the first free slot lies is random. */
static inline int bucket_free(const tn_dedup_bucket_t *bk, uint64_t tc, uint64_t tp)
{
    unsigned free = 0;
    for (int s = 0; s < TN_DEDUP_SLOTS; s++) {
        uint64_t t = bk->slot[s] & TAG_MASK;
        free |= (unsigned)((t != tc) & (t != tp)) << s;
    }
    return free ? __builtin_ctz(free) : -1;
}

/* Looks fp up along its spill chain from bucket b with live tags tc and tp. */
static inline bool probe(const tn_dedup_t *d, size_t b, uint64_t fp, uint64_t tc, uint64_t tp)
{
    uint64_t wc = fp | tc, wp = fp | tp;
    for (size_t i = 0; i < d->nbuckets; i++) {
        const tn_dedup_bucket_t *bk = &d->b[b];
        if (bucket_has(bk, wc, wp)) return true;
        if (bk->spill != tc && bk->spill != tp) return false;
        b = next_bucket(d, b);
    }
    return false;
}

static bool check_insert_hashed(tn_dedup_t *d, const uint64_t h[2], uint64_t now_ms, bool count)
{
    advance_clock(d, now_ms);
    size_t home = home_of(d, h[0]);
    uint64_t fp = h[1] & ~TAG_MASK;
    bool found = probe(d, home, fp, tag_of(d->gen), tag_of(d->gen - 1));
    if (count) {
        d->lookups++;
        d->hits += found;
    }
    if (found) return true;

    if (d->n_cur >= d->gen_max) {
        /* A flood: the window shrinks, memory does not grow. */
        rotate(d, 1);
        d->gen_start = now_ms;
        d->early_rotations++;
    }
    /* The first free slot from home on. Every bucket passed is full of live ids: mark it
     * as spilling in this generation so lookups walk on until that expires. A free slot
     * exists (live ids < 2 * gen_max <= slots), so this ends within one turn of the table. */
    uint64_t tc = tag_of(d->gen), tp = tag_of(d->gen - 1);
    size_t b = home;
    for (size_t i = 0; i < d->nbuckets; i++) {
        tn_dedup_bucket_t *bk = &d->b[b];
        int s = bucket_free(bk, tc, tp);
        if (s >= 0) {
            bk->slot[s] = fp | tc;
            d->n_cur++;
            d->inserts++;
            return false;
        }
        bk->spill = tc;
        b = next_bucket(d, b);
    }
    return false; /* unreachable by the bound above */
}

bool tn_dedup_check_insert(tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t now_ms)
{
    uint64_t h[2];
    siphash128_32(d->key, id, h);
    return check_insert_hashed(d, h, now_ms, true);
}

#define BATCH 16 /* ids hashed and prefetched ahead: enough misses in flight to hide latency */

size_t tn_dedup_check_insert_batch(tn_dedup_t *d, const uint8_t *ids, size_t n, uint64_t now_ms,
                                   bool *seen)
{
    size_t dups = 0;
    uint64_t h[BATCH][2];
    for (size_t i = 0; i < n; i += BATCH) {
        size_t m = TN_MIN((size_t)BATCH, n - i);
        for (size_t j = 0; j < m; j++) {
            siphash128_32(d->key, ids + (i + j) * TN_DEDUP_ID_LEN, h[j]);
            __builtin_prefetch(&d->b[home_of(d, h[j][0])], 1);
        }
        for (size_t j = 0; j < m; j++) {
            bool dup = check_insert_hashed(d, h[j], now_ms, true);
            dups += dup;
            if (seen) seen[i + j] = dup;
        }
    }
    return dups;
}

void tn_dedup_insert(tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t now_ms)
{
    uint64_t h[2];
    siphash128_32(d->key, id, h);
    (void)check_insert_hashed(d, h, now_ms, false);
}

bool tn_dedup_contains(const tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t now_ms)
{
    if (!d->started) return false; /* nothing was ever inserted */
    uint64_t h[2], start;
    siphash128_32(d->key, id, h);
    uint64_t g = d->gen + elapsed_gens(d, now_ms, &start); /* rotations not yet applied */
    return probe(d, home_of(d, h[0]), h[1] & ~TAG_MASK, tag_of(g), tag_of(g - 1));
}

int tn_dedup_init(tn_dedup_t *d, size_t capacity, double window_s)
{
    memset(d, 0, sizeof *d);
    if (capacity < TN_DEDUP_CAPACITY_MIN || capacity > TN_DEDUP_CAPACITY_MAX) return TN_EINVAL;
    if (!isfinite(window_s) || window_s < TN_DEDUP_WINDOW_MIN_S || window_s > TN_DEDUP_WINDOW_MAX_S)
        return TN_EINVAL;
    if (sodium_init() < 0) return TN_ECRYPTO;

    /* Live ids <= 2 * ceil(capacity/2) <= capacity + 1; 2 * capacity slots keep the load at
     * or below 0.5. */
    size_t nb = (2 * capacity + TN_DEDUP_SLOTS - 1) / TN_DEDUP_SLOTS;
    size_t bytes = nb * sizeof(tn_dedup_bucket_t), align = sizeof(tn_dedup_bucket_t);
    if (bytes >= HUGE_PAGE) {
        /* Whole huge pages: a random probe then rarely misses the TLB too. The rounding
         * slack becomes extra buckets (lower load) rather than waste. */
        bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        align = HUGE_PAGE;
        nb = bytes / sizeof(tn_dedup_bucket_t);
    }
    d->b = aligned_alloc(align, bytes);
    if (!d->b) return TN_ENOMEM;
    if (align == HUGE_PAGE) (void)madvise(d->b, bytes, MADV_HUGEPAGE); /* advisory only */
    memset(d->b, 0, bytes); /* touch every page now: the loop never faults on this table */
    d->nbuckets = nb;
    d->alloc_bytes = bytes;
    randombytes_buf(d->key, sizeof d->key);
    d->gen_max = capacity / 2 + capacity % 2;
    d->half_ms = (uint64_t)(window_s * 1000.0 / 2.0);
    if (d->half_ms < 1) d->half_ms = 1;
    d->gen = 1;
    d->scrub_chunk = (nb + TN_DEDUP_SCRUB_GENS - 1) / TN_DEDUP_SCRUB_GENS;
    d->scrub_from = 1;
    d->oldest = 0;
    return TN_OK;
}

void tn_dedup_free(tn_dedup_t *d)
{
    free(d->b);
    sodium_memzero(d->key, sizeof d->key);
    memset(d, 0, sizeof *d);
}

size_t tn_dedup_memory(const tn_dedup_t *d)
{
    return d->alloc_bytes;
}

size_t tn_dedup_entries(const tn_dedup_t *d)
{
    return d->n_cur + d->n_prev;
}
