/* The `tn` table policies see, and the one reused peer object hooks receive. The peer is a
 * userdata whose fields are read from the core's structures at access time: no table is
 * built per call, and a policy that keeps it sees nil fields once the call is over. */
#include "tn_chain.h"
#include "tn_config.h"
#include "tn_disc.h"
#include "tn_experiment.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_policy_int.h"

#include <stdio.h>

/* ---- logging (queued while building off the loop) ---- */

void tn_policy_glog(tn_policy_gen_t *g, int level, const char *text)
{
    if (g->host) {
        tn_log((tn_log_level_t)level, "Policy: %s", text);
        return;
    }
    if (g->n_logs == TN_POLICY_LOGS_MAX) {
        g->logs_dropped++;
        return;
    }
    g->logs[g->n_logs].level = level;
    snprintf(g->logs[g->n_logs].text, sizeof g->logs[0].text, "%s", text);
    g->n_logs++;
}

/* tn.log(level, fmt, ...) with string.format semantics; level "debug"|"info"|"warn"|"error" */
static int api_log(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    tn_log_level_t level;
    if (tn_log_level_parse(luaL_checkstring(L, 1), &level) != TN_OK)
        return luaL_argerror(L, 1, "level must be debug, info, warn or error");
    int n = lua_gettop(L);
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "format");
    for (int i = 2; i <= n; i++) lua_pushvalue(L, i);
    lua_call(L, n - 1, 1);
    tn_policy_glog(g, level, lua_tostring(L, -1));
    return 0;
}

static int api_now(lua_State *L)
{
    lua_pushnumber(L, (double)uv_hrtime() / 1e9);
    return 1;
}

static int api_time(lua_State *L)
{
    lua_pushnumber(L, (double)tn_wall_ms() / 1000.0);
    return 1;
}

static int api_metric(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    const char *name = luaL_checkstring(L, 1);
    lua_pushnumber(L, g->host ? tn_metrics_value(name) : 0); /* registry is loop-only */
    return 1;
}

/* tn.count(name [, n]): bumps the policy's own counter tn_policy_events_total{name=...}. */
static int api_count(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    const char *name = luaL_checkstring(L, 1);
    lua_Number n = luaL_optnumber(L, 2, 1);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return luaL_argerror(L, 1, "counter names use a-z, 0-9 and _");
    if (g->host)
        tn_metric_add(tn_metric_counterf("Counters bumped by policies",
                                         "tn_policy_events_total{name=\"%.40s\"}", name),
                      n);
    return 0;
}

/* ---- the peer object ---- */

enum {
    F_ADDR,
    F_IP,
    F_PORT,
    F_ID,
    F_SHORT_ID,
    F_NAME,
    F_DIR,
    F_OUTBOUND,
    F_MASTERNODE,
    F_CONNECTED_S,
    F_RTT_MS,
    F_PINGS,
    F_PONGS,
    F_LATE,
    F_MISSED,
    F_MISSED_RUN,
    F_BYTES_IN,
    F_BYTES_OUT,
    F_MSGS_IN,
    F_MSGS_OUT,
    F_SESSIONS,
    F_DISCONNECTS,
    F_STRIKES,
    F_SCORE,
    F_TAG,
    F_HEIGHT,
    F_CONNECTED,
    /* quality across sessions and restarts (tn_quality.c) */
    F_SUCCESS_RATE,
    F_UPTIME_SHARE,
    F_RTT_AVG_MS,
    F_PINGS_TOTAL,
    F_LATE_TOTAL,
    F_MISSED_TOTAL,
    F_BLOCKS,
    F_DUPS,
    F_INVALID,
    F_DISCONNECTS_TOTAL,
    F__COUNT
};
static const char *const FIELDS[F__COUNT] = {
    "addr",        "ip",         "port",        "id",        "short_id", "name",     "dir",
    "outbound",    "masternode", "connected_s", "rtt_ms",    "pings",    "pongs",    "late",
    "missed",      "missed_run", "bytes_in",    "bytes_out", "msgs_in",  "msgs_out", "sessions",
    "disconnects", "strikes",    "score",       "tag",       "height",   "connected",
    "success_rate", "uptime_share", "rtt_avg_ms", "pings_total", "late_total", "missed_total",
    "blocks", "dups", "invalid", "disconnects_total"};

_Static_assert(F__COUNT - F_SUCCESS_RATE == TN_QUALITY_NFIELDS,
               "the peer object's quality fields are tn_quality.c's, in its order");

static const char PEER_MT[] = "tn.peer";

