/* The address table (see tn_addrman.h): bucket placement, eviction inside a bucket, the
 * tried/new moves and aging. Buckets are picked with a keyed hash (SipHash, random key per
 * process), so an attacker cannot choose addresses that land in the buckets of others. */
#include "tn_addrman.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#define MS_PER_DAY (86400ull * 1000)
#define TRY_GRACE_MS (60ull * 1000)         /* just tried: never terrible (Bitcoin Core) */
#define FUTURE_SLACK_MS (10ull * 60 * 1000) /* last_seen this far in the future: a liar */
#define NEVER_WORKED_TRIES 3                /* failed dials of a never-successful address */
#define STALE_TRIES 10                      /* failed dials since a success ... */
#define STALE_SUCCESS_MS (7 * MS_PER_DAY)   /* ... more than a week ago */
#define SEEN_REFRESH_MS (20ull * 60 * 1000) /* last_seen moves in steps of this */

static const char *const SOURCE_NAMES[TN_AMSRC__COUNT] = {"seed", "api", "exchange", "inbound",
                                                          "outbound"};

const char *tn_am_source_name(tn_am_source_t s)
{
    return s < TN_AMSRC__COUNT ? SOURCE_NAMES[s] : "?";
}

int tn_am_source_parse(const char *name)
{
    for (int i = 0; i < TN_AMSRC__COUNT; i++)
        if (name && strcmp(name, SOURCE_NAMES[i]) == 0) return i;
    return -1;
}

/* ---- groups and hashing ---- */

uint64_t tn_netgroup(const tn_addr_t *a)
{
    if (tn_addr_is_any(a)) return 0;
    if (tn_addr_is_v4(a)) return (4ull << 32) | ((uint64_t)a->ip[12] << 8) | a->ip[13];
    return (6ull << 32) | tn_get_u32(a->ip);
}

void tn_netgroup_fmt(const tn_addr_t *a, char *out, size_t n)
{
    if (tn_addr_is_v4(a))
        snprintf(out, n, "%u.%u", a->ip[12], a->ip[13]);
    else
        snprintf(out, n, "%x:%x", tn_get_u16(a->ip), tn_get_u16(a->ip + 2));
}

/* The group a source belongs to: the telling peer's group, or one shared pseudo-group per
 * kind of source without a peer (all seeds together, the API as one source). */
static uint64_t source_group(const tn_am_entry_t *e)
{
    if (!tn_addr_is_any(&e->src)) return tn_netgroup(&e->src);
    return (9ull << 32) | e->source;
}

static uint64_t h64(const tn_addrman_t *am, const char tag[2], uint64_t x, uint64_t y)
{
    uint8_t in[18], out[crypto_shorthash_BYTES];
    memcpy(in, tag, 2);
    tn_put_u64(in + 2, x);
    tn_put_u64(in + 10, y);
    crypto_shorthash(out, in, sizeof in, am->key);
    return tn_get_u64(out);
}

static uint64_t addr_hash(const tn_addrman_t *am, const tn_addr_t *a)
{
    uint8_t in[18], out[crypto_shorthash_BYTES];
    memcpy(in, a->ip, 16);
    tn_put_u16(in + 16, a->port);
    crypto_shorthash(out, in, sizeof in, am->key);
    return tn_get_u64(out);
}

static int new_bucket(const tn_addrman_t *am, const tn_am_entry_t *e)
{
    uint64_t g = tn_netgroup(&e->addr), sg = source_group(e);
    uint64_t k = h64(am, "n1", g, sg) % TN_AM_SRC_BUCKETS;
    return (int)(h64(am, "n2", sg, k) % TN_AM_NEW_BUCKETS);
}

static int tried_bucket(const tn_addrman_t *am, const tn_am_entry_t *e)
{
    uint64_t k = addr_hash(am, &e->addr) % TN_AM_GROUP_TRIED;
    return (int)(h64(am, "t1", tn_netgroup(&e->addr), k) % TN_AM_TRIED_BUCKETS);
}

static void index_key(const tn_addr_t *a, uint8_t key[32])
{
    memset(key, 0, 32);
    memcpy(key, a->ip, 16);
    tn_put_u16(key + 16, a->port);
}

/* ---- pool ---- */

