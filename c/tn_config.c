/* Config loading and validation (see tn_config.h). The Lua state used here is private,
 * capped in memory and instructions, and gone once the file is read. */
#include "tn_config.h"

#include "tn_addr.h"
#include "tn_lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define CONFIG_MEM_MAX (16u << 20) /* a config file needs far less */
#define CONFIG_INSN_MAX 10000000   /* instructions before "takes too long" */
#define CONFIG_STR_MAX 4096        /* longest string value */

typedef enum { K_INT, K_NUM, K_BOOL, K_STR, K_LIST, K_NLIST } ktype_t;

typedef struct {
    const char *name;
    ktype_t type;
    size_t off;
    double lo, hi;
    double dnum;
    const char *dstr;
    const char *allowed;
    int maxn;
    const char *doc;
} cfg_key_t;

static const cfg_key_t KEYS[] = {
#define TN_CK_INT(n, d, l, h, doc)                                                                 \
    {#n, K_INT, offsetof(tn_config_t, n), l, h, d, NULL, NULL, 0, doc},
#define TN_CK_NUM(n, d, l, h, doc)                                                                 \
    {#n, K_NUM, offsetof(tn_config_t, n), l, h, d, NULL, NULL, 0, doc},
#define TN_CK_BOOL(n, d, doc) {#n, K_BOOL, offsetof(tn_config_t, n), 0, 1, d, NULL, NULL, 0, doc},
#define TN_CK_STR(n, d, a, doc) {#n, K_STR, offsetof(tn_config_t, n), 0, 0, 0, d, a, 0, doc},
#define TN_CK_LIST(n, m, doc) {#n, K_LIST, offsetof(tn_config_t, n), 0, 0, 0, NULL, NULL, m, doc},
#define TN_CK_NLIST(n, m, d, doc)                                                                  \
    {#n, K_NLIST, offsetof(tn_config_t, n), 0, 1e9, 0, d, NULL, m, doc},
    TN_CONFIG_KEYS(TN_CK_INT, TN_CK_NUM, TN_CK_BOOL, TN_CK_STR, TN_CK_LIST, TN_CK_NLIST)
#undef TN_CK_INT
#undef TN_CK_NUM
#undef TN_CK_BOOL
#undef TN_CK_STR
#undef TN_CK_LIST
#undef TN_CK_NLIST
};
#define NKEYS TN_ARRAY_LEN(KEYS)

#define FIELD(c, k, T) ((T *)((char *)(c) + (k)->off))

static void list_free(tn_strlist_t *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void tn_config_free(tn_config_t *c)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key_t *k = &KEYS[i];
        if (k->type == K_STR) {
            free(*FIELD(c, k, char *));
            *FIELD(c, k, char *) = NULL;
        } else if (k->type == K_LIST) {
            list_free(FIELD(c, k, tn_strlist_t));
        } else if (k->type == K_NLIST) {
            free(FIELD(c, k, tn_numlist_t)->v);
            FIELD(c, k, tn_numlist_t)->v = NULL;
            FIELD(c, k, tn_numlist_t)->n = 0;
        }
    }
    free(c->path);
    c->path = NULL;
}

int tn_config_defaults(tn_config_t *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key_t *k = &KEYS[i];
        switch (k->type) {
        case K_INT:
            *FIELD(c, k, int64_t) = (int64_t)k->dnum;
            break;
        case K_NUM:
            *FIELD(c, k, double) = k->dnum;
            break;
        case K_BOOL:
            *FIELD(c, k, bool) = k->dnum != 0;
            break;
        case K_STR:
            if (!(*FIELD(c, k, char *) = strdup(k->dstr))) return TN_ENOMEM;
            break;
        case K_LIST:
            break;
        case K_NLIST: {
            tn_numlist_t *l = FIELD(c, k, tn_numlist_t);
            if (!(l->v = calloc((size_t)k->maxn, sizeof(double)))) return TN_ENOMEM;
            char *end;
            for (const char *p = k->dstr; l->n < k->maxn; p = end) {
                double v = strtod(p, &end);
                if (end == p) break;
                l->v[l->n++] = v;
            }
            break;
        }
        }
    }
    if (c->node_name[0] == 0) {
        char host[TN_NAME_MAX + 1] = "timenet";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = 0;
        free(c->node_name);
        if (!(c->node_name = strdup(host))) return TN_ENOMEM;
    }
    return TN_OK;
}

bool tn_config_has(const tn_strlist_t *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return true;
    return false;
}

/* Keys a running node applies on `config_reload` (tn_reload.c says how). Every key not
 * listed needs a restart: identity, addresses, the data dir and the policy directory are
 * bound to open handles. A new key is restart-only until it is added here. */
static const char *const LIVE_KEYS[] = {
    "log_level", "log_file", "log_fold_window", "allow_local_addresses", "max_peers",
    "min_peers", "max_inbound_pending", "max_frame_size", "write_buffer_max",
    "reconnect_max_attempts", "strike_limit", "missed_pongs_close", "connection_timeout",
    "handshake_timeout", "reconnect_delay", "reconnect_backoff", "reconnect_cooldown",
    "sync_interval", "heartbeat_interval", "pong_deadline", "status_interval",
    "test_handshake_delay", "policy_budget", "policy_load_budget", "policy_memory_max",
    "policy_state_max", "policy_breaker_errors", "policy_tick_interval",
    "policy_reload_debounce", "ban_temporary", "ban_long", "connection_attempts_free",
    "connection_attempts_max", "connection_attempt_window", "rate_control", "rate_heartbeat",
    "rate_addresses", "rate_inventory", "rate_blocks", "rate_custom", "frame_timeout",
    "write_timeout", "buffer_memory_max", "bandwidth_in", "bandwidth_out", "seeds",
    "persistent_peers",
    "whitelist", "features", "masternode_slots", "discovery_interval", "peer_api_url",
    "peer_api_timeout", "peer_api_max_bytes", "peer_api_interval", "peer_exchange_interval",
    "peer_exchange_rate", "addr_max_age",
};

int tn_config_nkeys(void)
{
    return (int)NKEYS;
}

const char *tn_config_key_name(int i)
{
    return i >= 0 && i < (int)NKEYS ? KEYS[i].name : NULL;
}

bool tn_config_key_live(const char *name)
{
    for (size_t i = 0; i < TN_ARRAY_LEN(LIVE_KEYS); i++)
        if (strcmp(LIVE_KEYS[i], name) == 0) return true;
    return false;
}

bool tn_config_key_equal(const tn_config_t *a, const tn_config_t *b, int i)
{
    const cfg_key_t *k = &KEYS[i];
    switch (k->type) {
    case K_INT:
        return *FIELD(a, k, const int64_t) == *FIELD(b, k, const int64_t);
    case K_NUM:
        return *FIELD(a, k, const double) == *FIELD(b, k, const double);
    case K_BOOL:
        return *FIELD(a, k, const bool) == *FIELD(b, k, const bool);
    case K_STR:
        return strcmp(*FIELD(a, k, char *const), *FIELD(b, k, char *const)) == 0;
    case K_LIST: {
        const tn_strlist_t *x = FIELD(a, k, const tn_strlist_t);
        const tn_strlist_t *y = FIELD(b, k, const tn_strlist_t);
        if (x->n != y->n) return false;
        for (int j = 0; j < x->n; j++)
            if (strcmp(x->v[j], y->v[j]) != 0) return false;
        return true;
    }
    case K_NLIST: {
        const tn_numlist_t *x = FIELD(a, k, const tn_numlist_t);
        const tn_numlist_t *y = FIELD(b, k, const tn_numlist_t);
        if (x->n != y->n) return false;
        for (int j = 0; j < x->n; j++)
            if (x->v[j] != y->v[j]) return false;
        return true;
    }
    }
    return false;
}

void tn_config_key_swap(tn_config_t *a, tn_config_t *b, int i)
{
    static const size_t SIZE[] = {sizeof(int64_t),     sizeof(double),      sizeof(bool),
                                  sizeof(char *),      sizeof(tn_strlist_t), sizeof(tn_numlist_t)};
    const cfg_key_t *k = &KEYS[i];
    unsigned char tmp[sizeof(tn_numlist_t) > sizeof(tn_strlist_t) ? sizeof(tn_numlist_t)
                                                                     : sizeof(tn_strlist_t)];
    size_t n = SIZE[k->type];
    memcpy(tmp, (char *)a + k->off, n);
    memcpy((char *)a + k->off, (char *)b + k->off, n);
    memcpy((char *)b + k->off, tmp, n);
}

/* ---- loading ---- */

typedef struct {
    tn_config_t *c;
    int line[NKEYS];
    tn_lua_mem_t mem;
    long insns;
} load_ctx_t;

static void insn_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    load_ctx_t *ctx = *(load_ctx_t **)lua_getextraspace(L);
    if ((ctx->insns += 1000) > CONFIG_INSN_MAX) {
        luaL_where(L, 0); /* in a hook, level 0 is the Lua code that was running */
        lua_pushstring(L, "config takes too long to evaluate");
        lua_concat(L, 2);
        lua_error(L);
    }
}

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = TN_MIN(sub, TN_MIN(del, ins));
        }
    return d[la][lb];
}