static int peer_index(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    const char *k = lua_tostring(L, 2);
    int f = 0;
    while (f < F__COUNT && g->field[f] != k) f++; /* interned: pointer equality */
    const tn_session_t *s = g->cur.s;
    tn_peer_t *p = g->cur.p;
    const tn_addr_t *a = g->cur.addr ? g->cur.addr : s ? &s->remote : p ? &p->addr : NULL;
    char buf[TN_ADDR_STRLEN > 65 ? TN_ADDR_STRLEN : 65];
    bool open = s && s->state == TN_SS_OPEN;
    switch (f) {
    case F_ADDR:
        if (!a) break;
        tn_addr_fmt(a, buf);
        lua_pushstring(L, buf);
        return 1;
    case F_IP:
        if (!a) break;
        tn_addr_fmt_ip(a, buf);
        lua_pushstring(L, buf);
        return 1;
    case F_PORT:
        if (!a) break;
        lua_pushinteger(L, a->port);
        return 1;
    case F_ID:
    case F_SHORT_ID: {
        const uint8_t *id = p ? p->id : open ? s->their_id : NULL;
        if (!id) break;
        tn_hex(buf, id, TN_ID_LEN);
        if (f == F_SHORT_ID) buf[8] = 0;
        lua_pushstring(L, buf);
        return 1;
    }
    case F_NAME:
        if (!s || !s->hello) break;
        lua_pushstring(L, s->their_name);
        return 1;
    case F_DIR:
        if (!s) break;
        lua_pushstring(L, s->outbound ? "out" : "in");
        return 1;
    case F_OUTBOUND:
        lua_pushboolean(L, s && s->outbound);
        return 1;
    case F_MASTERNODE:
        /* proven by the handshake (a listed key), never taken from the hello's claim */
        lua_pushboolean(L, open && g->host && tn_chain_is_masternode(g->host->node, s->their_id));
        return 1;
    case F_CONNECTED:
        lua_pushboolean(L, open);
        return 1;
    case F_CONNECTED_S:
        lua_pushnumber(L, open ? (double)(uv_now(s->net->loop) - s->opened_ms) / 1000.0 : 0);
        return 1;
    case F_RTT_MS:
        lua_pushnumber(L, s ? s->rtt_ms : 0);
        return 1;
    case F_PINGS:
        lua_pushinteger(L, s ? s->pings : 0);
        return 1;
    case F_PONGS:
        lua_pushinteger(L, s ? s->pongs : 0);
        return 1;
    case F_LATE:
        lua_pushinteger(L, s ? s->late : 0);
        return 1;
    case F_MISSED:
        lua_pushinteger(L, s ? s->missed : 0);
        return 1;
    case F_MISSED_RUN:
        lua_pushinteger(L, s ? s->missed_run : 0);
        return 1;
    case F_BYTES_IN:
        lua_pushinteger(L, s ? (lua_Integer)s->bytes_in : 0);
        return 1;
    case F_BYTES_OUT:
        lua_pushinteger(L, s ? (lua_Integer)s->bytes_out : 0);
        return 1;
    case F_MSGS_IN:
        lua_pushinteger(L, s ? (lua_Integer)s->msgs_in : 0);
        return 1;
    case F_MSGS_OUT:
        lua_pushinteger(L, s ? (lua_Integer)s->msgs_out : 0);
        return 1;
    case F_SESSIONS:
        lua_pushinteger(L, p ? p->sessions : 0);
        return 1;
    case F_DISCONNECTS:
        lua_pushinteger(L, p ? p->disconnects : 0);
        return 1;
    case F_STRIKES: {
        tn_node_t *n = g->host ? g->host->node : NULL;
        lua_pushinteger(L, n && a ? tn_strikes_total(n, a) : 0);
        return 1;
    }
    case F_SCORE:
        lua_pushnumber(L, s ? s->score : 0);
        return 1;
    case F_TAG:
        if (!p || !p->tag[0]) break;
        lua_pushstring(L, p->tag);
        return 1;
    case F_HEIGHT:
        lua_pushinteger(L, s && s->hello ? (lua_Integer)s->their_height : 0);
        return 1;
    default:
        if (f >= F_SUCCESS_RATE && f < F__COUNT && g->host) {
            if (!g->quality_ok) { /* one computation per hook call, whatever is read */
                const uint8_t *id = p ? p->id : open ? s->their_id : g->cur.id;
                tn_quality_values(g->host->node, s, id, g->quality);
                g->quality_ok = true;
            }
            lua_pushnumber(L, g->quality[f - F_SUCCESS_RATE]);
            return 1;
        }
        break;
    }
    lua_pushnil(L);
    return 1;
}

static int peer_newindex(lua_State *L)
{
    return luaL_error(L, "the peer object is read-only (use tn.tag(peer, text))");
}

