/* The policy host's lifecycle: the first load at start, reload triggers (a change in the
 * policy directory, SIGHUP, the control socket), building each generation on libuv's work
 * queue and swapping it in on the loop, persistent state saved to the store, status. */
#include "tn_ctl.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_policy_int.h"

#include <stdio.h>
#include <stdlib.h>

static void limits_of(const tn_config_t *c, tn_policy_limits_t *lim)
{
    lim->memory_max = (size_t)c->policy_memory_max;
    lim->budget_s = c->policy_budget;
    lim->load_budget_s = c->policy_load_budget;
    lim->state_max = (size_t)c->policy_state_max;
}

/* ---- timers (tn.after) ---- */

static void on_timers(uv_timer_t *t);

void tn_policy_timers_arm(tn_policy_t *p)
{
    tn_policy_gen_t *g = p->gen;
    if (p->stopping || !g || g->n_timers == 0) {
        uv_timer_stop(&p->timers);
        return;
    }
    uint64_t now = uv_hrtime() / 1000000, due = UINT64_MAX;
    for (int i = 0; i < g->n_timers; i++)
        if (g->timers[i].due_ms < due) due = g->timers[i].due_ms;
    uv_timer_start(&p->timers, on_timers, due > now ? due - now : 0, 0);
}

static void on_timers(uv_timer_t *t)
{
    tn_policy_t *p = t->data;
    tn_policy_gen_t *g = p->gen;
    if (!g) return;
    uint64_t now = uv_hrtime() / 1000000;
    for (int i = 0; i < g->n_timers;) {
        if (g->timers[i].due_ms > now) {
            i++;
            continue;
        }
        int ref = g->timers[i].fn_ref;
        g->timers[i] = g->timers[--g->n_timers];
        if (p->breaker_open) {
            luaL_unref(g->L, LUA_REGISTRYINDEX, ref);
            continue;
        }
        lua_rawgeti(g->L, LUA_REGISTRYINDEX, ref);
        luaL_unref(g->L, LUA_REGISTRYINDEX, ref);
        /* timers are accounted under on_tick: they are the policy's own housekeeping */
        p->stats[TN_HOOK_on_tick].calls++;
        if (!tn_hook_run(p, TN_HOOK_on_tick, 0, 0)) lua_pop(g->L, 1);
        if (p->gen != g) return; /* cannot happen today; keeps the loop honest */
    }
    tn_policy_timers_arm(p);
}

/* ---- swap ---- */

static void swap_in(tn_policy_t *p, tn_policy_gen_t *g, const char *why)
{
    tn_state_blob_t *blobs = p->gen ? tn_state_export(p->gen) : p->saved;
    if (!p->gen) p->saved = NULL;
    g->host = p;
    tn_state_import(g, blobs);
    tn_state_free(blobs);
    tn_policy_gen_flush_logs(g);
    tn_policy_gen_t *old = p->gen;
    p->gen = g;
    p->generation++;
    p->loaded_at_ms = tn_wall_ms();
    p->breaker_open = false;
    p->consecutive_errors = 0;
    p->last_error[0] = 0;
    tn_policy_gen_free(old);
    tn_policy_timers_arm(p);
    int hooks = 0;
    for (int h = 0; h < TN_HOOK__COUNT; h++) hooks += g->hook_ref[h] != LUA_NOREF;
    tn_info("Policy generation %llu loaded from %s (%s): %d files, %d hooks, %d self-tests passed",
            (unsigned long long)p->generation, p->dir, why, g->n_files, hooks, g->n_tests);
    tn_metric_inc(
        tn_metric_counter("tn_policy_reloads_total{result=\"ok\"}", "Policy loads by result"));
    tn_metric_set(tn_metric_gauge("tn_policy_generation", "Policy generation in force"),
                  (double)p->generation);
}

/* ---- reload ---- */

static void notify(tn_reload_waiter_t *w, bool ok, const char *msg)
{
    while (w) {
        tn_reload_waiter_t *next = w->next;
        if (w->done) w->done(w->ud, ok, msg);
        free(w);
        w = next;
    }
}