static const cfg_key_t *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].name, name) == 0) return &KEYS[i];
    return NULL;
}

static int unknown_key(lua_State *L, const char *name, const char *what)
{
    const char *best = NULL;
    int bestd = 3;
    for (size_t i = 0; i < NKEYS; i++) {
        int d = edit_distance(name, KEYS[i].name);
        if (d < bestd) bestd = d, best = KEYS[i].name;
    }
    if (best) return luaL_error(L, "unknown %s '%s' (did you mean '%s'?)", what, name, best);
    return luaL_error(L, "unknown %s '%s'", what, name);
}

static bool allowed_value(const char *allowed, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = allowed; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, v, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static int set_list(lua_State *L, const cfg_key_t *k, tn_strlist_t *out)
{
    if (!lua_istable(L, 3)) return luaL_error(L, "'%s' must be a list of strings", k->name);
    lua_Integer n = luaL_len(L, 3);
    if (n > k->maxn) return luaL_error(L, "'%s' has more than %d entries", k->name, k->maxn);
    /* Reject non-sequence keys: { a = "x" } is a mistake, not an empty list. */
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        count++;
        lua_pop(L, 1);
    }
    if (count != n) return luaL_error(L, "'%s' must be a list (no named fields or holes)", k->name);
    tn_strlist_t l = {calloc((size_t)n + 1, sizeof(char *)), 0};
    if (!l.v) return luaL_error(L, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 3, i) != LUA_TSTRING) {
            list_free(&l);
            return luaL_error(L, "'%s' entry %d must be a string", k->name, (int)i);
        }
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (len > CONFIG_STR_MAX || strlen(s) != len) {
            list_free(&l);
            return luaL_error(L, "'%s' entry %d is too long or has a NUL", k->name, (int)i);
        }
        if (!(l.v[l.n] = strdup(s))) {
            list_free(&l);
            return luaL_error(L, "out of memory");
        }
        l.n++;
        lua_pop(L, 1);
    }
    list_free(out);
    *out = l;
    return 0;
}

