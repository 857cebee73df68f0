/* Fixed identities, the frame-stream builder and the model of the session read path used by
 * the fuzz targets (see fz_common.h). The model follows tn_session.c consume() line by line:
 * when that function changes, change this one too (the `session` target compares them). */
#include "fz_common.h"

#include <sodium.h>

fz_keys_t FZ;

static void seq(uint8_t *p, uint8_t start)
{
    for (int i = 0; i < 32; i++) p[i] = (uint8_t)(start + i);
}

void fz_init(void)
{
    static bool done;
    if (done) return;
    done = true;
    if (tn_crypto_init() != TN_OK) abort();
    uint8_t seed[32], pk[32];
    tn_prologue_t pi = {
        {0x54, 0x49, 0x4D, 0x45}, TN_PROTO_VERSION, TN_PROTO_MIN_VERSION, 0x0123456789abcdefull};
    FZ.pro_i = pi;
    FZ.pro_r = pi;
    FZ.pro_r.nonce = 0xfedcba9876543210ull;
    seq(seed, 0x00);
    crypto_sign_seed_keypair(pk, FZ.sk_i, seed);
    seq(seed, 0x20);
    crypto_sign_seed_keypair(pk, FZ.sk_r, seed);
    seq(FZ.esk_i, 0x40);
    seq(FZ.esk_r, 0x60);
    tn_hs_start(&FZ.peer_start, 1, &FZ.pro_i, FZ.esk_i);
    tn_hs_start(&FZ.local_start, 0, &FZ.pro_r, FZ.esk_r);
    FZ.local_authwait = FZ.local_start;
    FZ.peer_done = FZ.peer_start;
    if (tn_hs_read_flight(&FZ.local_authwait, &FZ.pro_r, FZ.peer_start.flight_mine) ||
        tn_hs_read_flight(&FZ.peer_done, &FZ.pro_i, FZ.local_start.flight_mine))
        abort();
    tn_hs_auth(&FZ.peer_done, FZ.sk_i, FZ.peer_auth);
    tn_hs_auth(&FZ.local_authwait, FZ.sk_r, FZ.local_auth);
}

uint32_t fz_chunk_max(uint8_t cls)
{
    static const uint32_t sizes[] = {1, 2, 3, 5, 8, 16, 64, 512, 4096, FZ_STREAM_MAX};
    return sizes[cls % TN_ARRAY_LEN(sizes)];
}

/* ---- stream builder ---- */

void fz_seal_append(tn_buf_t *out, tn_aead_t *tx, const uint8_t *p, size_t n)
{
    if (tn_buf_reserve(out, TN_FRAME_HDR_LEN + n + TN_TAG_LEN)) return;
    uint8_t *f = out->p + out->len;
    if (n) memcpy(f + TN_FRAME_HDR_LEN, p, n);
    out->len += tn_frame_seal(tx, f, n);
}

static void auth_frame(tn_buf_t *out, tn_aead_t *tx, const uint8_t auth[TN_AUTH_LEN])
{
    uint8_t m[TN_MSG_HDR_LEN + TN_AUTH_LEN];
    tn_put_u16(m, TN_MSG_AUTH);
    tn_put_u32(m + 2, TN_AUTH_LEN);
    memcpy(m + TN_MSG_HDR_LEN, auth, TN_AUTH_LEN);
    fz_seal_append(out, tx, m, sizeof m);
}

void fz_stream_prefix(int start, const tn_aead_t *peer_tx, const uint8_t auth[TN_AUTH_LEN],
                      tn_buf_t *out)
{
    tn_aead_t tx = *peer_tx;
    if (start >= FZ_START_AUTH) tn_buf_append(out, FZ.peer_start.flight_mine, TN_FLIGHT1_LEN);
    if (start >= FZ_START_OPEN) auth_frame(out, &tx, auth);
}

