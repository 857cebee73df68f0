/* One peer connection: libuv TCP, the handshake, frame decryption and batched encrypted
 * writes. A session knows nothing about peers, limits or policy: it reports to its owner
 * through callbacks and the owner decides. tn_net_t is the per-loop context sessions share
 * (read buffer, flush list, identity, limits). */
#ifndef TN_SESSION_H
#define TN_SESSION_H

#include "tn_addr.h"
#include "tn_buf.h"
#include "tn_crypto.h"
#include "tn_limits.h"

#include <stdbool.h>
#include <uv.h>

#define TN_READ_CHUNK 65536   /* shared read buffer; partial frames are copied out */
#define TN_FRAME_TARGET 65536 /* plaintext bytes after which a batch is sealed early */

typedef struct tn_session tn_session_t;
typedef struct tn_net tn_net_t;

typedef enum {
    TN_SS_CONNECTING, /* outbound TCP connect in progress */
    TN_SS_DELAYED,    /* test_handshake_delay before the first flight */
    TN_SS_FLIGHT,     /* our flight sent, waiting for theirs */
    TN_SS_AUTH,       /* keys derived, waiting for their auth frame */
    TN_SS_OPEN,       /* authenticated: messages flow */
    TN_SS_CLOSING,
} tn_session_state_t;

/* Why a session closed, for logs, metrics and the owner's reconnect decision. */
typedef enum {
    TN_CLOSE_LOCAL,    /* owner's decision (detail says why) */
    TN_CLOSE_EOF,      /* peer closed the connection */
    TN_CLOSE_IO,       /* read/write/connect error */
    TN_CLOSE_TIMEOUT,  /* dial or handshake deadline passed */
    TN_CLOSE_MAGIC,    /* wrong network magic */
    TN_CLOSE_VERSION,  /* incompatible protocol version */
    TN_CLOSE_CRYPTO,   /* handshake or frame failed authentication */
    TN_CLOSE_PROTOCOL, /* malformed frame or message */
    TN_CLOSE_BACKLOG,  /* peer does not read: write buffer bound reached */
} tn_close_reason_t;

const char *tn_close_reason_name(tn_close_reason_t r);

typedef struct {
    /* Peer's prologue accepted; return non-zero to close (e.g. self-connection by nonce). */
    int (*on_prologue)(tn_session_t *s, const tn_prologue_t *theirs);
    /* Authenticated: s->their_id is set. The owner may close s here. */
    void (*on_open)(tn_session_t *s);
    /* One message from an open session (payload valid only during the call). */
    void (*on_message)(tn_session_t *s, uint16_t type, const uint8_t *payload, uint32_t len);
    /* Called exactly once, when the session starts closing; s stays readable until the
     * callback returns and is freed later by the loop. */
    void (*on_close)(tn_session_t *s, tn_close_reason_t reason, const char *detail);
} tn_session_cbs_t;

struct tn_net {
    uv_loop_t *loop;
    /* Seal and write every dirty session once per loop iteration: the check handle after I/O
     * callbacks, the prepare handle before the loop blocks (for messages queued by timers). */
    uv_check_t flusher;
    uv_prepare_t flusher2;
    tn_session_t *dirty;
    uint8_t *rbuf; /* TN_READ_CHUNK bytes shared by all reads */
    tn_session_cbs_t cbs;
    void *owner;
    uint8_t id_sk[TN_ID_SK_LEN];
    uint8_t magic[4];
    uint32_t max_frame;      /* ciphertext bound, from config max_frame_size */
    size_t write_buffer_max; /* bytes queued to one peer before it is closed */
    uint64_t connect_timeout_ms;
    uint64_t handshake_timeout_ms;
    uint64_t test_delay_ms;
    uint64_t next_gen;
    int live; /* sessions not yet freed */
    tn_bw_t *bw; /* set while a bandwidth cap is on (tn_bandwidth.c) */
};

