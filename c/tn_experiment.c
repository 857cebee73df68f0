/* Lua-defined message types (see tn_experiment.h): the registry a generation builds while
 * loading, the wire encoding of field schemas, the receive path (rate limit, dedup, trace,
 * handler call through the one hook helper) and the send API. Registrations live in a
 * userdata owned by the generation's Lua state, so they go with it on reload. */
#include "tn_experiment.h"

#include "tn_config.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_policy_int.h"
#include "tn_trace.h"

#include <sodium.h>
#include <stdio.h>

/* Field kinds of a schema; all integers big-endian, strings length-prefixed (u32). */
enum { K_U8, K_U16, K_U32, K_U64, K_I64, K_F64, K_BOOL, K_STR, K__COUNT };
static const char *const KIND_NAMES[K__COUNT] = {"u8",  "u16", "u32",  "u64",
                                                 "i64", "f64", "bool", "bytes"};
static const uint8_t KIND_SIZE[K__COUNT] = {1, 2, 4, 8, 8, 8, 1, 4};

/* Outcomes counted per type in tn_experiment_messages_total{name,outcome}. */
enum { O_SENT, O_RECEIVED, O_DUPLICATE, O_MALFORMED, O_LIMITED, O_UNHANDLED, O__COUNT };
static const char *const OUTCOMES[O__COUNT] = {"sent",      "received", "duplicate",
                                               "malformed", "limited",  "unhandled"};

typedef struct {
    char name[TN_EXP_NAME_MAX + 1];
    uint16_t type;
    bool raw, dedup;
    char cls[16]; /* rate-limit class, passed to the admission call site */
    double rate;  /* messages per second per peer, received */
    int nfields;
    struct {
        char name[TN_EXP_NAME_MAX + 1];
        uint8_t kind;
    } f[TN_EXP_FIELDS_MAX];
    int handler_ref;          /* per-type handler, or LUA_NOREF: the on_message hook */
    int name_ref;             /* the name as a Lua string, pushed without allocating */
    tn_metric_t *m[O__COUNT]; /* created on the loop at first use */
} tn_exp_type_t;

typedef struct {
    int n;
    int dispatch_ref;
    tn_exp_type_t t[TN_EXP_TYPES_MAX];
} tn_exp_reg_t;

static tn_exp_reg_t *reg_of(tn_policy_gen_t *g)
{
    return g ? g->exp : NULL;
}

static void count(tn_exp_type_t *t, int o)
{
    if (!t->m[o])
        t->m[o] = tn_metric_counterf("Messages of Lua-registered types, by type and outcome",
                                     "tn_experiment_messages_total{name=\"%s\",outcome=\"%s\"}",
                                     t->name, OUTCOMES[o]);
    tn_metric_inc(t->m[o]);
}

static tn_exp_type_t *by_type(tn_exp_reg_t *r, uint16_t type)
{
    for (int i = 0; r && i < r->n; i++)
        if (r->t[i].type == type) return &r->t[i];
    return NULL;
}

static tn_exp_type_t *by_name(tn_exp_reg_t *r, const char *name)
{
    for (int i = 0; r && i < r->n; i++)
        if (strcmp(r->t[i].name, name) == 0) return &r->t[i];
    return NULL;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TN_EXP_NAME_MAX) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
    return true;
}

/* The dedup id of a message: BLAKE2b-256 over the type and the payload. */
static void msg_id(uint16_t type, const uint8_t *p, uint32_t len, uint8_t id[32])
{
    crypto_generichash_state st;
    uint8_t t[2];
    tn_put_u16(t, type);
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, t, 2);
    crypto_generichash_update(&st, p, len);
    crypto_generichash_final(&st, id, 32);
}

/* ---- rate limiting ----
 * The call site for per-class admission. Until the per-class token buckets of the security
 * work land (they take over here, keyed by t->cls), each (session, type) gets its own bucket
 * of t->rate messages per second with a burst of two seconds' worth. Buckets are a fixed
 * hashed table: a collision restarts the bucket (leniency, never a false refusal storm). */
static struct {
    uint64_t gen;
    uint16_t type;
    double tokens;
    uint64_t last_ms;
} buckets[TN_EXP_BUCKETS];

