/* Fuzz target `session`: the real read path of tn_session.c — on_read, consume(), the
 * handshake, frame decryption and message dispatch — over a real loopback TCP connection
 * accepted by a tn_net_t on a libuv loop. The harness is the peer: it reads the node's
 * flight, derives the peer keys from it, builds the input's stream (same format as `frame`,
 * fz_common.h) and writes it in the input's chunks, waiting for the session to read each
 * chunk before sending the next, so every split point reaches consume() as its own read.
 * What the session reports (open, each message, the close reason) must equal what the model
 * of consume() in fz_common.c reports for the same bytes in one piece, and every session
 * must be freed when the connection ends. Slower than `frame` (a connection per input). */
#define _GNU_SOURCE
#include "fz_common.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SESSION_STREAM_MAX 8192 /* stream bytes per input */
#define SESSION_CHUNKS_MAX 256  /* each chunk is a loop round trip: the rest goes in one */
#define STALL_MS 5000           /* the session must make progress within this */

static struct {
    uv_loop_t loop;
    tn_net_t net;
    uv_tcp_t server;
    int port;
    tn_session_t *s; /* the session of the current input, NULL once closed */
    tn_hs_t hs_copy; /* its handshake state at start: the model runs on the same keys */
    bool accepted, closed;
    uint64_t events;
    bool hello;
} G;

static void ev(uint32_t kind, uint64_t a, uint64_t b)
{
    uint8_t e[20];
    tn_put_u32(e, kind);
    tn_put_u64(e + 4, a);
    tn_put_u64(e + 12, b);
    G.events = fz_hash(G.events, e, sizeof e);
}

static int on_prologue(tn_session_t *s, const tn_prologue_t *theirs)
{
    (void)s;
    (void)theirs;
    ev('F', 0, 0);
    return 0;
}

static void on_open(tn_session_t *s)
{
    ev('O', fz_hash(FZ_HASH_INIT, s->their_id, TN_ID_LEN), 0);
}

static void on_message(tn_session_t *s, uint16_t type, const uint8_t *p, uint32_t len)
{
    int verdict = fz_on_message(&G.hello, &G.events, type, p, len);
    if (verdict) tn_session_close(s, TN_CLOSE_LOCAL, "verdict");
}

static void on_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    (void)detail;
    int why = FZ_CLOSE_NONE;
    switch (reason) {
    case TN_CLOSE_MAGIC:
        why = FZ_CLOSE_MAGIC;
        break;
    case TN_CLOSE_VERSION:
        why = FZ_CLOSE_VERSION;
        break;
    case TN_CLOSE_CRYPTO:
        why = FZ_CLOSE_CRYPTO;
        break;
    case TN_CLOSE_PROTOCOL:
        why = FZ_CLOSE_PROTOCOL;
        break;
    case TN_CLOSE_LOCAL:
        why = FZ_CLOSE_LOCAL;
        break;
    default: /* EOF or reset: the harness hung up at the end of the input */
        break;
    }
    if (why) ev('C', (uint64_t)why, 0);
    if (s == G.s) G.s = NULL;
    G.closed = true;
}

static void on_connection(uv_stream_t *server, int status)
{
    tn_session_t *s;
    if (status < 0 || tn_session_accept(&G.net, server, &s) != TN_OK) return;
    tn_session_start(s);
    FZ_CHECK(s->hs != NULL && s->state == TN_SS_FLIGHT, "session did not start its handshake");
    G.hs_copy = *s->hs;
    G.s = s;
    G.accepted = true;
}

static void setup(void)
{
    fz_init();
    static const tn_session_cbs_t cbs = {on_prologue, on_open, on_message, on_close};
    if (uv_loop_init(&G.loop) || tn_net_init(&G.net, &G.loop, &cbs, NULL)) abort();
    memcpy(G.net.magic, FZ.pro_r.magic, 4);
    memcpy(G.net.id_sk, FZ.sk_r, TN_ID_SK_LEN);
    G.net.max_frame = FZ_MAX_FRAME;
    G.net.handshake_timeout_ms = 600000; /* never during one input */
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&G.loop, &G.server);
    if (uv_tcp_bind(&G.server, (struct sockaddr *)&sa, 0) ||
        uv_listen((uv_stream_t *)&G.server, 16, on_connection))
        abort();
    int len = sizeof sa;
    uv_tcp_getsockname(&G.server, (struct sockaddr *)&sa, &len);
    G.port = ntohs(sa.sin_port);
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Runs the loop until cond holds: without blocking while it has work, else waiting up to
 * 5 ms for some; fails the input if the session makes no progress for STALL_MS. */
