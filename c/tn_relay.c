/* Transaction and block relay (see tn_relay.h). The per-message path: hash, dedup, verify,
 * pool, announce; announcements and requests are appended to one open message per peer so
 * a peer gets one inv and one getdata per loop iteration however many objects flow. */
#include "tn_relay.h"

#include "tn_dedup.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_trace.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

enum { OPEN_INV, OPEN_GETDATA, OPEN_NOTFOUND };
static const uint16_t OPEN_TYPE[3] = {TN_MSG_INV, TN_MSG_GETDATA, TN_MSG_NOTFOUND};

typedef struct {
    uint64_t asked_gen; /* session the id was requested from */
    uint64_t asked_ms;
    uint64_t alts[TN_REQUEST_ALTS];
    uint8_t kind;
} tn_request_t;

static struct {
    tn_metric_t *tx_in, *tx_dup, *tx_accepted, *tx_invalid, *tx_expired, *tx_full;
    tn_metric_t *blk_in, *blk_dup, *blk_accepted, *blk_invalid, *blk_orphan, *blk_equivocation;
    tn_metric_t *inv_out, *getdata_out, *req_dropped, *req_retried;
} M;

static void metrics_init(void)
{
    const char *h = "Transactions and blocks received, by outcome";
    M.tx_in = tn_metric_counter("tn_relay_tx_total{outcome=\"received\"}", h);
    M.tx_dup = tn_metric_counter("tn_relay_tx_total{outcome=\"duplicate\"}", h);
    M.tx_accepted = tn_metric_counter("tn_relay_tx_total{outcome=\"accepted\"}", h);
    M.tx_invalid = tn_metric_counter("tn_relay_tx_total{outcome=\"invalid\"}", h);
    M.tx_expired = tn_metric_counter("tn_relay_tx_total{outcome=\"expired\"}", h);
    M.tx_full = tn_metric_counter("tn_relay_tx_total{outcome=\"mempool_full\"}", h);
    M.blk_in = tn_metric_counter("tn_relay_blocks_total{outcome=\"received\"}", h);
    M.blk_dup = tn_metric_counter("tn_relay_blocks_total{outcome=\"duplicate\"}", h);
    M.blk_accepted = tn_metric_counter("tn_relay_blocks_total{outcome=\"accepted\"}", h);
    M.blk_invalid = tn_metric_counter("tn_relay_blocks_total{outcome=\"invalid\"}", h);
    M.blk_orphan = tn_metric_counter("tn_relay_blocks_total{outcome=\"orphan\"}", h);
    M.blk_equivocation = tn_metric_counter("tn_relay_blocks_total{outcome=\"equivocation\"}", h);
    M.inv_out = tn_metric_counter("tn_relay_announced_total", "Ids announced to peers");
    M.getdata_out = tn_metric_counter("tn_relay_requested_total", "Ids requested from peers");
    M.req_dropped = tn_metric_counter("tn_relay_requests_dropped_total",
                                      "Announced ids not requested: request table full");
    M.req_retried = tn_metric_counter("tn_relay_requests_retried_total",
                                      "Requests re-sent to another announcer after a timeout");
}

/* ---- per-peer state ---- */

static tn_relay_peer_t *rp(tn_session_t *s)
{
    if (!s->relay) s->relay = calloc(1, sizeof(tn_relay_peer_t));
    return s->relay;
}

static uint64_t fp(const uint8_t id[32])
{
    return tn_get_u64(id) | 1;
}

static bool known(tn_session_t *s, const uint8_t id[32])
{
    tn_relay_peer_t *r = s->relay;
    uint64_t f = fp(id);
    return r && r->known[f % TN_KNOWN_SLOTS] == f;
}

static void mark_known(tn_session_t *s, const uint8_t id[32])
{
    tn_relay_peer_t *r = rp(s);
    if (!r) return;
    uint64_t f = fp(id);
    r->known[f % TN_KNOWN_SLOTS] = f;
}

static bool established(const tn_session_t *s)
{
    return s->state == TN_SS_OPEN && s->peer && s->hello;
}

/* Appends one (kind, id) entry to the peer's open inv/getdata/notfound message, starting a
 * new one when the last was sealed, is not the batch's last message, or is full. */
