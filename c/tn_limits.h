/* Limits that keep a node serving honest peers under floods (issue 7, DESIGN.md "Rate limits"):
 * per-peer token buckets per message class, accept-time checks on the raw handle (bans,
 * blocks, connection attempts per IP), deadlines for frames and writes, a node-wide cap on
 * buffer memory and optional bandwidth caps. Split by concern: tn_ratelimit.c (buckets and
 * classes), tn_admission.c (accept), tn_guard.c (deadlines, buffer cap), tn_bandwidth.c (byte
 * caps). Every number comes from the config (tn_config_keys.h); verdicts come from bans.lua. */
#ifndef TN_LIMITS_H
#define TN_LIMITS_H

#include "tn_addr.h"
#include "tn_common.h"
#include "tn_config.h"

#include <stdbool.h>
#include <uv.h>

typedef struct tn_node tn_node_t;
typedef struct tn_session tn_session_t;
typedef struct tn_limits tn_limits_t;

/* ---- token buckets (tn_ratelimit.c) ---- */

/* A message passes when at least one whole token is left; it takes its whole cost, so the
 * tokens may go negative: a message costing more than is left passes once and leaves a debt
 * (one larger than the burst is never stuck), and the average rate still holds. */
typedef struct {
    double tokens;
    uint64_t last_ms; /* 0 = never used: starts full */
} tn_bucket_t;

/* Takes cost tokens if a whole one is left (refilled at rate per ms up to burst); false =
 * over. */
bool tn_bucket_take(tn_bucket_t *b, double rate_per_ms, double burst, uint64_t now_ms, double cost);
/* Refills and returns the tokens now held (may be negative: a debt). */
double tn_bucket_level(tn_bucket_t *b, double rate_per_ms, double burst, uint64_t now_ms);

/* Message classes, each with its own bucket per peer. Heartbeats have their own, so data
 * never throttles them (DESIGN.md "Ping/pong never share a rate-limit bucket with data"). */
typedef enum {
    TN_RC_CONTROL,   /* hello, heights, get_mempool, core types without a class */
    TN_RC_HEARTBEAT, /* ping, pong */
    TN_RC_ADDRESSES, /* get_peers, peers (peer exchange) */
    TN_RC_INVENTORY, /* inv, getdata, notfound (cost: ids), tx */
    TN_RC_BLOCKS,    /* block, get_blocks, blocks */
    TN_RC_CUSTOM,    /* experiment range 0x8000+ (Lua-registered types) */
    TN_RC__COUNT
} tn_rate_class_t;

tn_rate_class_t tn_rate_class(uint16_t type);
const char *tn_rate_class_name(tn_rate_class_t c);
/* Tokens a message costs: the id count for inv, getdata and notfound, else 1. */
uint32_t tn_rate_cost(uint16_t type, const uint8_t *payload, uint32_t len);

/* The core reports a class over its limit at most this often per session (a Lua call and a
 * log line per report, never per message); drops in between are summed into the next. */
#define TN_RATE_REPORT_MS 1000

/* ---- connection attempts per IP (tn_admission.c) ---- */

/* A keyed-hash, set-associative table: TN_ATTEMPT_SETS x TN_ATTEMPT_WAYS IPs (4096, 160 KiB).
 * A new IP takes a free or expired way, else the one with the fewest attempts: the table
 * never grows, an IP close to its limit is not forgotten for others that come and go, and an
 * attacker cannot choose collisions (SipHash with a random key). */
#define TN_ATTEMPT_SETS 1024
#define TN_ATTEMPT_WAYS 4

typedef struct {
    uint8_t ip[16];
    uint32_t count;    /* attempts in the window, 0 = free slot */
    uint64_t start_ms; /* when the window began (the IP's first attempt in it) */
    uint64_t last_ms;  /* the latest attempt */
} tn_attempt_t;

typedef struct {
    tn_attempt_t *slots; /* TN_ATTEMPT_SETS * TN_ATTEMPT_WAYS */
    uint8_t key[16];
    uint64_t evicted; /* IPs forgotten to make room, for the metric */
} tn_attempts_t;

int tn_attempts_init(tn_attempts_t *t);
void tn_attempts_free(tn_attempts_t *t);
/* Counts one attempt by a's IP; returns its number within the window of window_ms. */
uint32_t tn_attempts_count(tn_attempts_t *t, const tn_addr_t *a, uint64_t now_ms,
                           uint64_t window_ms);

/* ---- per-session state, embedded in tn_session_t: no allocation per peer or message ---- */

