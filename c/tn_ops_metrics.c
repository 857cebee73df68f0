/* Metrics derived from node state, refreshed just before each exposition (counting them on
 * every event would cost the hot path for no reader), and the loop-lag probe: a repeating
 * timer whose lateness is how long the loop was busy elsewhere (libuv 1.44 has no loop
 * metrics API). */
#include "tn_chain.h"
#include "tn_disc.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_ops.h"

#include <ctype.h>
#include <stdio.h>

#define TN_FEATURE_SERIES_MAX 256 /* feature flags tracked across reloads in one run */

#ifndef TN_VERSION
#define TN_VERSION "0.1.0"
#endif

static tn_metric_t *g_lag, *g_lag_last;

static void on_lag(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    tn_ops_t *o = n->ops;
    uint64_t now = uv_hrtime();
    if (o->lag_last_ns) {
        double late = (double)(now - o->lag_last_ns) / 1e9 - TN_LAG_INTERVAL_MS / 1000.0;
        if (late < 0) late = 0;
        tn_metric_observe(g_lag, late);
        tn_metric_set(g_lag_last, late);
    }
    o->lag_last_ns = now;
}

void tn_ops_metrics_start(tn_node_t *n)
{
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10};
    g_lag = tn_metric_histogram("tn_loop_lag_seconds",
                                "Event loop lateness: how late a 0.5 s timer fired", bounds,
                                (int)TN_ARRAY_LEN(bounds));
    g_lag_last = tn_metric_gauge("tn_loop_lag_last_seconds", "The latest loop lateness measured");
    uv_timer_start(&n->ops->lag_timer, on_lag, TN_LAG_INTERVAL_MS, TN_LAG_INTERVAL_MS);
    uv_unref((uv_handle_t *)&n->ops->lag_timer);
    /* Series that exist from the start read 0 rather than missing (rate() needs both). */
    tn_metric_counter("tn_config_reloads_total{result=\"ok\"}", "Config reloads by result");
    tn_metric_counter("tn_config_reloads_total{result=\"rejected\"}", "Config reloads by result");
    tn_metric_set(tn_metric_gauge("tn_start_time_seconds", "Unix time the node started"),
                  (double)tn_wall_ms() / 1000.0);
    char name[TN_METRIC_NAME_MAX];
    snprintf(name, sizeof name, "tn_build_info{version=\"%s\",protocol=\"%d\",network=\"%s\"}",
             TN_VERSION, TN_PROTO_VERSION, n->cfg->network);
    tn_metric_set(tn_metric_gauge(name, "Build and network of this node (value 1)"), 1);
}

/* Masternode role as the chain proves it: an authenticated key in the active set, never the
 * hello's claim. */
static bool is_masternode(const tn_node_t *n, const tn_session_t *s)
{
    return s->state == TN_SS_OPEN && tn_chain_is_masternode(n, s->their_id);
}

void tn_ops_collect(tn_node_t *n)
{
    int conns[2][2] = {{0}}; /* [outbound][masternode] */
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (s->peer) conns[s->outbound][is_masternode(n, s)]++;
    static const char *dir[] = {"in", "out"}, *role[] = {"peer", "masternode"};
    for (int d = 0; d < 2; d++)
        for (int r = 0; r < 2; r++) {
            char name[TN_METRIC_NAME_MAX];
            snprintf(name, sizeof name, "tn_connections{dir=\"%s\",role=\"%s\"}", dir[d], role[r]);
            tn_metric_set(tn_metric_gauge(name, "Established sessions by direction and role"),
                          conns[d][r]);
        }
    int bans = 0;
    uint64_t now = tn_wall_ms();
    for (int i = 0; i < n->n_bans; i++) bans += n->bans[i].until_ms > now;
    tn_metric_set(tn_metric_gauge("tn_bans_active", "IPs banned now"), bans);
    tn_metric_set(tn_metric_gauge("tn_added_nodes", "Peers added with addnode"),
                  n->ops ? n->ops->n_added : 0);
    tn_metric_set(tn_metric_gauge("tn_uptime_seconds", "Seconds since the node started"),
                  (double)(uv_now(n->loop) - n->started_ms) / 1000.0);
    /* Feature flags: one series per flag ever switched on in this run; 0 once switched off
     * by a config reload. */
    static tn_metric_t *flags[TN_FEATURE_SERIES_MAX];
    static int n_flags;
    for (int i = 0; i < n_flags; i++) tn_metric_set(flags[i], 0);
    for (int i = 0; i < n->cfg->features.n; i++) {
        char flag[65], name[TN_METRIC_NAME_MAX];
        snprintf(flag, sizeof flag, "%s", n->cfg->features.v[i]);
        for (char *c = flag; *c; c++) /* a label value needs no escaping after this */
            if (!isalnum((unsigned char)*c) && !strchr("_.:-", *c)) *c = '_';
        snprintf(name, sizeof name, "tn_feature_enabled{flag=\"%s\"}", flag);
        tn_metric_t *m = tn_metric_gauge(name, "Feature flags in force (1 = on)");
        tn_metric_set(m, 1);
        bool known = false;
        for (int j = 0; j < n_flags; j++) known |= flags[j] == m;
        if (!known && n_flags < TN_FEATURE_SERIES_MAX) flags[n_flags++] = m;
    }
    tn_policy_collect(n->policy);
    tn_disc_collect(n);
}
