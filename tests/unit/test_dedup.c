/* The relay's seen-id cache (tn_dedup.h): duplicates are caught, distinct ids are not
 * confused, ids are kept between window/2 and window, a flood shrinks the window instead of
 * growing memory, and the table agrees with a reference model through spills, rotations and
 * recurring generation tags. */
#include "tn_dedup.h"
#include "tn_test.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>

#define HALF_MS 5000 /* window 10 s in most tests */

static void rand_id(uint8_t id[TN_DEDUP_ID_LEN])
{
    randombytes_buf(id, TN_DEDUP_ID_LEN);
}

/* The invariant that keeps 8-bit tags unambiguous: every tag in the table is that of a
 * generation in [oldest, gen], a span short enough that no two of them share a tag. */
static void check_tags(const tn_dedup_t *d)
{
    TN_ASSERT_U64(d->gen - d->oldest, <=, TN_DEDUP_TAG_SPAN);
    TN_ASSERT_U64(d->gen - d->oldest, <=, 2 * TN_DEDUP_SCRUB_GENS + 3);
    bool ok[256] = {false};
    for (uint64_t g = d->oldest; g <= d->gen; g++) ok[1 + g % 255] = true;
    ok[0] = true;
    for (size_t i = 0; i < d->nbuckets; i++) {
        for (int s = 0; s < TN_DEDUP_SLOTS; s++)
            if (!ok[d->b[i].slot[s] & 0xff])
                TN_FAIL("bucket %zu slot %d: tag %u outside generations %llu..%llu", i, s,
                        (unsigned)(d->b[i].slot[s] & 0xff), (unsigned long long)d->oldest,
                        (unsigned long long)d->gen);
        if (d->b[i].spill > 255 || !ok[d->b[i].spill])
            TN_FAIL("bucket %zu: spill tag %llu outside generations %llu..%llu", i,
                    (unsigned long long)d->b[i].spill, (unsigned long long)d->oldest,
                    (unsigned long long)d->gen);
    }
}

typedef struct {
    uint8_t id[TN_DEDUP_ID_LEN];
    uint64_t gen; /* generation it was last stored in; 0 = never */
} rec_t;

TN_TEST(dedup_duplicate_detected)
{
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, 10000, 10));
    uint8_t id[TN_DEDUP_ID_LEN];
    rand_id(id);
    TN_ASSERT(!tn_dedup_contains(&d, id, 1000));
    TN_ASSERT(!tn_dedup_check_insert(&d, id, 1000)); /* first sighting: new, stored */
    TN_ASSERT(tn_dedup_check_insert(&d, id, 1001));  /* the same id again: a duplicate */
    TN_ASSERT(tn_dedup_check_insert(&d, id, 1002));
    TN_ASSERT(tn_dedup_contains(&d, id, 1003));
    TN_ASSERT_U64(d.lookups, ==, 3);
    TN_ASSERT_U64(d.hits, ==, 2);
    TN_ASSERT_U64(d.inserts, ==, 1);
    TN_ASSERT_U64(tn_dedup_entries(&d), ==, 1);

    /* insert() stores without counting a lookup, and is idempotent */
    uint8_t id2[TN_DEDUP_ID_LEN];
    rand_id(id2);
    tn_dedup_insert(&d, id2, 1004);
    tn_dedup_insert(&d, id2, 1005);
    TN_ASSERT_U64(d.inserts, ==, 2);
    TN_ASSERT_U64(d.lookups, ==, 3);
    TN_ASSERT(tn_dedup_check_insert(&d, id2, 1006));
    tn_dedup_free(&d);
    tn_dedup_free(&d); /* freeing twice is safe */
}

