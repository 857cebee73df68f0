/* Height and block sync (seed §5 Transaction Synchronization, §6 Block Synchronization,
 * §20 Automatic Failover). On connect and every sync_interval we ask heights; when a peer is
 * ahead, blocks are downloaded in order from one sync peer chosen by the failover hook, at
 * most TN_BLOCKS_MAX per reply, located with a block locator so forks are found. A sync peer
 * that stalls for sync_timeout or drops is replaced at once and the download continues
 * from our tip. */
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_relay.h"

#include <stdio.h>
#include <stdlib.h>

static void peer_name(const tn_session_t *s, char out[TN_ADDR_STRLEN])
{
    tn_addr_fmt_ip(&s->remote, out);
}

static void send_get_height(tn_session_t *s)
{
    tn_session_send(s, TN_MSG_GET_HEIGHT, NULL, 0);
}

static tn_session_t *sync_session(tn_node_t *n)
{
    if (!n->sync_gen) return NULL;
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (s->gen == n->sync_gen && s->state == TN_SS_OPEN) return s;
    return NULL;
}

/* The failover hook picks among the peers ahead of us; the C default takes the best score,
 * then the greatest height, then the lowest RTT. `avoid` (the stalled peer) is skipped. */
static tn_session_t *choose(tn_node_t *n, tn_session_t *avoid)
{
    tn_session_t *cand[64];
    int k = 0;
    for (tn_session_t *s = n->sessions; s && k < 64; s = s->next)
        if (s != avoid && s->state == TN_SS_OPEN && s->peer && s->hello && !s->sync_stalled &&
            s->their_height > n->height)
            cand[k++] = s;
    if (k == 0) return NULL;
    int best = 0;
    for (int i = 1; i < k; i++) {
        tn_session_t *a = cand[i], *b = cand[best];
        if (a->score != b->score                 ? a->score > b->score
            : a->their_height != b->their_height ? a->their_height > b->their_height
                                                 : a->rtt_ms < b->rtt_ms)
            best = i;
    }
    tn_peer_view_t views[64];
    for (int i = 0; i < k; i++) views[i] = tn_node_view(n, cand[i], NULL);
    int pick =
        tn_policy_failover(n->policy, avoid ? &avoid->remote : NULL, n->height, views, k, best);
    return cand[pick];
}

static void request_blocks(tn_node_t *n, tn_session_t *s)
{
    uint8_t loc[TN_LOCATOR_MAX][32];
    int k = tn_chain_locator(n, loc, TN_LOCATOR_MAX);
    uint8_t msg[1 + TN_LOCATOR_MAX * 32];
    msg[0] = (uint8_t)k;
    memcpy(msg + 1, loc, (size_t)k * 32);
    n->sync_gen = s->gen;
    n->sync_asked_ms = uv_now(n->loop);
    tn_session_send(s, TN_MSG_GET_BLOCKS, msg, 1 + 32 * (uint32_t)k);
}

static void start(tn_node_t *n, tn_session_t *avoid, const char *why)
{
    tn_session_t *s = choose(n, avoid);
    char a[TN_ADDR_STRLEN], b[TN_ADDR_STRLEN];
    if (!s) {
        if (avoid) {
            peer_name(avoid, a);
            tn_warn("Sync peer %s %s; no other peer is ahead of height %llu", a, why,
                    (unsigned long long)n->height);
        }
        n->sync_gen = 0;
        return;
    }
    peer_name(s, b);
    if (avoid) {
        peer_name(avoid, a);
        tn_warn("Sync peer %s %s; continuing from height %llu with %s", a, why,
                (unsigned long long)n->height, b);
        tn_metric_inc(tn_metric_counter("tn_sync_failovers_total", "Sync peers replaced"));
    } else if (!n->sync_gen) {
        tn_info("Syncing from %s: height %llu, peer at %llu", b, (unsigned long long)n->height,
                (unsigned long long)s->their_height);
    }
    n->sync_started_ms = n->sync_gen ? n->sync_started_ms : uv_now(n->loop);
    request_blocks(n, s);
}

static void maybe_start(tn_node_t *n)
{
    if (sync_session(n)) return;
    n->sync_gen = 0;
    start(n, NULL, "");
}

void tn_sync_from(tn_node_t *n, tn_session_t *s)
{
    if (sync_session(n)) return;
    if (s->their_height <= n->height) s->their_height = n->height + 1; /* it has a child of ours */
    n->sync_started_ms = uv_now(n->loop);
    request_blocks(n, s);
}

void tn_sync_on_established(tn_node_t *n, tn_session_t *s)
{
    /* seed §5: mempool on connect; seed §6: heights on connect and every sync_interval */
    send_get_height(s);
    tn_session_send(s, TN_MSG_GET_MEMPOOL, NULL, 0);
    if (s->their_height > n->height) maybe_start(n);
}

void tn_sync_on_close(tn_node_t *n, tn_session_t *s)
{
    if (n->sync_gen && s->gen == n->sync_gen && !n->stopping) {
        n->sync_gen = 0;
        start(n, s, "lost");
    }
}

void tn_sync_on_get_height(tn_node_t *n, tn_session_t *s)
{
    uint8_t msg[40];
    tn_put_u64(msg, n->height);
    memcpy(msg + 8, n->chain->tip->h.id, 32);
    tn_session_send(s, TN_MSG_HEIGHT, msg, 40);
}

void tn_sync_on_height(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    uint64_t h;
    const uint8_t *tip;
    if (tn_height_decode(p, len, &h, &tip) != TN_OK) {
        tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, "malformed height");
        return;
    }
    s->their_height = h;
    s->sync_stalled = false; /* it answers again: a candidate once more */
    if (h > n->height && !tn_chain_get(n, tip)) maybe_start(n);
}

