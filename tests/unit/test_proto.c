/* Wire codec (tn_proto.h): the plaintext prologue and the messages inside frames. Layouts
 * are checked byte for byte against doc/protocol.md. */
#include "tn_proto.h"
#include "tn_test.h"

static const uint8_t TESTNET[4] = {0x54, 0x49, 0x4D, 0x45}; /* "TIME" */
static const uint8_t MAINNET[4] = {0xC0, 0x1D, 0x7E, 0x4D};

static tn_prologue_t prologue(const uint8_t magic[4], uint16_t v, uint16_t min, uint64_t nonce)
{
    tn_prologue_t p;
    memcpy(p.magic, magic, 4);
    p.version = v;
    p.min_version = min;
    p.nonce = nonce;
    return p;
}

TN_TEST(proto_prologue_layout)
{
    tn_prologue_t p = prologue(TESTNET, 1, 1, 0x0123456789abcdefull), q;
    uint8_t out[TN_PROLOGUE_LEN];
    tn_prologue_encode(&p, out);
    TN_ASSERT_HEX(out, TN_PROLOGUE_LEN,
                  "54494d45"
                  "0001"
                  "0001"
                  "0123456789abcdef");
    TN_ASSERT_OK(tn_prologue_check(&p, out, &q));
    TN_ASSERT_MEM_EQ(q.magic, TESTNET, 4);
    TN_ASSERT_INT(q.version, ==, 1);
    TN_ASSERT_INT(q.min_version, ==, 1);
    TN_ASSERT_U64(q.nonce, ==, 0x0123456789abcdefull);
    p = prologue(MAINNET, 0x0203, 0x0102, 1);
    tn_prologue_encode(&p, out);
    TN_ASSERT_HEX(out, TN_PROLOGUE_LEN,
                  "c01d7e4d"
                  "0203"
                  "0102"
                  "0000000000000001");
}

TN_TEST(proto_prologue_wrong_magic)
{
    tn_prologue_t ours = prologue(TESTNET, 1, 1, 1), theirs = prologue(MAINNET, 1, 1, 42), got;
    uint8_t in[TN_PROLOGUE_LEN];
    tn_prologue_encode(&theirs, in);
    TN_ASSERT_RC(tn_prologue_check(&ours, in, &got), TN_EMAGIC);
    /* What was sent is reported even on failure, for the log line. */
    TN_ASSERT_MEM_EQ(got.magic, MAINNET, 4);
    TN_ASSERT_U64(got.nonce, ==, 42);
    /* Magic is checked before the version: both wrong still says wrong magic. */
    theirs = prologue((const uint8_t *)"HTTP", 9, 9, 0);
    tn_prologue_encode(&theirs, in);
    TN_ASSERT_RC(tn_prologue_check(&ours, in, &got), TN_EMAGIC);
    memcpy(in, "TIMF", 4);
    TN_ASSERT_RC(tn_prologue_check(&ours, in, &got), TN_EMAGIC);
}

TN_TEST(proto_version_ranges)
{
    /* Compatible when each side's version is at least the other's minimum. */
    static const struct {
        uint16_t ov, omin, tv, tmin;
        int want;
    } cases[] = {
        {1, 1, 1, 1, TN_OK},
        {3, 1, 1, 1, TN_OK}, /* we are newer but still speak 1 */
        {1, 1, 3, 1, TN_OK}, /* they are newer but still speak 1 */
        {3, 2, 5, 3, TN_OK}, /* ranges [2,3] and [3,5] touch at 3 */
        {5, 3, 3, 2, TN_OK},
        {3, 3, 2, 1, TN_EVERSION}, /* they are too old for us */
        {2, 1, 5, 3, TN_EVERSION}, /* we are too old for them */
        {1, 1, 2, 2, TN_EVERSION},
        {2, 2, 1, 1, TN_EVERSION},
        {1, 1, 1, 2, TN_EVERSION}, /* their min above their version: nonsense range */
        {5, 1, 3, 4, TN_EVERSION},
        {65535, 0, 0, 0, TN_OK},
        {0, 0, 65535, 65535, TN_EVERSION},
    };
    for (size_t i = 0; i < TN_ARRAY_LEN(cases); i++) {
        tn_prologue_t ours = prologue(TESTNET, cases[i].ov, cases[i].omin, 1);
        tn_prologue_t theirs = prologue(TESTNET, cases[i].tv, cases[i].tmin, 2), got;
        uint8_t in[TN_PROLOGUE_LEN];
        tn_prologue_encode(&theirs, in);
        int rc = tn_prologue_check(&ours, in, &got);
        if (rc != cases[i].want)
            TN_FAIL("ours %u (min %u) vs theirs %u (min %u): got %s, want %s", cases[i].ov,
                    cases[i].omin, cases[i].tv, cases[i].tmin, tn_strerror(rc),
                    tn_strerror(cases[i].want));
        TN_ASSERT_INT(got.version, ==, cases[i].tv);
        TN_ASSERT_INT(got.min_version, ==, cases[i].tmin);
    }
}

