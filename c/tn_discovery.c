/* Discovery (seed §8): while the node has fewer than min_peers ordinary peers, it asks the
 * discovery_order hook which sources to try (default: seeds, HTTP API, peer exchange, the
 * address table on disk) and takes the first that yields dialable addresses; a source that
 * yields nothing (or cannot be asked) falls through to the next. Candidates are ranked by
 * the rank_candidates hook and dialed preferring network groups we have no outbound peer
 * in (seed §21). A lost peer or a failed dial looks again at once; a periodic timer
 * (discovery_interval) is the safety net. Also here: anchors (the outbound peers at
 * shutdown, dialed first at the next start), masternodes dialing every active masternode
 * whose address they know (seed §23), the address table's persistence in the store, the
 * `addrs` verb and the discovery metrics. */
#include "tn_chain.h"
#include "tn_disc.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_ctl.h"
#include "tn_geoip.h"
#include "tn_peerapi.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define SWEEP_MS 60000 /* aging pass over the address table */

static const char *const DSRC_NAMES[TN_DSRC__COUNT] = {"seeds", "api", "exchange", "cache"};

const char *tn_dsrc_name(tn_dsrc_t s)
{
    return s < TN_DSRC__COUNT ? DSRC_NAMES[s] : "?";
}

/* ---- the address table in the store (migration 5 over the peers table) ---- */

static const char SQL_ADDR_UPSERT[] =
    "INSERT INTO peers(addr,node_id,source,src,first_seen,last_seen,last_try,last_success,"
    "successes,failures,attempts,tried,anchor,id_verified) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT(addr) DO UPDATE SET node_id=excluded.node_id,source=excluded.source,"
    "src=excluded.src,first_seen=excluded.first_seen,last_seen=excluded.last_seen,"
    "last_try=excluded.last_try,last_success=excluded.last_success,"
    "successes=excluded.successes,failures=excluded.failures,attempts=excluded.attempts,"
    "tried=excluded.tried,anchor=excluded.anchor,id_verified=excluded.id_verified";
static const char SQL_ADDR_DELETE[] = "DELETE FROM peers WHERE addr = ?";

static void on_am_change(void *ud, const tn_am_entry_t *e, tn_am_change_t what)
{
    tn_node_t *n = ud;
    if (!n->store || (n->disc && n->disc->loading && what == TN_AM_UPSERT)) return;
    char a[TN_ADDR_STRLEN], src[TN_ADDR_STRLEN] = "", id[65];
    tn_addr_fmt(&e->addr, a);
    if (what == TN_AM_DELETE) {
        tn_store_exec(n->store, SQL_ADDR_DELETE, "t", a);
        return;
    }
    if (!tn_addr_is_any(&e->src)) tn_addr_fmt_ip(&e->src, src);
    if (e->has_id) tn_hex(id, e->id, 32);
    tn_store_exec(n->store, SQL_ADDR_UPSERT, "ttttiiiiiiiiii", a, e->has_id ? id : NULL,
                  tn_am_source_name(e->source), src, (int64_t)e->first_seen, (int64_t)e->last_seen,
                  (int64_t)e->last_try, (int64_t)e->last_success, (int64_t)e->successes,
                  (int64_t)e->failures, (int64_t)e->attempts, (int64_t)e->tried, (int64_t)e->anchor,
                  (int64_t)e->id_verified);
}

typedef struct {
    tn_node_t *n;
    int loaded, dropped;
} load_ctx_t;

static int load_row(void *ud, sqlite3_stmt *st)
{
    load_ctx_t *c = ud;
    tn_node_t *n = c->n;
    tn_am_entry_t e;
    memset(&e, 0, sizeof e);
    const char *addr = (const char *)sqlite3_column_text(st, 0);
    const char *id = (const char *)sqlite3_column_text(st, 1);
    const char *source = (const char *)sqlite3_column_text(st, 2);
    const char *src = (const char *)sqlite3_column_text(st, 3);
    if (!addr || tn_addr_parse(addr, &e.addr) != TN_OK || e.addr.port == 0 ||
        tn_addr_eq(&e.addr, &n->listen_addr)) {
        c->dropped++;
        if (addr) tn_store_exec(n->store, SQL_ADDR_DELETE, "t", addr);
        return 0;
    }
    if (id && tn_unhex(e.id, 32, id) == TN_OK) e.has_id = true;
    int s = tn_am_source_parse(source);
    e.source = (uint8_t)(s < 0 ? TN_AMSRC_OUTBOUND : s);
    if (src && src[0]) tn_addr_parse_ip(src, &e.src);
    e.first_seen = (uint64_t)sqlite3_column_int64(st, 4);
    e.last_seen = (uint64_t)sqlite3_column_int64(st, 5);
    e.last_try = (uint64_t)sqlite3_column_int64(st, 6);
    e.last_success = (uint64_t)sqlite3_column_int64(st, 7);
    e.successes = (uint32_t)sqlite3_column_int64(st, 8);
    e.failures = (uint32_t)sqlite3_column_int64(st, 9);
    e.attempts = (uint32_t)sqlite3_column_int64(st, 10);
    /* rows from before schema 5 record outbound successes without the tried flag */
    e.tried = sqlite3_column_int64(st, 11) ||
              (e.source == TN_AMSRC_OUTBOUND && e.successes > 0 && e.last_success > 0);
    e.anchor = sqlite3_column_int64(st, 12) != 0;
    e.id_verified = sqlite3_column_int64(st, 13) != 0 || (e.has_id && e.tried);
    if (tn_addrman_restore(n->disc->am, &e, tn_wall_ms()) == TN_OK) {
        c->loaded++;
    } else {
        c->dropped++;
        tn_store_exec(n->store, SQL_ADDR_DELETE, "t", addr);
    }
    return 0;
}

