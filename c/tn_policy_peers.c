/* Typed calls of the discovery and eviction hooks (discovery_order, rank_candidates, evict):
 * arguments as plain tables (rare events: a fresh table per call is fine), results checked
 * against what was offered, and the C default on any failure, through the one helper of
 * tn_policy_call.c. The C defaults behave like policies/discovery.lua and eviction.lua. */
#include "tn_chain.h"
#include "tn_disc.h"
#include "tn_geoip.h"
#include "tn_log.h"
#include "tn_node.h"
#include "tn_policy_int.h"

#include <stdio.h>

#define DEMOTE_FAILURES 3 /* discovery.lua: a source failing 3 times in a row goes last */

/* ---- discovery_order ---- */

static int default_order(const bool *available, const uint32_t *failures, int n, int *order)
{
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if (available[i] && (failures[i] >= DEMOTE_FAILURES) == (pass == 1)) order[k++] = i;
    if (k == 0)
        for (int i = 0; i < n; i++) order[k++] = i; /* nothing looks usable: try all */
    return k;
}

int tn_policy_discovery_order(tn_policy_t *p, int connected, int min_peers,
                              const char *const *names, const bool *available,
                              const uint32_t *failures, int n, int *order)
{
    int k = default_order(available, failures, n, order);
    lua_State *L;
    int base;
    if (!tn_hook_begin(p, TN_HOOK_discovery_order, &L, &base)) return k;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, connected);
    lua_setfield(L, -2, "connected");
    lua_pushinteger(L, min_peers);
    lua_setfield(L, -2, "min_peers");
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushboolean(L, available[i]);
        lua_setfield(L, -2, "available");
        lua_pushinteger(L, failures[i]);
        lua_setfield(L, -2, "failures");
        lua_setfield(L, -2, names[i]);
    }
    lua_setfield(L, -2, "sources");
    if (tn_hook_run(p, TN_HOOK_discovery_order, 1, 1)) {
        int got[16], m = 0;
        bool ok = lua_istable(L, -1), seen[16] = {false};
        for (lua_Integer j = 1; ok && j <= 16; j++) {
            lua_rawgeti(L, -1, j);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            int idx = -1;
            for (int i = 0; name && i < n; i++)
                if (strcmp(name, names[i]) == 0) idx = i;
            lua_pop(L, 1);
            if (idx < 0) {
                ok = false;
                break;
            }
            if (!seen[idx]) got[m++] = idx; /* a repeated name adds nothing */
            seen[idx] = true;
        }
        if (ok) {
            memcpy(order, got, sizeof(int) * (size_t)m);
            k = m;
        } else {
            tn_hook_bad_result(p, TN_HOOK_discovery_order,
                               "expected a list of source names: seeds, api, exchange, cache");
        }
    }
    tn_hook_end(p, L, base);
    return k;
}

/* ---- rank_candidates ---- */

int tn_policy_rank_candidates(tn_policy_t *p, const tn_policy_cand_t *c, int n, const int *dflt,
                              int n_dflt, int *order)
{
    memcpy(order, dflt, sizeof(int) * (size_t)n_dflt);
    int k = n_dflt;
    lua_State *L;
    int base;
    if (n == 0 || !tn_hook_begin(p, TN_HOOK_rank_candidates, &L, &base)) return k;
    char a[TN_ADDR_STRLEN];
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 7);
        tn_addr_fmt(&c[i].addr, a);
        lua_pushstring(L, a);
        lua_setfield(L, -2, "addr");
        tn_addr_fmt_ip(&c[i].addr, a);
        lua_pushstring(L, a);
        lua_setfield(L, -2, "ip");
        lua_pushboolean(L, c[i].masternode);
        lua_setfield(L, -2, "masternode");
        lua_pushstring(L, c[i].source);
        lua_setfield(L, -2, "source");
        lua_pushinteger(L, c[i].failures);
        lua_setfield(L, -2, "failures");
        lua_pushnumber(L, c[i].score);
        lua_setfield(L, -2, "score");
        lua_pushnumber(L, c[i].last_success);
        lua_setfield(L, -2, "last_success");
        if (c[i].asn) {
            lua_pushinteger(L, c[i].asn);
            lua_setfield(L, -2, "asn");
        }
        if (c[i].country[0]) {
            lua_pushstring(L, c[i].country);
            lua_setfield(L, -2, "country");
        }
        lua_rawseti(L, -2, i + 1);
    }
    if (tn_hook_run(p, TN_HOOK_rank_candidates, 1, 1)) {
        bool ok = lua_istable(L, -1);
        int m = 0;
        /* Names are matched back to candidates; the list is at most TN_RANK_MAX long, so a
         * scan per name is cheap next to the dial it leads to. */
        for (lua_Integer j = 1; ok && j <= n; j++) {
            lua_rawgeti(L, -1, j);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            int idx = -1;
            tn_addr_t x;
            if (s && tn_addr_parse(s, &x) == TN_OK)
                for (int i = 0; i < n && idx < 0; i++)
                    if (tn_addr_eq(&x, &c[i].addr)) idx = i;
            lua_pop(L, 1);
            if (idx < 0) {
                ok = false;
                break;
            }
            bool dup = false;
            for (int i = 0; i < m && !dup; i++) dup = order[i] == idx;
            if (!dup) order[m++] = idx;
        }
        if (ok) {
            k = m;
        } else {
            memcpy(order, dflt, sizeof(int) * (size_t)n_dflt);
            tn_hook_bad_result(p, TN_HOOK_rank_candidates,
                               "expected a list of candidate addresses (\"IP:port\" strings)");
        }
    }
    tn_hook_end(p, L, base);
    return k;
}

