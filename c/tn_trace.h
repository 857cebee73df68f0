/* Propagation traces (config `trace_file`): one JSON line per message event, so a run's
 * propagation can be analysed offline (tests/lib/trace.lua, `make demo`). Off by default;
 * every call site checks tn_trace_on first, so tracing off costs one predictable branch.
 *
 * Line: {"t":unix_us,"node":"NAME","ev":EVENT,"type":TYPE,"id":"HEX","from":"PEER",
 *        "to":"PEER","outcome":"..."}
 *   ev: "recv" (a body arrived from `from`; outcome says what became of it), "accept" (the
 *   object entered this node: from a peer, or from "self" = submitted or produced here),
 *   "announce" (inv sent to `to`), "send" (an experiment message to `to`). Peers are named by
 *   the name of their hello (their short id before it). Bound: the file grows by about 200
 *   bytes per event; it is the operator's to rotate or delete. */
#ifndef TN_TRACE_H
#define TN_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tn_node tn_node_t;
typedef struct tn_session tn_session_t;

extern bool tn_trace_on;

/* Opens cfg->trace_file for appending (nothing when empty); 0 or TN_EIO with err. */
int tn_trace_open(tn_node_t *n, char *err, size_t errlen);
void tn_trace_close(void);
/* One event; from/to may be NULL ("self" for from, omitted for to). id is hashed to hex. */
void tn_trace_event(tn_node_t *n, const char *ev, const char *type, const uint8_t *id, size_t idlen,
                    const tn_session_t *from, const tn_session_t *to, const char *outcome);

#define TN_TRACE(n, ev, type, id, idlen, from, to, outcome)                                        \
    do {                                                                                           \
        if (tn_trace_on) tn_trace_event(n, ev, type, id, idlen, from, to, outcome);                \
    } while (0)

#endif
