/* Shared by the fuzz targets: the fixed handshake identities (the doc/protocol.md test-vector
 * inputs), a byte reader for structured inputs, a deterministic PRNG for split points, and
 * the frame-stream builder plus the model of tn_session.c's read path (consume()) that the
 * `frame` and `session` targets feed. */
#ifndef FZ_COMMON_H
#define FZ_COMMON_H

#include "tn_buf.h"
#include "tn_crypto.h"
#include "tn_proto.h"
#include "tn_session.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* A broken invariant: say which and abort, so libFuzzer (and the replay driver) report a
 * crash with this input. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- fixed identities: local = responder "r" (the decoder under test), peer = initiator ---- */

typedef struct {
    tn_prologue_t pro_i, pro_r; /* magic "TIME", version 1, min 1, fixed nonces */
    uint8_t sk_i[TN_ID_SK_LEN], sk_r[TN_ID_SK_LEN];
    uint8_t esk_i[32], esk_r[32];
    tn_hs_t peer_start;             /* initiator after tn_hs_start (flight_mine = peer flight) */
    tn_hs_t local_start;            /* responder after tn_hs_start */
    tn_hs_t local_authwait;         /* responder after reading the peer flight: waits for auth */
    tn_hs_t peer_done;              /* initiator after reading the responder flight */
    uint8_t peer_auth[TN_AUTH_LEN]; /* the initiator's auth payload for that transcript */
    uint8_t local_auth[TN_AUTH_LEN];
} fz_keys_t;

extern fz_keys_t FZ;
/* Idempotent; call from every target before use. */
void fz_init(void);

/* ---- reading structured inputs ---- */

typedef struct {
    const uint8_t *p;
    size_t n, off;
} fz_in_t;

static inline size_t fz_left(const fz_in_t *in)
{
    return in->n - in->off;
}
static inline uint8_t fz_u8(fz_in_t *in)
{
    return in->off < in->n ? in->p[in->off++] : 0;
}
static inline uint16_t fz_u16(fz_in_t *in)
{
    uint16_t hi = fz_u8(in);
    return (uint16_t)(hi << 8 | fz_u8(in));
}
static inline uint32_t fz_u32(fz_in_t *in)
{
    uint32_t hi = fz_u16(in);
    return hi << 16 | fz_u16(in);
}
/* Up to want bytes (fewer at the end of input). */
static inline const uint8_t *fz_bytes(fz_in_t *in, size_t want, size_t *got)
{
    *got = TN_MIN(want, fz_left(in));
    const uint8_t *p = in->p + in->off;
    in->off += *got;
    return p;
}

static inline uint32_t fz_rand(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u; /* xorshift32 never leaves 0 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static inline uint64_t fz_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FZ_HASH_INIT 0xcbf29ce484222325ull

/* ---- frame streams: the input format of the `frame` and `session` targets ----
 *
 *   byte 0      start: 0 = flight, 1 = auth, 2/3 = open (the peer flight, and then its auth
 *               frame, are implied; in `session` they are sent, in `frame` the model starts
 *               in that state)
 *   byte 1      split class: chunk sizes are 1..FZ_CHUNK[byte % N]
 *   bytes 2-5   split seed
 *   records     op byte (op % 8) then arguments:
 *     0 FLIGHT                 the peer's handshake flight (48 bytes)
 *     1 AUTH                   the peer's auth message sealed as the next frame
 *     2 FRAME  len:u16 data    data sealed as the next frame (so mutated plaintext still
 *                              authenticates and reaches the message decoder)
 *     3 RAW    len:u16 data    raw bytes (bad headers, garbage, truncation)
 *     4 SKIP   d:i8            peer send counter += d (replayed, reordered, dropped frames)
 *     5 TAMPER pos:u16         flip one bit of the stream built so far (pos % len)
 *     6 MSGS   n:u8 {type:u16 len:u8 data} sealed as one frame of n messages
 *     7 END                    stop reading records
 */
#define FZ_STREAM_MAX (256u << 10) /* stream bytes; records beyond it are ignored */
#define FZ_MAX_FRAME 65536u        /* the model's (and session target's) max_frame */

enum { FZ_START_FLIGHT = 0, FZ_START_AUTH = 1, FZ_START_OPEN = 2 };

typedef struct {
    int start;
    uint32_t chunk_max;
    uint32_t seed;
    tn_buf_t stream; /* records only, without the implied prefix */
} fz_stream_t;

/* Builds the stream from input, sealing with peer_tx (its counter starts at the value given:
 * 0 in a fresh session) and the auth payload given. Frees with tn_buf_free(&st->stream). */
void fz_stream_build(fz_stream_t *st, const uint8_t *data, size_t size, const tn_aead_t *peer_tx,
                     const uint8_t auth[TN_AUTH_LEN]);
/* The peer flight and auth frame (counter 0) that the start state implies, into out. */
void fz_stream_prefix(int start, const tn_aead_t *peer_tx, const uint8_t auth[TN_AUTH_LEN],
                      tn_buf_t *out);
/* Seals plaintext p as one frame appended to out (header, ciphertext, tag). */
void fz_seal_append(tn_buf_t *out, tn_aead_t *tx, const uint8_t *p, size_t n);

/* ---- the model of the session read path ----
 * Mirrors tn_session.c consume()/handle_flight()/handle_frame()/handle_auth() and the node's
 * message dispatch (tn_node.c on_message), recording every event in a hash so two runs over
 * the same bytes split differently (or the model and the real session) can be compared. */

enum {
    FZ_CLOSE_NONE = 0,
    FZ_CLOSE_MAGIC,
    FZ_CLOSE_VERSION,
    FZ_CLOSE_CRYPTO,
    FZ_CLOSE_PROTOCOL, /* frame length, framing, auth message after the handshake */
    FZ_CLOSE_LOCAL,    /* the owner's verdict on a message (malformed hello, ...) */
};

typedef struct {
    int state; /* TN_SS_FLIGHT, TN_SS_AUTH, TN_SS_OPEN, TN_SS_CLOSING */
    tn_hs_t hs;
    tn_aead_t rx;
    tn_prologue_t ours;
    uint8_t hdr[TN_FRAME_HDR_LEN];
    uint32_t hdr_have, frame_need, max_frame;
    tn_buf_t rpart;
    bool hello;
    int close;
    uint64_t events; /* hash of every event in order */
    uint32_t n_msgs, n_frames;
} fz_model_t;

void fz_model_init(fz_model_t *m, int start, const tn_hs_t *local_hs);
void fz_model_consume(fz_model_t *m, const uint8_t *p, size_t n);
void fz_model_free(fz_model_t *m);
/* The node's reaction to one message of an open session (shared with the session target so
 * both record the same events). Returns a FZ_CLOSE_* verdict, FZ_CLOSE_NONE to go on. */
int fz_on_message(bool *hello, uint64_t *events, uint16_t type, const uint8_t *p, uint32_t len);

/* Chunk sizes for a split class. */
uint32_t fz_chunk_max(uint8_t cls);

#endif
