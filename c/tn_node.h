/* The node: owns the loop's listener, sessions, peers (one record per remote identity),
 * outbound targets and timers, and enforces "one session per identity". Split by concern:
 * tn_node.c (lifecycle, accept, session events), tn_targets.c (dials and reconnects),
 * tn_health.c (heartbeats), tn_strikes.c (misbehaviour), tn_ctl*.c (control socket). */
#ifndef TN_NODE_H
#define TN_NODE_H

#include "tn_chain.h"
#include "tn_config.h"
#include "tn_datadir.h"
#include "tn_dedup.h"
#include "tn_policy.h"
#include "tn_session.h"
#include "tn_store.h"

#include <stdbool.h>
#include <uv.h>

typedef struct tn_node tn_node_t;
typedef struct tn_ctl tn_ctl_t;
typedef struct tn_ops tn_ops_t;
typedef struct tn_limits tn_limits_t;

/* One record per remote node identity seen in this run. Bound: TN_PEERS_MAX records
 * without a session; older ones are dropped first. */
#define TN_PEERS_MAX 4096

typedef struct tn_peer {
    struct tn_peer *next;
    uint8_t id[TN_ID_LEN];
    tn_session_t *session; /* the one active session, or NULL */
    tn_addr_t addr;        /* where it was last seen (dialable address when known) */
    bool established;      /* its hello arrived on the active session */
    bool ever_established; /* decides "✓ Connected" versus "Reconnected" */
    uint32_t sessions, disconnects;
    uint64_t first_seen_ms, last_seen_ms;
    char tag[33]; /* set by policies with tn.tag() */
} tn_peer_t;

/* An address we want a session with: persistent peers, seeds, operator `connect`. */
typedef struct tn_target {
    struct tn_target *next;
    tn_node_t *node;
    tn_addr_t addr;
    bool persistent; /* redial with backoff after losses and failures */
    bool self;       /* turned out to be this node: never dialed again */
    bool id_known;
    uint8_t id[TN_ID_LEN];
    tn_session_t *dial; /* outbound session until it opens or fails */
    uint32_t failures;  /* consecutive failed dials */
    uint64_t next_dial_ms;
    uv_timer_t timer;
} tn_target_t;

/* Misbehaviour kinds, counted per IP (bans come with the security policy). */
typedef enum {
    TN_MIS_MAGIC,
    TN_MIS_VERSION,
    TN_MIS_HANDSHAKE,
    TN_MIS_FRAME,
    TN_MIS_MESSAGE,
    TN_MIS_CONNECTIONS, /* connection attempts from one IP over the free count (tn_admission.c) */
    TN_MIS_FLOOD,       /* a message class over its per-peer bucket (tn_ratelimit.c) */
    TN_MIS__COUNT
} tn_misbehavior_t;

#define TN_STRIKES_MAX 4096 /* IPs tracked; the least recently seen is forgotten first */

typedef struct {
    tn_addr_t ip;
    uint32_t count[TN_MIS__COUNT];
    uint64_t last_ms;
} tn_strike_t;

#define TN_BLOCKED_MAX 1024
#define TN_BANS_MAX 65536 /* banned IPs held; beyond it the ban closest to expiry is dropped */

typedef struct {
    tn_addr_t ip;
    uint64_t until_ms; /* wall clock */
    uint32_t count;    /* bans of this IP so far */
    char reason[96];
} tn_ban_t;

struct tn_node {
    uv_loop_t *loop;
    tn_config_t *cfg;
    tn_datadir_t dir;
    tn_store_t *store;
    tn_ctl_t *ctl;
    tn_net_t net;
    uint8_t id[TN_ID_LEN];
    char id_hex[2 * TN_ID_LEN + 1];
    uint8_t magic[4];
    tn_addr_t listen_addr;
    uv_tcp_t listener;
    bool listening;
    uv_timer_t status_timer, tick_timer;
    uv_signal_t sig_term, sig_int;
    bool stopping;
    uint64_t started_ms;
    /* sessions */
    tn_session_t *sessions; /* every live session */
    int n_sessions, n_open, n_inbound_pending;
    /* peers and targets */
    tn_peer_t *peers;
    int n_peers;
    tn_target_t *targets;
    /* misbehaviour and operator blocks */
    tn_strike_t *strikes;
    int n_strikes;
    tn_addr_t blocked[TN_BLOCKED_MAX];
    int n_blocked;
    tn_ban_t *bans;
    int n_bans;
    int32_t *bans_index; /* IP -> index in bans, open addressing (tn_bans.c) */
    tn_policy_t *policy;
    tn_ops_t *ops; /* metrics endpoint, signals, systemd, config reload (tn_ops.h) */
    tn_limits_t *limits; /* rate limits, accept checks, deadlines, caps (tn_limits.h) */
    struct tn_disc *disc; /* discovery, address table, peer quality (tn_disc.h) */
    uint64_t height; /* main chain height */
    /* chain, relay, sync, production (tn_chain.c, tn_relay.c, tn_sync.c, tn_produce.c) */
    tn_chain_t *chain;
    tn_dedup_t dedup;
    tn_idmap_t requests;
    uint64_t relay_scan_ms; /* last scan for late requests (tn_relay.c) */
    uv_timer_t relay_timer, sync_timer, slot_timer, slot_timer2;
    uint64_t sync_gen, sync_asked_ms, sync_started_ms, heights_asked_ms;
};