static int peer_tostring(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    char a[TN_ADDR_STRLEN] = "?";
    const tn_addr_t *addr = g->cur.addr ? g->cur.addr
                            : g->cur.s  ? &g->cur.s->remote
                            : g->cur.p  ? &g->cur.p->addr
                                        : NULL;
    if (addr) tn_addr_fmt(addr, a);
    lua_pushfstring(L, "peer(%s)", a);
    return 1;
}

/* tn.tag(peer, text|nil): a short label kept on the peer record, shown by the peers verb. */
static int api_tag(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    size_t len = 0;
    const char *t = luaL_optlstring(L, 2, "", &len);
    if (len > TN_POLICY_TAG_MAX) return luaL_argerror(L, 2, "tag longer than 32 bytes");
    if (lua_istable(L, 1)) { /* a fake peer in a self-test */
        lua_pushvalue(L, 2);
        lua_setfield(L, 1, "tag");
        return 0;
    }
    luaL_checkudata(L, 1, PEER_MT);
    if (!g->cur.p) return luaL_error(L, "tn.tag: no peer record (call it inside a hook)");
    snprintf(g->cur.p->tag, sizeof g->cur.p->tag, "%.*s", (int)len, t);
    return 0;
}

void tn_policy_peer_push(tn_policy_gen_t *g, const tn_peer_view_t *v)
{
    g->cur = *v;
    g->quality_ok = g->quality_last = false;
    lua_rawgeti(g->L, LUA_REGISTRYINDEX, g->peer_ref);
}

void tn_policy_peer_clear(tn_policy_gen_t *g)
{
    memset(&g->cur, 0, sizeof g->cur);
    g->quality_last = g->quality_ok; /* for the decision's record (tn_hook_record) */
    g->quality_ok = false;
}

/* ---- calls ---- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = luaL_typename(L, 1);
    lua_pushstring(L, msg); /* the first line is what operators see; keep it plain */
    return 1;
}

int tn_policy_pcall(tn_policy_gen_t *g, int nargs, int nres, double budget_s)
{
    lua_State *L = g->L;
    int fn = lua_gettop(L) - nargs;
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->traceback_ref);
    lua_insert(L, fn);
    tn_sandbox_budget(g, budget_s);
    int rc = lua_pcall(L, nargs, nres, fn);
    tn_sandbox_budget_end(g);
    lua_remove(L, fn);
    return rc;
}

/* ---- timers: tn.after(seconds, fn) ---- */

static int api_after(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    lua_Number s = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!(s >= 0 && s <= 86400)) return luaL_argerror(L, 1, "seconds must be in [0, 86400]");
    if (g->n_timers == TN_POLICY_TIMERS_MAX)
        return luaL_error(L, "too many pending timers (%d)", TN_POLICY_TIMERS_MAX);
    lua_pushvalue(L, 2);
    g->timers[g->n_timers].fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    g->timers[g->n_timers].due_ms = uv_hrtime() / 1000000 + (uint64_t)(s * 1000.0);
    g->n_timers++;
    if (g->host) tn_policy_timers_arm(g->host);
    return 0;
}

/* tn.persist(key, version, init [, migrate]) -> table (tn_policy_state.c does the rest) */
int tn_state_api_persist(lua_State *L);

void tn_policy_api_open(lua_State *L, tn_policy_gen_t *g)
{
    for (int f = 0; f < F__COUNT; f++) {
        lua_pushstring(L, FIELDS[f]);
        g->field[f] = lua_tostring(L, -1);
        luaL_ref(L, LUA_REGISTRYINDEX); /* keeps the interned string alive */
    }
    luaL_newmetatable(L, PEER_MT);
    lua_pushcfunction(L, peer_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, peer_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, peer_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "peer");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 0);
    luaL_setmetatable(L, PEER_MT);
    g->peer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, traceback);
    g->traceback_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    static const luaL_Reg api[] = {{"log", api_log},     {"now", api_now},
                                   {"time", api_time},   {"metric", api_metric},
                                   {"count", api_count}, {"tag", api_tag},
                                   {"after", api_after}, {"persist", tn_state_api_persist},
                                   {NULL, NULL}};
    luaL_newlib(L, api);
    if (g->cfg)
        tn_config_push(L, g->cfg);
    else
        lua_newtable(L);
    lua_setfield(L, -2, "config");
    lua_pushinteger(L, TN_PROTO_VERSION);
    lua_setfield(L, -2, "protocol");
    lua_setglobal(L, "tn");
    tn_exp_api_open(L, g); /* tn.message, tn.send, ...: protocol experiments */
    /* print goes to the node's log */
    if (luaL_dostring(L, "print = function(...) local t = table.pack(...) "
                         "for i = 1, t.n do t[i] = tostring(t[i]) end "
                         "tn.log('info', '%s', table.concat(t, ' ')) end"))
        lua_pop(L, 1);
}
