/* The metrics endpoint: a minimal HTTP/1.0 responder on libuv that answers GET (and HEAD)
 * /metrics with the registry's Prometheus text exposition, and nothing else. One request per
 * connection; every resource it takes is bounded below. */
#ifndef TN_HTTP_H
#define TN_HTTP_H

#include "tn_addr.h"

#include <uv.h>

#define TN_HTTP_REQ_MAX 8192        /* request head; a longer one gets 431 and is closed */
#define TN_HTTP_CLIENTS_MAX 16      /* connections at once; more are closed at accept */
#define TN_HTTP_TIMEOUT_MS 5000     /* to send the request and read the answer, per connection */
#define TN_HTTP_BODY_MAX (8u << 20) /* exposition size; beyond it the answer is 500 */

typedef struct tn_http tn_http_t;

/* Called before each exposition, so gauges derived from state are fresh (tn_ops.c). */
typedef void (*tn_http_collect_fn)(void *ud);

int tn_http_start(tn_http_t **out, uv_loop_t *loop, const tn_addr_t *addr,
                  tn_http_collect_fn collect, void *ud, char *err, size_t errlen);
/* Closes the listener and every connection; memory is released by the loop. */
void tn_http_stop(tn_http_t *h);

#endif
