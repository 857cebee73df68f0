/* The limits module's lifecycle and configuration (see tn_limits.h): one allocation per node
 * for the buckets' parameters, the attempt table, the accept pool, the guard's sweep and the
 * bandwidth caps, all read from the config at start and again on every config reload. */
#include "tn_limits.h"

#include "tn_node.h"

#include <stdlib.h>

int tn_limits_start(tn_node_t *n)
{
    tn_limits_t *l = calloc(1, sizeof(*l));
    if (!l) return TN_ENOMEM;
    l->node = n;
    if (tn_admission_init(l) != TN_OK || !(l->bw = tn_bw_new(n))) {
        tn_admission_free(l);
        free(l);
        return TN_ENOMEM;
    }
    n->limits = l;
    tn_guard_start(l, n->loop);
    tn_limits_configure(n);
    return TN_OK;
}

void tn_limits_configure(tn_node_t *n)
{
    tn_limits_t *l = n->limits;
    if (!l) return;
    tn_ratelimit_configure(l, n->cfg);
    tn_guard_configure(l, n->cfg);
    tn_bw_configure(l->bw, n->cfg);
}

void tn_limits_stop(tn_node_t *n)
{
    tn_limits_t *l = n->limits;
    if (!l) return;
    tn_admission_stop(l);
    tn_guard_stop(l);
    tn_bw_stop(l->bw);
}

void tn_limits_free(tn_node_t *n)
{
    tn_limits_t *l = n->limits;
    if (!l) return;
    tn_admission_free(l);
    free(l->bw);
    free(l);
    n->limits = NULL;
}