/* ---- evict ---- */

/* One connection as plain data: the peer object's fields that matter for eviction. */
static void push_session(lua_State *L, tn_node_t *n, const tn_session_t *s, bool newcomer)
{
    char a[TN_ADDR_STRLEN > 65 ? TN_ADDR_STRLEN : 65];
    bool open = s->state == TN_SS_OPEN;
    lua_createtable(L, 0, 24);
    tn_addr_fmt(&s->remote, a);
    lua_pushstring(L, a);
    lua_setfield(L, -2, "addr");
    tn_addr_fmt_ip(&s->remote, a);
    lua_pushstring(L, a);
    lua_setfield(L, -2, "ip");
    tn_hex(a, s->their_id, TN_ID_LEN);
    lua_pushstring(L, a);
    lua_setfield(L, -2, "id");
    if (s->hello) {
        lua_pushstring(L, s->their_name);
        lua_setfield(L, -2, "name");
    }
    lua_pushstring(L, s->outbound ? "out" : "in");
    lua_setfield(L, -2, "dir");
    lua_pushboolean(L, s->outbound);
    lua_setfield(L, -2, "outbound");
    lua_pushboolean(L, open && tn_chain_is_masternode(n, s->their_id));
    lua_setfield(L, -2, "masternode");
    lua_pushnumber(L, open && !newcomer ? (double)(uv_now(n->loop) - s->opened_ms) / 1000.0 : 0);
    lua_setfield(L, -2, "connected_s");
    lua_pushnumber(L, s->rtt_ms);
    lua_setfield(L, -2, "rtt_ms");
    lua_pushinteger(L, s->pings);
    lua_setfield(L, -2, "pings");
    lua_pushinteger(L, s->pongs);
    lua_setfield(L, -2, "pongs");
    lua_pushinteger(L, s->late);
    lua_setfield(L, -2, "late");
    lua_pushinteger(L, s->missed);
    lua_setfield(L, -2, "missed");
    lua_pushnumber(L, s->score);
    lua_setfield(L, -2, "score");
    lua_pushinteger(L, s->hello ? (lua_Integer)s->their_height : 0);
    lua_setfield(L, -2, "height");
    tn_geo_t geo;
    if (n->disc && tn_geoip_lookup(n->disc->geo, &s->remote, &geo)) {
        if (geo.asn) {
            lua_pushinteger(L, geo.asn);
            lua_setfield(L, -2, "asn");
        }
        if (geo.country[0]) {
            lua_pushstring(L, geo.country);
            lua_setfield(L, -2, "country");
        }
    }
    double q[TN_QUALITY_NFIELDS];
    tn_quality_values(n, s, s->their_id, q);
    for (int i = 0; i < TN_QUALITY_NFIELDS; i++) {
        lua_pushnumber(L, q[i]);
        lua_setfield(L, -2, TN_QUALITY_FIELDS[i]);
    }
}

int tn_policy_evict(tn_policy_t *p, tn_session_t *const *list, const bool *closable, int n,
                    const tn_session_t *newcomer, const char *reason, int dflt)
{
    lua_State *L;
    int base, pick = dflt;
    if (!tn_hook_begin(p, TN_HOOK_evict, &L, &base)) return pick;
    tn_node_t *node = p->node;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_session(L, node, list[i], false);
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    if (newcomer) {
        push_session(L, node, newcomer, true);
        lua_setfield(L, -2, "newcomer");
    }
    lua_pushinteger(L, node->cfg->max_peers);
    lua_setfield(L, -2, "max_peers");
    if (tn_hook_run(p, TN_HOOK_evict, 2, 1)) {
        if (lua_isnil(L, -1)) {
            pick = -1;
        } else {
            const char *r = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
            tn_addr_t x;
            int found = -1;
            if (r && tn_addr_parse(r, &x) == TN_OK)
                for (int i = 0; i < n && found < 0; i++)
                    if (tn_addr_eq(&x, &list[i]->remote)) found = i;
            if (found >= 0 && closable[found])
                pick = found;
            else
                tn_hook_bad_result(p, TN_HOOK_evict,
                                   found >= 0 ? "picked a masternode for an ordinary peer"
                                              : "expected the addr of a listed connection or nil");
        }
    }
    tn_hook_end(p, L, base);
    return pick;
}
