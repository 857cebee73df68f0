/* Node lifecycle, inbound accept and the session events that make "one session per node
 * identity" hold: self-connections, crossing dials and duplicates are settled here, in
 * on_open, by one rule both ends compute alike (doc/protocol.md "One session per node"). */
#include "tn_node.h"

#include "tn_chain.h"
#include "tn_ctl.h"
#include "tn_disc.h"
#include "tn_limits.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_relay.h"
#include "tn_trace.h"
#include "tn_experiment.h"
#include "tn_ops.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#define TN_TICK_MS 1000 /* housekeeping: log folds */
#define TN_LISTEN_BACKLOG 511

static const uint8_t MAGIC_TESTNET[4] = {84, 73, 77, 69}; /* "TIME", seed §11 */
static const uint8_t MAGIC_MAINNET[4] = {0xC0, 0x1D, 0x7E, 0x4D};

static struct {
    tn_metric_t *accepted, *refused_blocked, *refused_banned, *refused_pending, *refused_ip,
        *refused_slots;
    tn_metric_t *opened, *closed, *dup_refused, *replaced, *self, *experiment_ignored;
    tn_metric_t *sessions, *peers_open, *pending;
} M;

static void metrics_init(void)
{
    M.accepted = tn_metric_counter("tn_inbound_accepted_total", "Inbound connections accepted");
    M.refused_blocked = tn_metric_counter("tn_inbound_refused_total{reason=\"blocked\"}",
                                          "Inbound connections closed at accept");
    M.refused_banned = tn_metric_counter("tn_inbound_refused_total{reason=\"banned\"}", NULL);
    M.refused_pending = tn_metric_counter("tn_inbound_refused_total{reason=\"pending\"}", NULL);
    M.refused_ip = tn_metric_counter("tn_inbound_refused_total{reason=\"per_ip\"}", NULL);
    M.refused_slots = tn_metric_counter("tn_inbound_refused_total{reason=\"slots\"}", NULL);
    M.opened = tn_metric_counter("tn_sessions_opened_total", "Sessions that authenticated");
    M.closed = tn_metric_counter("tn_sessions_closed_total", "Sessions closed, any state");
    M.dup_refused = tn_metric_counter("tn_sessions_duplicate_total{outcome=\"refused\"}",
                                      "Second sessions for one identity, by outcome");
    M.replaced = tn_metric_counter("tn_sessions_duplicate_total{outcome=\"replaced\"}", NULL);
    M.self = tn_metric_counter("tn_self_connections_total", "Connections found to be to self");
    M.experiment_ignored = tn_metric_counter("tn_messages_ignored_total{range=\"experiment\"}",
                                             "Messages of unhandled experiment types");
    M.sessions = tn_metric_gauge("tn_sessions", "Live sessions (any state)");
    M.peers_open = tn_metric_gauge("tn_peers_connected", "Peers with an active session");
    M.pending = tn_metric_gauge("tn_inbound_pending", "Inbound sessions in their handshake");
}

static void update_gauges(tn_node_t *n)
{
    tn_metric_set(M.sessions, n->n_sessions);
    tn_metric_set(M.peers_open, n->n_open);
    tn_metric_set(M.pending, n->n_inbound_pending);
}

const char *tn_node_short_id(const uint8_t id[TN_ID_LEN], char out[9])
{
    char hex[2 * TN_ID_LEN + 1];
    tn_hex(hex, id, TN_ID_LEN);
    memcpy(out, hex, 8);
    out[8] = 0;
    return out;
}

static void ip_of(const tn_addr_t *a, char out[TN_ADDR_STRLEN])
{
    tn_addr_fmt_ip(a, out);
}

/* A session that received bytes within this window is alive. Both ends ping every
 * heartbeat_interval at independent phases, so a live session can be silent for almost one
 * interval; twice that leaves no doubt, and stays below the missed-pong close. */
static uint64_t tn_node_alive_window_ms(const tn_node_t *n)
{
    return 2 * tn_config_ms(n->cfg->heartbeat_interval);
}

