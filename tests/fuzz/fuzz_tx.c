/* Fuzz target `tx`: tn_tx_parse and tn_tx_verify, a transaction as received in a `tx`
 * message, a block or the mempool store. What parses must lie inside the input with the id
 * of its bytes; a transaction whose signature verifies and whose sender is the fixed test
 * identity must be exactly what tn_tx_build writes for its fields (Ed25519 is deterministic),
 * so no second encoding of one transaction verifies. */
#include "fz_common.h"
#include "tn_tx.h"

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 16)) return 0;
    fz_init();
    tn_tx_t tx;
    int rc = tn_tx_parse(data, (uint32_t)size, 4096, &tx);
    FZ_CHECK(rc == TN_OK || rc == TN_EINVAL || rc == TN_ETOOBIG, "rc %d", rc);
    if (rc != TN_OK) return 0;
    FZ_CHECK(tx.raw == data && tx.len == size && tx.payload >= data &&
                 tx.payload + tx.payload_len + 64 == data + size && tx.sig + 64 == data + size,
             "fields outside the transaction");
    uint8_t id[32];
    crypto_generichash(id, 32, data, size, NULL, 0);
    FZ_CHECK(memcmp(id, tx.id, 32) == 0, "id is not the hash of the bytes");
    int v = tn_tx_verify(&tx);
    FZ_CHECK(v == TN_OK || v == TN_ECRYPTO, "verify rc %d", v);
    if (v == TN_OK && memcmp(tx.sender, FZ.sk_i + 32, 32) == 0) {
        tn_buf_t b;
        tn_buf_init(&b, 1u << 17);
        FZ_CHECK(tn_tx_build(&b, FZ.sk_i, tx.expiry, tx.nonce, tx.payload, tx.payload_len) == TN_OK,
                 "rebuild");
        FZ_CHECK(b.len == size && memcmp(b.p, data, size) == 0,
                 "a verifying transaction differs from its canonical encoding");
        tn_buf_free(&b);
    }
    return 0;
}