static bool admit(tn_node_t *n, const tn_session_t *s, const tn_exp_type_t *t, uint32_t len)
{
    (void)len; /* byte-based classes come with the shared buckets */
    uint64_t now = uv_now(n->loop);
    size_t i = (size_t)((s->gen * 2654435761u) ^ t->type) % TN_EXP_BUCKETS;
    double burst = t->rate * 2 < 1 ? 1 : t->rate * 2;
    if (buckets[i].gen != s->gen || buckets[i].type != t->type) {
        buckets[i].gen = s->gen;
        buckets[i].type = t->type;
        buckets[i].tokens = burst;
        buckets[i].last_ms = now;
    }
    buckets[i].tokens += (double)(now - buckets[i].last_ms) / 1000.0 * t->rate;
    if (buckets[i].tokens > burst) buckets[i].tokens = burst;
    buckets[i].last_ms = now;
    if (buckets[i].tokens < 1) return false;
    buckets[i].tokens -= 1;
    return true;
}

/* ---- wire format ---- */

/* Checks a payload against the schema without touching Lua: 0 or -1. */
static int check_payload(const tn_exp_type_t *t, const uint8_t *p, uint32_t len)
{
    if (t->raw) return 0;
    size_t off = 0;
    for (int i = 0; i < t->nfields; i++) {
        uint8_t k = t->f[i].kind;
        if (len - off < KIND_SIZE[k]) return -1;
        if (k == K_STR) {
            uint32_t sl = tn_get_u32(p + off);
            off += 4;
            if (len - off < sl) return -1;
            off += sl;
        } else {
            off += KIND_SIZE[k];
        }
    }
    return off == len ? 0 : -1;
}

/* Pushes the decoded message: a string (raw) or a table of fields. Payload checked. */
static void push_decoded(lua_State *L, const tn_exp_type_t *t, const uint8_t *p, uint32_t len)
{
    if (t->raw) {
        lua_pushlstring(L, (const char *)p, len);
        return;
    }
    lua_createtable(L, 0, t->nfields);
    size_t off = 0;
    for (int i = 0; i < t->nfields; i++) {
        const uint8_t *q = p + off;
        switch (t->f[i].kind) {
        case K_U8:
            lua_pushinteger(L, q[0]);
            break;
        case K_U16:
            lua_pushinteger(L, tn_get_u16(q));
            break;
        case K_U32:
            lua_pushinteger(L, tn_get_u32(q));
            break;
        case K_U64:
        case K_I64:
            lua_pushinteger(L, (lua_Integer)tn_get_u64(q));
            break;
        case K_F64: {
            uint64_t bits = tn_get_u64(q);
            double d;
            memcpy(&d, &bits, 8);
            lua_pushnumber(L, d);
            break;
        }
        case K_BOOL:
            lua_pushboolean(L, q[0] != 0);
            break;
        case K_STR: {
            uint32_t sl = tn_get_u32(q);
            lua_pushlstring(L, (const char *)q + 4, sl);
            off += sl;
            break;
        }
        }
        off += KIND_SIZE[t->f[i].kind];
        lua_setfield(L, -2, t->f[i].name);
    }
}

/* Encodes the message at index `idx` (string for raw types, else a table of fields) into a
 * Lua string left on the stack; raises on a value that does not fit the schema. Lua owns
 * every byte, so an error on the way leaks nothing. */