#define PUMP_UNTIL(cond, ...)                                                                      \
    do {                                                                                           \
        uint64_t t0_ = now_ms();                                                                   \
        for (;;) {                                                                                 \
            uv_run(&G.loop, UV_RUN_NOWAIT);                                                        \
            if (cond) break;                                                                       \
            struct pollfd p_ = {uv_backend_fd(&G.loop), POLLIN, 0};                                \
            poll(&p_, 1, 5);                                                                       \
            FZ_CHECK(now_ms() - t0_ < STALL_MS, __VA_ARGS__);                                      \
        }                                                                                          \
    } while (0)

/* Reads (and drops, past `want`) what the node sent: its flight, its auth frame. */
static size_t drain(int fd, uint8_t *keep, size_t want, size_t have)
{
    uint8_t tmp[4096];
    for (;;) {
        ssize_t r = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (r <= 0) return have;
        for (ssize_t i = 0; i < r; i++)
            if (have < want) keep[have++] = tmp[i];
    }
}

/* Sends p[0..n) and waits until the session has read all of it or closed. */
static void deliver(int fd, const uint8_t *p, size_t n, uint64_t *sent)
{
    size_t off = 0;
    while (off < n && !G.closed) {
        ssize_t w = send(fd, p + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            *sent += (uint64_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            break; /* the node closed: on_close tells why */
        }
        if (off < n) PUMP_UNTIL(true, "unreachable");
    }
    PUMP_UNTIL(G.closed || G.s->bytes_in >= *sent, "session did not read %llu bytes",
               (unsigned long long)(*sent - G.s->bytes_in));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    G.s = NULL;
    G.accepted = G.closed = G.hello = false;
    G.events = FZ_HASH_INIT;

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", G.port, &sa);
    FZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s", strerror(errno));
    struct linger lg = {1, 0}; /* hang up with a reset: no TIME_WAIT per input */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int one = 1; /* no Nagle: each chunk leaves at once, as its own read */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t node_flight[TN_FLIGHT1_LEN];
    size_t have = 0;
    PUMP_UNTIL(G.accepted &&
                   (have = drain(fd, node_flight, TN_FLIGHT1_LEN, have)) == TN_FLIGHT1_LEN,
               "no flight from the node (accepted %d, %zu bytes)", G.accepted, have);
    /* The peer side: fixed keys, the node's flight. */
    tn_hs_t peer = FZ.peer_start;
    FZ_CHECK(tn_hs_read_flight(&peer, &FZ.pro_i, node_flight) == TN_OK, "node flight refused");
    uint8_t auth[TN_AUTH_LEN];
    tn_hs_auth(&peer, FZ.sk_i, auth);

    fz_stream_t st;
    fz_stream_build(&st, data, size, &peer.tx, auth);
    tn_buf_t all;
    tn_buf_init(&all, FZ_STREAM_MAX * 2);
    fz_stream_prefix(st.start, &peer.tx, auth, &all);
    size_t prefix = all.len;
    tn_buf_append(&all, st.stream.p, st.stream.len);
    tn_buf_free(&st.stream);

    if (all.len - prefix <= SESSION_STREAM_MAX) {
        fz_model_t m;
        fz_model_init(&m, FZ_START_FLIGHT, &G.hs_copy);
        fz_model_consume(&m, all.p, all.len);

        uint64_t sent = 0;
        if (prefix) deliver(fd, all.p, prefix, &sent);
        uint32_t seed = st.seed;
        int chunks = 0;
        for (size_t off = prefix; off < all.len && !G.closed; chunks++) {
            size_t want =
                chunks < SESSION_CHUNKS_MAX ? 1 + fz_rand(&seed) % st.chunk_max : SIZE_MAX;
            size_t take = TN_MIN(all.len - off, want);
            deliver(fd, all.p + off, take, &sent);
            off += take;
        }
        FZ_CHECK(G.closed == (m.state == TN_SS_CLOSING), "session %s, model %s (model close %d)",
                 G.closed ? "closed" : "open", m.state == TN_SS_CLOSING ? "closed" : "open",
                 m.close);
        FZ_CHECK(G.events == m.events,
                 "session and model saw different events (model: %u msgs, "
                 "close %d)",
                 m.n_msgs, m.close);
        if (!G.closed)
            FZ_CHECK(G.s->hdr_have == m.hdr_have && G.s->frame_need == m.frame_need &&
                         G.s->rpart.len == m.rpart.len,
                     "partial-read state differs from the model");
        fz_model_free(&m);
    }
    tn_buf_free(&all);
    tn_hs_wipe(&peer);

    close(fd);
    PUMP_UNTIL(G.net.live == 0, "%d session(s) not freed after hang-up", G.net.live);
    return 0;
}
