/* Persistent policy state: tables a policy declares with tn.persist(key, version, init
 * [, migrate]) survive reloads (exported from the old generation, imported into the new,
 * migrated when the version changed) and restarts (saved in the store). The transfer format
 * is a small tagged binary encoding of plain data: no functions, no cycles, bounded depth
 * and size. */
#include "tn_buf.h"
#include "tn_policy_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define STATE_DEPTH_MAX 32

/* tags */
enum {
    T_FALSE = 'F',
    T_TRUE = 'T',
    T_INT = 'i',
    T_NUM = 'd',
    T_STR = 's',
    T_TABLE = '{',
    T_END = '}'
};

static int ser(lua_State *L, int idx, tn_buf_t *out, int depth, char *err, size_t errlen)
{
    uint8_t b[9];
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        b[0] = lua_toboolean(L, idx) ? T_TRUE : T_FALSE;
        return tn_buf_append(out, b, 1);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            b[0] = T_INT;
            tn_put_u64(b + 1, (uint64_t)lua_tointeger(L, idx));
        } else {
            double d = lua_tonumber(L, idx);
            uint64_t u;
            memcpy(&u, &d, 8);
            b[0] = T_NUM;
            tn_put_u64(b + 1, u);
        }
        return tn_buf_append(out, b, 9);
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > UINT32_MAX) return TN_ETOOBIG;
        b[0] = T_STR;
        tn_put_u32(b + 1, (uint32_t)len);
        int rc = tn_buf_append(out, b, 5);
        return rc ? rc : tn_buf_append(out, s, len);
    }
    case LUA_TTABLE: {
        if (depth >= STATE_DEPTH_MAX) {
            snprintf(err, errlen, "state nested deeper than %d (a cycle?)", STATE_DEPTH_MAX);
            return TN_EINVAL;
        }
        if (!lua_checkstack(L, 4)) return TN_ENOMEM;
        idx = lua_absindex(L, idx);
        b[0] = T_TABLE;
        int rc = tn_buf_append(out, b, 1);
        lua_pushnil(L);
        while (rc == 0 && lua_next(L, idx)) {
            int kt = lua_type(L, -2);
            if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN) {
                snprintf(err, errlen, "state has a %s key", lua_typename(L, kt));
                rc = TN_EINVAL;
            }
            if (rc == 0) rc = ser(L, -2, out, depth + 1, err, errlen);
            if (rc == 0) rc = ser(L, -1, out, depth + 1, err, errlen);
            lua_pop(L, 1);
        }
        if (rc) {
            lua_pop(L, 1); /* the key lua_next left */
            return rc;
        }
        b[0] = T_END;
        return tn_buf_append(out, b, 1);
    }
    default:
        snprintf(err, errlen, "state holds a %s (only plain data persists)", luaL_typename(L, idx));
        return TN_EINVAL;
    }
}

int tn_state_serialize(lua_State *L, int idx, tn_buf_t *out, size_t max, char *err, size_t errlen)
{
    tn_buf_init(out, max);
    err[0] = 0;
    int rc = ser(L, lua_absindex(L, idx), out, 0, err, errlen);
    if (rc == TN_ENOMEM && !err[0]) snprintf(err, errlen, "state larger than %zu bytes", max);
    if (rc) tn_buf_free(out);
    return rc;
}

