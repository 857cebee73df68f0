/* Outbound intents: persistent peers (kept connected, redialed with backoff), seeds and
 * operator dials (one attempt). A dial is keyed by address and, once known, by the node id
 * last seen there, so one address or identity never has two dials or a dial beside a
 * session (seed §4 Connection Deduplication). */
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <stdio.h>
#include <stdlib.h>

static tn_target_t *find(tn_node_t *n, const tn_addr_t *a)
{
    for (tn_target_t *t = n->targets; t; t = t->next)
        if (tn_addr_eq(&t->addr, a)) return t;
    return NULL;
}

static void on_target_closed(uv_handle_t *h)
{
    free(h->data);
}

static void drop(tn_node_t *n, tn_target_t *t)
{
    for (tn_target_t **pp = &n->targets; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    if (t->dial) t->dial->target = NULL;
    uv_close((uv_handle_t *)&t->timer, on_target_closed);
}

static void on_redial(uv_timer_t *timer);

static tn_target_t *add(tn_node_t *n, const tn_addr_t *a, bool persistent)
{
    tn_target_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->node = n;
    t->addr = *a;
    t->persistent = persistent;
    uv_timer_init(n->loop, &t->timer);
    t->timer.data = t;
    t->next = n->targets;
    n->targets = t;
    return t;
}

/* Is there already a session (or dial) with this address or with the identity there? */
static bool satisfied(tn_node_t *n, const tn_addr_t *a, const tn_target_t *t)
{
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (s->outbound && tn_addr_eq(&s->remote, a)) return true;
    for (tn_peer_t *p = n->peers; p; p = p->next) {
        if (!p->session) continue;
        if (t && t->id_known && memcmp(p->id, t->id, TN_ID_LEN) == 0) return true;
        if (tn_addr_eq(&p->addr, a)) return true;
    }
    return false;
}

static void schedule(tn_node_t *n, tn_target_t *t, const char *why)
{
    bool gave_up;
    tn_peer_view_t v = {NULL, t->id_known ? tn_node_peer_find(n, t->id) : NULL, &t->addr,
                        t->id_known ? t->id : NULL};
    uint64_t ms = tn_policy_reconnect_ms(n->policy, &v, t->failures, why, &gave_up);
    char a[TN_ADDR_STRLEN];
    tn_addr_fmt(&t->addr, a);
    if (gave_up) {
        tn_warn("Giving up on %s after %u failed attempts (%s); next try in %.1f s", a, t->failures,
                why, (double)ms / 1000.0);
        t->failures = 0; /* after the cooldown the schedule starts over */
    } else if (t->failures > 0) {
        tn_info("Dial to %s failed (%s); retry %u in %.1f s", a, why, t->failures + 1,
                (double)ms / 1000.0);
    }
    t->next_dial_ms = uv_now(n->loop) + ms;
    uv_timer_start(&t->timer, on_redial, ms, 0);
}

static int dial_now(tn_node_t *n, tn_target_t *t)
{
    tn_session_t *s;
    uv_timer_stop(&t->timer);
    int rc = tn_session_dial(&n->net, &t->addr, &n->listen_addr, &s);
    if (rc != TN_OK) {
        t->failures++;
        tn_metric_inc(tn_metric_counter("tn_dials_failed_total", "Outbound dials that failed"));
        if (t->persistent)
            schedule(n, t, tn_strerror(rc));
        else
            drop(n, t);
        return rc;
    }
    tn_metric_inc(tn_metric_counter("tn_dials_total", "Outbound dials started"));
    s->target = t;
    t->dial = s;
    tn_node_track(n, s);
    return TN_OK;
}

int tn_targets_dial(tn_node_t *n, const tn_addr_t *addr, bool persistent)
{
    if (n->stopping) return TN_ELIMIT;
    tn_target_t *t = find(n, addr);
    if (t && t->self) return TN_ESELF;
    if (tn_node_is_blocked(n, addr) || tn_bans_active(n, addr)) return TN_ELIMIT;
    if (t && persistent) t->persistent = true;
    if ((t && t->dial) || satisfied(n, addr, t)) return TN_EALREADY;
    if (!t && !(t = add(n, addr, persistent))) return TN_ENOMEM;
    return dial_now(n, t);
}

int tn_targets_persist(tn_node_t *n, const tn_addr_t *addr)
{
    int rc = tn_targets_dial(n, addr, true);
    if (rc != TN_EALREADY || find(n, addr)) return rc == TN_EALREADY ? TN_OK : rc;
    /* Connected already without a target (say, the peer dialed us): track it, with the
     * identity there, so a loss is redialed. */
    tn_target_t *t = add(n, addr, true);
    if (!t) return TN_ENOMEM;
    for (tn_peer_t *p = n->peers; p; p = p->next)
        if (p->session && tn_addr_eq(&p->addr, addr)) {
            t->id_known = true;
            memcpy(t->id, p->id, TN_ID_LEN);
        }
    return TN_OK;
}

int tn_targets_unpersist(tn_node_t *n, const tn_addr_t *addr)
{
    tn_target_t *t = find(n, addr);
    if (!t || !t->persistent) return TN_ENOTFOUND;
    t->persistent = false;
    if (!t->dial && !t->self) drop(n, t); /* a dial in flight drops it when it ends */
    return TN_OK;
}

static void on_redial(uv_timer_t *timer)
{
    tn_target_t *t = timer->data;
    tn_node_t *n = t->node;
    if (t->dial || t->self || n->stopping) return;
    if (satisfied(n, &t->addr, t) || tn_node_is_blocked(n, &t->addr)) {
        if (!satisfied(n, &t->addr, t)) schedule(n, t, "address blocked");
        return;
    }
    dial_now(n, t);
}

void tn_targets_start(tn_node_t *n)
{
    tn_addr_t a;
    for (int i = 0; i < n->cfg->persistent_peers.n; i++)
        if (tn_addr_parse(n->cfg->persistent_peers.v[i], &a) == 0) tn_targets_dial(n, &a, true);
    /* With discovery on (min_peers > 0) seeds are its first source (tn_discovery.c). */
    if (n->cfg->min_peers <= 0)
        for (int i = 0; i < n->cfg->seeds.n; i++)
            if (tn_addr_parse(n->cfg->seeds.v[i], &a) == 0) tn_targets_dial(n, &a, false);
}

void tn_targets_on_open(tn_node_t *n, tn_session_t *s)
{
    tn_target_t *t = s->target;
    if (!t) return;
    s->target = NULL;
    t->dial = NULL;
    t->failures = 0;
    t->id_known = true;
    memcpy(t->id, s->their_id, TN_ID_LEN);
    if (!t->persistent) drop(n, t);
}

void tn_targets_on_close(tn_node_t *n, tn_session_t *s, bool was_open, const char *why)
{
    (void)was_open;
    tn_target_t *t = s->target;
    if (!t) return;
    s->target = NULL;
    t->dial = NULL;
    if (n->stopping || t->self) return;
    t->failures++;
    tn_metric_inc(tn_metric_counter("tn_dials_failed_total", "Outbound dials that failed"));
    if (t->persistent) {
        schedule(n, t, why);
        return;
    }
    char a[TN_ADDR_STRLEN];
    tn_addr_fmt(&t->addr, a);
    tn_info("Dial to %s failed (%s)", a, why);
    drop(n, t);
}

void tn_targets_on_peer_lost(tn_node_t *n, const uint8_t id[TN_ID_LEN])
{
    for (tn_target_t *t = n->targets; t; t = t->next) {
        if (!t->persistent || t->self || t->dial || !t->id_known) continue;
        if (memcmp(t->id, id, TN_ID_LEN) != 0) continue;
        t->failures = 0; /* seed §3: initial retry after reconnect_delay */
        schedule(n, t, "connection lost");
    }
}

void tn_targets_mark_self(tn_node_t *n, tn_session_t *s)
{
    tn_target_t *t = s->target ? s->target : find(n, &s->remote);
    if (!t && !(t = add(n, &s->remote, false))) return;
    t->self = true;
    uv_timer_stop(&t->timer);
}

void tn_targets_free(tn_node_t *n)
{
    while (n->targets) drop(n, n->targets);
}
