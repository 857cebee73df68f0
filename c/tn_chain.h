/* The chain and the mempool: a block index with every valid block (branches included, up to
 * max_reorg_depth below the tip), the main chain (longest; at equal height the lower id),
 * reorgs that return orphaned transactions to the mempool, equivocation evidence, the slot
 * schedule, and persistence in the store. tn_mempool.c holds pending transactions. */
#ifndef TN_CHAIN_H
#define TN_CHAIN_H

#include "tn_idmap.h"
#include "tn_tx.h"

#include <stdbool.h>

typedef struct tn_node tn_node_t;

#define TN_ORPHANS_MAX 64 /* blocks whose parent is unknown, held until it arrives */

typedef struct tn_blk {
    tn_block_hdr_t h;
    struct tn_blk *prev;
    uint8_t *raw;
    uint32_t len;
    bool main; /* on the main chain */
} tn_blk_t;

/* A pending transaction (tn_mempool.c). */
typedef struct tn_mtx {
    uint8_t id[32];
    uint8_t *raw;
    uint32_t len;
    uint64_t expiry;            /* unix s */
    uint64_t seq;               /* arrival order */
    size_t heap_i;              /* position in the expiry heap */
    struct tn_mtx *prev, *next; /* arrival order list */
} tn_mtx_t;

typedef struct {
    tn_idmap_t by_id;
    tn_mtx_t **heap; /* min-heap on expiry: the first to evict */
    size_t n, cap, bytes;
    size_t max_txs, max_bytes;
    tn_mtx_t *head, *tail;
    uint64_t next_seq;
} tn_mempool_t;

typedef struct {
    tn_idmap_t index; /* id -> tn_blk_t, every known valid block */
    tn_blk_t **main;  /* main chain by height */
    size_t main_len, main_cap;
    tn_blk_t *genesis, *tip;
    tn_idmap_t chain_txs; /* ids of transactions on the main chain -> their tn_blk_t */
    tn_idmap_t by_slot;   /* (producer, slot) -> first block seen: equivocation evidence */
    struct {
        uint8_t *raw;
        uint32_t len;
        uint8_t prev[32];
    } orphans[TN_ORPHANS_MAX];
    int n_orphans;
    uint8_t (*masternodes)[32]; /* sorted */
    int n_masternodes;
    uint64_t sched_slot[64]; /* schedule cache: one hook call per slot */
    int sched_idx[64];
    uint64_t last_produced_slot, reorgs, last_reorg_depth;
    bool loading; /* replaying the store at start: no reorg lines */
    uint8_t last_reorg_old[32], last_reorg_new[32];
    tn_mempool_t pool;
} tn_chain_t;

typedef enum {
    TN_ADD_OK,           /* valid and indexed (main chain or branch) */
    TN_ADD_KNOWN,        /* already indexed */
    TN_ADD_ORPHAN,       /* parent unknown: held, the caller should sync from the sender */
    TN_ADD_INVALID,      /* why says which rule */
    TN_ADD_EQUIVOCATION, /* valid and indexed (fork choice sees it), but its producer signed
                          * another block for the slot: evidence kept, never relayed */
} tn_add_result_t;

int tn_chain_open(tn_node_t *n, char *err, size_t errlen);
void tn_chain_close(tn_node_t *n);
/* Adds a block (raw bytes are copied). why is set for INVALID. */
tn_add_result_t tn_chain_add(tn_node_t *n, const uint8_t *raw, uint32_t len, const char **why,
                             tn_blk_t **out);
tn_blk_t *tn_chain_get(tn_node_t *n, const uint8_t id[32]);
/* The masternode scheduled to produce a slot (index into the sorted set), -1 if none. */
int tn_chain_producer(tn_node_t *n, uint64_t slot);
bool tn_chain_is_masternode(const tn_node_t *n, const uint8_t id[32]);
uint64_t tn_chain_slot_ms(const tn_node_t *n);
/* Locator of the main chain (newest first: 10 single steps, then doubling, then genesis). */
int tn_chain_locator(tn_node_t *n, uint8_t out[][32], int max);
/* The first main-chain block above the newest locator entry we have (genesis + 1 if none). */
size_t tn_chain_fork_height(tn_node_t *n, const uint8_t *locator, int count);

/* tn_mempool.c */
int tn_mempool_init(tn_mempool_t *m, size_t max_txs, size_t max_bytes);
void tn_mempool_free(tn_mempool_t *m);
/* Adds a validated transaction: TN_EALREADY if present, TN_ELIMIT if full of transactions
 * that outlive it. Evicts the one expiring first when full. */
int tn_mempool_add(tn_node_t *n, const tn_tx_t *tx);
tn_mtx_t *tn_mempool_get(tn_mempool_t *m, const uint8_t id[32]);
void tn_mempool_remove(tn_node_t *n, const uint8_t id[32]);
/* Drops transactions expired at now_s. */
void tn_mempool_expire(tn_node_t *n, uint64_t now_s);
int tn_mempool_load(tn_node_t *n);

#endif