/* ---- session list ---- */

static void list_add(tn_node_t *n, tn_session_t *s)
{
    s->prev = NULL;
    s->next = n->sessions;
    if (n->sessions) n->sessions->prev = s;
    n->sessions = s;
    n->n_sessions++;
}

static void list_del(tn_node_t *n, tn_session_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        n->sessions = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    n->n_sessions--;
}

void tn_node_track(tn_node_t *n, tn_session_t *s)
{
    list_add(n, s);
    update_gauges(n);
}

/* ---- peers ---- */

tn_peer_t *tn_node_peer_find(tn_node_t *n, const uint8_t id[TN_ID_LEN])
{
    for (tn_peer_t *p = n->peers; p; p = p->next)
        if (memcmp(p->id, id, TN_ID_LEN) == 0) return p;
    return NULL;
}

static void peers_trim(tn_node_t *n)
{
    while (n->n_peers > TN_PEERS_MAX) {
        tn_peer_t **oldest = NULL;
        for (tn_peer_t **pp = &n->peers; *pp; pp = &(*pp)->next)
            if (!(*pp)->session && (!oldest || (*pp)->last_seen_ms < (*oldest)->last_seen_ms))
                oldest = pp;
        if (!oldest) return;
        tn_peer_t *p = *oldest;
        *oldest = p->next;
        free(p);
        n->n_peers--;
    }
}

static tn_peer_t *peer_get(tn_node_t *n, const uint8_t id[TN_ID_LEN])
{
    tn_peer_t *p = tn_node_peer_find(n, id);
    if (p) return p;
    p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    memcpy(p->id, id, TN_ID_LEN);
    p->first_seen_ms = uv_now(n->loop);
    p->next = n->peers;
    n->peers = p;
    n->n_peers++;
    peers_trim(n);
    return p;
}

/* ---- blocks and whitelist ---- */

bool tn_node_is_blocked(const tn_node_t *n, const tn_addr_t *a)
{
    for (int i = 0; i < n->n_blocked; i++)
        if (tn_addr_same_ip(&n->blocked[i], a)) return true;
    return false;
}

int tn_node_block(tn_node_t *n, const tn_addr_t *ip)
{
    if (tn_node_is_blocked(n, ip)) return TN_EALREADY;
    if (n->n_blocked == TN_BLOCKED_MAX) return TN_ENOMEM;
    n->blocked[n->n_blocked] = *ip;
    n->blocked[n->n_blocked++].port = 0;
    tn_addr_t any = *ip;
    any.port = 0;
    tn_node_disconnect(n, &any, NULL, "blocked by operator", false);
    return TN_OK;
}

int tn_node_unblock(tn_node_t *n, const tn_addr_t *ip)
{
    for (int i = 0; i < n->n_blocked; i++)
        if (tn_addr_same_ip(&n->blocked[i], ip)) {
            n->blocked[i] = n->blocked[--n->n_blocked];
            return TN_OK;
        }
    return TN_ENOTFOUND;
}

bool tn_node_whitelisted(const tn_node_t *n, const tn_addr_t *a)
{
    for (int i = 0; i < n->cfg->whitelist.n; i++) {
        tn_addr_t w;
        if (tn_addr_parse_ip(n->cfg->whitelist.v[i], &w) == 0 && tn_addr_same_ip(&w, a))
            return true;
    }
    return false;
}

int tn_node_disconnect(tn_node_t *n, const tn_addr_t *a, const uint8_t *id, const char *why,
                       bool quiet)
{
    int count = 0;
    tn_session_t *s = n->sessions;
    while (s) {
        tn_session_t *next = s->next;
        bool match = false;
        if (a) match = a->port ? tn_addr_eq(&s->remote, a) : tn_addr_same_ip(&s->remote, a);
        if (id && s->state == TN_SS_OPEN) match = match || memcmp(s->their_id, id, TN_ID_LEN) == 0;
        if (match) {
            s->quiet = quiet;
            tn_session_close(s, TN_CLOSE_LOCAL, why);
            count++;
        }
        s = next;
    }
    return count;
}

