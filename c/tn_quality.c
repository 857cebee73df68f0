/* Peer quality (seed §9 Peer Quality Tracking): per node id, across sessions and restarts,
 * the connection success rate, the share of time connected, the smoothed RTT, late and
 * missed pongs, blocks served, duplicates and invalid objects sent, disconnections. Kept in
 * memory (bounded by TN_QUALITY_MAX) and written to the store's peer_quality table when a
 * session ends or a dial fails; the score hook reads it through the peer object. */
#include "tn_disc.h"
#include "tn_log.h"
#include "tn_relay.h"

#include <math.h>
#include <stdlib.h>

#define RTT_KEEP 0.7 /* weight of the RTT history against the session that just ended */

static const char SQL_UPSERT[] =
    "INSERT INTO peer_quality(node_id,addr,dials,dial_failures,sessions,disconnects,"
    "connected_ms,first_seen,updated,rtt_ms,pings,late,missed,blocks,dups,invalid) "
    "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(node_id) DO UPDATE SET "
    "addr=excluded.addr,dials=excluded.dials,dial_failures=excluded.dial_failures,"
    "sessions=excluded.sessions,disconnects=excluded.disconnects,"
    "connected_ms=excluded.connected_ms,updated=excluded.updated,rtt_ms=excluded.rtt_ms,"
    "pings=excluded.pings,late=excluded.late,missed=excluded.missed,blocks=excluded.blocks,"
    "dups=excluded.dups,invalid=excluded.invalid";

static void save(tn_node_t *n, const tn_quality_t *q)
{
    if (!n->store) return;
    char id[65], addr[TN_ADDR_STRLEN] = "";
    tn_hex(id, q->id, 32);
    if (!tn_addr_is_any(&q->addr)) tn_addr_fmt(&q->addr, addr);
    tn_store_exec(n->store, SQL_UPSERT, "ttiiiiiiidiiiiii", id, addr, (int64_t)q->dials,
                  (int64_t)q->dial_failures, (int64_t)q->sessions, (int64_t)q->disconnects,
                  (int64_t)q->connected_ms, (int64_t)q->first_seen_ms, (int64_t)q->updated_ms,
                  q->rtt_ms, (int64_t)q->pings, (int64_t)q->late, (int64_t)q->missed,
                  (int64_t)q->blocks, (int64_t)q->dups, (int64_t)q->invalid);
}

/* Bound: the least recently updated record goes (it is kept in the store, but no longer
 * in memory; a peer that comes back starts from what the store had at the last restart). */
static void trim(tn_disc_t *d)
{
    while (d->n_quality > TN_QUALITY_MAX) {
        tn_quality_t *oldest = NULL;
        for (size_t i = 0; i < d->quality.cap; i++) {
            tn_quality_t *q = d->quality.s[i].val;
            if (q && (!oldest || q->updated_ms < oldest->updated_ms)) oldest = q;
        }
        if (!oldest) return;
        tn_idmap_del(&d->quality, oldest->id);
        free(oldest);
        d->n_quality--;
    }
}

tn_quality_t *tn_quality_get(tn_node_t *n, const uint8_t id[32], bool create)
{
    tn_disc_t *d = n->disc;
    if (!d) return NULL;
    tn_quality_t *q = tn_idmap_get(&d->quality, id);
    if (q || !create) return q;
    q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    memcpy(q->id, id, 32);
    q->first_seen_ms = q->updated_ms = tn_wall_ms();
    if (tn_idmap_put(&d->quality, id, q) != TN_OK) {
        free(q);
        return NULL;
    }
    d->n_quality++;
    trim(d);
    return tn_idmap_get(&d->quality, id);
}

