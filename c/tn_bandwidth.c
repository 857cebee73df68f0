/* Optional node-wide bandwidth caps (bandwidth_in, bandwidth_out; off by default): token
 * buckets on bytes. Inbound: a session whose read spends the bucket stops reading until the
 * bucket is positive again (TCP then slows the sender). Outbound: while the bucket is spent,
 * sealed frames wait in their session's queue, in order, and count toward its backlog (so the
 * write_buffer_max and buffer_memory_max bounds still apply); a timer releases them as tokens
 * come back. Sessions call in only when a cap is on (tn_net_t.bw set): one pointer test. */
#include "tn_limits.h"

#include "tn_metrics.h"
#include "tn_node.h"

#include <stdlib.h>

#define TN_BW_BURST_S 0.25      /* bucket size: a quarter second of the rate ... */
#define TN_BW_BURST_MIN 65536.0 /* ... and at least one full-size batch */
#define TN_BW_TICK_MIN_MS 5     /* the release timer never fires more often */

typedef struct defer {
    struct defer *next;
    uint8_t *mem;
    size_t len;
} defer_t;

struct tn_bw {
    tn_node_t *node;
    double in_rate, out_rate; /* bytes per ms, 0 = no cap */
    double in_burst, out_burst;
    tn_bucket_t in, out;
    uv_timer_t timer;
    bool armed;
    tn_metric_t *paused, *held;
};

static tn_bw_t *bw_of(tn_session_t *s)
{
    return s->net->bw;
}

static uint64_t now_of(tn_bw_t *bw)
{
    return uv_now(bw->node->loop);
}

static void on_tick(uv_timer_t *t);

/* Arms the timer for when the bucket with the deepest debt is back above zero. */
static void arm(tn_bw_t *bw)
{
    if (bw->armed) return;
    uint64_t now = now_of(bw), wait = TN_BW_TICK_MIN_MS;
    double in = bw->in_rate ? tn_bucket_level(&bw->in, bw->in_rate, bw->in_burst, now) : 1;
    double out = bw->out_rate ? tn_bucket_level(&bw->out, bw->out_rate, bw->out_burst, now) : 1;
    if (in <= 0 && (uint64_t)(-in / bw->in_rate) + 1 > wait)
        wait = (uint64_t)(-in / bw->in_rate) + 1;
    if (out <= 0 && (uint64_t)(-out / bw->out_rate) + 1 > wait)
        wait = (uint64_t)(-out / bw->out_rate) + 1;
    bw->armed = true;
    uv_timer_start(&bw->timer, on_tick, wait, 0);
}

void tn_bw_on_read(tn_session_t *s, size_t n)
{
    tn_bw_t *bw = bw_of(s);
    if (!bw->in_rate) return;
    tn_bucket_level(&bw->in, bw->in_rate, bw->in_burst, now_of(bw));
    bw->in.tokens -= (double)n;
    if (bw->in.tokens > 0 || s->state == TN_SS_CLOSING) return;
    s->lim.read_paused = true;
    tn_session_read_pause(s, true);
    tn_metric_inc(bw->paused);
    arm(bw);
}

bool tn_bw_defer(tn_session_t *s, uint8_t *mem, size_t len)
{
    tn_bw_t *bw = bw_of(s);
    if (!bw->out_rate) return false;
    tn_peer_limits_t *pl = &s->lim;
    if (!pl->defer_head && tn_bucket_level(&bw->out, bw->out_rate, bw->out_burst, now_of(bw)) > 0) {
        bw->out.tokens -= (double)len;
        return false;
    }
    defer_t *d = malloc(sizeof(*d));
    if (!d) return false; /* written at once rather than lost */
    d->next = NULL;
    d->mem = mem;
    d->len = len;
    if (pl->defer_tail)
        ((defer_t *)pl->defer_tail)->next = d;
    else
        pl->defer_head = d;
    pl->defer_tail = d;
    pl->deferred += len;
    tn_metric_add(bw->held, (double)len);
    arm(bw);
    return true;
}