/* ---- what may be learned and dialed ---- */

bool tn_disc_learnable(tn_node_t *n, const tn_addr_t *a)
{
    if (a->port == 0 || tn_addr_is_any(a)) return false;
    if (tn_addr_is_v4(a)) {
        uint8_t b = a->ip[12];
        if (b >= 224 || b == 0) return false; /* multicast, reserved, broadcast, "this" */
    } else if (a->ip[0] == 0xff) {
        return false; /* IPv6 multicast */
    }
    return !tn_addr_is_local(a) || n->cfg->allow_local_addresses;
}

/* Addresses and identities with a session or a dial in flight, sorted for bsearch. */
typedef struct {
    tn_addr_t *addrs;
    int n_addrs;
    uint8_t (*ids)[32];
    int n_ids;
    uint64_t *groups; /* network groups of outbound sessions and dials (diversity) */
    int n_groups;
    uint64_t *geos; /* their ASN or country keys (geoip_db), 0 = unknown */
} busy_t;

static int cmp_addr(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(tn_addr_t));
}
static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* extra: room for the dials this round may add. */
static uint64_t geo_key(tn_node_t *n, const tn_addr_t *a)
{
    tn_geo_t geo;
    if (!n->disc || !n->disc->geo || !tn_geoip_lookup(n->disc->geo, a, &geo)) return 0;
    return tn_geo_key(&geo);
}

static bool busy_build(tn_node_t *n, busy_t *b, int extra)
{
    int cap = 2 + extra;
    for (tn_session_t *s = n->sessions; s; s = s->next) cap += 2;
    memset(b, 0, sizeof(*b));
    b->addrs = calloc((size_t)cap, sizeof(tn_addr_t));
    b->ids = calloc((size_t)cap, 32);
    b->groups = calloc((size_t)cap, sizeof(uint64_t));
    b->geos = calloc((size_t)cap, sizeof(uint64_t));
    if (!b->addrs || !b->ids || !b->groups || !b->geos) return false;
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (s->outbound) {
            b->addrs[b->n_addrs++] = s->remote;
            b->geos[b->n_groups] = geo_key(n, &s->remote);
            b->groups[b->n_groups++] = tn_netgroup(&s->remote);
        }
        if (s->state == TN_SS_OPEN) memcpy(b->ids[b->n_ids++], s->their_id, 32);
        tn_peer_t *p = s->peer;
        if (p && p->addr.port) b->addrs[b->n_addrs++] = p->addr;
    }
    qsort(b->addrs, (size_t)b->n_addrs, sizeof(tn_addr_t), cmp_addr);
    qsort(b->ids, (size_t)b->n_ids, 32, cmp_id);
    return true;
}

static void busy_free(busy_t *b)
{
    free(b->addrs);
    free(b->ids);
    free(b->groups);
    free(b->geos);
}

static bool busy_has(const busy_t *b, const tn_am_entry_t *e)
{
    if (bsearch(&e->addr, b->addrs, (size_t)b->n_addrs, sizeof(tn_addr_t), cmp_addr)) return true;
    return e->has_id && bsearch(e->id, b->ids, (size_t)b->n_ids, 32, cmp_id);
}

static bool group_used(const busy_t *b, uint64_t g)
{
    for (int i = 0; i < b->n_groups; i++)
        if (b->groups[i] == g) return true;
    return false;
}

static bool geo_used(const busy_t *b, uint64_t k)
{
    for (int i = 0; k && i < b->n_groups; i++)
        if (b->geos[i] == k) return true;
    return false;
}

static bool dialable(tn_node_t *n, const busy_t *b, const tn_am_entry_t *e, uint64_t wall)
{
    if (e->addr.port == 0 || e->retry_at > wall) return false;
    if (tn_addr_eq(&e->addr, &n->listen_addr)) return false;
    if (e->has_id && memcmp(e->id, n->id, 32) == 0 && e->id_verified) return false;
    if (tn_node_is_blocked(n, &e->addr) || tn_bans_active(n, &e->addr)) return false;
    return !busy_has(b, e);
}

/* ---- dialing ---- */

typedef struct {
    tn_am_entry_t *e;
    bool masternode;
} cand_t;

/* Before the policy sees them: tried first, fewer failures, the most recent success or
 * sighting. The policy ranks the best TN_RANK_MAX of these. */
