/* Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/<name>) from the
 * real encoders and the fixed test-vector identities: valid prologues, flights, auth
 * payloads, sealed frames, hellos, state blobs, configs and control requests, plus the edge
 * cases next to each. `make fuzz-corpus` runs it; the files are committed. Running it again
 * rewrites the same inputs (state tables may list their keys in another order: Lua seeds its
 * string hashes per process). */
#include "fz_common.h"
#include "tn_config.h"
#include "tn_lua.h"
#include "tn_policy_int.h"
#include "tn_tx.h"

#include <errno.h>
#include <sys/stat.h>

static const char *g_root;

static void put(const char *target, const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", g_root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_buf(const char *target, const char *name, tn_buf_t *b)
{
    put(target, name, b->p, b->len);
    tn_buf_free(b);
}

static void put_str(const char *target, const char *name, const char *s)
{
    put(target, name, s, strlen(s));
}

static void hello_of(tn_hello_t *h, const char *name)
{
    memset(h, 0, sizeof *h);
    h->version = TN_PROTO_VERSION;
    h->flags = TN_HELLO_F_MASTERNODE;
    h->height = 123456;
    h->listen_port = 24100;
    h->time_ms = 1764000000000ull;
    snprintf(h->name, sizeof h->name, "%s", name);
}

/* ---- prologue ---- */

static void pro(const char *name, const uint8_t magic[4], uint16_t v, uint16_t minv)
{
    tn_prologue_t p = FZ.pro_i;
    uint8_t out[TN_PROLOGUE_LEN];
    memcpy(p.magic, magic, 4);
    p.version = v;
    p.min_version = minv;
    tn_prologue_encode(&p, out);
    put("prologue", name, out, sizeof out);
}

static void gen_prologue(void)
{
    static const uint8_t time[4] = {0x54, 0x49, 0x4D, 0x45}, main[4] = {0xC0, 0x1D, 0x7E, 0x4D},
                         zero[4] = {0};
    pro("valid", time, 1, 1);
    pro("wrong-magic-mainnet", main, 1, 1);
    pro("wrong-magic-zero", zero, 1, 1);
    pro("newer-compatible", time, 5, 1);
    pro("newer-incompatible", time, 5, 2);
    pro("older-version-0", time, 0, 0);
    pro("min-above-version", time, 1, 2);
    pro("max-versions", time, 0xffff, 0xffff);
    /* 32 bytes: our prologue, then theirs */
    uint8_t two[2 * TN_PROLOGUE_LEN];
    tn_prologue_t ours = FZ.pro_r, theirs = FZ.pro_i;
    ours.version = 3;
    ours.min_version = 2;
    tn_prologue_encode(&ours, two);
    tn_prologue_encode(&theirs, two + TN_PROLOGUE_LEN);
    put("prologue", "ours-v3-min2-theirs-v1", two, sizeof two);
    theirs.version = 4;
    theirs.min_version = 3;
    tn_prologue_encode(&theirs, two + TN_PROLOGUE_LEN);
    put("prologue", "ours-v3-min2-theirs-v4-min3", two, sizeof two);
}

/* ---- handshake ---- */

static void hs(const char *name, int role, const uint8_t flight[TN_FLIGHT1_LEN],
               const uint8_t *auth)
{
    uint8_t b[1 + TN_FLIGHT1_LEN + TN_AUTH_LEN];
    b[0] = (uint8_t)role;
    memcpy(b + 1, flight, TN_FLIGHT1_LEN);
    if (auth) memcpy(b + 1 + TN_FLIGHT1_LEN, auth, TN_AUTH_LEN);
    put("handshake", name, b, auth ? sizeof b : 1 + TN_FLIGHT1_LEN);
}

static void gen_handshake(void)
{
    const uint8_t *pf = FZ.peer_start.flight_mine, *lf = FZ.local_start.flight_mine;
    hs("responder-valid", 0, pf, FZ.peer_auth);
    hs("initiator-valid", 1, lf, FZ.local_auth);
    hs("responder-flight-only", 0, pf, NULL);
    hs("responder-reflected-auth", 0, pf, FZ.local_auth); /* our own auth sent back */
    uint8_t f[TN_FLIGHT1_LEN], a[TN_AUTH_LEN];
    memcpy(a, FZ.peer_auth, sizeof a);
    a[TN_ID_LEN + 5] ^= 1;
    hs("responder-bad-signature", 0, pf, a);
    memcpy(a, FZ.peer_auth, sizeof a);
    a[0] ^= 1;
    hs("responder-other-identity", 0, pf, a);
    static const uint8_t low_order[3][32] = {
        {0}, /* all-zero shared secret */
        {1},
        {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
         0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
         0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    };
    static const char *low_names[3] = {"key-zero", "key-one", "key-order-8"};
    for (int i = 0; i < 3; i++) {
        memcpy(f, pf, TN_FLIGHT1_LEN);
        memcpy(f + TN_PROLOGUE_LEN, low_order[i], 32);
        hs(low_names[i], 0, f, FZ.peer_auth);
    }
    memcpy(f, pf, TN_FLIGHT1_LEN);
    f[0] ^= 0xff;
    hs("wrong-magic", 0, f, NULL);
    memcpy(f, pf, TN_FLIGHT1_LEN);
    tn_put_u16(f + 4, 9);
    tn_put_u16(f + 6, 9);
    hs("incompatible-version", 0, f, NULL);
    memcpy(f, pf, TN_FLIGHT1_LEN);
    f[TN_PROLOGUE_LEN] ^= 0x80;
    hs("other-key-valid-auth", 0, f, FZ.peer_auth); /* auth no longer matches the transcript */
}

/* ---- frame streams (frame and session targets share the format) ---- */

typedef struct {
    uint8_t b[8192];
    size_t n;
} rec_t;

static void r8(rec_t *r, uint8_t v)
{
    r->b[r->n++] = v;
}
static void r16(rec_t *r, uint16_t v)
{
    r8(r, (uint8_t)(v >> 8));
    r8(r, (uint8_t)v);
}
static void rbytes(rec_t *r, const void *p, size_t n)
{
    memcpy(r->b + r->n, p, n);
    r->n += n;
}
static void rstart(rec_t *r, int start, uint8_t cls, uint32_t seed)
{
    r->n = 0;
    r8(r, (uint8_t)start);
    r8(r, cls);
    r16(r, (uint16_t)(seed >> 16));
    r16(r, (uint16_t)seed);
}
static void rframe(rec_t *r, const void *p, size_t n)
{
    r8(r, 2);
    r16(r, (uint16_t)n);
    rbytes(r, p, n);
}
static void rraw(rec_t *r, const void *p, size_t n)
{
    r8(r, 3);
    r16(r, (uint16_t)n);
    rbytes(r, p, n);
}
/* one MSGS record: count, then {type, len, data} */
static void rmsgs_hello(rec_t *r, const char *name)
{
    tn_hello_t h;
    tn_buf_t b;
    hello_of(&h, name);
    tn_buf_init(&b, 4096);
    tn_hello_encode(&b, &h);
    r8(r, 6);
    r8(r, 1);
    r16(r, TN_MSG_HELLO);
    r8(r, (uint8_t)(b.len - TN_MSG_HDR_LEN));
    rbytes(r, b.p + TN_MSG_HDR_LEN, b.len - TN_MSG_HDR_LEN);
    tn_buf_free(&b);
}
static void rmsg_u64(rec_t *r, uint16_t type, uint64_t v)
{
    uint8_t p[8];
    tn_put_u64(p, v);
    r8(r, 6);
    r8(r, 1);
    r16(r, type);
    r8(r, 8);
    rbytes(r, p, 8);
}
static void stream(const char *name, rec_t *r)
{
    put("frame", name, r->b, r->n);
    put("session", name, r->b, r->n);
}

static void gen_frames(void)
{
    rec_t r;
    /* full sessions from the first byte, split differently */
    static const uint8_t classes[] = {0, 2, 4, 6, 8, 9};
    for (size_t i = 0; i < sizeof classes; i++) {
        char name[64];
        rstart(&r, FZ_START_FLIGHT, classes[i], 0x1234567u + (uint32_t)i);
        r8(&r, 0); /* FLIGHT */
        r8(&r, 1); /* AUTH */
        rmsgs_hello(&r, "fuzz-peer");
        rmsg_u64(&r, TN_MSG_PING, 42);
        rmsg_u64(&r, TN_MSG_PONG, 42);
        snprintf(name, sizeof name, "session-split-%u", fz_chunk_max(classes[i]));
        stream(name, &r);
    }
    /* one frame holding hello, ping and pong, built with the encoders */
    {
        tn_hello_t h;
        tn_buf_t b;
        hello_of(&h, "one-frame");
        tn_buf_init(&b, 4096);
        tn_hello_encode(&b, &h);
        tn_u64_msg_encode(&b, TN_MSG_PING, 7);
        tn_u64_msg_encode(&b, TN_MSG_PONG, 7);
        tn_msg_append(&b, 0x8001, "experiment", 10);
        rstart(&r, FZ_START_OPEN, 3, 99);
        rframe(&r, b.p, b.len);
        tn_buf_free(&b);
        stream("open-batched-messages", &r);
    }
    rstart(&r, FZ_START_AUTH, 5, 7);
    r8(&r, 1);
    rmsgs_hello(&r, "after-auth");
    stream("auth-then-hello", &r);

    rstart(&r, FZ_START_AUTH, 9, 7);
    rmsgs_hello(&r, "no-auth");
    stream("auth-expected-got-hello", &r);

    rstart(&r, FZ_START_OPEN, 9, 1);
    rframe(&r, "", 0);
    stream("open-empty-frame", &r);

    static const uint32_t lens[] = {0, TN_FRAME_MIN - 1, FZ_MAX_FRAME + 1, 0xffffffffu};
    static const char *len_names[] = {"len-0", "len-15", "len-max+1", "len-4GiB"};
    for (int i = 0; i < 4; i++) {
        uint8_t h[4];
        tn_put_u32(h, lens[i]);
        rstart(&r, FZ_START_OPEN, 1, 5);
        rmsgs_hello(&r, "ok");
        rraw(&r, h, 4);
        stream(len_names[i], &r);
    }
    rstart(&r, FZ_START_OPEN, 2, 5);
    rmsgs_hello(&r, "trunc");
    {
        uint8_t h[4 + 10];
        tn_put_u32(h, 64);
        memset(h + 4, 0xab, 10);
        rraw(&r, h, sizeof h); /* header of 64 bytes, then only 10 */
    }
    stream("truncated-frame", &r);

    rstart(&r, FZ_START_OPEN, 4, 11);
    rmsgs_hello(&r, "replay");
    r8(&r, 4);
    r8(&r, 0xff); /* counter - 1: the hello frame again */
    rmsgs_hello(&r, "replay");
    stream("replayed-frame", &r);

    rstart(&r, FZ_START_OPEN, 4, 11);
    r8(&r, 4);
    r8(&r, 1); /* a frame skipped */
    rmsgs_hello(&r, "skip");
    stream("skipped-frame", &r);

    rstart(&r, FZ_START_OPEN, 6, 13);
    rmsgs_hello(&r, "tamper");
    r8(&r, 5);
    r16(&r, 20);
    r8(&r, 3);
    stream("tampered-frame", &r);

    rstart(&r, FZ_START_OPEN, 6, 17);
    rmsgs_hello(&r, "twice");
    r8(&r, 1);
    stream("auth-after-handshake", &r);

    rstart(&r, FZ_START_OPEN, 7, 19);
    rmsg_u64(&r, TN_MSG_PING, 1);
    stream("ping-before-hello", &r);

    rstart(&r, FZ_START_OPEN, 7, 23);
    rmsgs_hello(&r, "dup");
    rmsgs_hello(&r, "dup");
    r8(&r, 6);
    r8(&r, 3);
    r16(&r, 0x0100);
    r8(&r, 0);
    r16(&r, TN_MSG_PING);
    r8(&r, 7); /* ping of 7 bytes */
    rbytes(&r, "1234567", 7);
    r16(&r, 0xfffe);
    r8(&r, 1);
    r8(&r, 'x');
    stream("dup-hello-unknown-type-short-ping", &r);

    {
        uint8_t m[TN_MSG_HDR_LEN + 2];
        tn_put_u16(m, TN_MSG_PING);
        tn_put_u32(m + 2, 8); /* claims 8 bytes, frame holds 2 */
        m[6] = m[7] = 0;
        rstart(&r, FZ_START_OPEN, 8, 29);
        rmsgs_hello(&r, "framing");
        rframe(&r, m, sizeof m);
        stream("message-longer-than-frame", &r);
    }
    rstart(&r, FZ_START_FLIGHT, 3, 31);
    {
        uint8_t f[TN_FLIGHT1_LEN];
        memcpy(f, FZ.peer_start.flight_mine, sizeof f);
        f[1] ^= 0x20;
        rraw(&r, f, sizeof f);
    }
    stream("flight-wrong-magic", &r);

    rstart(&r, FZ_START_FLIGHT, 3, 37);
    r8(&r, 0);
    r8(&r, 2); /* a frame before auth: wrong length for an auth frame */
    r16(&r, 4);
    rbytes(&r, "abcd", 4);
    stream("flight-then-non-auth-frame", &r);

    {
        uint8_t m[TN_MSG_HDR_LEN + TN_AUTH_LEN];
        tn_put_u16(m, TN_MSG_HELLO); /* auth-sized, but not an auth message */
        tn_put_u32(m + 2, TN_AUTH_LEN);
        memcpy(m + TN_MSG_HDR_LEN, FZ.peer_auth, TN_AUTH_LEN);
        rstart(&r, FZ_START_AUTH, 2, 41);
        rframe(&r, m, sizeof m);
        stream("auth-frame-wrong-type", &r);
    }
}

/* ---- messages and hello ---- */

static void gen_msgs(void)
{
    tn_hello_t h;
    tn_buf_t b;
    char name64[TN_NAME_MAX + 1];
    memset(name64, 'n', TN_NAME_MAX);
    name64[TN_NAME_MAX] = 0;

    tn_buf_init(&b, 1 << 16);
    hello_of(&h, "alpha");
    tn_hello_encode(&b, &h);
    put("hello", "valid", b.p + TN_MSG_HDR_LEN, b.len - TN_MSG_HDR_LEN);
    tn_u64_msg_encode(&b, TN_MSG_PING, 1);
    tn_u64_msg_encode(&b, TN_MSG_PONG, 1);
    tn_msg_append(&b, 0x9000, "x", 1);
    tn_msg_append(&b, 0x0200, NULL, 0);
    put_buf("msg", "hello-ping-pong-experiment-unknown", &b);

    tn_buf_init(&b, 1 << 16);
    hello_of(&h, "");
    tn_hello_encode(&b, &h);
    put("hello", "empty-name", b.p + TN_MSG_HDR_LEN, b.len - TN_MSG_HDR_LEN);
    put_buf("msg", "hello-empty-name", &b);

    tn_buf_init(&b, 1 << 16);
    hello_of(&h, name64);
    tn_hello_encode(&b, &h);
    put("hello", "name-64", b.p + TN_MSG_HDR_LEN, b.len - TN_MSG_HDR_LEN);
    {
        uint8_t p[25 + 65];
        memcpy(p, b.p + TN_MSG_HDR_LEN, 25 + 64);
        p[24] = 65;
        p[25 + 64] = 'n';
        put("hello", "name-65", p, sizeof p);
        memcpy(p, b.p + TN_MSG_HDR_LEN, 25 + 64);
        p[30] = '\n';
        put("hello", "name-unprintable", p, 25 + 64);
        memcpy(p, b.p + TN_MSG_HDR_LEN, 25 + 64);
        p[25 + 64] = 0;
        put("hello", "trailing-byte", p, 25 + 64 + 1);
        put("hello", "fixed-part-short", p, 24);
    }
    tn_buf_free(&b);

    put("msg", "empty-frame", "", 0);
    {
        uint8_t m[TN_MSG_HDR_LEN + 8];
        tn_put_u16(m, TN_MSG_PING);
        tn_put_u32(m + 2, 8);
        memset(m + TN_MSG_HDR_LEN, 0, 8);
        put("msg", "header-only-5", m, 5);
        tn_put_u32(m + 2, 9);
        put("msg", "length-past-end", m, sizeof m);
        tn_put_u32(m + 2, 0xffffffffu);
        put("msg", "length-4GiB", m, sizeof m);
        tn_put_u32(m + 2, 7);
        put("msg", "ping-7-bytes-then-stray", m, sizeof m);
    }
}

/* ---- policy state ---- */

/* A binary tree of empty-keyed tables (keys false/true): 4 bytes per table encoded, about
 * 30 times that in Lua memory, so 49 KB of state needs more than the 1 MiB policy_memory_max
 * minimum. Decoding it used to raise Lua's memory error outside a protected call (abort). */
static size_t tree(uint8_t *out, int depth)
{
    size_t n = 0;
    out[n++] = '{';
    if (depth > 0) {
        out[n++] = 'F';
        n += tree(out + n, depth - 1);
        out[n++] = 'T';
        n += tree(out + n, depth - 1);
    }
    out[n++] = '}';
    return n;
}

static void state(const char *name, const char *lua_expr)
{
    tn_lua_mem_t mem = {0, 0, 64u << 20};
    lua_State *L = lua_newstate(tn_lua_alloc, &mem);
    char src[4096], err[256];
    snprintf(src, sizeof src, "return %s", lua_expr);
    if (luaL_loadstring(L, src) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "state seed %s: %s\n", name, lua_tostring(L, -1));
        exit(1);
    }
    tn_buf_t b;
    if (tn_state_serialize(L, -1, &b, 1u << 20, err, sizeof err) != TN_OK) {
        fprintf(stderr, "state seed %s: %s\n", name, err);
        exit(1);
    }
    put_buf("state", name, &b);
    lua_close(L);
}

static void gen_state(void)
{
    state("empty", "{}");
    state("scalars", "{ a = true, b = false, c = 42, d = -1.5, e = 'text', [7] = 'seven' }");
    state("list", "{ 'a', 'b', 'c', 1, 2, 3 }");
    state("nested", "{ peers = { ['1.2.3.4'] = { strikes = 3, until_ms = 1764000000000 } } }");
    state("special-numbers", "{ inf = 1/0, ninf = -1/0, nan = 0/0, negzero = -0.0,"
                             " big = 9007199254740993, minint = -9223372036854775807 - 1 }");
    state("bool-and-float-keys", "{ [true] = 1, [false] = 0, [1.5] = 'x', [2^53] = 'y' }");
    char deep[512] = "";
    for (int i = 0; i < 31; i++) strcat(deep, "{");
    for (int i = 0; i < 31; i++) strcat(deep, "}");
    state("depth-31", deep);
    /* malformed: hand-written */
    put("state", "truncated-string",
        "{s\x00\x00\x00\x09"
        "abc}",
        9);
    put("state", "unknown-tag", "{x}", 3);
    put("state", "no-end", "{", 1);
    put("state", "trailing-byte", "{}}", 3);
    put("state", "nil-key", "{Fi\x00\x00\x00\x00\x00\x00\x00\x01}", 12);
    put("state", "table-key", "{{}T}", 5);
    uint8_t nan_key[1 + 9 + 1 + 1];
    nan_key[0] = '{';
    nan_key[1] = 'd';
    memcpy(nan_key + 2, "\x7f\xf8\x00\x00\x00\x00\x00\x00", 8);
    nan_key[10] = 'T';
    nan_key[11] = '}';
    put("state", "nan-key", nan_key, sizeof nan_key);
    char d33[80] = "";
    for (int i = 0; i < 33; i++) strcat(d33, "{");
    for (int i = 0; i < 33; i++) strcat(d33, "}");
    put("state", "depth-33", d33, strlen(d33));
    static uint8_t big[1 << 16];
    put("state", "crash-oom-table-tree", big, tree(big, 13));
}

/* ---- config ---- */

static void gen_config(void)
{
    tn_config_t c;
    if (tn_config_defaults(&c) != TN_OK) exit(1);
    free(c.node_name);
    c.node_name = strdup("fuzz-node"); /* not this machine's host name */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    tn_config_print(&c, m);
    fclose(m);
    put("config", "printed-defaults", text, len);
    free(text);
    tn_config_free(&c);
    put_str("config", "minimal", "node_name = \"a\"\nlisten = \"127.0.0.1:24100\"\n");
    put_str("config", "lists",
            "seeds = { \"1.2.3.4:24100\", \"[2001:db8::1]:24100\" }\n"
            "whitelist = { \"10.0.0.1\", \"::1\" }\npersistent_peers = {}\n");
    put_str("config", "unknown-key-typo", "max_peer = 5\n");
    put_str("config", "out-of-range", "max_peers = -1\n");
    put_str("config", "wrong-type", "max_peers = \"many\"\n");
    put_str("config", "not-whole", "max_peers = 2.5\n");
    put_str("config", "nan", "heartbeat_interval = 0/0\n");
    put_str("config", "expressions",
            "local base = 24000\nlisten = \"0.0.0.0:\" .. (base + 100)\n"
            "max_peers = 10 * 5\nmin_peers = max_peers // 10\n");
    put_str("config", "list-with-holes", "seeds = { [1] = \"1.2.3.4:1\", [3] = \"1.2.3.4:2\" }\n");
    put_str("config", "string-with-nul", "node_name = \"a\\0b\"\n");
    put_str("config", "syntax-error", "max_peers = = 3\n");
    put_str("config", "runaway-loop", "while true do end\n");
    put_str("config", "bytecode", "\x1bLua");
    put_str("config", "read-undefined", "x = undefined_name.field\n");
    put_str("config", "bad-address", "listen = \"1.2.3.4\"\n");
}

/* ---- transactions and blocks ---- */

static void tx_of(tn_buf_t *b, uint64_t nonce, const char *payload)
{
    tn_buf_init(b, 1u << 16);
    tn_tx_build(b, FZ.sk_i, 1764003600, nonce, payload, (uint32_t)strlen(payload));
}

static void gen_chain(void)
{
    tn_buf_t t1, t2, t3, b;
    tx_of(&t1, 1, "pay 5 to bob");
    tx_of(&t2, 2, "");
    tx_of(&t3, 3, "third");
    put("tx", "valid", t1.p, t1.len);
    put("tx", "empty-payload", t2.p, t2.len);
    uint8_t x[512];
    memcpy(x, t1.p, t1.len);
    x[0] = 2;
    put("tx", "wrong-version", x, t1.len);
    memcpy(x, t1.p, t1.len);
    x[52] ^= 1;
    put("tx", "payload-len-mismatch", x, t1.len);
    memcpy(x, t1.p, t1.len);
    x[t1.len - 1] ^= 1;
    put("tx", "bad-signature", x, t1.len);
    memcpy(x, t1.p, t1.len);
    x[t1.len] = 0;
    put("tx", "trailing-byte", x, t1.len + 1);
    put("tx", "short", t1.p, TN_TX_MIN - 1);

    const uint8_t *txs[3] = {t1.p, t2.p, t3.p};
    uint32_t lens[3] = {(uint32_t)t1.len, (uint32_t)t2.len, (uint32_t)t3.len};
    uint8_t prev[32];
    memset(prev, 0x11, 32);
    tn_buf_init(&b, 1u << 16);
    tn_block_genesis(&b, 1764000000000ull);
    put_buf("block", "genesis", &b);
    tn_buf_init(&b, 1u << 16);
    tn_block_build(&b, FZ.sk_r, 1, prev, 7, 1764000007000ull, NULL, NULL, 0);
    put_buf("block", "empty", &b);
    tn_buf_init(&b, 1u << 16);
    tn_block_build(&b, FZ.sk_r, 2, prev, 8, 1764000008000ull, txs, lens, 3);
    put("block", "three-txs", b.p, b.len);
    {
        uint8_t *y = malloc(b.len + 1);
        memcpy(y, b.p, b.len);
        y[89] ^= 1;
        put("block", "bad-root", y, b.len);
        memcpy(y, b.p, b.len);
        y[TN_BLOCK_UNSIGNED + 3] ^= 1;
        put("block", "bad-signature", y, b.len);
        memcpy(y, b.p, b.len);
        tn_put_u32(y + 121, 4);
        put("block", "count-too-high", y, b.len);
        put("block", "truncated-tx", y, b.len - 1);
        free(y);
    }
    /* the msg corpus: a frame of chain messages */
    tn_buf_t m;
    tn_buf_init(&m, 1u << 17);
    uint8_t inv[2 + 2 * TN_INV_ENTRY];
    tn_put_u16(inv, 2);
    inv[2] = TN_INV_TX;
    memset(inv + 3, 0xaa, 32);
    inv[2 + TN_INV_ENTRY] = TN_INV_BLOCK;
    memset(inv + 3 + TN_INV_ENTRY, 0xbb, 32);
    tn_msg_append(&m, TN_MSG_INV, inv, sizeof inv);
    tn_msg_append(&m, TN_MSG_GETDATA, inv, sizeof inv);
    inv[2] = 9;
    tn_msg_append(&m, TN_MSG_NOTFOUND, inv, sizeof inv); /* bad kind */
    uint8_t height[40];
    tn_put_u64(height, 42);
    memset(height + 8, 0xcc, 32);
    tn_msg_append(&m, TN_MSG_HEIGHT, height, sizeof height);
    uint8_t loc[1 + 64];
    loc[0] = 2;
    memset(loc + 1, 0xdd, 64);
    tn_msg_append(&m, TN_MSG_GET_BLOCKS, loc, sizeof loc);
    tn_msg_append(&m, TN_MSG_TX, t1.p, (uint32_t)t1.len);
    tn_msg_append(&m, TN_MSG_BLOCK, b.p, (uint32_t)b.len);
    put("msg", "chain-messages", m.p, m.len);
    m.len = 0;
    uint8_t hdr[6];
    tn_put_u16(hdr, 2);
    tn_put_u32(hdr + 2, (uint32_t)b.len);
    size_t at;
    tn_msg_begin(&m, TN_MSG_BLOCKS, &at);
    tn_buf_append(&m, hdr, 6);
    tn_buf_append(&m, b.p, b.len);
    tn_put_u32(hdr, (uint32_t)b.len);
    tn_buf_append(&m, hdr, 4);
    tn_buf_append(&m, b.p, b.len);
    tn_msg_finish(&m, at);
    put_buf("msg", "blocks-two", &m);
    tn_buf_free(&b);
    tn_buf_free(&t1);
    tn_buf_free(&t2);
    tn_buf_free(&t3);
}

/* ---- store rows (bans) ---- */

static void row(rec_t *r, int kind, const char *ip, uint64_t until, const char *reason,
                uint32_t count)
{
    r8(r, (uint8_t)kind);
    r8(r, (uint8_t)strlen(ip));
    rbytes(r, ip, strlen(ip));
    r16(r, (uint16_t)(until >> 48));
    r16(r, (uint16_t)(until >> 32));
    r16(r, (uint16_t)(until >> 16));
    r16(r, (uint16_t)until);
    r8(r, (uint8_t)strlen(reason));
    rbytes(r, reason, strlen(reason));
    r16(r, (uint16_t)(count >> 16));
    r16(r, (uint16_t)count);
}

static void gen_store(void)
{
    rec_t r;
    char longr[256];
    memset(longr, 'r', 255);
    longr[255] = 0;
    r.n = 0;
    row(&r, 0, "1.2.3.4", 1764000000000ull, "3 wrong magic", 1);
    row(&r, 0, "2001:db8::7", 1764000300000ull, "invalid messages", 4);
    put("store", "valid-v4-v6", r.b, r.n);
    r.n = 0;
    row(&r, 1, "", 1764000000000ull, "null ip", 1);
    put("store", "crash-null-ip", r.b, r.n);
    r.n = 0;
    row(&r, 2, "10.0.0.1", 1, "blob ip", 2);
    row(&r, 3, "", 7, "integer ip", 3);
    row(&r, 2, "", 7, "empty blob: NULL", 3);
    put("store", "blob-and-integer-ip", r.b, r.n);
    r.n = 0;
    row(&r, 0, "not an ip", 0, "", 0);
    row(&r, 0, "1.2.3.4", UINT64_MAX, longr, UINT32_MAX);
    row(&r, 0, "1.2.3.4", 5, "duplicate replaces", 9);
    put("store", "garbage-long-duplicate", r.b, r.n);
}

/* ---- metrics endpoint requests: split class byte, then the bytes ---- */

static void http(const char *name, uint8_t cls, const char *req, size_t n)
{
    static uint8_t b[1 + 16384];
    b[0] = cls;
    memcpy(b + 1, req, n);
    put("http", name, b, 1 + n);
}
#define HTTP(name, cls, lit) http(name, cls, lit, sizeof lit - 1)

static void gen_http(void)
{
    HTTP("get-metrics", 9, "GET /metrics HTTP/1.0\r\n\r\n");
    HTTP("get-metrics-split-1", 0, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    HTTP("head-metrics", 4, "HEAD /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n");
    HTTP("query-bare-newlines", 3, "GET /metrics?name[]=x HTTP/1.1\n\n");
    HTTP("post", 9, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc");
    HTTP("not-found", 9, "GET /debug HTTP/1.0\r\n\r\n");
    HTTP("no-version", 9, "GET /metrics\r\n\r\n");
    HTTP("empty-head", 9, "\r\n\r\n");
    HTTP("unfinished-head", 2, "GET /metrics HTTP/1.0\r\nHost: a\r\n");
    HTTP("nul-in-line", 9, "GET /met\0rics HTTP/1.0\r\n\r\n");
    HTTP("long-fields", 8,
         "GETGETGETGETGETGETGET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaa HTTP/1.0000000000000000\r\n\r\n");
    static char big[9001];
    memset(big, 'x', sizeof big);
    memcpy(big, "GET /metrics HTTP/1.0\r\nX: ", 26);
    http("head-too-large", 8, big, sizeof big); /* no end within TN_HTTP_REQ_MAX: 431 */
}

/* ---- control requests ---- */

static void gen_ctl(void)
{
    put_str("ctl", "help", "{\"cmd\":\"help\"}\n");
    put_str("ctl", "status", "{\"cmd\":\"status\",\"all\":true}\n");
    put_str("ctl", "connect", "{\"cmd\":\"connect\",\"addr\":\"127.0.0.1:24100\"}\n");
    put_str("ctl", "connect-v6", "{\"cmd\":\"connect\",\"addr\":\"[::ffff:1.2.3.4]:1\"}\n");
    put_str("ctl", "connect-no-port", "{\"cmd\":\"connect\",\"addr\":\"127.0.0.1\"}\n");
    put_str("ctl", "disconnect-id",
            "{\"cmd\":\"disconnect\",\"id\":"
            "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}\n");
    put_str("ctl", "disconnect-bad-id", "{\"cmd\":\"disconnect\",\"id\":\"zz\"}\n");
    put_str("ctl", "block-v6", "{\"cmd\":\"block\",\"addr\":\"2001:db8::1\"}\n");
    put_str(
        "ctl", "several-lines",
        "{\"cmd\":\"metrics\"}\n{\"cmd\":\"unblock\",\"addr\":\"1.2.3.4\"}\n{\"cmd\":\"bans\"}\n"
        "{\"cmd\":\"policy_status\"}\npartial");
    put_str("ctl", "not-json", "hello\n");
    put_str("ctl", "not-object", "[1,2,3]\n");
    put_str("ctl", "cmd-not-string", "{\"cmd\":7}\n");
    put_str("ctl", "unknown-verb", "{\"cmd\":\"rm -rf\"}\n");
    put_str("ctl", "escaped-verb", "{\"cmd\":\"he\\u006cp\\u0000x\"}\n");
    put_str("ctl", "no-newline", "{\"cmd\":\"help\"}");
    put_str("ctl", "empty-lines", "\n\n\n");
    char deep[2100] = "";
    for (int i = 0; i < 1000; i++) strcat(deep, "[");
    strcat(deep, "\n");
    put_str("ctl", "deep-nesting", deep);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_root = argv[1];
    mkdir(g_root, 0755);
    fz_init();
    gen_prologue();
    gen_handshake();
    gen_frames();
    gen_msgs();
    gen_state();
    gen_config();
    gen_chain();
    gen_store();
    gen_http();
    gen_ctl();
    return 0;
}
