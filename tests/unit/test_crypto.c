/* Handshake and frames (tn_crypto.h), driven entirely in memory: an initiator and a
 * responder state machine exchange flights and auth payloads as the wire would carry them. */
#include "tn_crypto.h"
#include "tn_test.h"

#include <sodium.h>

static const uint8_t TESTNET[4] = {0x54, 0x49, 0x4D, 0x45};

typedef struct {
    uint8_t sk[TN_ID_SK_LEN], pk[TN_ID_LEN];
    tn_prologue_t pro;
    tn_hs_t hs;
} side_t;

static void side_init(side_t *s, int initiator, uint8_t seed_byte, uint64_t nonce)
{
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof seed);
    crypto_sign_seed_keypair(s->pk, s->sk, seed);
    memcpy(s->pro.magic, TESTNET, 4);
    s->pro.version = TN_PROTO_VERSION;
    s->pro.min_version = TN_PROTO_MIN_VERSION;
    s->pro.nonce = nonce;
    tn_hs_start(&s->hs, initiator, &s->pro, NULL);
}

/* Both flights cross, then both auth payloads; returns once both verified. */
static void handshake(side_t *i, side_t *r)
{
    TN_ASSERT_OK(tn_crypto_init());
    side_init(i, 1, 0x11, 0x1111);
    side_init(r, 0, 0x22, 0x2222);
    TN_ASSERT_OK(tn_hs_read_flight(&i->hs, &i->pro, r->hs.flight_mine));
    TN_ASSERT_OK(tn_hs_read_flight(&r->hs, &r->pro, i->hs.flight_mine));
    uint8_t ai[TN_AUTH_LEN], ar[TN_AUTH_LEN];
    tn_hs_auth(&i->hs, i->sk, ai);
    tn_hs_auth(&r->hs, r->sk, ar);
    TN_ASSERT_OK(tn_hs_verify(&r->hs, ai));
    TN_ASSERT_OK(tn_hs_verify(&i->hs, ar));
}

TN_TEST(crypto_handshake_in_memory)
{
    side_t i, r;
    handshake(&i, &r);
    /* Same transcript, matching direction keys, distinct per direction. */
    TN_ASSERT_MEM_EQ(i.hs.h, r.hs.h, 32);
    TN_ASSERT_MEM_EQ(i.hs.tx.key, r.hs.rx.key, TN_KEY_LEN);
    TN_ASSERT_MEM_EQ(i.hs.rx.key, r.hs.tx.key, TN_KEY_LEN);
    TN_ASSERT(memcmp(i.hs.tx.key, i.hs.rx.key, TN_KEY_LEN) != 0);
    TN_ASSERT_U64(i.hs.tx.counter + i.hs.rx.counter + r.hs.tx.counter + r.hs.rx.counter, ==, 0);
    /* Each learned the other's identity and prologue. */
    TN_ASSERT_MEM_EQ(i.hs.their_id, r.pk, TN_ID_LEN);
    TN_ASSERT_MEM_EQ(r.hs.their_id, i.pk, TN_ID_LEN);
    TN_ASSERT_U64(i.hs.theirs.nonce, ==, 0x2222);
    TN_ASSERT_U64(r.hs.theirs.nonce, ==, 0x1111);
    /* The flight is the prologue followed by the ephemeral public key. */
    uint8_t pro[TN_PROLOGUE_LEN];
    tn_prologue_encode(&i.pro, pro);
    TN_ASSERT_MEM_EQ(i.hs.flight_mine, pro, TN_PROLOGUE_LEN);
    TN_ASSERT_MEM_EQ(i.hs.flight_mine + TN_PROLOGUE_LEN, i.hs.e_pk, 32);
    /* Fresh ephemeral keys: a second handshake has another transcript and other keys. */
    side_t i2, r2;
    handshake(&i2, &r2);
    TN_ASSERT(memcmp(i.hs.h, i2.hs.h, 32) != 0);
    TN_ASSERT(memcmp(i.hs.tx.key, i2.hs.tx.key, TN_KEY_LEN) != 0);
    tn_hs_wipe(&i.hs);
    static const uint8_t zero[32];
    TN_ASSERT_MEM_EQ(i.hs.e_sk, zero, 32);
}

TN_TEST(crypto_auth_from_other_session_fails)
{
    side_t i, r, i2, r2;
    handshake(&i, &r);
    handshake(&i2, &r2); /* same identities, other ephemeral keys */
    uint8_t a[TN_AUTH_LEN];
    /* A valid auth payload of one session replayed into another does not verify. */
    tn_hs_auth(&i2.hs, i2.sk, a);
    TN_ASSERT_OK(tn_hs_verify(&r2.hs, a));
    TN_ASSERT_RC(tn_hs_verify(&r.hs, a), TN_ECRYPTO);
    tn_hs_auth(&r2.hs, r2.sk, a);
    TN_ASSERT_RC(tn_hs_verify(&i.hs, a), TN_ECRYPTO);
}

