/* The HTTP peer API client (seed §8 method 2, "API discovery"): one GET at a time on
 * libcurl's multi interface, driven by the node's libuv loop (curl's sockets watched with
 * uv_poll, its timer a uv_timer), so a slow or hostile server never blocks the loop. Each
 * request has a deadline and a size cap; the answer is parsed strictly with cJSON.
 *
 * Answer format: a JSON array, or an object whose "peers" member is one, of at most `max`
 * items; each item is "IP:port" (IPv6 as "[addr]:port") or {"addr": "IP:port", "id": "<64
 * hex digits>"} (other members ignored). Anything else — bad JSON, trailing bytes, a NUL,
 * another type, a bad address or id, too many items — rejects the whole answer. */
#ifndef TN_PEERAPI_H
#define TN_PEERAPI_H

#include "tn_addr.h"

#include <stdbool.h>
#include <uv.h>

typedef struct tn_peerapi tn_peerapi_t;

/* Called once per request, on the loop: body (NUL-terminated) and len, or err (then body is
 * NULL). */
typedef void (*tn_peerapi_done_fn)(void *ud, const char *body, size_t len, const char *err);

int tn_peerapi_new(tn_peerapi_t **out, uv_loop_t *loop);
/* Starts a GET of an http:// or https:// URL (no redirects). TN_EALREADY while one is in
 * flight, TN_EINVAL for a URL curl refuses. */
int tn_peerapi_get(tn_peerapi_t *a, const char *url, double timeout_s, size_t max_bytes,
                   tn_peerapi_done_fn done, void *ud);
bool tn_peerapi_busy(const tn_peerapi_t *a);
/* Aborts a request in flight (done is not called) and frees once libuv closed the handles. */
void tn_peerapi_close(tn_peerapi_t *a);

typedef struct {
    tn_addr_t addr;
    uint8_t id[32];
    bool has_id;
} tn_api_peer_t;

/* Parses an answer into out (room for max): the count, or TN_EINVAL with the reason. */
int tn_peerapi_parse(const char *body, size_t len, tn_api_peer_t *out, int max, char *err,
                     size_t errlen);

#endif