TN_TEST(dedup_distinct_ids_not_confused)
{
    enum { N = 5000 }; /* one generation's worth at capacity 10000: no early rotation */
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, 10000, 600));
    uint8_t(*ids)[TN_DEDUP_ID_LEN] = malloc(2 * N * TN_DEDUP_ID_LEN);
    TN_ASSERT(ids != NULL);
    for (int i = 0; i < 2 * N; i++) rand_id(ids[i]);
    for (int i = 0; i < N; i++) TN_ASSERT(!tn_dedup_check_insert(&d, ids[i], 10));
    for (int i = 0; i < N; i++) TN_ASSERT(tn_dedup_check_insert(&d, ids[i], 20));
    for (int i = N; i < 2 * N; i++) TN_ASSERT(!tn_dedup_contains(&d, ids[i], 30));
    TN_ASSERT_U64(d.early_rotations, ==, 0);
    TN_ASSERT_U64(tn_dedup_entries(&d), ==, N);

    /* ids one bit apart from stored ones are different ids */
    for (int i = 0; i < 256; i++) {
        uint8_t x[TN_DEDUP_ID_LEN];
        memcpy(x, ids[i], sizeof x);
        x[i / 8] ^= (uint8_t)(1u << (i % 8));
        TN_ASSERT(!tn_dedup_contains(&d, x, 40));
    }
    free(ids);
    tn_dedup_free(&d);
}

TN_TEST(dedup_degenerate_ids)
{
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, 1000, 10));
    uint8_t zero[TN_DEDUP_ID_LEN] = {0}, ones[TN_DEDUP_ID_LEN], one_bit[TN_DEDUP_ID_LEN] = {0};
    memset(ones, 0xff, sizeof ones);
    one_bit[31] = 1;
    TN_ASSERT(!tn_dedup_check_insert(&d, zero, 1));
    TN_ASSERT(!tn_dedup_check_insert(&d, ones, 1));
    TN_ASSERT(!tn_dedup_check_insert(&d, one_bit, 1));
    TN_ASSERT(tn_dedup_check_insert(&d, zero, 2));
    TN_ASSERT(tn_dedup_check_insert(&d, ones, 2));
    TN_ASSERT(tn_dedup_check_insert(&d, one_bit, 2));
    TN_ASSERT_U64(tn_dedup_entries(&d), ==, 3);
    /* a clock at 0 and at the far end of the range is just a clock */
    tn_dedup_t e;
    TN_ASSERT_OK(tn_dedup_init(&e, 1, TN_DEDUP_WINDOW_MIN_S));
    TN_ASSERT(!tn_dedup_check_insert(&e, zero, 0));
    TN_ASSERT(tn_dedup_check_insert(&e, zero, 0));
    TN_ASSERT(!tn_dedup_check_insert(&e, zero, UINT64_MAX - 10)); /* long expired */
    TN_ASSERT(tn_dedup_check_insert(&e, zero, UINT64_MAX - 10));
    tn_dedup_free(&e);
    tn_dedup_free(&d);
}

TN_TEST(dedup_init_rejects_bad_bounds)
{
    tn_dedup_t d;
    TN_ASSERT_RC(tn_dedup_init(&d, 0, 10), TN_EINVAL);
    tn_dedup_free(&d); /* safe after a failed init */
    TN_ASSERT_RC(tn_dedup_init(&d, TN_DEDUP_CAPACITY_MAX + 1, 10), TN_EINVAL);
    TN_ASSERT_RC(tn_dedup_init(&d, 100, 0), TN_EINVAL);
    TN_ASSERT_RC(tn_dedup_init(&d, 100, -5), TN_EINVAL);
    TN_ASSERT_RC(tn_dedup_init(&d, 100, 0.001), TN_EINVAL);
    TN_ASSERT_RC(tn_dedup_init(&d, 100, NAN), TN_EINVAL);
    TN_ASSERT_RC(tn_dedup_init(&d, 100, INFINITY), TN_EINVAL);
    TN_ASSERT_RC(tn_dedup_init(&d, 100, TN_DEDUP_WINDOW_MAX_S * 2), TN_EINVAL);
    TN_ASSERT(d.b == NULL);
    TN_ASSERT_U64(tn_dedup_memory(&d), ==, 0);
    TN_ASSERT_OK(tn_dedup_init(&d, 1, TN_DEDUP_WINDOW_MIN_S));
    TN_ASSERT_U64(d.half_ms, ==, 1);
    tn_dedup_free(&d);
}

