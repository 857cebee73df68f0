/* The block index, fork choice and reorgs (see tn_chain.h). Every rule a block must meet
 * beyond its structure is checked in add_checked(); the main chain only ever changes in
 * set_tip(), which connects and disconnects blocks one at a time and keeps the chain's
 * transaction index and the mempool in step. */
#include "tn_chain.h"

#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_policy.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

bool tn_chain_is_masternode(const tn_node_t *n, const uint8_t id[32])
{
    const tn_chain_t *c = n->chain;
    return c && c->n_masternodes &&
           bsearch(id, c->masternodes, (size_t)c->n_masternodes, 32, cmp_id) != NULL;
}

uint64_t tn_chain_slot_ms(const tn_node_t *n)
{
    return tn_config_ms(n->cfg->block_interval);
}

int tn_chain_producer(tn_node_t *n, uint64_t slot)
{
    tn_chain_t *c = n->chain;
    if (c->n_masternodes == 0) return -1;
    int k = (int)(slot % 64);
    if (c->sched_slot[k] == slot + 1) return c->sched_idx[k]; /* +1: 0 marks empty */
    int idx = (int)(slot % (uint64_t)c->n_masternodes);       /* C default: round robin */
    idx = tn_policy_schedule(n->policy, slot, c->masternodes, c->n_masternodes, idx);
    c->sched_slot[k] = slot + 1;
    c->sched_idx[k] = idx;
    return idx;
}

tn_blk_t *tn_chain_get(tn_node_t *n, const uint8_t id[32])
{
    return tn_idmap_get(&n->chain->index, id);
}

/* ---- main chain bookkeeping ---- */

static int main_push(tn_chain_t *c, tn_blk_t *b)
{
    if (c->main_len == c->main_cap) {
        size_t cap = c->main_cap ? c->main_cap * 2 : 1024;
        tn_blk_t **m = realloc(c->main, cap * sizeof(*m));
        if (!m) return TN_ENOMEM;
        c->main = m;
        c->main_cap = cap;
    }
    c->main[c->main_len++] = b;
    b->main = true;
    return TN_OK;
}

/* Connects b (whose parent is the tip): its transactions join the chain index and leave the
 * mempool. Fails, changing nothing, if one of them is already on the chain. */
static int connect_block(tn_node_t *n, tn_blk_t *b)
{
    tn_chain_t *c = n->chain;
    uint32_t off = 0;
    tn_tx_t tx;
    while (tn_block_next_tx(b->raw, b->len, &off, &tx) == 1)
        if (tn_idmap_get(&c->chain_txs, tx.id)) return TN_EINVAL;
    if (main_push(c, b) != TN_OK) return TN_ENOMEM;
    off = 0;
    while (tn_block_next_tx(b->raw, b->len, &off, &tx) == 1) {
        tn_idmap_put(&c->chain_txs, tx.id, b);
        tn_mempool_remove(n, tx.id);
    }
    c->tip = b;
    return TN_OK;
}

/* Disconnects the tip: its transactions go back to the mempool while still valid. */
static void disconnect_tip(tn_node_t *n)
{
    tn_chain_t *c = n->chain;
    tn_blk_t *b = c->tip;
    uint32_t off = 0;
    tn_tx_t tx;
    uint64_t now_s = tn_wall_ms() / 1000;
    while (tn_block_next_tx(b->raw, b->len, &off, &tx) == 1) {
        tn_idmap_del(&c->chain_txs, tx.id);
        if (tx.expiry > now_s) tn_mempool_add(n, &tx);
    }
    b->main = false;
    c->main_len--;
    c->tip = b->prev;
}

static void short_hex(char out[17], const uint8_t id[32])
{
    char h[65];
    tn_hex(h, id, 32);
    memcpy(out, h, 16);
    out[16] = 0;
}

/* Makes `b` the tip: walks back to the main chain, disconnects down to the fork point and
 * connects the branch. If a branch block cannot be connected, the old chain is restored. */