static int load_row(void *ud, sqlite3_stmt *st)
{
    tn_node_t *n = ud;
    const char *hex = (const char *)sqlite3_column_text(st, 0);
    uint8_t id[32];
    if (!hex || tn_unhex(id, 32, hex) != TN_OK) return 0;
    tn_quality_t *q = tn_quality_get(n, id, true);
    if (!q) return 1;
    const char *addr = (const char *)sqlite3_column_text(st, 1);
    if (addr) tn_addr_parse(addr, &q->addr);
    q->dials = (uint32_t)sqlite3_column_int64(st, 2);
    q->dial_failures = (uint32_t)sqlite3_column_int64(st, 3);
    q->sessions = (uint32_t)sqlite3_column_int64(st, 4);
    q->disconnects = (uint32_t)sqlite3_column_int64(st, 5);
    q->connected_ms = (uint64_t)sqlite3_column_int64(st, 6);
    q->first_seen_ms = (uint64_t)sqlite3_column_int64(st, 7);
    q->updated_ms = (uint64_t)sqlite3_column_int64(st, 8);
    q->rtt_ms = sqlite3_column_double(st, 9);
    q->pings = (uint64_t)sqlite3_column_int64(st, 10);
    q->late = (uint64_t)sqlite3_column_int64(st, 11);
    q->missed = (uint64_t)sqlite3_column_int64(st, 12);
    q->blocks = (uint64_t)sqlite3_column_int64(st, 13);
    q->dups = (uint64_t)sqlite3_column_int64(st, 14);
    q->invalid = (uint64_t)sqlite3_column_int64(st, 15);
    return 0;
}

int tn_quality_load(tn_node_t *n)
{
    if (!n->store) return TN_OK;
    /* Most recent last, so the bound keeps the most recent TN_QUALITY_MAX. */
    return tn_store_query(n->store,
                          "SELECT node_id,addr,dials,dial_failures,sessions,disconnects,"
                          "connected_ms,first_seen,updated,rtt_ms,pings,late,missed,blocks,dups,"
                          "invalid FROM peer_quality ORDER BY updated",
                          load_row, n);
}

void tn_quality_on_open(tn_node_t *n, tn_session_t *s)
{
    tn_quality_t *q = tn_quality_get(n, s->their_id, true);
    if (!q) return;
    q->sessions++;
    if (s->outbound) {
        q->dials++;
        q->addr = s->remote;
    }
    q->updated_ms = tn_wall_ms();
}

void tn_quality_on_close(tn_node_t *n, tn_session_t *s)
{
    tn_quality_t *q = tn_quality_get(n, s->their_id, true);
    if (!q) return;
    q->disconnects++;
    q->connected_ms += uv_now(n->loop) - s->opened_ms;
    if (s->pongs)
        q->rtt_ms = q->rtt_ms > 0 ? RTT_KEEP * q->rtt_ms + (1 - RTT_KEEP) * s->rtt_ms : s->rtt_ms;
    q->pings += s->pings;
    q->late += s->late;
    q->missed += s->missed;
    const tn_relay_peer_t *r = s->relay;
    if (r) {
        q->blocks += r->blocks_added;
        q->dups += r->dups;
        q->invalid += r->invalid;
    }
    if (!s->outbound && s->hello && s->their_port) {
        q->addr = s->remote;
        q->addr.port = s->their_port;
    }
    q->updated_ms = tn_wall_ms();
    save(n, q);
}

void tn_quality_on_dial_failed(tn_node_t *n, const uint8_t id[32], const tn_addr_t *a)
{
    tn_quality_t *q = tn_quality_get(n, id, true);
    if (!q) return;
    q->dials++;
    q->dial_failures++;
    q->addr = *a;
    q->updated_ms = tn_wall_ms();
    save(n, q);
}

/* Totals with the session in progress (s may be NULL or closed). */
typedef struct {
    double success_rate, uptime_share, rtt, pings, late, missed, blocks, dups, invalid, discs;
} totals_t;

