/* Fuzz target `block`: tn_block_parse (header, every transaction's structure, repeated ids,
 * the tx_root commitment), tn_block_next_tx and tn_block_verify_sig, a block as received in a
 * `block` or `blocks` message. A block that parses must walk to exactly tx_count
 * transactions inside it; one signed by the fixed test producer must be exactly what
 * tn_block_build writes for its fields. */
#include "fz_common.h"
#include "tn_tx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 16)) return 0;
    fz_init();
    tn_block_hdr_t h;
    int rc = tn_block_parse(data, (uint32_t)size, 1u << 16, MAX_TX, &h);
    FZ_CHECK(rc == TN_OK || rc == TN_EINVAL || rc == TN_ETOOBIG || rc == TN_ECRYPTO, "rc %d", rc);
    if (rc != TN_OK) return 0;
    const uint8_t *txs[1024];
    uint32_t lens[1024], off = 0, n = 0;
    tn_tx_t tx;
    int r;
    while ((r = tn_block_next_tx(data, (uint32_t)size, &off, &tx)) == 1) {
        FZ_CHECK(tx.raw > data && tx.raw + tx.len <= data + size && tx.len <= MAX_TX,
                 "transaction outside the block");
        if (n < 1024) {
            txs[n] = tx.raw;
            lens[n] = tx.len;
        }
        n++;
    }
    FZ_CHECK(r == 0 && n == h.tx_count && off == size, "walk: rc %d, %u of %u txs", r, n,
             h.tx_count);
    int v = tn_block_verify_sig(&h, data);
    FZ_CHECK(v == TN_OK || v == TN_ECRYPTO, "verify rc %d", v);
    tn_buf_t b;
    tn_buf_init(&b, 1u << 17);
    if (!tn_block_is_genesis(&h) && v == TN_OK && n <= 1024 &&
        memcmp(h.producer, FZ.sk_r + 32, 32) == 0) {
        FZ_CHECK(tn_block_build(&b, FZ.sk_r, h.height, h.prev, h.slot, h.time_ms, txs, lens, n) ==
                     TN_OK,
                 "rebuild");
        FZ_CHECK(b.len == size && memcmp(b.p, data, size) == 0,
                 "a verifying block differs from its canonical encoding");
    }
    tn_buf_free(&b);
    return 0;
}
