/* Peer connections (see tn_session.h): the read path turns bytes into the handshake flight,
 * then frames, then messages; the write path batches messages into one sealed frame and one
 * write per session per loop iteration. */
#include "tn_session.h"

#include "tn_traffic.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#define TN_TCP_KEEPALIVE_S 60 /* SO_KEEPALIVE idle time (seed §2 Persistent Connections) */
#define AUTH_FRAME_CLEN (TN_MSG_HDR_LEN + TN_AUTH_LEN + TN_TAG_LEN)

typedef struct {
    uv_write_t req;
    tn_session_t *s;
    uint8_t *mem;
    size_t len;
} wreq_t;

const char *tn_close_reason_name(tn_close_reason_t r)
{
    static const char *names[] = {"local",   "eof",    "io",       "timeout", "magic",
                                  "version", "crypto", "protocol", "backlog"};
    return (unsigned)r < TN_ARRAY_LEN(names) ? names[r] : "?";
}

/* ---- lifetime ---- */

static void on_handle_closed(uv_handle_t *h)
{
    tn_session_t *s = h->data;
    if (--s->handles_open > 0) return;
    tn_net_t *net = s->net;
    if (s->dirty) {
        for (tn_session_t **pp = &net->dirty; *pp; pp = &(*pp)->dirty_next)
            if (*pp == s) {
                *pp = s->dirty_next;
                break;
            }
    }
    tn_buf_free(&s->rpart);
    tn_buf_free(&s->wbuf);
    if (s->lim.defer_head) tn_bw_session_freed(s);
    if (s->hs) {
        sodium_memzero(s->hs, sizeof(*s->hs));
        free(s->hs);
    }
    sodium_memzero(&s->tx, sizeof s->tx);
    sodium_memzero(&s->rx, sizeof s->rx);
    free(s);
    net->live--;
}

static void release(tn_session_t *s)
{
    uv_read_stop((uv_stream_t *)&s->tcp);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
}

void tn_session_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    if (s->state == TN_SS_CLOSING) return;
    s->state = TN_SS_CLOSING;
    if (s->net->cbs.on_close) s->net->cbs.on_close(s, reason, detail ? detail : "");
    release(s);
}

static tn_session_t *session_new(tn_net_t *net, bool outbound)
{
    tn_session_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->net = net;
    s->outbound = outbound;
    s->gen = ++net->next_gen;
    s->state = outbound ? TN_SS_CONNECTING : TN_SS_FLIGHT;
    tn_buf_init(&s->rpart, (size_t)net->max_frame);
    tn_buf_init(&s->wbuf, (size_t)net->max_frame + TN_FRAME_HDR_LEN);
    uv_tcp_init(net->loop, &s->tcp);
    uv_timer_init(net->loop, &s->timer);
    s->tcp.data = s->timer.data = s;
    s->handles_open = 2;
    randombytes_buf(&s->nonce, sizeof s->nonce);
    net->live++;
    return s;
}

/* ---- write path ---- */

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    tn_session_t *s = w->s;
    s->queued -= w->len;
    free(w->mem);
    free(w);
    if (status < 0 && s->state != TN_SS_CLOSING) {
        char d[96];
        snprintf(d, sizeof d, "write: %s", uv_strerror(status));
        tn_session_close(s, TN_CLOSE_IO, d);
    }
}

/* Writes mem[0..len) and takes ownership of mem. */
static void write_owned(tn_session_t *s, uint8_t *mem, size_t len)
{
    s->bytes_out += len;
    if (s->net->bw && tn_bw_defer(s, mem, len)) return;
    tn_session_write_now(s, mem, len);
}

