/* Transactions and blocks (tn_tx.h): ids, signatures, every structural rule, and the
 * commitment; the idmap the chain indexes them with. */
#include "tn_crypto.h"
#include "tn_idmap.h"
#include "tn_test.h"
#include "tn_tx.h"

#include <sodium.h>
#include <stdlib.h>

static void keys(uint8_t pk[32], uint8_t sk[64], uint8_t seed_byte)
{
    uint8_t seed[32];
    memset(seed, seed_byte, 32);
    TN_ASSERT_OK(tn_crypto_init());
    crypto_sign_seed_keypair(pk, sk, seed);
}

static void make_tx(tn_buf_t *b, const uint8_t sk[64], uint64_t nonce, const char *payload)
{
    tn_buf_init(b, 1 << 20);
    TN_ASSERT_OK(tn_tx_build(b, sk, 2000000000, nonce, payload, (uint32_t)strlen(payload)));
}

TN_TEST(tx_roundtrip_and_signature)
{
    uint8_t pk[32], sk[64];
    keys(pk, sk, 1);
    tn_buf_t b;
    make_tx(&b, sk, 7, "hello");
    tn_tx_t tx;
    TN_ASSERT_OK(tn_tx_parse(b.p, (uint32_t)b.len, 1000, &tx));
    TN_ASSERT_U64(tx.len, ==, TN_TX_MIN + 5);
    TN_ASSERT_MEM_EQ(tx.sender, pk, 32);
    TN_ASSERT_U64(tx.expiry, ==, 2000000000);
    TN_ASSERT_U64(tx.nonce, ==, 7);
    TN_ASSERT_MEM_EQ(tx.payload, "hello", 5);
    TN_ASSERT_OK(tn_tx_verify(&tx));
    uint8_t id[32];
    crypto_generichash(id, 32, b.p, b.len, NULL, 0);
    TN_ASSERT_MEM_EQ(tx.id, id, 32); /* id = BLAKE2b-256 of all bytes */
    /* any flipped byte breaks the signature (or the structure) */
    for (size_t i = 0; i < b.len; i++) {
        b.p[i] ^= 0x40;
        tn_tx_t t2;
        if (tn_tx_parse(b.p, (uint32_t)b.len, 1000, &t2) == TN_OK)
            TN_ASSERT_RC(tn_tx_verify(&t2), TN_ECRYPTO);
        b.p[i] ^= 0x40;
    }
    tn_buf_free(&b);
}

TN_TEST(tx_structure_rules)
{
    uint8_t pk[32], sk[64];
    keys(pk, sk, 2);
    tn_buf_t b;
    make_tx(&b, sk, 1, "abc");
    tn_tx_t tx;
    TN_ASSERT_RC(tn_tx_parse(b.p, (uint32_t)b.len, (uint32_t)b.len - 1, &tx), TN_ETOOBIG);
    TN_ASSERT_RC(tn_tx_parse(b.p, TN_TX_MIN - 1, 1000, &tx), TN_EINVAL);
    TN_ASSERT_RC(tn_tx_parse(b.p, (uint32_t)b.len - 1, 1000, &tx), TN_EINVAL); /* length field */
    b.p[0] = 2;
    TN_ASSERT_RC(tn_tx_parse(b.p, (uint32_t)b.len, 1000, &tx), TN_EINVAL); /* version */
    tn_buf_free(&b);
}

static void build_block(tn_buf_t *out, const uint8_t sk[64], tn_buf_t *txs, uint32_t n)
{
    const uint8_t *p[8];
    uint32_t l[8];
    for (uint32_t i = 0; i < n; i++) p[i] = txs[i].p, l[i] = (uint32_t)txs[i].len;
    uint8_t prev[32];
    memset(prev, 9, 32);
    tn_buf_init(out, 1 << 20);
    TN_ASSERT_OK(tn_block_build(out, sk, 5, prev, 100, 123456, p, l, n));
}

