/* What the operator touches on a running node, besides the control socket: the metrics
 * endpoint and the gauges derived at scrape time, the loop-lag probe, systemd readiness and
 * watchdog, SIGHUP (config + policy reload) and SIGUSR1 (log file reopen), config reload,
 * and the peers added with `addnode`. Files: tn_ops.c (lifecycle, signals, systemd),
 * tn_ops_metrics.c (derived gauges, loop lag), tn_reload.c (config reload),
 * tn_addnodes.c (added nodes). Loop thread only. */
#ifndef TN_OPS_H
#define TN_OPS_H

#include "tn_addr.h"
#include "tn_http.h"

#include <cJSON.h>
#include <stdbool.h>
#include <uv.h>

typedef struct tn_node tn_node_t;

#define TN_ADDNODES_MAX 1024    /* peers an operator may add; more are refused */
#define TN_LAG_INTERVAL_MS 500  /* loop-lag probe period */
#define TN_RELOAD_WAIT_MS 60000 /* longest a config reload waits for a policy build to end */

typedef void (*tn_reload_done_fn)(void *ud, bool ok, cJSON *result);

typedef struct tn_reload_req {
    struct tn_reload_req *next;
    char why[32];
    tn_reload_done_fn done;
    void *ud;
} tn_reload_req_t;

typedef struct tn_ops {
    tn_node_t *node;
    tn_http_t *http;
    char metrics_addr[TN_ADDR_STRLEN]; /* where /metrics is served, "" = off */
    uv_timer_t lag_timer, watchdog_timer, reload_timer;
    uint64_t lag_last_ns;
    uv_signal_t sig_hup, sig_usr1;
    bool started;
    /* config reloads waiting for the policy build in flight to end */
    tn_reload_req_t *reloads;
    uint64_t reload_wait_since_ms;
    /* added nodes (tn_addnodes.c) */
    tn_addr_t added[TN_ADDNODES_MAX];
    int n_added;
} tn_ops_t;

/* After the node has started (and its control socket is up): serves metrics, installs the
 * signal handlers, dials the added nodes and tells systemd READY=1. A metrics address that
 * was set explicitly and cannot be bound fails the start (err says why); the 'auto' one
 * only logs a warning. */
int tn_ops_start(tn_node_t *n, char *err, size_t errlen);
/* First thing in tn_node_stop: STOPPING=1, closes handles. */
void tn_ops_stop(tn_node_t *n);
void tn_ops_free(tn_node_t *n);

/* tn_ops_metrics.c */
void tn_ops_metrics_start(tn_node_t *n);
/* Refreshes the gauges derived from node state (before each exposition). */
void tn_ops_collect(tn_node_t *n);

/* tn_reload.c: re-reads the config file and applies what can change at run time; the
 * result (applied and restart_required key lists, or error) goes to done. When a policy
 * build is in flight, the reload waits for it (the build reads the config off the loop). */
void tn_reload_config(tn_node_t *n, const char *why, tn_reload_done_fn done, void *ud);
/* SIGHUP: config reload, then a policy reload (exactly one, whatever the config did). */
void tn_reload_sighup(tn_node_t *n);

/* tn_addnodes.c */
int tn_addnodes_load(tn_node_t *n);
/* TN_EALREADY (already added), TN_ENOMEM (TN_ADDNODES_MAX), or a tn_targets_dial error. */
int tn_addnodes_add(tn_node_t *n, const tn_addr_t *a);
int tn_addnodes_remove(tn_node_t *n, const tn_addr_t *a);
bool tn_addnodes_has(const tn_node_t *n, const tn_addr_t *a);
void tn_addnodes_list(tn_node_t *n, cJSON *out);

#endif
