/* Config reload (the config_reload verb and SIGHUP): re-reads the config file, applies the
 * keys that can change at run time (tn_config_key_live) and reports the others as needing a
 * restart; a file with an error changes nothing. The node's config is also read off the loop
 * by a policy build (tn_policy_gen_build), so values are swapped only while no build is in
 * flight: a reload that arrives during one waits for it, polling every few milliseconds. */
#include "tn_limits.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_ops.h"
#include "tn_sdnotify.h"

#include <stdio.h>
#include <stdlib.h>

#define RELOAD_POLL_MS 5

static void count(bool ok)
{
    tn_metric_inc(tn_metric_counter(ok ? "tn_config_reloads_total{result=\"ok\"}"
                                       : "tn_config_reloads_total{result=\"rejected\"}",
                                    "Config reloads by result"));
}

static bool in_list(const tn_strlist_t *l, const tn_addr_t *a)
{
    for (int i = 0; i < l->n; i++) {
        tn_addr_t x;
        if (tn_addr_parse(l->v[i], &x) == TN_OK && tn_addr_eq(&x, a)) return true;
    }
    return false;
}

/* Dials what was added to seeds (once) and persistent_peers; stops redialing what left
 * persistent_peers (unless added with addnode). old = the lists before the reload. */
static void apply_peers(tn_node_t *n, const tn_strlist_t *old_seeds,
                        const tn_strlist_t *old_persistent)
{
    const tn_config_t *c = n->cfg;
    tn_addr_t a;
    for (int i = 0; i < c->persistent_peers.n; i++)
        if (tn_addr_parse(c->persistent_peers.v[i], &a) == TN_OK && !in_list(old_persistent, &a))
            tn_targets_persist(n, &a);
    for (int i = 0; i < old_persistent->n; i++)
        if (tn_addr_parse(old_persistent->v[i], &a) == TN_OK &&
            !in_list(&c->persistent_peers, &a) && !tn_addnodes_has(n, &a))
            tn_targets_unpersist(n, &a);
    for (int i = 0; i < c->seeds.n; i++)
        if (tn_addr_parse(c->seeds.v[i], &a) == TN_OK && !in_list(old_seeds, &a))
            tn_targets_dial(n, &a, false);
}

/* Effects of changed live keys beyond the value itself (most keys are read where used). */
static void apply_effects(tn_node_t *n, const tn_config_t *old)
{
    const tn_config_t *c = n->cfg;
    tn_log_level_t level;
    if (tn_log_level_parse(c->log_level, &level) == TN_OK) tn_log_set_level(level);
    tn_log_set_fold_window(c->log_fold_window);
    if (!c->log_file[0] && old->log_file[0]) tn_log_close(); /* back to stderr */
    n->net.max_frame = (uint32_t)c->max_frame_size;
    n->net.write_buffer_max = (size_t)c->write_buffer_max;
    n->net.connect_timeout_ms = tn_config_ms(c->connection_timeout);
    n->net.handshake_timeout_ms = tn_config_ms(c->handshake_timeout);
    n->net.test_delay_ms = c->test_handshake_delay > 0 ? tn_config_ms(c->test_handshake_delay) : 0;
    tn_limits_configure(n); /* rate buckets, deadlines, buffer and bandwidth caps */
    uint64_t status_ms = tn_config_ms(c->status_interval);
    if (uv_timer_get_repeat(&n->status_timer) != status_ms) {
        uv_timer_set_repeat(&n->status_timer, status_ms);
        uv_timer_again(&n->status_timer);
    }
    apply_peers(n, &old->seeds, &old->persistent_peers);
    tn_policy_config_changed(n->policy);
}

static void add_names(cJSON *arr, char *text, size_t len, const char *name)
{
    cJSON_AddItemToArray(arr, cJSON_CreateString(name));
    size_t used = strlen(text);
    if (used + strlen(name) + 3 < len)
        snprintf(text + used, len - used, "%s%s", used ? ", " : "", name);
}

/* Loads and applies; fills res. Returns true when the file was good. */
static bool reload_now(tn_node_t *n, tn_reload_req_t *r, cJSON *res)
{
    tn_config_t *cur = n->cfg;
    if (!cur->path) {
        cJSON_AddStringToObject(res, "error",
                                "the node runs on built-in defaults (started "
                                "without --config): there is no file to reload");
        return false;
    }
    cJSON_AddStringToObject(res, "file", cur->path);
    tn_config_t next;
    char err[1024];
    int rc = tn_config_defaults(&next);
    if (rc == TN_OK)
        rc = tn_config_load(&next, cur->path, err, sizeof err);
    else
        snprintf(err, sizeof err, "out of memory");
    /* A new log file must open before anything changes, so failing changes nothing. */
    if (rc == TN_OK && next.log_file[0] && strcmp(next.log_file, cur->log_file) != 0)
        rc = tn_log_open_file(next.log_file, err, sizeof err);
    if (rc != TN_OK) {
        tn_config_free(&next);
        tn_error("Config reload (%s) rejected, nothing changed: %s", r->why, err);
        cJSON_AddStringToObject(res, "error", err);
        return false;
    }
    cJSON *applied = cJSON_AddArrayToObject(res, "applied");
    cJSON *restart = cJSON_AddArrayToObject(res, "restart_required");
    char applied_s[600] = "", restart_s[600] = "";
    for (int i = 0; i < tn_config_nkeys(); i++) {
        if (tn_config_key_equal(cur, &next, i)) continue;
        const char *name = tn_config_key_name(i);
        if (tn_config_key_live(name)) {
            tn_config_key_swap(cur, &next, i); /* next now holds the old value */
            add_names(applied, applied_s, sizeof applied_s, name);
        } else {
            add_names(restart, restart_s, sizeof restart_s, name);
        }
    }
    bool changed = cJSON_GetArraySize(applied) > 0;
    if (changed) apply_effects(n, &next);
    tn_config_free(&next);
    if (!changed && !restart_s[0])
        tn_info("Config reloaded (%s): no changes", r->why);
    else
        tn_info("Config reloaded (%s): applied %s%s%s%s", r->why,
                applied_s[0] ? applied_s : "nothing",
                restart_s[0] ? "; changed but needing a restart: " : "", restart_s,
                restart_s[0] ? " (still running with the old values)" : "");
    return true;
}