static tn_hello_t sample_hello(void)
{
    tn_hello_t h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.flags = TN_HELLO_F_MASTERNODE;
    h.height = 0x0102030405060708ull;
    h.listen_port = 24100;
    h.time_ms = 1700000000123ull;
    strcpy(h.name, "node-a");
    return h;
}

TN_TEST(proto_hello_roundtrip)
{
    tn_buf_t b;
    tn_buf_init(&b, 4096);
    tn_hello_t h = sample_hello(), g;
    TN_ASSERT_OK(tn_hello_encode(&b, &h));
    TN_ASSERT_U64(b.len, ==, TN_MSG_HDR_LEN + 25 + 6);
    TN_ASSERT_HEX(b.p, b.len,
                  "0001"             /* type: hello */
                  "0000001f"         /* payload length: 31 */
                  "0001"             /* version */
                  "00000001"         /* flags: masternode */
                  "0102030405060708" /* height */
                  "5e24"             /* listen port 24100 */
                  "0000018bcfe5687b" /* time_ms 1700000000123 */
                  "06"               /* name length */
                  "6e6f64652d61");   /* "node-a" */
    size_t off = 0;
    uint16_t type;
    const uint8_t *payload;
    uint32_t len;
    TN_ASSERT_INT(tn_msg_next(b.p, b.len, &off, &type, &payload, &len), ==, 1);
    TN_ASSERT_INT(type, ==, TN_MSG_HELLO);
    memset(&g, 0xAA, sizeof g);
    TN_ASSERT_OK(tn_hello_decode(payload, len, &g));
    TN_ASSERT_INT(g.version, ==, h.version);
    TN_ASSERT_U64(g.flags, ==, h.flags);
    TN_ASSERT_U64(g.height, ==, h.height);
    TN_ASSERT_INT(g.listen_port, ==, h.listen_port);
    TN_ASSERT_U64(g.time_ms, ==, h.time_ms);
    TN_ASSERT_STR_EQ(g.name, "node-a");
    tn_buf_free(&b);

    /* Empty and longest names, every printable character. */
    const char *names[] = {"", "0123456789012345678901234567890123456789012345678901234567890123",
                           " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"};
    for (size_t i = 0; i < TN_ARRAY_LEN(names); i++) {
        tn_buf_init(&b, 4096);
        h = sample_hello();
        strcpy(h.name, names[i]);
        TN_ASSERT_OK(tn_hello_encode(&b, &h));
        TN_ASSERT_OK(tn_hello_decode(b.p + TN_MSG_HDR_LEN, (uint32_t)(b.len - TN_MSG_HDR_LEN), &g));
        TN_ASSERT_STR_EQ(g.name, names[i]);
        tn_buf_free(&b);
    }
}

/* A hello payload with a name of nl bytes of c, plus extra trailing bytes. */
static uint32_t hello_payload(uint8_t *p, uint8_t nl_field, size_t nl, uint8_t c, size_t extra)
{
    memset(p, 0, 25);
    p[1] = 1;
    p[24] = nl_field;
    memset(p + 25, c, nl + extra);
    return (uint32_t)(25 + nl + extra);
}