static void encode(lua_State *L, const tn_exp_type_t *t, int idx)
{
    idx = lua_absindex(L, idx);
    if (t->raw) {
        if (lua_type(L, idx) != LUA_TSTRING)
            luaL_error(L, "message '%s' is raw: expected a string, got %s", t->name,
                       luaL_typename(L, idx));
        lua_pushvalue(L, idx);
        return;
    }
    if (!lua_istable(L, idx))
        luaL_error(L, "message '%s': expected a table of fields, got %s", t->name,
                   luaL_typename(L, idx));
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 0; i < t->nfields; i++) {
        uint8_t w[8];
        uint8_t k = t->f[i].kind;
        lua_pushstring(L, t->f[i].name);
        lua_rawget(L, idx);
        int isnum = 0;
        if (k == K_STR) {
            size_t sl;
            const char *s = lua_tolstring(L, -1, &sl);
            if (!s || lua_type(L, -1) != LUA_TSTRING) {
                if (lua_isnil(L, -1)) {
                    s = "";
                    sl = 0;
                } else {
                    luaL_error(L, "message '%s': field '%s' must be a string", t->name,
                               t->f[i].name);
                }
            }
            if (sl > TN_EXP_PAYLOAD_MAX) luaL_error(L, "message '%s': field too long", t->name);
            tn_put_u32(w, (uint32_t)sl);
            lua_pop(L, 1); /* the string stays reachable from the fields table */
            luaL_addlstring(&b, (const char *)w, 4);
            luaL_addlstring(&b, s, sl);
            continue;
        }
        if (k == K_BOOL) {
            w[0] = lua_toboolean(L, -1) ? 1 : 0;
        } else if (k == K_F64) {
            double d = lua_isnil(L, -1) ? 0 : lua_tonumberx(L, -1, &isnum);
            if (!lua_isnil(L, -1) && !isnum)
                luaL_error(L, "message '%s': field '%s' must be a number", t->name, t->f[i].name);
            uint64_t bits;
            memcpy(&bits, &d, 8);
            tn_put_u64(w, bits);
        } else {
            lua_Integer v = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &isnum);
            if (!lua_isnil(L, -1) && !isnum)
                luaL_error(L, "message '%s': field '%s' must be an integer", t->name, t->f[i].name);
            uint64_t u = (uint64_t)v;
            if ((k == K_U8 && u > 0xff) || (k == K_U16 && u > 0xffff) ||
                (k == K_U32 && u > 0xffffffffu))
                luaL_error(L, "message '%s': field '%s' out of range for %s", t->name, t->f[i].name,
                           KIND_NAMES[k]);
            if (k == K_U8) w[0] = (uint8_t)u;
            if (k == K_U16) tn_put_u16(w, (uint16_t)u);
            if (k == K_U32) tn_put_u32(w, (uint32_t)u);
            if (k == K_U64 || k == K_I64) tn_put_u64(w, u);
        }
        lua_pop(L, 1);
        luaL_addlstring(&b, (const char *)w, KIND_SIZE[k]);
    }
    luaL_pushresult(&b);
}

/* ---- receive ---- */

/* Runs inside the hook call (protected, under the budget): decodes and calls the handler.
 * Stack: handler, peer, name, type (light userdata), payload (light userdata), length. */
static int dispatch(lua_State *L)
{
    const tn_exp_type_t *t = lua_touserdata(L, 4);
    const uint8_t *p = lua_touserdata(L, 5);
    uint32_t len = (uint32_t)lua_tointeger(L, 6);
    lua_settop(L, 3);
    push_decoded(L, t, p, len);
    lua_call(L, 3, 0);
    return 0;
}

bool tn_exp_on_message(tn_node_t *n, tn_session_t *s, uint16_t type, const uint8_t *p, uint32_t len)
{
    tn_policy_t *pol = n->policy;
    tn_policy_gen_t *g = pol ? pol->gen : NULL;
    tn_exp_reg_t *r = reg_of(g);
    tn_exp_type_t *t = by_type(r, type);
    if (!t) return false;
    if (!admit(n, s, t, len)) {
        count(t, O_LIMITED);
        return true;
    }
    if (check_payload(t, p, len) != 0) {
        count(t, O_MALFORMED); /* an experiment's format is not the core protocol: no strike */
        return true;
    }
    uint8_t id[32];
    if (t->dedup || tn_trace_on) msg_id(type, p, len, id);
    if (t->dedup && tn_dedup_check_insert(&n->dedup, id, uv_now(n->loop))) {
        count(t, O_DUPLICATE);
        TN_TRACE(n, "recv", t->name, id, 32, s, NULL, "duplicate");
        return true;
    }
    count(t, O_RECEIVED);
    TN_TRACE(n, "recv", t->name, id, 32, s, NULL, "accepted");
    int ref = t->handler_ref != LUA_NOREF ? t->handler_ref : g->hook_ref[TN_HOOK_on_message];
    lua_State *L;
    int base;
    if (ref == LUA_NOREF ||
        !tn_hook_begin_ref(pol, TN_HOOK_on_message, r->dispatch_ref, &L, &base)) {
        count(t, O_UNHANDLED);
        return true;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    tn_peer_view_t v = tn_node_view(n, s, NULL);
    tn_policy_peer_push(g, &v);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->name_ref);
    lua_pushlightuserdata(L, t);
    lua_pushlightuserdata(L, (void *)p);
    lua_pushinteger(L, len);
    tn_hook_run(pol, TN_HOOK_on_message, 6, 0);
    tn_hook_end(pol, L, base);
    return true;
}