/* An id inserted at any point of a generation is remembered for at least window/2 and
 * forgotten once a whole window has passed, whether or not anything else happens. */
TN_TEST(dedup_expires_after_window)
{
    const uint64_t t0 = 1000000, window = 2 * HALF_MS;
    const uint64_t offsets[] = {0, 1, 2499, HALF_MS - 1, HALF_MS, HALF_MS + 1, 7777, 3 * HALF_MS};
    for (size_t k = 0; k < TN_ARRAY_LEN(offsets); k++) {
        tn_dedup_t d;
        TN_ASSERT_OK(tn_dedup_init(&d, 10000, 10));
        uint8_t first[TN_DEDUP_ID_LEN], id[TN_DEDUP_ID_LEN];
        rand_id(first);
        rand_id(id);
        TN_ASSERT(!tn_dedup_check_insert(&d, first, t0)); /* starts the clock */
        uint64_t t = t0 + offsets[k];
        TN_ASSERT(!tn_dedup_check_insert(&d, id, t));
        TN_ASSERT(tn_dedup_contains(&d, id, t + HALF_MS - 1));
        TN_ASSERT(!tn_dedup_contains(&d, id, t + window));
        TN_ASSERT(!tn_dedup_contains(&d, id, t + 100 * window));
        /* the mutating path agrees with the read-only one */
        TN_ASSERT(tn_dedup_check_insert(&d, id, t + HALF_MS - 1));
        TN_ASSERT(!tn_dedup_check_insert(&d, id, t + window)); /* expired: new again */
        TN_ASSERT(tn_dedup_check_insert(&d, id, t + window + 1));
        TN_ASSERT_U64(d.early_rotations, ==, 0);
        tn_dedup_free(&d);
    }
}

/* Sparse calls do not stretch the window: a rotation applied late stays on the
 * window/2 grid, so an id is gone at insert + window however the calls fall. */
TN_TEST(dedup_sparse_calls_keep_the_grid)
{
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, 10000, 10));
    uint8_t id[TN_DEDUP_ID_LEN], other[TN_DEDUP_ID_LEN];
    rand_id(id);
    TN_ASSERT(!tn_dedup_check_insert(&d, id, 0));
    rand_id(other);
    TN_ASSERT(!tn_dedup_check_insert(&d, other, 2 * HALF_MS - 1)); /* one late rotation */
    TN_ASSERT(tn_dedup_contains(&d, id, 2 * HALF_MS - 1));
    TN_ASSERT(!tn_dedup_contains(&d, id, 2 * HALF_MS));
    TN_ASSERT(!tn_dedup_check_insert(&d, id, 2 * HALF_MS));
    tn_dedup_free(&d);
}

/* Traffic at a steady rate with the clock moving: every id is still there window/2 - 1 ms
 * after its insert, and none is there a window after. */
TN_TEST(dedup_remembered_at_least_half_window)
{
    enum { N = 4000, STEP = 7 }; /* 4000 ids over 28 s = 5.6 windows of 5 s */
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, 10000, 5));
    const uint64_t half = 2500, t0 = 42;
    uint8_t(*ids)[TN_DEDUP_ID_LEN] = malloc(N * TN_DEDUP_ID_LEN);
    TN_ASSERT(ids != NULL);
    for (int i = 0; i < N; i++) {
        rand_id(ids[i]);
        uint64_t now = t0 + (uint64_t)i * STEP;
        TN_ASSERT(!tn_dedup_check_insert(&d, ids[i], now));
        /* look back: ids inserted within half a window are all there */
        for (int j = i; j >= 0 && now - (t0 + (uint64_t)j * STEP) < half; j -= 13)
            TN_ASSERT(tn_dedup_contains(&d, ids[j], now));
        /* and ids a full window old are all gone */
        for (int j = i; j >= 0; j -= 17)
            if (now - (t0 + (uint64_t)j * STEP) >= 2 * half)
                TN_ASSERT(!tn_dedup_contains(&d, ids[j], now));
    }
    TN_ASSERT_U64(d.early_rotations, ==, 0);
    TN_ASSERT_U64(d.rotations, >=, (N * STEP) / half - 1);
    TN_ASSERT_U64(tn_dedup_entries(&d), <=, 2 * half / STEP + 1);
    free(ids);
    tn_dedup_free(&d);
}

