/* Block production (masternodes): a timer at every slot boundary calls tn_produce_slot,
 * which is the one place that decides. The guard is structural state on the chain: a block
 * is produced for a slot only if no block was produced by us for it (last_produced_slot)
 * and the tip's slot is before it (a block for the slot may have arrived from the network),
 * so two timers in one tick, a sync or a competing block can never make two. */
#include "tn_dedup.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_relay.h"

#include <stdlib.h>

static void arm(tn_node_t *n);

static void on_slot(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    uint64_t slot_ms = tn_chain_slot_ms(n);
    tn_produce_slot(n, tn_wall_ms() / slot_ms);
    /* Re-arm once both timers of this instant have fired: re-arming from the first would
     * restart the second (test_double_timer) before it ran in this tick. */
    uv_timer_t *other = t == &n->slot_timer ? &n->slot_timer2 : &n->slot_timer;
    if (!uv_is_active((uv_handle_t *)other)) arm(n);
}

/* Fires just after the next slot boundary (wall clock), and a second timer for the same
 * instant under test_double_timer. */
static void arm(tn_node_t *n)
{
    uint64_t slot_ms = tn_chain_slot_ms(n), now = tn_wall_ms();
    uint64_t wait = slot_ms - now % slot_ms + 1;
    uv_timer_start(&n->slot_timer, on_slot, wait, 0);
    if (n->cfg->test_double_timer) uv_timer_start(&n->slot_timer2, on_slot, wait, 0);
}

void tn_produce_slot(tn_node_t *n, uint64_t slot)
{
    tn_chain_t *c = n->chain;
    if (!tn_chain_is_masternode(n, n->id)) return;
    int idx = tn_chain_producer(n, slot);
    if (idx < 0 || memcmp(c->masternodes[idx], n->id, 32) != 0) return;
    if (c->last_produced_slot >= slot + 1 || c->tip->h.slot >= slot) {
        tn_metric_inc(tn_metric_counter("tn_production_skipped_total",
                                        "Block production attempts skipped by the guard"));
        tn_info("Skipped block production for slot %llu: %s", (unsigned long long)slot,
                c->last_produced_slot >= slot + 1 ? "already produced"
                                                  : "the chain has a block for it");
        return;
    }
    c->last_produced_slot = slot + 1; /* +1: zero means "none yet" */
    uint64_t slot_ms = tn_chain_slot_ms(n), start = slot * slot_ms, now = tn_wall_ms();
    uint64_t time_ms = now < start ? start : now >= start + slot_ms ? start + slot_ms - 1 : now;
    /* Transactions in arrival order, while they fit and outlive the block. */
    size_t room = (size_t)n->cfg->max_block_size - TN_BLOCK_HDR, cap = 1024, k = 0;
    const uint8_t **txs = malloc(cap * sizeof(*txs));
    uint32_t *lens = malloc(cap * sizeof(*lens));
    for (tn_mtx_t *t = c->pool.head; t && txs && lens; t = t->next) {
        if (t->expiry * 1000 <= time_ms) continue;
        if (4 + (size_t)t->len > room) break;
        if (k == cap) {
            cap *= 2;
            const uint8_t **nt = realloc(txs, cap * sizeof(*txs));
            uint32_t *nl = realloc(lens, cap * sizeof(*lens));
            if (nt) txs = nt;
            if (nl) lens = nl;
            if (!nt || !nl) break;
        }
        txs[k] = t->raw;
        lens[k++] = t->len;
        room -= 4 + t->len;
    }
    tn_buf_t b;
    tn_buf_init(&b, (size_t)n->cfg->max_block_size);
    int rc = txs && lens ? tn_block_build(&b, n->net.id_sk, c->tip->h.height + 1, c->tip->h.id,
                                          slot, time_ms, txs, lens, (uint32_t)k)
                         : TN_ENOMEM;
    free(txs);
    free(lens);
    const char *why = NULL;
    tn_blk_t *blk = NULL;
    tn_add_result_t r =
        rc == TN_OK ? tn_chain_add(n, b.p, (uint32_t)b.len, &why, &blk) : TN_ADD_INVALID;
    if (r == TN_ADD_OK) {
        tn_dedup_insert(&n->dedup, blk->h.id, uv_now(n->loop));
        tn_info("Produced block %llu for slot %llu with %zu transactions",
                (unsigned long long)blk->h.height, (unsigned long long)slot, k);
        tn_metric_inc(tn_metric_counter("tn_blocks_produced_total", "Blocks this node produced"));
        tn_relay_block_accepted(n, blk, NULL);
    } else {
        tn_error("Producing the block for slot %llu failed: %s", (unsigned long long)slot,
                 why ? why : tn_strerror(rc));
    }
    tn_buf_free(&b);
}

int tn_produce_init(tn_node_t *n)
{
    uv_timer_init(n->loop, &n->slot_timer);
    uv_timer_init(n->loop, &n->slot_timer2);
    n->slot_timer.data = n->slot_timer2.data = n;
    arm(n);
    return TN_OK;
}

void tn_produce_close(tn_node_t *n)
{
    uv_close((uv_handle_t *)&n->slot_timer, NULL);
    uv_close((uv_handle_t *)&n->slot_timer2, NULL);
}