static void serve_blocks(tn_node_t *n, tn_session_t *s, const uint8_t *p, int k);

typedef struct {
    uv_timer_t timer;
    tn_node_t *n;
    uint64_t gen;
    int k;
    uint8_t loc[1 + TN_LOCATOR_MAX * 32];
} deferred_t;

static void on_deferred_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_deferred(uv_timer_t *t)
{
    deferred_t *d = t->data;
    for (tn_session_t *s = d->n->sessions; s; s = s->next)
        if (s->gen == d->gen && s->state == TN_SS_OPEN) serve_blocks(d->n, s, d->loc, d->k);
    uv_close((uv_handle_t *)t, on_deferred_closed);
}

void tn_sync_on_get_blocks(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    int k = tn_locator_decode(p, len);
    if (k < 0) {
        tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, "malformed get_blocks");
        return;
    }
    deferred_t *d;
    if (n->cfg->test_sync_serve_delay > 0 && (d = malloc(sizeof(*d)))) {
        d->n = n;
        d->gen = s->gen;
        d->k = k;
        memcpy(d->loc, p, len);
        uv_timer_init(n->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_deferred, tn_config_ms(n->cfg->test_sync_serve_delay), 0);
        return;
    }
    serve_blocks(n, s, p, k);
}

static void serve_blocks(tn_node_t *n, tn_session_t *s, const uint8_t *p, int k)
{
    tn_chain_t *c = n->chain;
    size_t from = tn_chain_fork_height(n, p + 1, k);
    /* Up to TN_BLOCKS_MAX blocks, and no more than fit one frame. */
    size_t room = (size_t)n->cfg->max_frame_size - 64 - TN_MSG_HDR_LEN - 2, used = 0;
    uint16_t count = 0;
    size_t h = from;
    for (; h < c->main_len && count < TN_BLOCKS_MAX; h++, count++) {
        if (used + 4 + c->main[h]->len > room) break;
        used += 4 + c->main[h]->len;
    }
    tn_buf_t *b = tn_session_batch(s, TN_MSG_HDR_LEN + 2 + used);
    size_t off;
    if (!b || tn_msg_begin(b, TN_MSG_BLOCKS, &off) != TN_OK) return;
    uint8_t cnt[2];
    tn_put_u16(cnt, count);
    tn_buf_append(b, cnt, 2);
    for (size_t i = from; i < from + count; i++) {
        uint8_t l[4];
        tn_put_u32(l, c->main[i]->len);
        tn_buf_append(b, l, 4);
        tn_buf_append(b, c->main[i]->raw, c->main[i]->len);
    }
    tn_msg_finish(b, off);
    tn_session_sent(s);
}

void tn_sync_on_blocks(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    if (len < 2) {
        tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, "malformed blocks");
        return;
    }
    uint32_t count = tn_get_u16(p), off = 2, added = 0;
    if (count > TN_BLOCKS_MAX) {
        tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, "blocks: more than 50");
        return;
    }
    bool bad = false;
    for (uint32_t i = 0; i < count && s->state == TN_SS_OPEN; i++) {
        if (len - off < 4 || tn_get_u32(p + off) > len - off - 4) {
            tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, "malformed blocks");
            bad = true;
            break;
        }
        uint32_t bl = tn_get_u32(p + off);
        tn_add_result_t r = tn_relay_take_block(n, s, p + off + 4, bl);
        off += 4 + bl;
        if (r == TN_ADD_INVALID) {
            bad = true;
            break;
        }
        if (r == TN_ADD_OK || r == TN_ADD_EQUIVOCATION) added++;
    }
    if (s->gen != n->sync_gen) return;  /* unsolicited or from a replaced sync peer */
    if (s->state != TN_SS_OPEN) return; /* tn_sync_on_close took over */
    if (bad) {
        s->sync_stalled = true;
        start(n, s, "sent an invalid block");
        return;
    }
    n->sync_asked_ms = uv_now(n->loop);
    if (added > 0 && n->height < s->their_height) {
        request_blocks(n, s); /* continue where the reply stopped */
        return;
    }
    char a[TN_ADDR_STRLEN];
    peer_name(s, a);
    double secs = (double)(uv_now(n->loop) - n->sync_started_ms) / 1000.0;
    tn_info("Synced to height %llu from %s (%.1f s)", (unsigned long long)n->height, a, secs);
    n->sync_gen = 0;
    maybe_start(n); /* another peer may be further ahead */
}

static void on_sync_timer(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    uint64_t now = uv_now(n->loop);
    tn_session_t *s = sync_session(n);
    if (s && now - n->sync_asked_ms > tn_config_ms(n->cfg->sync_timeout)) {
        s->sync_stalled = true; /* until it answers heights again */
        n->sync_gen = 0;
        start(n, s, "stalled");
    }
    if (now - n->heights_asked_ms >= tn_config_ms(n->cfg->sync_interval)) {
        n->heights_asked_ms = now;
        for (tn_session_t *x = n->sessions; x; x = x->next)
            if (x->state == TN_SS_OPEN && x->peer && x->hello) send_get_height(x);
    }
}

int tn_sync_init(tn_node_t *n)
{
    uv_timer_init(n->loop, &n->sync_timer);
    n->sync_timer.data = n;
    n->heights_asked_ms = uv_now(n->loop);
    uint64_t every = tn_config_ms(TN_MIN(n->cfg->sync_timeout, n->cfg->sync_interval) / 4);
    uv_timer_start(&n->sync_timer, on_sync_timer, every, every);
    return TN_OK;
}

void tn_sync_close(tn_node_t *n)
{
    uv_close((uv_handle_t *)&n->sync_timer, NULL);
}
