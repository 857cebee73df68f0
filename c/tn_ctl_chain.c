/* Control verbs for the chain and the mempool (rows in the one verb table, tn_ctl_verbs.c):
 * chain (height, tip, recent blocks, last reorg), mempool, tx_submit. */
#include "tn_ctl.h"
#include "tn_node.h"
#include "tn_relay.h"

#include <stdlib.h>

#define RECENT_BLOCKS 10 /* blocks listed by `chain` */

static void add_hex(cJSON *o, const char *k, const uint8_t *p, size_t n)
{
    char h[129];
    tn_hex(h, p, n);
    cJSON_AddStringToObject(o, k, h);
}

int tn_ctl_v_chain(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    tn_chain_t *c = n->chain;
    cJSON_AddNumberToObject(r, "height", (double)c->tip->h.height);
    add_hex(r, "tip", c->tip->h.id, 32);
    add_hex(r, "genesis", c->genesis->h.id, 32);
    cJSON_AddNumberToObject(r, "blocks_indexed", (double)c->index.n);
    cJSON_AddNumberToObject(r, "slot_ms", (double)tn_chain_slot_ms(n));
    cJSON_AddNumberToObject(r, "masternodes", c->n_masternodes);
    cJSON_AddBoolToObject(r, "masternode", tn_chain_is_masternode(n, n->id));
    cJSON_AddBoolToObject(r, "syncing", n->sync_gen != 0);
    cJSON *list = cJSON_AddArrayToObject(r, "recent");
    for (size_t i = 0; i < RECENT_BLOCKS && i < c->main_len; i++) {
        const tn_blk_t *b = c->main[c->main_len - 1 - i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "height", (double)b->h.height);
        add_hex(row, "id", b->h.id, 32);
        cJSON_AddNumberToObject(row, "slot", (double)b->h.slot);
        cJSON_AddNumberToObject(row, "time_ms", (double)b->h.time_ms);
        add_hex(row, "producer", b->h.producer, 32);
        cJSON_AddNumberToObject(row, "txs", b->h.tx_count);
        cJSON_AddItemToArray(list, row);
    }
    cJSON *reorg = cJSON_AddObjectToObject(r, "reorgs");
    cJSON_AddNumberToObject(reorg, "count", (double)c->reorgs);
    if (c->reorgs) {
        cJSON_AddNumberToObject(reorg, "last_depth", (double)c->last_reorg_depth);
        add_hex(reorg, "last_old_tip", c->last_reorg_old, 32);
        add_hex(reorg, "last_new_tip", c->last_reorg_new, 32);
    }
    return 0;
}

/* mempool: counts; {"ids": true} lists the ids (newest first, at most `limit`, 1000). */
int tn_ctl_v_mempool(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_mempool_t *m = &n->chain->pool;
    cJSON_AddNumberToObject(r, "txs", (double)m->n);
    cJSON_AddNumberToObject(r, "bytes", (double)m->bytes);
    cJSON_AddNumberToObject(r, "max_txs", (double)m->max_txs);
    cJSON_AddNumberToObject(r, "max_bytes", (double)m->max_bytes);
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "ids"))) return 0;
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
    int limit = cJSON_IsNumber(lim) && lim->valuedouble >= 0 ? (int)lim->valuedouble : 1000;
    cJSON *ids = cJSON_AddArrayToObject(r, "ids");
    for (tn_mtx_t *t = m->tail; t && limit-- > 0; t = t->prev) {
        char h[65];
        tn_hex(h, t->id, 32);
        cJSON_AddItemToArray(ids, cJSON_CreateString(h));
    }
    return 0;
}

/* tx_submit {"hex": "<transaction bytes>"}: validated and relayed like one from a peer. */
int tn_ctl_v_tx_submit(tn_node_t *n, const cJSON *req, cJSON *r)
{
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive(req, "hex");
    if (!cJSON_IsString(hex)) return tn_ctl_error(r, "missing \"hex\"");
    size_t hl = strlen(hex->valuestring);
    if (hl % 2 || hl / 2 > (size_t)n->cfg->max_tx_size)
        return tn_ctl_error(r, "\"hex\" is not a transaction of at most %lld bytes",
                            (long long)n->cfg->max_tx_size);
    uint8_t *raw = malloc(hl / 2 + 1);
    if (!raw) return tn_ctl_error(r, "out of memory");
    if (tn_unhex(raw, hl / 2, hex->valuestring) != TN_OK) {
        free(raw);
        return tn_ctl_error(r, "\"hex\" is not hexadecimal");
    }
    uint8_t id[32];
    int rc = tn_relay_submit_tx(n, raw, (uint32_t)(hl / 2), id);
    free(raw);
    switch (rc) {
    case TN_OK:
        add_hex(r, "id", id, 32);
        return 0;
    case TN_EALREADY:
        add_hex(r, "id", id, 32);
        return tn_ctl_error(r, "transaction already known");
    case TN_ECRYPTO:
        return tn_ctl_error(r, "bad signature");
    case TN_ELIMIT:
        return tn_ctl_error(r, "mempool is full of transactions that outlive it");
    case TN_ETOOBIG:
        return tn_ctl_error(r, "transaction too large");
    default:
        return tn_ctl_error(r, "malformed, expired or too far in the future");
    }
}