static void append_entry(tn_session_t *s, int which, uint8_t kind, const uint8_t id[32])
{
    tn_relay_peer_t *r = rp(s);
    if (!r) return;
    tn_buf_t *b = tn_session_batch(s, TN_INV_ENTRY);
    if (!b) return;
    bool appendable = r->open[which].count > 0 && r->open[which].count < TN_INV_MAX &&
                      r->open[which].frame == s->frames_out && r->open[which].end == b->len;
    if (!appendable) {
        /* A new message, complete with its first entry before tn_session_sent: that may seal
         * the batch (past TN_FRAME_TARGET), and a sealed message must be whole. */
        b = tn_session_batch(s, TN_MSG_HDR_LEN + 2 + TN_INV_ENTRY);
        if (!b) return;
        size_t off;
        if (tn_msg_begin(b, OPEN_TYPE[which], &off) != TN_OK) return;
        uint8_t first[2 + TN_INV_ENTRY];
        tn_put_u16(first, 1);
        first[2] = kind;
        memcpy(first + 3, id, 32);
        if (tn_buf_append(b, first, sizeof first) != TN_OK) return;
        tn_msg_finish(b, off);
        r->open[which].frame = s->frames_out;
        r->open[which].off = off;
        r->open[which].count = 1;
        r->open[which].end = b->len;
        tn_session_sent(s); /* one new message; marks the session for this iteration's flush */
        return;
    }
    uint8_t e[TN_INV_ENTRY];
    e[0] = kind;
    memcpy(e + 1, id, 32);
    if (tn_buf_append(b, e, TN_INV_ENTRY) != TN_OK) return;
    size_t off = r->open[which].off;
    r->open[which].count++;
    tn_put_u16(b->p + off + TN_MSG_HDR_LEN, r->open[which].count);
    tn_msg_finish(b, off);
    r->open[which].end = b->len;
}

/* ---- announcing ---- */

/* Sessions holding back announcements (any node of this process): the relay timer looks
 * for them only while this is non-zero, so idle sessions cost nothing per tick. */
static size_t pending_sessions;

static void pend_flush(tn_node_t *n, tn_session_t *s, uint64_t now)
{
    tn_relay_peer_t *r = s->relay;
    if (!r || !r->npend) return;
    uint16_t k = r->npend;
    r->npend = 0;
    pending_sessions--;
    r->last_inv_ms = now;
    for (uint16_t i = 0; i < k && s->state == TN_SS_OPEN; i++) {
        if (known(s, r->pend[i])) continue; /* it announced the id to us meanwhile */
        append_entry(s, OPEN_INV, TN_INV_TX, r->pend[i]);
        mark_known(s, r->pend[i]);
        tn_metric_inc(M.inv_out);
        TN_TRACE(n, "announce", "tx", r->pend[i], 32, NULL, s, NULL);
    }
}

/* A transaction announcement to s: now, if no inv went to s within relay_inv_interval (or
 * one went in this same loop iteration: it joins that message), else held for the timer. */
static void announce_tx(tn_node_t *n, tn_session_t *s, const uint8_t id[32])
{
    uint64_t now = uv_now(n->loop), gap = tn_config_ms(n->cfg->relay_inv_interval);
    tn_relay_peer_t *r = rp(s);
    if (!r) return;
    if (gap == 0 || (r->npend == 0 && (now - r->last_inv_ms >= gap || now == r->last_inv_ms))) {
        r->last_inv_ms = now;
        mark_known(s, id);
        append_entry(s, OPEN_INV, TN_INV_TX, id);
        tn_metric_inc(M.inv_out);
        TN_TRACE(n, "announce", "tx", id, 32, NULL, s, NULL);
        return;
    }
    if (r->npend == r->pend_cap) {
        uint16_t cap = r->pend_cap ? (uint16_t)TN_MIN(2 * r->pend_cap, TN_INV_MAX) : 64;
        void *p = cap > r->pend_cap ? realloc(r->pend, (size_t)cap * 32) : NULL;
        if (!p) { /* the list is full (TN_INV_MAX): it goes now, this one with it */
            pend_flush(n, s, now);
            mark_known(s, id);
            append_entry(s, OPEN_INV, TN_INV_TX, id);
            tn_metric_inc(M.inv_out);
            return;
        }
        r->pend = p;
        r->pend_cap = cap;
    }
    if (r->npend == 0) pending_sessions++;
    memcpy(r->pend[r->npend++], id, 32);
}

