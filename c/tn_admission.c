/* Accept-time checks on the raw handle (see tn_limits.h): a connection is accepted on one of
 * a fixed pool of handles and judged by its address before any per-connection state exists;
 * a refused one is closed without a read, a timer or an allocation. Also the table of
 * connection attempts per IP (seed §12 and §13; the verdicts are bans.lua's). */
#include "tn_limits.h"

#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct {
    tn_metric_t *blocked, *banned, *attempts, *evicted, *deferred;
} M;

static void metrics_init(void)
{
    /* the same names as tn_node.c's refusals: one family */
    M.blocked = tn_metric_counter("tn_inbound_refused_total{reason=\"blocked\"}",
                                  "Inbound connections closed at accept");
    M.banned = tn_metric_counter("tn_inbound_refused_total{reason=\"banned\"}", NULL);
    M.attempts = tn_metric_counter("tn_inbound_refused_total{reason=\"attempts\"}", NULL);
    M.evicted = tn_metric_counter("tn_connection_attempts_evicted_total",
                                  "IPs forgotten by the attempt table to make room (bound "
                                  "4096 IPs)");
    M.deferred = tn_metric_counter("tn_inbound_accept_deferred_total",
                                   "Accepts postponed until a pooled handle was free");
}

/* ---- attempts per IP ---- */

int tn_attempts_init(tn_attempts_t *t)
{
    memset(t, 0, sizeof(*t));
    t->slots = calloc((size_t)TN_ATTEMPT_SETS * TN_ATTEMPT_WAYS, sizeof(tn_attempt_t));
    if (!t->slots) return TN_ENOMEM;
    randombytes_buf(t->key, sizeof t->key);
    return TN_OK;
}

void tn_attempts_free(tn_attempts_t *t)
{
    free(t->slots);
    t->slots = NULL;
}

/* Whether slot a is a better one than b to give a new IP: a free or expired slot first, then
 * the fewest attempts (an IP near its limit is the one worth remembering), then the least
 * recently seen. */
static bool better_victim(const tn_attempt_t *a, const tn_attempt_t *b, uint64_t now_ms,
                          uint64_t window_ms)
{
    bool a_free = !a->count || now_ms - a->start_ms >= window_ms;
    bool b_free = !b->count || now_ms - b->start_ms >= window_ms;
    if (a_free != b_free) return a_free;
    if (a_free) return false;
    if (a->count != b->count) return a->count < b->count;
    return a->last_ms < b->last_ms;
}

uint32_t tn_attempts_count(tn_attempts_t *t, const tn_addr_t *a, uint64_t now_ms,
                           uint64_t window_ms)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, a->ip, 16, t->key);
    tn_attempt_t *set = &t->slots[(tn_get_u64(h) % TN_ATTEMPT_SETS) * TN_ATTEMPT_WAYS];
    tn_attempt_t *e = NULL, *victim = &set[0];
    for (int i = 0; i < TN_ATTEMPT_WAYS && !e; i++) {
        if (set[i].count && memcmp(set[i].ip, a->ip, 16) == 0)
            e = &set[i];
        else if (better_victim(&set[i], victim, now_ms, window_ms))
            victim = &set[i];
    }
    if (!e) {
        e = victim;
        if (e->count && now_ms - e->start_ms < window_ms) t->evicted++;
        memcpy(e->ip, a->ip, 16);
        e->count = 0;
        e->start_ms = now_ms;
    } else if (now_ms - e->start_ms >= window_ms) {
        e->count = 0;
        e->start_ms = now_ms;
    }
    if (e->count < UINT32_MAX) e->count++;
    e->last_ms = now_ms;
    return e->count;
}

/* ---- the pool of accept handles ---- */

static void on_slot_closed(uv_handle_t *h)
{
    tn_accept_slot_t *slot = h->data;
    tn_limits_t *l = slot->lim;
    slot->next = l->free_slots;
    l->free_slots = slot;
    if (l->deferred_server) { /* a connection is waiting in the kernel: take it now */
        uv_stream_t *server = l->deferred_server;
        uv_connection_cb cb = l->deferred_cb;
        l->deferred_server = NULL;
        cb(server, 0);
    }
}

static void slot_close(tn_accept_slot_t *slot)
{
    uv_close((uv_handle_t *)&slot->tcp, on_slot_closed);
}

/* Refused for what the address did (blocked, banned, too many attempts): a reset, so the
 * refusal leaves no FIN exchange and no TIME_WAIT behind on our side. */