/* Pushes the value at *p; returns bytes used or -1 on malformed input. */
static long de(lua_State *L, const uint8_t *p, size_t n, int depth)
{
    if (n < 1 || depth > STATE_DEPTH_MAX || !lua_checkstack(L, 3)) return -1;
    switch (p[0]) {
    case T_FALSE:
        lua_pushboolean(L, 0);
        return 1;
    case T_TRUE:
        lua_pushboolean(L, 1);
        return 1;
    case T_INT:
        if (n < 9) return -1;
        lua_pushinteger(L, (lua_Integer)tn_get_u64(p + 1));
        return 9;
    case T_NUM: {
        if (n < 9) return -1;
        uint64_t u = tn_get_u64(p + 1);
        double d;
        memcpy(&d, &u, 8);
        lua_pushnumber(L, d);
        return 9;
    }
    case T_STR: {
        if (n < 5) return -1;
        uint32_t len = tn_get_u32(p + 1);
        if (len > n - 5) return -1;
        lua_pushlstring(L, (const char *)p + 5, len);
        return 5 + (long)len;
    }
    case T_TABLE: {
        size_t off = 1;
        if (depth >= STATE_DEPTH_MAX) return -1; /* ser() writes none this deep */
        lua_newtable(L);
        while (off < n && p[off] != T_END) {
            long k = de(L, p + off, n - off, depth + 1);
            if (k < 0 || lua_istable(L, -1)) return -1; /* ser() writes no table keys */
            off += (size_t)k;
            long v = de(L, p + off, n - off, depth + 1);
            if (v < 0 || lua_isnil(L, -2) ||
                (lua_type(L, -2) == LUA_TNUMBER && isnan(lua_tonumber(L, -2))))
                return -1;
            off += (size_t)v;
            lua_rawset(L, -3);
        }
        if (off >= n) return -1;
        return (long)off + 1;
    }
    default:
        return -1;
    }
}

typedef struct {
    const uint8_t *p;
    size_t n;
    long used;
} de_call_t;

static int de_protected(lua_State *L)
{
    de_call_t *c = lua_touserdata(L, 1);
    lua_pop(L, 1);
    c->used = de(L, c->p, c->n, 0);
    return c->used < 0 ? 0 : 1;
}

/* Decodes in a protected call: a blob can describe more tables than the generation's memory
 * cap holds, and an allocation error raised outside one would abort the process. */
int tn_state_deserialize(lua_State *L, const uint8_t *p, size_t n)
{
    int top = lua_gettop(L);
    de_call_t c = {p, n, -1};
    if (!lua_checkstack(L, 2)) return TN_ENOMEM;
    lua_pushcfunction(L, de_protected);
    lua_pushlightuserdata(L, &c);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK || c.used < 0 || (size_t)c.used != n) {
        lua_settop(L, top);
        return rc == LUA_ERRMEM ? TN_ENOMEM : TN_EINVAL;
    }
    return TN_OK;
}

/* tn.persist(key, version, init [, migrate]) -> table */
int tn_state_api_persist(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 1, &klen);
    lua_Integer version = luaL_checkinteger(L, 2);
    if (klen == 0 || klen >= sizeof g->persist[0].key) return luaL_argerror(L, 1, "bad key");
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_settop(L, 4); /* init's result goes to 5: slot 4 stays the migrate function or nil */
    for (int i = 0; i < g->n_persist; i++)
        if (strcmp(g->persist[i].key, key) == 0)
            return luaL_error(L, "tn.persist: key '%s' declared twice", key);
    if (g->n_persist == TN_POLICY_PERSIST_MAX)
        return luaL_error(L, "tn.persist: more than %d keys", TN_POLICY_PERSIST_MAX);
    if (lua_isnoneornil(L, 3)) {
        lua_newtable(L);
    } else {
        lua_pushvalue(L, 3);
        lua_call(L, 0, 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "tn.persist: init must return a table");
    }
    tn_persist_t *ps = &g->persist[g->n_persist++];
    snprintf(ps->key, sizeof ps->key, "%s", key);
    ps->version = (int)version;
    lua_pushvalue(L, -1);
    ps->table_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (lua_isnil(L, 3)) {
        ps->init_ref = LUA_NOREF;
    } else {
        lua_pushvalue(L, 3);
        ps->init_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (lua_isnoneornil(L, 4)) {
        ps->migrate_ref = LUA_NOREF;
    } else {
        lua_pushvalue(L, 4);
        ps->migrate_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 1;
}

void tn_state_free(tn_state_blob_t *b)
{
    while (b) {
        tn_state_blob_t *n = b->next;
        free(b);
        b = n;
    }
}

tn_state_blob_t *tn_state_export(tn_policy_gen_t *g)
{
    tn_state_blob_t *head = NULL;
    char err[160];
    for (int i = 0; i < g->n_persist; i++) {
        tn_persist_t *ps = &g->persist[i];
        tn_buf_t buf;
        lua_rawgeti(g->L, LUA_REGISTRYINDEX, ps->table_ref);
        int rc = tn_state_serialize(g->L, -1, &buf, g->lim.state_max, err, sizeof err);
        lua_pop(g->L, 1);
        if (rc) {
            char msg[256];
            snprintf(msg, sizeof msg, "state '%s' not saved: %s", ps->key, err);
            tn_policy_log_once(g, 2, msg);
            continue;
        }
        tn_state_blob_t *b = malloc(sizeof(*b) + buf.len);
        if (!b) {
            tn_buf_free(&buf);
            continue;
        }
        snprintf(b->key, sizeof b->key, "%s", ps->key);
        b->version = ps->version;
        b->len = buf.len;
        memcpy(b->data, buf.p, buf.len);
        tn_buf_free(&buf);
        b->next = head;
        head = b;
    }
    return head;
}

/* Replaces the contents of the table at dst with those of the table at src (both absolute
 * indexes), so references the policy holds stay valid. */
static void copy_into(lua_State *L, int dst, int src)
{
    lua_pushnil(L);
    while (lua_next(L, dst)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, dst);
    }
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, dst);
    }
}