/* Writes the held frames of every session while tokens last, one frame per session a round. */
static void release(tn_bw_t *bw)
{
    tn_node_t *n = bw->node;
    uint64_t now = now_of(bw);
    bool wrote = true;
    while (wrote) {
        wrote = false;
        for (tn_session_t *s = n->sessions, *next; s; s = next) {
            next = s->next; /* a failed write closes s, which leaves the list */
            defer_t *d = s->lim.defer_head;
            if (!d || s->state == TN_SS_CLOSING) continue;
            if (bw->out_rate && tn_bucket_level(&bw->out, bw->out_rate, bw->out_burst, now) <= 0)
                return;
            s->lim.defer_head = d->next;
            if (!d->next) s->lim.defer_tail = NULL;
            s->lim.deferred -= d->len;
            tn_metric_add(bw->held, -(double)d->len);
            if (bw->out_rate) bw->out.tokens -= (double)d->len;
            tn_session_write_now(s, d->mem, d->len);
            free(d);
            wrote = true;
        }
    }
}

static void resume_reads(tn_bw_t *bw)
{
    if (bw->in_rate && tn_bucket_level(&bw->in, bw->in_rate, bw->in_burst, now_of(bw)) <= 0) return;
    for (tn_session_t *s = bw->node->sessions; s; s = s->next)
        if (s->lim.read_paused) {
            s->lim.read_paused = false;
            tn_session_read_pause(s, false);
        }
}

static bool pending(tn_bw_t *bw)
{
    for (tn_session_t *s = bw->node->sessions; s; s = s->next)
        if (s->lim.read_paused || s->lim.defer_head) return true;
    return false;
}

static void on_tick(uv_timer_t *t)
{
    tn_bw_t *bw = t->data;
    bw->armed = false;
    resume_reads(bw);
    release(bw);
    if (pending(bw)) arm(bw);
}

void tn_bw_session_freed(tn_session_t *s)
{
    tn_bw_t *bw = bw_of(s);
    while (s->lim.defer_head) {
        defer_t *d = s->lim.defer_head;
        s->lim.defer_head = d->next;
        if (bw) tn_metric_add(bw->held, -(double)d->len);
        free(d->mem);
        free(d);
    }
    s->lim.defer_tail = NULL;
    s->lim.deferred = 0;
}

/* ---- lifecycle (tn_limits.c) ---- */

tn_bw_t *tn_bw_new(tn_node_t *n)
{
    tn_bw_t *bw = calloc(1, sizeof(*bw));
    if (!bw) return NULL;
    bw->node = n;
    uv_timer_init(n->loop, &bw->timer);
    bw->timer.data = bw;
    bw->paused = tn_metric_counter("tn_bandwidth_read_pauses_total",
                                   "Reads paused by the inbound bandwidth cap");
    bw->held =
        tn_metric_gauge("tn_bandwidth_held_bytes", "Bytes held back by the outbound bandwidth cap");
    return bw;
}

void tn_bw_configure(tn_bw_t *bw, const tn_config_t *cfg)
{
    tn_node_t *n = bw->node;
    bw->in_rate = (double)cfg->bandwidth_in / 1000.0;
    bw->out_rate = (double)cfg->bandwidth_out / 1000.0;
    bw->in_burst = TN_MAX((double)cfg->bandwidth_in * TN_BW_BURST_S, TN_BW_BURST_MIN);
    bw->out_burst = TN_MAX((double)cfg->bandwidth_out * TN_BW_BURST_S, TN_BW_BURST_MIN);
    if (bw->in_rate || bw->out_rate) {
        n->net.bw = bw;
        if (pending(bw)) arm(bw);
        return;
    }
    /* both caps off: let everything held go now, and stop being called */
    resume_reads(bw);
    release(bw);
    n->net.bw = NULL;
}

void tn_bw_stop(tn_bw_t *bw)
{
    bw->node->net.bw = NULL;
    uv_close((uv_handle_t *)&bw->timer, NULL);
}
