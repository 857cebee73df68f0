/* Handshake and frame encryption (libsodium): X25519 ephemeral exchange, Ed25519-signed
 * transcript binding both identities and both prologues, then ChaCha20-Poly1305 frames with
 * a counter nonce per direction. Pure state machines over bytes: no I/O here. */
#ifndef TN_CRYPTO_H
#define TN_CRYPTO_H

#include "tn_proto.h"

#define TN_KEY_LEN 32
#define TN_ID_LEN 32    /* Ed25519 public key = node id */
#define TN_ID_SK_LEN 64 /* Ed25519 secret key (seed | public key) */
#define TN_SIG_LEN 64
#define TN_TAG_LEN 16
#define TN_FRAME_HDR_LEN 4
#define TN_FLIGHT1_LEN (TN_PROLOGUE_LEN + 32)
#define TN_AUTH_LEN (TN_ID_LEN + TN_SIG_LEN)
#define TN_FRAME_MIN TN_TAG_LEN /* ciphertext length of an empty plaintext */

int tn_crypto_init(void);

/* One direction of an established session. The counter is the frame's sequence number,
 * so a replayed, dropped or reordered frame fails authentication. */
typedef struct {
    uint8_t key[TN_KEY_LEN];
    uint64_t counter;
} tn_aead_t;

/* Checks a frame header: TN_EINVAL below TN_FRAME_MIN, TN_ETOOBIG above max. */
int tn_frame_len(const uint8_t hdr[TN_FRAME_HDR_LEN], uint32_t max, uint32_t *clen);
/* Seals in place. buf holds [4 spare][plaintext plen][16 spare]; writes the header and tag.
 * Returns the frame's total length. */
size_t tn_frame_seal(tn_aead_t *a, uint8_t *buf, size_t plen);
/* Opens in place: ct (clen bytes, after the header) becomes plaintext of clen-16 bytes. */
int tn_frame_open(tn_aead_t *a, const uint8_t hdr[TN_FRAME_HDR_LEN], uint8_t *ct, uint32_t clen);

typedef struct {
    int initiator;
    uint8_t e_sk[32], e_pk[32];
    uint8_t flight_mine[TN_FLIGHT1_LEN];
    uint8_t h[32]; /* transcript hash */
    tn_aead_t tx, rx;
    uint8_t their_id[TN_ID_LEN];
    tn_prologue_t theirs;
} tn_hs_t;

/* Starts a handshake: fills flight_mine (prologue + ephemeral public key) to send.
 * e_sk may be NULL (random) or a fixed key for test vectors. */
void tn_hs_start(tn_hs_t *hs, int initiator, const tn_prologue_t *mine, const uint8_t *e_sk);
/* Reads the peer's first flight: checks the prologue (TN_EMAGIC / TN_EVERSION) and derives
 * the transcript hash and both direction keys (TN_ECRYPTO on a degenerate key). */
int tn_hs_read_flight(tn_hs_t *hs, const tn_prologue_t *mine, const uint8_t in[TN_FLIGHT1_LEN]);
/* Our auth payload: id public key and signature over the transcript and our role. */
void tn_hs_auth(const tn_hs_t *hs, const uint8_t id_sk[TN_ID_SK_LEN], uint8_t out[TN_AUTH_LEN]);
/* Verifies the peer's auth payload; on success their_id is set. */
int tn_hs_verify(tn_hs_t *hs, const uint8_t in[TN_AUTH_LEN]);
/* Wipes ephemeral secrets once the handshake is over. */
void tn_hs_wipe(tn_hs_t *hs);

#endif
