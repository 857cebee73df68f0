/* Lua 5.4 module `timenet`: the node's own codec, handshake and frame crypto for tests and
 * the adversarial peer (tests/lib/advpeer.lua). Thin wrappers over tn_proto/tn_crypto, with
 * every field settable so a test can send what a correct node never would. */
#include "tn_crypto.h"
#include "tn_tx.h"

#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#define HS_MT "timenet.handshake"
#define AEAD_MT "timenet.aead"
#define BUF_MAX ((size_t)UINT32_MAX) /* encoders: bound of one message */

typedef struct {
    tn_hs_t hs;
    tn_prologue_t mine; /* theirs is checked against it */
} lhs_t;

static const char *err_name(int rc)
{
    switch (rc) {
    case TN_EMAGIC:
        return "magic";
    case TN_EVERSION:
        return "version";
    case TN_ECRYPTO:
        return "crypto";
    case TN_ETOOBIG:
        return "toobig";
    case TN_EINVAL:
        return "invalid";
    default:
        return tn_strerror(rc);
    }
}

static int fail(lua_State *L, int rc)
{
    lua_pushnil(L);
    lua_pushstring(L, err_name(rc));
    return 2;
}

static const uint8_t *check_bytes(lua_State *L, int i, size_t want, const char *what)
{
    size_t n;
    const char *s = luaL_checklstring(L, i, &n);
    if (n != want) luaL_error(L, "%s must be %d bytes, got %d", what, (int)want, (int)n);
    return (const uint8_t *)s;
}

/* Pushes b's bytes and frees it; raises on an encoder error. */
static int push_buf(lua_State *L, tn_buf_t *b, int rc)
{
    if (rc) {
        tn_buf_free(b);
        return luaL_error(L, "encode: %s", tn_strerror(rc));
    }
    lua_pushlstring(L, (const char *)b->p, b->len);
    tn_buf_free(b);
    return 1;
}

/* ---- keys and hex ---- */

/* keypair([seed32]) -> public key (32), secret key (64) */
static int l_keypair(lua_State *L)
{
    uint8_t pk[TN_ID_LEN], sk[TN_ID_SK_LEN];
    if (lua_isnoneornil(L, 1))
        crypto_sign_keypair(pk, sk);
    else
        crypto_sign_seed_keypair(pk, sk, check_bytes(L, 1, 32, "seed"));
    lua_pushlstring(L, (const char *)pk, sizeof pk);
    lua_pushlstring(L, (const char *)sk, sizeof sk);
    sodium_memzero(sk, sizeof sk);
    return 2;
}

/* read_key(path) -> secret key (64), public key (32) from a node.key hex file, or nil, why */
static int l_read_key(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "rb");
    if (!f) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open %s", path);
        return 2;
    }
    char hex[2 * TN_ID_SK_LEN + 1];
    size_t n = fread(hex, 1, 2 * TN_ID_SK_LEN, f);
    fclose(f);
    hex[n] = 0;
    uint8_t sk[TN_ID_SK_LEN];
    if (n != 2 * TN_ID_SK_LEN || tn_unhex(sk, TN_ID_SK_LEN, hex)) return fail(L, TN_EINVAL);
    lua_pushlstring(L, (const char *)sk, sizeof sk);
    lua_pushlstring(L, (const char *)sk + 32, TN_ID_LEN);
    sodium_memzero(sk, sizeof sk);
    return 2;
}

static int l_hex(lua_State *L)
{
    size_t n;
    const uint8_t *s = (const uint8_t *)luaL_checklstring(L, 1, &n);
    char *out = malloc(2 * n + 1);
    if (!out) return luaL_error(L, "out of memory");
    tn_hex(out, s, n);
    lua_pushlstring(L, out, 2 * n);
    free(out);
    return 1;
}

static int l_unhex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n % 2) return fail(L, TN_EINVAL);
    uint8_t *out = malloc(n / 2 + 1);
    if (!out) return luaL_error(L, "out of memory");
    int rc = tn_unhex(out, n / 2, s);
    if (rc == TN_OK) lua_pushlstring(L, (const char *)out, n / 2);
    free(out);
    return rc ? fail(L, rc) : 1;
}

