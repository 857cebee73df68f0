/* Relay of transactions and blocks, announce-then-fetch: a new valid object is announced
 * by id (inv) to every established peer that does not know it yet, batched into one inv
 * message per peer per loop iteration, transactions at most one inv per peer per
 * relay_inv_interval; peers fetch what they lack (getdata). Every received
 * object goes through the dedup cache before any signature check. Blocks go to masternodes
 * first. tn_sync.c (heights, block download, mempool sync) and tn_produce.c (block
 * production) build on it. */
#ifndef TN_RELAY_H
#define TN_RELAY_H

#include "tn_chain.h"
#include "tn_session.h"

#define TN_KNOWN_SLOTS 1024       /* per peer: ids it is known to have (direct-mapped) */
#define TN_REQUESTS_MAX 65536     /* ids requested and not yet delivered, node-wide */
#define TN_REQUEST_ALTS 4         /* other announcers remembered per request */
#define TN_MEMPOOL_REPLY_MAX 5000 /* ids announced in answer to one get_mempool */

/* Per-session relay state, allocated when inventory first flows to or from the peer. */
typedef struct tn_relay_peer {
    uint64_t known[TN_KNOWN_SLOTS];
    struct {
        uint64_t frame; /* frames the session had sealed when the message started */
        size_t off, end;
        uint16_t count;
    } open[3]; /* appendable inv, getdata, notfound in the current batch */
    uint64_t dups, invalid, accepted, blocks_added;
    /* Transaction announcements held back by relay_inv_interval (at most TN_INV_MAX: a full
     * list is sent at once), and when the last inv went out. */
    uint8_t (*pend)[32];
    uint16_t npend, pend_cap;
    uint64_t last_inv_ms;
} tn_relay_peer_t;

int tn_relay_init(tn_node_t *n);
void tn_relay_close(tn_node_t *n);
void tn_relay_on_close(tn_node_t *n, tn_session_t *s);

/* Announces an object we accepted to every established peer but `from` (may be NULL). */
void tn_relay_announce(tn_node_t *n, uint8_t kind, const uint8_t id[32], tn_session_t *from);
/* A transaction from the operator (tx submit): validated, pooled and announced like one from
 * a peer. Returns 0, TN_EALREADY, TN_ECRYPTO, TN_EINVAL (malformed/expired) or TN_ELIMIT. */
int tn_relay_submit_tx(tn_node_t *n, const uint8_t *raw, uint32_t len, uint8_t id[32]);
/* Hands a block we accepted (ours or a peer's) to the relay: announce, masternodes first. */
void tn_relay_block_accepted(tn_node_t *n, const tn_blk_t *b, tn_session_t *from);

/* Message handlers (called by the node for established sessions). */
void tn_relay_on_inv(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_relay_on_getdata(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_relay_on_notfound(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_relay_on_tx(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_relay_on_block(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_relay_on_get_mempool(tn_node_t *n, tn_session_t *s);
/* A block from a peer (relay or sync): dedup, add, announce or judge. Returns the result. */
tn_add_result_t tn_relay_take_block(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);

/* tn_sync.c */
int tn_sync_init(tn_node_t *n);
void tn_sync_close(tn_node_t *n);
void tn_sync_on_established(tn_node_t *n, tn_session_t *s);
void tn_sync_on_close(tn_node_t *n, tn_session_t *s);
void tn_sync_on_get_height(tn_node_t *n, tn_session_t *s);
void tn_sync_on_height(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_sync_on_get_blocks(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
void tn_sync_on_blocks(tn_node_t *n, tn_session_t *s, const uint8_t *p, uint32_t len);
/* A block arrived whose parent we lack: catch up from its sender. */
void tn_sync_from(tn_node_t *n, tn_session_t *s);

/* tn_produce.c */
int tn_produce_init(tn_node_t *n);
void tn_produce_close(tn_node_t *n);
/* Produces the block for `slot` if this node is its producer and nothing forbids it; the
 * single guard against two blocks for one slot or one height. */
void tn_produce_slot(tn_node_t *n, uint64_t slot);

#endif