int tn_node_masternodes(const tn_node_t *n)
{
    int c = tn_chain_is_masternode(n, n->id) ? 1 : 0;
    for (tn_peer_t *p = n->peers; p; p = p->next)
        if (p->session && p->session->hello && tn_chain_is_masternode(n, p->id)) c++;
    return c;
}

/* ---- accept ---- */

/* Seed §13: one inbound connection per IP. A session from that IP that has been silent for
 * two heartbeat intervals does not count: it may be the stale half of a connection the peer
 * already lost, and the identity rule in on_open settles which one stays. */
static bool inbound_from_ip(tn_node_t *n, const tn_addr_t *a)
{
    uint64_t now = uv_now(n->loop), hb = tn_node_alive_window_ms(n);
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (!s->outbound && tn_addr_same_ip(&s->remote, a) &&
            (s->state != TN_SS_OPEN || now - s->last_rx_ms < hb))
            return true;
    return false;
}

static void on_connection(uv_stream_t *server, int status)
{
    tn_node_t *n = server->data;
    tn_session_t *s;
    tn_conn_t c; /* judged on a pooled handle: blocks, bans and attempts refuse it there */
    if (status < 0 || tn_admission_accept(n, server, on_connection, &c) != TN_OK) return;
    tn_metric_t *refused = NULL;
    if (n->stopping)
        refused = M.refused_slots;
    else if (n->n_inbound_pending >= n->cfg->max_inbound_pending)
        refused = M.refused_pending;
    else if (!tn_node_whitelisted(n, &c.remote) && inbound_from_ip(n, &c.remote))
        refused = M.refused_ip;
    else if (!tn_evict_accept_ok(n)) /* full slots are judged after the handshake */
        refused = M.refused_slots;
    if (refused) {
        char ip[TN_ADDR_STRLEN];
        ip_of(&c.remote, ip);
        tn_debug("Inbound connection from %s refused (%s)", ip, refused->name);
        tn_metric_inc(refused);
        tn_admission_refuse(n, &c);
        return;
    }
    if (tn_admission_adopt(n, &c, &s) != TN_OK) return;
    tn_metric_inc(M.accepted);
    list_add(n, s);
    n->n_inbound_pending++;
    update_gauges(n);
    tn_session_start(s);
}

/* ---- session events ---- */

static int on_prologue(tn_session_t *s, const tn_prologue_t *theirs)
{
    tn_node_t *n = s->net->owner;
    if (s->outbound) return 0;
    for (tn_session_t *x = n->sessions; x; x = x->next) {
        if (x == s || !x->outbound || x->nonce != theirs->nonce) continue;
        char a[TN_ADDR_STRLEN];
        tn_addr_fmt(&x->remote, a);
        tn_info("Self-connection detected at %s; it will not be dialed again", a);
        tn_metric_inc(M.self);
        tn_targets_mark_self(n, x);
        tn_session_close(x, TN_CLOSE_LOCAL, "self-connection");
        tn_session_close(s, TN_CLOSE_LOCAL, "self-connection");
        return 1;
    }
    return 0;
}

/* Of two sessions to one identity, which stays? Crossing dials (opposite directions, both
 * within the handshake window) keep the one initiated by the lower node id: both ends see
 * the same two connections and pick the same one. Otherwise the peer dialed again, so it
 * lost the old one: the old one stays only if it demonstrably works (bytes within
 * two heartbeat intervals); then the new one is refused and the old one probed. */
static bool keep_new(tn_node_t *n, tn_session_t *old, tn_session_t *nw)
{
    uint64_t now = uv_now(n->loop);
    if (old->outbound != nw->outbound &&
        now - old->opened_ms < tn_config_ms(n->cfg->handshake_timeout)) {
        const uint8_t *init_old = old->outbound ? n->id : old->their_id;
        const uint8_t *init_new = nw->outbound ? n->id : nw->their_id;
        return memcmp(init_new, init_old, TN_ID_LEN) < 0;
    }
    bool alive = now - old->last_rx_ms < tn_node_alive_window_ms(n);
    return !alive;
}

