/* Misbehaviour: counted per IP and kind, one log line per event (repeats fold in the log),
 * then judged by the on_misbehavior hook (policies/bans.lua) and the verdict enforced. */
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <stdio.h>
#include <stdlib.h>

static const char *NAMES[TN_MIS__COUNT] = {"magic",   "version",     "handshake", "frame",
                                           "message", "connections", "flood"};
static const char *TEXT[TN_MIS__COUNT] = {
    "Wrong network magic", "Incompatible protocol version", "Handshake failed", "Invalid frame",
    "Invalid message",     "Too many connection attempts",  "Message flood"};

const char *tn_misbehavior_name(tn_misbehavior_t kind)
{
    return NAMES[kind];
}

static tn_strike_t *entry(tn_node_t *n, const tn_addr_t *a)
{
    for (int i = 0; i < n->n_strikes; i++)
        if (tn_addr_same_ip(&n->strikes[i].ip, a)) return &n->strikes[i];
    if (!n->strikes) {
        n->strikes = calloc(TN_STRIKES_MAX, sizeof(tn_strike_t));
        if (!n->strikes) return NULL;
    }
    tn_strike_t *e;
    if (n->n_strikes < TN_STRIKES_MAX) {
        e = &n->strikes[n->n_strikes++];
    } else { /* forget the IP seen least recently */
        e = &n->strikes[0];
        for (int i = 1; i < n->n_strikes; i++)
            if (n->strikes[i].last_ms < e->last_ms) e = &n->strikes[i];
    }
    memset(e, 0, sizeof(*e));
    e->ip = *a;
    e->ip.port = 0;
    return e;
}

uint32_t tn_strikes_total(tn_node_t *n, const tn_addr_t *a)
{
    for (int i = 0; i < n->n_strikes; i++)
        if (tn_addr_same_ip(&n->strikes[i].ip, a)) {
            uint32_t t = 0;
            for (int k = 0; k < TN_MIS__COUNT; k++) t += n->strikes[i].count[k];
            return t;
        }
    return 0;
}

tn_verdict_action_t tn_misbehaved(tn_node_t *n, tn_session_t *s, const tn_addr_t *a,
                                  tn_misbehavior_t kind, const char *detail)
{
    char ip[TN_ADDR_STRLEN];
    tn_addr_fmt_ip(a, ip);
    tn_metric_inc(tn_metric_counterf("Misbehaviour events by kind", "tn_strikes_total{kind=\"%s\"}",
                                     NAMES[kind]));
    tn_strike_t *e = entry(n, a);
    uint32_t c = e ? ++e->count[kind] : 1;
    if (e) e->last_ms = uv_now(n->loop);
    tn_warn("%s from %s: %s (strike %u)", TEXT[kind], ip, detail, c);
    if (s && s->state == TN_SS_CLOSING) s = NULL; /* its close is already under way */
    tn_peer_view_t v = tn_node_view(n, s, a);
    tn_verdict_t verdict = tn_policy_misbehavior(n->policy, &v, NAMES[kind], detail, c);
    if (verdict.action == TN_VERDICT_BAN && !tn_node_whitelisted(n, a)) {
        char reason[96];
        snprintf(reason, sizeof reason, "%s x%u", NAMES[kind], c);
        tn_bans_add(n, a, verdict.ban_s, reason); /* closes the IP's sessions */
    } else if (verdict.action != TN_VERDICT_IGNORE && s) {
        s->quiet = true; /* the line above is the verdict's one line */
        tn_session_close(s, TN_CLOSE_LOCAL, "disconnected for misbehaviour");
    }
    return verdict.action;
}

void tn_strikes_free(tn_node_t *n)
{
    free(n->strikes);
    n->strikes = NULL;
    n->n_strikes = 0;
}
