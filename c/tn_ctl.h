/* The control socket: a Unix socket in the data dir (mode 0600, the only control surface),
 * one JSON request per line in, one JSON reply per line out. Verbs live in tn_ctl_verbs.c,
 * one table; later features add rows there. */
#ifndef TN_CTL_H
#define TN_CTL_H

#include "tn_common.h"

#include <cJSON.h>
#include <stdbool.h>

#define TN_CTL_LINE_MAX (1u << 20) /* longest request line */
#define TN_CTL_CLIENTS_MAX 64      /* concurrent control clients */

typedef struct tn_node tn_node_t;
typedef struct tn_ctl tn_ctl_t;

int tn_ctl_start(tn_ctl_t **out, tn_node_t *n, const char *path, char *err, size_t errlen);
void tn_ctl_stop(tn_ctl_t *c);

/* A verb fills reply (ok is added by the caller) and returns 0, or returns non-zero after
 * putting "error" in reply. */
typedef int (*tn_ctl_verb_fn)(tn_node_t *n, const cJSON *req, cJSON *reply);
/* Verbs implemented outside tn_ctl_verbs.c (listed in its table). */
int tn_ctl_v_chain(tn_node_t *n, const cJSON *req, cJSON *reply);
int tn_ctl_v_mempool(tn_node_t *n, const cJSON *req, cJSON *reply);
int tn_ctl_v_tx_submit(tn_node_t *n, const cJSON *req, cJSON *reply);
/* Finds a verb by name, NULL if unknown. */
tn_ctl_verb_fn tn_ctl_verb(const char *name);
/* Names of all verbs, for "help". */
void tn_ctl_verbs_list(cJSON *array);
/* A verb that answers later (e.g. after a policy reload) takes a hold on the request and
 * returns TN_CTL_LATER; tn_ctl_answer sends the reply then (dropped if the client left). */
#define TN_CTL_LATER 1
typedef struct {
    tn_ctl_t *ctl;
    uint64_t client;
} tn_ctl_hold_t;
tn_ctl_hold_t tn_ctl_hold(tn_node_t *n);
void tn_ctl_answer(tn_ctl_hold_t h, cJSON *reply, bool ok);
/* Sets reply.error = msg and returns -1. */
int tn_ctl_error(cJSON *reply, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
