/* Peer exchange (seed §8 method 3, "ask connected peers for their peer list"): get_peers and
 * peers (doc/protocol.md 6.5). An answer holds at most TN_PEX_MAX addresses sampled from
 * the address table; a peer is answered at most once per peer_exchange_interval. What a
 * peer teaches us is limited by a token bucket per session (peer_exchange_rate per second,
 * plus one answer's worth when we asked), and the table buckets it by the telling peer's
 * network group, so one peer can neither flood the node nor fill the table. */
#include "tn_disc.h"
#include "tn_log.h"
#include "tn_metrics.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

static struct {
    tn_metric_t *learned, *known, *limited, *unroutable, *stale, *full, *answers, *ignored;
} M;

static void metrics_init(void)
{
    if (M.learned) return;
    const char *h = "Addresses received in peers messages, by outcome";
    M.learned = tn_metric_counter("tn_pex_addresses_total{outcome=\"learned\"}", h);
    M.known = tn_metric_counter("tn_pex_addresses_total{outcome=\"known\"}", h);
    M.limited = tn_metric_counter("tn_pex_addresses_total{outcome=\"rate_limited\"}", h);
    M.unroutable = tn_metric_counter("tn_pex_addresses_total{outcome=\"not_routable\"}", h);
    M.stale = tn_metric_counter("tn_pex_addresses_total{outcome=\"stale\"}", h);
    M.full = tn_metric_counter("tn_pex_addresses_total{outcome=\"bucket_full\"}", h);
    M.answers = tn_metric_counter("tn_pex_answers_total", "get_peers answered");
    M.ignored = tn_metric_counter("tn_pex_requests_ignored_total",
                                  "get_peers ignored: asked again within peer_exchange_interval");
}

static uint64_t interval_ms(tn_node_t *n)
{
    return tn_config_ms(n->cfg->peer_exchange_interval);
}

bool tn_pex_ask(tn_node_t *n, tn_session_t *s)
{
    uint64_t now = uv_now(n->loop);
    if (!s->hello || !s->peer) return false;
    /* once per interval, answered or not (a peer that never answers is asked again later) */
    if (s->pex_asked_ms && now - s->pex_asked_ms < interval_ms(n)) return false;
    if (tn_session_send(s, TN_MSG_GET_PEERS, NULL, 0) != TN_OK) return false;
    s->pex_asked_ms = now;
    s->pex_awaiting = true;
    return true;
}

/* Up to TN_PEX_MAX shareable addresses, a uniform sample (reservoir) of the table. */
static int sample(tn_node_t *n, const tn_session_t *asker, tn_am_entry_t **out)
{
    tn_addrman_t *am = n->disc->am;
    uint64_t now = tn_wall_ms();
    int k = 0, seen = 0;
    tn_am_entry_t *e;
    for (int i = -1; (e = tn_addrman_next(am, &i));) {
        if (e->addr.port == 0 || tn_addrman_terrible(am, e, now)) continue;
        if (!tn_disc_learnable(n, &e->addr)) continue; /* what we would not take, we do not give */
        if (tn_addr_same_ip(&e->addr, &asker->remote)) continue;
        seen++;
        if (k < TN_PEX_MAX)
            out[k++] = e;
        else {
            uint32_t j = randombytes_uniform((uint32_t)seen);
            if (j < TN_PEX_MAX) out[j] = e;
        }
    }
    return k;
}