static void build_work(uv_work_t *w)
{
    tn_policy_t *p = w->data;
    p->built =
        tn_policy_gen_build(p->dir, &p->lim, p->node->cfg, p->build_err, sizeof p->build_err);
}

static void start_build(tn_policy_t *p);

static void build_done(uv_work_t *w, int status)
{
    tn_policy_t *p = w->data;
    p->building = false;
    tn_reload_waiter_t *waiting = p->waiting;
    p->waiting = NULL;
    if (p->stopping || status != 0) {
        tn_policy_gen_free(p->built);
        p->built = NULL;
        notify(waiting, false, "node is stopping");
        notify(p->next_waiting, false, "node is stopping");
        p->next_waiting = NULL;
        return;
    }
    char msg[700];
    if (p->built) {
        swap_in(p, p->built, p->build_why);
        p->built = NULL;
        p->reloads_ok++;
        snprintf(msg, sizeof msg, "policy generation %llu loaded",
                 (unsigned long long)p->generation);
        notify(waiting, true, msg);
    } else {
        p->reloads_rejected++;
        tn_metric_inc(tn_metric_counter("tn_policy_reloads_total{result=\"rejected\"}",
                                        "Policy loads by result"));
        snprintf(p->last_error, sizeof p->last_error, "%s", p->build_err);
        if (p->gen)
            snprintf(msg, sizeof msg, "%s; policy generation %llu is still active", p->build_err,
                     (unsigned long long)p->generation);
        else
            snprintf(msg, sizeof msg, "%s; no policy is active (C defaults apply)", p->build_err);
        tn_error("Policy reload (%s) rejected: %s", p->build_why, msg);
        notify(waiting, false, msg);
    }
    if (p->rebuild_pending) {
        p->rebuild_pending = false;
        start_build(p);
    }
}

static void start_build(tn_policy_t *p)
{
    p->building = true;
    p->waiting = p->next_waiting;
    p->next_waiting = NULL;
    p->work.data = p;
    if (uv_queue_work(p->loop, &p->work, build_work, build_done) != 0) {
        build_work(&p->work); /* no threadpool: build here */
        build_done(&p->work, 0);
    }
}

void tn_policy_reload(tn_policy_t *p, const char *why,
                      void (*done)(void *ud, bool ok, const char *msg), void *ud)
{
    if (p->stopping) {
        if (done) done(ud, false, "node is stopping");
        return;
    }
    tn_reload_waiter_t *w = calloc(1, sizeof(*w));
    if (w) {
        w->done = done;
        w->ud = ud;
        w->next = p->next_waiting;
        p->next_waiting = w;
    } else if (done) {
        done(ud, false, "out of memory");
        return;
    }
    if (p->building) {
        p->rebuild_pending = true; /* the files may have changed since this build started */
        return;
    }
    snprintf(p->build_why, sizeof p->build_why, "%s", why);
    start_build(p);
}

static void on_debounced(uv_timer_t *t)
{
    tn_policy_reload(t->data, "directory change", NULL, NULL);
}

static void on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    tn_policy_t *p = h->data;
    if (status < 0) return;
    size_t l = filename ? strlen(filename) : 0;
    if (filename && (l < 4 || strcmp(filename + l - 4, ".lua") != 0)) return; /* editor files */
    /* Editors save by writing a temp file and renaming it: wait for the burst to end. */
    uv_timer_start(&p->debounce, on_debounced, tn_config_ms(p->node->cfg->policy_reload_debounce),
                   0);
}

static void on_tick_timer(uv_timer_t *t)
{
    tn_policy_t *p = t->data;
    tn_node_policy_tick(p->node);
    tn_policy_tick(p);
    tn_policy_save_state(p);
}

/* ---- state in the store ---- */

static int saved_row(void *ud, sqlite3_stmt *st)
{
    tn_policy_t *p = ud;
    const void *data = sqlite3_column_blob(st, 2);
    size_t len = (size_t)sqlite3_column_bytes(st, 2);
    tn_state_blob_t *b = malloc(sizeof(*b) + len);
    if (!b) return 1;
    snprintf(b->key, sizeof b->key, "%s", (const char *)sqlite3_column_text(st, 0));
    b->version = sqlite3_column_int(st, 1);
    b->len = len;
    if (len) memcpy(b->data, data, len);
    b->next = p->saved;
    p->saved = b;
    return 0;
}

