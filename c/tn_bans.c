/* Bans by IP: held in memory for the accept-time check, persisted in the store so they
 * survive restarts, expiring on the wall clock. Verdicts come from the on_misbehavior hook
 * (policies/bans.lua); whitelisted addresses are never banned. Each ban is logged once.
 * The check runs for every accepted connection, so it is a lookup in a keyed-hash index
 * (TN_BANS_INDEX slots, at most half full), never a scan of up to TN_BANS_MAX bans. */
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#define TN_BANS_INDEX (2 * TN_BANS_MAX) /* a power of two */

static uint8_t index_key[crypto_shorthash_KEYBYTES];

static uint32_t home(const tn_addr_t *a)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, a->ip, 16, index_key);
    return (uint32_t)tn_get_u64(h) & (TN_BANS_INDEX - 1);
}

static void index_put(tn_node_t *n, int i)
{
    uint32_t k = home(&n->bans[i].ip);
    while (n->bans_index[k] >= 0) k = (k + 1) & (TN_BANS_INDEX - 1);
    n->bans_index[k] = i;
}

/* After removals (open addressing keeps no holes): rebuilt from the array, O(bans). */
static void index_rebuild(tn_node_t *n)
{
    for (int k = 0; k < TN_BANS_INDEX; k++) n->bans_index[k] = -1;
    for (int i = 0; i < n->n_bans; i++) index_put(n, i);
}

static tn_ban_t *find(tn_node_t *n, const tn_addr_t *a)
{
    if (!n->bans_index) return NULL;
    for (uint32_t k = home(a);; k = (k + 1) & (TN_BANS_INDEX - 1)) {
        int32_t i = n->bans_index[k];
        if (i < 0) return NULL;
        if (tn_addr_same_ip(&n->bans[i].ip, a)) return &n->bans[i];
    }
}

static int grow(tn_node_t *n)
{
    if (n->bans) return TN_OK;
    n->bans = calloc(TN_BANS_MAX, sizeof(tn_ban_t));
    n->bans_index = malloc(TN_BANS_INDEX * sizeof(int32_t));
    if (!n->bans || !n->bans_index) {
        free(n->bans);
        free(n->bans_index);
        n->bans = NULL;
        n->bans_index = NULL;
        return TN_ENOMEM;
    }
    randombytes_buf(index_key, sizeof index_key);
    index_rebuild(n);
    return TN_OK;
}

static int ban_row(void *ud, sqlite3_stmt *st)
{
    tn_node_t *n = ud;
    tn_addr_t ip;
    if (n->n_bans == TN_BANS_MAX) return 1;
    const char *text = (const char *)sqlite3_column_text(st, 0);
    const char *reason = (const char *)sqlite3_column_text(st, 2);
    /* SQLite lets a TEXT PRIMARY KEY hold NULL: a damaged or hand-edited store can. */
    if (!text || tn_addr_parse_ip(text, &ip) != TN_OK) return 0;
    tn_ban_t *b = &n->bans[n->n_bans++];
    b->ip = ip;
    b->until_ms = (uint64_t)sqlite3_column_int64(st, 1);
    b->count = (uint32_t)sqlite3_column_int(st, 3);
    snprintf(b->reason, sizeof b->reason, "%s", reason ? reason : "");
    index_put(n, n->n_bans - 1);
    return 0;
}

int tn_bans_load(tn_node_t *n)
{
    if (!n->store || grow(n) != TN_OK) return TN_ENOMEM;
    /* expired ones are kept: their count lets the policy escalate repeat offenders */
    return tn_store_query(n->store, "SELECT ip, until_ms, reason, count FROM bans", ban_row, n);
}

bool tn_bans_active(tn_node_t *n, const tn_addr_t *a)
{
    tn_ban_t *b = find(n, a);
    return b && b->until_ms > tn_wall_ms();
}

void tn_bans_add(tn_node_t *n, const tn_addr_t *a, double seconds, const char *reason)
{
    if (tn_node_whitelisted(n, a) || grow(n) != TN_OK) return;
    uint64_t now = tn_wall_ms(), until = now + (uint64_t)(seconds * 1000.0);
    tn_ban_t *b = find(n, a);
    if (!b) {
        bool replaced = n->n_bans == TN_BANS_MAX;
        if (replaced) { /* drop the ban closest to its end */
            b = &n->bans[0];
            for (int i = 1; i < n->n_bans; i++)
                if (n->bans[i].until_ms < b->until_ms) b = &n->bans[i];
        } else {
            b = &n->bans[n->n_bans++];
        }
        memset(b, 0, sizeof(*b));
        b->ip = *a;
        b->ip.port = 0;
        if (replaced)
            index_rebuild(n);
        else
            index_put(n, (int)(b - n->bans));
    } else if (b->until_ms >= until) {
        return; /* already banned at least that long: nothing new to log */
    }
    b->until_ms = until;
    b->count++;
    snprintf(b->reason, sizeof b->reason, "%s", reason);
    char ip[TN_ADDR_STRLEN];
    tn_addr_fmt_ip(a, ip);
    tn_warn("Banned %s for %.0f s (%s)", ip, seconds, reason);
    tn_metric_inc(tn_metric_counter("tn_bans_total", "Bans imposed"));
    if (n->store)
        tn_store_exec(n->store,
                      "INSERT INTO bans(ip,until_ms,reason,created_ms,count) VALUES(?,?,?,?,?) "
                      "ON CONFLICT(ip) DO UPDATE SET until_ms=excluded.until_ms,"
                      "reason=excluded.reason,count=excluded.count",
                      "titii", ip, (int64_t)until, reason, (int64_t)now, (int64_t)b->count);
    tn_addr_t any = b->ip;
    tn_node_disconnect(n, &any, NULL, "banned", true);
}

int tn_bans_remove(tn_node_t *n, const tn_addr_t *a)
{
    tn_ban_t *b = find(n, a);
    if (!b) return TN_ENOTFOUND;
    char ip[TN_ADDR_STRLEN];
    tn_addr_fmt_ip(a, ip);
    *b = n->bans[--n->n_bans];
    index_rebuild(n);
    if (n->store) tn_store_exec(n->store, "DELETE FROM bans WHERE ip = ?", "t", ip);
    return TN_OK;
}

int tn_bans_clear(tn_node_t *n)
{
    int active = 0;
    uint64_t now = tn_wall_ms();
    for (int i = 0; i < n->n_bans; i++) active += n->bans[i].until_ms > now;
    n->n_bans = 0;
    if (n->bans_index) index_rebuild(n);
    if (n->store) tn_store_exec(n->store, "DELETE FROM bans", "");
    return active;
}

void tn_bans_free(tn_node_t *n)
{
    free(n->bans);
    free(n->bans_index);
    n->bans = NULL;
    n->bans_index = NULL;
    n->n_bans = 0;
}