typedef struct {
    tn_bucket_t bucket[TN_RC__COUNT];
    uint32_t dropped[TN_RC__COUNT]; /* tokens dropped since the class's last report */
    uint64_t next_report_ms[TN_RC__COUNT];
    /* deadlines (tn_guard.c): when a started frame or a write backlog was first seen */
    uint64_t frame_since_ms, frame_seen;
    uint64_t stall_since_ms, stall_written;
    /* bandwidth caps (tn_bandwidth.c) */
    bool read_paused;
    void *defer_head, *defer_tail; /* frames held back by the outbound cap, in order */
    size_t deferred;               /* their bytes (part of the session's backlog) */
} tn_peer_limits_t;

/* ---- the node's side ---- */

#define TN_ACCEPT_POOL 64 /* handles for judging accepted connections; more wait in the kernel */

typedef struct tn_accept_slot {
    uv_tcp_t tcp;
    struct tn_accept_slot *next; /* free list */
    tn_limits_t *lim;
} tn_accept_slot_t;

typedef struct tn_bw tn_bw_t;

struct tn_limits {
    tn_node_t *node;
    /* per-class buckets: rate in tokens per ms (0 = unlimited), burst = bucket size */
    double rate[TN_RC__COUNT], burst[TN_RC__COUNT], period_s[TN_RC__COUNT];
    /* accept */
    tn_attempts_t attempts;
    tn_accept_slot_t pool[TN_ACCEPT_POOL];
    tn_accept_slot_t *free_slots;
    uv_stream_t *deferred_server; /* a connection waits for a free handle */
    uv_connection_cb deferred_cb;
    /* deadlines and the buffer cap (tn_guard.c) */
    uv_timer_t guard;
    uint64_t frame_timeout_ms, write_timeout_ms, buffer_max;
    tn_bw_t *bw;
};

/* A connection accepted on a pooled handle, before any per-connection state exists. */
typedef struct {
    void *slot;
    tn_addr_t remote;
} tn_conn_t;

int tn_limits_start(tn_node_t *n);
/* Reads the config (start, and config reload). */
void tn_limits_configure(tn_node_t *n);
void tn_limits_stop(tn_node_t *n);
void tn_limits_free(tn_node_t *n);

/* tn_ratelimit.c: the per-message check, O(1), no allocation, no Lua call. False = over the
 * class's bucket: the message is dropped (counted, and reported at most once a second). */
bool tn_rate_admit(tn_node_t *n, tn_session_t *s, uint16_t type, const uint8_t *payload,
                   uint32_t len);

/* tn_admission.c: accepts the pending connection of server on a pooled handle and judges it
 * by its address alone: operator blocks, bans, attempts per IP (reported as "connections"
 * to the bans policy). TN_OK: go on (then tn_admission_refuse or tn_admission_adopt).
 * TN_ELIMIT: refused and closed already. TN_EAGAIN: every pooled handle is closing; the
 * connection waits in the kernel and cb(server, 0) is called again once one is free. */
int tn_admission_accept(tn_node_t *n, uv_stream_t *server, uv_connection_cb cb, tn_conn_t *c);
void tn_admission_refuse(tn_node_t *n, tn_conn_t *c);
/* Moves the accepted connection into a new inbound session (not started). */
int tn_admission_adopt(tn_node_t *n, tn_conn_t *c, tn_session_t **out);

/* Between the files of this module. */
void tn_ratelimit_configure(tn_limits_t *l, const tn_config_t *cfg);
int tn_admission_init(tn_limits_t *l);
void tn_admission_stop(tn_limits_t *l);
void tn_admission_free(tn_limits_t *l);
void tn_guard_start(tn_limits_t *l, uv_loop_t *loop);
void tn_guard_configure(tn_limits_t *l, const tn_config_t *cfg);
void tn_guard_stop(tn_limits_t *l);
tn_bw_t *tn_bw_new(tn_node_t *n);
void tn_bw_configure(tn_bw_t *bw, const tn_config_t *cfg);
void tn_bw_stop(tn_bw_t *bw);

/* tn_bandwidth.c, called by tn_session.c when bandwidth_in / bandwidth_out are set. */
void tn_bw_on_read(tn_session_t *s, size_t n);
/* True when the frame was held back (the outbound cap is spent): it is written later. */
bool tn_bw_defer(tn_session_t *s, uint8_t *mem, size_t len);
/* Frees what a closed session still held back. */
void tn_bw_session_freed(tn_session_t *s);

#endif