void tn_session_write_now(tn_session_t *s, uint8_t *mem, size_t len)
{
    size_t done = 0;
    if (s->queued == 0) { /* keep order: only bypass the queue when it is empty */
        uv_buf_t b = uv_buf_init((char *)mem, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
        if (n > 0) done = (size_t)n;
        if (done == len) {
            free(mem);
            return;
        }
    }
    wreq_t *w = malloc(sizeof(*w));
    if (!w) {
        free(mem);
        tn_session_close(s, TN_CLOSE_IO, "out of memory");
        return;
    }
    w->s = s;
    w->mem = mem;
    w->len = len - done;
    uv_buf_t b = uv_buf_init((char *)mem + done, (unsigned)(len - done));
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(mem);
        free(w);
        tn_session_close(s, TN_CLOSE_IO, uv_strerror(rc));
        return;
    }
    s->queued += w->len;
}

static int write_copy(tn_session_t *s, const uint8_t *p, size_t len)
{
    uint8_t *mem = malloc(len);
    if (!mem) return TN_ENOMEM;
    memcpy(mem, p, len);
    write_owned(s, mem, len);
    return TN_OK;
}

static void seal_and_write(tn_session_t *s)
{
    if (s->wbuf.len <= TN_FRAME_HDR_LEN) return;
    if (tn_buf_reserve(&s->wbuf, TN_TAG_LEN) != TN_OK) {
        tn_session_close(s, TN_CLOSE_IO, "out of memory sealing a frame");
        return;
    }
    size_t plen = s->wbuf.len - TN_FRAME_HDR_LEN;
    s->wbuf.len = tn_frame_seal(&s->tx, s->wbuf.p, plen);
    s->frames_out++;
    size_t len;
    uint8_t *mem = tn_buf_take(&s->wbuf, &len);
    write_owned(s, mem, len);
}

void tn_session_flush(tn_session_t *s)
{
    if (s->state == TN_SS_OPEN || s->state == TN_SS_AUTH) seal_and_write(s);
}

static void mark_dirty(tn_session_t *s)
{
    if (s->dirty) return;
    s->dirty = true;
    s->dirty_next = s->net->dirty;
    s->net->dirty = s;
}

static void flush_dirty(tn_net_t *net)
{
    while (net->dirty) {
        tn_session_t *s = net->dirty;
        net->dirty = s->dirty_next;
        s->dirty = false;
        s->dirty_next = NULL;
        tn_session_flush(s);
    }
}

static void on_check(uv_check_t *h)
{
    flush_dirty(h->data);
}
static void on_prepare(uv_prepare_t *h)
{
    flush_dirty(h->data);
}

size_t tn_session_backlog(const tn_session_t *s)
{
    return s->queued + s->lim.deferred + (s->wbuf.len > TN_FRAME_HDR_LEN ? s->wbuf.len : 0);
}

tn_buf_t *tn_session_batch(tn_session_t *s, size_t need)
{
    if (s->state != TN_SS_OPEN) return NULL;
    size_t room = s->net->max_frame - TN_TAG_LEN;
    if (TN_MSG_HDR_LEN + need > room) return NULL;
    if (s->wbuf.len > TN_FRAME_HDR_LEN && s->wbuf.len - TN_FRAME_HDR_LEN + need > room)
        seal_and_write(s);
    if (s->state != TN_SS_OPEN) return NULL;
    if (s->wbuf.len == 0) {
        if (tn_buf_reserve(&s->wbuf, TN_MAX(need + TN_FRAME_HDR_LEN + TN_TAG_LEN, 512)))
            return NULL;
        s->wbuf.len = TN_FRAME_HDR_LEN;
    }
    s->msg_off = s->wbuf.len;
    return &s->wbuf;
}

int tn_session_sent(tn_session_t *s)
{
    s->msgs_out++;
    if (s->wbuf.len >= s->msg_off + TN_MSG_HDR_LEN)
        tn_traffic_out(tn_get_u16(s->wbuf.p + s->msg_off),
                       (uint32_t)(s->wbuf.len - s->msg_off - TN_MSG_HDR_LEN));
    if (tn_session_backlog(s) > s->net->write_buffer_max) {
        tn_session_close(s, TN_CLOSE_BACKLOG, "peer is not reading (write buffer full)");
        return TN_ENOMEM;
    }
    if (s->wbuf.len - TN_FRAME_HDR_LEN >= TN_FRAME_TARGET)
        seal_and_write(s);
    else
        mark_dirty(s);
    return TN_OK;
}

