/* Redial delays (seed §3 Fast Reconnection): reconnect_delay times the reconnect_backoff
 * entry for the number of consecutive failures, the last entry repeating; after
 * reconnect_max_attempts failures, a pause of reconnect_cooldown instead of giving up
 * forever. The policy host routes this decision through its reconnect hook. */
#include "tn_node.h"

uint64_t tn_backoff_ms(const tn_config_t *cfg, uint32_t failures, bool *gave_up)
{
    if (failures >= (uint32_t)cfg->reconnect_max_attempts) {
        *gave_up = true;
        return tn_config_ms(cfg->reconnect_cooldown);
    }
    *gave_up = false;
    const tn_numlist_t *b = &cfg->reconnect_backoff;
    double mult = b->n ? b->v[TN_MIN((int)failures, b->n - 1)] : 1.0;
    return tn_config_ms(cfg->reconnect_delay * mult);
}