/* ---- the API ---- */

static tn_exp_reg_t *api_reg(lua_State *L)
{
    tn_exp_reg_t *r = reg_of(TN_GEN(L));
    if (!r) luaL_error(L, "experiments are not available here");
    return r;
}

static tn_node_t *api_node(lua_State *L, const char *fn)
{
    tn_policy_gen_t *g = TN_GEN(L);
    if (!g->host) luaL_error(L, "%s: not while loading (call it from a hook or tn.after)", fn);
    return g->host->node;
}

static bool established(const tn_session_t *s)
{
    return s->state == TN_SS_OPEN && s->peer && s->hello;
}

/* The session a peer argument names: the peer object of the hook in progress, or a string
 * (node id, a prefix of 8+ hex digits, the peer's hello name, or its "IP:port"). */
static tn_session_t *resolve(lua_State *L, tn_node_t *n, int idx)
{
    tn_policy_gen_t *g = TN_GEN(L);
    if (luaL_testudata(L, idx, "tn.peer")) {
        tn_session_t *s = (tn_session_t *)g->cur.s;
        if (!s) luaL_error(L, "peer object used outside its hook (keep peer.id instead)");
        return established(s) ? s : NULL;
    }
    const char *k = luaL_checkstring(L, idx);
    size_t kl = strlen(k);
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (!established(s)) continue;
        char hex[2 * TN_ID_LEN + 1], a[TN_ADDR_STRLEN];
        tn_hex(hex, s->their_id, TN_ID_LEN);
        tn_addr_fmt(&s->remote, a);
        if ((kl >= 8 && kl <= 64 && strncmp(hex, k, kl) == 0) || strcmp(s->their_name, k) == 0 ||
            strcmp(a, k) == 0)
            return s;
    }
    return NULL;
}

static tn_exp_type_t *check_type(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    tn_exp_type_t *t = by_name(api_reg(L), name);
    if (!t) luaL_error(L, "unknown message type '%s' (register it with tn.message)", name);
    return t;
}

static size_t payload_max(const tn_node_t *n)
{
    size_t frame = (size_t)n->cfg->max_frame_size - 16 - TN_MSG_HDR_LEN;
    return frame < TN_EXP_PAYLOAD_MAX ? frame : TN_EXP_PAYLOAD_MAX;
}

/* Sends an encoded payload (string at the stack top) to s; true when queued. */
static bool send_one(tn_node_t *n, tn_session_t *s, tn_exp_type_t *t, const char *p, size_t len,
                     const uint8_t *id)
{
    if (tn_session_send(s, t->type, p, (uint32_t)len) != TN_OK) return false;
    count(t, O_SENT);
    TN_TRACE(n, "send", t->name, id, 32, NULL, s, NULL);
    return true;
}

/* Encodes argument idx for t, leaving the payload on the stack; fills id when needed. */
static const char *prepare(lua_State *L, tn_node_t *n, tn_exp_type_t *t, int idx, size_t *len,
                           uint8_t id[32])
{
    encode(L, t, idx);
    const char *p = lua_tolstring(L, -1, len);
    if (*len > payload_max(n))
        luaL_error(L, "message '%s' of %d bytes is above the limit of %d", t->name, (int)*len,
                   (int)payload_max(n));
    if (t->dedup || tn_trace_on) msg_id(t->type, (const uint8_t *)p, (uint32_t)*len, id);
    /* our own message must not come back to us as new */
    if (t->dedup) tn_dedup_insert(&n->dedup, id, uv_now(n->loop));
    return p;
}