tn_addrman_t *tn_addrman_new(uint64_t horizon_ms)
{
    tn_addrman_t *am = calloc(1, sizeof(*am));
    if (!am) return NULL;
    if (tn_idmap_init(&am->index, 2 * TN_AM_MAX) != TN_OK) {
        free(am);
        return NULL;
    }
    randombytes_buf(am->key, sizeof am->key);
    for (int i = 0; i < TN_AM_MAX; i++) am->next_free[i] = i + 1 < TN_AM_MAX ? i + 1 : -1;
    am->free_head = 0;
    am->horizon_ms = horizon_ms;
    return am;
}

void tn_addrman_free(tn_addrman_t *am)
{
    if (!am) return;
    tn_idmap_free(&am->index);
    free(am);
}

static int idx_of(const tn_addrman_t *am, const tn_am_entry_t *e)
{
    return (int)(e - am->pool);
}

static void changed(tn_addrman_t *am, const tn_am_entry_t *e, tn_am_change_t what)
{
    if (am->on_change) am->on_change(am->ud, e, what);
}

static tn_am_entry_t *alloc_entry(tn_addrman_t *am)
{
    if (am->free_head < 0) return NULL;
    tn_am_entry_t *e = &am->pool[am->free_head];
    am->free_head = am->next_free[am->free_head];
    memset(e, 0, sizeof(*e));
    e->used = true;
    e->bucket = e->pos = -1;
    return e;
}

/* Takes e out of its bucket (it stays in the pool and the index). */
static void unplace(tn_addrman_t *am, tn_am_entry_t *e)
{
    if (e->bucket < 0) return;
    if (e->tried) {
        am->tried_b[e->bucket][e->pos] = 0;
        am->n_tried--;
    } else {
        am->new_b[e->bucket][e->pos] = 0;
        am->n_new--;
    }
    e->bucket = e->pos = -1;
}

static void release(tn_addrman_t *am, tn_am_entry_t *e, bool report)
{
    uint8_t key[32];
    unplace(am, e);
    index_key(&e->addr, key);
    tn_idmap_del(&am->index, key);
    if (report) changed(am, e, TN_AM_DELETE);
    e->used = false;
    int i = idx_of(am, e);
    am->next_free[i] = am->free_head;
    am->free_head = i;
}

tn_am_entry_t *tn_addrman_find(const tn_addrman_t *am, const tn_addr_t *a)
{
    uint8_t key[32];
    index_key(a, key);
    return tn_idmap_get(&am->index, key);
}

/* ---- judging entries ---- */

bool tn_addrman_terrible(const tn_addrman_t *am, const tn_am_entry_t *e, uint64_t now_ms)
{
    if (e->last_try && now_ms - e->last_try < TRY_GRACE_MS && now_ms >= e->last_try) return false;
    if (e->last_seen > now_ms + FUTURE_SLACK_MS) return true;
    uint64_t recent = e->last_success > e->last_seen ? e->last_success : e->last_seen;
    if (now_ms > recent && now_ms - recent > am->horizon_ms) return true;
    if (!e->last_success && e->attempts >= NEVER_WORKED_TRIES) return true;
    if (e->last_success && now_ms - e->last_success > STALE_SUCCESS_MS &&
        e->attempts >= STALE_TRIES)
        return true;
    return false;
}

/* Worse first: terrible, then more failed attempts, then least recently seen. */
static bool worse(const tn_addrman_t *am, const tn_am_entry_t *a, const tn_am_entry_t *b,
                  uint64_t now)
{
    bool ta = tn_addrman_terrible(am, a, now), tb = tn_addrman_terrible(am, b, now);
    if (ta != tb) return ta;
    if (a->attempts != b->attempts) return a->attempts > b->attempts;
    return a->last_seen < b->last_seen;
}

/* ---- placement ---- */

/* Puts e into its new bucket. A full bucket drops its worst entry of e's source group (or a
 * terrible one of any group); if there is none, e does not fit: TN_ENOMEM. */