static int cmp_cand(const void *x, const void *y)
{
    const tn_am_entry_t *a = ((const cand_t *)x)->e, *b = ((const cand_t *)y)->e;
    if (a->tried != b->tried) return a->tried ? -1 : 1;
    if (a->attempts != b->attempts) return a->attempts < b->attempts ? -1 : 1;
    uint64_t ra = a->last_success > a->last_seen ? a->last_success : a->last_seen;
    uint64_t rb = b->last_success > b->last_seen ? b->last_success : b->last_seen;
    if (ra != rb) return ra > rb ? -1 : 1;
    return memcmp(&a->addr, &b->addr, sizeof a->addr);
}

static int gather(tn_node_t *n, const busy_t *b, tn_dsrc_t src, cand_t *out)
{
    tn_disc_t *d = n->disc;
    uint64_t wall = tn_wall_ms();
    static cand_t all[TN_AM_MAX];
    int k = 0;
    tn_am_entry_t *e;
    for (int i = -1; (e = tn_addrman_next(d->am, &i));) {
        if (src != TN_DSRC_CACHE && !(e->fresh & (1u << src))) continue;
        if (!dialable(n, b, e, wall)) continue;
        all[k].e = e;
        all[k].masternode = e->has_id && tn_chain_is_masternode(n, e->id);
        k++;
    }
    qsort(all, (size_t)k, sizeof(cand_t), cmp_cand);
    if (k > TN_RANK_MAX) k = TN_RANK_MAX;
    memcpy(out, all, sizeof(cand_t) * (size_t)k);
    return k;
}

/* The C default order (as discovery.lua): masternodes first, then round robin over network
 * groups in preference order, so the first k dials reach k groups. */
static int default_rank(const cand_t *c, int k, int *order)
{
    int m = 0;
    bool *done = calloc((size_t)k + 1, sizeof(bool));
    if (!done) {
        for (int i = 0; i < k; i++) order[i] = i;
        return k;
    }
    for (int pass = 0; pass < 2; pass++) {
        bool want_mn = pass == 0;
        for (;;) {
            int took = 0;
            uint64_t round_groups[TN_RANK_MAX];
            int ng = 0;
            for (int i = 0; i < k; i++) {
                if (done[i] || c[i].masternode != want_mn) continue;
                uint64_t g = tn_netgroup(&c[i].e->addr);
                bool seen = false;
                for (int j = 0; j < ng && !seen; j++) seen = round_groups[j] == g;
                if (seen) continue;
                round_groups[ng++] = g;
                order[m++] = i;
                done[i] = true;
                took++;
            }
            if (!took) break;
        }
    }
    free(done);
    return m;
}

static tn_am_source_t am_source_of(const tn_am_entry_t *e)
{
    return (tn_am_source_t)e->source;
}

/* Ranks the candidates through the policy and dials up to `need` of them: first those whose
 * network group and ASN (or country, with geoip_db) have no outbound peer yet, then those
 * with a new network group, then any. Returns the number of dials started. */
static int dial_some(tn_node_t *n, busy_t *b, cand_t *c, int k, int need, const char *why)
{
    static tn_policy_cand_t pc[TN_RANK_MAX];
    int dflt[TN_RANK_MAX], order[TN_RANK_MAX];
    uint64_t wall = tn_wall_ms();
    for (int i = 0; i < k; i++) {
        tn_am_entry_t *e = c[i].e;
        pc[i].addr = e->addr;
        pc[i].masternode = c[i].masternode;
        pc[i].source = tn_am_source_name(am_source_of(e));
        pc[i].failures = e->attempts;
        pc[i].last_success = (double)e->last_success / 1000.0;
        tn_geo_t geo;
        tn_geoip_lookup(n->disc->geo, &e->addr, &geo);
        pc[i].asn = geo.asn;
        memcpy(pc[i].country, geo.country, sizeof geo.country);
        /* the score the policy gives the node last seen there, from its stored quality */
        tn_peer_view_t v = {NULL, e->has_id ? tn_node_peer_find(n, e->id) : NULL, &e->addr,
                            e->has_id ? e->id : NULL};
        pc[i].score = e->has_id ? tn_policy_score(n->policy, &v) : 0;
    }
    int nd = default_rank(c, k, dflt);
    int m = tn_policy_rank_candidates(n->policy, pc, k, dflt, nd, order);
    int started = 0;
    for (int pass = 0; pass < 3 && started < need; pass++) {
        if (pass == 0 && !n->disc->geo) continue;
        for (int j = 0; j < m && started < need; j++) {
            tn_am_entry_t *e = c[order[j]].e;
            if (!e->used || busy_has(b, e)) continue;
            uint64_t g = tn_netgroup(&e->addr), geo = geo_key(n, &e->addr);
            if (pass < 2 && group_used(b, g)) continue;
            if (pass == 0 && (!geo || geo_used(b, geo))) continue;
            tn_addrman_attempt(n->disc->am, &e->addr, wall);
            tn_addr_t a = e->addr;
            int rc = tn_targets_dial(n, &a, false);
            if (rc == TN_ESELF) {
                tn_addrman_remove(n->disc->am, &a);
                continue;
            }
            if (rc != TN_OK) continue;
            char s[TN_ADDR_STRLEN];
            tn_addr_fmt(&a, s);
            tn_debug("Discovery: dialing %s (%s, from %s)", s, why,
                     tn_am_source_name(am_source_of(e)));
            b->addrs[b->n_addrs++] = a;
            qsort(b->addrs, (size_t)b->n_addrs, sizeof(tn_addr_t), cmp_addr);
            b->geos[b->n_groups] = geo;
            b->groups[b->n_groups++] = g;
            started++;
        }
    }
    return started;
}