static int set_tip(tn_node_t *n, tn_blk_t *b)
{
    tn_chain_t *c = n->chain;
    tn_blk_t *old = c->tip;
    if (b->prev == old) return connect_block(n, b);
    tn_blk_t *fork = b;
    while (fork && !fork->main) fork = fork->prev;
    if (!fork) return TN_EINVAL;
    uint64_t depth = old->h.height - fork->h.height;
    if (depth > (uint64_t)n->cfg->max_reorg_depth) return TN_ELIMIT;
    size_t blen = (size_t)(b->h.height - fork->h.height);
    tn_blk_t **branch = malloc(blen * sizeof(*branch));
    if (!branch) return TN_ENOMEM;
    size_t i = blen;
    for (tn_blk_t *x = b; x != fork; x = x->prev) branch[--i] = x;
    while (c->tip != fork) disconnect_tip(n);
    size_t done = 0;
    int rc = TN_OK;
    for (; done < blen && rc == TN_OK; done++)
        if ((rc = connect_block(n, branch[done])) != TN_OK) break;
    if (rc != TN_OK) { /* restore the old main chain */
        while (c->tip != fork) disconnect_tip(n);
        size_t olen = (size_t)(old->h.height - fork->h.height);
        tn_blk_t **back = malloc(olen * sizeof(*back));
        if (back) {
            size_t j = olen;
            for (tn_blk_t *x = old; x != fork; x = x->prev) back[--j] = x;
            for (j = 0; j < olen; j++) connect_block(n, back[j]);
            free(back);
        }
        free(branch);
        return rc;
    }
    free(branch);
    if (depth > 0 && !c->loading) {
        c->reorgs++;
        c->last_reorg_depth = depth;
        memcpy(c->last_reorg_old, old->h.id, 32);
        memcpy(c->last_reorg_new, b->h.id, 32);
        char o[17], w[17];
        short_hex(o, old->h.id);
        short_hex(w, b->h.id);
        tn_warn("Reorg: depth %llu, old tip %s (height %llu), new tip %s (height %llu)",
                (unsigned long long)depth, o, (unsigned long long)old->h.height, w,
                (unsigned long long)b->h.height);
        tn_metric_inc(tn_metric_counter("tn_reorgs_total", "Chain reorganisations"));
    }
    return TN_OK;
}

/* Longest chain; at equal height the lower id (both ends of a partition agree). */
static bool better_than_tip(const tn_chain_t *c, const tn_blk_t *b)
{
    if (b->h.height != c->tip->h.height) return b->h.height > c->tip->h.height;
    return memcmp(b->h.id, c->tip->h.id, 32) < 0;
}

/* ---- adding blocks ---- */

static tn_blk_t *index_block(tn_chain_t *c, const tn_block_hdr_t *h, const uint8_t *raw,
                             uint32_t len, tn_blk_t *prev)
{
    tn_blk_t *b = calloc(1, sizeof(*b));
    uint8_t *copy = malloc(len);
    if (!b || !copy || tn_idmap_put(&c->index, h->id, b) != TN_OK) {
        free(b);
        free(copy);
        return NULL;
    }
    memcpy(copy, raw, len);
    b->h = *h;
    b->raw = copy;
    b->len = len;
    b->prev = prev;
    return b;
}

static const char *check_block(tn_node_t *n, const tn_block_hdr_t *h, const uint8_t *raw,
                               uint32_t len, const tn_blk_t *prev)
{
    tn_chain_t *c = n->chain;
    uint64_t slot_ms = tn_chain_slot_ms(n), skew = tn_config_ms(n->cfg->clock_skew);
    if (h->height != prev->h.height + 1) return "height is not the parent's + 1";
    if (h->slot <= prev->h.slot) return "slot is not after the parent's";
    uint64_t start = h->slot * slot_ms;
    if (h->time_ms + skew < start || h->time_ms >= start + slot_ms + skew)
        return "timestamp outside its slot";
    if (h->time_ms > tn_wall_ms() + skew) return "timestamp in the future";
    int idx = tn_chain_producer(n, h->slot);
    if (idx < 0 || memcmp(c->masternodes[idx], h->producer, 32) != 0)
        return "not signed by the masternode scheduled for its slot";
    if (tn_block_verify_sig(h, raw) != TN_OK) return "bad producer signature";
    uint32_t off = 0;
    tn_tx_t tx;
    while (tn_block_next_tx(raw, len, &off, &tx) == 1) {
        if (tx.expiry * 1000 < h->time_ms) return "holds an expired transaction";
        /* A tx id hashes every byte, signature included: one in the mempool or on the main
         * chain was verified on its way in. Re-verifying it here doubled the Ed25519 work of a
         * loaded masternode network (masternodes_100: 2 verifications per tx per node). */
        if (tn_idmap_get(&c->pool.by_id, tx.id) || tn_idmap_get(&c->chain_txs, tx.id)) continue;
        if (tn_tx_verify(&tx) != TN_OK) return "holds a transaction with a bad signature";
    }
    (void)prev;
    return NULL;
}