static int set_numlist(lua_State *L, const cfg_key_t *k, tn_numlist_t *out)
{
    if (!lua_istable(L, 3)) return luaL_error(L, "'%s' must be a list of numbers", k->name);
    lua_Integer n = luaL_len(L, 3);
    if (n < 1 || n > k->maxn)
        return luaL_error(L, "'%s' must have 1 to %d entries", k->name, k->maxn);
    double *v = calloc((size_t)k->maxn, sizeof(double));
    if (!v) return luaL_error(L, "out of memory");
    for (lua_Integer i = 1; i <= n; i++) {
        int isnum = 0;
        lua_rawgeti(L, 3, i);
        double x = lua_tonumberx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum || !(x >= 0 && x <= k->hi)) {
            free(v);
            return luaL_error(L, "'%s' entry %d must be a non-negative number", k->name, (int)i);
        }
        v[i - 1] = x;
    }
    free(out->v);
    out->v = v;
    out->n = (int)n;
    return 0;
}

/* __newindex(env, key, value): the whole schema check for one assignment. */
static int cfg_newindex(lua_State *L)
{
    load_ctx_t *ctx = lua_touserdata(L, lua_upvalueindex(1));
    if (lua_type(L, 2) != LUA_TSTRING) return luaL_error(L, "config keys must be names");
    const char *name = lua_tostring(L, 2);
    const cfg_key_t *k = find_key(name);
    if (!k) return unknown_key(L, name, "key");
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) ctx->line[k - KEYS] = ar.currentline;
    tn_config_t *c = ctx->c;
    switch (k->type) {
    case K_INT:
    case K_NUM: {
        if (lua_type(L, 3) != LUA_TNUMBER)
            return luaL_error(L, "'%s' must be a number, got %s", name, luaL_typename(L, 3));
        lua_Number v = lua_tonumber(L, 3);
        if (!(v >= k->lo && v <= k->hi)) {
            char msg[160]; /* lua_pushfstring has no %g */
            snprintf(msg, sizeof msg, "'%s' = %g is out of range [%g, %g]", name, v, k->lo, k->hi);
            return luaL_error(L, "%s", msg);
        }
        /* After the range check: casting NaN or a float beyond int64 is undefined. */
        if (k->type == K_INT && !lua_isinteger(L, 3) && v != (lua_Number)(lua_Integer)v)
            return luaL_error(L, "'%s' must be a whole number", name);
        if (k->type == K_INT)
            *FIELD(c, k, int64_t) = (int64_t)v;
        else
            *FIELD(c, k, double) = v;
        break;
    }
    case K_BOOL:
        if (!lua_isboolean(L, 3))
            return luaL_error(L, "'%s' must be true or false, got %s", name, luaL_typename(L, 3));
        *FIELD(c, k, bool) = lua_toboolean(L, 3);
        break;
    case K_STR: {
        if (lua_type(L, 3) != LUA_TSTRING)
            return luaL_error(L, "'%s' must be a string, got %s", name, luaL_typename(L, 3));
        size_t len;
        const char *s = lua_tolstring(L, 3, &len);
        if (len > CONFIG_STR_MAX || strlen(s) != len)
            return luaL_error(L, "'%s' is too long or has a NUL", name);
        if (k->allowed && !allowed_value(k->allowed, s))
            return luaL_error(L, "'%s' = \"%s\" is not one of %s", name, s, k->allowed);
        char *dup = strdup(s);
        if (!dup) return luaL_error(L, "out of memory");
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = dup;
        break;
    }
    case K_LIST:
        set_list(L, k, FIELD(c, k, tn_strlist_t));
        break;
    case K_NLIST:
        set_numlist(L, k, FIELD(c, k, tn_numlist_t));
        break;
    }
    /* Not stored in the environment: a second assignment of the key must come through
     * here again to be checked and applied; reads come from cfg_index. */
    return 0;
}

