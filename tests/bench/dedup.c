/* Bench `dedup` (DESIGN.md "Benchmarks", issue 5 "Bench"): ns per tn_dedup_check_insert and
 * bytes per entry of the relay's seen-id cache at 4M entries, in a steady state mix of new
 * ids and duplicates of recent ones (one call per id, the relay's path, and the same mix
 * through tn_dedup_check_insert_batch), pure hits, pure misses, and the mix on a cache small
 * enough to stay in L2; next to floors measured in the same run: the keyed hash alone, the
 * hash plus one random read of a table-sized buffer, the latency of one random read when
 * nothing overlaps it, and what clearing a table-sized buffer would stall the loop (this
 * design never clears); plus what a rotation costs on a quiet node. Ids are pre-generated
 * per round (untimed); each figure is the median over rounds of the round's mean, in thread
 * CPU time. Prints one JSON object {"params", "figures", "floors"} on stdout and progress on
 * stderr (tests/bench/run.sh). */
#define _GNU_SOURCE /* sched_setaffinity */
#include "tn_dedup.h"

#include <getopt.h>
#include <sched.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#include <uv.h>
#include "bench_util.h"

typedef uint8_t bid_t[TN_DEDUP_ID_LEN];

static struct {
    size_t capacity;
    double window_s;
    long ops;     /* per variant per round */
    int rounds;   /* the variants alternate, so drift hits them alike */
    int dup_pct;  /* share of duplicates in the mix */
    long recent;  /* duplicates repeat one of the last `recent` new ids */
    long batch;   /* ids per tn_dedup_check_insert_batch call */
    size_t small; /* a capacity whose table fits in L2: the in-cache cost */
} C = {4000000, 600, 2000000, 7, 50, 1000000, 32, 100000};

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dedup: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) fail("out of memory (%zu bytes)", n);
    return p;
}

/* Pins the process to the last CPU it may use (away from CPU 0's interrupts where possible). */
/* ---- the id stream: new ids, and repeats of the last C.recent new ones ---- */

/* An id stream: new ids, and repeats of one of the last `cap` new ones (kept in a ring). */
typedef struct {
    bid_t *ring;
    long cap, n, at;
} stream_t;

static stream_t *stream_new(long cap)
{
    stream_t *st = xmalloc(sizeof *st);
    st->ring = xmalloc((size_t)cap * sizeof(bid_t));
    st->cap = cap;
    st->n = st->at = 0;
    return st;
}

static void stream_free(stream_t *st)
{
    free(st->ring);
    free(st);
}