/* A flood of new ids with the clock standing still: generations rotate early, memory stays
 * what it was, the entry bound holds at every step, and the most recent capacity/2 ids are
 * still caught as duplicates. */
TN_TEST(dedup_flood_rotates_early_in_fixed_memory)
{
    enum { CAP = 10000, N = 100000 };
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, CAP, 600));
    size_t mem = tn_dedup_memory(&d);
    uint8_t(*ids)[TN_DEDUP_ID_LEN] = malloc((size_t)N * TN_DEDUP_ID_LEN);
    TN_ASSERT(ids != NULL);
    for (int i = 0; i < N; i++) {
        rand_id(ids[i]);
        TN_ASSERT(!tn_dedup_check_insert(&d, ids[i], 5000));
        TN_ASSERT_U64(d.n_cur, <=, CAP / 2);
        TN_ASSERT_U64(tn_dedup_entries(&d), <=, CAP);
    }
    TN_ASSERT_U64(tn_dedup_memory(&d), ==, mem);
    TN_ASSERT_U64(d.early_rotations, ==, N / (CAP / 2) - 1);
    TN_ASSERT_U64(d.rotations, ==, d.early_rotations);
    TN_ASSERT_U64(d.inserts, ==, N);
    for (int i = N - CAP / 2; i < N; i++) TN_ASSERT(tn_dedup_check_insert(&d, ids[i], 5000));
    /* what fell out is forgotten, not misreported: it is new again */
    TN_ASSERT(!tn_dedup_contains(&d, ids[0], 5000));
    TN_ASSERT(!tn_dedup_check_insert(&d, ids[0], 5000));
    free(ids);
    tn_dedup_free(&d);
}

TN_TEST(dedup_memory_matches_layout)
{
    struct {
        size_t cap;
        size_t bytes; /* expected: ceil(2 cap / 7) buckets of 64 B, 2 MiB pages from 2 MiB */
    } cases[] = {
        {1, 64},
        {7, 2 * 64},
        {10000, 2858 * 64},
        {100000, 28572 * 64},
        {1000000, (size_t)9 << 21},  /* 285715 buckets = 18.3 MB -> 9 huge pages */
        {1200000, (size_t)11 << 21}, /* the default: 342858 buckets = 21.9 MB */
    };
    for (size_t k = 0; k < TN_ARRAY_LEN(cases); k++) {
        tn_dedup_t d;
        TN_ASSERT_OK(tn_dedup_init(&d, cases[k].cap, 600));
        TN_ASSERT_U64(tn_dedup_memory(&d), ==, cases[k].bytes);
        TN_ASSERT_U64(d.nbuckets * sizeof(tn_dedup_bucket_t), ==, cases[k].bytes);
        /* room for every live id at load <= 0.5 */
        TN_ASSERT_U64(d.nbuckets * TN_DEDUP_SLOTS, >=, 2 * cases[k].cap);
        TN_ASSERT_U64(d.gen_max, ==, (cases[k].cap + 1) / 2);
        if (cases[k].cap >= 10000)
            TN_ASSERT_DBL((double)tn_dedup_memory(&d) / (double)cases[k].cap, <, 20.2);
        uint8_t id[TN_DEDUP_ID_LEN];
        for (int i = 0; i < 3000; i++) {
            rand_id(id);
            tn_dedup_check_insert(&d, id, (uint64_t)i);
        }
        TN_ASSERT_U64(tn_dedup_memory(&d), ==, cases[k].bytes); /* never grows */
        tn_dedup_free(&d);
        TN_ASSERT_U64(tn_dedup_memory(&d), ==, 0);
    }
}