/* True when h is a second block by its producer for its slot (logged and stored once). */
static bool note_equivocation(tn_node_t *n, const tn_block_hdr_t *h)
{
    tn_chain_t *c = n->chain;
    uint8_t key[32];
    memcpy(key, h->producer, 24);
    tn_put_u64(key + 24, h->slot);
    tn_blk_t *first = tn_idmap_get(&c->by_slot, key);
    tn_blk_t *self = tn_idmap_get(&c->index, h->id);
    if (!first) {
        if (self) tn_idmap_put(&c->by_slot, key, self);
        return false;
    }
    if (first == self) return false;
    char p[17], a[17], b[17];
    short_hex(p, h->producer);
    short_hex(a, first->h.id);
    short_hex(b, h->id);
    tn_warn("Equivocation: masternode %s signed two blocks for slot %llu (%s and %s)", p,
            (unsigned long long)h->slot, a, b);
    tn_metric_inc(
        tn_metric_counter("tn_equivocations_total", "Two blocks by one producer for a slot"));
    if (n->store) {
        char ha[65], hb[65], hp[65];
        tn_hex(ha, first->h.id, 32);
        tn_hex(hb, h->id, 32);
        tn_hex(hp, h->producer, 32);
        tn_store_exec(n->store,
                      "INSERT OR IGNORE INTO equivocations(producer,slot,block_a,block_b,seen_ms) "
                      "VALUES(?,?,?,?,?)",
                      "titti", hp, (int64_t)h->slot, ha, hb, (int64_t)tn_wall_ms());
    }
    return true;
}

static const char SQL_BLOCK[] = "INSERT OR IGNORE INTO blocks(id,height,slot,raw) VALUES(?,?,?,?)";

static void persist(tn_node_t *n, const tn_blk_t *b)
{
    if (!n->store) return;
    char id[65];
    tn_hex(id, b->h.id, 32);
    tn_store_exec(n->store, SQL_BLOCK, "tiib", id, (int64_t)b->h.height, (int64_t)b->h.slot, b->raw,
                  (size_t)b->len);
}

static tn_add_result_t add_checked(tn_node_t *n, const uint8_t *raw, uint32_t len, const char **why,
                                   tn_blk_t **out);

/* Blocks that were waiting for `parent` can go now. */
static void adopt_orphans(tn_node_t *n, const uint8_t parent[32])
{
    tn_chain_t *c = n->chain;
    for (int i = 0; i < c->n_orphans;) {
        if (memcmp(c->orphans[i].prev, parent, 32) != 0) {
            i++;
            continue;
        }
        uint8_t *raw = c->orphans[i].raw;
        uint32_t len = c->orphans[i].len;
        c->orphans[i] = c->orphans[--c->n_orphans];
        const char *why;
        add_checked(n, raw, len, &why, NULL);
        free(raw);
        i = 0; /* the array changed */
    }
}

static void keep_orphan(tn_chain_t *c, const tn_block_hdr_t *h, const uint8_t *raw, uint32_t len)
{
    for (int i = 0; i < c->n_orphans; i++)
        if (c->orphans[i].len == len && memcmp(c->orphans[i].raw, raw, len) == 0) return;
    uint8_t *copy = malloc(len);
    if (!copy) return;
    if (c->n_orphans == TN_ORPHANS_MAX) { /* full: the oldest goes */
        free(c->orphans[0].raw);
        memmove(&c->orphans[0], &c->orphans[1], sizeof(c->orphans[0]) * (TN_ORPHANS_MAX - 1));
        c->n_orphans--;
    }
    memcpy(copy, raw, len);
    c->orphans[c->n_orphans].raw = copy;
    c->orphans[c->n_orphans].len = len;
    memcpy(c->orphans[c->n_orphans].prev, h->prev, 32);
    c->n_orphans++;
}