/* ---- prologue ---- */

/* Reads {magic=4 bytes, version=, min_version=, nonce=} at index i; missing fields are ours. */
static void check_prologue(lua_State *L, int i, tn_prologue_t *p)
{
    memcpy(p->magic, "TIME", 4);
    p->version = TN_PROTO_VERSION;
    p->min_version = TN_PROTO_MIN_VERSION;
    randombytes_buf(&p->nonce, sizeof p->nonce);
    if (lua_isnoneornil(L, i)) return;
    luaL_checktype(L, i, LUA_TTABLE);
    if (lua_getfield(L, i, "magic") != LUA_TNIL) {
        lua_pushvalue(L, -1);
        memcpy(p->magic, check_bytes(L, lua_gettop(L), 4, "magic"), 4);
        lua_pop(L, 1);
    }
    if (lua_getfield(L, i, "version") != LUA_TNIL) p->version = (uint16_t)luaL_checkinteger(L, -1);
    if (lua_getfield(L, i, "min_version") != LUA_TNIL)
        p->min_version = (uint16_t)luaL_checkinteger(L, -1);
    if (lua_getfield(L, i, "nonce") != LUA_TNIL) p->nonce = (uint64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 4);
}

static void push_prologue(lua_State *L, const tn_prologue_t *p)
{
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, (const char *)p->magic, 4);
    lua_setfield(L, -2, "magic");
    lua_pushinteger(L, p->version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, p->min_version);
    lua_setfield(L, -2, "min_version");
    lua_pushinteger(L, (lua_Integer)p->nonce);
    lua_setfield(L, -2, "nonce");
}

/* prologue{magic=, version=, min_version=, nonce=} -> 16 bytes */
static int l_prologue(lua_State *L)
{
    tn_prologue_t p;
    uint8_t out[TN_PROLOGUE_LEN];
    check_prologue(L, 1, &p);
    tn_prologue_encode(&p, out);
    lua_pushlstring(L, (const char *)out, sizeof out);
    return 1;
}

/* ---- frame crypto: one direction ---- */

static tn_aead_t *push_aead(lua_State *L, const tn_aead_t *from)
{
    tn_aead_t *a = lua_newuserdatauv(L, sizeof(*a), 0);
    *a = *from;
    luaL_setmetatable(L, AEAD_MT);
    return a;
}

/* aead(key32 [, counter]) -> a direction object from a raw key */
static int l_aead(lua_State *L)
{
    tn_aead_t a;
    memcpy(a.key, check_bytes(L, 1, TN_KEY_LEN, "key"), TN_KEY_LEN);
    a.counter = (uint64_t)luaL_optinteger(L, 2, 0);
    push_aead(L, &a);
    return 1;
}

/* a:seal(plaintext) -> frame (4-byte header | ciphertext | tag); the counter advances */
static int aead_seal(lua_State *L)
{
    tn_aead_t *a = luaL_checkudata(L, 1, AEAD_MT);
    size_t plen;
    const char *pt = luaL_checklstring(L, 2, &plen);
    if (plen > UINT32_MAX - TN_TAG_LEN) return luaL_error(L, "plaintext too long");
    uint8_t *buf = malloc(TN_FRAME_HDR_LEN + plen + TN_TAG_LEN);
    if (!buf) return luaL_error(L, "out of memory");
    memcpy(buf + TN_FRAME_HDR_LEN, pt, plen);
    size_t n = tn_frame_seal(a, buf, plen);
    lua_pushlstring(L, (const char *)buf, n);
    free(buf);
    return 1;
}