TN_TEST(dedup_hash_is_keyed_siphash)
{
    tn_dedup_t a, b;
    TN_ASSERT_OK(tn_dedup_init(&a, 100, 10));
    TN_ASSERT_OK(tn_dedup_init(&b, 100, 10));
    TN_ASSERT(memcmp(a.key, b.key, sizeof a.key) != 0); /* a fresh random key per cache */
    uint8_t id[TN_DEDUP_ID_LEN], want[16];
    for (int i = 0; i < 100; i++) {
        rand_id(id);
        uint64_t h[2];
        tn_dedup_hash(&a, id, h);
        crypto_shorthash_siphashx24(want, id, sizeof id, a.key);
        uint64_t w0 = 0, w1 = 0; /* libsodium writes the two halves little-endian */
        for (int j = 7; j >= 0; j--) {
            w0 = w0 << 8 | want[j];
            w1 = w1 << 8 | want[8 + j];
        }
        TN_ASSERT_U64(h[0], ==, w0);
        TN_ASSERT_U64(h[1], ==, w1);
        uint64_t hb[2];
        tn_dedup_hash(&b, id, hb);
        TN_ASSERT(h[0] != hb[0] || h[1] != hb[1]);
    }
    tn_dedup_free(&a);
    tn_dedup_free(&b);
}

/* Generation tags are 8 bits and recur every 255 generations: an old id must never come
 * back when its tag does, however sparse the traffic, and the scrub walk that retires tags
 * keeps their span within 2 * TN_DEDUP_SCRUB_GENS + 1 generations. */
TN_TEST(dedup_recurring_tags_do_not_resurrect)
{
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, 10000, 2)); /* 2858 buckets, half = 1 s */
    enum { OLD = 50 };
    uint8_t old[OLD][TN_DEDUP_ID_LEN], id[TN_DEDUP_ID_LEN];
    for (int i = 0; i < OLD; i++) {
        rand_id(old[i]);
        TN_ASSERT(!tn_dedup_check_insert(&d, old[i], 0));
    }
    for (uint64_t g = 1; g <= 1200; g++) { /* ~4.7 turns of the tag space */
        rand_id(id);
        TN_ASSERT(!tn_dedup_check_insert(&d, id, g * 1000));
        if (g >= 2)
            for (int i = 0; i < OLD; i++) TN_ASSERT(!tn_dedup_contains(&d, old[i], g * 1000));
        if (g % 50 == 0) check_tags(&d);
        TN_ASSERT_U64(d.gen - d.oldest, <=, 2 * TN_DEDUP_SCRUB_GENS + 3);
    }
    TN_ASSERT_U64(d.scrub_stalls, ==, 0);
    TN_ASSERT_U64(d.rotations, ==, 1200);

    /* The same with idle gaps (every rotation a double step). */
    for (uint64_t g = 1; g <= 600; g++) {
        rand_id(id);
        TN_ASSERT(!tn_dedup_check_insert(&d, id, 1200 * 1000 + g * 5000));
        TN_ASSERT_U64(d.gen - d.oldest, <=, 2 * TN_DEDUP_SCRUB_GENS + 3);
    }
    check_tags(&d);
    TN_ASSERT_U64(d.scrub_stalls, ==, 0);

    /* The safety net: were the walk ever to fall behind, the rotation scrubs the whole table
     * rather than let a tag recur. */
    d.scrub_next = 0; /* the rotation's share of the walk cannot finish it */
    d.oldest = d.gen - TN_DEDUP_TAG_SPAN;
    TN_ASSERT(!tn_dedup_check_insert(&d, old[0], 1200 * 1000 + 601 * 5000));
    TN_ASSERT_U64(d.scrub_stalls, ==, 1);
    check_tags(&d);
    TN_ASSERT_U64(d.gen - d.oldest, ==, 1);
    tn_dedup_free(&d);

    /* With traffic and floods (early rotations) the walk keeps up just the same. */
    TN_ASSERT_OK(tn_dedup_init(&d, 100, 2)); /* 29 buckets */
    for (uint64_t g = 0; g < 1000; g++) {
        for (int i = 0; i < (g % 7 ? 30 : 400); i++) {
            rand_id(id);
            tn_dedup_check_insert(&d, id, g * 1000 + (uint64_t)i / 2);
        }
        TN_ASSERT_U64(d.gen - d.oldest, <=, 2 * TN_DEDUP_SCRUB_GENS + 3);
    }
    TN_ASSERT_U64(d.scrub_stalls, ==, 0);
    TN_ASSERT_U64(d.early_rotations, >=, 1000 / 7 * 7);
    TN_ASSERT_U64(d.rotations, >=, 800 + d.early_rotations); /* and timed ones */
    check_tags(&d);
    tn_dedup_free(&d);
}

