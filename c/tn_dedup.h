/* The relay's seen-id cache (DESIGN.md "Defaults: Dedup", issue 5 "Relay"): remembers the
 * 32-byte ids of transactions and blocks for a bounded time in bounded memory, checked before
 * any signature verification. Loop thread only; no allocation after tn_dedup_init.
 *
 * Layout. One table of 64-byte buckets (one cache line each): 7 slots of 8 bytes, each a
 * 56-bit fingerprint plus an 8-bit generation tag, and one overflow word. An id is keyed-
 * hashed once (SipHash-2-4 with 128-bit output, bit for bit libsodium's
 * crypto_shorthash_siphashx24, computed inline; the key is drawn from randombytes at every
 * init, so it is secret and differs per process and per cache): one 64-bit half picks the
 * home bucket, the other gives the fingerprint, so the two are independent. A bucket whose slots
 * are all live spills into the next one and records the generation that spilled in its overflow
 * word, so a lookup reads the next bucket only while that spill is still live; a lookup or an
 * insert touches one cache line in about 97 % of cases (two adjacent ones otherwise).
 *
 * Expiry without timestamps or sweeps. Entries belong to generations: inserts go to the
 * current one, lookups match the current and the previous one. Every window/2 (or as soon
 * as the current generation holds its bound of ceil(capacity/2) entries: an early rotation
 * under a flood, counted) the generation counter advances, which makes every entry of the
 * old previous generation stale at once; stale slots are reused by later inserts. Nothing
 * is cleared on a rotation. Tags are 8 bits and recur every 255 generations, so a walk
 * zeroes stale tags before they can recur: each rotation scrubs the next
 * 1/TN_DEDUP_SCRUB_GENS of the table (a sequential pass: ~0.3 ms at 4M entries, ~0.1 ms at
 * the default 1.2M, once per window/2 or per ceil(capacity/2) new ids).
 *
 * Bounds and guarantees:
 *   - entries: at most 2 * ceil(capacity/2) live ids; memory fixed at init, never grows:
 *     64 bytes per 3.5 ids of capacity = 18.3 bytes (load <= 0.5 over 7-slot buckets),
 *     rounded up to whole 2 MiB huge pages for tables of 2 MiB and more (the slack becomes
 *     extra buckets): 18.35 bytes per id at 4M, 19.2 at the default 1.2M.
 *   - retention: an id is remembered from its first insert for at least window/2 and at most
 *     window (sightings do not extend it, so a peer re-sending an id cannot pin it), provided
 *     fewer than ceil(capacity/2) other new ids arrive meanwhile; under a flood the window
 *     shrinks to "the last ceil(capacity/2) to capacity new ids" and memory stays the same.
 *   - false positives (a new id reported as seen): its 56-bit fingerprint must equal that
 *     of a live id in the buckets probed (3.5 on average at full load, 7 in a full bucket,
 *     more only along a rare spill chain): p ~ 3.5 * 2^-56 = 5e-17 per lookup, whatever the
 *     number of entries (a fingerprint sharing bits with the bucket index would give
 *     entries * 2^-64 = 2e-13 at 4M). The key is secret, so peers can neither aim ids at
 *     one bucket (hash flooding) nor at a victim's fingerprint other than by luck.
 *   - false negatives: none inside the retention above.
 *   - time: now_ms is the loop's monotonic clock (uv_now); a clock going backwards counts
 *     as no time passing.
 *   - probing: a lookup or insert visits at most every bucket once (expected ~1.03).
 *   - cost: one keyed hash (~28 ns) and one cache line, so a lone call on a table larger
 *     than the caches costs about one memory latency; tn_dedup_check_insert_batch overlaps
 *     those of up to 16 ids (bench `dedup` has the figures). */
#ifndef TN_DEDUP_H
#define TN_DEDUP_H

#include "tn_common.h"

#include <stdbool.h>

