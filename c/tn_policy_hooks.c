/* Typed hook calls: push arguments, call through the one helper, validate the result, and
 * fall back to the built-in C default on any failure. The C defaults read the same config
 * keys as the shipped policies, so "no policy" behaves like the defaults in policies/. */
#include "tn_log.h"
#include "tn_node.h"
#include "tn_policy_int.h"

#include <math.h>
#include <stdio.h>

#define MAX_DELAY_S (7 * 86400.0)      /* longest redial delay a policy may ask for */
#define MAX_BAN_S (10 * 365 * 86400.0) /* longest ban */

/* ---- score ---- */

double tn_policy_score(tn_policy_t *p, const tn_peer_view_t *v)
{
    lua_State *L;
    int base;
    double score = 0; /* C default: every peer equal */
    if (!tn_hook_begin(p, TN_HOOK_score, &L, &base)) return score;
    tn_policy_peer_push(p->gen, v);
    if (tn_hook_run(p, TN_HOOK_score, 1, 1)) {
        int isnum = 0;
        double x = lua_tonumberx(L, -1, &isnum);
        if (isnum && isfinite(x))
            score = x;
        else {
            char why[96];
            snprintf(why, sizeof why, "returned %s, expected a finite number",
                     isnum ? "NaN or infinity" : luaL_typename(L, -1));
            tn_hook_bad_result(p, TN_HOOK_score, why);
        }
    }
    tn_hook_end(p, L, base);
    if (p->record) {
        char res[64];
        snprintf(res, sizeof res, "%.17g", score);
        tn_hook_record(p, TN_HOOK_score, v, NULL, res);
    }
    return score;
}

/* ---- reconnect ---- */

uint64_t tn_policy_reconnect_ms(tn_policy_t *p, const tn_peer_view_t *v, uint32_t attempt,
                                const char *reason, bool *give_up)
{
    const tn_config_t *cfg = p->node->cfg;
    lua_State *L;
    int base;
    uint64_t ms = tn_backoff_ms(cfg, attempt, give_up); /* C default */
    if (tn_hook_begin(p, TN_HOOK_reconnect, &L, &base)) {
        tn_policy_peer_push(p->gen, v);
        lua_pushinteger(L, attempt);
        lua_pushstring(L, reason);
        if (tn_hook_run(p, TN_HOOK_reconnect, 3, 1)) {
            int isnum = 0;
            double s = lua_tonumberx(L, -1, &isnum);
            if (lua_isnil(L, -1) || (lua_isboolean(L, -1) && !lua_toboolean(L, -1))) {
                *give_up = true;
                ms = tn_config_ms(cfg->reconnect_cooldown);
            } else if (isnum && s >= 0 && s <= MAX_DELAY_S) {
                *give_up = false;
                ms = tn_config_ms(s);
            } else {
                tn_hook_bad_result(p, TN_HOOK_reconnect,
                                   "expected seconds in [0, 604800] or false to give up");
            }
        }
        tn_hook_end(p, L, base);
    }
    if (p->record) {
        char args[160], r[64], res[80];
        tn_json_str(r, sizeof r, reason);
        snprintf(args, sizeof args, "[%u,%s]", attempt, r);
        if (*give_up)
            snprintf(res, sizeof res, "false");
        else
            snprintf(res, sizeof res, "%.6g", (double)ms / 1000.0);
        tn_hook_record(p, TN_HOOK_reconnect, v, args, res);
    }
    return ms;
}

/* ---- misbehaviour ---- */

static tn_verdict_t default_verdict(const tn_config_t *cfg, const char *kind, uint32_t strikes)
{
    tn_verdict_t v = {TN_VERDICT_DISCONNECT, 0};
    if (strcmp(kind, "version") == 0) return v; /* a version mismatch alone is never a ban */
    if (strikes >= (uint32_t)cfg->strike_limit) {
        v.action = TN_VERDICT_BAN;
        v.ban_s = cfg->ban_temporary;
    } else if (strcmp(kind, "message") == 0 || strcmp(kind, "flood") == 0) {
        v.action = TN_VERDICT_IGNORE; /* the message (the excess) is dropped; the session stays */
    }
    return v;
}

tn_verdict_t tn_policy_misbehavior(tn_policy_t *p, const tn_peer_view_t *pv, const char *kind,
                                   const char *detail, uint32_t strikes)
{
    tn_verdict_t v = default_verdict(p->node->cfg, kind, strikes);
    lua_State *L;
    int base;
    if (tn_hook_begin(p, TN_HOOK_on_misbehavior, &L, &base)) {
        tn_policy_peer_push(p->gen, pv);
        lua_pushstring(L, kind);
        lua_pushstring(L, detail);
        lua_pushinteger(L, strikes);
        if (tn_hook_run(p, TN_HOOK_on_misbehavior, 4, 2)) {
            const char *a = lua_tostring(L, -2);
            int isnum = 0;
            double s = lua_tonumberx(L, -1, &isnum);
            if (a && strcmp(a, "ignore") == 0)
                v = (tn_verdict_t){TN_VERDICT_IGNORE, 0};
            else if (a && strcmp(a, "disconnect") == 0)
                v = (tn_verdict_t){TN_VERDICT_DISCONNECT, 0};
            else if (a && strcmp(a, "ban") == 0 && isnum && s > 0 && s <= MAX_BAN_S)
                v = (tn_verdict_t){TN_VERDICT_BAN, s};
            else {
                tn_hook_bad_result(p, TN_HOOK_on_misbehavior,
                                   "expected 'ignore', 'disconnect' or 'ban', seconds");
            }
        }
        tn_hook_end(p, L, base);
    }
    if (p->record) {
        char args[400], k[40], d[300], res[64];
        static const char *const names[] = {"ignore", "disconnect", "ban"};
        tn_json_str(k, sizeof k, kind);
        tn_json_str(d, sizeof d, detail);
        snprintf(args, sizeof args, "[%s,%s,%u]", k, d, strikes);
        snprintf(res, sizeof res, "[\"%s\",%.6g]", names[v.action], v.ban_s);
        tn_hook_record(p, TN_HOOK_on_misbehavior, pv, args, res);
    }
    return v;
}