/* a:open(header4, ciphertext) or a:open(frame) -> plaintext, or nil, "crypto"|"invalid" */
static int aead_open(lua_State *L)
{
    tn_aead_t *a = luaL_checkudata(L, 1, AEAD_MT);
    size_t hn, cn;
    const char *h = luaL_checklstring(L, 2, &hn), *ct;
    if (lua_isnoneornil(L, 3)) {
        if (hn < TN_FRAME_HDR_LEN) return fail(L, TN_EINVAL);
        ct = h + TN_FRAME_HDR_LEN;
        cn = hn - TN_FRAME_HDR_LEN;
    } else {
        ct = luaL_checklstring(L, 3, &cn);
        if (hn != TN_FRAME_HDR_LEN) return fail(L, TN_EINVAL);
    }
    if (cn > UINT32_MAX) return fail(L, TN_ETOOBIG);
    uint8_t *buf = malloc(cn ? cn : 1);
    if (!buf) return luaL_error(L, "out of memory");
    memcpy(buf, ct, cn);
    int rc = tn_frame_open(a, (const uint8_t *)h, buf, (uint32_t)cn);
    if (rc == TN_OK) lua_pushlstring(L, (const char *)buf, cn - TN_TAG_LEN);
    free(buf);
    return rc ? fail(L, rc) : 1;
}

/* a:counter([n]) -> the counter (the next frame's sequence number); sets it when n given */
static int aead_counter(lua_State *L)
{
    tn_aead_t *a = luaL_checkudata(L, 1, AEAD_MT);
    lua_Integer old = (lua_Integer)a->counter;
    if (!lua_isnoneornil(L, 2)) a->counter = (uint64_t)luaL_checkinteger(L, 2);
    lua_pushinteger(L, old);
    return 1;
}

static int aead_key(lua_State *L)
{
    tn_aead_t *a = luaL_checkudata(L, 1, AEAD_MT);
    lua_pushlstring(L, (const char *)a->key, TN_KEY_LEN);
    return 1;
}

static int aead_clone(lua_State *L)
{
    push_aead(L, luaL_checkudata(L, 1, AEAD_MT));
    return 1;
}

static int aead_gc(lua_State *L)
{
    sodium_memzero(luaL_checkudata(L, 1, AEAD_MT), sizeof(tn_aead_t));
    return 0;
}

/* frame_len(header4 [, max]) -> ciphertext length, or nil, "invalid"|"toobig" */
static int l_frame_len(lua_State *L)
{
    const uint8_t *h = check_bytes(L, 1, TN_FRAME_HDR_LEN, "frame header");
    uint32_t max = (uint32_t)luaL_optinteger(L, 2, UINT32_MAX), clen;
    int rc = tn_frame_len(h, max, &clen);
    if (rc) return fail(L, rc);
    lua_pushinteger(L, clen);
    return 1;
}

/* ---- handshake ---- */

/* handshake(initiator, prologue_table [, e_sk32]) -> hs */
static int l_handshake(lua_State *L)
{
    int initiator = lua_toboolean(L, 1);
    tn_prologue_t p;
    check_prologue(L, 2, &p);
    const uint8_t *esk = lua_isnoneornil(L, 3) ? NULL : check_bytes(L, 3, 32, "ephemeral key");
    lhs_t *h = lua_newuserdatauv(L, sizeof(*h), 0);
    tn_hs_start(&h->hs, initiator, &p, esk);
    h->mine = p;
    luaL_setmetatable(L, HS_MT);
    return 1;
}

/* hs:flight() -> our 48-byte first flight (prologue | ephemeral public key) */
static int hs_flight(lua_State *L)
{
    tn_hs_t *hs = &((lhs_t *)luaL_checkudata(L, 1, HS_MT))->hs;
    lua_pushlstring(L, (const char *)hs->flight_mine, TN_FLIGHT1_LEN);
    return 1;
}