int tn_session_send(tn_session_t *s, uint16_t type, const void *payload, uint32_t len)
{
    tn_buf_t *b = tn_session_batch(s, (size_t)len + TN_MSG_HDR_LEN);
    if (!b) return s->state == TN_SS_OPEN ? TN_ETOOBIG : TN_EINVAL;
    int rc = tn_msg_append(b, type, payload, len);
    if (rc) return rc;
    return tn_session_sent(s);
}

/* ---- read path ---- */

static void prologue_of(const tn_session_t *s, tn_prologue_t *p)
{
    memcpy(p->magic, s->net->magic, 4);
    p->version = TN_PROTO_VERSION;
    p->min_version = TN_PROTO_MIN_VERSION;
    p->nonce = s->nonce;
}

static void handle_flight(tn_session_t *s, const uint8_t *in)
{
    tn_prologue_t ours;
    char d[128];
    prologue_of(s, &ours);
    int rc = tn_hs_read_flight(s->hs, &ours, in);
    s->theirs = s->hs->theirs;
    if (rc == TN_EMAGIC) {
        const uint8_t *m = s->theirs.magic;
        snprintf(d, sizeof d, "magic %02x %02x %02x %02x", m[0], m[1], m[2], m[3]);
        tn_session_close(s, TN_CLOSE_MAGIC, d);
        return;
    }
    if (rc == TN_EVERSION) {
        snprintf(d, sizeof d, "theirs %u (min %u), ours %u (min %u)", s->theirs.version,
                 s->theirs.min_version, TN_PROTO_VERSION, TN_PROTO_MIN_VERSION);
        tn_session_close(s, TN_CLOSE_VERSION, d);
        return;
    }
    if (rc) {
        tn_session_close(s, TN_CLOSE_CRYPTO, "degenerate ephemeral key");
        return;
    }
    if (s->net->cbs.on_prologue && s->net->cbs.on_prologue(s, &s->theirs)) return;
    if (s->state == TN_SS_CLOSING) return;
    s->tx = s->hs->tx;
    s->rx = s->hs->rx;
    s->state = TN_SS_AUTH;
    uint8_t frame[TN_FRAME_HDR_LEN + AUTH_FRAME_CLEN];
    uint8_t auth[TN_AUTH_LEN];
    tn_hs_auth(s->hs, s->net->id_sk, auth);
    tn_put_u16(frame + 4, TN_MSG_AUTH);
    tn_put_u32(frame + 6, TN_AUTH_LEN);
    memcpy(frame + 4 + TN_MSG_HDR_LEN, auth, TN_AUTH_LEN);
    tn_frame_seal(&s->tx, frame, TN_MSG_HDR_LEN + TN_AUTH_LEN);
    s->frames_out++;
    if (write_copy(s, frame, sizeof frame)) tn_session_close(s, TN_CLOSE_IO, "out of memory");
}

static void handle_auth(tn_session_t *s, const uint8_t *p, uint32_t len)
{
    if (len != TN_MSG_HDR_LEN + TN_AUTH_LEN || tn_get_u16(p) != TN_MSG_AUTH ||
        tn_get_u32(p + 2) != TN_AUTH_LEN) {
        tn_session_close(s, TN_CLOSE_PROTOCOL, "first frame is not an auth message");
        return;
    }
    if (tn_hs_verify(s->hs, p + TN_MSG_HDR_LEN) != TN_OK) {
        tn_session_close(s, TN_CLOSE_CRYPTO, "auth signature does not verify");
        return;
    }
    memcpy(s->their_id, s->hs->their_id, TN_ID_LEN);
    sodium_memzero(s->hs, sizeof(*s->hs));
    free(s->hs);
    s->hs = NULL;
    s->state = TN_SS_OPEN;
    s->opened_ms = uv_now(s->net->loop);
    uv_timer_stop(&s->timer);
    if (s->net->cbs.on_open) s->net->cbs.on_open(s);
}