void tn_policy_save_state(tn_policy_t *p)
{
    if (!p || !p->gen || !p->node->store) return;
    tn_state_blob_t *blobs = tn_state_export(p->gen);
    for (tn_state_blob_t *b = blobs; b; b = b->next)
        tn_store_exec(p->node->store,
                      "INSERT INTO policy_state(key,version,data,saved_at) VALUES(?,?,?,?) "
                      "ON CONFLICT(key) DO UPDATE SET version=excluded.version,"
                      "data=excluded.data,saved_at=excluded.saved_at",
                      "tibi", b->key, (int64_t)b->version, b->data, b->len, (int64_t)tn_wall_ms());
    tn_state_free(blobs);
}

/* ---- lifecycle ---- */

int tn_policy_start(tn_policy_t **out, tn_node_t *n, char *err, size_t errlen)
{
    const tn_config_t *c = n->cfg;
    tn_policy_t *p = calloc(1, sizeof(*p));
    if (!p) return TN_ENOMEM;
    p->node = n;
    p->loop = n->loop;
    snprintf(p->dir, sizeof p->dir, "%s", c->policy_dir);
    limits_of(c, &p->lim);
    if (c->policy_record[0] && !(p->record = fopen(c->policy_record, "a"))) {
        snprintf(err, errlen, "cannot open policy_record file %s", c->policy_record);
        free(p);
        return TN_EIO;
    }
    if (n->store)
        tn_store_query(n->store, "SELECT key, version, data FROM policy_state", saved_row, p);
    uv_timer_init(n->loop, &p->debounce);
    uv_timer_init(n->loop, &p->tick);
    uv_timer_init(n->loop, &p->timers);
    p->debounce.data = p->tick.data = p->timers.data = p; /* SIGHUP: tn_reload.c */
    uint64_t tick = tn_config_ms(c->policy_tick_interval);
    uv_timer_start(&p->tick, on_tick_timer, tick, tick);
    if (uv_fs_event_init(n->loop, &p->watch) == 0) {
        p->watch_init = true;
        p->watch.data = p;
        p->watching = uv_fs_event_start(&p->watch, on_dir_event, p->dir, 0) == 0;
        if (!p->watching)
            tn_warn("Policy directory %s cannot be watched; reload with SIGHUP", p->dir);
    }
    /* The first generation is built here, before any peer is dialed. A broken directory does
     * not stop the node: C defaults apply and the error is logged. */
    char berr[512];
    tn_policy_gen_t *g = tn_policy_gen_build(p->dir, &p->lim, c, berr, sizeof berr);
    if (g) {
        swap_in(p, g, "start");
    } else {
        snprintf(p->last_error, sizeof p->last_error, "%s", berr);
        tn_error("Policy load failed: %s; C defaults apply until the policy is fixed", berr);
    }
    *out = p;
    return TN_OK;
}

static void on_closed(uv_handle_t *h)
{
    tn_policy_t *p = h->data;
    p->n_open_handles--;
}

void tn_policy_free(tn_policy_t *p)
{
    if (!p) return;
    tn_policy_gen_free(p->gen);
    tn_policy_gen_free(p->built);
    tn_state_free(p->saved);
    free(p);
}

void tn_policy_stop(tn_policy_t *p)
{
    if (!p) return;
    p->stopping = true;
    tn_policy_gen_free(p->gen);
    p->gen = NULL;
    tn_state_free(p->saved);
    p->saved = NULL;
    if (p->record) fclose(p->record);
    p->record = NULL;
    notify(p->next_waiting, false, "node is stopping");
    notify(p->waiting, false, "node is stopping"); /* before the control socket goes */
    p->next_waiting = p->waiting = NULL;
    p->n_open_handles = 3 + (p->watch_init ? 1 : 0);
    uv_close((uv_handle_t *)&p->debounce, on_closed);
    uv_close((uv_handle_t *)&p->tick, on_closed);
    uv_close((uv_handle_t *)&p->timers, on_closed);
    if (p->watch_init) uv_close((uv_handle_t *)&p->watch, on_closed);
}

/* ---- status and offline check ---- */