TN_TEST(block_roundtrip_commitment_and_signature)
{
    uint8_t pk[32], sk[64];
    keys(pk, sk, 3);
    tn_buf_t txs[3], b;
    for (int i = 0; i < 3; i++) make_tx(&txs[i], sk, (uint64_t)i, "payload");
    build_block(&b, sk, txs, 3);
    tn_block_hdr_t h;
    TN_ASSERT_OK(tn_block_parse(b.p, (uint32_t)b.len, 1 << 20, 1000, &h));
    TN_ASSERT_U64(h.height, ==, 5);
    TN_ASSERT_U64(h.slot, ==, 100);
    TN_ASSERT_U64(h.time_ms, ==, 123456);
    TN_ASSERT_U64(h.tx_count, ==, 3);
    TN_ASSERT_MEM_EQ(h.producer, pk, 32);
    TN_ASSERT_OK(tn_block_verify_sig(&h, b.p));
    uint32_t off = 0;
    tn_tx_t tx;
    int n = 0;
    while (tn_block_next_tx(b.p, (uint32_t)b.len, &off, &tx) == 1) n++;
    TN_ASSERT_INT(n, ==, 3);
    /* a changed transaction no longer matches the commitment */
    b.p[b.len - 10] ^= 1;
    TN_ASSERT_RC(tn_block_parse(b.p, (uint32_t)b.len, 1 << 20, 1000, &h), TN_ECRYPTO);
    b.p[b.len - 10] ^= 1;
    /* a changed header field breaks the signature */
    b.p[50] ^= 1;
    TN_ASSERT_OK(tn_block_parse(b.p, (uint32_t)b.len, 1 << 20, 1000, &h));
    TN_ASSERT_RC(tn_block_verify_sig(&h, b.p), TN_ECRYPTO);
    /* oversize, and a transaction above max_tx_len */
    TN_ASSERT_RC(tn_block_parse(b.p, (uint32_t)b.len, (uint32_t)b.len - 1, 1000, &h), TN_ETOOBIG);
    b.p[50] ^= 1;
    TN_ASSERT_RC(tn_block_parse(b.p, (uint32_t)b.len, 1 << 20, 50, &h), TN_ETOOBIG);
    tn_buf_free(&b);
    for (int i = 0; i < 3; i++) tn_buf_free(&txs[i]);
}

TN_TEST(block_rejects_repeated_transaction_and_bad_counts)
{
    uint8_t pk[32], sk[64];
    keys(pk, sk, 4);
    tn_buf_t txs[2], b;
    make_tx(&txs[0], sk, 1, "same");
    make_tx(&txs[1], sk, 1, "same"); /* identical bytes, identical id */
    build_block(&b, sk, txs, 2);
    tn_block_hdr_t h;
    TN_ASSERT_RC(tn_block_parse(b.p, (uint32_t)b.len, 1 << 20, 1000, &h), TN_EINVAL);
    tn_buf_free(&b);
    build_block(&b, sk, txs, 1);
    tn_put_u32(b.p + 121, 2); /* claims two transactions, holds one */
    TN_ASSERT_RC(tn_block_parse(b.p, (uint32_t)b.len, 1 << 20, 1000, &h), TN_EINVAL);
    tn_buf_free(&b);
    tn_buf_free(&txs[0]);
    tn_buf_free(&txs[1]);
}

TN_TEST(block_genesis_is_fixed_by_its_time)
{
    tn_buf_t a, b, c;
    tn_buf_init(&a, 4096);
    tn_buf_init(&b, 4096);
    tn_buf_init(&c, 4096);
    TN_ASSERT_OK(tn_block_genesis(&a, 1765324800000ull));
    TN_ASSERT_OK(tn_block_genesis(&b, 1765324800000ull));
    TN_ASSERT_OK(tn_block_genesis(&c, 1765324800001ull));
    tn_block_hdr_t ha, hb, hc;
    TN_ASSERT_OK(tn_block_parse(a.p, (uint32_t)a.len, 4096, 1000, &ha));
    TN_ASSERT_OK(tn_block_parse(b.p, (uint32_t)b.len, 4096, 1000, &hb));
    TN_ASSERT_OK(tn_block_parse(c.p, (uint32_t)c.len, 4096, 1000, &hc));
    TN_ASSERT_MEM_EQ(ha.id, hb.id, 32);
    TN_ASSERT(memcmp(ha.id, hc.id, 32) != 0);
    TN_ASSERT(tn_block_is_genesis(&ha));
    tn_buf_free(&a);
    tn_buf_free(&b);
    tn_buf_free(&c);
}

TN_TEST(idmap_put_get_delete_many)
{
    tn_idmap_t m;
    TN_ASSERT_OK(tn_idmap_init(&m, 4));
    enum { N = 5000 };
    static uint8_t keys_[N][32];
    static int vals[N];
    for (int i = 0; i < N; i++) {
        randombytes_buf(keys_[i], 32);
        vals[i] = i;
        TN_ASSERT_OK(tn_idmap_put(&m, keys_[i], &vals[i]));
    }
    TN_ASSERT_U64(m.n, ==, N);
    for (int i = 0; i < N; i++) TN_ASSERT(tn_idmap_get(&m, keys_[i]) == &vals[i]);
    /* delete every other one: the rest must stay reachable (backward-shift deletion) */
    for (int i = 0; i < N; i += 2) TN_ASSERT(tn_idmap_del(&m, keys_[i]) == &vals[i]);
    for (int i = 0; i < N; i++) TN_ASSERT(tn_idmap_get(&m, keys_[i]) == (i % 2 ? &vals[i] : NULL));
    TN_ASSERT(tn_idmap_del(&m, keys_[0]) == NULL);
    TN_ASSERT_U64(m.n, ==, N / 2);
    tn_idmap_free(&m);
}