TN_TEST(crypto_auth_wrong_role_fails)
{
    side_t i, r;
    handshake(&i, &r);
    uint8_t a[TN_AUTH_LEN];
    /* The initiator's own auth reflected back to it does not verify... */
    tn_hs_auth(&i.hs, i.sk, a);
    TN_ASSERT_RC(tn_hs_verify(&i.hs, a), TN_ECRYPTO);
    /* ...nor does a responder that signs with the initiator's role byte. */
    tn_hs_t fake = r.hs;
    fake.initiator = 1;
    tn_hs_auth(&fake, r.sk, a);
    TN_ASSERT_RC(tn_hs_verify(&i.hs, a), TN_ECRYPTO);
    fake = i.hs;
    fake.initiator = 0;
    tn_hs_auth(&fake, i.sk, a);
    TN_ASSERT_RC(tn_hs_verify(&r.hs, a), TN_ECRYPTO);
}

TN_TEST(crypto_auth_tampered_fails)
{
    side_t i, r;
    handshake(&i, &r);
    uint8_t a[TN_AUTH_LEN], t[TN_AUTH_LEN];
    tn_hs_auth(&i.hs, i.sk, a);
    for (size_t bit = 0; bit < TN_AUTH_LEN * 8; bit += 7) {
        memcpy(t, a, sizeof t);
        t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (tn_hs_verify(&r.hs, t) != TN_ECRYPTO)
            TN_FAIL("auth with bit %zu flipped verified", bit);
    }
    /* Another identity's key with this signature fails: the id is bound by the signature. */
    memcpy(t, a, sizeof t);
    memcpy(t, r.pk, TN_ID_LEN);
    TN_ASSERT_RC(tn_hs_verify(&r.hs, t), TN_ECRYPTO);
    /* A failed verify leaves their_id unset. */
    side_t i2, r2;
    handshake(&i2, &r2);
    memset(r2.hs.their_id, 0, TN_ID_LEN);
    TN_ASSERT_RC(tn_hs_verify(&r2.hs, t), TN_ECRYPTO);
    static const uint8_t zero[TN_ID_LEN];
    TN_ASSERT_MEM_EQ(r2.hs.their_id, zero, TN_ID_LEN);
}

TN_TEST(crypto_prologue_is_bound)
{
    /* A middlebox that rewrites the responder's prologue nonce (or version) in flight makes
     * the two transcripts differ, so the auth payloads no longer verify. */
    TN_ASSERT_OK(tn_crypto_init());
    side_t i, r;
    side_init(&i, 1, 0x11, 1);
    side_init(&r, 0, 0x22, 2);
    uint8_t rf[TN_FLIGHT1_LEN];
    memcpy(rf, r.hs.flight_mine, sizeof rf);
    rf[TN_PROLOGUE_LEN - 1] ^= 1; /* nonce */
    TN_ASSERT_OK(tn_hs_read_flight(&i.hs, &i.pro, rf));
    TN_ASSERT_OK(tn_hs_read_flight(&r.hs, &r.pro, i.hs.flight_mine));
    TN_ASSERT(memcmp(i.hs.h, r.hs.h, 32) != 0);
    uint8_t a[TN_AUTH_LEN];
    tn_hs_auth(&i.hs, i.sk, a);
    TN_ASSERT_RC(tn_hs_verify(&r.hs, a), TN_ECRYPTO);
    tn_hs_auth(&r.hs, r.sk, a);
    TN_ASSERT_RC(tn_hs_verify(&i.hs, a), TN_ECRYPTO);
}

TN_TEST(crypto_read_flight_checks_prologue)
{
    TN_ASSERT_OK(tn_crypto_init());
    side_t i, r;
    side_init(&i, 1, 0x11, 1);
    side_init(&r, 0, 0x22, 2);
    uint8_t f[TN_FLIGHT1_LEN];
    memcpy(f, r.hs.flight_mine, sizeof f);
    f[0] = 0xC0; /* another network */
    TN_ASSERT_RC(tn_hs_read_flight(&i.hs, &i.pro, f), TN_EMAGIC);
    memcpy(f, r.hs.flight_mine, sizeof f);
    tn_put_u16(f + 4, 7); /* version 7, min 7 */
    tn_put_u16(f + 6, 7);
    TN_ASSERT_RC(tn_hs_read_flight(&i.hs, &i.pro, f), TN_EVERSION);
    TN_ASSERT_INT(i.hs.theirs.version, ==, 7);
}