static int place_new(tn_addrman_t *am, tn_am_entry_t *e, uint64_t now)
{
    int b = new_bucket(am, e), free_pos = -1, victim = -1;
    uint64_t sg = source_group(e);
    for (int i = 0; i < TN_AM_NEW_SIZE; i++) {
        int x = am->new_b[b][i];
        if (!x) {
            if (free_pos < 0) free_pos = i;
            continue;
        }
        tn_am_entry_t *o = &am->pool[x - 1];
        bool candidate = source_group(o) == sg || tn_addrman_terrible(am, o, now);
        if (candidate && (victim < 0 || worse(am, o, &am->pool[am->new_b[b][victim] - 1], now)))
            victim = i;
    }
    if (free_pos < 0) {
        if (victim < 0) return TN_ENOMEM;
        tn_am_entry_t *o = &am->pool[am->new_b[b][victim] - 1];
        release(am, o, true);
        am->evicted_new++;
        free_pos = victim;
    }
    am->new_b[b][free_pos] = (int16_t)(idx_of(am, e) + 1);
    e->bucket = (int16_t)b;
    e->pos = (int16_t)free_pos;
    e->tried = false;
    am->n_new++;
    return TN_OK;
}

/* Puts e into its tried bucket; a full bucket sends back to new its entry with the oldest
 * success (Bitcoin Core does the same: it stays known, just no longer protected). */
static void place_tried(tn_addrman_t *am, tn_am_entry_t *e, uint64_t now)
{
    int b = tried_bucket(am, e), pos = -1, oldest = -1;
    for (int i = 0; i < TN_AM_TRIED_SIZE; i++) {
        int x = am->tried_b[b][i];
        if (!x) {
            pos = i;
            break;
        }
        if (oldest < 0 ||
            am->pool[x - 1].last_success < am->pool[am->tried_b[b][oldest] - 1].last_success)
            oldest = i;
    }
    if (pos < 0) {
        tn_am_entry_t *o = &am->pool[am->tried_b[b][oldest] - 1];
        unplace(am, o);
        am->evicted_tried++;
        if (place_new(am, o, now) != TN_OK) {
            release(am, o, true);
        } else {
            changed(am, o, TN_AM_UPSERT);
        }
        pos = oldest;
    }
    am->tried_b[b][pos] = (int16_t)(idx_of(am, e) + 1);
    e->bucket = (int16_t)b;
    e->pos = (int16_t)pos;
    e->tried = true;
    am->n_tried++;
}

static tn_am_entry_t *insert(tn_addrman_t *am, const tn_addr_t *a)
{
    tn_am_entry_t *e = alloc_entry(am);
    if (!e) return NULL;
    e->addr = *a;
    uint8_t key[32];
    index_key(a, key);
    if (tn_idmap_put(&am->index, key, e) != TN_OK) {
        e->used = false;
        int i = idx_of(am, e);
        am->next_free[i] = am->free_head;
        am->free_head = i;
        return NULL;
    }
    return e;
}

int tn_addrman_add(tn_addrman_t *am, const tn_addr_t *a, const uint8_t *id, tn_am_source_t source,
                   const tn_addr_t *src, uint64_t seen_ms, uint64_t now_ms)
{
    if (seen_ms > now_ms) seen_ms = now_ms;
    tn_am_entry_t *e = tn_addrman_find(am, a);
    if (e) {
        bool change = false;
        /* Sightings refresh last_seen coarsely: every seeds round or peers message would
         * otherwise be a store write (Bitcoin Core does the same). */
        if (seen_ms > e->last_seen + SEEN_REFRESH_MS) {
            e->last_seen = seen_ms;
            change = true;
        }
        if (id && !e->id_verified && (!e->has_id || memcmp(e->id, id, 32) != 0)) {
            memcpy(e->id, id, 32);
            e->has_id = true;
            change = true;
        }
        if (change) changed(am, e, TN_AM_UPSERT);
        return TN_EALREADY;
    }
    /* A full pool (possible only when buckets hash unevenly): make room among terrible
     * entries first, else refuse. */
    if (am->free_head < 0) {
        tn_addrman_sweep(am, now_ms);
        if (am->free_head < 0) {
            am->dropped_full++;
            return TN_ENOMEM;
        }
    }
    e = insert(am, a);
    if (!e) {
        am->dropped_full++;
        return TN_ENOMEM;
    }
    e->source = (uint8_t)source;
    if (src) e->src = *src;
    if (id) {
        memcpy(e->id, id, 32);
        e->has_id = true;
    }
    e->first_seen = now_ms;
    e->last_seen = seen_ms;
    if (place_new(am, e, now_ms) != TN_OK) {
        release(am, e, false);
        am->dropped_full++;
        return TN_ENOMEM;
    }
    am->added++;
    changed(am, e, TN_AM_UPSERT);
    return TN_OK;
}

