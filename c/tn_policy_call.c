/* The one place the core calls into Lua: budget, traceback, error accounting (a counter per
 * hook, one log line per error kind, never one per call), the circuit breaker, and the
 * optional recording of every decision for the replay kit. */
#include "tn_chain.h"
#include "tn_disc.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_policy_int.h"

#include <stdio.h>

static tn_metric_t *metric(tn_hook_t h, const char *what)
{
    return tn_metric_counterf("Policy hook calls, errors and C-default fallbacks",
                              "tn_policy_hook_%s_total{hook=\"%s\"}", what, tn_hook_name(h));
}

bool tn_policy_log_once(tn_policy_gen_t *g, int level, const char *msg)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = msg; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    for (int i = 0; i < g->n_seen; i++)
        if (g->seen[i] == h) return false;
    if (g->n_seen < TN_POLICY_ERRKINDS_MAX) g->seen[g->n_seen++] = h;
    tn_policy_glog(g, level, msg);
    return true;
}

bool tn_hook_begin(tn_policy_t *p, tn_hook_t h, lua_State **L, int *base)
{
    return p->gen && tn_hook_begin_ref(p, h, p->gen->hook_ref[h], L, base);
}

bool tn_hook_begin_ref(tn_policy_t *p, tn_hook_t h, int ref, lua_State **L, int *base)
{
    tn_policy_gen_t *g = p->gen;
    if (!g) return false;
    g->quality_last = false; /* a decision without a call records fresh values */
    if (ref == LUA_NOREF) return false;
    if (p->breaker_open) {
        tn_hook_fallback(p, h); /* the policy would decide, but may not */
        return false;
    }
    *L = g->L;
    *base = lua_gettop(g->L);
    lua_rawgeti(g->L, LUA_REGISTRYINDEX, ref);
    return true;
}

/* Every failure means the C default decides: counted as an error and a fallback. */
static void failed(tn_policy_t *p, tn_hook_t h, const char *why)
{
    tn_policy_gen_t *g = p->gen;
    p->stats[h].errors++;
    tn_hook_fallback(p, h);
    tn_metric_inc(metric(h, "errors"));
    char msg[600];
    snprintf(msg, sizeof msg,
             "hook %s failed: %s (C default used; repeats are counted, not logged)",
             tn_hook_name(h), why);
    tn_policy_log_once(g, TN_LOG_WARN, msg);
    snprintf(p->last_error, sizeof p->last_error, "%s: %s", tn_hook_name(h), why);
    if (++p->consecutive_errors >= (uint32_t)p->node->cfg->policy_breaker_errors &&
        !p->breaker_open) {
        p->breaker_open = true;
        tn_metric_inc(tn_metric_counter("tn_policy_breaker_trips_total",
                                        "Times the policy circuit breaker opened"));
        tn_error("Policy circuit breaker open after %u consecutive hook errors: C defaults apply "
                 "until a policy reload succeeds",
                 p->consecutive_errors);
    }
}

/* One call in TN_HOOK_TIMING_EVERY (the first included) is timed into a latency histogram
 * per hook: two clock reads on every call would cost more than some hooks do. */
#define TN_HOOK_TIMING_EVERY 64

static void observe_latency(tn_hook_t h, uint64_t ns)
{
    static tn_metric_t *hist[TN_HOOK__COUNT];
    static const double bounds[] = {1e-6,   2.5e-6, 5e-6,   1e-5, 2.5e-5, 5e-5,   1e-4, 2.5e-4,
                                    5e-4,   1e-3,   2.5e-3, 5e-3, 1e-2,   2.5e-2, 5e-2, 0.1};
    if (!hist[h]) {
        char name[TN_METRIC_NAME_MAX];
        snprintf(name, sizeof name, "tn_policy_hook_duration_seconds{hook=\"%s\"}",
                 tn_hook_name(h));
        hist[h] = tn_metric_histogram(name, "Policy hook call time, sampled 1 in 64 calls",
                                      bounds, (int)TN_ARRAY_LEN(bounds));
    }
    tn_metric_observe(hist[h], (double)ns / 1e9);
}

bool tn_hook_run(tn_policy_t *p, tn_hook_t h, int nargs, int nres)
{
    tn_policy_gen_t *g = p->gen;
    bool timed = p->stats[h].calls++ % TN_HOOK_TIMING_EVERY == 0;
    uint64_t t0 = timed ? uv_hrtime() : 0;
    int rc = tn_policy_pcall(g, nargs, nres, g->lim.budget_s);
    if (timed) observe_latency(h, uv_hrtime() - t0);
    tn_policy_peer_clear(g);
    if (rc != LUA_OK) {
        const char *why = lua_tostring(g->L, -1);
        if (rc == LUA_ERRMEM) why = "out of memory (policy_memory_max reached)";
        failed(p, h, why ? why : "error");
        return false;
    }
    p->consecutive_errors = 0;
    return true;
}