/* hs:read_flight(48 bytes) -> true, or nil, "magic"|"version"|"crypto" */
static int hs_read_flight(lua_State *L)
{
    lhs_t *h = luaL_checkudata(L, 1, HS_MT);
    int rc = tn_hs_read_flight(&h->hs, &h->mine, check_bytes(L, 2, TN_FLIGHT1_LEN, "flight"));
    if (rc) return fail(L, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* hs:theirs() -> their prologue as a table (filled even when read_flight failed) */
static int hs_theirs(lua_State *L)
{
    tn_hs_t *hs = &((lhs_t *)luaL_checkudata(L, 1, HS_MT))->hs;
    push_prologue(L, &hs->theirs);
    return 1;
}

/* hs:auth(secret_key64) -> 96-byte auth payload (id | signature) */
static int hs_auth(lua_State *L)
{
    tn_hs_t *hs = &((lhs_t *)luaL_checkudata(L, 1, HS_MT))->hs;
    uint8_t out[TN_AUTH_LEN];
    tn_hs_auth(hs, check_bytes(L, 2, TN_ID_SK_LEN, "secret key"), out);
    lua_pushlstring(L, (const char *)out, sizeof out);
    return 1;
}

/* hs:verify(96 bytes) -> their node id (32 bytes), or nil, "crypto" */
static int hs_verify(lua_State *L)
{
    tn_hs_t *hs = &((lhs_t *)luaL_checkudata(L, 1, HS_MT))->hs;
    int rc = tn_hs_verify(hs, check_bytes(L, 2, TN_AUTH_LEN, "auth payload"));
    if (rc) return fail(L, rc);
    lua_pushlstring(L, (const char *)hs->their_id, TN_ID_LEN);
    return 1;
}

/* hs:keys() -> tx, rx direction objects (copies; valid after read_flight) */
static int hs_keys(lua_State *L)
{
    tn_hs_t *hs = &((lhs_t *)luaL_checkudata(L, 1, HS_MT))->hs;
    push_aead(L, &hs->tx);
    push_aead(L, &hs->rx);
    return 2;
}

static int hs_gc(lua_State *L)
{
    sodium_memzero(luaL_checkudata(L, 1, HS_MT), sizeof(lhs_t));
    return 0;
}

/* ---- messages ---- */

/* msg(type, payload) -> one message (type 2 | length 4 | payload) */
static int l_msg(lua_State *L)
{
    uint16_t type = (uint16_t)luaL_checkinteger(L, 1);
    size_t n;
    const char *p = luaL_optlstring(L, 2, "", &n);
    if (n > UINT32_MAX) return luaL_error(L, "payload too long");
    tn_buf_t b;
    tn_buf_init(&b, BUF_MAX);
    return push_buf(L, &b, tn_msg_append(&b, type, p, (uint32_t)n));
}

/* decode_msgs(plaintext) -> { {type=, payload=}, ... }, or nil, "invalid", messages so far */
static int l_decode_msgs(lua_State *L)
{
    size_t n, off = 0;
    const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n), *payload;
    uint16_t type;
    uint32_t len;
    int rc, i = 0;
    lua_newtable(L);
    while ((rc = tn_msg_next(p, n, &off, &type, &payload, &len)) == 1) {
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, type);
        lua_setfield(L, -2, "type");
        lua_pushlstring(L, (const char *)payload, len);
        lua_setfield(L, -2, "payload");
        lua_rawseti(L, -2, ++i);
    }
    if (rc == 0) return 1;
    lua_pushnil(L);
    lua_pushstring(L, err_name(rc));
    lua_rotate(L, -3, 2); /* nil, "invalid", list */
    return 3;
}

static int msgs_iter(lua_State *L)
{
    size_t n, off = (size_t)lua_tointeger(L, lua_upvalueindex(2));
    const uint8_t *p = (const uint8_t *)lua_tolstring(L, lua_upvalueindex(1), &n), *payload;
    uint16_t type;
    uint32_t len;
    int rc = tn_msg_next(p, n, &off, &type, &payload, &len);
    if (rc < 0) return luaL_error(L, "malformed message framing at byte %d", (int)off);
    if (rc == 0) return 0;
    lua_pushinteger(L, (lua_Integer)off);
    lua_replace(L, lua_upvalueindex(2));
    lua_pushinteger(L, type);
    lua_pushlstring(L, (const char *)payload, len);
    return 2;
}

/* messages(plaintext) -> iterator of type, payload (raises on malformed framing) */
static int l_messages(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, msgs_iter, 2);
    return 1;
}