void tn_state_import(tn_policy_gen_t *g, const tn_state_blob_t *blobs)
{
    lua_State *L = g->L;
    char msg[320];
    for (int i = 0; i < g->n_persist; i++) {
        tn_persist_t *ps = &g->persist[i];
        const tn_state_blob_t *b = blobs;
        while (b && strcmp(b->key, ps->key) != 0) b = b->next;
        int top = lua_gettop(L);
        if (!b) {
            /* Nothing saved: start from init() again, undoing what self-tests did to it. */
            lua_rawgeti(L, LUA_REGISTRYINDEX, ps->table_ref);
            int dst = lua_gettop(L);
            if (ps->init_ref == LUA_NOREF) {
                lua_newtable(L);
            } else {
                lua_rawgeti(L, LUA_REGISTRYINDEX, ps->init_ref);
                if (tn_policy_pcall(g, 0, 1, g->lim.load_budget_s) != LUA_OK ||
                    !lua_istable(L, -1)) {
                    lua_settop(L, top);
                    continue;
                }
            }
            copy_into(L, dst, lua_gettop(L));
            lua_settop(L, top);
            continue;
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, ps->table_ref);
        int dst = lua_gettop(L);
        if (tn_state_deserialize(L, b->data, b->len) != TN_OK || !lua_istable(L, -1)) {
            snprintf(msg, sizeof msg, "state '%s' could not be read back; starting fresh", ps->key);
            tn_policy_log_once(g, 2, msg);
            lua_settop(L, top);
            continue;
        }
        if (b->version != ps->version) {
            if (ps->migrate_ref == LUA_NOREF) {
                snprintf(msg, sizeof msg,
                         "state '%s' reset: version %d -> %d and no migrate function", ps->key,
                         b->version, ps->version);
                tn_policy_glog(g, 2, msg);
                lua_settop(L, top);
                continue;
            }
            lua_rawgeti(L, LUA_REGISTRYINDEX, ps->migrate_ref);
            lua_insert(L, -2);
            lua_pushinteger(L, b->version);
            if (tn_policy_pcall(g, 2, 1, g->lim.load_budget_s) != LUA_OK || !lua_istable(L, -1)) {
                snprintf(msg, sizeof msg,
                         "state '%s' migration %d -> %d failed: %s; starting fresh", ps->key,
                         b->version, ps->version,
                         lua_isstring(L, -1) ? lua_tostring(L, -1) : "it did not return a table");
                tn_policy_glog(g, 3, msg);
                lua_settop(L, top);
                continue;
            }
        }
        copy_into(L, dst, lua_gettop(L));
        lua_settop(L, top);
    }
}