#define TN_DEDUP_ID_LEN 32
#define TN_DEDUP_CAPACITY_MIN 1
#define TN_DEDUP_CAPACITY_MAX ((size_t)1 << 30) /* a 19.6 GB table: far above any config */
#define TN_DEDUP_WINDOW_MIN_S 0.002             /* window/2 must be at least 1 ms */
#define TN_DEDUP_WINDOW_MAX_S (365.0 * 86400)
#define TN_DEDUP_SLOTS 7        /* ids per 64-byte bucket; the 8th word is the overflow tag */
#define TN_DEDUP_SCRUB_GENS 100 /* the scrub walk covers the table within this many gens */
#define TN_DEDUP_TAG_SPAN 252   /* tags span at most this many gens (else: whole-table scrub) */

typedef struct {
    uint64_t slot[TN_DEDUP_SLOTS]; /* fingerprint << 8 | tag; tag 0 = empty */
    uint64_t spill;                /* tag of the latest generation that spilled into the next */
} tn_dedup_bucket_t;

typedef struct {
    tn_dedup_bucket_t *b;
    size_t nbuckets;
    size_t alloc_bytes;
    uint8_t key[16]; /* SipHash key, random per cache */

    size_t gen_max;     /* entries per generation: ceil(capacity/2) */
    uint64_t half_ms;   /* a generation's time span: window/2 */
    uint64_t gen;       /* current generation number; tag = 1 + gen % 255 */
    uint64_t gen_start; /* when the current generation began (ms); grid for timed rotations */
    bool started;       /* gen_start set by the first insert */
    size_t n_cur, n_prev;

    /* the scrub walk that retires 8-bit tags before they recur */
    size_t scrub_chunk;  /* buckets it must cover per generation: nbuckets / SCRUB_GENS */
    size_t scrub_next;   /* next bucket to scrub */
    uint64_t scrub_from; /* generation the running walk started in */
    uint64_t oldest;     /* every tag in the table is from a generation >= oldest */

    /* counters for metrics (monotonic) */
    uint64_t lookups;         /* tn_dedup_check_insert calls (the relay path) */
    uint64_t hits;            /* of which found the id */
    uint64_t inserts;         /* new ids stored */
    uint64_t rotations;       /* generation changes, timed and early */
    uint64_t early_rotations; /* of which forced by a full generation (a flood) */
    uint64_t scrub_stalls;    /* whole-table scrubs in a rotation (a safety net; expect 0) */
} tn_dedup_t;

/* capacity: ids to remember per window; window_s: how long an id is remembered (s).
 * 0, TN_EINVAL (out of the bounds above), TN_ENOMEM, or TN_ECRYPTO (sodium_init failed).
 * Allocates and touches the whole table now (~18.4 bytes per id of capacity). */
int tn_dedup_init(tn_dedup_t *d, size_t capacity, double window_s);
/* Frees the table; safe to call twice and after a failed init. */
void tn_dedup_free(tn_dedup_t *d);

/* The relay's one call per received object: true if the id was seen (a duplicate),
 * otherwise stores it and returns false. */
bool tn_dedup_check_insert(tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t now_ms);
/* The same for n ids at ids[0..32n) in order (an inv list, the tx of one frame), with
 * the keyed hashes and memory reads of up to 16 ids overlapped: the same results as n
 * calls, a fraction of the time at large capacities. seen[i] (if seen is not NULL) tells
 * whether ids[i] was a duplicate, including of an earlier id of the same batch. Returns
 * the number of duplicates. */
size_t tn_dedup_check_insert_batch(tn_dedup_t *d, const uint8_t *ids, size_t n, uint64_t now_ms,
                                   bool *seen);
/* Whether the id is remembered at now_ms; changes nothing (no counters either). */
bool tn_dedup_contains(const tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t now_ms);
/* Stores the id if absent (e.g. our own transactions, ids restored from the store); counts
 * an insert, not a lookup. */
void tn_dedup_insert(tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t now_ms);

/* Bytes allocated (the table; the struct itself is the caller's). */
size_t tn_dedup_memory(const tn_dedup_t *d);
/* Ids currently remembered (current + previous generation), as of the last mutating call. */
size_t tn_dedup_entries(const tn_dedup_t *d);

/* The keyed hash of an id (exposed for tests and the bench's floor). */
void tn_dedup_hash(const tn_dedup_t *d, const uint8_t id[TN_DEDUP_ID_LEN], uint64_t out[2]);

#endif