static void send_hello(tn_node_t *n, tn_session_t *s)
{
    tn_hello_t h;
    memset(&h, 0, sizeof h);
    h.version = TN_PROTO_VERSION;
    h.flags = tn_chain_is_masternode(n, n->id) ? TN_HELLO_F_MASTERNODE : 0;
    h.height = n->height;
    h.listen_port = n->listening ? n->listen_addr.port : 0;
    h.time_ms = tn_wall_ms();
    snprintf(h.name, sizeof h.name, "%s", n->cfg->node_name);
    tn_buf_t *b = tn_session_batch(s, TN_MSG_HDR_LEN + 25 + TN_NAME_MAX);
    if (b && tn_hello_encode(b, &h) == TN_OK) tn_session_sent(s);
}

static void on_open(tn_session_t *s)
{
    tn_node_t *n = s->net->owner;
    char a[TN_ADDR_STRLEN], sid[9];
    if (!s->outbound) n->n_inbound_pending--;
    tn_metric_inc(M.opened);
    if (memcmp(s->their_id, n->id, TN_ID_LEN) == 0) {
        tn_addr_fmt(&s->remote, a);
        tn_info("Self-connection detected at %s (same node key); it will not be dialed again", a);
        tn_metric_inc(M.self);
        if (s->outbound) tn_targets_mark_self(n, s);
        tn_session_close(s, TN_CLOSE_LOCAL, "self-connection");
        return;
    }
    tn_peer_t *p = peer_get(n, s->their_id);
    if (!p) {
        tn_session_close(s, TN_CLOSE_LOCAL, "out of memory");
        return;
    }
    tn_node_short_id(s->their_id, sid);
    if (!p->session && !tn_evict_admit(n, s)) { /* full, and no worse peer to close */
        tn_session_close(s, TN_CLOSE_LOCAL, "no free peer slot");
        return;
    }
    if (p->session) {
        tn_session_t *old = p->session;
        if (!keep_new(n, old, s)) {
            tn_metric_inc(M.dup_refused);
            tn_debug("Duplicate session with %s refused; keeping session %llu", sid,
                     (unsigned long long)old->gen);
            tn_targets_on_open(n, s); /* the dial reached the node: not a failure */
            tn_session_close(s, TN_CLOSE_LOCAL, "duplicate session");
            if (old->outbound == s->outbound) tn_health_probe(n, old);
            return;
        }
        tn_metric_inc(M.replaced);
        tn_debug("Session %llu with %s replaced by session %llu", (unsigned long long)old->gen, sid,
                 (unsigned long long)s->gen);
        old->peer = NULL; /* detached: its close is not a loss */
        p->session = NULL;
        n->n_open--;
        tn_session_close(old, TN_CLOSE_LOCAL, "replaced by a newer session");
    }
    p->session = s;
    s->peer = p;
    p->sessions++;
    p->last_seen_ms = uv_now(n->loop);
    n->n_open++;
    if (s->outbound) p->addr = s->remote;
    update_gauges(n);
    tn_targets_on_open(n, s);
    tn_disc_on_open(n, s);
    send_hello(n, s);
    tn_health_start(n, s);
}

/* A message that breaks the protocol but not the session: the verdict decides. */
static void invalid_message(tn_node_t *n, tn_session_t *s, const char *detail)
{
    tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, detail);
}

/* A message after which the session cannot go on: judged, then closed whatever the verdict. */
static void fatal_message(tn_node_t *n, tn_session_t *s, const char *detail)
{
    tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, detail);
    tn_session_close(s, TN_CLOSE_LOCAL, detail);
}