void fz_stream_build(fz_stream_t *st, const uint8_t *data, size_t size, const tn_aead_t *peer_tx,
                     const uint8_t auth[TN_AUTH_LEN])
{
    fz_in_t in = {data, size, 0};
    uint8_t s0 = fz_u8(&in);
    st->start = s0 % 4 >= FZ_START_OPEN ? FZ_START_OPEN : s0 % 4;
    st->chunk_max = fz_chunk_max(fz_u8(&in));
    st->seed = fz_u32(&in);
    /* Room for one more record past the bound: appends never fail, the loop just stops. */
    tn_buf_init(&st->stream, FZ_STREAM_MAX + (1u << 17));
    tn_buf_t *out = &st->stream;
    tn_aead_t tx = *peer_tx;
    if (st->start == FZ_START_OPEN) tx.counter++; /* the implied auth frame used counter 0 */
    while (fz_left(&in) > 0 && out->len < FZ_STREAM_MAX) {
        uint8_t op = fz_u8(&in) % 8;
        size_t n;
        const uint8_t *p;
        switch (op) {
        case 0:
            tn_buf_append(out, FZ.peer_start.flight_mine, TN_FLIGHT1_LEN);
            break;
        case 1:
            auth_frame(out, &tx, auth);
            break;
        case 2:
            p = fz_bytes(&in, fz_u16(&in), &n);
            fz_seal_append(out, &tx, p, n);
            break;
        case 3:
            p = fz_bytes(&in, fz_u16(&in), &n);
            tn_buf_append(out, p, n);
            break;
        case 4:
            tx.counter += (uint64_t)(int64_t)(int8_t)fz_u8(&in);
            break;
        case 5: {
            uint16_t pos = fz_u16(&in);
            uint8_t bit = fz_u8(&in);
            if (out->len) out->p[pos % out->len] ^= (uint8_t)(1u << (bit % 8));
            break;
        }
        case 6: {
            tn_buf_t pt;
            tn_buf_init(&pt, 1u << 17);
            unsigned count = fz_u8(&in);
            for (unsigned i = 0; i < count && fz_left(&in) > 0; i++) {
                uint16_t type = fz_u16(&in);
                p = fz_bytes(&in, fz_u8(&in), &n);
                tn_msg_append(&pt, type, p, (uint32_t)n);
            }
            fz_seal_append(out, &tx, pt.p, pt.len);
            tn_buf_free(&pt);
            break;
        }
        default:
            in.off = in.n;
            break;
        }
    }
}

/* ---- the model ---- */

static void ev(uint64_t *h, uint32_t kind, uint64_t a, uint64_t b)
{
    uint8_t e[20];
    tn_put_u32(e, kind);
    tn_put_u64(e + 4, a);
    tn_put_u64(e + 12, b);
    *h = fz_hash(*h, e, sizeof e);
}

int fz_on_message(bool *hello, uint64_t *events, uint16_t type, const uint8_t *p, uint32_t len)
{
    ev(events, 'M', type, fz_hash(FZ_HASH_INIT, p, len) ^ len);
    if (!*hello) { /* tn_node.c: hello first, a malformed one is fatal */
        tn_hello_t h;
        if (type != TN_MSG_HELLO || tn_hello_decode(p, len, &h) != TN_OK) return FZ_CLOSE_LOCAL;
        FZ_CHECK(strlen(h.name) <= TN_NAME_MAX, "hello name longer than TN_NAME_MAX");
        ev(events, 'H', h.height, fz_hash(FZ_HASH_INIT, h.name, strlen(h.name)));
        *hello = true;
        return FZ_CLOSE_NONE;
    }
    uint64_t v;
    switch (type) {
    case TN_MSG_HELLO:
        ev(events, 'D', 0, 0); /* duplicate hello: a strike */
        break;
    case TN_MSG_PING:
    case TN_MSG_PONG:
        ev(events, 'U', type, tn_u64_msg_decode(p, len, &v) == TN_OK ? v : ~0ull);
        break;
    default:
        ev(events, type >= TN_MSG_EXPERIMENT_FIRST ? 'X' : 'I', type, 0);
        break;
    }
    return FZ_CLOSE_NONE;
}

void fz_model_init(fz_model_t *m, int start, const tn_hs_t *local_hs)
{
    memset(m, 0, sizeof *m);
    m->hs = *local_hs;
    m->ours = FZ.pro_r;
    m->max_frame = FZ_MAX_FRAME;
    m->events = FZ_HASH_INIT;
    tn_buf_init(&m->rpart, FZ_MAX_FRAME);
    m->state = start == FZ_START_FLIGHT ? TN_SS_FLIGHT : TN_SS_AUTH;
    if (start != FZ_START_FLIGHT) m->rx = m->hs.rx;
    if (start == FZ_START_OPEN) { /* the implied auth frame was counter 0 */
        m->state = TN_SS_OPEN;
        m->rx.counter = 1;
    }
}

void fz_model_free(fz_model_t *m)
{
    tn_buf_free(&m->rpart);
}

static void model_close(fz_model_t *m, int why)
{
    if (m->state == TN_SS_CLOSING) return;
    m->state = TN_SS_CLOSING;
    m->close = why;
    ev(&m->events, 'C', (uint64_t)why, 0);
}

static void handle_flight(fz_model_t *m, const uint8_t *in)
{
    int rc = tn_hs_read_flight(&m->hs, &m->ours, in);
    if (rc == TN_EMAGIC) return model_close(m, FZ_CLOSE_MAGIC);
    if (rc == TN_EVERSION) return model_close(m, FZ_CLOSE_VERSION);
    if (rc) return model_close(m, FZ_CLOSE_CRYPTO);
    m->rx = m->hs.rx;
    m->state = TN_SS_AUTH;
    ev(&m->events, 'F', 0, 0);
}