static void push_value(lua_State *L, const tn_config_t *c, const cfg_key_t *k)
{
    switch (k->type) {
    case K_INT:
        lua_pushinteger(L, *FIELD(c, k, int64_t));
        break;
    case K_NUM:
        lua_pushnumber(L, *FIELD(c, k, double));
        break;
    case K_BOOL:
        lua_pushboolean(L, *FIELD(c, k, bool));
        break;
    case K_STR:
        lua_pushstring(L, *FIELD(c, k, char *));
        break;
    case K_LIST: {
        tn_strlist_t *l = FIELD(c, k, tn_strlist_t);
        lua_createtable(L, l->n, 0);
        for (int i = 0; i < l->n; i++) {
            lua_pushstring(L, l->v[i]);
            lua_rawseti(L, -2, i + 1);
        }
        break;
    }
    case K_NLIST: {
        tn_numlist_t *l = FIELD(c, k, tn_numlist_t);
        lua_createtable(L, l->n, 0);
        for (int i = 0; i < l->n; i++) {
            lua_pushnumber(L, l->v[i]);
            lua_rawseti(L, -2, i + 1);
        }
        break;
    }
    }
}

/* __index(env, key): reading a key not yet assigned gives its default; other names are
 * typos, which silently yielding nil would hide. */
static int cfg_index(lua_State *L)
{
    load_ctx_t *ctx = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = lua_tostring(L, 2);
    const cfg_key_t *k = name ? find_key(name) : NULL;
    if (!k) return unknown_key(L, name ? name : "?", "name");
    push_value(L, ctx->c, k);
    return 1;
}

static int ro_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    const char *name = lua_tostring(L, 2);
    return unknown_key(L, name ? name : "?", "config key");
}

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "tn.config is read-only");
}