static void handle_frame(tn_session_t *s, uint8_t *ct, uint32_t clen)
{
    if (tn_frame_open(&s->rx, s->hdr, ct, clen) != TN_OK) {
        char d[128];
        snprintf(d, sizeof d, "frame %llu failed authentication (tampered, replayed, reordered)",
                 (unsigned long long)s->rx.counter);
        tn_session_close(s, TN_CLOSE_CRYPTO, d);
        return;
    }
    s->frames_in++;
    uint32_t plen = clen - TN_TAG_LEN;
    if (s->state == TN_SS_AUTH) {
        handle_auth(s, ct, plen);
        return;
    }
    size_t off = 0;
    uint16_t type;
    const uint8_t *payload;
    uint32_t len;
    int rc;
    while ((rc = tn_msg_next(ct, plen, &off, &type, &payload, &len)) == 1) {
        s->msgs_in++;
        tn_traffic_in(type, len);
        if (type == TN_MSG_AUTH) {
            tn_session_close(s, TN_CLOSE_PROTOCOL, "auth message after the handshake");
            return;
        }
        s->net->cbs.on_message(s, type, payload, len);
        if (s->state != TN_SS_OPEN) return;
    }
    if (rc < 0) tn_session_close(s, TN_CLOSE_PROTOCOL, "malformed message framing in frame");
}

static void consume(tn_session_t *s, uint8_t *p, size_t n)
{
    while (n > 0 &&
           (s->state == TN_SS_FLIGHT || s->state == TN_SS_AUTH || s->state == TN_SS_OPEN)) {
        if (s->state == TN_SS_FLIGHT) {
            size_t take = TN_MIN(TN_FLIGHT1_LEN - s->rpart.len, n);
            if (s->rpart.len == 0 && take == TN_FLIGHT1_LEN) {
                handle_flight(s, p);
            } else {
                if (tn_buf_append(&s->rpart, p, take)) {
                    tn_session_close(s, TN_CLOSE_IO, "out of memory");
                    return;
                }
                if (s->rpart.len == TN_FLIGHT1_LEN) {
                    handle_flight(s, s->rpart.p);
                    tn_buf_free(&s->rpart);
                }
            }
            p += take;
            n -= take;
            continue;
        }
        if (s->frame_need == 0) {
            size_t take = TN_MIN(TN_FRAME_HDR_LEN - s->hdr_have, n);
            memcpy(s->hdr + s->hdr_have, p, take);
            s->hdr_have += (uint32_t)take;
            p += take;
            n -= take;
            if (s->hdr_have < TN_FRAME_HDR_LEN) return;
            uint32_t clen = 0;
            int rc = tn_frame_len(s->hdr, s->net->max_frame, &clen);
            if (rc == TN_OK && s->state == TN_SS_AUTH && clen != AUTH_FRAME_CLEN) rc = TN_EINVAL;
            if (rc) {
                char d[96];
                snprintf(d, sizeof d, "frame length %u %s", tn_get_u32(s->hdr),
                         rc == TN_ETOOBIG ? "above maximum" : "invalid here");
                tn_session_close(s, TN_CLOSE_PROTOCOL, d);
                return;
            }
            s->frame_need = clen;
            s->hdr_have = 0;
            continue;
        }
        if (s->rpart.len == 0 && n >= s->frame_need) { /* whole frame in the read buffer */
            uint32_t clen = s->frame_need;
            s->frame_need = 0;
            handle_frame(s, p, clen);
            p += clen;
            n -= clen;
            continue;
        }
        size_t take = TN_MIN(s->frame_need - s->rpart.len, n);
        if (tn_buf_append(&s->rpart, p, take)) {
            tn_session_close(s, TN_CLOSE_IO, "out of memory");
            return;
        }
        p += take;
        n -= take;
        if (s->rpart.len == s->frame_need) {
            uint32_t clen = s->frame_need;
            s->frame_need = 0;
            handle_frame(s, s->rpart.p, clen);
            tn_buf_free(&s->rpart);
        }
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tn_session_t *s = h->data;
    *buf = uv_buf_init((char *)s->net->rbuf, TN_READ_CHUNK);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    tn_session_t *s = st->data;
    if (nread < 0) {
        if (nread == UV_EOF)
            tn_session_close(s, TN_CLOSE_EOF,
                             s->frame_need || s->hdr_have || s->rpart.len
                                 ? "connection closed mid-frame"
                                 : "connection closed by peer");
        else
            tn_session_close(s, TN_CLOSE_IO, uv_strerror((int)nread));
        return;
    }
    s->bytes_in += (uint64_t)nread;
    s->last_rx_ms = uv_now(s->net->loop);
    consume(s, (uint8_t *)buf->base, (size_t)nread);
    if (s->net->bw && s->state != TN_SS_CLOSING) tn_bw_on_read(s, (size_t)nread);
}

void tn_session_read_pause(tn_session_t *s, bool pause)
{
    if (s->state != TN_SS_FLIGHT && s->state != TN_SS_AUTH && s->state != TN_SS_OPEN) return;
    if (pause)
        uv_read_stop((uv_stream_t *)&s->tcp);
    else
        uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
}

/* ---- handshake start, dial, accept ---- */

static void on_timer(uv_timer_t *t);

static void start_handshake(tn_session_t *s)
{
    tn_prologue_t ours;
    s->hs = malloc(sizeof(*s->hs));
    if (!s->hs) {
        tn_session_close(s, TN_CLOSE_IO, "out of memory");
        return;
    }
    prologue_of(s, &ours);
    tn_hs_start(s->hs, s->outbound, &ours, NULL);
    s->state = TN_SS_FLIGHT;
    if (write_copy(s, s->hs->flight_mine, TN_FLIGHT1_LEN)) {
        tn_session_close(s, TN_CLOSE_IO, "out of memory");
        return;
    }
    if (s->state != TN_SS_FLIGHT) return;
    int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc) tn_session_close(s, TN_CLOSE_IO, uv_strerror(rc));
}

