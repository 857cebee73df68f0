/* Session limits (seed §10 Peer Limits, §23 Masternode Peer Priority): at most max_peers
 * ordinary peers; sessions with active masternodes (proven by the handshake: an
 * authenticated key in the configured set) use up to masternode_slots reserved slots beyond
 * that. A newcomer at full slots gets in only if the evict hook picks a worse connection to
 * close; a masternode is never closed to make room. The C default protects like
 * policies/eviction.lua: peers alone in their network group, the fastest, the longest
 * connected, our outbound choices; then the lowest score goes. */
#include "tn_chain.h"
#include "tn_disc.h"
#include "tn_log.h"
#include "tn_metrics.h"

#include <stdio.h>
#include <stdlib.h>

#define PROTECT_GROUPS 4       /* eviction.lua: seed §21, peers alone in their network group */
#define PROTECT_FASTEST 4      /* seed §9 response time */
#define PROTECT_LONGEST 4      /* seed §2 persistent connections */
#define EVICT_HANDSHAKES_MAX 8 /* inbound handshakes at once when every slot is taken */

bool tn_disc_is_masternode(tn_node_t *n, const tn_session_t *s)
{
    return s->state == TN_SS_OPEN && tn_chain_is_masternode(n, s->their_id);
}

void tn_disc_counts(tn_node_t *n, int *ordinary, int *masternodes, int *outbound)
{
    int ord = 0, mn = 0, out = 0;
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (!s->peer) continue;
        if (tn_disc_is_masternode(n, s) && mn < n->cfg->masternode_slots) {
            mn++;
            continue;
        }
        ord++;
        out += s->outbound;
    }
    if (ordinary) *ordinary = ord;
    if (masternodes) *masternodes = mn;
    if (outbound) *outbound = out;
}

bool tn_evict_accept_ok(tn_node_t *n)
{
    /* Slots are judged after the handshake (only then is a masternode known), so a
     * handshake may start while ordinary slots are full: eviction decides in on_open.
     * With every slot taken, a few handshakes at a time may still compete for eviction. */
    if (n->n_open < n->cfg->max_peers + n->cfg->masternode_slots) return true;
    return n->n_inbound_pending < EVICT_HANDSHAKES_MAX;
}

static double age_s(tn_node_t *n, const tn_session_t *s)
{
    return (double)(uv_now(n->loop) - s->opened_ms) / 1000.0;
}

/* Marks up to k of the not yet protected entries satisfying ok, best first by before(). */
typedef bool (*ok_fn)(tn_node_t *, tn_session_t *const *, int, int);
typedef bool (*before_fn)(tn_node_t *, const tn_session_t *, const tn_session_t *);

static void protect(tn_node_t *n, tn_session_t *const *l, const bool *closable, int k, bool *kept,
                    int quota, ok_fn ok, before_fn before)
{
    for (int q = 0; q < quota; q++) {
        int best = -1;
        for (int i = 0; i < k; i++) {
            if (kept[i] || !closable[i] || !ok(n, l, k, i)) continue;
            if (best < 0 || before(n, l[i], l[best])) best = i;
        }
        if (best < 0) return;
        kept[best] = true;
    }
}

static int group_count(tn_session_t *const *l, int k, int i)
{
    uint64_t g = tn_netgroup(&l[i]->remote);
    int c = 0;
    for (int j = 0; j < k; j++) c += tn_netgroup(&l[j]->remote) == g;
    return c;
}

static bool ok_alone(tn_node_t *n, tn_session_t *const *l, int k, int i)
{
    (void)n;
    return group_count(l, k, i) == 1;
}
static bool ok_ponged(tn_node_t *n, tn_session_t *const *l, int k, int i)
{
    (void)n, (void)k;
    return l[i]->pongs > 0;
}
static bool ok_any(tn_node_t *n, tn_session_t *const *l, int k, int i)
{
    (void)n, (void)l, (void)k, (void)i;
    return true;
}
static bool ok_outbound(tn_node_t *n, tn_session_t *const *l, int k, int i)
{
    (void)n, (void)k;
    return l[i]->outbound;
}
static bool by_addr(const tn_session_t *a, const tn_session_t *b)
{
    return memcmp(&a->remote, &b->remote, sizeof a->remote) < 0;
}
static bool higher_score(tn_node_t *n, const tn_session_t *a, const tn_session_t *b)
{
    (void)n;
    return a->score != b->score ? a->score > b->score : by_addr(a, b);
}
static bool faster(tn_node_t *n, const tn_session_t *a, const tn_session_t *b)
{
    (void)n;
    return a->rtt_ms != b->rtt_ms ? a->rtt_ms < b->rtt_ms : by_addr(a, b);
}
static bool older(tn_node_t *n, const tn_session_t *a, const tn_session_t *b)
{
    double x = age_s(n, a), y = age_s(n, b);
    return x != y ? x > y : by_addr(a, b);
}

