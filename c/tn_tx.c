/* Transaction and block codecs (see tn_tx.h). */
#include "tn_tx.h"

#include <sodium.h>
#include <stdlib.h>

static const char TX_LABEL[] = "timenet/1 tx";
static const char BLOCK_LABEL[] = "timenet/1 block";

static void hash(uint8_t out[32], const uint8_t *p, size_t n)
{
    crypto_generichash(out, 32, p, n, NULL, 0);
}

static void signed_digest(uint8_t out[32], const char *label, const uint8_t *p, size_t n)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    crypto_generichash_update(&st, p, n);
    crypto_generichash_final(&st, out, 32);
}

/* ---- transactions ---- */

int tn_tx_parse(const uint8_t *p, uint32_t len, uint32_t max_len, tn_tx_t *tx)
{
    if (len > max_len) return TN_ETOOBIG;
    if (len < TN_TX_MIN || p[0] != TN_TX_VERSION) return TN_EINVAL;
    uint32_t pl = tn_get_u32(p + 49);
    if (pl != len - TN_TX_MIN) return TN_EINVAL;
    tx->raw = p;
    tx->len = len;
    tx->sender = p + 1;
    tx->expiry = tn_get_u64(p + 33);
    tx->nonce = tn_get_u64(p + 41);
    tx->payload = p + TN_TX_FIXED;
    tx->payload_len = pl;
    tx->sig = p + len - 64;
    hash(tx->id, p, len);
    return TN_OK;
}

int tn_tx_verify(const tn_tx_t *tx)
{
    uint8_t d[32];
    signed_digest(d, TX_LABEL, tx->raw, tx->len - 64);
    return crypto_sign_verify_detached(tx->sig, d, 32, tx->sender) == 0 ? TN_OK : TN_ECRYPTO;
}

int tn_tx_build(tn_buf_t *out, const uint8_t sk[64], uint64_t expiry, uint64_t nonce,
                const void *payload, uint32_t payload_len)
{
    size_t start = out->len;
    int rc = tn_buf_reserve(out, TN_TX_MIN + (size_t)payload_len);
    if (rc) return rc;
    uint8_t *p = out->p + start;
    p[0] = TN_TX_VERSION;
    memcpy(p + 1, sk + 32, 32);
    tn_put_u64(p + 33, expiry);
    tn_put_u64(p + 41, nonce);
    tn_put_u32(p + 49, payload_len);
    if (payload_len) memcpy(p + TN_TX_FIXED, payload, payload_len);
    uint8_t d[32];
    signed_digest(d, TX_LABEL, p, TN_TX_FIXED + (size_t)payload_len);
    crypto_sign_detached(p + TN_TX_FIXED + payload_len, NULL, d, 32, sk);
    out->len += TN_TX_MIN + (size_t)payload_len;
    return TN_OK;
}

/* ---- blocks ---- */

static void read_header(const uint8_t *p, tn_block_hdr_t *h)
{
    h->height = tn_get_u64(p + 1);
    memcpy(h->prev, p + 9, 32);
    h->slot = tn_get_u64(p + 41);
    h->time_ms = tn_get_u64(p + 49);
    memcpy(h->producer, p + 57, 32);
    memcpy(h->tx_root, p + 89, 32);
    h->tx_count = tn_get_u32(p + 121);
    memcpy(h->sig, p + TN_BLOCK_UNSIGNED, 64);
    hash(h->id, p, TN_BLOCK_HDR);
}

int tn_block_next_tx(const uint8_t *p, uint32_t len, uint32_t *off, tn_tx_t *tx)
{
    if (*off == 0) *off = TN_BLOCK_HDR;
    if (*off == len) return 0;
    if (len - *off < 4) return TN_EINVAL;
    uint32_t l = tn_get_u32(p + *off);
    if (l > len - *off - 4) return TN_EINVAL;
    int rc = tn_tx_parse(p + *off + 4, l, l, tx);
    if (rc) return rc;
    *off += 4 + l;
    return 1;
}