void tn_relay_announce(tn_node_t *n, uint8_t kind, const uint8_t id[32], tn_session_t *from)
{
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (s == from || !established(s) || known(s, id)) continue;
        if (kind == TN_INV_TX) {
            announce_tx(n, s, id);
            continue;
        }
        mark_known(s, id);
        append_entry(s, OPEN_INV, kind, id);
        tn_metric_inc(M.inv_out);
        TN_TRACE(n, "announce", "block", id, 32, NULL, s, NULL);
    }
}

void tn_relay_block_accepted(tn_node_t *n, const tn_blk_t *b, tn_session_t *from)
{
    if (!from) TN_TRACE(n, "accept", "block", b->h.id, 32, NULL, NULL, NULL); /* produced */
    /* Masternodes first: their announcements are written at once, the others' with this
     * iteration's batch. */
    for (int pass = 0; pass < 2; pass++)
        for (tn_session_t *s = n->sessions; s; s = s->next) {
            if (s == from || !established(s) || known(s, b->h.id)) continue;
            bool mn = tn_chain_is_masternode(n, s->their_id);
            if ((pass == 0) != mn) continue;
            append_entry(s, OPEN_INV, TN_INV_BLOCK, b->h.id);
            mark_known(s, b->h.id);
            tn_metric_inc(M.inv_out);
            TN_TRACE(n, "announce", "block", b->h.id, 32, NULL, s, NULL);
            if (mn) tn_session_flush(s);
        }
}

/* ---- requests ---- */

static tn_session_t *session_by_gen(tn_node_t *n, uint64_t gen)
{
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (s->gen == gen && established(s)) return s;
    return NULL;
}

static void ask(tn_node_t *n, tn_session_t *s, tn_request_t *r, const uint8_t id[32])
{
    r->asked_gen = s->gen;
    r->asked_ms = uv_now(n->loop);
    append_entry(s, OPEN_GETDATA, r->kind, id);
    tn_metric_inc(M.getdata_out);
}

/* Asks the next announcer still connected; false when none is left. */
static bool ask_next(tn_node_t *n, tn_request_t *r, const uint8_t id[32])
{
    for (int i = 0; i < TN_REQUEST_ALTS; i++) {
        uint64_t g = r->alts[i];
        if (!g) continue;
        r->alts[i] = 0;
        tn_session_t *s = session_by_gen(n, g);
        if (s) {
            ask(n, s, r, id);
            tn_metric_inc(M.req_retried);
            return true;
        }
    }
    return false;
}

static void request(tn_node_t *n, tn_session_t *s, uint8_t kind, const uint8_t id[32])
{
    tn_request_t *r = tn_idmap_get(&n->requests, id);
    if (r) { /* in flight: remember this announcer as a fallback */
        if (r->asked_gen == s->gen) return;
        for (int i = 0; i < TN_REQUEST_ALTS; i++)
            if (r->alts[i] == s->gen) return;
        for (int i = 0; i < TN_REQUEST_ALTS; i++)
            if (!r->alts[i]) {
                r->alts[i] = s->gen;
                break;
            }
        return;
    }
    if (n->requests.n >= TN_REQUESTS_MAX || !(r = calloc(1, sizeof(*r)))) {
        tn_metric_inc(M.req_dropped);
        return;
    }
    r->kind = kind;
    if (tn_idmap_put(&n->requests, id, r) != TN_OK) {
        free(r);
        return;
    }
    ask(n, s, r, id);
}

static void request_done(tn_node_t *n, const uint8_t id[32])
{
    free(tn_idmap_del(&n->requests, id));
}

/* The relay timer: held announcements whose interval is over, and (every half
 * relay_request_timeout) requests not delivered in time. */
