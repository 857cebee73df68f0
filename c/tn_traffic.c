/* Per-type traffic counters (see tn_traffic.h). Series are registered on first use of a
 * type, so the exposition lists only types this node has seen. */
#include "tn_traffic.h"

#include "tn_metrics.h"
#include "tn_proto.h"

#include <stdbool.h>

typedef struct {
    tn_metric_t *msgs, *bytes;
} series_t;

enum { SLOT_UNKNOWN = TN_TRAFFIC_TYPES, SLOT_EXPERIMENT, SLOTS };

static series_t g_in[SLOTS], g_out[SLOTS];

static int slot_of(uint16_t type)
{
    if (type >= 0x8000) return SLOT_EXPERIMENT;
    if (type < TN_TRAFFIC_TYPES && tn_msg_name(type)) return type;
    return SLOT_UNKNOWN;
}

static series_t *series(series_t *tab, int slot, uint16_t type, const char *dir)
{
    series_t *s = &tab[slot];
    if (s->msgs) return s;
    const char *name = slot == SLOT_EXPERIMENT ? "experiment"
                       : slot == SLOT_UNKNOWN  ? "unknown"
                                               : tn_msg_name(type);
    bool in = dir[0] == 'r';
    s->msgs = tn_metric_counterf(in ? "Messages received, by type" : "Messages sent, by type",
                                 "tn_messages_%s_total{type=\"%s\"}", dir, name);
    s->bytes = tn_metric_counterf(in ? "Message bytes received (header and payload), by type"
                                     : "Message bytes sent (header and payload), by type",
                                  "tn_message_bytes_%s_total{type=\"%s\"}", dir, name);
    return s;
}

void tn_traffic_in(uint16_t type, uint32_t payload_len)
{
    int slot = slot_of(type);
    series_t *s = series(g_in, slot, type, "received");
    tn_metric_inc(s->msgs);
    tn_metric_add(s->bytes, (double)payload_len + TN_MSG_HDR_LEN);
}

void tn_traffic_out(uint16_t type, uint32_t payload_len)
{
    int slot = slot_of(type);
    series_t *s = series(g_out, slot, type, "sent");
    tn_metric_inc(s->msgs);
    tn_metric_add(s->bytes, (double)payload_len + TN_MSG_HDR_LEN);
}