static void slot_reset(tn_accept_slot_t *slot)
{
    if (uv_tcp_close_reset(&slot->tcp, on_slot_closed) != 0) slot_close(slot);
}

/* The connections-per-IP contract with bans.lua (policies/README.md, "§12 and §13"):
 * attempts up to connection_attempts_free in a window are never reported; each one after that
 * up to connection_attempts_max is reported as "connections" and refused unless the verdict is
 * "ignore"; beyond the max it is refused without a report or any other work. */
static bool too_many_attempts(tn_node_t *n, const tn_addr_t *a)
{
    const tn_config_t *cfg = n->cfg;
    uint64_t window = tn_config_ms(cfg->connection_attempt_window);
    uint32_t k = tn_attempts_count(&n->limits->attempts, a, uv_now(n->loop), window);
    tn_metric_set(M.evicted, (double)n->limits->attempts.evicted);
    if (k <= (uint32_t)cfg->connection_attempts_free) return false;
    if (k > (uint32_t)cfg->connection_attempts_max) return true;
    char d[96];
    snprintf(d, sizeof d, "%u attempts in %g s", k, cfg->connection_attempt_window);
    return tn_misbehaved(n, NULL, a, TN_MIS_CONNECTIONS, d) != TN_VERDICT_IGNORE;
}

int tn_admission_accept(tn_node_t *n, uv_stream_t *server, uv_connection_cb cb, tn_conn_t *c)
{
    tn_limits_t *l = n->limits;
    tn_accept_slot_t *slot = l->free_slots;
    if (!slot) { /* all closing: libuv stops watching the listener until the next accept */
        tn_metric_inc(M.deferred);
        l->deferred_server = server;
        l->deferred_cb = cb;
        return TN_EAGAIN;
    }
    l->free_slots = slot->next;
    uv_tcp_init(n->loop, &slot->tcp);
    slot->tcp.data = slot;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_accept(server, (uv_stream_t *)&slot->tcp) != 0 ||
        uv_tcp_getpeername(&slot->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        tn_addr_from_sockaddr((struct sockaddr *)&ss, &c->remote) != 0) {
        slot_close(slot);
        return TN_EIO;
    }
    tn_metric_t *refused = NULL;
    if (tn_node_is_blocked(n, &c->remote))
        refused = M.blocked;
    else if (tn_bans_active(n, &c->remote))
        refused = M.banned;
    else if (!tn_node_whitelisted(n, &c->remote) && too_many_attempts(n, &c->remote))
        refused = M.attempts;
    if (refused) {
        tn_metric_inc(refused);
        slot_reset(slot);
        return TN_ELIMIT;
    }
    c->slot = slot;
    return TN_OK;
}

void tn_admission_refuse(tn_node_t *n, tn_conn_t *c)
{
    (void)n;
    if (c->slot) slot_close(c->slot);
    c->slot = NULL;
}

int tn_admission_adopt(tn_node_t *n, tn_conn_t *c, tn_session_t **out)
{
    tn_accept_slot_t *slot = c->slot;
    uv_os_fd_t fd;
    int rc = TN_EIO;
    c->slot = NULL;
    /* The pooled handle cannot become the session's: the session gets its own descriptor for
     * the same connection, and the pooled handle closes its copy. */
    if (uv_fileno((uv_handle_t *)&slot->tcp, &fd) == 0) {
        int dup_fd = dup(fd);
        if (dup_fd >= 0) {
            rc = tn_session_adopt(&n->net, dup_fd, &c->remote, out);
            if (rc != TN_OK) close(dup_fd);
        }
    }
    slot_close(slot);
    return rc;
}

/* ---- lifecycle (the pool and the table; called by tn_limits.c's start and free) ---- */

int tn_admission_init(tn_limits_t *l)
{
    metrics_init();
    if (tn_attempts_init(&l->attempts) != TN_OK) return TN_ENOMEM;
    for (int i = TN_ACCEPT_POOL - 1; i >= 0; i--) {
        l->pool[i].lim = l;
        l->pool[i].next = l->free_slots;
        l->free_slots = &l->pool[i];
    }
    return TN_OK;
}

void tn_admission_stop(tn_limits_t *l)
{
    l->deferred_server = NULL;
}

void tn_admission_free(tn_limits_t *l)
{
    tn_attempts_free(&l->attempts);
}