/* ---- health ---- */

bool tn_policy_health_close(tn_policy_t *p, const tn_peer_view_t *v, const char *event)
{
    const tn_session_t *s = v->s;
    bool close = strcmp(event, "missed") == 0 && s &&
                 s->missed_run >= (uint32_t)p->node->cfg->missed_pongs_close;
    lua_State *L;
    int base;
    if (tn_hook_begin(p, TN_HOOK_health, &L, &base)) {
        tn_policy_peer_push(p->gen, v);
        lua_pushstring(L, event);
        if (tn_hook_run(p, TN_HOOK_health, 2, 1)) {
            const char *r = lua_tostring(L, -1);
            if (r && strcmp(r, "close") == 0)
                close = true;
            else if (r && strcmp(r, "tolerate") == 0)
                close = false;
            else {
                tn_hook_bad_result(p, TN_HOOK_health, "expected 'tolerate' or 'close'");
            }
        }
        tn_hook_end(p, L, base);
    }
    if (p->record) {
        char args[40];
        snprintf(args, sizeof args, "[\"%s\"]", event);
        tn_hook_record(p, TN_HOOK_health, v, args, close ? "\"close\"" : "\"tolerate\"");
    }
    return close;
}

/* ---- tick ---- */

void tn_policy_tick(tn_policy_t *p)
{
    lua_State *L;
    int base;
    if (!tn_hook_begin(p, TN_HOOK_on_tick, &L, &base)) return;
    tn_hook_run(p, TN_HOOK_on_tick, 0, 0);
    tn_hook_end(p, L, base);
}

/* ---- schedule ---- */

int tn_policy_schedule(tn_policy_t *p, uint64_t slot, const uint8_t (*set)[32], int n, int dflt)
{
    lua_State *L;
    int base, idx = dflt;
    if (!tn_hook_begin(p, TN_HOOK_schedule, &L, &base)) return idx;
    char hex[65];
    lua_pushinteger(L, (lua_Integer)slot);
    lua_createtable(L, n, 0); /* once per slot: a fresh list is fine here */
    for (int i = 0; i < n; i++) {
        tn_hex(hex, set[i], 32);
        lua_pushstring(L, hex);
        lua_rawseti(L, -2, i + 1);
    }
    if (tn_hook_run(p, TN_HOOK_schedule, 2, 1)) {
        const char *r = lua_tostring(L, -1);
        int found = -1;
        for (int i = 0; r && i < n && found < 0; i++) {
            tn_hex(hex, set[i], 32);
            if (strcmp(hex, r) == 0) found = i;
        }
        if (found >= 0)
            idx = found;
        else
            tn_hook_bad_result(p, TN_HOOK_schedule, "expected the id of an active masternode");
    }
    tn_hook_end(p, L, base);
    if (p->record) {
        char args[40], res[16];
        snprintf(args, sizeof args, "[%llu]", (unsigned long long)slot);
        snprintf(res, sizeof res, "%d", idx);
        tn_hook_record(p, TN_HOOK_schedule, NULL, args, res);
    }
    return idx;
}

/* ---- failover ---- */

int tn_policy_failover(tn_policy_t *p, const tn_addr_t *current, uint64_t height,
                       const tn_peer_view_t *cands, int n, int dflt)
{
    lua_State *L;
    int base, pick = dflt;
    if (!tn_hook_begin(p, TN_HOOK_failover, &L, &base)) return pick;
    char a[TN_ADDR_STRLEN];
    lua_createtable(L, 0, 3);
    if (current) {
        tn_addr_fmt(current, a);
        lua_pushstring(L, a);
        lua_setfield(L, -2, "current");
    }
    lua_pushinteger(L, (lua_Integer)height);
    lua_setfield(L, -2, "height");
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const tn_session_t *s = cands[i].s;
        lua_createtable(L, 0, 5);
        tn_addr_fmt(&s->remote, a);
        lua_pushstring(L, a);
        lua_setfield(L, -2, "addr");
        lua_pushnumber(L, s->score);
        lua_setfield(L, -2, "score");
        lua_pushinteger(L, (lua_Integer)s->their_height);
        lua_setfield(L, -2, "height");
        lua_pushnumber(L, s->rtt_ms);
        lua_setfield(L, -2, "rtt_ms");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "candidates");
    if (tn_hook_run(p, TN_HOOK_failover, 1, 1)) {
        const char *r = lua_tostring(L, -1);
        int found = -1;
        for (int i = 0; r && i < n && found < 0; i++) {
            tn_addr_fmt(&cands[i].s->remote, a);
            if (strcmp(a, r) == 0) found = i;
        }
        if (found >= 0)
            pick = found;
        else if (!lua_isnil(L, -1))
            tn_hook_bad_result(p, TN_HOOK_failover, "expected the addr of a candidate or nil");
    }
    tn_hook_end(p, L, base);
    return pick;
}