struct tn_session {
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline; the owner's (heartbeat) once open */
    tn_net_t *net;
    void *peer;   /* owner's record */
    uint64_t gen; /* unique per session: events of a closed session never act on another */
    tn_session_state_t state;
    bool outbound;
    uint8_t handles_open;
    tn_addr_t remote; /* dialed address, or the accepted connection's source */
    tn_addr_t local;
    uint64_t nonce; /* our prologue nonce (self-connection detection) */
    tn_hs_t *hs;    /* handshake state, freed once open */
    tn_aead_t tx, rx;
    uint8_t their_id[TN_ID_LEN];
    tn_prologue_t theirs;
    /* read side */
    uint8_t hdr[TN_FRAME_HDR_LEN];
    uint32_t hdr_have;
    uint32_t frame_need; /* ciphertext bytes of the current frame, 0 = reading a header */
    tn_buf_t rpart;      /* partial flight or frame */
    /* write side */
    tn_buf_t wbuf; /* [4 header][messages...] being batched */
    size_t queued; /* bytes handed to libuv and not yet written */
    size_t msg_off; /* where the message being appended starts (traffic metrics) */
    tn_session_t *dirty_next;
    bool dirty;
    /* counters */
    uint64_t opened_ms;
    uint64_t bytes_in, bytes_out, msgs_in, msgs_out, frames_in, frames_out;
    uint64_t last_rx_ms; /* loop time of the last bytes received */
    /* owner's fields: session list, hello, health */
    tn_session_t *prev, *next;
    void *target; /* outbound intent that dialed this session */
    bool hello;   /* peer's hello received: the session is established */
    bool quiet;   /* its close was explained by an earlier log line */
    uint32_t their_flags;
    uint16_t their_port;
    uint64_t their_height;
    char their_name[TN_NAME_MAX + 1];
    uint64_t ping_nonce, ping_sent_ms; /* sent time in microseconds (uv_hrtime) */
    double rtt_ms;
    uint32_t pings, pongs, late, missed, missed_run;
    double score; /* from the score hook, refreshed every policy tick */
    void *relay;  /* tn_relay_peer_t, allocated when inventory first flows */
    bool sync_stalled; /* failed us as sync peer; skipped until it answers heights again */
    tn_peer_limits_t lim; /* rate buckets, deadlines, bandwidth state (tn_limits.h) */
    /* peer exchange (tn_pex.c): addresses it may still teach us (a token bucket), when we
     * last asked it and answered it (loop ms, 0 = never), and whether an answer is due */
    double pex_tokens;
    uint64_t pex_refill_ms, pex_asked_ms, pex_answered_ms;
    bool pex_awaiting;
    uint32_t pex_dropped;
};

int tn_net_init(tn_net_t *net, uv_loop_t *loop, const tn_session_cbs_t *cbs, void *owner);
void tn_net_close(tn_net_t *net);

/* Outbound: connects from `bind` (may be NULL or port 0 = any port) to `to`. */
int tn_session_dial(tn_net_t *net, const tn_addr_t *to, const tn_addr_t *bind, tn_session_t **out);
/* Inbound: accepts a pending connection on `server` without starting any work, so the
 * owner can refuse it first (tn_session_discard) or go on (tn_session_start). */
int tn_session_accept(tn_net_t *net, uv_stream_t *server, tn_session_t **out);
void tn_session_start(tn_session_t *s);
/* Inbound: a connection accepted and judged elsewhere (tn_admission.c), as its socket. */
int tn_session_adopt(tn_net_t *net, uv_os_sock_t fd, const tn_addr_t *remote, tn_session_t **out);
/* Frees a session the owner never took on: no on_close, nothing logged. */
void tn_session_discard(tn_session_t *s);

/* Queues a message into the current batch; sealed and written once per loop iteration.
 * On a full write buffer the session is closed (TN_CLOSE_BACKLOG) and TN_ENOMEM returned. */
int tn_session_send(tn_session_t *s, uint16_t type, const void *payload, uint32_t len);
/* For encoders that write into the batch directly (tn_hello_encode etc.): returns the batch
 * buffer with room for `need` more bytes (sealing the current batch first if they would not
 * fit in one frame), or NULL if the session cannot send. Call tn_session_sent after
 * appending one message. */
tn_buf_t *tn_session_batch(tn_session_t *s, size_t need);
int tn_session_sent(tn_session_t *s);
/* Bytes waiting to reach the socket (batched + queued in libuv). */
size_t tn_session_backlog(const tn_session_t *s);
/* Seals and writes this session's batch now (normally the per-iteration flusher does it). */
void tn_session_flush(tn_session_t *s);
/* For the bandwidth caps: stops or restarts reading; writes a frame held back (owns mem). */
void tn_session_read_pause(tn_session_t *s, bool pause);
void tn_session_write_now(tn_session_t *s, uint8_t *mem, size_t len);

/* Starts closing; on_close runs once. Safe to call repeatedly and from callbacks. */
void tn_session_close(tn_session_t *s, tn_close_reason_t reason, const char *detail);

static inline bool tn_session_is_open(const tn_session_t *s)
{
    return s->state == TN_SS_OPEN;
}

#endif
