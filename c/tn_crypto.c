/* Handshake and frame encryption (see tn_crypto.h, doc/protocol.md "Handshake"). */
#include "tn_crypto.h"

#include <sodium.h>

static const char HS_LABEL[] = "timenet/1 handshake";
static const char AUTH_LABEL[] = "timenet/1 auth";

int tn_crypto_init(void)
{
    return sodium_init() < 0 ? TN_ECRYPTO : TN_OK;
}

static void nonce_of(uint8_t n[12], uint64_t counter)
{
    memset(n, 0, 4);
    tn_put_u64(n + 4, counter);
}

int tn_frame_len(const uint8_t hdr[TN_FRAME_HDR_LEN], uint32_t max, uint32_t *clen)
{
    uint32_t l = tn_get_u32(hdr);
    if (l < TN_FRAME_MIN) return TN_EINVAL;
    if (l > max) return TN_ETOOBIG;
    *clen = l;
    return TN_OK;
}

size_t tn_frame_seal(tn_aead_t *a, uint8_t *buf, size_t plen)
{
    uint8_t n[12];
    nonce_of(n, a->counter++);
    tn_put_u32(buf, (uint32_t)(plen + TN_TAG_LEN));
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(buf + 4, buf + 4 + plen, NULL, buf + 4, plen,
                                                       buf, 4, NULL, n, a->key);
    return 4 + plen + TN_TAG_LEN;
}

int tn_frame_open(tn_aead_t *a, const uint8_t hdr[TN_FRAME_HDR_LEN], uint8_t *ct, uint32_t clen)
{
    uint8_t n[12];
    if (clen < TN_TAG_LEN) return TN_EINVAL;
    nonce_of(n, a->counter);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            ct, NULL, ct, clen - TN_TAG_LEN, ct + clen - TN_TAG_LEN, hdr, 4, n, a->key) != 0)
        return TN_ECRYPTO;
    a->counter++;
    return TN_OK;
}

void tn_hs_start(tn_hs_t *hs, int initiator, const tn_prologue_t *mine, const uint8_t *e_sk)
{
    memset(hs, 0, sizeof(*hs));
    hs->initiator = initiator;
    if (e_sk)
        memcpy(hs->e_sk, e_sk, 32);
    else
        randombytes_buf(hs->e_sk, 32);
    crypto_scalarmult_base(hs->e_pk, hs->e_sk);
    tn_prologue_encode(mine, hs->flight_mine);
    memcpy(hs->flight_mine + TN_PROLOGUE_LEN, hs->e_pk, 32);
}

static void derive(uint8_t out[32], const uint8_t dh[32], const uint8_t h[32], const char *label)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, dh, 32, 32);
    crypto_generichash_update(&st, h, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    crypto_generichash_final(&st, out, 32);
}

int tn_hs_read_flight(tn_hs_t *hs, const tn_prologue_t *mine, const uint8_t in[TN_FLIGHT1_LEN])
{
    int rc = tn_prologue_check(mine, in, &hs->theirs);
    if (rc) return rc;
    const uint8_t *fi = hs->initiator ? hs->flight_mine : in;
    const uint8_t *fr = hs->initiator ? in : hs->flight_mine;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)HS_LABEL, sizeof(HS_LABEL) - 1);
    crypto_generichash_update(&st, fi, TN_FLIGHT1_LEN);
    crypto_generichash_update(&st, fr, TN_FLIGHT1_LEN);
    crypto_generichash_final(&st, hs->h, 32);

    uint8_t dh[32];
    if (crypto_scalarmult(dh, hs->e_sk, in + TN_PROLOGUE_LEN) != 0) return TN_ECRYPTO;
    uint8_t ki2r[32], kr2i[32];
    derive(ki2r, dh, hs->h, "i2r");
    derive(kr2i, dh, hs->h, "r2i");
    memcpy(hs->tx.key, hs->initiator ? ki2r : kr2i, 32);
    memcpy(hs->rx.key, hs->initiator ? kr2i : ki2r, 32);
    hs->tx.counter = hs->rx.counter = 0;
    sodium_memzero(dh, sizeof dh);
    sodium_memzero(ki2r, sizeof ki2r);
    sodium_memzero(kr2i, sizeof kr2i);
    return TN_OK;
}

static void auth_message(uint8_t m[sizeof(AUTH_LABEL) - 1 + 1 + 32], int initiator,
                         const uint8_t h[32])
{
    memcpy(m, AUTH_LABEL, sizeof(AUTH_LABEL) - 1);
    m[sizeof(AUTH_LABEL) - 1] = initiator ? 'I' : 'R';
    memcpy(m + sizeof(AUTH_LABEL), h, 32);
}

void tn_hs_auth(const tn_hs_t *hs, const uint8_t id_sk[TN_ID_SK_LEN], uint8_t out[TN_AUTH_LEN])
{
    uint8_t m[sizeof(AUTH_LABEL) + 32];
    auth_message(m, hs->initiator, hs->h);
    memcpy(out, id_sk + 32, TN_ID_LEN); /* libsodium's secret key ends with the public key */
    crypto_sign_detached(out + TN_ID_LEN, NULL, m, sizeof m, id_sk);
}

int tn_hs_verify(tn_hs_t *hs, const uint8_t in[TN_AUTH_LEN])
{
    uint8_t m[sizeof(AUTH_LABEL) + 32];
    auth_message(m, !hs->initiator, hs->h);
    if (crypto_sign_verify_detached(in + TN_ID_LEN, m, sizeof m, in) != 0) return TN_ECRYPTO;
    memcpy(hs->their_id, in, TN_ID_LEN);
    return TN_OK;
}

void tn_hs_wipe(tn_hs_t *hs)
{
    sodium_memzero(hs->e_sk, sizeof hs->e_sk);
}
