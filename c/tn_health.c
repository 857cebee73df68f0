/* Heartbeats (seed §22 Health Checks, with DESIGN.md's refinement): a ping every
 * heartbeat_interval; a pong later than pong_deadline is "late" (a score input, never a
 * close); a ping still unanswered when the next is due is "missed"; missed_pongs_close
 * consecutive misses close the session. Uses the session's own timer once it is open. */
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <sodium.h>

static void send_ping(tn_session_t *s)
{
    uint8_t p[8];
    randombytes_buf(&s->ping_nonce, sizeof s->ping_nonce);
    tn_put_u64(p, s->ping_nonce);
    s->ping_sent_ms = uv_hrtime() / 1000; /* microseconds, despite the name */
    s->pings++;
    tn_session_send(s, TN_MSG_PING, p, 8);
}

static void on_beat(uv_timer_t *t)
{
    tn_session_t *s = t->data;
    tn_node_t *n = s->net->owner;
    if (s->state != TN_SS_OPEN) return;
    if (s->ping_sent_ms) {
        s->missed++;
        s->missed_run++;
        tn_metric_inc(
            tn_metric_counter("tn_pongs_missed_total", "Pings unanswered when the next was due"));
        tn_peer_view_t v = tn_node_view(n, s, NULL);
        if (tn_policy_health_close(n->policy, &v, "missed")) {
            char d[64];
            snprintf(d, sizeof d, "no pong to %u pings in a row", s->missed_run);
            tn_session_close(s, TN_CLOSE_TIMEOUT, d);
            return;
        }
    }
    send_ping(s);
}

void tn_health_start(tn_node_t *n, tn_session_t *s)
{
    uint64_t hb = tn_config_ms(n->cfg->heartbeat_interval);
    send_ping(s); /* an RTT right away, and a liveness check of the new session */
    uv_timer_start(&s->timer, on_beat, hb, hb);
}

void tn_health_on_pong(tn_node_t *n, tn_session_t *s, uint64_t nonce)
{
    if (!s->ping_sent_ms || nonce != s->ping_nonce) {
        tn_metric_inc(tn_metric_counter("tn_pongs_unsolicited_total", "Pongs matching no ping"));
        return;
    }
    double rtt = (double)(uv_hrtime() / 1000 - s->ping_sent_ms) / 1000.0;
    s->rtt_ms = s->pongs == 0 ? rtt : 0.8 * s->rtt_ms + 0.2 * rtt;
    s->ping_sent_ms = 0;
    s->missed_run = 0;
    s->pongs++;
    if (rtt > n->cfg->pong_deadline * 1000.0) {
        s->late++;
        tn_metric_inc(tn_metric_counter("tn_pongs_late_total", "Pongs later than pong_deadline"));
        tn_peer_view_t v = tn_node_view(n, s, NULL);
        if (tn_policy_health_close(n->policy, &v, "late"))
            tn_session_close(s, TN_CLOSE_TIMEOUT, "pong too late (health policy)");
    }
}

void tn_health_probe(tn_node_t *n, tn_session_t *s)
{
    (void)n;
    if (s->state == TN_SS_OPEN && !s->ping_sent_ms) send_ping(s);
}