void tn_config_push(lua_State *L, const tn_config_t *c)
{
    lua_newtable(L); /* the proxy policies see: all reads go through __index */
    lua_createtable(L, 0, 2);
    lua_createtable(L, 0, (int)NKEYS);
    for (size_t i = 0; i < NKEYS; i++) {
        push_value(L, c, &KEYS[i]);
        lua_setfield(L, -2, KEYS[i].name);
    }
    lua_pushcclosure(L, ro_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
}

static int key_line(const load_ctx_t *ctx, const char *name)
{
    const cfg_key_t *k = find_key(name);
    return k ? ctx->line[k - KEYS] : 0;
}

#define CHECK(cond, key, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            int n_ = snprintf(err, errlen, "%s:%d: ", path, key_line(ctx, key));                   \
            if (n_ >= 0 && (size_t)n_ < errlen)                                                    \
                snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                              \
            return TN_EINVAL;                                                                      \
        }                                                                                          \
    } while (0)

static int check_addresses(const load_ctx_t *ctx, const char *path, const char *key,
                           const tn_strlist_t *l, bool with_port, char *err, size_t errlen)
{
    tn_addr_t a;
    for (int i = 0; i < l->n; i++) {
        int rc = with_port ? tn_addr_parse(l->v[i], &a) : tn_addr_parse_ip(l->v[i], &a);
        CHECK(rc == 0 && (!with_port || a.port != 0), key, "'%s' entry %d \"%s\" is not %s", key,
              i + 1, l->v[i],
              with_port ? "an address 'IP:port' or '[IPv6]:port' with a port" : "an IP address");
    }
    return TN_OK;
}

/* Rules that involve more than one key, or a key's text format. */
static int cross_check(tn_config_t *c, const load_ctx_t *ctx, const char *path, char *err,
                       size_t errlen)
{
    tn_addr_t a;
    /* The line of whichever of the two the file set last (the other kept its default). */
    CHECK(c->min_peers <= c->max_peers,
          key_line(ctx, "min_peers") >= key_line(ctx, "max_peers") ? "min_peers" : "max_peers",
          "min_peers (%lld) is above max_peers (%lld)",
          (long long)c->min_peers, (long long)c->max_peers);
    CHECK(tn_addr_parse(c->listen, &a) == 0, "listen",
          "listen \"%s\" is not 'IP:port' or '[IPv6]:port'", c->listen);
    CHECK(!c->advertise[0] || tn_addr_parse(c->advertise, &a) == 0, "advertise",
          "advertise \"%s\" is not 'IP:port' or '[IPv6]:port'", c->advertise);
    size_t nl = strlen(c->node_name);
    CHECK(nl > 0 && nl <= TN_NAME_MAX, "node_name", "node_name must be 1 to %d characters",
          TN_NAME_MAX);
    for (size_t i = 0; i < nl; i++)
        CHECK(c->node_name[i] > 0x20 && c->node_name[i] < 0x7f && c->node_name[i] != '[' &&
                  c->node_name[i] != ']',
              "node_name",
              "node_name may only hold printable characters other than space, [ and ]");
    CHECK(c->data_dir[0] != 0, "data_dir", "data_dir must not be empty");
    CHECK(!c->metrics_listen[0] || strcmp(c->metrics_listen, "auto") == 0 ||
              (tn_addr_parse(c->metrics_listen, &a) == 0 && a.port != 0),
          "metrics_listen", "metrics_listen \"%s\" is not 'IP:port', 'auto' or \"\"",
          c->metrics_listen);
    int rc;
    if ((rc = check_addresses(ctx, path, "seeds", &c->seeds, true, err, errlen))) return rc;
    if ((rc = check_addresses(ctx, path, "persistent_peers", &c->persistent_peers, true, err,
                              errlen)))
        return rc;
    if ((rc = check_addresses(ctx, path, "whitelist", &c->whitelist, false, err, errlen)))
        return rc;
    for (int i = 0; i < c->masternodes.n; i++) {
        uint8_t id[32];
        CHECK(strlen(c->masternodes.v[i]) == 64 && tn_unhex(id, 32, c->masternodes.v[i]) == 0,
              "masternodes", "'masternodes' entry %d is not a node id (64 hex digits)", i + 1);
    }
    CHECK(c->connection_attempts_max >= c->connection_attempts_free, "connection_attempts_max",
          "connection_attempts_max (%lld) is below connection_attempts_free (%lld)",
          (long long)c->connection_attempts_max, (long long)c->connection_attempts_free);
    const struct {
        const char *name;
        const tn_numlist_t *l;
    } rates[] = {{"rate_control", &c->rate_control},     {"rate_heartbeat", &c->rate_heartbeat},
                 {"rate_addresses", &c->rate_addresses}, {"rate_inventory", &c->rate_inventory},
                 {"rate_blocks", &c->rate_blocks},       {"rate_custom", &c->rate_custom}};
    for (size_t i = 0; i < TN_ARRAY_LEN(rates); i++) {
        const tn_numlist_t *l = rates[i].l;
        CHECK(l->n == 2 && ((l->v[0] == 0 && l->v[1] == 0) || (l->v[0] >= 1 && l->v[1] > 0)),
              rates[i].name, "%s must be { count >= 1, seconds > 0 }, or { 0, 0 } for no limit",
              rates[i].name);
    }
    /* A default max_block_size follows a smaller max_frame_size; one set explicitly must fit. */
    if (key_line(ctx, "max_block_size") == 0 && c->max_block_size + 64 > c->max_frame_size)
        c->max_block_size = c->max_frame_size - 64;
    CHECK(c->max_block_size + 64 <= c->max_frame_size, "max_block_size",
          "max_block_size (%lld) must leave room in a frame (max_frame_size %lld)",
          (long long)c->max_block_size, (long long)c->max_frame_size);
    return TN_OK;
}