static void on_timer(uv_timer_t *t)
{
    tn_session_t *s = t->data;
    if (s->state == TN_SS_DELAYED) {
        uint64_t left = s->net->connect_timeout_ms > s->net->test_delay_ms
                            ? s->net->connect_timeout_ms - s->net->test_delay_ms
                            : 1;
        uv_timer_start(&s->timer, on_timer, left, 0);
        start_handshake(s);
        return;
    }
    char d[64];
    snprintf(d, sizeof d, "%s not completed in time",
             s->state == TN_SS_CONNECTING ? "TCP connect" : "handshake");
    tn_session_close(s, TN_CLOSE_TIMEOUT, d);
}

static void tune_socket(tn_session_t *s)
{
    uv_tcp_nodelay(&s->tcp, 1); /* we batch ourselves; Nagle would only add latency */
    uv_tcp_keepalive(&s->tcp, 1, TN_TCP_KEEPALIVE_S);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len) == 0)
        tn_addr_from_sockaddr((struct sockaddr *)&ss, &s->local);
}

static void on_connect(uv_connect_t *req, int status)
{
    tn_session_t *s = req->data;
    free(req);
    if (status == UV_ECANCELED || s->state == TN_SS_CLOSING) return;
    if (status < 0) {
        char d[96];
        snprintf(d, sizeof d, "connect: %s", uv_strerror(status));
        tn_session_close(s, TN_CLOSE_IO, d);
        return;
    }
    tune_socket(s);
    if (s->net->test_delay_ms) {
        s->state = TN_SS_DELAYED;
        uv_timer_start(&s->timer, on_timer, s->net->test_delay_ms, 0);
        return;
    }
    start_handshake(s);
}

/* Frees a session that never reached its owner (no on_close). */
static void discard(tn_session_t *s)
{
    s->state = TN_SS_CLOSING;
    release(s);
}