/* hello{version=, flags=, height=, listen_port=, time_ms=, name=} -> one hello message */
static int l_hello(lua_State *L)
{
    tn_hello_t h;
    memset(&h, 0, sizeof h);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "version");
    h.version = (uint16_t)luaL_optinteger(L, -1, TN_PROTO_VERSION);
    lua_getfield(L, 1, "flags");
    h.flags = (uint32_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "height");
    h.height = (uint64_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "listen_port");
    h.listen_port = (uint16_t)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "time_ms");
    h.time_ms = lua_isnil(L, -1) ? tn_wall_ms() : (uint64_t)luaL_checkinteger(L, -1);
    lua_getfield(L, 1, "name");
    snprintf(h.name, sizeof h.name, "%s", luaL_optstring(L, -1, ""));
    lua_pop(L, 6);
    tn_buf_t b;
    tn_buf_init(&b, BUF_MAX);
    return push_buf(L, &b, tn_hello_encode(&b, &h));
}

/* hello_decode(payload) -> table, or nil, "invalid" */
static int l_hello_decode(lua_State *L)
{
    size_t n;
    const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n);
    tn_hello_t h;
    if (n > UINT32_MAX) return fail(L, TN_EINVAL);
    int rc = tn_hello_decode(p, (uint32_t)n, &h);
    if (rc) return fail(L, rc);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, h.version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, h.flags);
    lua_setfield(L, -2, "flags");
    lua_pushinteger(L, (lua_Integer)h.height);
    lua_setfield(L, -2, "height");
    lua_pushinteger(L, h.listen_port);
    lua_setfield(L, -2, "listen_port");
    lua_pushinteger(L, (lua_Integer)h.time_ms);
    lua_setfield(L, -2, "time_ms");
    lua_pushstring(L, h.name);
    lua_setfield(L, -2, "name");
    return 1;
}

/* u64(type, v) -> one message carrying a 64-bit value (ping, pong) */
static int l_u64(lua_State *L)
{
    uint16_t type = (uint16_t)luaL_checkinteger(L, 1);
    uint64_t v = (uint64_t)luaL_checkinteger(L, 2);
    tn_buf_t b;
    tn_buf_init(&b, BUF_MAX);
    return push_buf(L, &b, tn_u64_msg_encode(&b, type, v));
}

/* u64_decode(payload) -> integer, or nil, "invalid" */
static int l_u64_decode(lua_State *L)
{
    size_t n;
    const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n);
    uint64_t v;
    int rc = tn_u64_msg_decode(p, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, &v);
    if (rc) return fail(L, rc);
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

/* msg_name(type) -> "hello", ... or nil for a type this build does not know */
/* ---- transactions and blocks (tn_tx.h) ---- */

/* tx(sk64, expiry_s, nonce, payload) -> raw signed transaction, id (32) */
static int l_tx(lua_State *L)
{
    const uint8_t *sk = check_bytes(L, 1, 64, "secret key");
    lua_Integer expiry = luaL_checkinteger(L, 2), nonce = luaL_checkinteger(L, 3);
    size_t pl;
    const char *payload = luaL_optlstring(L, 4, "", &pl);
    tn_buf_t b;
    tn_buf_init(&b, 64u << 20);
    int rc = tn_tx_build(&b, sk, (uint64_t)expiry, (uint64_t)nonce, payload, (uint32_t)pl);
    if (rc) {
        tn_buf_free(&b);
        return luaL_error(L, "tx: %s", tn_strerror(rc));
    }
    tn_tx_t tx;
    tn_tx_parse(b.p, (uint32_t)b.len, UINT32_MAX, &tx);
    lua_pushlstring(L, (const char *)b.p, b.len);
    lua_pushlstring(L, (const char *)tx.id, 32);
    tn_buf_free(&b);
    return 2;
}

