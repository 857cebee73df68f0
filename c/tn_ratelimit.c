/* Per-peer token buckets per message class (see tn_limits.h): the check every message of an
 * established session passes before it is handled. O(1), no allocation, no Lua: a dropped
 * message is counted, and a class over its limit is reported to the bans policy (kind
 * "flood") at most once a second per session, with what was dropped since the last report. */
#include "tn_limits.h"

#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_proto.h"

#include <stdio.h>

static const char *const NAMES[TN_RC__COUNT] = {"control",   "heartbeat", "addresses",
                                                "inventory", "blocks",    "custom"};

/* Core types by class; a core type missing here is control (index 0). */
static const uint8_t CLASS_OF[0x40] = {
    [TN_MSG_PING] = TN_RC_HEARTBEAT,     [TN_MSG_PONG] = TN_RC_HEARTBEAT,
    [TN_MSG_INV] = TN_RC_INVENTORY,      [TN_MSG_GETDATA] = TN_RC_INVENTORY,
    [TN_MSG_NOTFOUND] = TN_RC_INVENTORY, [TN_MSG_TX] = TN_RC_INVENTORY,
    [TN_MSG_BLOCK] = TN_RC_BLOCKS,       [TN_MSG_GET_BLOCKS] = TN_RC_BLOCKS,
    [TN_MSG_BLOCKS] = TN_RC_BLOCKS,      [TN_MSG_GET_PEERS] = TN_RC_ADDRESSES,
    [TN_MSG_PEERS] = TN_RC_ADDRESSES,
};

static tn_metric_t *DROPPED[TN_RC__COUNT];

tn_rate_class_t tn_rate_class(uint16_t type)
{
    if (type >= TN_MSG_EXPERIMENT_FIRST) return TN_RC_CUSTOM;
    return type < TN_ARRAY_LEN(CLASS_OF) ? (tn_rate_class_t)CLASS_OF[type] : TN_RC_CONTROL;
}

const char *tn_rate_class_name(tn_rate_class_t c)
{
    return (unsigned)c < TN_RC__COUNT ? NAMES[c] : "?";
}

uint32_t tn_rate_cost(uint16_t type, const uint8_t *payload, uint32_t len)
{
    if ((type == TN_MSG_INV || type == TN_MSG_GETDATA || type == TN_MSG_NOTFOUND) && len >= 2) {
        uint32_t ids = tn_get_u16(payload);
        return ids ? ids : 1;
    }
    return 1;
}

double tn_bucket_level(tn_bucket_t *b, double rate_per_ms, double burst, uint64_t now_ms)
{
    if (b->last_ms == 0) {
        b->tokens = burst;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate_per_ms;
        if (b->tokens > burst) b->tokens = burst;
    }
    if (now_ms > b->last_ms) b->last_ms = now_ms;
    return b->tokens;
}

bool tn_bucket_take(tn_bucket_t *b, double rate_per_ms, double burst, uint64_t now_ms, double cost)
{
    if (tn_bucket_level(b, rate_per_ms, burst, now_ms) < 1) return false; /* a whole token */
    b->tokens -= cost;
    return true;
}

static void report(tn_node_t *n, tn_session_t *s, tn_rate_class_t c, uint64_t now)
{
    tn_limits_t *l = n->limits;
    tn_peer_limits_t *pl = &s->lim;
    char d[160];
    snprintf(d, sizeof d, "%s messages over %.0f per %g s: %u %s dropped", NAMES[c], l->burst[c],
             l->period_s[c], pl->dropped[c], c == TN_RC_INVENTORY ? "ids" : "messages");
    pl->dropped[c] = 0;
    pl->next_report_ms[c] = now + TN_RATE_REPORT_MS;
    tn_misbehaved(n, s, &s->remote, TN_MIS_FLOOD, d);
}

bool tn_rate_admit(tn_node_t *n, tn_session_t *s, uint16_t type, const uint8_t *payload,
                   uint32_t len)
{
    tn_limits_t *l = n->limits;
    tn_rate_class_t c = tn_rate_class(type);
    if (!l || l->rate[c] <= 0) return true;
    uint32_t cost = tn_rate_cost(type, payload, len);
    uint64_t now = uv_now(n->loop);
    tn_peer_limits_t *pl = &s->lim;
    if (tn_bucket_take(&pl->bucket[c], l->rate[c], l->burst[c], now, cost)) return true;
    tn_metric_inc(DROPPED[c]);
    pl->dropped[c] += cost;
    if (now >= pl->next_report_ms[c]) report(n, s, c, now);
    return false;
}

/* ---- configuration ---- */

static const tn_numlist_t *class_key(const tn_config_t *cfg, tn_rate_class_t c)
{
    switch (c) {
    case TN_RC_CONTROL:
        return &cfg->rate_control;
    case TN_RC_HEARTBEAT:
        return &cfg->rate_heartbeat;
    case TN_RC_ADDRESSES:
        return &cfg->rate_addresses;
    case TN_RC_INVENTORY:
        return &cfg->rate_inventory;
    case TN_RC_BLOCKS:
        return &cfg->rate_blocks;
    default:
        return &cfg->rate_custom;
    }
}

/* Called by tn_limits_configure: { count, seconds } per class (validated by the loader). */
void tn_ratelimit_configure(tn_limits_t *l, const tn_config_t *cfg)
{
    for (int c = 0; c < TN_RC__COUNT; c++) {
        if (!DROPPED[c])
            DROPPED[c] = tn_metric_counterf("Messages dropped by the per-peer rate limit, by class",
                                            "tn_rate_dropped_total{class=\"%s\"}", NAMES[c]);
        const tn_numlist_t *k = class_key(cfg, (tn_rate_class_t)c);
        double count = k->n >= 1 ? k->v[0] : 0, secs = k->n >= 2 ? k->v[1] : 0;
        bool on = count > 0 && secs > 0;
        l->burst[c] = on ? count : 0;
        l->period_s[c] = on ? secs : 0;
        l->rate[c] = on ? count / (secs * 1000.0) : 0;
    }
}
