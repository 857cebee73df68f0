/* The mempool: validated transactions not yet on the main chain, in arrival order for block
 * building, with a min-heap on expiry so that when it is full the transaction expiring first
 * (the least likely to make it into a block) is the one evicted. Bounded by mempool_max_txs
 * and mempool_max_bytes; mirrored in the store so it survives restarts. */
#include "tn_chain.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <stdlib.h>

int tn_mempool_init(tn_mempool_t *m, size_t max_txs, size_t max_bytes)
{
    memset(m, 0, sizeof(*m));
    m->max_txs = max_txs;
    m->max_bytes = max_bytes;
    return tn_idmap_init(&m->by_id, 1024);
}

void tn_mempool_free(tn_mempool_t *m)
{
    for (tn_mtx_t *t = m->head; t;) {
        tn_mtx_t *next = t->next;
        free(t->raw);
        free(t);
        t = next;
    }
    free(m->heap);
    tn_idmap_free(&m->by_id);
    memset(m, 0, sizeof(*m));
}

/* ---- the expiry heap ---- */

static bool earlier(const tn_mtx_t *a, const tn_mtx_t *b)
{
    return a->expiry != b->expiry ? a->expiry < b->expiry : a->seq < b->seq;
}

static void heap_set(tn_mempool_t *m, size_t i, tn_mtx_t *t)
{
    m->heap[i] = t;
    t->heap_i = i;
}

static void sift_up(tn_mempool_t *m, size_t i)
{
    tn_mtx_t *t = m->heap[i];
    while (i > 0 && earlier(t, m->heap[(i - 1) / 2])) {
        heap_set(m, i, m->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(m, i, t);
}

static void sift_down(tn_mempool_t *m, size_t i)
{
    tn_mtx_t *t = m->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        tn_mtx_t *bt = t;
        if (l < m->n && earlier(m->heap[l], bt)) best = l, bt = m->heap[l];
        if (l + 1 < m->n && earlier(m->heap[l + 1], bt)) best = l + 1, bt = m->heap[l + 1];
        if (best == i) break;
        heap_set(m, i, bt);
        i = best;
    }
    heap_set(m, i, t);
}

static void heap_remove(tn_mempool_t *m, tn_mtx_t *t)
{
    size_t i = t->heap_i;
    tn_mtx_t *last = m->heap[--m->n];
    if (i == m->n) return;
    heap_set(m, i, last);
    sift_up(m, i);
    sift_down(m, last->heap_i);
}

/* ---- entries ---- */

static void unlink_tx(tn_node_t *n, tn_mtx_t *t, bool persist)
{
    tn_mempool_t *m = &n->chain->pool;
    tn_idmap_del(&m->by_id, t->id);
    heap_remove(m, t);
    if (t->prev)
        t->prev->next = t->next;
    else
        m->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        m->tail = t->prev;
    m->bytes -= t->len;
    if (persist && n->store) {
        char id[65];
        tn_hex(id, t->id, 32);
        tn_store_exec(n->store, "DELETE FROM mempool WHERE id = ?", "t", id);
    }
    free(t->raw);
    free(t);
}

static void update_gauges(const tn_mempool_t *m)
{
    /* Looked up once: a lookup by name scans the registry, and this runs per transaction. */
    static tn_metric_t *txs, *bytes;
    if (!txs) {
        txs = tn_metric_gauge("tn_mempool_txs", "Transactions in the mempool");
        bytes = tn_metric_gauge("tn_mempool_bytes", "Bytes of transactions in the mempool");
    }
    tn_metric_set(txs, (double)m->n);
    tn_metric_set(bytes, (double)m->bytes);
}

tn_mtx_t *tn_mempool_get(tn_mempool_t *m, const uint8_t id[32])
{
    return tn_idmap_get(&m->by_id, id);
}

static int insert(tn_node_t *n, const tn_tx_t *tx, bool persist)
{
    tn_mempool_t *m = &n->chain->pool;
    if (tn_idmap_get(&m->by_id, tx->id)) return TN_EALREADY;
    while (m->n > 0 && (m->n + 1 > m->max_txs || m->bytes + tx->len > m->max_bytes)) {
        if (tx->expiry <= m->heap[0]->expiry) return TN_ELIMIT; /* the newcomer is the weakest */
        tn_metric_inc(tn_metric_counter("tn_mempool_evicted_total",
                                        "Transactions evicted from a full mempool"));
        unlink_tx(n, m->heap[0], true);
    }
    if (tx->len > m->max_bytes) return TN_ELIMIT;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        tn_mtx_t **h = realloc(m->heap, cap * sizeof(*h));
        if (!h) return TN_ENOMEM;
        m->heap = h;
        m->cap = cap;
    }
    tn_mtx_t *t = calloc(1, sizeof(*t));
    uint8_t *raw = malloc(tx->len);
    if (!t || !raw || tn_idmap_put(&m->by_id, tx->id, t) != TN_OK) {
        free(t);
        free(raw);
        return TN_ENOMEM;
    }
    memcpy(t->id, tx->id, 32);
    memcpy(raw, tx->raw, tx->len);
    t->raw = raw;
    t->len = tx->len;
    t->expiry = tx->expiry;
    t->seq = m->next_seq++;
    t->prev = m->tail;
    if (m->tail)
        m->tail->next = t;
    else
        m->head = t;
    m->tail = t;
    m->bytes += t->len;
    heap_set(m, m->n++, t);
    sift_up(m, m->n - 1);
    if (persist && n->store) {
        char id[65];
        tn_hex(id, t->id, 32);
        tn_store_exec(n->store, "INSERT OR IGNORE INTO mempool(id,expiry,raw) VALUES(?,?,?)", "tib",
                      id, (int64_t)t->expiry, t->raw, (size_t)t->len);
    }
    update_gauges(m);
    return TN_OK;
}

int tn_mempool_add(tn_node_t *n, const tn_tx_t *tx)
{
    return insert(n, tx, true);
}

void tn_mempool_remove(tn_node_t *n, const uint8_t id[32])
{
    tn_mtx_t *t = tn_idmap_get(&n->chain->pool.by_id, id);
    if (!t) return;
    unlink_tx(n, t, true);
    update_gauges(&n->chain->pool);
}

void tn_mempool_expire(tn_node_t *n, uint64_t now_s)
{
    tn_mempool_t *m = &n->chain->pool;
    while (m->n > 0 && m->heap[0]->expiry <= now_s) unlink_tx(n, m->heap[0], true);
    update_gauges(m);
}

static int load_row(void *ud, sqlite3_stmt *st)
{
    tn_node_t *n = ud;
    const uint8_t *raw = sqlite3_column_blob(st, 0);
    uint32_t len = (uint32_t)sqlite3_column_bytes(st, 0);
    tn_tx_t tx;
    if (!raw || tn_tx_parse(raw, len, UINT32_MAX, &tx) != TN_OK) return 0;
    if (tx.expiry <= tn_wall_ms() / 1000 || tn_idmap_get(&n->chain->chain_txs, tx.id)) {
        char id[65];
        tn_hex(id, tx.id, 32);
        tn_store_exec(n->store, "DELETE FROM mempool WHERE id = ?", "t", id);
        return 0;
    }
    insert(n, &tx, false);
    return 0;
}

int tn_mempool_load(tn_node_t *n)
{
    return tn_store_query(n->store, "SELECT raw FROM mempool ORDER BY rowid", load_row, n);
}