static void run(tn_node_t *n, tn_reload_req_t *r)
{
    cJSON *res = cJSON_CreateObject();
    bool ok = reload_now(n, r, res);
    count(ok);
    if (r->done) r->done(r->ud, ok, res);
    cJSON_Delete(res);
    free(r);
}

static void on_poll(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    tn_ops_t *o = n->ops;
    bool timeout = uv_now(n->loop) - o->reload_wait_since_ms > TN_RELOAD_WAIT_MS;
    if (tn_policy_building(n->policy) && !timeout) return;
    uv_timer_stop(t);
    while (o->reloads) {
        tn_reload_req_t *r = o->reloads;
        o->reloads = r->next;
        if (!timeout) {
            run(n, r);
            continue;
        }
        cJSON *res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "error",
                                "a policy build has been running for too long; "
                                "nothing changed, try again");
        count(false);
        if (r->done) r->done(r->ud, false, res);
        cJSON_Delete(res);
        free(r);
    }
}

static void request(tn_node_t *n, const char *why, tn_reload_done_fn done, void *ud)
{
    tn_ops_t *o = n->ops;
    bool stopping = !o || !o->started;
    tn_reload_req_t *r = stopping ? NULL : calloc(1, sizeof(*r));
    if (!r) {
        cJSON *res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "error", stopping ? "node is stopping" : "out of memory");
        if (done) done(ud, false, res);
        cJSON_Delete(res);
        return;
    }
    snprintf(r->why, sizeof r->why, "%s", why);
    r->done = done;
    r->ud = ud;
    if (!tn_policy_building(n->policy) && !o->reloads) {
        run(n, r);
        return;
    }
    tn_reload_req_t **tail = &o->reloads;
    while (*tail) tail = &(*tail)->next;
    *tail = r;
    if (!uv_is_active((uv_handle_t *)&o->reload_timer)) {
        o->reload_wait_since_ms = uv_now(n->loop);
        uv_timer_start(&o->reload_timer, on_poll, RELOAD_POLL_MS, RELOAD_POLL_MS);
    }
}

/* The verb's path: a changed config also reloads the policy, so tn.config follows. */
typedef struct {
    tn_node_t *n;
    tn_reload_done_fn done;
    void *ud;
    bool sighup;
} ctx_t;

static void policy_done(void *ud, bool ok, const char *msg)
{
    (void)ok;
    (void)msg;
    (void)ud;
    tn_sd_notify("READY=1\nSTATUS=reloaded");
}

static void config_done(void *ud, bool ok, cJSON *res)
{
    ctx_t *c = ud;
    tn_node_t *n = c->n;
    const cJSON *applied = cJSON_GetObjectItemCaseSensitive(res, "applied");
    bool changed = ok && cJSON_GetArraySize(applied) > 0;
    /* A changed config reloads the policy (its tn.config is a snapshot); SIGHUP reloads it
     * in any case, exactly once. */
    if ((changed || c->sighup) && !n->stopping) {
        tn_policy_reload(n->policy, c->sighup ? "SIGHUP" : "config reload",
                         c->sighup ? policy_done : NULL, NULL);
        cJSON_AddBoolToObject(res, "policy_reload", true);
    } else if (c->sighup) {
        tn_sd_notify("READY=1");
    }
    if (c->done) c->done(c->ud, ok, res);
    free(c);
}

void tn_reload_config(tn_node_t *n, const char *why, tn_reload_done_fn done, void *ud)
{
    ctx_t *c = calloc(1, sizeof(*c));
    if (!c) {
        cJSON *res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "error", "out of memory");
        if (done) done(ud, false, res);
        cJSON_Delete(res);
        return;
    }
    c->n = n;
    c->done = done;
    c->ud = ud;
    c->sighup = strcmp(why, "SIGHUP") == 0;
    request(n, why, config_done, c);
}

void tn_reload_sighup(tn_node_t *n)
{
    tn_sd_notify("RELOADING=1");
    tn_reload_config(n, "SIGHUP", NULL, NULL);
}