static void on_request_timer(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    uint64_t now = uv_now(n->loop), timeout = tn_config_ms(n->cfg->relay_request_timeout);
    uint64_t gap = tn_config_ms(n->cfg->relay_inv_interval);
    if (pending_sessions)
        for (tn_session_t *s = n->sessions; s; s = s->next) {
            tn_relay_peer_t *r = s->relay;
            if (r && r->npend && now - r->last_inv_ms >= gap) pend_flush(n, s, now);
        }
    if (now - n->relay_scan_ms < timeout / 2) return;
    n->relay_scan_ms = now;
    tn_idmap_t *m = &n->requests;
    /* Collect first: retrying deletes entries, which moves others within the table. */
    size_t cap = 0, k = 0;
    uint8_t(*late)[32] = NULL;
    for (size_t i = 0; i < m->cap; i++) {
        tn_request_t *r = m->s[i].val;
        if (!r || now - r->asked_ms < timeout) continue;
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 64;
            uint8_t(*g)[32] = realloc(late, nc * 32);
            if (!g) break;
            late = g;
            cap = nc;
        }
        memcpy(late[k++], m->s[i].key, 32);
    }
    for (size_t i = 0; i < k; i++) {
        tn_request_t *r = tn_idmap_get(m, late[i]);
        if (r && !ask_next(n, r, late[i])) request_done(n, late[i]);
    }
    free(late);
}

/* ---- handlers ---- */

static void misbehaved(tn_node_t *n, tn_session_t *s, const char *what)
{
    tn_relay_peer_t *r = rp(s);
    if (r) r->invalid++;
    tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, what);
}

void tn_relay_on_inv(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    int count = tn_inv_decode(p, len);
    if (count < 0) {
        misbehaved(n, s, "malformed inv");
        return;
    }
    for (int i = 0; i < count; i++) {
        uint8_t kind;
        const uint8_t *id;
        tn_inv_entry(p, i, &kind, &id);
        mark_known(s, id);
        bool have = kind == TN_INV_TX ? tn_dedup_contains(&n->dedup, id, uv_now(n->loop)) ||
                                            tn_mempool_get(&n->chain->pool, id)
                                      : tn_chain_get(n, id) != NULL;
        if (have) {
            rp(s)->dups++; /* an announcement of something we have: a scoring input */
            continue;
        }
        request(n, s, kind, id);
    }
}

void tn_relay_on_getdata(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    int count = tn_inv_decode(p, len);
    if (count < 0) {
        misbehaved(n, s, "malformed getdata");
        return;
    }
    for (int i = 0; i < count && s->state == TN_SS_OPEN; i++) {
        uint8_t kind;
        const uint8_t *id;
        tn_inv_entry(p, i, &kind, &id);
        if (kind == TN_INV_TX) {
            tn_mtx_t *t = tn_mempool_get(&n->chain->pool, id);
            if (t) {
                tn_session_send(s, TN_MSG_TX, t->raw, t->len);
                mark_known(s, id);
                continue;
            }
        } else {
            tn_blk_t *b = tn_chain_get(n, id);
            if (b) {
                tn_session_send(s, TN_MSG_BLOCK, b->raw, b->len);
                mark_known(s, id);
                continue;
            }
        }
        append_entry(s, OPEN_NOTFOUND, kind, id);
    }
}

void tn_relay_on_notfound(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    int count = tn_inv_decode(p, len);
    if (count < 0) {
        misbehaved(n, s, "malformed notfound");
        return;
    }
    for (int i = 0; i < count; i++) {
        uint8_t kind;
        const uint8_t *id;
        tn_inv_entry(p, i, &kind, &id);
        tn_request_t *r = tn_idmap_get(&n->requests, id);
        if (r && r->asked_gen == s->gen && !ask_next(n, r, id)) request_done(n, id);
    }
}

/* The transaction path, shared by peers and the operator: dedup before the signature. */
static int take_tx(tn_node_t *n, tn_session_t *from, const uint8_t *p, uint32_t len, tn_tx_t *tx)
{
    int rc = tn_tx_parse(p, len, (uint32_t)n->cfg->max_tx_size, tx);
    if (rc != TN_OK) return rc;
    request_done(n, tx->id);
    if (from) mark_known(from, tx->id);
    if (tn_dedup_check_insert(&n->dedup, tx->id, uv_now(n->loop))) return TN_EALREADY;
    if (tn_tx_verify(tx) != TN_OK) return TN_ECRYPTO;
    uint64_t now_s = tn_wall_ms() / 1000;
    if (tx->expiry <= now_s) return TN_EAGAIN; /* expired on the way: nobody's fault */
    if (tx->expiry > now_s + (uint64_t)n->cfg->tx_max_lifetime) return TN_EINVAL;
    if (tn_idmap_get(&n->chain->chain_txs, tx->id)) return TN_EALREADY;
    rc = tn_mempool_add(n, tx);
    if (rc != TN_OK) return rc;
    TN_TRACE(n, "accept", "tx", tx->id, 32, from, NULL, NULL);
    tn_relay_announce(n, TN_INV_TX, tx->id, from);
    return TN_OK;
}

