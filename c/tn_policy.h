/* The Lua policy host: the fixed list of hook slots, the one helper through which the core
 * calls them, and hot reload. Each policy generation is a fresh, sandboxed lua_State built
 * off the loop and swapped in between events; any failure in a call applies the built-in C
 * default for that decision. See policies/README.md for the operator's side.
 *
 * Files: tn_policy_sandbox.c (state, limits, safe libraries), tn_policy_gen.c (loading,
 * self-tests), tn_policy_api.c (the `tn` table), tn_policy_state.c (persistent state),
 * tn_policy_call.c (the call helper, peer object, errors, breaker, recording),
 * tn_policy_hooks.c (typed hooks and their C defaults), tn_policy_host.c (reload). */
#ifndef TN_POLICY_H
#define TN_POLICY_H

#include "tn_addr.h"
#include "tn_common.h"

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

typedef struct tn_node tn_node_t;
typedef struct tn_session tn_session_t;
typedef struct tn_peer tn_peer_t;
typedef struct lua_State lua_State;
typedef struct cJSON cJSON;

/* Hook slots: name, Lua signature. Order is the enum order. */
#define TN_HOOKS(X)                                                                                \
    X(score, "score(peer) -> number: the peer's quality")                                          \
    X(reconnect, "reconnect(peer, attempt, reason) -> seconds | false: redial delay or give up")   \
    X(on_misbehavior,                                                                              \
      "on_misbehavior(peer, kind, detail) -> 'ignore'|'disconnect'|'ban', seconds")                \
    X(health, "health(peer, event) -> 'tolerate'|'close': after a late or missed pong")            \
    X(on_tick, "on_tick() -> nil: every policy_tick_interval")                                     \
    X(discovery_order, "discovery_order(ctx) -> list of sources")                                  \
    X(rank_candidates, "rank_candidates(list) -> list of addresses")                               \
    X(failover, "failover(ctx) -> next sync peer")                                                 \
    X(evict, "evict(list) -> connection to close")                                                 \
    X(schedule, "schedule(slot, masternodes) -> producer")                                         \
    X(on_message, "on_message(peer, type, payload) -> nil: Lua-registered message types")

typedef enum {
#define TN_HOOK_ENUM(name, sig) TN_HOOK_##name,
    TN_HOOKS(TN_HOOK_ENUM)
#undef TN_HOOK_ENUM
        TN_HOOK__COUNT
} tn_hook_t;

const char *tn_hook_name(tn_hook_t h);

typedef struct {
    uint64_t calls, errors, fallbacks;
} tn_hook_stats_t;

/* What the core shows a hook about a peer: any of the three may be absent. */
typedef struct {
    const tn_session_t *s;
    tn_peer_t *p;
    const tn_addr_t *addr;
    const uint8_t *id; /* node id known without a record or session (discovery candidates) */
} tn_peer_view_t;

typedef struct tn_policy_gen tn_policy_gen_t;
typedef struct tn_policy tn_policy_t;

/* Limits of one generation, from the config. */
typedef struct {
    size_t memory_max;    /* bytes of Lua memory per generation */
    double budget_s;      /* CPU time per hook call */
    double load_budget_s; /* CPU time for loading and self-tests, per file */
    size_t state_max;     /* bytes of one persisted state after serialisation */
} tn_policy_limits_t;

/* ---- generations (tn_policy_gen.c); usable from any thread ---- */

/* Builds a generation from every *.lua in dir: loads, collects hooks, runs self-tests.
 * prev_states (may be NULL) is the persisted state to import. On failure returns NULL with
 * "file:line: why" in err. cfg_snapshot is a config table the generation may read. */
tn_policy_gen_t *tn_policy_gen_build(const char *dir, const tn_policy_limits_t *lim,
                                     const void *cfg, char *err, size_t errlen);
void tn_policy_gen_free(tn_policy_gen_t *g);
/* Log lines queued while building off the loop; emitted by the host after the swap. */
void tn_policy_gen_flush_logs(tn_policy_gen_t *g);
bool tn_policy_gen_has(const tn_policy_gen_t *g, tn_hook_t h);
/* Number of files and self-tests run, for status. */
void tn_policy_gen_counts(const tn_policy_gen_t *g, int *files, int *tests);

/* ---- the host (tn_policy_host.c) ---- */

int tn_policy_start(tn_policy_t **out, tn_node_t *n, char *err, size_t errlen);
/* Stops reloads and timers and drops the generation: hooks answer with C defaults until
 * tn_policy_free, which comes after the loop has ended. */