/* The C default: -1 when every closable connection is protected. */
static int default_victim(tn_node_t *n, tn_session_t *const *l, const bool *closable, int k)
{
    bool *kept = calloc((size_t)k + 1, sizeof(bool));
    if (!kept) return -1;
    protect(n, l, closable, k, kept, PROTECT_GROUPS, ok_alone, higher_score);
    protect(n, l, closable, k, kept, PROTECT_FASTEST, ok_ponged, faster);
    protect(n, l, closable, k, kept, PROTECT_LONGEST, ok_any, older);
    protect(n, l, closable, k, kept, (int)n->cfg->min_peers, ok_outbound, higher_score);
    int v = -1;
    for (int i = 0; i < k; i++) {
        if (kept[i] || !closable[i]) continue;
        if (v < 0) {
            v = i;
            continue;
        }
        const tn_session_t *a = l[i], *b = l[v];
        int ga = group_count(l, k, i), gb = group_count(l, k, v);
        double aa = age_s(n, a), ab = age_s(n, b);
        if (a->score != b->score ? a->score < b->score
            : ga != gb           ? ga > gb
            : aa != ab           ? aa < ab
                                 : by_addr(a, b))
            v = i;
    }
    free(kept);
    return v;
}

/* Picks the session to close for `newcomer` (NULL when trimming), or NULL. */
static tn_session_t *choose(tn_node_t *n, tn_session_t *newcomer, const char *reason, bool force)
{
    int cap = 0;
    for (tn_session_t *s = n->sessions; s; s = s->next) cap++;
    tn_session_t **l = malloc(sizeof(*l) * (size_t)(cap + 1));
    bool *closable = malloc(sizeof(bool) * (size_t)(cap + 1));
    if (!l || !closable) {
        free(l);
        free(closable);
        return NULL;
    }
    int k = 0;
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (s == newcomer || !s->peer || s->state != TN_SS_OPEN) continue;
        /* the scores the hook compares must be current, not up to a tick old */
        tn_peer_view_t v = tn_node_view(n, s, NULL);
        s->score = tn_policy_score(n->policy, &v);
        closable[k] = !tn_disc_is_masternode(n, s);
        l[k++] = s;
    }
    int dflt = default_victim(n, l, closable, k);
    if (dflt < 0 && force) /* over the limit: someone goes even if protected */
        for (int i = 0; i < k; i++)
            if (closable[i] && (dflt < 0 || l[i]->score < l[dflt]->score)) dflt = i;
    int pick = tn_policy_evict(n->policy, l, closable, k, newcomer, reason, dflt);
    if (pick < 0 && force) pick = dflt;
    tn_session_t *victim = pick >= 0 ? l[pick] : NULL;
    free(l);
    free(closable);
    return victim;
}

static void evict(tn_node_t *n, tn_session_t *v, const char *why)
{
    char a[TN_ADDR_STRLEN];
    tn_addr_fmt_ip(&v->remote, a);
    tn_metric_inc(tn_metric_counterf("Connections closed to keep within the peer limits",
                                     "tn_evictions_total{reason=\"%s\"}", why));
    tn_info("Evicting %s (%s, score %.1f, connected %.0f s): %s", a,
            v->outbound ? "outbound" : "inbound", v->score, age_s(n, v),
            strcmp(why, "over_limit") == 0 ? "over max_peers" : "slots full for a new peer");
    v->quiet = true; /* the line above explains the close */
    tn_session_close(v, TN_CLOSE_LOCAL, "evicted");
}

bool tn_evict_admit(tn_node_t *n, tn_session_t *s)
{
    if (n->stopping) return false;
    int ord, mn;
    tn_disc_counts(n, &ord, &mn, NULL);
    bool is_mn = tn_chain_is_masternode(n, s->their_id);
    if (is_mn && mn < n->cfg->masternode_slots) return true;
    if (ord < n->cfg->max_peers) return true;
    const char *reason = s->outbound ? "outbound" : "inbound";
    tn_session_t *v = choose(n, s, reason, false);
    char a[TN_ADDR_STRLEN];
    tn_addr_fmt_ip(&s->remote, a);
    if (!v) {
        if (!s->outbound)
            tn_metric_inc(tn_metric_counter("tn_inbound_refused_total{reason=\"slots\"}", NULL));
        tn_debug("No slot for %s (%s): %d ordinary peers, max_peers %lld, and the evict policy "
                 "keeps them all",
                 a, reason, ord, (long long)n->cfg->max_peers);
        return false;
    }
    evict(n, v, reason);
    return true;
}

void tn_evict_trim(tn_node_t *n)
{
    for (int guard = 0; guard < 1000; guard++) {
        int ord;
        tn_disc_counts(n, &ord, NULL, NULL);
        if (ord <= n->cfg->max_peers) return;
        tn_session_t *v = choose(n, NULL, "over_limit", true);
        if (!v) return;
        evict(n, v, "over_limit");
    }
}