tn_am_entry_t *tn_addrman_good(tn_addrman_t *am, const tn_addr_t *a, const uint8_t id[32],
                               tn_am_source_t source, uint64_t now_ms)
{
    tn_am_entry_t *e = tn_addrman_find(am, a);
    if (!e) {
        if (am->free_head < 0) tn_addrman_sweep(am, now_ms);
        if (!(e = insert(am, a))) return NULL;
        e->source = (uint8_t)source;
        e->first_seen = now_ms;
        am->added++;
    }
    memcpy(e->id, id, 32);
    e->has_id = e->id_verified = true;
    e->last_seen = e->last_success = e->last_try = now_ms;
    e->attempts = 0;
    e->retry_at = 0;
    e->successes++;
    if (!e->tried) {
        unplace(am, e);
        place_tried(am, e, now_ms);
    }
    changed(am, e, TN_AM_UPSERT);
    return e;
}

void tn_addrman_attempt(tn_addrman_t *am, const tn_addr_t *a, uint64_t now_ms)
{
    tn_am_entry_t *e = tn_addrman_find(am, a);
    if (e) e->last_try = now_ms; /* persisted with the outcome */
}

void tn_addrman_failed(tn_addrman_t *am, const tn_addr_t *a, uint64_t now_ms, uint64_t retry_at)
{
    tn_am_entry_t *e = tn_addrman_find(am, a);
    if (!e) return;
    e->last_try = now_ms;
    e->attempts++;
    e->failures++;
    e->retry_at = retry_at;
    changed(am, e, TN_AM_UPSERT);
}

void tn_addrman_remove(tn_addrman_t *am, const tn_addr_t *a)
{
    tn_am_entry_t *e = tn_addrman_find(am, a);
    if (e) release(am, e, true);
}

void tn_addrman_touch(tn_addrman_t *am, tn_am_entry_t *e)
{
    changed(am, e, TN_AM_UPSERT);
}

tn_am_entry_t *tn_addrman_find_id(tn_addrman_t *am, const uint8_t id[32])
{
    tn_am_entry_t *best = NULL;
    for (int i = 0; i < TN_AM_MAX; i++) {
        tn_am_entry_t *e = &am->pool[i];
        if (!e->used || !e->has_id || memcmp(e->id, id, 32) != 0) continue;
        if (!best || (e->tried && !best->tried) ||
            (e->tried == best->tried && e->last_success > best->last_success))
            best = e;
    }
    return best;
}

int tn_addrman_sweep(tn_addrman_t *am, uint64_t now_ms)
{
    int n = 0;
    for (int i = 0; i < TN_AM_MAX; i++) {
        tn_am_entry_t *e = &am->pool[i];
        if (!e->used || e->anchor || !tn_addrman_terrible(am, e, now_ms)) continue;
        release(am, e, true);
        am->aged_out++;
        n++;
    }
    return n;
}

int tn_addrman_restore(tn_addrman_t *am, const tn_am_entry_t *src, uint64_t now_ms)
{
    if (tn_addrman_find(am, &src->addr)) return TN_EALREADY;
    tn_am_entry_t *e = insert(am, &src->addr);
    if (!e) return TN_ENOMEM;
    tn_am_entry_t keep = *e;
    *e = *src;
    e->used = true;
    e->bucket = keep.bucket;
    e->pos = keep.pos;
    e->fresh = 0;
    if (src->tried) {
        /* Restored tried entries never push each other out: a full bucket means the
         * entry goes to new instead. */
        int b = tried_bucket(am, e);
        for (int i = 0; i < TN_AM_TRIED_SIZE; i++)
            if (!am->tried_b[b][i]) {
                am->tried_b[b][i] = (int16_t)(idx_of(am, e) + 1);
                e->bucket = (int16_t)b;
                e->pos = (int16_t)i;
                am->n_tried++;
                return TN_OK;
            }
        e->tried = false;
    }
    if (place_new(am, e, now_ms) != TN_OK) {
        release(am, e, false);
        return TN_ENOMEM;
    }
    return TN_OK;
}

tn_am_entry_t *tn_addrman_next(tn_addrman_t *am, int *i)
{
    while (++*i < TN_AM_MAX)
        if (am->pool[*i].used) return &am->pool[*i];
    return NULL;
}