int tn_block_parse(const uint8_t *p, uint32_t len, uint32_t max_len, uint32_t max_tx_len,
                   tn_block_hdr_t *h)
{
    if (len > max_len) return TN_ETOOBIG;
    if (len < TN_BLOCK_HDR || p[0] != TN_BLOCK_VERSION) return TN_EINVAL;
    read_header(p, h);
    if (h->tx_count > (len - TN_BLOCK_HDR) / (4 + TN_TX_MIN)) return TN_EINVAL;
    crypto_generichash_state root;
    crypto_generichash_init(&root, NULL, 0, 32);
    uint32_t off = 0, n = 0;
    tn_tx_t tx;
    int rc;
    /* Repeated ids: a block holds few enough txs that a sorted check would be overkill; a
     * small open-addressed set of the first 8 id bytes catches them in one pass. */
    uint64_t seen_small[256];
    uint64_t *seen = seen_small;
    size_t cap = 256;
    while (cap < 2 * (size_t)h->tx_count) cap *= 2;
    if (cap > 256 && !(seen = calloc(cap, sizeof(uint64_t)))) return TN_ENOMEM;
    if (cap == 256) memset(seen_small, 0, sizeof seen_small);
    while ((rc = tn_block_next_tx(p, len, &off, &tx)) == 1) {
        if (tx.len > max_tx_len) {
            rc = TN_ETOOBIG;
            break;
        }
        uint64_t k = tn_get_u64(tx.id) | 1; /* 0 marks an empty slot */
        size_t i = (size_t)k & (cap - 1);
        while (seen[i] && seen[i] != k) i = (i + 1) & (cap - 1);
        if (seen[i] == k) {
            rc = TN_EINVAL; /* the same transaction twice (or a 64-bit prefix collision) */
            break;
        }
        seen[i] = k;
        crypto_generichash_update(&root, tx.id, 32);
        n++;
    }
    if (seen != seen_small) free(seen);
    if (rc < 0) return rc;
    if (n != h->tx_count) return TN_EINVAL;
    uint8_t r[32];
    crypto_generichash_final(&root, r, 32);
    return memcmp(r, h->tx_root, 32) == 0 ? TN_OK : TN_ECRYPTO;
}

int tn_block_verify_sig(const tn_block_hdr_t *h, const uint8_t *raw)
{
    uint8_t d[32];
    signed_digest(d, BLOCK_LABEL, raw, TN_BLOCK_UNSIGNED);
    return crypto_sign_verify_detached(h->sig, d, 32, h->producer) == 0 ? TN_OK : TN_ECRYPTO;
}

static int block_write(tn_buf_t *out, const uint8_t *sk, uint64_t height, const uint8_t prev[32],
                       uint64_t slot, uint64_t time_ms, const uint8_t *const *txs,
                       const uint32_t *tx_lens, uint32_t count)
{
    size_t body = 0;
    for (uint32_t i = 0; i < count; i++) body += 4 + (size_t)tx_lens[i];
    size_t start = out->len;
    int rc = tn_buf_reserve(out, TN_BLOCK_HDR + body);
    if (rc) return rc;
    uint8_t *p = out->p + start;
    memset(p, 0, TN_BLOCK_HDR);
    p[0] = TN_BLOCK_VERSION;
    tn_put_u64(p + 1, height);
    memcpy(p + 9, prev, 32);
    tn_put_u64(p + 41, slot);
    tn_put_u64(p + 49, time_ms);
    if (sk) memcpy(p + 57, sk + 32, 32);
    crypto_generichash_state root;
    crypto_generichash_init(&root, NULL, 0, 32);
    uint8_t *q = p + TN_BLOCK_HDR;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t id[32];
        hash(id, txs[i], tx_lens[i]);
        crypto_generichash_update(&root, id, 32);
        tn_put_u32(q, tx_lens[i]);
        memcpy(q + 4, txs[i], tx_lens[i]);
        q += 4 + tx_lens[i];
    }
    crypto_generichash_final(&root, p + 89, 32);
    tn_put_u32(p + 121, count);
    if (sk) {
        uint8_t d[32];
        signed_digest(d, BLOCK_LABEL, p, TN_BLOCK_UNSIGNED);
        crypto_sign_detached(p + TN_BLOCK_UNSIGNED, NULL, d, 32, sk);
    }
    out->len += TN_BLOCK_HDR + body;
    return TN_OK;
}

int tn_block_build(tn_buf_t *out, const uint8_t sk[64], uint64_t height, const uint8_t prev[32],
                   uint64_t slot, uint64_t time_ms, const uint8_t *const *txs,
                   const uint32_t *tx_lens, uint32_t count)
{
    return block_write(out, sk, height, prev, slot, time_ms, txs, tx_lens, count);
}

int tn_block_genesis(tn_buf_t *out, uint64_t time_ms)
{
    static const uint8_t zero[32];
    return block_write(out, NULL, 0, zero, 0, time_ms, NULL, NULL, 0);
}

bool tn_block_is_genesis(const tn_block_hdr_t *h)
{
    static const uint8_t zero[64];
    return h->height == 0 && memcmp(h->producer, zero, 32) == 0 && memcmp(h->sig, zero, 64) == 0;
}