static bool totals(tn_node_t *n, const tn_session_t *s, const uint8_t *id, totals_t *t)
{
    tn_quality_t *q = id ? tn_quality_get(n, id, false) : NULL;
    bool live = s && s->state == TN_SS_OPEN && s->peer;
    if (!q && !live) return false;
    tn_quality_t z;
    if (!q) {
        memset(&z, 0, sizeof z);
        z.first_seen_ms = tn_wall_ms();
        q = &z;
    }
    uint64_t now = tn_wall_ms();
    double live_ms = live ? (double)(uv_now(n->loop) - s->opened_ms) : 0;
    /* success: of the attempts to have a session (our dials, their connections), how many
     * gave one; a peer never tried counts as good */
    double ok = q->sessions, tries = q->sessions + q->dial_failures;
    t->success_rate = tries > 0 ? ok / tries : 1;
    double known = now > q->first_seen_ms ? (double)(now - q->first_seen_ms) : 0;
    double up = (double)q->connected_ms + live_ms;
    t->uptime_share = known > 0 ? fmin(1.0, up / known) : (live ? 1 : 0);
    t->rtt = live && s->pongs
                 ? (q->rtt_ms > 0 ? RTT_KEEP * q->rtt_ms + (1 - RTT_KEEP) * s->rtt_ms : s->rtt_ms)
                 : q->rtt_ms;
    t->pings = (double)q->pings + (live ? s->pings : 0);
    t->late = (double)q->late + (live ? s->late : 0);
    t->missed = (double)q->missed + (live ? s->missed : 0);
    const tn_relay_peer_t *r = live ? s->relay : NULL;
    t->blocks = (double)q->blocks + (r ? (double)r->blocks_added : 0);
    t->dups = (double)q->dups + (r ? (double)r->dups : 0);
    t->invalid = (double)q->invalid + (r ? (double)r->invalid : 0);
    t->discs = q->disconnects;
    return true;
}

const char *const TN_QUALITY_FIELDS[TN_QUALITY_NFIELDS] = {
    "success_rate", "uptime_share", "rtt_avg_ms", "pings_total", "late_total",
    "missed_total", "blocks",       "dups",       "invalid",     "disconnects_total"};

void tn_quality_values(tn_node_t *n, const tn_session_t *s, const uint8_t *id,
                       double out[TN_QUALITY_NFIELDS])
{
    totals_t t;
    if (!totals(n, s, id, &t)) { /* an unknown peer: no failures, nothing measured */
        memset(out, 0, sizeof(double) * TN_QUALITY_NFIELDS);
        out[0] = 1;
        return;
    }
    const double v[TN_QUALITY_NFIELDS] = {t.success_rate, t.uptime_share, t.rtt,    t.pings,
                                          t.late,         t.missed,       t.blocks, t.dups,
                                          t.invalid,      t.discs};
    memcpy(out, v, sizeof v);
}

bool tn_quality_value(tn_node_t *n, const tn_session_t *s, const uint8_t *id, const char *field,
                      double *out)
{
    for (int i = 0; i < TN_QUALITY_NFIELDS; i++)
        if (strcmp(field, TN_QUALITY_FIELDS[i]) == 0) {
            double v[TN_QUALITY_NFIELDS];
            tn_quality_values(n, s, id, v);
            *out = v[i];
            return true;
        }
    return false;
}

void tn_quality_json(tn_node_t *n, const tn_session_t *s, const uint8_t *id, cJSON *o)
{
    totals_t t;
    if (!totals(n, s, id, &t)) return;
    cJSON *q = cJSON_AddObjectToObject(o, "quality");
    cJSON_AddNumberToObject(q, "success_rate", t.success_rate);
    cJSON_AddNumberToObject(q, "uptime_share", t.uptime_share);
    cJSON_AddNumberToObject(q, "rtt_avg_ms", t.rtt);
    cJSON_AddNumberToObject(q, "pings", t.pings);
    cJSON_AddNumberToObject(q, "late", t.late);
    cJSON_AddNumberToObject(q, "missed", t.missed);
    cJSON_AddNumberToObject(q, "blocks", t.blocks);
    cJSON_AddNumberToObject(q, "dups", t.dups);
    cJSON_AddNumberToObject(q, "invalid", t.invalid);
    cJSON_AddNumberToObject(q, "disconnects", t.discs);
}

void tn_quality_free(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    if (!d || !d->quality.s) return;
    for (size_t i = 0; i < d->quality.cap; i++) free(d->quality.s[i].val);
    tn_idmap_free(&d->quality);
}
