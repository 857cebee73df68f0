/* The address table (seed §8 "cached peers", §9, §21): every address the node has heard of,
 * who told it, and how dialing it went. Two bounded parts, after Bitcoin Core's addrman:
 * "new" holds addresses never connected to, in buckets chosen by (source group, address
 * group) so that one source reaches at most TN_AM_SRC_BUCKETS of the new buckets; "tried"
 * holds addresses we connected to, in buckets chosen by address group, and only a successful
 * connection puts an address there. A flood of learned addresses therefore churns its own
 * source's few buckets and never evicts an address that worked. Groups are /16 for IPv4 and
 * /32 for IPv6 (policies/lib/netgroup.lua has the same rule in Lua).
 *
 * Pure data structure, no I/O and no clock of its own: callers pass the time (unix ms) and
 * persist changes through the on_change callback. Loop thread only. */
#ifndef TN_ADDRMAN_H
#define TN_ADDRMAN_H

#include "tn_addr.h"
#include "tn_idmap.h"

#include <stdbool.h>

#define TN_AM_NEW_BUCKETS 256
#define TN_AM_NEW_SIZE 16 /* new: 4096 addresses */
#define TN_AM_TRIED_BUCKETS 64
#define TN_AM_TRIED_SIZE 32  /* tried: 2048 addresses */
#define TN_AM_SRC_BUCKETS 16 /* new buckets one source group can reach: 256 addresses */
#define TN_AM_GROUP_TRIED 8  /* tried buckets one address group can reach: 256 addresses */
#define TN_AM_MAX (TN_AM_NEW_BUCKETS * TN_AM_NEW_SIZE + TN_AM_TRIED_BUCKETS * TN_AM_TRIED_SIZE)

/* Where an address came from. */
typedef enum {
    TN_AMSRC_SEED,     /* config seeds */
    TN_AMSRC_API,      /* the HTTP peer API */
    TN_AMSRC_EXCHANGE, /* a peer's `peers` message */
    TN_AMSRC_INBOUND,  /* an inbound peer's own listen address */
    TN_AMSRC_OUTBOUND, /* dialed by config or operator, and it answered */
    TN_AMSRC__COUNT
} tn_am_source_t;

const char *tn_am_source_name(tn_am_source_t s);
int tn_am_source_parse(const char *name); /* -1 if unknown */

typedef struct {
    tn_addr_t addr;
    tn_addr_t src;  /* IP of the peer that told us (exchange, inbound); zero otherwise */
    uint8_t id[32]; /* node id seen there: verified by our handshake, or a peer's hint */
    bool has_id;
    bool id_verified; /* the id came from a handshake at this address */
    bool tried;
    bool anchor;    /* an outbound peer when the node last shut down */
    uint8_t source; /* tn_am_source_t */
    uint8_t fresh;  /* bit per discovery source that gave this address in this run */
    uint64_t first_seen, last_seen, last_try, last_success, retry_at; /* unix ms */
    uint32_t attempts;                                                /* consecutive failed dials */
    uint32_t successes; /* sessions established by dialing it */
    uint32_t failures;  /* failed dials, in all */
    /* placement */
    int16_t bucket, pos;
    bool used;
} tn_am_entry_t;

typedef enum { TN_AM_UPSERT, TN_AM_DELETE } tn_am_change_t;

typedef struct {
    tn_am_entry_t pool[TN_AM_MAX];
    int32_t free_head;
    int32_t next_free[TN_AM_MAX];
    int16_t new_b[TN_AM_NEW_BUCKETS][TN_AM_NEW_SIZE]; /* pool index + 1 when > 0 */
    int16_t tried_b[TN_AM_TRIED_BUCKETS][TN_AM_TRIED_SIZE];
    tn_idmap_t index; /* address key -> entry */
    uint8_t key[16];  /* bucket hashing key: random per process, so buckets cannot be aimed */
    int n_new, n_tried;
    uint64_t horizon_ms; /* addresses not seen for this long age out (config addr_max_age) */
    /* counters for metrics */
    uint64_t added, dropped_full, evicted_new, evicted_tried, aged_out;
    void (*on_change)(void *ud, const tn_am_entry_t *e, tn_am_change_t what);
    void *ud;
} tn_addrman_t;

/* The /16 (IPv4) or /32 (IPv6) of an address, as a comparable number (0 for the zero
 * address). Exposed for eviction and outbound diversity. */
uint64_t tn_netgroup(const tn_addr_t *a);
/* Text form for logs and policies: "10.1" or "2001:db8". */
void tn_netgroup_fmt(const tn_addr_t *a, char *out, size_t n);

/* Heap-allocated (the pool is large). */
tn_addrman_t *tn_addrman_new(uint64_t horizon_ms);
void tn_addrman_free(tn_addrman_t *am);

/* Learns an address. Existing: refreshes last_seen and, without a verified id, the id hint;
 * returns TN_EALREADY. New: placed in its new bucket; a full bucket makes room by dropping
 * the worst address from the same source group (or a terrible one), else the newcomer is
 * dropped (TN_ENOMEM). src: the telling peer's address (NULL for seeds and the API). */
int tn_addrman_add(tn_addrman_t *am, const tn_addr_t *a, const uint8_t *id, tn_am_source_t source,
                   const tn_addr_t *src, uint64_t seen_ms, uint64_t now_ms);
/* A dial to a succeeded (session authenticated as id): moves it to tried (adding it first if
 * unknown, with source `source`). A full tried bucket sends its least recently successful
 * entry back to new. */
tn_am_entry_t *tn_addrman_good(tn_addrman_t *am, const tn_addr_t *a, const uint8_t id[32],
                               tn_am_source_t source, uint64_t now_ms);
void tn_addrman_attempt(tn_addrman_t *am, const tn_addr_t *a, uint64_t now_ms);
void tn_addrman_failed(tn_addrman_t *am, const tn_addr_t *a, uint64_t now_ms, uint64_t retry_at);
void tn_addrman_remove(tn_addrman_t *am, const tn_addr_t *a);
/* Rewrites an entry's persistent flags (anchor) and reports the change. */
void tn_addrman_touch(tn_addrman_t *am, tn_am_entry_t *e);
tn_am_entry_t *tn_addrman_find(const tn_addrman_t *am, const tn_addr_t *a);
/* The best entry with this node id (tried first, then the most recent success). */
tn_am_entry_t *tn_addrman_find_id(tn_addrman_t *am, const uint8_t id[32]);
/* Bitcoin Core's "terrible": not worth keeping or sharing. */
bool tn_addrman_terrible(const tn_addrman_t *am, const tn_am_entry_t *e, uint64_t now_ms);
/* Removes terrible entries; returns how many. */
int tn_addrman_sweep(tn_addrman_t *am, uint64_t now_ms);
/* Loads an entry from the store as it was (tried or new); TN_ENOMEM when it does not fit. */
int tn_addrman_restore(tn_addrman_t *am, const tn_am_entry_t *e, uint64_t now_ms);
static inline int tn_addrman_size(const tn_addrman_t *am)
{
    return am->n_new + am->n_tried;
}
/* Iteration: for (int i = -1; (e = tn_addrman_next(am, &i));) */
tn_am_entry_t *tn_addrman_next(tn_addrman_t *am, int *i);

#endif
