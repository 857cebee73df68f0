/* Transactions and blocks: wire formats, ids, signatures, structural validation. Pure
 * functions over bytes (no I/O, no chain state) so they are unit-tested and fuzzed alone;
 * contextual rules (schedule, links, expiry at a time) live in tn_chain.c.
 *
 * Transaction (all integers big-endian):
 *   version u8 = 1 | sender Ed25519 key [32] | expiry u64 (unix s) | nonce u64 |
 *   payload_len u32 | payload | signature [64]
 *   signature = Ed25519(sender, BLAKE2b-256("timenet/1 tx" || every byte before it))
 *   id = BLAKE2b-256(all bytes)
 *
 * Block:
 *   version u8 = 1 | height u64 | prev id [32] | slot u64 | time_ms u64 | producer [32] |
 *   tx_root [32] | tx_count u32 | signature [64] | tx_count x (len u32 | transaction)
 *   signature = Ed25519(producer, BLAKE2b-256("timenet/1 block" || header bytes before it))
 *   tx_root = BLAKE2b-256(the tx ids, in order); id = BLAKE2b-256(header incl. signature) */
#ifndef TN_TX_H
#define TN_TX_H

#include "tn_buf.h"
#include "tn_common.h"

#include <stdbool.h>

#define TN_HASH_LEN 32
#define TN_TX_VERSION 1
#define TN_TX_FIXED 53 /* version 1 | sender 32 | expiry 8 | nonce 8 | payload_len 4 */
#define TN_TX_MIN (TN_TX_FIXED + 64)
#define TN_BLOCK_VERSION 1
#define TN_BLOCK_UNSIGNED 125 /* header bytes before the signature */
#define TN_BLOCK_HDR (TN_BLOCK_UNSIGNED + 64)

typedef struct {
    const uint8_t *raw;
    uint32_t len;
    const uint8_t *sender;
    uint64_t expiry; /* unix seconds */
    uint64_t nonce;
    const uint8_t *payload;
    uint32_t payload_len;
    const uint8_t *sig;
    uint8_t id[TN_HASH_LEN];
} tn_tx_t;

typedef struct {
    uint64_t height;
    uint8_t prev[TN_HASH_LEN];
    uint64_t slot;
    uint64_t time_ms;
    uint8_t producer[32];
    uint8_t tx_root[TN_HASH_LEN];
    uint32_t tx_count;
    uint8_t sig[64];
    uint8_t id[TN_HASH_LEN];
} tn_block_hdr_t;

/* Structure only (lengths, version) and the id; TN_ETOOBIG above max_len. */
int tn_tx_parse(const uint8_t *p, uint32_t len, uint32_t max_len, tn_tx_t *tx);
/* The sender's signature: TN_ECRYPTO when it does not verify. */
int tn_tx_verify(const tn_tx_t *tx);
/* Builds and signs a transaction (tests, benches, `tx submit`). */
int tn_tx_build(tn_buf_t *out, const uint8_t sk[64], uint64_t expiry, uint64_t nonce,
                const void *payload, uint32_t payload_len);

/* Parses the header and walks every transaction: lengths, each tx's structure (not its
 * signature), no repeated tx id, and the tx_root commitment. TN_ECRYPTO on a bad root. */
int tn_block_parse(const uint8_t *p, uint32_t len, uint32_t max_len, uint32_t max_tx_len,
                   tn_block_hdr_t *h);
/* Iterates the transactions of a parsed block (off starts at 0): 1 with a tx, 0 at the end. */
int tn_block_next_tx(const uint8_t *p, uint32_t len, uint32_t *off, tn_tx_t *tx);
int tn_block_verify_sig(const tn_block_hdr_t *h, const uint8_t *raw);
/* Builds and signs a block over already-encoded transactions (each a tn_buf's bytes). */
int tn_block_build(tn_buf_t *out, const uint8_t sk[64], uint64_t height, const uint8_t prev[32],
                   uint64_t slot, uint64_t time_ms, const uint8_t *const *txs,
                   const uint32_t *tx_lens, uint32_t count);
/* The genesis block of a network: unsigned, fixed by its time. */
int tn_block_genesis(tn_buf_t *out, uint64_t time_ms);
bool tn_block_is_genesis(const tn_block_hdr_t *h);

#endif