void tn_relay_on_tx(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    tn_tx_t tx;
    tn_metric_inc(M.tx_in);
    int rc = take_tx(n, s, p, len, &tx);
    tn_relay_peer_t *r = rp(s);
    if (tn_trace_on && rc != TN_EINVAL && rc != TN_ETOOBIG) /* else the id is unknown */
        tn_trace_event(n, "recv", "tx", tx.id, 32, s, NULL,
                       rc == TN_OK            ? "accepted"
                       : rc == TN_EALREADY    ? "duplicate"
                       : rc == TN_EAGAIN      ? "expired"
                       : rc == TN_ELIMIT      ? "mempool_full"
                                              : "invalid");
    switch (rc) {
    case TN_OK:
        tn_metric_inc(M.tx_accepted);
        if (r) r->accepted++;
        break;
    case TN_EALREADY:
        tn_metric_inc(M.tx_dup);
        if (r) r->dups++;
        break;
    case TN_EAGAIN:
        tn_metric_inc(M.tx_expired);
        break;
    case TN_ELIMIT:
        tn_metric_inc(M.tx_full);
        break;
    case TN_ETOOBIG:
        tn_metric_inc(M.tx_invalid);
        misbehaved(n, s, "oversize transaction");
        break;
    case TN_ECRYPTO:
        tn_metric_inc(M.tx_invalid);
        misbehaved(n, s, "transaction with a bad signature");
        break;
    case TN_ENOMEM:
        break;
    default:
        tn_metric_inc(M.tx_invalid);
        misbehaved(n, s, "malformed or invalid transaction");
    }
}

int tn_relay_submit_tx(tn_node_t *n, const uint8_t *raw, uint32_t len, uint8_t id[32])
{
    tn_tx_t tx;
    int rc = take_tx(n, NULL, raw, len, &tx);
    if (rc == TN_OK || rc == TN_EALREADY) memcpy(id, tx.id, 32);
    if (rc == TN_OK) tn_metric_inc(M.tx_accepted);
    return rc == TN_EAGAIN ? TN_EINVAL : rc;
}

/* Traces: a transaction this node first learns inside a block (its producer put it in the
 * block before announcing it) reached the node with the block, so it counts as accepted
 * from that peer; without this, trace analysis would call it undelivered. */
static void trace_block_txs(tn_node_t *n, const tn_blk_t *b, const tn_session_t *from)
{
    uint32_t off = 0;
    tn_tx_t tx;
    uint64_t now = uv_now(n->loop);
    while (tn_block_next_tx(b->raw, b->len, &off, &tx) == 1)
        if (!tn_dedup_contains(&n->dedup, tx.id, now))
            tn_trace_event(n, "accept", "tx", tx.id, 32, from, NULL, NULL);
}