/* tn.send(peer, name, fields) -> true | nil, why */
static int api_send(lua_State *L)
{
    tn_node_t *n = api_node(L, "tn.send");
    tn_exp_type_t *t = check_type(L, 2);
    tn_session_t *s = resolve(L, n, 1);
    size_t len;
    uint8_t id[32];
    const char *p = prepare(L, n, t, 3, &len, id);
    if (!s) {
        lua_pushnil(L);
        lua_pushliteral(L, "peer not connected");
        return 2;
    }
    if (!send_one(n, s, t, p, len, id)) {
        lua_pushnil(L);
        lua_pushliteral(L, "peer cannot take more (write buffer full or closing)");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* tn.broadcast(name, fields [, except]) -> number of peers it was sent to */
static int api_broadcast(lua_State *L)
{
    tn_node_t *n = api_node(L, "tn.broadcast");
    tn_exp_type_t *t = check_type(L, 1);
    tn_session_t *except = lua_isnoneornil(L, 3) ? NULL : resolve(L, n, 3);
    size_t len;
    uint8_t id[32];
    const char *p = prepare(L, n, t, 2, &len, id);
    int sent = 0;
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (s != except && established(s) && send_one(n, s, t, p, len, id)) sent++;
    lua_pushinteger(L, sent);
    return 1;
}

/* tn.peers() -> { {id=, short_id=, name=, addr=, dir=, rtt_ms=, masternode=}, ... } */
static int api_peers(lua_State *L)
{
    tn_node_t *n = api_node(L, "tn.peers");
    lua_newtable(L);
    int i = 0;
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (!established(s)) continue;
        char hex[2 * TN_ID_LEN + 1], a[TN_ADDR_STRLEN];
        tn_hex(hex, s->their_id, TN_ID_LEN);
        tn_addr_fmt(&s->remote, a);
        lua_createtable(L, 0, 7);
        lua_pushstring(L, hex);
        lua_setfield(L, -2, "id");
        lua_pushlstring(L, hex, 8);
        lua_setfield(L, -2, "short_id");
        lua_pushstring(L, s->their_name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, a);
        lua_setfield(L, -2, "addr");
        lua_pushstring(L, s->outbound ? "out" : "in");
        lua_setfield(L, -2, "dir");
        lua_pushnumber(L, s->rtt_ms);
        lua_setfield(L, -2, "rtt_ms");
        lua_pushboolean(L, tn_chain_is_masternode(n, s->their_id));
        lua_setfield(L, -2, "masternode");
        lua_rawseti(L, -2, ++i);
    }
    return 1;
}

/* tn.self() -> {id=, name=, listen=} */
static int api_self(lua_State *L)
{
    tn_node_t *n = api_node(L, "tn.self");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, n->id_hex);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, n->cfg->node_name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, n->cfg->listen);
    lua_setfield(L, -2, "listen");
    return 1;
}

/* tn.feature(name) -> whether the flag is in the config's `features` */
static int api_feature(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    const char *name = luaL_checkstring(L, 1);
    const tn_config_t *c = g->cfg;
    lua_pushboolean(L, c && tn_config_has(&c->features, name));
    return 1;
}

static const char *opt_string(lua_State *L, const char *key, const char *dflt)
{
    lua_getfield(L, 1, key);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "tn.message: '%s' must be a string", key);
    const char *v = lua_isnil(L, -1) ? dflt : lua_tostring(L, -1);
    lua_pop(L, 1); /* strings from the spec table stay alive while it is on the stack */
    return v;
}

/* tn.message{ name=, id=0x8000..0xFFFF, fields={ {"name","kind"}, ... } | raw=true,
 *             class="data", rate=100, dedup=false, feature=nil, handler=nil } -> name | nil
 * While loading only. With `feature` set and that flag off, nothing is registered (nil):
 * the node then ignores the type like a node without the experiment. */