static tn_add_result_t add_checked(tn_node_t *n, const uint8_t *raw, uint32_t len, const char **why,
                                   tn_blk_t **out)
{
    tn_chain_t *c = n->chain;
    tn_block_hdr_t h;
    int rc = tn_block_parse(raw, len, (uint32_t)n->cfg->max_block_size,
                            (uint32_t)n->cfg->max_tx_size, &h);
    if (rc != TN_OK) {
        *why = rc == TN_ETOOBIG   ? "oversize"
               : rc == TN_ECRYPTO ? "transaction commitment does not match"
                                  : "malformed";
        return TN_ADD_INVALID;
    }
    tn_blk_t *known = tn_idmap_get(&c->index, h.id);
    if (known) {
        if (out) *out = known;
        return TN_ADD_KNOWN;
    }
    tn_blk_t *prev = tn_idmap_get(&c->index, h.prev);
    if (!prev) {
        keep_orphan(c, &h, raw, len);
        return TN_ADD_ORPHAN;
    }
    if (!prev->main && c->tip->h.height > prev->h.height + (uint64_t)n->cfg->max_reorg_depth) {
        *why = "branches off deeper than max_reorg_depth";
        return TN_ADD_INVALID;
    }
    if ((*why = check_block(n, &h, raw, len, prev))) return TN_ADD_INVALID;
    tn_blk_t *b = index_block(c, &h, raw, len, prev);
    if (!b) {
        *why = "out of memory";
        return TN_ADD_INVALID;
    }
    persist(n, b);
    bool equivocation = note_equivocation(n, &h);
    if (better_than_tip(c, b)) {
        rc = set_tip(n, b);
        if (rc == TN_EINVAL) {
            *why = "repeats a transaction already on the chain";
            return TN_ADD_INVALID; /* stays indexed as a branch block; never the tip */
        }
    }
    if (out) *out = b;
    adopt_orphans(n, h.id);
    if (equivocation) {
        *why = "equivocation (its producer signed another block for the slot)";
        return TN_ADD_EQUIVOCATION;
    }
    return TN_ADD_OK;
}

tn_add_result_t tn_chain_add(tn_node_t *n, const uint8_t *raw, uint32_t len, const char **why,
                             tn_blk_t **out)
{
    *why = NULL;
    uint64_t before = n->chain->tip->h.height;
    tn_add_result_t r = add_checked(n, raw, len, why, out);
    n->height = n->chain->tip->h.height;
    if (n->height != before)
        tn_metric_set(tn_metric_gauge("tn_chain_height", "Height of the main chain's tip"),
                      (double)n->height);
    return r;
}

/* ---- locators ---- */

int tn_chain_locator(tn_node_t *n, uint8_t out[][32], int max)
{
    tn_chain_t *c = n->chain;
    int k = 0;
    uint64_t step = 1;
    for (int64_t h = (int64_t)c->main_len - 1; h >= 0 && k < max - 1; h -= (int64_t)step) {
        memcpy(out[k++], c->main[h]->h.id, 32);
        if (k >= 10) step *= 2;
    }
    if (k == 0 || memcmp(out[k - 1], c->genesis->h.id, 32) != 0)
        memcpy(out[k++], c->genesis->h.id, 32);
    return k;
}

size_t tn_chain_fork_height(tn_node_t *n, const uint8_t *locator, int count)
{
    for (int i = 0; i < count; i++) {
        tn_blk_t *b = tn_idmap_get(&n->chain->index, locator + 32 * i);
        if (b && b->main) return (size_t)b->h.height + 1;
    }
    return 1;
}

/* ---- open and close ---- */