static void on_hello(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    tn_hello_t h;
    if (tn_hello_decode(p, len, &h) != TN_OK) {
        fatal_message(n, s, "malformed hello");
        return;
    }
    s->hello = true;
    s->their_flags = h.flags;
    s->their_port = h.listen_port;
    s->their_height = h.height;
    memcpy(s->their_name, h.name, sizeof h.name);
    tn_peer_t *peer = s->peer;
    if (!s->outbound && h.listen_port) {
        peer->addr = s->remote;
        peer->addr.port = h.listen_port;
    }
    char ip[TN_ADDR_STRLEN];
    ip_of(&s->remote, ip);
    if (!peer->established) {
        char sid[9];
        tn_node_short_id(peer->id, sid);
        if (peer->ever_established)
            tn_info("Reconnected to %s (%s, %s)", ip, h.name, sid);
        else
            tn_info("\xE2\x9C\x93 Connected to peer: %s (%s, %s, %s)", ip, h.name, sid,
                    s->outbound ? "outbound" : "inbound");
        peer->established = peer->ever_established = true;
    }
    tn_disc_on_hello(n, s); /* the address table learns its address (and stores it) */
    tn_sync_on_established(n, s);
}

static void on_message(tn_session_t *s, uint16_t type, const uint8_t *p, uint32_t len)
{
    tn_node_t *n = s->net->owner;
    if (!s->peer) return; /* detached and closing */
    if (!s->hello) {
        if (type == TN_MSG_HELLO) {
            on_hello(n, s, p, len);
            return;
        }
        fatal_message(n, s, "message before hello");
        return;
    }
    if (!tn_rate_admit(n, s, type, p, len)) return; /* over its class's bucket: dropped */
    uint64_t v;
    switch (type) {
    case TN_MSG_HELLO:
        invalid_message(n, s, "duplicate hello");
        return;
    case TN_MSG_PING:
        if (tn_u64_msg_decode(p, len, &v) != TN_OK) {
            invalid_message(n, s, "malformed ping");
            return;
        }
        {
            uint8_t nonce[8];
            tn_put_u64(nonce, v);
            tn_session_send(s, TN_MSG_PONG, nonce, 8);
        }
        return;
    case TN_MSG_PONG:
        if (tn_u64_msg_decode(p, len, &v) != TN_OK) {
            invalid_message(n, s, "malformed pong");
            return;
        }
        tn_health_on_pong(n, s, v);
        return;
    case TN_MSG_INV: tn_relay_on_inv(n, s, p, len); return;
    case TN_MSG_GETDATA: tn_relay_on_getdata(n, s, p, len); return;
    case TN_MSG_NOTFOUND: tn_relay_on_notfound(n, s, p, len); return;
    case TN_MSG_TX: tn_relay_on_tx(n, s, p, len); return;
    case TN_MSG_BLOCK: tn_relay_on_block(n, s, p, len); return;
    case TN_MSG_GET_PEERS: tn_pex_on_get_peers(n, s, p, len); return;
    case TN_MSG_PEERS: tn_pex_on_peers(n, s, p, len); return;
    case TN_MSG_GET_MEMPOOL:
        if (len) invalid_message(n, s, "malformed get_mempool");
        else tn_relay_on_get_mempool(n, s);
        return;
    case TN_MSG_GET_HEIGHT:
        if (len) invalid_message(n, s, "malformed get_height");
        else tn_sync_on_get_height(n, s);
        return;
    case TN_MSG_HEIGHT: tn_sync_on_height(n, s, p, len); return;
    case TN_MSG_GET_BLOCKS: tn_sync_on_get_blocks(n, s, p, len); return;
    case TN_MSG_BLOCKS: tn_sync_on_blocks(n, s, p, len); return;
    default:
        if (type >= TN_MSG_EXPERIMENT_FIRST) {
            /* registered by the policy generation in force (tn_experiment.c), else ignored */
            if (!tn_exp_on_message(n, s, type, p, len)) tn_metric_inc(M.experiment_ignored);
            return;
        }
        {
            char d[64];
            snprintf(d, sizeof d, "unknown message type 0x%04x", type);
            invalid_message(n, s, d);
        }
    }
}