TN_TEST(crypto_degenerate_ephemeral_key)
{
    /* A low-order ephemeral public key gives an all-zero shared secret: refused. */
    TN_ASSERT_OK(tn_crypto_init());
    side_t i, r;
    side_init(&i, 1, 0x11, 1);
    side_init(&r, 0, 0x22, 2);
    uint8_t f[TN_FLIGHT1_LEN];
    memcpy(f, r.hs.flight_mine, sizeof f);
    memset(f + TN_PROLOGUE_LEN, 0, 32);
    TN_ASSERT_RC(tn_hs_read_flight(&i.hs, &i.pro, f), TN_ECRYPTO);
    f[TN_PROLOGUE_LEN] = 1; /* the point 1, also of low order */
    TN_ASSERT_RC(tn_hs_read_flight(&i.hs, &i.pro, f), TN_ECRYPTO);
}

TN_TEST(crypto_fixed_ephemeral_key)
{
    TN_ASSERT_OK(tn_crypto_init());
    uint8_t esk[32], epk[32];
    for (int k = 0; k < 32; k++) esk[k] = (uint8_t)(0x40 + k);
    crypto_scalarmult_base(epk, esk);
    tn_prologue_t p = {{0x54, 0x49, 0x4D, 0x45}, 1, 1, 5};
    tn_hs_t a, b;
    tn_hs_start(&a, 1, &p, esk);
    tn_hs_start(&b, 1, &p, esk);
    TN_ASSERT_MEM_EQ(a.e_pk, epk, 32);
    TN_ASSERT_MEM_EQ(a.flight_mine, b.flight_mine, TN_FLIGHT1_LEN);
    tn_hs_start(&b, 1, &p, NULL); /* random otherwise */
    TN_ASSERT(memcmp(a.e_pk, b.e_pk, 32) != 0);
}

/* ---- frames ---- */

/* Seals plaintext into buf (room for header and tag) and returns the frame length. */
static size_t seal(tn_aead_t *a, uint8_t *buf, const void *pt, size_t n)
{
    memcpy(buf + TN_FRAME_HDR_LEN, pt, n);
    return tn_frame_seal(a, buf, n);
}

/* Opens a copy of frame f (as a receiver would: header, then ciphertext). */
static int open_copy(tn_aead_t *a, const uint8_t *f, size_t flen, uint8_t *out)
{
    uint32_t clen;
    int rc = tn_frame_len(f, 1u << 20, &clen);
    if (rc) return rc;
    if (clen != flen - TN_FRAME_HDR_LEN) return TN_EINVAL;
    memcpy(out, f + TN_FRAME_HDR_LEN, clen);
    return tn_frame_open(a, f, out, clen);
}

TN_TEST(crypto_frame_roundtrip)
{
    side_t i, r;
    handshake(&i, &r);
    static uint8_t pt[70000], buf[70100], out[70100];
    for (size_t k = 0; k < sizeof pt; k++) pt[k] = (uint8_t)(k * 31 + 7);
    static const size_t sizes[] = {0, 1, 15, 16, 17, 102, 4096, 65536, 70000};
    for (size_t k = 0; k < TN_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k];
        size_t flen = seal(&i.hs.tx, buf, pt, n);
        TN_ASSERT_U64(flen, ==, TN_FRAME_HDR_LEN + n + TN_TAG_LEN);
        TN_ASSERT_U64(tn_get_u32(buf), ==, n + TN_TAG_LEN);   /* length counts the tag */
        if (n >= 16) TN_ASSERT(memcmp(buf + 4, pt, 16) != 0); /* encrypted */
        TN_ASSERT_OK(open_copy(&r.hs.rx, buf, flen, out));
        TN_ASSERT_MEM_EQ(out, pt, n);
        /* And the other direction. */
        flen = seal(&r.hs.tx, buf, pt, n);
        TN_ASSERT_OK(open_copy(&i.hs.rx, buf, flen, out));
        TN_ASSERT_MEM_EQ(out, pt, n);
    }
    TN_ASSERT_U64(i.hs.tx.counter, ==, TN_ARRAY_LEN(sizes));
    TN_ASSERT_U64(r.hs.rx.counter, ==, TN_ARRAY_LEN(sizes));
}