/* ---- the round ---- */

static void note(tn_disc_t *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void note(tn_disc_t *d, int level, const char *fmt, ...)
{
    char buf[sizeof d->note];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (strcmp(buf, d->note) == 0) return; /* the same state again: said already */
    memcpy(d->note, buf, sizeof buf);
    if (buf[0]) tn_log(level, "%s", buf);
}

static void on_api_done(void *ud, const char *body, size_t len, const char *err);

typedef enum { SRC_DIALED, SRC_WAIT, SRC_EMPTY } src_result_t;

static void refresh_seeds(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    uint64_t wall = tn_wall_ms();
    tn_addr_t a;
    for (int i = 0; i < n->cfg->seeds.n; i++) {
        if (tn_addr_parse(n->cfg->seeds.v[i], &a) != TN_OK) continue;
        tn_addrman_add(d->am, &a, NULL, TN_AMSRC_SEED, NULL, wall, wall);
        tn_am_entry_t *e = tn_addrman_find(d->am, &a);
        if (e) e->fresh |= 1u << TN_DSRC_SEEDS;
    }
}

static bool exchange_waiting(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    if (uv_now(n->loop) >= d->pex_wait_until) return false;
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (s->peer && s->pex_awaiting) return true;
    return false;
}

static src_result_t try_source(tn_node_t *n, busy_t *b, tn_dsrc_t src, int need, int *dialed)
{
    tn_disc_t *d = n->disc;
    static cand_t c[TN_RANK_MAX];
    uint64_t now = uv_now(n->loop);
    if (src == TN_DSRC_SEEDS) refresh_seeds(n);
    if (src == TN_DSRC_API && tn_peerapi_busy(d->api)) return SRC_WAIT;
    if (src == TN_DSRC_EXCHANGE && exchange_waiting(n)) return SRC_WAIT;
    int k = gather(n, b, src, c);
    if (k > 0) {
        *dialed = dial_some(n, b, c, k, need, tn_dsrc_name(src));
        if (*dialed > 0) return SRC_DIALED;
    }
    if (src == TN_DSRC_API && n->cfg->peer_api_url[0] &&
        (!d->api_last_ms || now - d->api_last_ms >= tn_config_ms(n->cfg->peer_api_interval))) {
        if (!d->api && tn_peerapi_new(&d->api, n->loop) != TN_OK) return SRC_EMPTY;
        int rc = tn_peerapi_get(d->api, n->cfg->peer_api_url, n->cfg->peer_api_timeout,
                                (size_t)n->cfg->peer_api_max_bytes, on_api_done, n);
        d->api_last_ms = now;
        if (rc == TN_OK) return SRC_WAIT;
        on_api_done(n, NULL, 0, rc == TN_EINVAL ? "the URL is not http(s)" : "cannot start");
        return SRC_EMPTY;
    }
    if (src == TN_DSRC_EXCHANGE) {
        int asked = 0;
        for (tn_session_t *s = n->sessions; s; s = s->next)
            if (s->state == TN_SS_OPEN && s->peer) asked += tn_pex_ask(n, s);
        if (asked) {
            d->pex_wait_until = now + tn_config_ms(n->cfg->connection_timeout);
            return SRC_WAIT;
        }
    }
    return SRC_EMPTY;
}

static void round_(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    const tn_config_t *cfg = n->cfg;
    if (!d || !d->started || n->stopping || cfg->min_peers <= 0) return;
    int ord, dialing = 0;
    tn_disc_counts(n, &ord, NULL, NULL);
    for (tn_session_t *s = n->sessions; s; s = s->next)
        if (s->outbound && s->state != TN_SS_OPEN && s->state != TN_SS_CLOSING) dialing++;
    int need = (int)cfg->min_peers - ord - dialing;
    if (need <= 0) {
        if (ord >= cfg->min_peers)
            note(d, TN_LOG_DEBUG, "Discovery: %d peers, min_peers %lld", ord,
                 (long long)cfg->min_peers);
        return;
    }
    bool avail[TN_DSRC__COUNT];
    uint32_t fails[TN_DSRC__COUNT];
    bool any_session = false;
    for (tn_session_t *s = n->sessions; s && !any_session; s = s->next)
        any_session = s->state == TN_SS_OPEN && s->peer && s->hello;
    avail[TN_DSRC_SEEDS] = cfg->seeds.n > 0;
    avail[TN_DSRC_API] = cfg->peer_api_url[0] != 0;
    avail[TN_DSRC_EXCHANGE] = any_session;
    avail[TN_DSRC_CACHE] = tn_addrman_size(d->am) > 0;
    for (int i = 0; i < TN_DSRC__COUNT; i++) {
        d->src[i].available = avail[i];
        fails[i] = d->src[i].failures;
    }
    int order[TN_DSRC__COUNT];
    int k = tn_policy_discovery_order(n->policy, ord, (int)cfg->min_peers, DSRC_NAMES, avail, fails,
                                      TN_DSRC__COUNT, order);
    busy_t b;
    if (!busy_build(n, &b, TN_RANK_MAX)) {
        busy_free(&b);
        return;
    }
    char tried[64] = "";
    for (int j = 0; j < k; j++) {
        tn_dsrc_t src = (tn_dsrc_t)order[j];
        int dialed = 0;
        src_result_t r = try_source(n, &b, src, need, &dialed);
        if (r == SRC_WAIT) {
            note(d, TN_LOG_DEBUG, "Discovery: waiting for %s", tn_dsrc_name(src));
            busy_free(&b);
            return;
        }
        d->src[src].rounds++;
        tn_metric_inc(tn_metric_counterf("Discovery rounds by source and outcome",
                                         "tn_discovery_rounds_total{source=\"%s\",result=\"%s\"}",
                                         tn_dsrc_name(src), r == SRC_DIALED ? "dialed" : "empty"));
        if (r == SRC_DIALED) {
            d->src[src].failures = 0;
            d->src[src].dials += (uint64_t)dialed;
            tn_metric_add(tn_metric_counterf("Dials started by discovery, by source",
                                             "tn_discovery_dials_total{source=\"%s\"}",
                                             tn_dsrc_name(src)),
                          dialed);
            d->note[0] = 0; /* a new state: the next "nothing" is worth a line again */
            tn_info("Discovery: %d peers of min_peers %lld; dialing %d from %s%s%s%s", ord,
                    (long long)cfg->min_peers, dialed, tn_dsrc_name(src),
                    tried[0] ? " (nothing from " : "", tried, tried[0] ? ")" : "");
            busy_free(&b);
            return;
        }
        d->src[src].failures++;
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", tn_dsrc_name(src));
    }
    if (strlen(tried) + 2 < sizeof tried) strcat(tried, ")");
    busy_free(&b);
    note(d, TN_LOG_INFO, "Discovery: %d peers of min_peers %lld; no address to dial (%s%s", ord,
         (long long)cfg->min_peers, k ? "tried " : "no source", k ? tried : ")");
}

/* Masternodes keep a session with every active masternode whose address they know (seed
 * §23); the address comes from the table (an id seen there by us, or a peer's hint — the
 * handshake proves it either way). */
static void masternode_dials(tn_node_t *n)
{
    tn_chain_t *c = n->chain;
    tn_disc_t *d = n->disc;
    if (!c || !tn_chain_is_masternode(n, n->id)) return;
    busy_t b;
    if (!busy_build(n, &b, c->n_masternodes)) {
        busy_free(&b);
        return;
    }
    uint64_t wall = tn_wall_ms();
    for (int i = 0; i < c->n_masternodes; i++) {
        const uint8_t *id = c->masternodes[i];
        if (memcmp(id, n->id, 32) == 0) continue;
        if (bsearch(id, b.ids, (size_t)b.n_ids, 32, cmp_id)) continue;
        tn_am_entry_t *e = tn_addrman_find_id(d->am, id);
        if (!e || !dialable(n, &b, e, wall)) continue;
        tn_addr_t a = e->addr;
        tn_addrman_attempt(d->am, &a, wall);
        if (tn_targets_dial(n, &a, false) == TN_OK) {
            char s[TN_ADDR_STRLEN], sid[9];
            tn_addr_fmt(&a, s);
            tn_info("Dialing masternode %s at %s (seed §23: a session with every masternode)",
                    tn_node_short_id(id, sid), s);
            b.addrs[b.n_addrs++] = a;
            qsort(b.addrs, (size_t)b.n_addrs, sizeof(tn_addr_t), cmp_addr);
        }
    }
    busy_free(&b);
}

static void on_kick(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    n->disc->kicked = false;
    round_(n);
}

void tn_disc_kick(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    if (!d || !d->started || d->kicked || n->stopping || n->cfg->min_peers <= 0) return;
    d->kicked = true;
    uv_timer_start(&d->kick, on_kick, 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    tn_node_t *n = t->data;
    tn_disc_t *d = n->disc;
    uint64_t every = tn_config_ms(n->cfg->discovery_interval);
    if (uv_timer_get_repeat(t) != every) { /* changed by a config reload */
        uv_timer_set_repeat(t, every);
        uv_timer_again(t);
    }
    d->am->horizon_ms = tn_config_ms(n->cfg->addr_max_age);
    uint64_t now = uv_now(n->loop);
    if (now - d->last_sweep_ms >= SWEEP_MS) {
        d->last_sweep_ms = now;
        int gone = tn_addrman_sweep(d->am, tn_wall_ms());
        if (gone) tn_debug("Address table: %d addresses aged out", gone);
    }
    tn_evict_trim(n);
    if (n->cfg->min_peers <= 0) return;
    masternode_dials(n);
    round_(n);
}

/* ---- the peer API answer ---- */

static void on_api_done(void *ud, const char *body, size_t len, const char *err)
{
    tn_node_t *n = ud;
    static tn_api_peer_t peers[TN_PEX_MAX];
    char why[300] = "";
    int k = 0;
    if (err)
        snprintf(why, sizeof why, "%s", err);
    else if ((k = tn_peerapi_parse(body, len, peers, TN_PEX_MAX, why, sizeof why)) < 0)
        k = 0;
    else
        why[0] = 0;
    if (why[0]) {
        tn_disc_api_result(n, NULL, NULL, NULL, -1, why);
        return;
    }
    static tn_addr_t addrs[TN_PEX_MAX];
    static uint8_t ids[TN_PEX_MAX][32];
    static bool has[TN_PEX_MAX];
    for (int i = 0; i < k; i++) {
        addrs[i] = peers[i].addr;
        memcpy(ids[i], peers[i].id, 32);
        has[i] = peers[i].has_id;
    }
    tn_disc_api_result(n, addrs, (const uint8_t(*)[32])ids, has, k, NULL);
}

void tn_disc_api_result(tn_node_t *n, const tn_addr_t *addrs, const uint8_t (*ids)[32],
                        const bool *has_id, int count, const char *err)
{
    tn_disc_t *d = n->disc;
    static char last_err[300];
    if (!d || n->stopping) return;
    if (err) {
        tn_metric_inc(tn_metric_counter("tn_peer_api_requests_total{result=\"ignored\"}",
                                        "Peer API requests by result"));
        /* One line per kind of failure, not one per request: an API that stays down (or
         * hostile) is said once until it changes. */
        if (strcmp(last_err, err) != 0) {
            snprintf(last_err, sizeof last_err, "%s", err);
            tn_warn("Peer API answer ignored: %s (%s)", err, n->cfg->peer_api_url);
        }
        tn_disc_kick(n);
        return;
    }
    last_err[0] = 0;
    tn_metric_inc(tn_metric_counter("tn_peer_api_requests_total{result=\"ok\"}",
                                    "Peer API requests by result"));
    uint64_t wall = tn_wall_ms();
    int added = 0, dropped = 0, full = 0;
    for (int i = 0; i < count; i++) {
        if (!tn_disc_learnable(n, &addrs[i]) || tn_addr_eq(&addrs[i], &n->listen_addr)) {
            dropped++;
            continue;
        }
        int rc = tn_addrman_add(d->am, &addrs[i], has_id[i] ? ids[i] : NULL, TN_AMSRC_API, NULL,
                                wall, wall);
        if (rc == TN_ENOMEM) {
            full++;
            continue;
        }
        added += rc == TN_OK;
        tn_am_entry_t *e = tn_addrman_find(d->am, &addrs[i]);
        if (e) e->fresh |= 1u << TN_DSRC_API;
    }
    tn_info("Peer API: %d addresses (%d new, %d dropped as not routable%s)", count, added, dropped,
            full ? ", some buckets full" : "");
    tn_metric_add(tn_metric_counter("tn_peer_api_addresses_dropped_total",
                                    "Peer API addresses dropped as not routable"),
                  dropped);
    tn_disc_kick(n);
}

/* ---- session events ---- */

void tn_disc_on_open(tn_node_t *n, tn_session_t *s)
{
    tn_disc_t *d = n->disc;
    if (!d) return;
    tn_quality_on_open(n, s);
    if (s->outbound)
        tn_addrman_good(d->am, &s->remote, s->their_id, TN_AMSRC_OUTBOUND, tn_wall_ms());
}

void tn_disc_on_hello(tn_node_t *n, tn_session_t *s)
{
    tn_disc_t *d = n->disc;
    if (!d) return;
    if (!s->outbound && s->their_port) {
        /* Its own listen address: a new address for others to try; reachable or not, only a
         * dial will tell (it goes to "tried" when one of ours succeeds). */
        tn_addr_t a = s->remote, src = s->remote;
        a.port = s->their_port;
        src.port = 0;
        uint64_t wall = tn_wall_ms();
        if (tn_disc_learnable(n, &a))
            tn_addrman_add(d->am, &a, s->their_id, TN_AMSRC_INBOUND, &src, wall, wall);
    }
    /* Outbound peers are asked for addresses once (Bitcoin Core asks its outbound peers
     * only: inbound ones could be anyone feeding us addresses). */
    if (s->outbound && n->cfg->min_peers > 0) tn_pex_ask(n, s);
}

void tn_disc_on_close(tn_node_t *n, tn_session_t *s, bool was_open, const char *why)
{
    tn_disc_t *d = n->disc;
    if (!d) return;
    bool active = was_open && s->peer != NULL;
    if (active) tn_quality_on_close(n, s);
    if (n->stopping) return;
    if (s->outbound && !was_open) {
        /* A failed dial: when to try the address again is the reconnect hook's decision. */
        tn_am_entry_t *e = tn_addrman_find(d->am, &s->remote);
        if (e) {
            uint64_t wall = tn_wall_ms();
            bool gave_up = false;
            tn_peer_view_t v = {NULL, e->has_id ? tn_node_peer_find(n, e->id) : NULL, &e->addr,
                                e->has_id ? e->id : NULL};
            uint64_t ms = tn_policy_reconnect_ms(n->policy, &v, e->attempts + 1, why, &gave_up);
            tn_addrman_failed(d->am, &e->addr, wall, wall + ms);
            if (e->has_id) tn_quality_on_dial_failed(n, e->id, &e->addr);
        }
    }
    tn_disc_kick(n);
}

/* ---- lifecycle ---- */

int tn_disc_start(tn_node_t *n)
{
    tn_disc_t *d = calloc(1, sizeof(*d));
    if (!d) return TN_ENOMEM;
    d->n = n;
    d->am = tn_addrman_new(tn_config_ms(n->cfg->addr_max_age));
    if (!d->am || tn_idmap_init(&d->quality, 256) != TN_OK) {
        tn_addrman_free(d->am);
        free(d);
        return TN_ENOMEM;
    }
    n->disc = d;
    d->am->on_change = on_am_change;
    d->am->ud = n;
    d->started_wall_ms = tn_wall_ms();
    if (n->cfg->geoip_db[0]) {
        char err[300];
        if (tn_geoip_open(&d->geo, n->cfg->geoip_db, err, sizeof err) == TN_OK)
            tn_info("GeoIP: %s (%s): outbound dials prefer distinct ASNs or countries",
                    n->cfg->geoip_db, tn_geoip_type(d->geo));
        else
            tn_error("GeoIP off: %s", err);
    }
    load_ctx_t lc = {n, 0, 0};
    if (n->store) {
        d->loading = true;
        tn_store_query(n->store,
                       "SELECT addr,node_id,source,src,first_seen,last_seen,last_try,"
                       "last_success,successes,failures,attempts,tried,anchor,id_verified FROM "
                       "peers ORDER BY tried DESC, last_success DESC, last_seen DESC",
                       load_row, &lc);
        d->loading = false;
        tn_quality_load(n);
    }
    uv_timer_init(n->loop, &d->timer);
    uv_timer_init(n->loop, &d->kick);
    d->timer.data = d->kick.data = n;
    uint64_t every = tn_config_ms(n->cfg->discovery_interval);
    uv_timer_start(&d->timer, on_timer, every, every);
    d->last_sweep_ms = uv_now(n->loop);
    d->started = true;
    if (lc.loaded || lc.dropped)
        tn_info("Address table: %d addresses from the store (%d tried)%s", lc.loaded,
                d->am->n_tried, lc.dropped ? ", some dropped (no room or unusable)" : "");
    if (n->cfg->min_peers <= 0) return TN_OK;
    /* Anchors first (Bitcoin Core's anchors): the outbound peers of the last run were
     * chosen and worked; dialing them before anything else resists being steered. */
    tn_am_entry_t *e;
    for (int i = -1; (e = tn_addrman_next(d->am, &i));) {
        if (!e->anchor) continue;
        e->anchor = false;
        tn_addrman_touch(d->am, e);
        tn_addr_t a = e->addr;
        char s[TN_ADDR_STRLEN];
        tn_addr_fmt(&a, s);
        if (tn_targets_dial(n, &a, false) == TN_OK) {
            tn_addrman_attempt(d->am, &a, tn_wall_ms());
            tn_info("Dialing anchor %s (an outbound peer at the last shutdown)", s);
            tn_metric_inc(tn_metric_counter("tn_anchors_dialed_total", "Anchor dials at start"));
        }
    }
    tn_disc_kick(n);
    return TN_OK;
}

void tn_disc_stop(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    if (!d || !d->started) return;
    d->started = false;
    /* The outbound peers now become the anchors of the next start. */
    tn_am_entry_t *e;
    for (int i = -1; (e = tn_addrman_next(d->am, &i));)
        if (e->anchor) {
            e->anchor = false;
            tn_addrman_touch(d->am, e);
        }
    int anchors = 0;
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (!s->outbound || !s->peer || !s->hello) continue;
        if ((e = tn_addrman_find(d->am, &s->remote))) {
            e->anchor = true;
            tn_addrman_touch(d->am, e);
            anchors++;
        }
    }
    if (anchors) tn_debug("Address table: %d anchors saved", anchors);
    uv_close((uv_handle_t *)&d->timer, NULL);
    uv_close((uv_handle_t *)&d->kick, NULL);
    tn_peerapi_close(d->api);
    d->api = NULL;
}

void tn_disc_free(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    if (!d) return;
    tn_quality_free(n);
    tn_geoip_close(d->geo);
    tn_addrman_free(d->am);
    free(d);
    n->disc = NULL;
}

/* ---- metrics and the `addrs` verb ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void tn_disc_collect(tn_node_t *n)
{
    tn_disc_t *d = n->disc;
    if (!d) return;
    tn_addrman_t *am = d->am;
    tn_metric_set(tn_metric_gauge("tn_addrman_addresses{table=\"new\"}",
                                  "Addresses in the address table (bound tn_addrman_capacity)"),
                  am->n_new);
    tn_metric_set(tn_metric_gauge("tn_addrman_addresses{table=\"tried\"}", NULL), am->n_tried);
    tn_metric_set(tn_metric_gauge("tn_addrman_capacity", "Bound of the address table"), TN_AM_MAX);
    const char *h = "Address table changes: learned, dropped (bucket full), evicted, aged out";
    tn_metric_set(tn_metric_counter("tn_addrman_changes_total{change=\"added\"}", h),
                  (double)am->added);
    tn_metric_set(tn_metric_counter("tn_addrman_changes_total{change=\"dropped\"}", h),
                  (double)am->dropped_full);
    tn_metric_set(tn_metric_counter("tn_addrman_changes_total{change=\"evicted_new\"}", h),
                  (double)am->evicted_new);
    tn_metric_set(tn_metric_counter("tn_addrman_changes_total{change=\"evicted_tried\"}", h),
                  (double)am->evicted_tried);
    tn_metric_set(tn_metric_counter("tn_addrman_changes_total{change=\"aged_out\"}", h),
                  (double)am->aged_out);
    tn_metric_set(tn_metric_gauge("tn_peer_quality_records", "Peer quality records in memory"),
                  d->n_quality);
    int ord, mn;
    tn_disc_counts(n, &ord, &mn, NULL);
    tn_metric_set(tn_metric_gauge("tn_peers_ordinary", "Ordinary peers (bound max_peers)"), ord);
    tn_metric_set(tn_metric_gauge("tn_peers_masternode_slots",
                                  "Masternode sessions in reserved slots (bound masternode_slots)"),
                  mn);
    /* Scores of the established peers: min, median, max (one series per peer would not fit
     * a bounded registry). */
    double scores[512];
    int k = 0;
    for (tn_session_t *s = n->sessions; s && k < 512; s = s->next)
        if (s->peer && s->hello) scores[k++] = s->score;
    qsort(scores, (size_t)k, sizeof(double), cmp_double);
    const char *sh = "Scores of the established peers (score hook)";
    tn_metric_set(tn_metric_gauge("tn_peer_score{stat=\"min\"}", sh), k ? scores[0] : 0);
    tn_metric_set(tn_metric_gauge("tn_peer_score{stat=\"median\"}", sh), k ? scores[k / 2] : 0);
    tn_metric_set(tn_metric_gauge("tn_peer_score{stat=\"max\"}", sh), k ? scores[k - 1] : 0);
}