/* tx_parse(raw) -> {id, sender, expiry, nonce, payload, valid_sig} or nil, why */
static int l_tx_parse(lua_State *L)
{
    size_t n;
    const uint8_t *p = (const uint8_t *)luaL_checklstring(L, 1, &n);
    tn_tx_t tx;
    int rc = tn_tx_parse(p, (uint32_t)n, UINT32_MAX, &tx);
    if (rc) return fail(L, rc);
    lua_createtable(L, 0, 6);
    lua_pushlstring(L, (const char *)tx.id, 32);
    lua_setfield(L, -2, "id");
    lua_pushlstring(L, (const char *)tx.sender, 32);
    lua_setfield(L, -2, "sender");
    lua_pushinteger(L, (lua_Integer)tx.expiry);
    lua_setfield(L, -2, "expiry");
    lua_pushinteger(L, (lua_Integer)tx.nonce);
    lua_setfield(L, -2, "nonce");
    lua_pushlstring(L, (const char *)tx.payload, tx.payload_len);
    lua_setfield(L, -2, "payload");
    lua_pushboolean(L, tn_tx_verify(&tx) == TN_OK);
    lua_setfield(L, -2, "valid_sig");
    return 1;
}

/* block(sk64|nil, height, prev32, slot, time_ms, {raw tx, ...}) -> raw block, id (32).
 * Without a key the block is unsigned (tests of forged blocks sign with any key they like). */
static int l_block(lua_State *L)
{
    const uint8_t *sk = lua_isnil(L, 1) ? NULL : check_bytes(L, 1, 64, "secret key");
    lua_Integer height = luaL_checkinteger(L, 2);
    const uint8_t *prev = check_bytes(L, 3, 32, "prev id");
    lua_Integer slot = luaL_checkinteger(L, 4), time_ms = luaL_checkinteger(L, 5);
    int count = lua_istable(L, 6) ? (int)luaL_len(L, 6) : 0;
    const uint8_t **txs = calloc((size_t)count + 1, sizeof(*txs));
    uint32_t *lens = calloc((size_t)count + 1, sizeof(*lens));
    if (!txs || !lens) {
        free(txs);
        free(lens);
        return luaL_error(L, "out of memory");
    }
    for (int i = 0; i < count; i++) {
        lua_rawgeti(L, 6, i + 1);
        size_t l;
        txs[i] = (const uint8_t *)luaL_checklstring(L, -1, &l);
        lens[i] = (uint32_t)l;
        lua_pop(L, 1); /* the string stays alive in the table */
    }
    tn_buf_t b;
    tn_buf_init(&b, 1u << 30);
    static const uint8_t zero_sk[64];
    int rc = tn_block_build(&b, sk ? sk : zero_sk, (uint64_t)height, prev, (uint64_t)slot,
                            (uint64_t)time_ms, txs, lens, (uint32_t)count);
    free(txs);
    free(lens);
    if (rc) {
        tn_buf_free(&b);
        return luaL_error(L, "block: %s", tn_strerror(rc));
    }
    uint8_t id[32];
    crypto_generichash(id, 32, b.p, TN_BLOCK_HDR, NULL, 0);
    lua_pushlstring(L, (const char *)b.p, b.len);
    lua_pushlstring(L, (const char *)id, 32);
    tn_buf_free(&b);
    return 2;
}

/* genesis(time_ms) -> raw genesis block, id */
static int l_genesis(lua_State *L)
{
    tn_buf_t b;
    tn_buf_init(&b, 4096);
    tn_block_genesis(&b, (uint64_t)luaL_checkinteger(L, 1));
    uint8_t id[32];
    crypto_generichash(id, 32, b.p, TN_BLOCK_HDR, NULL, 0);
    lua_pushlstring(L, (const char *)b.p, b.len);
    lua_pushlstring(L, (const char *)id, 32);
    tn_buf_free(&b);
    return 2;
}

static int l_msg_name(lua_State *L)
{
    const char *s = tn_msg_name((uint16_t)luaL_checkinteger(L, 1));
    if (s)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
    return 1;
}

