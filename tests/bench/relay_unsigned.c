/* Bench `relay_unsigned`: see relay.h. The node has no relay path for messages that need no
 * signature check yet, so this measures the closest honest equivalent: the node's own relay
 * code (tn_relay.c, compiled into this file so that it replaces the library's copy at link
 * time) with its one signature check compiled out. Everything else is the shipped code. */
#define _GNU_SOURCE /* sched_setaffinity, in relay.h */
#define RELAY_UNSIGNED 1
#define tn_tx_verify relay_bench_skip_verify
#include "tn_relay.c"
#undef tn_tx_verify

int relay_bench_skip_verify(const tn_tx_t *tx)
{
    (void)tx;
    return TN_OK;
}

#include "relay.h"
