/* Wire protocol codec: the plaintext prologue and the messages carried inside frames.
 * Pure functions over byte buffers (no I/O) so they are unit-tested and fuzzed alone.
 * The normative description is doc/protocol.md; keep both in step. */
#ifndef TN_PROTO_H
#define TN_PROTO_H

#include "tn_buf.h"
#include "tn_common.h"

#define TN_PROTO_VERSION 1
#define TN_PROTO_MIN_VERSION 1

#define TN_PROLOGUE_LEN 16 /* magic 4 | version 2 | min_version 2 | nonce 8 */
#define TN_MSG_HDR_LEN 6   /* type 2 | length 4 */

/* Message types. 0x0000-0x7fff is the core range: a type there that this build does not
 * know is an invalid message. 0x8000-0xffff is reserved for types that policies register
 * at run time (experiments); unhandled ones are counted and ignored. */
enum {
    TN_MSG_AUTH = 0x0000, /* only ever alone in the first frame of each direction */
    TN_MSG_HELLO = 0x0001,
    TN_MSG_PING = 0x0002,
    TN_MSG_PONG = 0x0003,
    TN_MSG_EXPERIMENT_FIRST = 0x8000,
};

#define TN_HELLO_F_MASTERNODE 0x1u

typedef struct {
    uint8_t magic[4];
    uint16_t version;
    uint16_t min_version;
    uint64_t nonce;
} tn_prologue_t;

typedef struct {
    uint16_t version;
    uint32_t flags;
    uint64_t height;
    uint16_t listen_port; /* 0 = does not accept inbound */
    uint64_t time_ms;     /* sender's wall clock, for skew estimates */
    char name[TN_NAME_MAX + 1];
} tn_hello_t;

void tn_prologue_encode(const tn_prologue_t *p, uint8_t out[TN_PROLOGUE_LEN]);
/* Parses and checks against ours: TN_EMAGIC, TN_EVERSION (their range and ours do not
 * overlap), or 0. *theirs is filled in every case so callers can log what was sent. */
int tn_prologue_check(const tn_prologue_t *ours, const uint8_t in[TN_PROLOGUE_LEN],
                      tn_prologue_t *theirs);

/* Appends one message (header + payload) to b. */
int tn_msg_append(tn_buf_t *b, uint16_t type, const void *payload, uint32_t len);
/* Starts a message whose payload the caller writes next; returns the header offset for
 * tn_msg_finish to patch the length into. */
int tn_msg_begin(tn_buf_t *b, uint16_t type, size_t *hdr_off);
void tn_msg_finish(tn_buf_t *b, size_t hdr_off);

/* Iterates messages in a decrypted frame. Returns 1 with a message, 0 at the end, or
 * TN_EINVAL when a header or length does not fit the frame. */
int tn_msg_next(const uint8_t *p, size_t n, size_t *off, uint16_t *type, const uint8_t **payload,
                uint32_t *len);

int tn_hello_encode(tn_buf_t *b, const tn_hello_t *h);
int tn_hello_decode(const uint8_t *p, uint32_t len, tn_hello_t *h);
/* ping and pong carry one 64-bit nonce. */
int tn_u64_msg_encode(tn_buf_t *b, uint16_t type, uint64_t v);
int tn_u64_msg_decode(const uint8_t *p, uint32_t len, uint64_t *v);

/* Name of a core type for logs and metrics, or NULL when not a core type this build knows. */
const char *tn_msg_name(uint16_t type);

#endif