/* Maps a close the peer caused at the session layer to its misbehaviour kind (one log line,
 * in tn_misbehaved). Closes the node decided (TN_CLOSE_LOCAL) were judged already. */
static bool strike_for_close(tn_node_t *n, tn_session_t *s, tn_close_reason_t r, const char *d,
                             bool was_open)
{
    tn_misbehavior_t kind;
    /* A dial of ours that fails its handshake is our dial's failure (wrong network or version
     * in our own config, say), reported by the reconnect logic, not the remote's misdeed. */
    if (s->outbound && !was_open) return false;
    switch (r) {
    case TN_CLOSE_MAGIC:
        kind = TN_MIS_MAGIC;
        break;
    case TN_CLOSE_VERSION:
        kind = TN_MIS_VERSION;
        break;
    case TN_CLOSE_CRYPTO:
        kind = was_open ? TN_MIS_FRAME : TN_MIS_HANDSHAKE;
        break;
    case TN_CLOSE_PROTOCOL:
        kind = was_open ? TN_MIS_FRAME : TN_MIS_HANDSHAKE;
        break;
    case TN_CLOSE_TIMEOUT:
        /* Only a handshake that never completed; missed pongs on an open session are a
         * health verdict, logged as a loss. */
        if (was_open) return false;
        kind = TN_MIS_HANDSHAKE;
        break;
    default:
        return false;
    }
    tn_misbehaved(n, s, &s->remote, kind, d);
    return true;
}

static void on_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    tn_node_t *n = s->net->owner;
    bool was_open = s->opened_ms != 0;
    list_del(n, s);
    if (!s->outbound && !was_open) n->n_inbound_pending--;
    tn_metric_inc(M.closed);
    bool logged = false;
    if (!n->stopping) logged = strike_for_close(n, s, reason, detail, was_open);
    tn_peer_t *p = s->peer;
    if (p && p->session == s) {
        p->session = NULL;
        p->disconnects++;
        p->last_seen_ms = uv_now(n->loop);
        n->n_open--;
        char ip[TN_ADDR_STRLEN];
        ip_of(&s->remote, ip);
        if (p->established && !n->stopping && !logged && !s->quiet) {
            if (reason == TN_CLOSE_LOCAL)
                tn_info("Disconnected from %s (%s)", ip, detail);
            else
                tn_warn("Connection to %s lost (%s)", ip, detail);
        } else if (!logged) {
            tn_debug("Session %llu with %s closed before hello (%s)", (unsigned long long)s->gen,
                     ip, detail);
        }
        p->established = false;
        if (!n->stopping) tn_targets_on_peer_lost(n, p->id);
    } else if (!logged && !n->stopping) {
        char a[TN_ADDR_STRLEN];
        tn_addr_fmt(&s->remote, a);
        tn_debug("Session %llu %s %s closed: %s (%s)", (unsigned long long)s->gen,
                 s->outbound ? "to" : "from", a, tn_close_reason_name(reason), detail);
    }
    tn_disc_on_close(n, s, was_open, detail); /* quality, failed dials, look for another */
    s->peer = NULL;
    tn_relay_on_close(n, s);
    tn_sync_on_close(n, s);
    tn_targets_on_close(n, s, was_open, detail);
    update_gauges(n);
}

/* ---- policy ---- */

tn_peer_view_t tn_node_view(tn_node_t *n, tn_session_t *s, const tn_addr_t *addr)
{
    tn_peer_view_t v = {s, NULL, addr, NULL};
    if (s && s->peer)
        v.p = s->peer;
    else if (s && s->state == TN_SS_OPEN)
        v.p = tn_node_peer_find(n, s->their_id);
    return v;
}

void tn_node_policy_tick(tn_node_t *n)
{
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (!s->peer) continue;
        tn_peer_view_t v = tn_node_view(n, s, NULL);
        s->score = tn_policy_score(n->policy, &v);
    }
}