int tn_config_load(tn_config_t *c, const char *path, char *err, size_t errlen)
{
    load_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.c = c;
    ctx.mem.max = CONFIG_MEM_MAX;
    lua_State *L = lua_newstate(tn_lua_alloc, &ctx.mem);
    if (!L) {
        snprintf(err, errlen, "%s: out of memory", path);
        return TN_ENOMEM;
    }
    int rc = TN_OK;
    *(load_ctx_t **)lua_getextraspace(L) = &ctx;
    lua_sethook(L, insn_hook, LUA_MASKCOUNT, 1000);
    if (luaL_loadfilex(L, path, "t") != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        rc = TN_EINVAL;
        goto out;
    }
    lua_newtable(L); /* _ENV: empty, so nothing outside the config can be reached */
    lua_newtable(L);
    lua_pushlightuserdata(L, &ctx);
    lua_pushcclosure(L, cfg_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushlightuserdata(L, &ctx);
    lua_pushcclosure(L, cfg_index, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setupvalue(L, -2, 1);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        snprintf(err, errlen, "%s", m ? m : "error object is not a string");
        rc = TN_EINVAL;
        goto out;
    }
    rc = cross_check(c, &ctx, path, err, errlen);
    if (rc == TN_OK) {
        free(c->path);
        c->path = strdup(path);
    }
out:
    lua_close(L);
    return rc;
}

/* ---- printing ---- */

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(out, "\\%03d", (unsigned char)*s);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

/* The shortest text that reads back as the same double: 0.1, not 0.10000000000000001. */
static void print_number(FILE *out, double v)
{
    char buf[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, out);
}

void tn_config_print(const tn_config_t *c, FILE *out)
{
    fprintf(out, "-- timenet configuration: Lua, one assignment per key. Unknown keys are errors.\n"
                 "-- Durations are seconds and may be fractions. Generated by "
                 "`timenetd --print-config`.\n");
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key_t *k = &KEYS[i];
        fprintf(out, "\n-- %s%s\n%s = ", k->doc,
                tn_config_key_live(k->name) ? " [live: applied by config reload]" : "", k->name);
        switch (k->type) {
        case K_INT:
            fprintf(out, "%lld", (long long)*FIELD(c, k, int64_t));
            break;
        case K_NUM:
            print_number(out, *FIELD(c, k, double));
            break;
        case K_BOOL:
            fprintf(out, "%s", *FIELD(c, k, bool) ? "true" : "false");
            break;
        case K_STR:
            print_string(out, *FIELD(c, k, char *));
            break;
        case K_LIST: {
            const tn_strlist_t *l = FIELD(c, k, tn_strlist_t);
            fputc('{', out);
            for (int j = 0; j < l->n; j++) {
                fputs(j ? ", " : " ", out);
                print_string(out, l->v[j]);
            }
            fputs(l->n ? " }" : "}", out);
            break;
        }
        case K_NLIST: {
            const tn_numlist_t *l = FIELD(c, k, tn_numlist_t);
            fputs("{ ", out);
            for (int j = 0; j < l->n; j++) {
                if (j) fputs(", ", out);
                print_number(out, l->v[j]);
            }
            fputs(" }", out);
            break;
        }
        }
        fputc('\n', out);
    }
}