void tn_policy_stop(tn_policy_t *p);
void tn_policy_free(tn_policy_t *p);
/* Starts a rebuild (directory change, SIGHUP via tn_reload.c, control socket).
 * done(ud, ok, msg) is called on the loop when it ends; may be NULL. */
void tn_policy_reload(tn_policy_t *p, const char *why,
                      void (*done)(void *ud, bool ok, const char *msg), void *ud);
void tn_policy_status(tn_policy_t *p, cJSON *out);
/* True while a generation is built off the loop: the build reads the node's config, so a
 * config reload waits for it to end (tn_reload.c). */
bool tn_policy_building(const tn_policy_t *p);
/* After a config reload changed the node's config: re-reads limits and the tick interval.
 * (tn.config of the running generation changes with the next reload.) */
void tn_policy_config_changed(tn_policy_t *p);
/* Refreshes the metrics derived from the host's counters (per-hook calls, breaker). */
void tn_policy_collect(tn_policy_t *p);
/* Saves persistent policy state to the store now (shutdown, periodic). */
void tn_policy_save_state(tn_policy_t *p);
/* --check-policy: builds a generation synchronously; 0 or TN_EINVAL with err. */
int tn_policy_check(const char *dir, const void *cfg, char *err, size_t errlen);

/* ---- hooks (tn_policy_hooks.c): each returns the C default on any failure ---- */

double tn_policy_score(tn_policy_t *p, const tn_peer_view_t *v);
/* Redial delay after `attempt` consecutive failures (0 = after a loss). *give_up set when
 * the policy gives up (the host then pauses reconnect_cooldown). */
uint64_t tn_policy_reconnect_ms(tn_policy_t *p, const tn_peer_view_t *v, uint32_t attempt,
                                const char *reason, bool *give_up);

typedef enum { TN_VERDICT_IGNORE, TN_VERDICT_DISCONNECT, TN_VERDICT_BAN } tn_verdict_action_t;
typedef struct {
    tn_verdict_action_t action;
    double ban_s;
} tn_verdict_t;
tn_verdict_t tn_policy_misbehavior(tn_policy_t *p, const tn_peer_view_t *v, const char *kind,
                                   const char *detail, uint32_t strikes);
/* After a late or missed pong: true = close the session. */
bool tn_policy_health_close(tn_policy_t *p, const tn_peer_view_t *v, const char *event);
void tn_policy_tick(tn_policy_t *p);
/* Producer of a slot: an index into the sorted masternode set (dflt: round robin). */
int tn_policy_schedule(tn_policy_t *p, uint64_t slot, const uint8_t (*set)[32], int n, int dflt);
/* Next sync peer among n candidates (dflt: the C default's choice); returns an index. */
int tn_policy_failover(tn_policy_t *p, const tn_addr_t *current, uint64_t height,
                       const tn_peer_view_t *cands, int n, int dflt);

/* ---- discovery and eviction hooks (tn_policy_peers.c) ---- */

/* Order in which to try discovery sources: fills order[] with indexes into names[] (n of
 * them; available/failures per source) and returns how many. C default: the available ones
 * in the given order, a source that failed 3 times in a row moved last (as discovery.lua). */
int tn_policy_discovery_order(tn_policy_t *p, int connected, int min_peers,
                              const char *const *names, const bool *available,
                              const uint32_t *failures, int n, int *order);

/* A dial candidate as rank_candidates sees it. */
typedef struct {
    tn_addr_t addr;
    bool masternode;    /* an active masternode's address (by the id last seen there) */
    const char *source; /* where the address came from: seed, api, exchange, inbound, outbound */
    uint32_t failures;  /* consecutive failed dials */
    double score;       /* the last score of the node seen there, 0 if none */
    double last_success; /* unix seconds of the last successful dial, 0 = never */
    uint32_t asn;        /* from geoip_db, 0 = unknown */
    char country[3];     /* from geoip_db, "" = unknown */
} tn_policy_cand_t;

/* Dial order: fills order[] with candidate indexes (a subset is fine) and returns how many;
 * dflt/n_dflt is the C default's order, used on any failure. */
int tn_policy_rank_candidates(tn_policy_t *p, const tn_policy_cand_t *c, int n, const int *dflt,
                              int n_dflt, int *order);

/* Which established session to close (reason "inbound", "outbound": a newcomer at full
 * slots; "over_limit": above max_peers). Returns an index into list, or -1 = close none
 * (the newcomer is then refused). closable[i] false: the hook may not pick list[i] (a
 * masternode for an ordinary newcomer); such a pick counts as a bad result. */
int tn_policy_evict(tn_policy_t *p, tn_session_t *const *list, const bool *closable, int n,
                    const tn_session_t *newcomer, const char *reason, int dflt);

#endif