/* The batch call gives the results of one call per id, in order, duplicates inside the
 * batch included, and leaves the table exactly as the single calls do. */
TN_TEST(dedup_batch_equals_single_calls)
{
    enum { N = 30000, CAP = 8000 }; /* several early rotations inside batches */
    tn_dedup_t a, b;
    TN_ASSERT_OK(tn_dedup_init(&a, CAP, 500));
    TN_ASSERT_OK(tn_dedup_init(&b, CAP, 500));
    memcpy(b.key, a.key, sizeof a.key);
    uint8_t(*ids)[TN_DEDUP_ID_LEN] = malloc((size_t)N * TN_DEDUP_ID_LEN);
    bool *seen = malloc(N);
    TN_ASSERT(ids && seen);
    for (int i = 0; i < N; i++) {
        if (i > 0 && i % 3 == 0) /* a repeat of a recent id, sometimes of the same batch */
            memcpy(ids[i], ids[i - 1 - (int)randombytes_uniform((uint32_t)TN_MIN(i, 500))],
                   TN_DEDUP_ID_LEN);
        else
            rand_id(ids[i]);
    }
    size_t at = 0, want_dups = 0, got_dups = 0, batches = 0;
    uint64_t now = 100;
    while (at < N) { /* batches of 0..69 ids; now and then a timed rotation */
        size_t r = randombytes_uniform(70), n = TN_MIN((size_t)N - at, r);
        now += randombytes_uniform(700) + (++batches % 300 == 0 ? 250000 : 0);
        for (size_t i = 0; i < n; i++) {
            bool dup = tn_dedup_check_insert(&a, ids[at + i], now);
            want_dups += dup;
            seen[at + i] = dup;
        }
        bool got[70];
        size_t k = tn_dedup_check_insert_batch(&b, ids[at], n, now, got);
        got_dups += k;
        for (size_t i = 0; i < n; i++)
            if (got[i] != seen[at + i])
                TN_FAIL("id %zu: batch %d, single %d", at + i, got[i], seen[at + i]);
        at += n;
    }
    TN_ASSERT_U64(got_dups, ==, want_dups);
    TN_ASSERT_U64(want_dups, >, N / 4);
    TN_ASSERT_U64(a.early_rotations, >, 0);
    TN_ASSERT_U64(b.early_rotations, ==, a.early_rotations);
    TN_ASSERT_U64(a.rotations, >, a.early_rotations); /* timed ones too */
    TN_ASSERT_U64(b.rotations, ==, a.rotations);
    TN_ASSERT_U64(b.lookups, ==, a.lookups);
    TN_ASSERT_U64(b.hits, ==, a.hits);
    TN_ASSERT_U64(b.inserts, ==, a.inserts);
    TN_ASSERT_U64(tn_dedup_entries(&b), ==, tn_dedup_entries(&a));
    TN_ASSERT(memcmp(a.b, b.b, tn_dedup_memory(&a)) == 0);

    /* within one batch: a b a c b -> new new dup new dup; seen may be NULL; n = 0 is fine */
    uint8_t five[5][TN_DEDUP_ID_LEN];
    rand_id(five[0]);
    rand_id(five[1]);
    memcpy(five[2], five[0], TN_DEDUP_ID_LEN);
    rand_id(five[3]);
    memcpy(five[4], five[1], TN_DEDUP_ID_LEN);
    bool s5[5];
    TN_ASSERT_U64(tn_dedup_check_insert_batch(&b, five[0], 5, now, s5), ==, 2);
    TN_ASSERT(!s5[0] && !s5[1] && s5[2] && !s5[3] && s5[4]);
    TN_ASSERT_U64(tn_dedup_check_insert_batch(&b, five[0], 5, now, NULL), ==, 5);
    TN_ASSERT_U64(tn_dedup_check_insert_batch(&b, NULL, 0, now, NULL), ==, 0);
    free(ids);
    free(seen);
    tn_dedup_free(&a);
    tn_dedup_free(&b);
}