/* Starts a node on loop from cfg (already validated). On failure err says why. */
int tn_node_start(tn_node_t *n, uv_loop_t *loop, tn_config_t *cfg, char *err, size_t errlen);
/* Graceful stop: closes sessions and handles, flushes the store; the loop then ends. */
void tn_node_stop(tn_node_t *n, const char *why);
/* After the loop has ended. */
void tn_node_free(tn_node_t *n);

/* Sessions and peers. */
/* Adds an outbound session to the node's session list. */
void tn_node_track(tn_node_t *n, tn_session_t *s);
tn_peer_t *tn_node_peer_find(tn_node_t *n, const uint8_t id[TN_ID_LEN]);
bool tn_node_is_blocked(const tn_node_t *n, const tn_addr_t *a);
int tn_node_block(tn_node_t *n, const tn_addr_t *ip);
int tn_node_unblock(tn_node_t *n, const tn_addr_t *ip);
bool tn_node_whitelisted(const tn_node_t *n, const tn_addr_t *a);
/* Closes the sessions to an address (any port when port is 0) or identity; count returned.
 * quiet: the cause was logged already (a ban), so the closes add no line of their own. */
int tn_node_disconnect(tn_node_t *n, const tn_addr_t *a, const uint8_t *id, const char *why,
                       bool quiet);
const char *tn_node_short_id(const uint8_t id[TN_ID_LEN], char out[9]);
int tn_node_masternodes(const tn_node_t *n);

/* tn_targets.c */
/* Makes addr a persistent target (dialing it unless connected); TN_ESELF, TN_ELIMIT. */
int tn_targets_persist(tn_node_t *n, const tn_addr_t *addr);
/* Stops redialing addr (its session, if any, stays); TN_ENOTFOUND if it was not persistent. */
int tn_targets_unpersist(tn_node_t *n, const tn_addr_t *addr);
/* Dials addr unless a session or dial to it (or to the identity last seen there) exists:
 * TN_EALREADY, TN_ESELF (address is this node), TN_ELIMIT (blocked). */
int tn_targets_dial(tn_node_t *n, const tn_addr_t *addr, bool persistent);
void tn_targets_start(tn_node_t *n);
void tn_targets_on_open(tn_node_t *n, tn_session_t *s);
void tn_targets_on_close(tn_node_t *n, tn_session_t *s, bool was_open, const char *why);
/* Identity lost its active session: persistent targets for it redial. */
void tn_targets_on_peer_lost(tn_node_t *n, const uint8_t id[TN_ID_LEN]);
void tn_targets_mark_self(tn_node_t *n, tn_session_t *s);
void tn_targets_free(tn_node_t *n);

/* tn_backoff.c: redial delay after `failures` consecutive failures (0 = after a loss);
 * returns the cooldown once failures reach reconnect_max_attempts. */
uint64_t tn_backoff_ms(const tn_config_t *cfg, uint32_t failures, bool *gave_up);

/* tn_health.c */
void tn_health_start(tn_node_t *n, tn_session_t *s);
void tn_health_on_pong(tn_node_t *n, tn_session_t *s, uint64_t nonce);
/* Sends a ping now (probe a session suspected stale). */
void tn_health_probe(tn_node_t *n, tn_session_t *s);

/* tn_strikes.c: one misbehaviour by the address's IP (and session s, if any and still
 * open): counted, logged in one line, and judged by the on_misbehavior hook, whose verdict
 * (ignore, disconnect, ban) is applied here and returned. */
tn_verdict_action_t tn_misbehaved(tn_node_t *n, tn_session_t *s, const tn_addr_t *a,
                                  tn_misbehavior_t kind, const char *detail);
uint32_t tn_strikes_total(tn_node_t *n, const tn_addr_t *a);
const char *tn_misbehavior_name(tn_misbehavior_t kind);
void tn_strikes_free(tn_node_t *n);

/* tn_bans.c: bans by IP, persisted in the store, expiring on the wall clock. */
int tn_bans_load(tn_node_t *n);
bool tn_bans_active(tn_node_t *n, const tn_addr_t *a);
/* Bans the IP (never a whitelisted one) and closes its sessions; logs once per ban. */
void tn_bans_add(tn_node_t *n, const tn_addr_t *a, double seconds, const char *reason);
int tn_bans_remove(tn_node_t *n, const tn_addr_t *a);
/* Lifts every ban (and forgets the counts); returns how many were active. */
int tn_bans_clear(tn_node_t *n);
void tn_bans_free(tn_node_t *n);

/* Called every policy_tick_interval: refreshes every session's score. */
void tn_node_policy_tick(tn_node_t *n);
/* The policy's view of a session (s may be NULL: then addr and the peer record). */
tn_peer_view_t tn_node_view(tn_node_t *n, tn_session_t *s, const tn_addr_t *addr);

#endif
