/* Deadlines and the node-wide buffer cap (see tn_limits.h), checked by one sweep over the
 * sessions every TN_GUARD_MS instead of a timer per session: a frame started and not
 * completed within frame_timeout (slowloris: a frame trickled a byte a second) is an invalid
 * frame; bytes we queued that the peer leaves unread for write_timeout close the session
 * (a peer that never reads, before its backlog reaches write_buffer_max); and when the bytes
 * held for all peers (queued writes + partial frames) pass buffer_memory_max, the sessions
 * holding the most are closed until the total is below it. */
#include "tn_limits.h"

#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <stdio.h>

#define TN_GUARD_MS 100 /* sweep period: the resolution of both deadlines */

static struct {
    tn_metric_t *frame, *write, *memory, *held;
} M;

static void metrics_init(void)
{
    const char *h = "Sessions closed by the guard, by cause";
    M.frame = tn_metric_counter("tn_guard_closed_total{cause=\"frame_timeout\"}", h);
    M.write = tn_metric_counter("tn_guard_closed_total{cause=\"write_timeout\"}", h);
    M.memory = tn_metric_counter("tn_guard_closed_total{cause=\"buffer_memory\"}", h);
    M.held = tn_metric_gauge("tn_buffer_bytes",
                             "Bytes held for peers: queued writes and partial frames (bound: "
                             "buffer_memory_max)");
}

/* Bytes held for this session now. */
static uint64_t held(const tn_session_t *s)
{
    return (uint64_t)tn_session_backlog(s) + (uint64_t)s->rpart.cap;
}

/* A started frame that does not complete in time (only open sessions: a handshake has its
 * own deadline). Progress is a completed frame; bytes alone are not. */
static bool frame_late(tn_limits_t *l, tn_session_t *s, uint64_t now)
{
    tn_peer_limits_t *g = &s->lim;
    if (!(s->hdr_have || s->frame_need)) {
        g->frame_since_ms = 0;
        return false;
    }
    if (!g->frame_since_ms || g->frame_seen != s->frames_in) {
        g->frame_since_ms = now;
        g->frame_seen = s->frames_in;
        return false;
    }
    return now - g->frame_since_ms >= l->frame_timeout_ms;
}

/* Bytes waiting in libuv (ours held back by the outbound cap do not count) and none of them
 * reached the socket for write_timeout. */
static bool write_stalled(tn_limits_t *l, tn_session_t *s, uint64_t now)
{
    tn_peer_limits_t *g = &s->lim;
    size_t pending = s->tcp.write_queue_size;
    if (!pending) {
        g->stall_since_ms = 0;
        return false;
    }
    uint64_t written = s->bytes_out - g->deferred - pending;
    if (!g->stall_since_ms || g->stall_written != written) {
        g->stall_since_ms = now;
        g->stall_written = written;
        return false;
    }
    return now - g->stall_since_ms >= l->write_timeout_ms;
}

static void close_biggest(tn_node_t *n, uint64_t total, uint64_t cap)
{
    while (total > cap) {
        tn_session_t *worst = NULL;
        uint64_t most = 0;
        for (tn_session_t *s = n->sessions; s; s = s->next) {
            uint64_t h = s->state == TN_SS_CLOSING ? 0 : held(s);
            if (h > most) worst = s, most = h;
        }
        if (!worst) return;
        char d[128];
        snprintf(d, sizeof d,
                 "buffers of all peers over buffer_memory_max (this one held %llu bytes)",
                 (unsigned long long)most);
        tn_metric_inc(M.memory);
        tn_session_close(worst, TN_CLOSE_BACKLOG, d);
        total -= most;
    }
}

static void on_sweep(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    tn_limits_t *l = n->limits;
    uint64_t now = uv_now(n->loop), total = 0;
    char d[96];
    for (tn_session_t *s = n->sessions, *next; s; s = next) {
        next = s->next;
        if (s->state == TN_SS_OPEN && frame_late(l, s, now)) {
            snprintf(d, sizeof d, "frame not completed within %g s", n->cfg->frame_timeout);
            tn_metric_inc(M.frame);
            tn_session_close(s, TN_CLOSE_PROTOCOL, d);
            continue;
        }
        if (s->state == TN_SS_OPEN && write_stalled(l, s, now)) {
            snprintf(d, sizeof d, "peer is not reading: nothing written for %g s",
                     n->cfg->write_timeout);
            tn_metric_inc(M.write);
            tn_session_close(s, TN_CLOSE_BACKLOG, d);
            continue;
        }
        total += held(s);
    }
    tn_metric_set(M.held, (double)total);
    if (total > l->buffer_max) close_biggest(n, total, l->buffer_max);
}

void tn_guard_configure(tn_limits_t *l, const tn_config_t *cfg)
{
    l->frame_timeout_ms = tn_config_ms(cfg->frame_timeout);
    l->write_timeout_ms = tn_config_ms(cfg->write_timeout);
    l->buffer_max = (uint64_t)cfg->buffer_memory_max;
}

void tn_guard_start(tn_limits_t *l, uv_loop_t *loop)
{
    metrics_init();
    uv_timer_init(loop, &l->guard);
    l->guard.data = l->node;
    uv_timer_start(&l->guard, on_sweep, TN_GUARD_MS, TN_GUARD_MS);
    uv_unref((uv_handle_t *)&l->guard); /* never what keeps the loop alive */
}

void tn_guard_stop(tn_limits_t *l)
{
    uv_close((uv_handle_t *)&l->guard, NULL);
}
