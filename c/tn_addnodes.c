/* Peers added by the operator (`addnode`, like bitcoin-cli's): persistent targets, kept in
 * the store's added_nodes table so every start dials them again. Removing one stops the
 * redials unless the config lists it in persistent_peers; its session, if any, stays. */
#include "tn_log.h"
#include "tn_node.h"
#include "tn_ops.h"

#include <stdio.h>

static int find(const tn_ops_t *o, const tn_addr_t *a)
{
    for (int i = 0; i < o->n_added; i++)
        if (tn_addr_eq(&o->added[i], a)) return i;
    return -1;
}

bool tn_addnodes_has(const tn_node_t *n, const tn_addr_t *a)
{
    return n->ops && find(n->ops, a) >= 0;
}

static int row(void *ud, sqlite3_stmt *st)
{
    tn_node_t *n = ud;
    tn_addr_t a;
    const char *s = (const char *)sqlite3_column_text(st, 0);
    if (n->ops->n_added == TN_ADDNODES_MAX) return 1;
    if (s && tn_addr_parse(s, &a) == TN_OK && a.port && find(n->ops, &a) < 0)
        n->ops->added[n->ops->n_added++] = a;
    return 0;
}

int tn_addnodes_load(tn_node_t *n)
{
    if (!n->store) return TN_OK;
    int rc = tn_store_query(n->store, "SELECT addr FROM added_nodes ORDER BY added_ms", row, n);
    for (int i = 0; i < n->ops->n_added; i++) tn_targets_persist(n, &n->ops->added[i]);
    if (n->ops->n_added) tn_info("Dialing %d peers added with addnode", n->ops->n_added);
    return rc;
}

int tn_addnodes_add(tn_node_t *n, const tn_addr_t *a)
{
    tn_ops_t *o = n->ops;
    if (find(o, a) >= 0) return TN_EALREADY;
    if (o->n_added == TN_ADDNODES_MAX) return TN_ENOMEM;
    int rc = tn_targets_persist(n, a);
    if (rc != TN_OK) return rc;
    o->added[o->n_added++] = *a;
    char s[TN_ADDR_STRLEN];
    tn_addr_fmt(a, s);
    if (n->store)
        tn_store_exec(n->store,
                      "INSERT INTO added_nodes(addr, added_ms) VALUES(?, ?) ON CONFLICT(addr) DO "
                      "NOTHING",
                      "ti", s, (int64_t)tn_wall_ms());
    tn_info("Added node %s: kept connected and dialed at every start", s);
    return TN_OK;
}

int tn_addnodes_remove(tn_node_t *n, const tn_addr_t *a)
{
    tn_ops_t *o = n->ops;
    int i = find(o, a);
    if (i < 0) return TN_ENOTFOUND;
    o->added[i] = o->added[--o->n_added];
    char s[TN_ADDR_STRLEN];
    tn_addr_fmt(a, s);
    if (n->store) tn_store_exec(n->store, "DELETE FROM added_nodes WHERE addr = ?", "t", s);
    bool in_config = false;
    for (int j = 0; j < n->cfg->persistent_peers.n; j++) {
        tn_addr_t c;
        if (tn_addr_parse(n->cfg->persistent_peers.v[j], &c) == TN_OK && tn_addr_eq(&c, a))
            in_config = true;
    }
    if (!in_config) tn_targets_unpersist(n, a);
    tn_info("Removed added node %s", s);
    return TN_OK;
}

void tn_addnodes_list(tn_node_t *n, cJSON *out)
{
    for (int i = 0; i < n->ops->n_added; i++) {
        const tn_addr_t *a = &n->ops->added[i];
        char s[TN_ADDR_STRLEN];
        tn_addr_fmt(a, s);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "addr", s);
        bool connected = false;
        for (tn_peer_t *p = n->peers; p; p = p->next)
            if (p->session && p->established && tn_addr_eq(&p->addr, a)) connected = true;
        cJSON_AddBoolToObject(row, "connected", connected);
        cJSON_AddItemToArray(out, row);
    }
}
