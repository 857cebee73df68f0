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
    /* transactions, blocks and sync (tn_relay.c, tn_sync.c) */
    TN_MSG_INV = 0x0010,      /* ids we have: count u16 | count x (kind u8 | id 32) */
    TN_MSG_GETDATA = 0x0011,  /* ids we want, same layout */
    TN_MSG_TX = 0x0012,       /* one transaction (tn_tx.h) */
    TN_MSG_BLOCK = 0x0013,    /* one block (tn_tx.h) */
    TN_MSG_NOTFOUND = 0x0014, /* requested ids we do not have, same layout as inv */
    TN_MSG_GET_HEIGHT = 0x0015,
    TN_MSG_HEIGHT = 0x0016,     /* height u64 | tip id 32 */
    TN_MSG_GET_BLOCKS = 0x0017, /* count u8 | count x id 32: a locator, newest first */
    TN_MSG_BLOCKS = 0x0018,     /* count u16 | count x (len u32 | block), in chain order */
    TN_MSG_GET_MEMPOOL = 0x0019,
    /* peer exchange (tn_pex.c) */
    TN_MSG_GET_PEERS = 0x0020, /* empty */
    TN_MSG_PEERS = 0x0021,     /* count u16 | count x (ip 16 | port u16 | seen u32 | id 32) */
    TN_MSG_EXPERIMENT_FIRST = 0x8000,
};

#define TN_INV_TX 1
#define TN_INV_BLOCK 2
#define TN_INV_ENTRY 33  /* kind 1 | id 32 */
#define TN_INV_MAX 1000  /* entries in one inv, getdata or notfound */
#define TN_LOCATOR_MAX 32
#define TN_BLOCKS_MAX 50 /* blocks in one reply (DESIGN.md) */

#define TN_HELLO_F_MASTERNODE 0x1u

#define TN_PEX_MAX 1000 /* addresses in one peers message */
#define TN_PEER_ENTRY 54  /* ip 16 (IPv4 as ::ffff:a.b.c.d) | port 2 | seen 4 | id 32 */

/* One address of a peers message: seen_s is unix seconds, id all zero when unknown. */
typedef struct {
    uint8_t ip[16];
    uint16_t port;
    uint32_t seen_s;
    uint8_t id[32];
} tn_peer_entry_t;

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

/* inv/getdata/notfound: checks the layout and returns the entry count (or TN_EINVAL). */
int tn_inv_decode(const uint8_t *p, uint32_t len);
static inline void tn_inv_entry(const uint8_t *p, int i, uint8_t *kind, const uint8_t **id)
{
    *kind = p[2 + i * TN_INV_ENTRY];
    *id = p + 2 + i * TN_INV_ENTRY + 1;
}
int tn_height_decode(const uint8_t *p, uint32_t len, uint64_t *height, const uint8_t **tip);
/* get_blocks: the number of locator ids (or TN_EINVAL). */
int tn_locator_decode(const uint8_t *p, uint32_t len);

/* peers: checks the layout and returns the entry count (0..TN_PEX_MAX) or TN_EINVAL. */
int tn_peers_decode(const uint8_t *p, uint32_t len);
void tn_peers_entry(const uint8_t *p, int i, tn_peer_entry_t *e);
void tn_peers_entry_put(uint8_t out[TN_PEER_ENTRY], const tn_peer_entry_t *e);

/* Name of a core type for logs and metrics, or NULL when not a core type this build knows. */
const char *tn_msg_name(uint16_t type);

#endif