TN_TEST(proto_hello_rejects)
{
    uint8_t p[512];
    tn_hello_t g;
    uint32_t n = hello_payload(p, 3, 3, 'a', 0);
    TN_ASSERT_OK(tn_hello_decode(p, n, &g));
    TN_ASSERT_STR_EQ(g.name, "aaa");
    n = hello_payload(p, 3, 3, 'a', 1); /* trailing byte */
    TN_ASSERT_RC(tn_hello_decode(p, n, &g), TN_EINVAL);
    n = hello_payload(p, 3, 2, 'a', 0); /* name shorter than its length says */
    TN_ASSERT_RC(tn_hello_decode(p, n, &g), TN_EINVAL);
    for (uint32_t short_len = 0; short_len < 25; short_len++) /* fixed part cut short */
        TN_ASSERT_RC(tn_hello_decode(p, short_len, &g), TN_EINVAL);
    n = hello_payload(p, 64, 64, 'x', 0); /* longest name */
    TN_ASSERT_OK(tn_hello_decode(p, n, &g));
    TN_ASSERT_INT(strlen(g.name), ==, 64);
    n = hello_payload(p, 65, 65, 'x', 0); /* over TN_NAME_MAX */
    TN_ASSERT_RC(tn_hello_decode(p, n, &g), TN_EINVAL);
    n = hello_payload(p, 255, 255, 'x', 0);
    TN_ASSERT_RC(tn_hello_decode(p, n, &g), TN_EINVAL);
    /* Names end up in log lines: control characters, DEL and non-ASCII are refused. */
    static const uint8_t bad[] = {0x00, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        n = hello_payload(p, 4, 4, 'a', 0);
        p[25 + 2] = bad[i];
        int rc = tn_hello_decode(p, n, &g);
        if (rc != TN_EINVAL) TN_FAIL("name byte 0x%02x accepted", bad[i]);
    }
    n = hello_payload(p, 2, 2, ' ', 0);
    TN_ASSERT_OK(tn_hello_decode(p, n, &g));
    n = hello_payload(p, 2, 2, '~', 0);
    TN_ASSERT_OK(tn_hello_decode(p, n, &g));
}

TN_TEST(proto_msg_next_several)
{
    tn_buf_t b;
    tn_buf_init(&b, 4096);
    TN_ASSERT_OK(tn_msg_append(&b, TN_MSG_PING, "\1\2\3\4\5\6\7\10", 8));
    TN_ASSERT_OK(tn_msg_append(&b, 0x8001, NULL, 0)); /* empty payload */
    TN_ASSERT_OK(tn_u64_msg_encode(&b, TN_MSG_PONG, 0xfedcba9876543210ull));
    size_t hdr;
    TN_ASSERT_OK(tn_msg_begin(&b, 0x7abc, &hdr));
    TN_ASSERT_OK(tn_buf_append(&b, "xyz", 3));
    tn_msg_finish(&b, hdr);
    TN_ASSERT_U64(b.len, ==, 4 * TN_MSG_HDR_LEN + 8 + 0 + 8 + 3);
    TN_ASSERT_HEX(b.p, 14,
                  "0002"
                  "00000008"
                  "0102030405060708");

    static const struct {
        uint16_t type;
        uint32_t len;
    } want[] = {{TN_MSG_PING, 8}, {0x8001, 0}, {TN_MSG_PONG, 8}, {0x7abc, 3}};
    size_t off = 0;
    uint16_t type;
    const uint8_t *payload;
    uint32_t len;
    for (size_t i = 0; i < TN_ARRAY_LEN(want); i++) {
        TN_ASSERT_INT(tn_msg_next(b.p, b.len, &off, &type, &payload, &len), ==, 1);
        TN_ASSERT_INT(type, ==, want[i].type);
        TN_ASSERT_INT(len, ==, want[i].len);
        if (type == TN_MSG_PONG) {
            uint64_t v;
            TN_ASSERT_OK(tn_u64_msg_decode(payload, len, &v));
            TN_ASSERT_U64(v, ==, 0xfedcba9876543210ull);
        }
        if (type == 0x7abc) TN_ASSERT_MEM_EQ(payload, "xyz", 3);
    }
    TN_ASSERT_U64(off, ==, b.len);
    TN_ASSERT_INT(tn_msg_next(b.p, b.len, &off, &type, &payload, &len), ==, 0);
    TN_ASSERT_INT(tn_msg_next(b.p, b.len, &off, &type, &payload, &len), ==, 0); /* stays at end */
    off = 0; /* an empty frame holds no messages */
    TN_ASSERT_INT(tn_msg_next(b.p, 0, &off, &type, &payload, &len), ==, 0);
    tn_buf_free(&b);
}