int tn_ctl_v_addrs(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_disc_t *d = n->disc;
    if (!d) return tn_ctl_error(r, "discovery is not running");
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
    int limit = cJSON_IsNumber(lim) ? (int)lim->valuedouble : 100;
    if (limit < 0) limit = 0;
    cJSON_AddNumberToObject(r, "new", d->am->n_new);
    cJSON_AddNumberToObject(r, "tried", d->am->n_tried);
    cJSON_AddNumberToObject(r, "capacity", TN_AM_MAX);
    cJSON *srcs = cJSON_AddObjectToObject(r, "sources");
    for (int i = 0; i < TN_DSRC__COUNT; i++) {
        cJSON *o = cJSON_AddObjectToObject(srcs, DSRC_NAMES[i]);
        cJSON_AddBoolToObject(o, "available", d->src[i].available);
        cJSON_AddNumberToObject(o, "failures", d->src[i].failures);
        cJSON_AddNumberToObject(o, "rounds", (double)d->src[i].rounds);
        cJSON_AddNumberToObject(o, "dials", (double)d->src[i].dials);
    }
    cJSON *list = cJSON_AddArrayToObject(r, "addrs");
    uint64_t wall = tn_wall_ms();
    tn_am_entry_t *e;
    int k = 0;
    for (int i = -1; k < limit && (e = tn_addrman_next(d->am, &i)); k++) {
        cJSON *o = cJSON_CreateObject();
        char a[TN_ADDR_STRLEN], id[65];
        tn_addr_fmt(&e->addr, a);
        cJSON_AddStringToObject(o, "addr", a);
        cJSON_AddStringToObject(o, "source", tn_am_source_name(am_source_of(e)));
        if (!tn_addr_is_any(&e->src)) {
            tn_addr_fmt_ip(&e->src, a);
            cJSON_AddStringToObject(o, "from", a);
        }
        if (e->has_id) {
            tn_hex(id, e->id, 32);
            cJSON_AddStringToObject(o, "id", id);
            cJSON_AddBoolToObject(o, "id_verified", e->id_verified);
        }
        cJSON_AddBoolToObject(o, "tried", e->tried);
        if (e->anchor) cJSON_AddBoolToObject(o, "anchor", true);
        cJSON_AddNumberToObject(o, "attempts", e->attempts);
        cJSON_AddNumberToObject(o, "successes", e->successes);
        cJSON_AddNumberToObject(o, "failures", e->failures);
        cJSON_AddNumberToObject(o, "last_seen_s",
                                e->last_seen ? (double)(wall - e->last_seen) / 1000.0 : -1);
        cJSON_AddNumberToObject(o, "last_success_s",
                                e->last_success ? (double)(wall - e->last_success) / 1000.0 : -1);
        cJSON_AddItemToArray(list, o);
    }
    return 0;
}