void tn_pex_on_get_peers(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    (void)p;
    metrics_init();
    if (len) {
        tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, "malformed get_peers");
        return;
    }
    uint64_t now = uv_now(n->loop);
    if (s->pex_answered_ms && now - s->pex_answered_ms < interval_ms(n)) {
        tn_metric_inc(M.ignored); /* scraping the table: one answer per interval */
        return;
    }
    s->pex_answered_ms = now;
    static tn_am_entry_t *pick[TN_PEX_MAX];
    int k = n->disc ? sample(n, s, pick) : 0;
    tn_buf_t *b = tn_session_batch(s, TN_MSG_HDR_LEN + 2 + (size_t)k * TN_PEER_ENTRY);
    size_t off;
    if (!b || tn_msg_begin(b, TN_MSG_PEERS, &off) != TN_OK) return;
    uint8_t cnt[2], ent[TN_PEER_ENTRY];
    tn_put_u16(cnt, (uint16_t)k);
    tn_buf_append(b, cnt, 2);
    for (int i = 0; i < k; i++) {
        tn_peer_entry_t pe;
        memset(&pe, 0, sizeof pe);
        memcpy(pe.ip, pick[i]->addr.ip, 16);
        pe.port = pick[i]->addr.port;
        uint64_t seen =
            pick[i]->last_success > pick[i]->last_seen ? pick[i]->last_success : pick[i]->last_seen;
        pe.seen_s = (uint32_t)(seen / 1000);
        if (pick[i]->has_id) memcpy(pe.id, pick[i]->id, 32);
        tn_peers_entry_put(ent, &pe);
        tn_buf_append(b, ent, TN_PEER_ENTRY);
    }
    tn_msg_finish(b, off);
    tn_session_sent(s);
    tn_metric_inc(M.answers);
}

void tn_pex_on_peers(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len)
{
    metrics_init();
    int k = tn_peers_decode(p, len);
    if (k < 0) {
        tn_misbehaved(n, s, &s->remote, TN_MIS_MESSAGE, "malformed peers");
        return;
    }
    tn_disc_t *d = n->disc;
    if (!d) return;
    uint64_t now = uv_now(n->loop), wall = tn_wall_ms();
    if (!s->pex_refill_ms) s->pex_refill_ms = s->opened_ms;
    double tokens =
        s->pex_tokens + n->cfg->peer_exchange_rate * (double)(now - s->pex_refill_ms) / 1000.0;
    if (tokens > TN_PEX_MAX) tokens = TN_PEX_MAX;
    bool solicited = s->pex_awaiting;
    if (solicited) {
        s->pex_awaiting = false;
        tokens = TN_PEX_MAX; /* the answer we asked for is taken whole */
    }
    s->pex_refill_ms = now;
    tn_addr_t src = s->remote;
    src.port = 0;
    int learned = 0, limited = 0;
    for (int i = 0; i < k; i++) {
        if (tokens < 1) {
            limited = k - i;
            break;
        }
        tokens -= 1;
        tn_peer_entry_t pe;
        tn_peers_entry(p, i, &pe);
        tn_addr_t a;
        memcpy(a.ip, pe.ip, 16);
        a.port = pe.port;
        if (a.port == 0 || !tn_disc_learnable(n, &a) || tn_addr_eq(&a, &n->listen_addr)) {
            tn_metric_inc(M.unroutable);
            continue;
        }
        uint64_t seen = (uint64_t)pe.seen_s * 1000;
        if (seen > wall) seen = wall; /* a clock ahead of ours gains nothing */
        if (wall - seen > d->am->horizon_ms) {
            tn_metric_inc(M.stale);
            continue;
        }
        static const uint8_t zero[32];
        bool has_id = memcmp(pe.id, zero, 32) != 0;
        int rc =
            tn_addrman_add(d->am, &a, has_id ? pe.id : NULL, TN_AMSRC_EXCHANGE, &src, seen, wall);
        if (rc == TN_ENOMEM) {
            tn_metric_inc(M.full);
            continue;
        }
        tn_metric_inc(rc == TN_OK ? M.learned : M.known);
        if (rc == TN_OK) learned++;
        tn_am_entry_t *e = tn_addrman_find(d->am, &a);
        if (e) e->fresh |= 1u << TN_DSRC_EXCHANGE;
    }
    s->pex_tokens = tokens;
    if (limited) {
        tn_metric_add(M.limited, limited);
        char ip[TN_ADDR_STRLEN];
        tn_addr_fmt_ip(&s->remote, ip);
        if (s->pex_dropped == 0)
            tn_info("Peer exchange: %s sends addresses faster than peer_exchange_rate (%.3g/s); "
                    "the excess is dropped",
                    ip, n->cfg->peer_exchange_rate);
        s->pex_dropped += (uint32_t)limited;
    }
    if (solicited || learned) tn_disc_kick(n);
}