static void handle_auth(fz_model_t *m, const uint8_t *p, uint32_t len)
{
    if (len != TN_MSG_HDR_LEN + TN_AUTH_LEN || tn_get_u16(p) != TN_MSG_AUTH ||
        tn_get_u32(p + 2) != TN_AUTH_LEN)
        return model_close(m, FZ_CLOSE_PROTOCOL);
    if (tn_hs_verify(&m->hs, p + TN_MSG_HDR_LEN) != TN_OK) return model_close(m, FZ_CLOSE_CRYPTO);
    m->state = TN_SS_OPEN;
    ev(&m->events, 'O', fz_hash(FZ_HASH_INIT, m->hs.their_id, TN_ID_LEN), 0);
}

static void handle_frame(fz_model_t *m, uint8_t *ct, uint32_t clen)
{
    if (tn_frame_open(&m->rx, m->hdr, ct, clen) != TN_OK) return model_close(m, FZ_CLOSE_CRYPTO);
    m->n_frames++;
    uint32_t plen = clen - TN_TAG_LEN;
    if (m->state == TN_SS_AUTH) return handle_auth(m, ct, plen);
    size_t off = 0;
    uint16_t type;
    const uint8_t *payload;
    uint32_t len;
    int rc;
    while ((rc = tn_msg_next(ct, plen, &off, &type, &payload, &len)) == 1) {
        FZ_CHECK(payload >= ct && payload + len <= ct + plen && off <= plen,
                 "tn_msg_next returned a message outside the frame");
        m->n_msgs++;
        if (type == TN_MSG_AUTH) return model_close(m, FZ_CLOSE_PROTOCOL);
        int verdict = fz_on_message(&m->hello, &m->events, type, payload, len);
        if (verdict) return model_close(m, verdict);
    }
    if (rc < 0) model_close(m, FZ_CLOSE_PROTOCOL);
}

#define AUTH_FRAME_CLEN (TN_MSG_HDR_LEN + TN_AUTH_LEN + TN_TAG_LEN)

/* tn_session.c consume(), with tn_session_close() replaced by model_close(). */
void fz_model_consume(fz_model_t *m, const uint8_t *cp, size_t n)
{
    /* consume() decrypts whole frames in place in the read buffer: work on a copy of exactly
     * n bytes so an overread is caught by ASan. */
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) abort();
    if (n) memcpy(buf, cp, n);
    uint8_t *p = buf;
    while (n > 0 &&
           (m->state == TN_SS_FLIGHT || m->state == TN_SS_AUTH || m->state == TN_SS_OPEN)) {
        if (m->state == TN_SS_FLIGHT) {
            size_t take = TN_MIN(TN_FLIGHT1_LEN - m->rpart.len, n);
            if (m->rpart.len == 0 && take == TN_FLIGHT1_LEN) {
                handle_flight(m, p);
            } else {
                if (tn_buf_append(&m->rpart, p, take)) {
                    model_close(m, FZ_CLOSE_LOCAL);
                    break;
                }
                if (m->rpart.len == TN_FLIGHT1_LEN) {
                    handle_flight(m, m->rpart.p);
                    tn_buf_free(&m->rpart);
                }
            }
            p += take;
            n -= take;
            continue;
        }
        if (m->frame_need == 0) {
            size_t take = TN_MIN(TN_FRAME_HDR_LEN - m->hdr_have, n);
            memcpy(m->hdr + m->hdr_have, p, take);
            m->hdr_have += (uint32_t)take;
            p += take;
            n -= take;
            if (m->hdr_have < TN_FRAME_HDR_LEN) break;
            uint32_t clen = 0;
            int rc = tn_frame_len(m->hdr, m->max_frame, &clen);
            if (rc == TN_OK && m->state == TN_SS_AUTH && clen != AUTH_FRAME_CLEN) rc = TN_EINVAL;
            if (rc) {
                FZ_CHECK(rc == TN_EINVAL || rc == TN_ETOOBIG, "tn_frame_len returned %d", rc);
                model_close(m, FZ_CLOSE_PROTOCOL);
                break;
            }
            FZ_CHECK(clen >= TN_FRAME_MIN && clen <= m->max_frame, "frame length %u accepted",
                     clen);
            m->frame_need = clen;
            m->hdr_have = 0;
            continue;
        }
        if (m->rpart.len == 0 && n >= m->frame_need) {
            uint32_t clen = m->frame_need;
            m->frame_need = 0;
            handle_frame(m, p, clen);
            p += clen;
            n -= clen;
            continue;
        }
        size_t take = TN_MIN(m->frame_need - m->rpart.len, n);
        if (tn_buf_append(&m->rpart, p, take)) {
            model_close(m, FZ_CLOSE_LOCAL);
            break;
        }
        p += take;
        n -= take;
        if (m->rpart.len == m->frame_need) {
            uint32_t clen = m->frame_need;
            m->frame_need = 0;
            handle_frame(m, m->rpart.p, clen);
            tn_buf_free(&m->rpart);
        }
    }
    free(buf);
}