void tn_policy_status(tn_policy_t *p, cJSON *o)
{
    cJSON_AddNumberToObject(o, "generation", (double)p->generation);
    cJSON_AddStringToObject(o, "dir", p->dir);
    cJSON_AddBoolToObject(o, "active", p->gen != NULL);
    cJSON_AddNumberToObject(o, "loaded_at", (double)p->loaded_at_ms / 1000.0);
    cJSON_AddStringToObject(o, "breaker", p->breaker_open ? "open" : "closed");
    cJSON_AddNumberToObject(o, "consecutive_errors", p->consecutive_errors);
    cJSON_AddStringToObject(o, "last_error", p->last_error);
    cJSON_AddBoolToObject(o, "building", p->building);
    cJSON_AddNumberToObject(o, "reloads_ok", (double)p->reloads_ok);
    cJSON_AddNumberToObject(o, "reloads_rejected", (double)p->reloads_rejected);
    int files, tests;
    tn_policy_gen_counts(p->gen, &files, &tests);
    cJSON_AddNumberToObject(o, "files", files);
    cJSON_AddNumberToObject(o, "self_tests", tests);
    cJSON_AddNumberToObject(o, "memory_bytes", p->gen ? (double)p->gen->mem.used : 0);
    cJSON *hooks = cJSON_AddObjectToObject(o, "hooks");
    for (int h = 0; h < TN_HOOK__COUNT; h++) {
        cJSON *x = cJSON_AddObjectToObject(hooks, tn_hook_name((tn_hook_t)h));
        bool def = tn_policy_gen_has(p->gen, (tn_hook_t)h);
        cJSON_AddBoolToObject(x, "defined", def);
        if (def) cJSON_AddStringToObject(x, "file", p->gen->hook_file[h]);
        cJSON_AddNumberToObject(x, "calls", (double)p->stats[h].calls);
        cJSON_AddNumberToObject(x, "errors", (double)p->stats[h].errors);
        cJSON_AddNumberToObject(x, "fallbacks", (double)p->stats[h].fallbacks);
    }
}

bool tn_policy_building(const tn_policy_t *p)
{
    return p && p->building;
}

void tn_policy_config_changed(tn_policy_t *p)
{
    if (!p || p->stopping) return;
    limits_of(p->node->cfg, &p->lim); /* safe: no build in flight (tn_reload.c waits) */
    uint64_t tick = tn_config_ms(p->node->cfg->policy_tick_interval);
    if (uv_timer_get_repeat(&p->tick) != tick) uv_timer_start(&p->tick, on_tick_timer, tick, tick);
}

void tn_policy_collect(tn_policy_t *p)
{
    if (!p) return;
    for (int h = 0; h < TN_HOOK__COUNT; h++)
        tn_metric_set(tn_metric_counterf("Policy hook calls, errors and C-default fallbacks",
                                         "tn_policy_hook_calls_total{hook=\"%s\"}",
                                         tn_hook_name((tn_hook_t)h)),
                      (double)p->stats[h].calls);
    tn_metric_set(tn_metric_gauge("tn_policy_breaker_open",
                                  "1 while the policy circuit breaker is open (C defaults apply)"),
                  p->breaker_open ? 1 : 0);
    tn_metric_set(tn_metric_gauge("tn_policy_active", "1 while a policy generation is in force"),
                  p->gen ? 1 : 0);
}

int tn_policy_check(const char *dir, const void *cfg, char *err, size_t errlen)
{
    tn_policy_limits_t lim;
    limits_of(cfg, &lim);
    tn_policy_gen_t *g = tn_policy_gen_build(dir, &lim, cfg, err, errlen);
    if (!g) return TN_EINVAL;
    int hooks = 0;
    for (int h = 0; h < TN_HOOK__COUNT; h++) hooks += g->hook_ref[h] != LUA_NOREF;
    snprintf(err, errlen, "%s: ok (%d files, %d hooks, %d self-tests passed)", dir, g->n_files,
             hooks, g->n_tests);
    /* print what the policies logged while loading */
    for (int i = 0; i < g->n_logs; i++) fprintf(stderr, "policy: %s\n", g->logs[i].text);
    tn_policy_gen_free(g);
    return TN_OK;
}