TN_TEST(crypto_frame_tamper_fails)
{
    side_t i, r;
    handshake(&i, &r);
    uint8_t buf[256], t[256], out[256];
    size_t flen = seal(&i.hs.tx, buf, "ping ping ping ping ping", 24);
    /* Flip each bit of the whole frame in turn: header (the AD), ciphertext and tag. A
     * flipped length bit changes the frame length, so the header is tried as the AD
     * against the untouched ciphertext. */
    for (size_t bit = 0; bit < flen * 8; bit++) {
        memcpy(t, buf, flen);
        t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        memcpy(out, t + TN_FRAME_HDR_LEN, flen - TN_FRAME_HDR_LEN);
        int rc = tn_frame_open(&r.hs.rx, t, out, (uint32_t)(flen - TN_FRAME_HDR_LEN));
        if (rc != TN_ECRYPTO) TN_FAIL("frame with bit %zu flipped: rc %d", bit, rc);
    }
    TN_ASSERT_U64(r.hs.rx.counter, ==, 0); /* failures do not advance the counter */
    TN_ASSERT_OK(open_copy(&r.hs.rx, buf, flen, out));
    TN_ASSERT_MEM_EQ(out, "ping ping ping ping ping", 24);
    /* A truncated frame (tag cut short) fails too. */
    flen = seal(&i.hs.tx, buf, "abc", 3);
    memcpy(out, buf + 4, flen - 4);
    TN_ASSERT_RC(tn_frame_open(&r.hs.rx, buf, out, (uint32_t)(flen - 5)), TN_ECRYPTO);
    TN_ASSERT_RC(tn_frame_open(&r.hs.rx, buf, out, 15), TN_EINVAL);
}

TN_TEST(crypto_frame_replay_fails)
{
    side_t i, r;
    handshake(&i, &r);
    uint8_t buf[64], out[64];
    size_t flen = seal(&i.hs.tx, buf, "once", 4);
    TN_ASSERT_OK(open_copy(&r.hs.rx, buf, flen, out));
    TN_ASSERT_RC(open_copy(&r.hs.rx, buf, flen, out), TN_ECRYPTO); /* same counter again */
    /* A frame reflected back at its sender fails: each direction has its own key. */
    uint8_t buf2[64];
    flen = seal(&i.hs.tx, buf2, "mirror", 6);
    TN_ASSERT_RC(open_copy(&i.hs.rx, buf2, flen, out), TN_ECRYPTO);
}

TN_TEST(crypto_frame_reorder_fails)
{
    side_t i, r;
    handshake(&i, &r);
    uint8_t f0[64], f1[64], f2[64], out[64];
    size_t l0 = seal(&i.hs.tx, f0, "zero", 4);
    size_t l1 = seal(&i.hs.tx, f1, "one", 3);
    size_t l2 = seal(&i.hs.tx, f2, "two", 3);
    TN_ASSERT_RC(open_copy(&r.hs.rx, f1, l1, out), TN_ECRYPTO); /* f0 skipped */
    TN_ASSERT_RC(open_copy(&r.hs.rx, f2, l2, out), TN_ECRYPTO);
    TN_ASSERT_OK(open_copy(&r.hs.rx, f0, l0, out));
    TN_ASSERT_RC(open_copy(&r.hs.rx, f2, l2, out), TN_ECRYPTO); /* f1 dropped */
    TN_ASSERT_OK(open_copy(&r.hs.rx, f1, l1, out));
    TN_ASSERT_OK(open_copy(&r.hs.rx, f2, l2, out));
    TN_ASSERT_MEM_EQ(out, "two", 3);
}

TN_TEST(crypto_frame_len_bounds)
{
    uint8_t h[4];
    uint32_t clen = 12345;
    const uint32_t max = 8u << 20;
    tn_put_u32(h, 0);
    TN_ASSERT_RC(tn_frame_len(h, max, &clen), TN_EINVAL);
    tn_put_u32(h, 1);
    TN_ASSERT_RC(tn_frame_len(h, max, &clen), TN_EINVAL);
    tn_put_u32(h, TN_TAG_LEN - 1);
    TN_ASSERT_RC(tn_frame_len(h, max, &clen), TN_EINVAL);
    TN_ASSERT_U64(clen, ==, 12345); /* untouched on failure */
    tn_put_u32(h, TN_TAG_LEN);
    TN_ASSERT_OK(tn_frame_len(h, max, &clen));
    TN_ASSERT_U64(clen, ==, TN_TAG_LEN);
    tn_put_u32(h, max);
    TN_ASSERT_OK(tn_frame_len(h, max, &clen));
    TN_ASSERT_U64(clen, ==, max);
    tn_put_u32(h, max + 1);
    TN_ASSERT_RC(tn_frame_len(h, max, &clen), TN_ETOOBIG);
    tn_put_u32(h, 0xFFFFFFFFu);
    TN_ASSERT_RC(tn_frame_len(h, max, &clen), TN_ETOOBIG);
    TN_ASSERT_RC(tn_frame_len(h, 0xFFFFFFFFu, &clen), TN_OK);
}