int luaopen_timenet(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"keypair", l_keypair},
        {"read_key", l_read_key},
        {"hex", l_hex},
        {"unhex", l_unhex},
        {"prologue", l_prologue},
        {"handshake", l_handshake},
        {"aead", l_aead},
        {"frame_len", l_frame_len},
        {"msg", l_msg},
        {"decode_msgs", l_decode_msgs},
        {"messages", l_messages},
        {"hello", l_hello},
        {"hello_decode", l_hello_decode},
        {"u64", l_u64},
        {"u64_decode", l_u64_decode},
        {"msg_name", l_msg_name},
        {"tx", l_tx},
        {"tx_parse", l_tx_parse},
        {"block", l_block},
        {"genesis", l_genesis},
        {NULL, NULL},
    };
    static const luaL_Reg hs_methods[] = {
        {"flight", hs_flight}, {"read_flight", hs_read_flight}, {"theirs", hs_theirs},
        {"auth", hs_auth},     {"verify", hs_verify},           {"keys", hs_keys},
        {NULL, NULL},
    };
    static const luaL_Reg aead_methods[] = {
        {"seal", aead_seal}, {"open", aead_open},   {"counter", aead_counter},
        {"key", aead_key},   {"clone", aead_clone}, {NULL, NULL},
    };
    if (tn_crypto_init() != TN_OK) return luaL_error(L, "libsodium initialisation failed");

    luaL_newmetatable(L, HS_MT);
    luaL_newlib(L, hs_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, hs_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, AEAD_MT);
    luaL_newlib(L, aead_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, aead_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newlib(L, fns);
    static const struct {
        const char *name;
        lua_Integer v;
    } ints[] = {
        {"MSG_AUTH", TN_MSG_AUTH},
        {"MSG_HELLO", TN_MSG_HELLO},
        {"MSG_PING", TN_MSG_PING},
        {"MSG_PONG", TN_MSG_PONG},
        {"MSG_EXPERIMENT_FIRST", TN_MSG_EXPERIMENT_FIRST},
        {"MSG_INV", TN_MSG_INV},
        {"MSG_GETDATA", TN_MSG_GETDATA},
        {"MSG_TX", TN_MSG_TX},
        {"MSG_BLOCK", TN_MSG_BLOCK},
        {"MSG_NOTFOUND", TN_MSG_NOTFOUND},
        {"MSG_GET_HEIGHT", TN_MSG_GET_HEIGHT},
        {"MSG_HEIGHT", TN_MSG_HEIGHT},
        {"MSG_GET_BLOCKS", TN_MSG_GET_BLOCKS},
        {"MSG_BLOCKS", TN_MSG_BLOCKS},
        {"MSG_GET_MEMPOOL", TN_MSG_GET_MEMPOOL},
        {"MSG_GET_PEERS", TN_MSG_GET_PEERS},
        {"MSG_PEERS", TN_MSG_PEERS},
        {"PEX_MAX", TN_PEX_MAX},
        {"PEER_ENTRY", TN_PEER_ENTRY},
        {"INV_TX", TN_INV_TX},
        {"INV_BLOCK", TN_INV_BLOCK},
        {"HELLO_F_MASTERNODE", TN_HELLO_F_MASTERNODE},
        {"PROTO_VERSION", TN_PROTO_VERSION},
        {"PROTO_MIN_VERSION", TN_PROTO_MIN_VERSION},
        {"PROLOGUE_LEN", TN_PROLOGUE_LEN},
        {"FLIGHT_LEN", TN_FLIGHT1_LEN},
        {"FRAME_HDR_LEN", TN_FRAME_HDR_LEN},
        {"MSG_HDR_LEN", TN_MSG_HDR_LEN},
        {"TAG_LEN", TN_TAG_LEN},
        {"AUTH_LEN", TN_AUTH_LEN},
        {"ID_LEN", TN_ID_LEN},
        {"NAME_MAX", TN_NAME_MAX},
    };
    for (size_t i = 0; i < TN_ARRAY_LEN(ints); i++) {
        lua_pushinteger(L, ints[i].v);
        lua_setfield(L, -2, ints[i].name);
    }
    lua_pushlstring(L, "TIME", 4);
    lua_setfield(L, -2, "MAGIC_TESTNET");
    lua_pushlstring(L, "\xC0\x1D\x7E\x4D", 4);
    lua_setfield(L, -2, "MAGIC_MAINNET");
    return 1;
}