void tn_hook_bad_result(tn_policy_t *p, tn_hook_t h, const char *what)
{
    failed(p, h, what);
}

void tn_hook_end(tn_policy_t *p, lua_State *L, int base)
{
    (void)p;
    lua_settop(L, base);
}

void tn_hook_fallback(tn_policy_t *p, tn_hook_t h)
{
    p->stats[h].fallbacks++;
    tn_metric_inc(metric(h, "fallbacks"));
}

void tn_json_str(char *out, size_t n, const char *s)
{
    size_t o = 0;
    if (n < 3) return;
    out[o++] = '"';
    for (; *s && o + 7 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, n - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = 0;
}

/* One JSON line per decision: {"t":ms,"hook":..,"peer":{..},"args":..,"result":..}. The
 * replay kit (tests/lib/policykit.lua) feeds these to an edited policy. */
void tn_hook_record(tn_policy_t *p, tn_hook_t h, const tn_peer_view_t *v, const char *args_json,
                    const char *result_json)
{
    if (!p->record) return;
    FILE *f = p->record;
    fprintf(f, "{\"t\":%llu,\"hook\":\"%s\"", (unsigned long long)tn_wall_ms(), tn_hook_name(h));
    if (v && (v->s || v->p || v->addr)) {
        const tn_session_t *s = v->s;
        const tn_addr_t *a = v->addr ? v->addr : s ? &s->remote : &v->p->addr;
        char addr[TN_ADDR_STRLEN], ip[TN_ADDR_STRLEN], id[2 * TN_ID_LEN + 1] = "";
        tn_addr_fmt(a, addr);
        tn_addr_fmt_ip(a, ip);
        if (v->p) tn_hex(id, v->p->id, TN_ID_LEN);
        fprintf(f, ",\"peer\":{\"addr\":\"%s\",\"ip\":\"%s\",\"id\":\"%s\"", addr, ip, id);
        if (s)
            fprintf(f,
                    ",\"dir\":\"%s\",\"outbound\":%s,\"masternode\":%s,\"rtt_ms\":%.3f,"
                    "\"pings\":%u,\"pongs\":%u,\"late\":%u,\"missed\":%u,\"missed_run\":%u,"
                    "\"bytes_in\":%llu,\"bytes_out\":%llu,\"score\":%.6g",
                    s->outbound ? "out" : "in", s->outbound ? "true" : "false",
                    s->state == TN_SS_OPEN && tn_chain_is_masternode(p->node, s->their_id)
                        ? "true"
                        : "false",
                    s->rtt_ms, s->pings, s->pongs, s->late, s->missed, s->missed_run,
                    (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out, s->score);
        if (s) {
            bool open = s->state == TN_SS_OPEN;
            fprintf(f,
                    ",\"connected\":%s,\"connected_s\":%.3f,\"height\":%llu,\"msgs_in\":%llu,"
                    "\"msgs_out\":%llu",
                    open ? "true" : "false",
                    open ? (double)(uv_now(s->net->loop) - s->opened_ms) / 1000.0 : 0.0,
                    (unsigned long long)(s->hello ? s->their_height : 0),
                    (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out);
            if (s->hello) {
                char name[2 * TN_NAME_MAX + 8];
                tn_json_str(name, sizeof name, s->their_name);
                fprintf(f, ",\"name\":%s", name);
            }
        }
        if (v->p) {
            fprintf(f, ",\"sessions\":%u,\"disconnects\":%u", v->p->sessions, v->p->disconnects);
            if (v->p->tag[0]) {
                char tag[2 * sizeof v->p->tag + 8];
                tn_json_str(tag, sizeof tag, v->p->tag);
                fprintf(f, ",\"tag\":%s", tag);
            }
        }
        /* quality across sessions (tn_quality.c), so replays can rebuild scores */
        const uint8_t *qid = v->p                                ? v->p->id
                             : s && s->state == TN_SS_OPEN ? s->their_id
                                                           : v->id;
        /* the values the policy read in this call, when it read any: computed again they
         * could differ (uptime_share moves with the wall clock), and a replay of the
         * record would then not give the recorded result */
        double q[TN_QUALITY_NFIELDS];
        if (p->gen && p->gen->quality_last) {
            memcpy(q, p->gen->quality, sizeof q);
            p->gen->quality_last = false;
        } else if (qid)
            tn_quality_values(p->node, s, qid, q);
        for (int i = 0; qid && i < TN_QUALITY_NFIELDS; i++)
            fprintf(f, ",\"%s\":%.6g", TN_QUALITY_FIELDS[i], q[i]);
        fprintf(f, ",\"strikes\":%u}", tn_strikes_total(p->node, a));
    }
    fprintf(f, ",\"args\":%s,\"result\":%s}\n", args_json ? args_json : "[]",
            result_json ? result_json : "null");
    fflush(f);
}
