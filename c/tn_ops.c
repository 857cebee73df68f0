/* Operator services' lifecycle (see tn_ops.h): the metrics endpoint, the signals operators
 * send (SIGHUP: reload config and policy; SIGUSR1: reopen the log file), and systemd's
 * notification protocol: READY=1 once serving, STOPPING=1 on shutdown, WATCHDOG=1 at half
 * the interval systemd asked for, from a loop timer (so a stuck loop stops the pings). */
#include "tn_ops.h"

#include "tn_log.h"
#include "tn_node.h"
#include "tn_sdnotify.h"

#include <stdio.h>
#include <stdlib.h>

static bool is_loopback(const tn_addr_t *a)
{
    static const uint8_t v6_loop[16] = {[15] = 1};
    if (tn_addr_is_v4(a)) return a->ip[12] == 127;
    return memcmp(a->ip, v6_loop, 16) == 0;
}

/* TN_OK with the address, or TN_ENOTFOUND when metrics are off. */
static int metrics_addr(const tn_config_t *c, tn_addr_t *out, bool *automatic)
{
    *automatic = strcmp(c->metrics_listen, "auto") == 0;
    if (!c->metrics_listen[0]) return TN_ENOTFOUND;
    if (!*automatic) return tn_addr_parse(c->metrics_listen, out);
    tn_addr_t l;
    if (tn_addr_parse(c->listen, &l) != TN_OK || l.port == 0 || l.port == 65535)
        return TN_ENOTFOUND; /* no P2P port to sit next to */
    if (is_loopback(&l))
        *out = l;
    else
        tn_addr_parse("127.0.0.1:1", out);
    out->port = (uint16_t)(l.port + 1);
    return TN_OK;
}

static void collect(void *ud)
{
    tn_ops_collect(ud);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    tn_sd_notify("WATCHDOG=1");
}

static void on_sigusr1(uv_signal_t *h, int signum)
{
    (void)signum;
    (void)h;
    char err[512];
    if (tn_log_reopen(err, sizeof err) != TN_OK)
        tn_error("Cannot reopen the log file (SIGUSR1): %s; still writing to the old one", err);
    else
        tn_info("Log file reopened (SIGUSR1)");
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    tn_reload_sighup(h->data);
}

static int start_metrics(tn_node_t *n, char *err, size_t errlen)
{
    tn_ops_t *o = n->ops;
    tn_addr_t a;
    bool automatic;
    if (metrics_addr(n->cfg, &a, &automatic) != TN_OK) return TN_OK;
    char why[300];
    if (tn_http_start(&o->http, n->loop, &a, collect, n, why, sizeof why) != TN_OK) {
        o->http = NULL;
        if (!automatic) {
            snprintf(err, errlen, "%s (metrics_listen)", why);
            return TN_EIO;
        }
        tn_warn("Metrics endpoint off: %s (metrics_listen = \"auto\"; set an address or \"\")",
                why);
        return TN_OK;
    }
    tn_addr_fmt(&a, o->metrics_addr);
    tn_info("Metrics at http://%s/metrics", o->metrics_addr);
    return TN_OK;
}

int tn_ops_start(tn_node_t *n, char *err, size_t errlen)
{
    tn_ops_t *o = calloc(1, sizeof(*o));
    if (!o) return TN_ENOMEM;
    n->ops = o;
    o->node = n;
    uv_timer_init(n->loop, &o->lag_timer);
    uv_timer_init(n->loop, &o->watchdog_timer);
    uv_timer_init(n->loop, &o->reload_timer);
    uv_signal_init(n->loop, &o->sig_hup);
    uv_signal_init(n->loop, &o->sig_usr1);
    o->lag_timer.data = o->watchdog_timer.data = o->reload_timer.data = n;
    o->sig_hup.data = o->sig_usr1.data = n;
    o->started = true;
    int rc = start_metrics(n, err, errlen);
    if (rc) return rc;
    uv_signal_start(&o->sig_hup, on_sighup, SIGHUP);
    uv_signal_start(&o->sig_usr1, on_sigusr1, SIGUSR1);
    tn_ops_metrics_start(n);
    tn_addnodes_load(n);
    uint64_t wd = tn_sd_watchdog_usec();
    if (wd) {
        uint64_t ms = TN_MAX(wd / 2000, 1);
        uv_timer_start(&o->watchdog_timer, on_watchdog, ms, ms);
        tn_info("systemd watchdog: a keep-alive every %.3f s", (double)ms / 1000.0);
    }
    char status[256];
    snprintf(status, sizeof status, "READY=1\nSTATUS=network %s, listening on %s", n->cfg->network,
             n->listening ? n->cfg->listen : "(none)");
    tn_sd_notify(status);
    return TN_OK;
}

void tn_ops_stop(tn_node_t *n)
{
    tn_ops_t *o = n->ops;
    tn_sd_notify("STOPPING=1");
    if (!o || !o->started) return;
    o->started = false;
    while (o->reloads) {
        tn_reload_req_t *r = o->reloads;
        o->reloads = r->next;
        cJSON *res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "error", "node is stopping");
        if (r->done) r->done(r->ud, false, res);
        cJSON_Delete(res);
        free(r);
    }
    tn_http_stop(o->http);
    o->http = NULL;
    uv_close((uv_handle_t *)&o->lag_timer, NULL);
    uv_close((uv_handle_t *)&o->watchdog_timer, NULL);
    uv_close((uv_handle_t *)&o->reload_timer, NULL);
    uv_close((uv_handle_t *)&o->sig_hup, NULL);
    uv_close((uv_handle_t *)&o->sig_usr1, NULL);
}

void tn_ops_free(tn_node_t *n)
{
    free(n->ops);
    n->ops = NULL;
}