tn_add_result_t tn_relay_take_block(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    uint8_t id[32];
    tn_metric_inc(M.blk_in);
    if (len < TN_BLOCK_HDR) {
        tn_metric_inc(M.blk_invalid);
        misbehaved(n, s, "block: malformed");
        return TN_ADD_INVALID;
    }
    crypto_generichash(id, 32, p, TN_BLOCK_HDR, NULL, 0);
    request_done(n, id);
    mark_known(s, id);
    /* A block's id covers its header only, so the cache learns it only once the whole
     * block proved valid: a corrupted body sent first must not shadow the real block. */
    if (tn_chain_get(n, id) || tn_dedup_contains(&n->dedup, id, uv_now(n->loop))) {
        tn_metric_inc(M.blk_dup);
        rp(s)->dups++;
        TN_TRACE(n, "recv", "block", id, 32, s, NULL, "duplicate");
        return TN_ADD_KNOWN;
    }
    const char *why = NULL;
    tn_blk_t *b = NULL;
    tn_add_result_t r = tn_chain_add(n, p, len, &why, &b);
    if (tn_trace_on) {
        static const char *const oc[] = {[TN_ADD_OK] = "accepted", [TN_ADD_KNOWN] = "duplicate",
                                         [TN_ADD_ORPHAN] = "orphan", [TN_ADD_INVALID] = "invalid",
                                         [TN_ADD_EQUIVOCATION] = "equivocation"};
        tn_trace_event(n, "recv", "block", id, 32, s, NULL, oc[r]);
        if (r == TN_ADD_OK) tn_trace_event(n, "accept", "block", id, 32, s, NULL, NULL);
    }
    switch (r) {
    case TN_ADD_OK:
        if (tn_trace_on) trace_block_txs(n, b, s);
        tn_dedup_insert(&n->dedup, id, uv_now(n->loop));
        tn_metric_inc(M.blk_accepted);
        rp(s)->blocks_added++;
        tn_relay_block_accepted(n, b, s);
        break;
    case TN_ADD_KNOWN:
        tn_metric_inc(M.blk_dup);
        break;
    case TN_ADD_ORPHAN:
        tn_metric_inc(M.blk_orphan);
        tn_sync_from(n, s);
        break;
    case TN_ADD_EQUIVOCATION:
        /* Kept as evidence and for fork choice, never relayed. Only the producer itself is
         * judged: an honest peer that saw the other block first relays it in good faith. */
        tn_metric_inc(M.blk_equivocation);
        if (memcmp(s->their_id, b->h.producer, 32) == 0) {
            char d[160];
            snprintf(d, sizeof d, "block: %s", why);
            misbehaved(n, s, d);
        }
        break;
    case TN_ADD_INVALID: {
        tn_metric_inc(M.blk_invalid);
        char d[160];
        snprintf(d, sizeof d, "block: %s", why ? why : "invalid");
        misbehaved(n, s, d);
        break;
    }
    }
    return r;
}

void tn_relay_on_block(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    tn_relay_take_block(n, s, p, len);
}

void tn_relay_on_get_mempool(tn_node_t *n, tn_session_t *s)
{
    int sent = 0;
    for (tn_mtx_t *t = n->chain->pool.tail; t && sent < TN_MEMPOOL_REPLY_MAX; t = t->prev) {
        if (known(s, t->id)) continue;
        append_entry(s, OPEN_INV, TN_INV_TX, t->id);
        mark_known(s, t->id);
        if (s->state != TN_SS_OPEN) return;
        sent++;
    }
}

/* ---- lifecycle ---- */

void tn_relay_on_close(tn_node_t *n, tn_session_t *s)
{
    (void)n;
    tn_relay_peer_t *r = s->relay;
    if (r && r->npend) pending_sessions--;
    if (r) free(r->pend);
    free(r);
    s->relay = NULL;
}

int tn_relay_init(tn_node_t *n)
{
    uv_timer_init(n->loop, &n->relay_timer); /* first: tn_relay_close closes it */
    n->relay_timer.data = n;
    metrics_init();
    if (tn_idmap_init(&n->requests, 1024) != TN_OK) return TN_ENOMEM;
    if (tn_dedup_init(&n->dedup, (size_t)n->cfg->dedup_capacity, n->cfg->dedup_window) != TN_OK)
        return TN_ENOMEM;
    /* what we hold already must not be fetched again after a restart */
    uint64_t now = uv_now(n->loop);
    for (tn_mtx_t *t = n->chain->pool.head; t; t = t->next) tn_dedup_insert(&n->dedup, t->id, now);
    /* half the announcement interval bounds a held announcement's wait to 1.5 intervals */
    uint64_t every = tn_config_ms(n->cfg->relay_request_timeout / 2);
    uint64_t half_gap = tn_config_ms(n->cfg->relay_inv_interval / 2);
    if (half_gap > 0 && half_gap < every) every = half_gap;
    uv_timer_start(&n->relay_timer, on_request_timer, every, every);
    return TN_OK;
}

void tn_relay_close(tn_node_t *n)
{
    tn_idmap_t *m = &n->requests;
    for (size_t i = 0; i < m->cap; i++) free(m->s[i].val);
    tn_idmap_free(m);
    tn_dedup_free(&n->dedup);
    uv_close((uv_handle_t *)&n->relay_timer, NULL);
}
