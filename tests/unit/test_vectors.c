/* Handshake and frame test vectors: recomputes every value listed in doc/protocol.md
 * "Test vectors" from the fixed inputs and compares with the hex below, and checks that
 * the doc lists the same values. If the code's output changes, these tests fail; print the
 * new values with `TN_VECTORS_PRINT=1 build/unit-tests vectors_handshake`. */
#include "tn_crypto.h"
#include "tn_test.h"

#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define PING_NONCE 0x0102030405060708ull

/* The same lines as the doc's block, in the same order. Inputs first. */
static const struct {
    const char *name, *hex;
} WANT[] = {
    {"magic", "54494d45"},
    {"version", "0001"},
    {"min_version", "0001"},
    {"id_seed_i", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
    {"id_seed_r", "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"},
    {"e_sk_i", "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"},
    {"e_sk_r", "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"},
    {"nonce_i", "0123456789abcdef"},
    {"nonce_r", "fedcba9876543210"},
    {"ping_nonce", "0102030405060708"},
    {"id_pk_i", "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"},
    {"id_pk_r", "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"},
    {"e_pk_i", "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"},
    {"e_pk_r", "675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f"},
    {"flight_i", "54494d45000100010123456789abcdef79a631eede1bf9c98f12032cdeadd0e7"
                 "a079398fc786b88cc846ec89af85a51a"},
    {"flight_r", "54494d4500010001fedcba9876543210675dd574ed7789310b3d2e7681f3790b"
                 "466c773b1521fecf36577958371ea52f"},
    {"dh", "d6fb939511b2381bc8599b4b8edc5968829450dfd7a87aebe78a703cd04cd54e"},
    {"h", "6e0de4155937ae3731092fc6d3158cb56ede6162d36684dbec22ea77a3e8123b"},
    {"k_i2r", "9eb7d215db09c49e5d42340131b3e42e2a44cd39b0e29caf515ed939fea9c1e9"},
    {"k_r2i", "9bd5953545c07367a7a3d76059098ec76bb8a822b60baf4ae1017a77cdda4429"},
    {"auth_i", "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
               "657ab0e0e106d3a3840751c7cf3ffe371604ca657d8a890073fa9cd2d88157a2"
               "30c104d7139b22a88cfe43f68242a10fb82bf7452f7c1e69a49d779737126003"},
    {"auth_r", "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
               "5cd5dd652d298538721d67427d8f99a23f109d52fd05f5dcbe3ff56eb159516d"
               "ca0b0ae2fd76d2e8c9c80fff6464dbc01d10eabce3d8ce4b1e9b295ddb318501"},
    {"frame_auth_i", "0000007650ef6ca30e3f303cb7e744cc9fa72cfed2a8db6198a84aa09d6d771e"
                     "48dd8ee5450de0355099d8ba59f83db6eb68b1e9fdcf91dc84835bd9ddd51b76"
                     "3258ca47f2b2c6cd7e6fa1cb3b568d200c0d26aca9986b34db88b06bbc330ca2"
                     "a821c3689c3936113601128a11771ec1aeb6fc5b90e79e7282f7"},
    {"frame_auth_r", "00000076df3aa1159ecb6c671b92163045b10b436b7151eecda355386dc12718"
                     "d3a764a01b5e6a5ce4e173f4032f54dcf8127c662727df30067370c9c89f45ee"
                     "2c27e587573277b610261c88b11dfcbf18abea4fe64665cfbe0097c2b656d90a"
                     "7982e36c1aab9125af082b8be47550f8716fb872380c1414f5ef"},
    {"frame_ping_i", "0000001eb268d4411c8ab28adba874735be44ef72f9062ceb8eb5a8ac5dca729"
                     "c01a"},
};

typedef struct {
    const char *name;
    uint8_t v[256];
    size_t n;
} value_t;

typedef struct {
    value_t v[TN_ARRAY_LEN(WANT)];
    int n;
} values_t;

static void put(values_t *vs, const char *name, const void *p, size_t n)
{
    if (vs->n == (int)TN_ARRAY_LEN(WANT) || n > sizeof vs->v[0].v) TN_FAIL("too many values");
    value_t *x = &vs->v[vs->n++];
    x->name = name;
    memcpy(x->v, p, n);
    x->n = n;
}

static void seq(uint8_t out[32], uint8_t first)
{
    for (int k = 0; k < 32; k++) out[k] = (uint8_t)(first + k);
}

/* Seals one AUTH message carrying payload as the first frame of a direction. */
static size_t auth_frame(tn_aead_t *a, const uint8_t auth[TN_AUTH_LEN], uint8_t *out)
{
    tn_put_u16(out + 4, TN_MSG_AUTH);
    tn_put_u32(out + 6, TN_AUTH_LEN);
    memcpy(out + 4 + TN_MSG_HDR_LEN, auth, TN_AUTH_LEN);
    return tn_frame_seal(a, out, TN_MSG_HDR_LEN + TN_AUTH_LEN);
}

/* Runs the handshake from the fixed inputs, checking each step as a peer would. */
static void compute(values_t *vs)
{
    TN_ASSERT_OK(tn_crypto_init());
    memset(vs, 0, sizeof *vs);
    uint8_t seed_i[32], seed_r[32], esk_i[32], esk_r[32];
    seq(seed_i, 0x00);
    seq(seed_r, 0x20);
    seq(esk_i, 0x40);
    seq(esk_r, 0x60);
    uint8_t pk_i[32], sk_i[64], pk_r[32], sk_r[64];
    crypto_sign_seed_keypair(pk_i, sk_i, seed_i);
    crypto_sign_seed_keypair(pk_r, sk_r, seed_r);
    tn_prologue_t pi = {{0x54, 0x49, 0x4D, 0x45}, 1, 1, 0x0123456789abcdefull};
    tn_prologue_t pr = pi;
    pr.nonce = 0xfedcba9876543210ull;
    uint8_t b[8];
    put(vs, "magic", pi.magic, 4);
    tn_put_u16(b, pi.version);
    put(vs, "version", b, 2);
    tn_put_u16(b, pi.min_version);
    put(vs, "min_version", b, 2);
    put(vs, "id_seed_i", seed_i, 32);
    put(vs, "id_seed_r", seed_r, 32);
    put(vs, "e_sk_i", esk_i, 32);
    put(vs, "e_sk_r", esk_r, 32);
    tn_put_u64(b, pi.nonce);
    put(vs, "nonce_i", b, 8);
    tn_put_u64(b, pr.nonce);
    put(vs, "nonce_r", b, 8);
    tn_put_u64(b, PING_NONCE);
    put(vs, "ping_nonce", b, 8);
    put(vs, "id_pk_i", pk_i, 32);
    put(vs, "id_pk_r", pk_r, 32);

    tn_hs_t hi, hr;
    tn_hs_start(&hi, 1, &pi, esk_i);
    tn_hs_start(&hr, 0, &pr, esk_r);
    put(vs, "e_pk_i", hi.e_pk, 32);
    put(vs, "e_pk_r", hr.e_pk, 32);
    put(vs, "flight_i", hi.flight_mine, TN_FLIGHT1_LEN);
    put(vs, "flight_r", hr.flight_mine, TN_FLIGHT1_LEN);
    uint8_t dh[32], dh2[32];
    TN_ASSERT_INT(crypto_scalarmult(dh, esk_i, hr.e_pk), ==, 0);
    TN_ASSERT_INT(crypto_scalarmult(dh2, esk_r, hi.e_pk), ==, 0);
    TN_ASSERT_MEM_EQ(dh, dh2, 32);
    put(vs, "dh", dh, 32);
    TN_ASSERT_OK(tn_hs_read_flight(&hi, &pi, hr.flight_mine));
    TN_ASSERT_OK(tn_hs_read_flight(&hr, &pr, hi.flight_mine));
    TN_ASSERT_MEM_EQ(hi.h, hr.h, 32);
    put(vs, "h", hi.h, 32);
    TN_ASSERT_MEM_EQ(hi.tx.key, hr.rx.key, 32);
    TN_ASSERT_MEM_EQ(hi.rx.key, hr.tx.key, 32);
    put(vs, "k_i2r", hi.tx.key, 32);
    put(vs, "k_r2i", hi.rx.key, 32);

    uint8_t ai[TN_AUTH_LEN], ar[TN_AUTH_LEN];
    tn_hs_auth(&hi, sk_i, ai);
    tn_hs_auth(&hr, sk_r, ar);
    put(vs, "auth_i", ai, TN_AUTH_LEN);
    put(vs, "auth_r", ar, TN_AUTH_LEN);

    uint8_t fi[4 + TN_MSG_HDR_LEN + TN_AUTH_LEN + TN_TAG_LEN], fr[sizeof fi];
    size_t li = auth_frame(&hi.tx, ai, fi), lr = auth_frame(&hr.tx, ar, fr);
    TN_ASSERT_U64(li, ==, 122);
    put(vs, "frame_auth_i", fi, li);
    put(vs, "frame_auth_r", fr, lr);

    uint8_t fp[4 + TN_MSG_HDR_LEN + 8 + TN_TAG_LEN];
    tn_put_u16(fp + 4, TN_MSG_PING);
    tn_put_u32(fp + 6, 8);
    tn_put_u64(fp + 10, PING_NONCE);
    TN_ASSERT_U64(hi.tx.counter, ==, 1);
    size_t lp = tn_frame_seal(&hi.tx, fp, TN_MSG_HDR_LEN + 8);
    put(vs, "frame_ping_i", fp, lp);

    /* The receiving side accepts what was sent: auth frames, identities, then the ping. */
    uint32_t clen;
    uint8_t ct[sizeof fi];
    TN_ASSERT_OK(tn_frame_len(fi, 8u << 20, &clen));
    memcpy(ct, fi + 4, clen);
    TN_ASSERT_OK(tn_frame_open(&hr.rx, fi, ct, clen));
    TN_ASSERT_U64(tn_get_u16(ct), ==, TN_MSG_AUTH);
    TN_ASSERT_OK(tn_hs_verify(&hr, ct + TN_MSG_HDR_LEN));
    TN_ASSERT_MEM_EQ(hr.their_id, pk_i, 32);
    TN_ASSERT_OK(tn_frame_len(fr, 8u << 20, &clen));
    memcpy(ct, fr + 4, clen);
    TN_ASSERT_OK(tn_frame_open(&hi.rx, fr, ct, clen));
    TN_ASSERT_OK(tn_hs_verify(&hi, ct + TN_MSG_HDR_LEN));
    TN_ASSERT_MEM_EQ(hi.their_id, pk_r, 32);
    TN_ASSERT_OK(tn_frame_len(fp, 8u << 20, &clen));
    memcpy(ct, fp + 4, clen);
    TN_ASSERT_OK(tn_frame_open(&hr.rx, fp, ct, clen));
    size_t off = 0;
    uint16_t type;
    const uint8_t *payload;
    uint32_t len;
    uint64_t nonce;
    TN_ASSERT_INT(tn_msg_next(ct, clen - TN_TAG_LEN, &off, &type, &payload, &len), ==, 1);
    TN_ASSERT_INT(type, ==, TN_MSG_PING);
    TN_ASSERT_OK(tn_u64_msg_decode(payload, len, &nonce));
    TN_ASSERT_U64(nonce, ==, PING_NONCE);
    TN_ASSERT_INT(tn_msg_next(ct, clen - TN_TAG_LEN, &off, &type, &payload, &len), ==, 0);
}

TN_TEST(vectors_handshake)
{
    values_t vs;
    compute(&vs);
    if (getenv("TN_VECTORS_PRINT")) {
        for (int k = 0; k < vs.n; k++) {
            char hex[2 * sizeof vs.v[0].v + 1];
            tn_hex(hex, vs.v[k].v, vs.v[k].n);
            fprintf(stderr, "%s = %s\n", vs.v[k].name, hex);
        }
    }
    TN_ASSERT_INT(vs.n, ==, TN_ARRAY_LEN(WANT));
    for (int k = 0; k < vs.n; k++) {
        TN_ASSERT_STR_EQ(vs.v[k].name, WANT[k].name);
        tn_test_assert_hex(__FILE__, __LINE__, vs.v[k].name, vs.v[k].v, vs.v[k].n, WANT[k].hex);
    }
}

/* doc/protocol.md, found from the working directory or from the binary's location
 * (build/unit-tests or build/asan/unit-tests in the repository). */
static char *read_doc(char *path, size_t pathlen)
{
    char *text = tn_test_read_file("doc/protocol.md", NULL);
    if (text) {
        snprintf(path, pathlen, "doc/protocol.md");
        return text;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *dir = dirname(exe);
    for (int up = 0; up < 4 && !text; up++) {
        snprintf(path, pathlen, "%s/doc/protocol.md", dir);
        text = tn_test_read_file(path, NULL);
        dir = dirname(dir);
    }
    return text;
}

TN_TEST(vectors_match_doc)
{
    char path[PATH_MAX + 32];
    char *doc = read_doc(path, sizeof path);
    if (!doc) TN_FAIL("doc/protocol.md not found from the working directory or the binary");
    char *sec = strstr(doc, ". Test vectors\n");
    if (!sec) TN_FAIL("%s has no \"Test vectors\" section", path);
    char *start = strstr(sec, "\n```");
    if (!start) TN_FAIL("%s: no code block in \"Test vectors\"", path);
    start = strchr(start + 1, '\n');
    char *end = start ? strstr(start, "\n```") : NULL;
    if (!end) TN_FAIL("%s: unterminated code block in \"Test vectors\"", path);
    *end = 0;
    size_t k = 0;
    for (char *line = strtok(start + 1, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || line[0] == 0) continue;
        char name[64], hex[1024];
        if (sscanf(line, "%63[a-z0-9_] = %1023[0-9a-f]", name, hex) != 2)
            TN_FAIL("%s: line \"%s\" in the vectors block is not \"name = hex\"", path, line);
        if (k == TN_ARRAY_LEN(WANT)) TN_FAIL("%s: extra vector \"%s\"", path, name);
        if (strcmp(name, WANT[k].name) != 0)
            TN_FAIL("%s: vector %zu is \"%s\", the test has \"%s\"", path, k + 1, name,
                    WANT[k].name);
        if (strcmp(hex, WANT[k].hex) != 0)
            TN_FAIL("%s: %s differs between the doc and tests/unit/test_vectors.c", path, name);
        k++;
    }
    if (k != TN_ARRAY_LEN(WANT))
        TN_FAIL("%s lists %zu vectors, the test %zu", path, k, TN_ARRAY_LEN(WANT));
    free(doc);
}