TN_TEST(proto_msg_next_truncated)
{
    tn_buf_t b;
    tn_buf_init(&b, 4096);
    TN_ASSERT_OK(tn_msg_append(&b, TN_MSG_PING, "\1\2\3\4\5\6\7\10", 8));
    TN_ASSERT_OK(tn_msg_append(&b, TN_MSG_PONG, "\1\2\3\4\5\6\7\10", 8));
    size_t off;
    uint16_t type;
    const uint8_t *payload;
    uint32_t len;
    /* Every cut that is not a message boundary is malformed. */
    for (size_t n = 1; n < b.len; n++) {
        off = 0;
        int rc;
        int msgs = 0;
        while ((rc = tn_msg_next(b.p, n, &off, &type, &payload, &len)) == 1) msgs++;
        if (n == 14) {
            if (rc != 0 || msgs != 1) TN_FAIL("cut at the boundary: rc %d, %d messages", rc, msgs);
        } else if (rc != TN_EINVAL) {
            TN_FAIL("cut at %zu bytes: rc %d after %d messages, want TN_EINVAL", n, rc, msgs);
        }
    }
    /* A length beyond the frame, up to the largest u32, is refused without overflow. */
    static const uint32_t lens[] = {23, 100, 0x7fffffff, 0xfffffff9, 0xfffffffa, 0xffffffff};
    for (size_t i = 0; i < TN_ARRAY_LEN(lens); i++) {
        tn_put_u32(b.p + 2, lens[i]);
        off = 0;
        TN_ASSERT_RC(tn_msg_next(b.p, b.len, &off, &type, &payload, &len), TN_EINVAL);
    }
    off = b.len + 1; /* an offset past the end */
    TN_ASSERT_RC(tn_msg_next(b.p, b.len, &off, &type, &payload, &len), TN_EINVAL);
    tn_buf_free(&b);
}

TN_TEST(proto_u64_messages)
{
    tn_buf_t b;
    tn_buf_init(&b, 64);
    TN_ASSERT_OK(tn_u64_msg_encode(&b, TN_MSG_PING, 0x0102030405060708ull));
    TN_ASSERT_HEX(b.p, b.len, "0002000000080102030405060708");
    uint64_t v;
    TN_ASSERT_OK(tn_u64_msg_decode(b.p + 6, 8, &v));
    TN_ASSERT_U64(v, ==, 0x0102030405060708ull);
    TN_ASSERT_RC(tn_u64_msg_decode(b.p + 6, 7, &v), TN_EINVAL);
    TN_ASSERT_RC(tn_u64_msg_decode(b.p, 9, &v), TN_EINVAL);
    TN_ASSERT_RC(tn_u64_msg_decode(b.p, 0, &v), TN_EINVAL);
    tn_buf_free(&b);
}

TN_TEST(proto_msg_append_respects_bound)
{
    tn_buf_t b;
    tn_buf_init(&b, 20);
    TN_ASSERT_OK(tn_msg_append(&b, TN_MSG_PING, "12345678", 8)); /* 14 bytes */
    TN_ASSERT_RC(tn_msg_append(&b, TN_MSG_PING, "1", 1), TN_ENOMEM);
    TN_ASSERT_U64(b.len, ==, 14);
    TN_ASSERT_OK(tn_msg_append(&b, TN_MSG_PING, NULL, 0)); /* 20: exactly the bound */
    size_t hdr;
    TN_ASSERT_RC(tn_msg_begin(&b, TN_MSG_PING, &hdr), TN_ENOMEM);
    tn_buf_free(&b);
}

TN_TEST(proto_msg_names)
{
    TN_ASSERT_STR_EQ(tn_msg_name(TN_MSG_AUTH), "auth");
    TN_ASSERT_STR_EQ(tn_msg_name(TN_MSG_HELLO), "hello");
    TN_ASSERT_STR_EQ(tn_msg_name(TN_MSG_PING), "ping");
    TN_ASSERT_STR_EQ(tn_msg_name(TN_MSG_PONG), "pong");
    TN_ASSERT(tn_msg_name(4) == NULL);
    TN_ASSERT(tn_msg_name(0x7fff) == NULL);
    TN_ASSERT(tn_msg_name(TN_MSG_EXPERIMENT_FIRST) == NULL);
    TN_ASSERT_INT(TN_MSG_EXPERIMENT_FIRST, ==, 0x8000);
}
