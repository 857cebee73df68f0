/* Discovery and peer management: where new peers come from (seeds, the HTTP peer API, peer
 * exchange, the address table on disk, anchors), how good each known peer has been (quality
 * persisted per node id), and how many sessions a node keeps (8-50 ordinary peers, reserved
 * masternode slots, eviction at full slots). Every decision goes through the policy hooks
 * discovery_order, rank_candidates, score, evict and reconnect (policies/README.md).
 *
 * Files, one concern each: tn_discovery.c (the discovery loop, anchors, masternode dials,
 * the address table's persistence, the `addrs` verb), tn_addrman.c (the address table),
 * tn_peerapi.c (the HTTP API client on libcurl multi), tn_pex.c (get_peers / peers),
 * tn_evict.c (slots and eviction), tn_quality.c (peer quality), tn_policy_peers.c (the
 * typed hooks). Loop thread only. */
#ifndef TN_DISC_H
#define TN_DISC_H

#include "tn_addrman.h"
#include "tn_idmap.h"
#include "tn_node.h"

#include <cJSON.h>

typedef struct tn_peerapi tn_peerapi_t;
typedef struct tn_geoip tn_geoip_t;

#define TN_QUALITY_MAX 4096 /* peer quality records kept; the least recently updated goes */
#define TN_RANK_MAX 256     /* candidates shown to rank_candidates in one round */

/* Discovery sources, in the default order of seed §8. */
typedef enum {
    TN_DSRC_SEEDS,
    TN_DSRC_API,
    TN_DSRC_EXCHANGE,
    TN_DSRC_CACHE,
    TN_DSRC__COUNT
} tn_dsrc_t;

const char *tn_dsrc_name(tn_dsrc_t s);

typedef struct {
    bool available;    /* configured / something to ask */
    uint32_t failures; /* consecutive rounds it was tried and gave nothing to dial */
    uint64_t rounds, dials;
} tn_dsrc_state_t;

/* What a node remembers about a peer identity across sessions and restarts (seed §9). The
 * counters of the session in progress are added when it ends. */
typedef struct tn_quality {
    uint8_t id[32];
    tn_addr_t addr;                     /* where it was last connected */
    uint32_t dials, dial_failures;      /* our dials to it */
    uint32_t sessions, disconnects;     /* sessions established, and ended */
    uint64_t connected_ms;              /* time connected, sessions that ended */
    uint64_t first_seen_ms, updated_ms; /* unix ms */
    double rtt_ms;                      /* smoothed over every session's smoothed RTT */
    uint64_t pings, late, missed;       /* health checks */
    uint64_t blocks, dups, invalid;     /* blocks it gave us; duplicates and invalid objects */
} tn_quality_t;

typedef struct tn_disc {
    tn_node_t *n;
    tn_addrman_t *am;
    tn_peerapi_t *api;
    tn_geoip_t *geo; /* geoip_db, or NULL */
    uv_timer_t timer, kick;
    bool started, kicked, loading;
    tn_dsrc_state_t src[TN_DSRC__COUNT];
    uint64_t api_last_ms;    /* last peer API request started (loop ms); 0 = never */
    uint64_t pex_wait_until; /* loop ms: get_peers answers awaited until then */
    uint64_t last_sweep_ms;
    uint64_t started_wall_ms;
    char note[160];     /* the last discovery state logged (logged again only when it changes) */
    tn_idmap_t quality; /* node id -> tn_quality_t */
    int n_quality;
} tn_disc_t;

/* ---- tn_discovery.c: lifecycle and session events (called by tn_node.c) ---- */
int tn_disc_start(tn_node_t *n); /* loads the address table and quality, dials anchors */
void tn_disc_stop(tn_node_t *n); /* saves anchors (the outbound peers now), stops requests */
void tn_disc_free(tn_node_t *n);
void tn_disc_on_open(tn_node_t *n, tn_session_t *s);
void tn_disc_on_hello(tn_node_t *n, tn_session_t *s);
void tn_disc_on_close(tn_node_t *n, tn_session_t *s, bool was_open, const char *why);
/* Looks for peers at the next loop iteration (a lost peer, a failed dial, new addresses). */
void tn_disc_kick(tn_node_t *n);
/* The peer API answered: addresses already checked by the parser. */
void tn_disc_api_result(tn_node_t *n, const tn_addr_t *addrs, const uint8_t (*ids)[32],
                        const bool *has_id, int count, const char *err);
/* Refreshes discovery and eviction metrics (before each exposition). */
void tn_disc_collect(tn_node_t *n);
/* Control verb `addrs`: the table's counts, sources, and (limit) entries. */
int tn_ctl_v_addrs(tn_node_t *n, const cJSON *req, cJSON *reply);
/* True for an address a peer or the API may teach us (routable, or local ones allowed). */
bool tn_disc_learnable(tn_node_t *n, const tn_addr_t *a);
/* Counts of established sessions: ordinary peers, and masternodes in reserved slots. */
void tn_disc_counts(tn_node_t *n, int *ordinary, int *masternodes, int *outbound);
bool tn_disc_is_masternode(tn_node_t *n, const tn_session_t *s);

/* ---- tn_pex.c ---- */
void tn_pex_on_get_peers(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_pex_on_peers(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
/* Sends get_peers unless this peer was asked within peer_exchange_interval; true if sent. */
bool tn_pex_ask(tn_node_t *n, tn_session_t *s);

/* ---- tn_evict.c ---- */
/* At accept: may one more inbound connection start its handshake? */
bool tn_evict_accept_ok(tn_node_t *n);
/* In on_open, before s counts: true if s fits (a worse peer may have been closed for it). */
bool tn_evict_admit(tn_node_t *n, tn_session_t *s);
/* Over max_peers (lowered by a config reload): closes peers down to it. */
void tn_evict_trim(tn_node_t *n);

/* ---- tn_quality.c ---- */
int tn_quality_load(tn_node_t *n);
tn_quality_t *tn_quality_get(tn_node_t *n, const uint8_t id[32], bool create);
void tn_quality_on_open(tn_node_t *n, tn_session_t *s);
void tn_quality_on_close(tn_node_t *n, tn_session_t *s);
void tn_quality_on_dial_failed(tn_node_t *n, const uint8_t id[32], const tn_addr_t *a);
void tn_quality_free(tn_node_t *n);
/* The quality fields of the policy's peer object, in this order, the session in progress
 * included (an unknown peer: success_rate 1, the rest 0). */
#define TN_QUALITY_NFIELDS 10
extern const char *const TN_QUALITY_FIELDS[TN_QUALITY_NFIELDS];
void tn_quality_values(tn_node_t *n, const tn_session_t *s, const uint8_t *id,
                       double out[TN_QUALITY_NFIELDS]);
/* One of them by name: false if `field` is not one. */
bool tn_quality_value(tn_node_t *n, const tn_session_t *s, const uint8_t *id, const char *field,
                      double *out);
/* Adds the quality fields of id (and session s) to a JSON object (peers verb, evict list). */
void tn_quality_json(tn_node_t *n, const tn_session_t *s, const uint8_t *id, cJSON *o);

#endif