/* ---- against a reference model ---- */

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random traffic (new ids, repeats of recent and old ones, clock steps small and large,
 * floods) on a table of the given capacity, checked call by call against the model "an id
 * is present iff it was stored in the current or the previous generation". Tiny capacities
 * make spill chains, wrap-around and reused stale slots common. */
static void run_model(size_t cap, double window_s, int ops)
{
    tn_dedup_t d;
    TN_ASSERT_OK(tn_dedup_init(&d, cap, window_s));
    rec_t *recs = calloc((size_t)ops, sizeof *recs);
    TN_ASSERT(recs != NULL);
    int n = 0;
    uint64_t now = 1000, half = d.half_ms;
    for (int op = 0; op < ops; op++) {
        uint64_t r = rng() % 100;
        if ((op / 5000) % 2 == 0) {
            /* a flood phase: the clock stands still, generations fill up */
        } else if (r < 2) {
            now += half * (1 + rng() % 3); /* a jump of one to three generations */
        } else if (r < 30) {
            now += rng() % (half / 4 + 1);
        }
        rec_t *x;
        if (n == 0 || rng() % 100 < 45) {
            x = &recs[n++];
            rand_id(x->id);
        } else if (rng() % 4) {
            x = &recs[n - 1 - (int)(rng() % (uint64_t)TN_MIN(n, (int)(3 * cap + 3)))];
        } else {
            x = &recs[rng() % (uint64_t)n];
        }
        if (rng() % 8 == 0) { /* the read-only path, with rotations not yet applied */
            bool got = tn_dedup_contains(&d, x->id, now);
            uint64_t g = d.gen;
            if (d.started && now > d.gen_start && now - d.gen_start >= half)
                g += (now - d.gen_start) / half >= 2 ? 2 : 1;
            bool want = x->gen && x->gen + 1 >= g;
            if (got != want)
                TN_FAIL("cap %zu op %d: contains %d, model %d (stored gen %llu, gen %llu)", cap, op,
                        got, want, (unsigned long long)x->gen, (unsigned long long)g);
            continue;
        }
        uint64_t early = d.early_rotations;
        bool got = tn_dedup_check_insert(&d, x->id, now);
        uint64_t looked_in = d.gen - (d.early_rotations - early); /* before an early rotation */
        bool want = x->gen && x->gen + 1 >= looked_in;
        if (got != want)
            TN_FAIL("cap %zu op %d: check_insert %d, model %d (stored gen %llu, gen %llu)", cap, op,
                    got, want, (unsigned long long)x->gen, (unsigned long long)looked_in);
        if (!got) x->gen = d.gen;
        if (op % 97 == 0) {
            size_t live = 0;
            for (int i = 0; i < n; i++) live += recs[i].gen && recs[i].gen + 1 >= d.gen;
            TN_ASSERT_U64(tn_dedup_entries(&d), ==, live);
            TN_ASSERT_U64(live, <=, 2 * d.gen_max);
            check_tags(&d);
        }
    }
    TN_ASSERT_U64(d.early_rotations, >, 0);
    free(recs);
    tn_dedup_free(&d);
}

TN_TEST(dedup_matches_model)
{
    randombytes_buf(&rng_state, sizeof rng_state);
    rng_state |= 1;
    const size_t caps[] = {1, 2, 3, 7, 8, 20, 64, 500, 3000};
    for (size_t k = 0; k < TN_ARRAY_LEN(caps); k++) run_model(caps[k], 4, 60000);
    run_model(10, TN_DEDUP_WINDOW_MIN_S, 20000); /* half = 1 ms: rotations on most steps */
}