int tn_session_dial(tn_net_t *net, const tn_addr_t *to, const tn_addr_t *bind, tn_session_t **out)
{
    tn_session_t *s = session_new(net, true);
    if (!s) return TN_ENOMEM;
    s->remote = *to;
    struct sockaddr_storage ss;
    int rc = 0;
    if (bind && !tn_addr_is_any(bind)) {
        tn_addr_t b = *bind;
        b.port = 0;
        tn_addr_to_sockaddr(&b, &ss);
        rc = uv_tcp_bind(&s->tcp, (struct sockaddr *)&ss, 0);
    }
    uv_connect_t *req = rc == 0 ? malloc(sizeof(*req)) : NULL;
    if (req) {
        req->data = s;
        tn_addr_to_sockaddr(to, &ss);
        rc = uv_tcp_connect(req, &s->tcp, (struct sockaddr *)&ss, on_connect);
        if (rc) free(req);
    } else if (rc == 0) {
        rc = UV_ENOMEM;
    }
    if (rc) {
        discard(s);
        return rc == UV_ENOMEM ? TN_ENOMEM : TN_EIO;
    }
    uv_timer_start(&s->timer, on_timer, net->connect_timeout_ms, 0);
    *out = s;
    return TN_OK;
}

int tn_session_accept(tn_net_t *net, uv_stream_t *server, tn_session_t **out)
{
    tn_session_t *s = session_new(net, false);
    if (!s) return TN_ENOMEM;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_accept(server, (uv_stream_t *)&s->tcp) != 0 ||
        uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) != 0 ||
        tn_addr_from_sockaddr((struct sockaddr *)&ss, &s->remote) != 0) {
        discard(s);
        return TN_EIO;
    }
    tune_socket(s);
    *out = s;
    return TN_OK;
}

int tn_session_adopt(tn_net_t *net, uv_os_sock_t fd, const tn_addr_t *remote, tn_session_t **out)
{
    tn_session_t *s = session_new(net, false);
    if (!s) return TN_ENOMEM;
    if (uv_tcp_open(&s->tcp, fd) != 0) {
        discard(s);
        return TN_EIO;
    }
    s->remote = *remote;
    tune_socket(s);
    *out = s;
    return TN_OK;
}

void tn_session_start(tn_session_t *s)
{
    uv_timer_start(&s->timer, on_timer, s->net->handshake_timeout_ms, 0);
    start_handshake(s);
}

void tn_session_discard(tn_session_t *s)
{
    discard(s);
}

/* ---- net ---- */

int tn_net_init(tn_net_t *net, uv_loop_t *loop, const tn_session_cbs_t *cbs, void *owner)
{
    memset(net, 0, sizeof(*net));
    net->loop = loop;
    net->cbs = *cbs;
    net->owner = owner;
    net->rbuf = malloc(TN_READ_CHUNK);
    if (!net->rbuf) return TN_ENOMEM;
    net->max_frame = 8u << 20;
    net->write_buffer_max = 16u << 20;
    net->connect_timeout_ms = 30000;
    net->handshake_timeout_ms = 10000;
    uv_check_init(loop, &net->flusher);
    net->flusher.data = net;
    uv_check_start(&net->flusher, on_check);
    uv_unref((uv_handle_t *)&net->flusher);
    uv_prepare_init(loop, &net->flusher2);
    net->flusher2.data = net;
    uv_prepare_start(&net->flusher2, on_prepare);
    uv_unref((uv_handle_t *)&net->flusher2);
    return TN_OK;
}

static void on_flusher_closed(uv_handle_t *h)
{
    tn_net_t *net = h->data;
    free(net->rbuf);
    net->rbuf = NULL;
}

void tn_net_close(tn_net_t *net)
{
    sodium_memzero(net->id_sk, sizeof net->id_sk);
    uv_close((uv_handle_t *)&net->flusher2, NULL);
    uv_close((uv_handle_t *)&net->flusher, on_flusher_closed);
}