static uint64_t seed_ctr, rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) /* xorshift64: picks only; the ids come from ChaCha20 */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Fills n ids, dup_pct % of them repeats; returns how many are repeats. Every repeat is of
 * an id stored at most st->cap new ids ago (<= capacity/2), so the cache must still hold it: the
 * bench checks that every repeat is reported and nothing else. New ids come from one ChaCha20
 * stream per call (libsodium's deterministic generator: no syscall per id). */
static long fill(stream_t *st, bid_t *ids, long n, int dup_pct)
{
    uint8_t seed[randombytes_SEEDBYTES] = {0};
    memcpy(seed, &seed_ctr, sizeof seed_ctr);
    seed_ctr++;
    randombytes_buf_deterministic(ids, (size_t)n * sizeof(bid_t), seed);
    long dups = 0;
    for (long i = 0; i < n; i++) {
        if (st->n > 0 && (int)(rng() % 100) < dup_pct) {
            memcpy(ids[i], st->ring[rng() % (uint64_t)st->n], sizeof(bid_t));
            dups++;
        } else {
            memcpy(st->ring[st->at], ids[i], sizeof(bid_t));
            st->at = (st->at + 1) % st->cap;
            if (st->n < st->cap) st->n++;
        }
    }
    return dups;
}

/* Timing: the thread's CPU time, so that time spent descheduled on a shared machine does not
 * count; the wall clock runs alongside and their ratio is reported (cpu_share). */
static uint64_t wall0, cpu_sum, wall_sum;

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tick(void)
{
    wall0 = uv_hrtime();
    return cpu_ns();
}

static double since_ns(uint64_t t0)
{
    uint64_t c = cpu_ns() - t0, w = uv_hrtime() - wall0;
    cpu_sum += c;
    wall_sum += w;
    return (double)c;
}

static volatile uint64_t sink;

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"capacity", required_argument, 0, 'c'}, {"ops", required_argument, 0, 'n'},
        {"rounds", required_argument, 0, 'r'},   {"dup-pct", required_argument, 0, 'd'},
        {"batch", required_argument, 0, 'b'},    {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            C.capacity = (size_t)atol(optarg);
            break;
        case 'n':
            C.ops = atol(optarg);
            break;
        case 'r':
            C.rounds = atoi(optarg);
            break;
        case 'd':
            C.dup_pct = atoi(optarg);
            break;
        case 'b':
            C.batch = atol(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--capacity N] [--ops N] [--rounds N] [--dup-pct P] [--batch N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (C.capacity < 1000 || C.ops < 1000 || C.rounds < 1 || C.rounds > 99 || C.dup_pct < 0 ||
        C.dup_pct > 100 || C.batch < 1)
        fail("bad parameters");
    C.recent = TN_MIN(C.recent, (long)(C.capacity / 2));
    if (sodium_init() < 0) fail("sodium_init failed");
    int cpu = tn_bench_pin_cpu();

    tn_dedup_t d;
    if (tn_dedup_init(&d, C.capacity, C.window_s)) fail("tn_dedup_init failed");
    size_t mem = tn_dedup_memory(&d);
    fprintf(stderr, "dedup: pinned to CPU %d; capacity %zu: %zu buckets, %.1f MiB\n", cpu,
            C.capacity, d.nbuckets, (double)mem / (1 << 20));

    stream_t *st = stream_new(C.recent);
    size_t nbuf = TN_MAX((size_t)C.ops, C.capacity);
    bid_t *ids = xmalloc(nbuf * sizeof(bid_t));

    /* Fill to capacity: two full generations of capacity/2 ids. */
    const uint64_t now = 1000000; /* the clock stands still: floods rotate early */
    fill(st, ids, (long)C.capacity, 0);
    uint64_t t0 = tick();
    for (size_t i = 0; i < C.capacity; i++)
        if (tn_dedup_check_insert(&d, ids[i], now)) fail("a new id reported as seen");
    double fill_ns = since_ns(t0) / (double)C.capacity;
    fprintf(stderr, "dedup: filled %zu ids (%.1f ns each), %zu entries, load %.3f\n", C.capacity,
            fill_ns, tn_dedup_entries(&d),
            (double)tn_dedup_entries(&d) / (double)(d.nbuckets * TN_DEDUP_SLOTS));

    /* A buffer of the table's size for the memory floors, huge pages like the table. */
    size_t fbytes = mem, flines = fbytes / 64;
    uint64_t *fbuf = aligned_alloc(2u << 20, fbytes);
    if (!fbuf) fail("out of memory");
    (void)madvise(fbuf, fbytes, MADV_HUGEPAGE);
    memset(fbuf, 1, fbytes);

    /* A small cache next to it, for the cost of a call when the table is in cache. */
    tn_dedup_t ds;
    if (tn_dedup_init(&ds, C.small, C.window_s)) fail("tn_dedup_init failed");
    stream_t *st_small = stream_new((long)C.small / 2);
    fill(st_small, ids, (long)C.small, 0);
    for (size_t i = 0; i < C.small; i++) tn_dedup_check_insert(&ds, ids[i], now);

    enum { MIX, BATCH, HIT, MISS, SMALL, HASH, HASH_LOAD, NV };
    static const char *vname[NV] = {"mix",   "mix batch", "hits",     "misses",
                                    "small", "hash",      "hash+load"};
    double *ns[NV];
    for (int k = 0; k < NV; k++) ns[k] = xmalloc(sizeof(double) * (size_t)C.rounds);
    long n = C.ops;
    uint64_t mix_early = 0;
    size_t entries_min = SIZE_MAX, entries_max = 0;
    for (int r = 0; r < C.rounds; r++) {
        /* steady state mix, one call per id */
        long dups = fill(st, ids, n, C.dup_pct);
        uint64_t e0 = d.early_rotations, hits = 0;
        t0 = tick();
        for (long i = 0; i < n; i++) hits += tn_dedup_check_insert(&d, ids[i], now);
        ns[MIX][r] = since_ns(t0) / (double)n;
        if ((long)hits != dups)
            fail("mix: %llu hits for %ld duplicates", (unsigned long long)hits, dups);
        mix_early += d.early_rotations - e0;
        entries_min = TN_MIN(entries_min, tn_dedup_entries(&d));
        entries_max = TN_MAX(entries_max, tn_dedup_entries(&d));

        /* the same mix handed over C.batch ids at a time (an inv list, a frame's tx) */
        dups = fill(st, ids, n, C.dup_pct);
        hits = 0;
        t0 = tick();
        for (long i = 0; i < n; i += C.batch)
            hits +=
                tn_dedup_check_insert_batch(&d, ids[i], (size_t)TN_MIN(C.batch, n - i), now, NULL);
        ns[BATCH][r] = since_ns(t0) / (double)n;
        if ((long)hits != dups)
            fail("batch: %llu hits for %ld duplicates", (unsigned long long)hits, dups);

        /* pure hits: every id is a recent one */
        fill(st, ids, n, 100);
        hits = 0;
        t0 = tick();
        for (long i = 0; i < n; i++) hits += tn_dedup_check_insert(&d, ids[i], now);
        ns[HIT][r] = since_ns(t0) / (double)n;
        if ((long)hits != n) fail("hits: %llu of %ld found", (unsigned long long)hits, n);

        /* pure misses: every id is new and gets stored */
        fill(st, ids, n, 0);
        hits = 0;
        t0 = tick();
        for (long i = 0; i < n; i++) hits += tn_dedup_check_insert(&d, ids[i], now);
        ns[MISS][r] = since_ns(t0) / (double)n;
        if (hits) fail("misses: %llu new ids reported as seen", (unsigned long long)hits);

        /* the mix on the small cache */
        dups = fill(st_small, ids, n, C.dup_pct);
        hits = 0;
        t0 = tick();
        for (long i = 0; i < n; i++) hits += tn_dedup_check_insert(&ds, ids[i], now);
        ns[SMALL][r] = since_ns(t0) / (double)n;
        if ((long)hits != dups)
            fail("small: %llu hits for %ld duplicates", (unsigned long long)hits, dups);

        /* floors on the same ids: the keyed hash alone; the hash and one random line */
        uint64_t acc = 0, h[2];
        t0 = tick();
        for (long i = 0; i < n; i++) {
            tn_dedup_hash(&d, ids[i], h);
            acc += h[0] ^ h[1];
        }
        ns[HASH][r] = since_ns(t0) / (double)n;
        t0 = tick();
        for (long i = 0; i < n; i++) {
            tn_dedup_hash(&d, ids[i], h);
            acc += fbuf[(size_t)(((unsigned __int128)h[0] * flines) >> 64) * 8];
        }
        ns[HASH_LOAD][r] = since_ns(t0) / (double)n;
        sink = acc;
        fprintf(stderr,
                "dedup: round %d/%d: mix %.1f  batch %.1f  hits %.1f  misses %.1f  small %.1f  "
                "hash %.1f  hash+load %.1f ns/op; %zu entries\n",
                r + 1, C.rounds, ns[MIX][r], ns[BATCH][r], ns[HIT][r], ns[MISS][r], ns[SMALL][r],
                ns[HASH][r], ns[HASH_LOAD][r], tn_dedup_entries(&d));
    }
    double med[NV];
    for (int k = 0; k < NV; k++) {
        med[k] = tn_bench_median(ns[k], C.rounds);
        fprintf(stderr, "dedup: median %-9s %.1f ns/op\n", vname[k], med[k]);
    }

    /* Latency floor: a chain of dependent random reads over the same buffer (one per line,
     * a random cyclic order), what an isolated lookup's miss costs when nothing overlaps it. */
    uint32_t *perm = xmalloc(sizeof(uint32_t) * flines);
    for (size_t i = 0; i < flines; i++) perm[i] = (uint32_t)i;
    for (size_t i = flines - 1; i > 0; i--) { /* Sattolo: one cycle through every line */
        size_t j = rng() % i;
        uint32_t x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    for (size_t i = 0; i < flines; i++) fbuf[i * 8] = perm[i];
    free(perm);
    long chain = TN_MIN((long)flines, 4000000L);
    uint64_t at = 0;
    t0 = tick();
    for (long i = 0; i < chain; i++) at = fbuf[at * 8];
    double latency_ns = since_ns(t0) / (double)chain;
    sink = at;

    /* What a clear-on-rotate design would stall the loop for: zeroing a table-sized buffer
     * (this design never clears on a rotation). Median of 5. */
    double clr[5];
    for (int i = 0; i < 5; i++) {
        t0 = tick();
        memset(fbuf, i, fbytes);
        __asm__ volatile("" ::"r"(fbuf) : "memory");
        clr[i] = since_ns(t0) / 1e6;
    }
    double clear_ms = tn_bench_median(clr, 5);
    free(fbuf);

    /* What a rotation costs on a quiet node: one new id per window/2, so each call rotates
     * and tops the scrub walk up by 1/TN_DEDUP_SCRUB_GENS of the table. */
    enum { QUIET = 201 };
    double rot_us[QUIET];
    uint64_t t_now = now, rot0 = d.rotations, stalls0 = d.scrub_stalls;
    for (int i = 0; i < QUIET; i++) {
        fill(st, ids, 1, 0);
        t_now += d.half_ms;
        t0 = tick();
        tn_dedup_check_insert(&d, ids[0], t_now);
        rot_us[i] = since_ns(t0) / 1e3;
    }
    if (d.rotations - rot0 != QUIET) fail("quiet calls did not rotate");
    if (d.scrub_stalls != stalls0) fail("a whole-table scrub happened");
    double rot_med_us = tn_bench_median(rot_us, QUIET), rot_p99_us = rot_us[QUIET * 99 / 100];

    double bpe = (double)mem / (double)C.capacity;
    fprintf(stderr,
            "dedup: %.1f bytes/entry; floors: hash %.1f ns, hash+load %.1f ns, latency %.1f ns, "
            "clear %.2f ms; quiet rotation median %.0f us, p99 %.0f us\n",
            bpe, med[HASH], med[HASH_LOAD], latency_ns, clear_ms, rot_med_us, rot_p99_us);

    printf("{\"params\": {\"capacity\": %zu, \"window_s\": %g, \"buckets\": %zu, "
           "\"slots_per_bucket\": %d, \"table_bytes\": %zu, \"load_at_capacity\": %.3f, "
           "\"ops_per_round\": %ld, \"rounds\": %d, \"batch\": %ld, \"small_capacity\": %zu, "
           "\"small_table_bytes\": %zu, \"cpu\": %d, "
           "\"mix\": \"%d %% duplicates of one of the last %ld new ids, %d %% new ids; clock "
           "fixed, so generations rotate early every %zu new ids\", \"entries_min\": %zu, "
           "\"entries_max\": %zu, \"mix_early_rotations\": %llu, \"hash\": \"SipHash-2-4-128 "
           "(as crypto_shorthash_siphashx24), inlined\", \"statistic\": \"median over rounds "
           "of the round's mean, thread CPU time\", \"cpu_share\": %.3f, \"goal_ns_per_op\": 60, "
           "\"goal_bytes_per_entry\": 64, \"ratio\": \"ns_per_op / hash_load_ns\"},\n",
           C.capacity, C.window_s, d.nbuckets, TN_DEDUP_SLOTS, mem,
           (double)(2 * d.gen_max) / (double)(d.nbuckets * TN_DEDUP_SLOTS), C.ops, C.rounds,
           C.batch, C.small, tn_dedup_memory(&ds), cpu, C.dup_pct, C.recent, 100 - C.dup_pct,
           d.gen_max, entries_min, entries_max, (unsigned long long)mix_early,
           wall_sum ? (double)cpu_sum / (double)wall_sum : 0);
    printf(" \"figures\": {\"ns_per_op\": %.1f, \"batch_ns_per_op\": %.1f, "
           "\"bytes_per_entry\": %.2f, \"hit_ns\": %.1f, \"miss_insert_ns\": %.1f, "
           "\"small_ns_per_op\": %.1f, "
           "\"fill_ns\": %.1f, \"quiet_rotation_median_us\": %.1f, "
           "\"quiet_rotation_p99_us\": %.1f, \"ratio\": %.2f},\n",
           med[MIX], med[BATCH], bpe, med[HIT], med[MISS], med[SMALL], fill_ns, rot_med_us,
           rot_p99_us, med[HASH_LOAD] > 0 ? med[MIX] / med[HASH_LOAD] : 0);
    printf(" \"floors\": {\"hash_ns\": %.1f, \"hash_load_ns\": %.1f, \"mem_latency_ns\": %.1f, "
           "\"clear_table_ms\": %.2f}}\n",
           med[HASH], med[HASH_LOAD], latency_ns, clear_ms);

    for (int k = 0; k < NV; k++) free(ns[k]);
    free(ids);
    stream_free(st);
    stream_free(st_small);
    tn_dedup_free(&ds);
    tn_dedup_free(&d);
    return 0;
}