/* ---- timers and signals ---- */

static void on_status(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    tn_log_nofold(TN_LOG_INFO,
                  "\xF0\x9F\x93\x8A Status: Height=%llu, Active Masternodes=%d, Connected Peers=%d",
                  (unsigned long long)n->height, tn_node_masternodes(n), n->n_open);
}

static void on_tick(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    tn_log_flush(0);
    if (n->chain) tn_mempool_expire(n, tn_wall_ms() / 1000);
}

static void on_signal(uv_signal_t *h, int signum)
{
    tn_node_stop(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- lifecycle ---- */

static int start_listener(tn_node_t *n, char *err, size_t errlen)
{
    if (n->listen_addr.port == 0) return TN_OK;
    struct sockaddr_storage ss;
    tn_addr_to_sockaddr(&n->listen_addr, &ss);
    uv_tcp_init(n->loop, &n->listener);
    n->listener.data = n;
    int rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&n->listener, TN_LISTEN_BACKLOG, on_connection);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s: %s", n->cfg->listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&n->listener, NULL);
        return TN_EIO;
    }
    n->listening = true;
    return TN_OK;
}

int tn_node_start(tn_node_t *n, uv_loop_t *loop, tn_config_t *cfg, char *err, size_t errlen)
{
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->cfg = cfg;
    n->dir.lock_fd = -1;
    metrics_init();
    memcpy(n->magic, strcmp(cfg->network, "mainnet") == 0 ? MAGIC_MAINNET : MAGIC_TESTNET, 4);
    tn_addr_parse(cfg->listen, &n->listen_addr);
    int rc = tn_datadir_open(&n->dir, cfg->data_dir, err, errlen);
    if (rc) return rc;
    if ((rc = tn_trace_open(n, err, errlen))) return rc;
    int created;
    uint8_t sk[TN_ID_SK_LEN];
    if ((rc = tn_identity_load(&n->dir, sk, &created, err, errlen))) return rc;
    crypto_sign_ed25519_sk_to_pk(n->id, sk);
    tn_hex(n->id_hex, n->id, TN_ID_LEN);
    char path[TN_PATH_MAX + 32];
    tn_datadir_path(&n->dir, "store.db", path, sizeof path);
    if ((rc = tn_store_open(&n->store, loop, path, cfg->store_flush_interval, err, errlen))) {
        sodium_memzero(sk, sizeof sk);
        return rc;
    }
    if ((rc = tn_chain_open(n, err, errlen))) {
        sodium_memzero(sk, sizeof sk);
        return rc;
    }
    tn_session_cbs_t cbs = {on_prologue, on_open, on_message, on_close};
    if ((rc = tn_net_init(&n->net, loop, &cbs, n))) {
        sodium_memzero(sk, sizeof sk);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    memcpy(n->net.id_sk, sk, TN_ID_SK_LEN);
    sodium_memzero(sk, sizeof sk);
    memcpy(n->net.magic, n->magic, 4);
    n->net.max_frame = (uint32_t)cfg->max_frame_size;
    n->net.write_buffer_max = (size_t)cfg->write_buffer_max;
    n->net.connect_timeout_ms = tn_config_ms(cfg->connection_timeout);
    n->net.handshake_timeout_ms = tn_config_ms(cfg->handshake_timeout);
    n->net.test_delay_ms =
        cfg->test_handshake_delay > 0 ? tn_config_ms(cfg->test_handshake_delay) : 0;
    tn_bans_load(n);
    tn_datadir_path(&n->dir, "control.sock", path, sizeof path);
    /* The policy host comes before any peer so its hooks decide from the first event; a
     * broken policy does not stop the node (C defaults apply), a bad policy_record does. */
    if ((rc = start_listener(n, err, errlen)) ||
        (rc = tn_ctl_start(&n->ctl, n, path, err, errlen)) ||
        (rc = tn_policy_start(&n->policy, n, err, errlen))) {
        if (n->listening) uv_close((uv_handle_t *)&n->listener, NULL);
        n->listening = false;
        tn_ctl_stop(n->ctl);
        n->ctl = NULL;
        tn_net_close(&n->net);
        return rc;
    }
    uv_timer_init(loop, &n->status_timer);
    uv_timer_init(loop, &n->tick_timer);
    n->status_timer.data = n->tick_timer.data = n;
    uint64_t status_ms = tn_config_ms(cfg->status_interval);
    uv_timer_start(&n->status_timer, on_status, status_ms, status_ms);
    uv_timer_start(&n->tick_timer, on_tick, TN_TICK_MS, TN_TICK_MS);
    uv_signal_init(loop, &n->sig_term);
    uv_signal_init(loop, &n->sig_int);
    n->sig_term.data = n->sig_int.data = n;
    uv_signal_start(&n->sig_term, on_signal, SIGTERM);
    uv_signal_start(&n->sig_int, on_signal, SIGINT);
    n->started_ms = uv_now(loop);
    if (tn_relay_init(n) || tn_sync_init(n) || tn_produce_init(n)) {
        snprintf(err, errlen, "out of memory");
        tn_node_stop(n, "start failed");
        return TN_ENOMEM;
    }
    if (tn_limits_start(n) != TN_OK) { /* before the loop runs the listener's first accept */
        snprintf(err, errlen, "out of memory");
        tn_node_stop(n, "start failed");
        return TN_ENOMEM;
    }
    char sid[9];
    tn_info("timenetd started: network %s, listening on %s, node id %s%s, data dir %s",
            cfg->network, n->listening ? cfg->listen : "(none)", tn_node_short_id(n->id, sid),
            created ? " (new key)" : "", cfg->data_dir);
    if (tn_disc_start(n) != TN_OK) { /* anchors are dialed first, before any other peer */
        snprintf(err, errlen, "out of memory");
        tn_node_stop(n, "start failed");
        return TN_ENOMEM;
    }
    tn_targets_start(n);
    if ((rc = tn_ops_start(n, err, errlen))) { /* metrics, signals, systemd READY=1 */
        tn_node_stop(n, "start failed");
        return rc;
    }
    return TN_OK;
}

void tn_node_stop(tn_node_t *n, const char *why)
{
    if (n->stopping) return;
    n->stopping = true;
    tn_ops_stop(n);
    tn_info("Shutting down (%s): closing %d sessions", why, n->n_sessions);
    tn_disc_stop(n); /* the outbound peers now are the next start's anchors */
    while (n->sessions) tn_session_close(n->sessions, TN_CLOSE_LOCAL, "shutdown");
    if (n->listening) uv_close((uv_handle_t *)&n->listener, NULL);
    n->listening = false;
    tn_limits_stop(n);
    tn_targets_free(n);
    tn_produce_close(n);
    tn_sync_close(n);
    tn_relay_close(n);
    tn_trace_close();
    tn_policy_save_state(n->policy);
    tn_policy_stop(n->policy); /* hooks answer with C defaults from here on */
    uv_close((uv_handle_t *)&n->status_timer, NULL);
    uv_close((uv_handle_t *)&n->tick_timer, NULL);
    uv_close((uv_handle_t *)&n->sig_term, NULL);
    uv_close((uv_handle_t *)&n->sig_int, NULL);
    tn_ctl_stop(n->ctl);
    n->ctl = NULL;
    tn_net_close(&n->net);
}

void tn_node_free(tn_node_t *n)
{
    tn_store_close(n->store);
    n->store = NULL;
    while (n->peers) {
        tn_peer_t *p = n->peers;
        n->peers = p->next;
        free(p);
    }
    tn_strikes_free(n);
    tn_bans_free(n);
    tn_limits_free(n);
    tn_disc_free(n);
    tn_chain_close(n);
    tn_policy_free(n->policy);
    tn_ops_free(n);
    n->policy = NULL;
    tn_datadir_close(&n->dir);
    tn_log_flush(1);
}