static int load_row(void *ud, sqlite3_stmt *st)
{
    tn_node_t *n = ud;
    tn_chain_t *c = n->chain;
    const uint8_t *raw = sqlite3_column_blob(st, 0);
    uint32_t len = (uint32_t)sqlite3_column_bytes(st, 0);
    tn_block_hdr_t h;
    /* our own store, integrity-checked at open: structure is re-read, signatures trusted */
    if (!raw || tn_block_parse(raw, len, UINT32_MAX, UINT32_MAX, &h) != TN_OK) return 0;
    tn_blk_t *prev = tn_idmap_get(&c->index, h.prev);
    if (!prev || tn_idmap_get(&c->index, h.id)) return 0;
    tn_blk_t *b = index_block(c, &h, raw, len, prev);
    if (b && better_than_tip(c, b)) set_tip(n, b);
    /* the production guard survives a restart: never a second block for a slot we signed */
    if (memcmp(h.producer, n->id, 32) == 0 && h.slot + 1 > c->last_produced_slot)
        c->last_produced_slot = h.slot + 1;
    return 0;
}

static int parse_masternodes(tn_node_t *n)
{
    tn_chain_t *c = n->chain;
    const tn_strlist_t *l = &n->cfg->masternodes;
    if (l->n == 0) return TN_OK;
    c->masternodes = calloc((size_t)l->n, 32);
    if (!c->masternodes) return TN_ENOMEM;
    for (int i = 0; i < l->n; i++) tn_unhex(c->masternodes[i], 32, l->v[i]);
    qsort(c->masternodes, (size_t)l->n, 32, cmp_id);
    int k = 0; /* drop repeats */
    for (int i = 0; i < l->n; i++)
        if (k == 0 || memcmp(c->masternodes[k - 1], c->masternodes[i], 32) != 0)
            memcpy(c->masternodes[k++], c->masternodes[i], 32);
    c->n_masternodes = k;
    return TN_OK;
}

int tn_chain_open(tn_node_t *n, char *err, size_t errlen)
{
    tn_chain_t *c = calloc(1, sizeof(*c));
    if (!c) return TN_ENOMEM;
    n->chain = c;
    tn_buf_t g;
    tn_buf_init(&g, 4096);
    tn_block_hdr_t h;
    if (tn_idmap_init(&c->index, 1024) || tn_idmap_init(&c->chain_txs, 1024) ||
        tn_idmap_init(&c->by_slot, 1024) || parse_masternodes(n) ||
        tn_mempool_init(&c->pool, (size_t)n->cfg->mempool_max_txs,
                        (size_t)n->cfg->mempool_max_bytes) ||
        tn_block_genesis(&g, (uint64_t)n->cfg->genesis_time) ||
        tn_block_parse(g.p, (uint32_t)g.len, UINT32_MAX, UINT32_MAX, &h) ||
        !(c->genesis = index_block(c, &h, g.p, (uint32_t)g.len, NULL)) ||
        main_push(c, c->genesis)) {
        tn_buf_free(&g);
        snprintf(err, errlen, "out of memory building the chain");
        return TN_ENOMEM;
    }
    tn_buf_free(&g);
    c->tip = c->genesis;
    if (n->store && strcmp(n->cfg->test_fault, "block_write") == 0) {
        uint32_t after = 1 + randombytes_uniform(8); /* a few blocks in, never the same */
        tn_store_fault(n->store, SQL_BLOCK, after);
        tn_warn("test_fault: this process kills itself during block write %u", after);
    }
    if (n->store) {
        c->loading = true;
        tn_store_query(n->store, "SELECT raw FROM blocks ORDER BY height, id", load_row, n);
        c->loading = false;
        tn_mempool_load(n);
    }
    n->height = c->tip->h.height;
    char t[17];
    short_hex(t, c->tip->h.id);
    tn_info("Chain at height %llu, tip %s (%zu blocks indexed, %d masternodes)",
            (unsigned long long)n->height, t, c->index.n, c->n_masternodes);
    return TN_OK;
}

void tn_chain_close(tn_node_t *n)
{
    tn_chain_t *c = n->chain;
    if (!c) return;
    for (size_t i = 0; i < c->index.cap; i++) {
        tn_blk_t *b = c->index.s[i].val;
        if (!b) continue;
        free(b->raw);
        free(b);
    }
    for (int i = 0; i < c->n_orphans; i++) free(c->orphans[i].raw);
    tn_idmap_free(&c->index);
    tn_idmap_free(&c->chain_txs);
    tn_idmap_free(&c->by_slot);
    tn_mempool_free(&c->pool);
    free(c->main);
    free(c->masternodes);
    free(c);
    n->chain = NULL;
}