static int api_message(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    tn_exp_reg_t *r = api_reg(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (g->host) return luaL_error(L, "tn.message: register message types while loading");
    const char *feature = opt_string(L, "feature", NULL);
    if (feature) {
        const tn_config_t *c = g->cfg;
        if (!c || !tn_config_has(&c->features, feature)) {
            lua_pushnil(L);
            return 1;
        }
    }
    const char *name = opt_string(L, "name", NULL);
    if (!name || !valid_name(name))
        return luaL_error(L, "tn.message: 'name' must be 1-%d characters of a-z 0-9 _",
                          TN_EXP_NAME_MAX);
    if (by_name(r, name)) return luaL_error(L, "tn.message: '%s' is already registered", name);
    if (r->n == TN_EXP_TYPES_MAX)
        return luaL_error(L, "tn.message: more than %d message types", TN_EXP_TYPES_MAX);
    lua_getfield(L, 1, "id");
    int isnum = 0;
    lua_Integer id = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || id < TN_MSG_EXPERIMENT_FIRST || id > 0xFFFF)
        return luaL_error(L, "tn.message: 'id' must be an integer in 0x8000-0xFFFF");
    if (by_type(r, (uint16_t)id))
        return luaL_error(L, "tn.message: id 0x%x is already registered by '%s'", (int)id,
                          by_type(r, (uint16_t)id)->name);
    tn_exp_type_t *t = &r->t[r->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = (uint16_t)id;
    t->handler_ref = LUA_NOREF;
    const char *cls = opt_string(L, "class", "data");
    if (strlen(cls) >= sizeof t->cls || !valid_name(cls))
        return luaL_error(L, "tn.message: 'class' must be a short name (control, data, bulk)");
    snprintf(t->cls, sizeof t->cls, "%s", cls);
    lua_getfield(L, 1, "rate");
    t->rate = lua_isnil(L, -1) ? TN_EXP_RATE_DEFAULT : lua_tonumberx(L, -1, &isnum);
    if (!lua_isnil(L, -1) && (!isnum || !(t->rate > 0 && t->rate <= 1e6)))
        return luaL_error(L, "tn.message: 'rate' must be messages per second in (0, 1e6]");
    lua_pop(L, 1);
    lua_getfield(L, 1, "dedup");
    t->dedup = lua_toboolean(L, -1);
    lua_getfield(L, 1, "raw");
    t->raw = lua_toboolean(L, -1);
    lua_pop(L, 2);
    lua_getfield(L, 1, "fields");
    if (t->raw && !lua_isnil(L, -1)) return luaL_error(L, "tn.message: a raw type has no 'fields'");
    if (!t->raw) {
        if (!lua_istable(L, -1))
            return luaL_error(L, "tn.message: 'fields' must be a list of {name, kind} "
                                 "(or raw = true)");
        int nf = (int)lua_rawlen(L, -1);
        if (nf > TN_EXP_FIELDS_MAX)
            return luaL_error(L, "tn.message: more than %d fields", TN_EXP_FIELDS_MAX);
        for (int i = 1; i <= nf; i++) {
            lua_rawgeti(L, -1, i);
            if (!lua_istable(L, -1)) return luaL_error(L, "tn.message: field %d: {name, kind}", i);
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            const char *fname = lua_tostring(L, -2), *kind = lua_tostring(L, -1);
            if (!fname || !valid_name(fname))
                return luaL_error(L, "tn.message: field %d: bad name", i);
            int k = 0;
            while (kind && k < K__COUNT && strcmp(KIND_NAMES[k], kind) != 0) k++;
            if (!kind || k == K__COUNT)
                return luaL_error(L,
                                  "tn.message: field '%s': kind must be u8 u16 u32 u64 i64 f64 "
                                  "bool or bytes",
                                  fname);
            for (int j = 0; j < i - 1; j++)
                if (strcmp(t->f[j].name, fname) == 0)
                    return luaL_error(L, "tn.message: field '%s' twice", fname);
            snprintf(t->f[i - 1].name, sizeof t->f[0].name, "%s", fname);
            t->f[i - 1].kind = (uint8_t)k;
            lua_pop(L, 3);
        }
        t->nfields = nf;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "handler");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
        return luaL_error(L, "tn.message: 'handler' must be a function");
    if (lua_isfunction(L, -1))
        t->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
        lua_pop(L, 1);
    lua_pushstring(L, t->name);
    t->name_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r->n++;
    lua_pushstring(L, t->name);
    return 1;
}

void tn_exp_api_open(lua_State *L, tn_policy_gen_t *g)
{
    tn_exp_reg_t *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    luaL_ref(L, LUA_REGISTRYINDEX); /* owned by the state: freed with the generation */
    lua_pushcfunction(L, dispatch);
    r->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    g->exp = r;
    static const luaL_Reg api[] = {{"message", api_message},
                                   {"send", api_send},
                                   {"broadcast", api_broadcast},
                                   {"peers", api_peers},
                                   {"self", api_self},
                                   {"feature", api_feature},
                                   {NULL, NULL}};
    lua_getglobal(L, "tn");
    luaL_setfuncs(L, api, 0);
    lua_pop(L, 1);
}
