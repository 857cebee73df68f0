/* Bench `stream_encrypted` (DESIGN.md "Benchmarks"): one-way stream of 250-byte messages between
 * two processes over loopback TCP through the real session code, and the same stream over bare
 * libuv TCP and through bare AEAD sealing as floors measured in the same run. Prints one JSON
 * object {"params", "figures", "floors"} on stdout and progress on stderr (tests/bench/run.sh). */
#include "tn_proto.h"
#include "tn_session.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bench_util.h"

#define MSG_TYPE 0x8001 /* experiment range: the session passes it through uninterpreted */

typedef struct {
    double warmup_s;   /* after the handshake, before the window opens */
    double duration_s; /* measured window */
    int reps;
    uint32_t size;      /* payload bytes per message */
    size_t backlog_max; /* sender keeps tn_session_backlog (or its TCP equivalent) under this */
    double hs_timeout_s;
} cfg_t;

static cfg_t C = {1.0, 3.0, 3, 250, 4u << 20, 5.0};
static uint64_t test_delay_ms; /* --test-delay-ms: stalls the dialer's handshake (checks the
                                * bench fails loudly when the handshake does not complete) */

enum { MODE_SESSION, MODE_TCP };
static const char *mode_name[] = {"session", "tcp"};

/* What each child reports to the parent over its pipe (same binary: a raw struct is fine). */
typedef struct {
    int ok;
    char err[200];
    uint64_t msgs, bytes; /* receiver: in the window; sender: whole connection */
    uint64_t ns;          /* receiver: window length; sender: open to close */
    uint64_t cpu_ns;      /* process CPU over the same span */
    uint64_t total_msgs;  /* receiver: whole connection */
    uint64_t bad;         /* messages of an unexpected type or length */
    uint64_t frames;      /* receiver, session mode: frames opened in the window */
} report_t;

/* ---- helpers ---- */

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

static void write_report(int fd, const report_t *r)
{
    const char *p = (const char *)r;
    size_t left = sizeof *r;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* the parent is gone: it reports the failure */
        p += n;
        left -= (size_t)n;
    }
}

/* Child side: reports a failure and leaves at once (no loop teardown needed in a child). */
__attribute__((noreturn, format(printf, 2, 3))) static void child_fail(int fd, const char *fmt, ...)
{
    report_t r;
    memset(&r, 0, sizeof r);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.err, sizeof r.err, fmt, ap);
    va_end(ap);
    write_report(fd, &r);
    _exit(1);
}

static uint64_t ms_of(double s)
{
    return (uint64_t)(s * 1000.0 + 0.5);
}

static void net_setup(tn_net_t *net, uv_loop_t *loop, const tn_session_cbs_t *cbs, int fd)
{
    uint8_t pk[TN_ID_LEN];
    if (tn_net_init(net, loop, cbs, NULL)) child_fail(fd, "tn_net_init failed");
    crypto_sign_keypair(pk, net->id_sk);
    memcpy(net->magic, "TNbn", 4);
    net->connect_timeout_ms = ms_of(C.hs_timeout_s);
    net->handshake_timeout_ms = ms_of(C.hs_timeout_s);
}

/* ---- receiver: counts messages, measures one window after the warm-up ---- */

static struct {
    int mode, fd;
    uv_loop_t loop;
    tn_net_t net;
    uv_tcp_t server, conn; /* conn: TCP mode only */
    tn_session_t *s;
    uv_timer_t timer; /* handshake deadline, then warm-up end, then window end */
    int phase;        /* 0 connecting, 1 warm-up, 2 window, 3 done */
    uint64_t msgs, bytes, bad, t0, cpu0, msgs0, bytes0, frames0;
    /* TCP mode message parser */
    uint8_t hdr[TN_MSG_HDR_LEN];
    uint32_t hdr_have;
    uint64_t skip; /* payload bytes of the current message still to pass */
    uint8_t rbuf[TN_READ_CHUNK];
} R;

static void rx_count(uint16_t type, uint32_t len)
{
    R.msgs++;
    R.bytes += len;
    if (type != MSG_TYPE || len != C.size) R.bad++;
}

static uint64_t rx_frames(void)
{
    return R.mode == MODE_SESSION && R.s ? R.s->frames_in : 0;
}

static void rx_timer(uv_timer_t *t)
{
    if (R.phase == 0)
        child_fail(R.fd, "%s: handshake did not complete within %.1f s", mode_name[R.mode],
                   C.hs_timeout_s);
    if (R.phase == 1) {
        R.phase = 2;
        R.t0 = uv_hrtime();
        R.cpu0 = cpu_ns();
        R.msgs0 = R.msgs;
        R.bytes0 = R.bytes;
        R.frames0 = rx_frames();
        uv_timer_start(t, rx_timer, ms_of(C.duration_s), 0);
        return;
    }
    report_t r;
    memset(&r, 0, sizeof r);
    r.ok = 1;
    r.ns = uv_hrtime() - R.t0;
    r.cpu_ns = cpu_ns() - R.cpu0;
    r.msgs = R.msgs - R.msgs0;
    r.bytes = R.bytes - R.bytes0;
    r.frames = rx_frames() - R.frames0;
    r.total_msgs = R.msgs;
    r.bad = R.bad;
    R.phase = 3;
    write_report(R.fd, &r);
    /* Exit with data unread: the sender sees a reset and reports what it sent. */
    _exit(0);
}

static void rx_opened(void)
{
    R.phase = 1;
    uv_timer_start(&R.timer, rx_timer, ms_of(C.warmup_s), 0);
}

static void rx_on_open(tn_session_t *s)
{
    (void)s;
    rx_opened();
}

static void rx_on_message(tn_session_t *s, uint16_t type, const uint8_t *payload, uint32_t len)
{
    (void)s;
    (void)payload;
    rx_count(type, len);
}

static void rx_on_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    (void)s;
    child_fail(R.fd, "receiver session closed in phase %d: %s (%s)", R.phase,
               tn_close_reason_name(reason), detail);
}

static void rx_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)R.rbuf, sizeof R.rbuf);
}

/* Splits the byte stream at the 6-byte message headers, as the session does inside frames. */
static void rx_tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)st;
    if (nread < 0) child_fail(R.fd, "receiver TCP read: %s", uv_strerror((int)nread));
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    while (n > 0) {
        if (R.skip > 0) {
            size_t k = R.skip < n ? (size_t)R.skip : n;
            R.skip -= k;
            p += k;
            n -= k;
            continue;
        }
        size_t k = TN_MIN(TN_MSG_HDR_LEN - R.hdr_have, n);
        memcpy(R.hdr + R.hdr_have, p, k);
        R.hdr_have += (uint32_t)k;
        p += k;
        n -= k;
        if (R.hdr_have < TN_MSG_HDR_LEN) break;
        R.hdr_have = 0;
        uint32_t len = tn_get_u32(R.hdr + 2);
        rx_count(tn_get_u16(R.hdr), len);
        R.skip = len;
    }
}

static void rx_on_conn(uv_stream_t *server, int status)
{
    if (status < 0) child_fail(R.fd, "receiver listen: %s", uv_strerror(status));
    if (R.mode == MODE_SESSION) {
        if (tn_session_accept(&R.net, server, &R.s)) child_fail(R.fd, "tn_session_accept failed");
        tn_session_start(R.s);
    } else {
        uv_tcp_init(&R.loop, &R.conn);
        if (uv_accept(server, (uv_stream_t *)&R.conn)) child_fail(R.fd, "uv_accept failed");
        uv_tcp_nodelay(&R.conn, 1); /* as the session's tune_socket */
        uv_tcp_keepalive(&R.conn, 1, 60);
        uv_read_start((uv_stream_t *)&R.conn, rx_tcp_alloc, rx_tcp_read);
        rx_opened();
    }
    uv_close((uv_handle_t *)server, NULL); /* one connection per measurement */
}

static int run_receiver(int mode, int fd)
{
    R.mode = mode;
    R.fd = fd;
    uv_loop_init(&R.loop);
    if (mode == MODE_SESSION) {
        tn_session_cbs_t cbs = {
            .on_open = rx_on_open, .on_message = rx_on_message, .on_close = rx_on_close};
        net_setup(&R.net, &R.loop, &cbs, fd);
    }
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&R.loop, &R.server);
    int rc = uv_tcp_bind(&R.server, (struct sockaddr *)&sa, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&R.server, 8, rx_on_conn);
    int len = sizeof sa;
    if (!rc) rc = uv_tcp_getsockname(&R.server, (struct sockaddr *)&sa, &len);
    if (rc) child_fail(fd, "receiver listen: %s", uv_strerror(rc));
    uint16_t port = ntohs(sa.sin_port);
    if (write(fd, &port, sizeof port) != sizeof port) _exit(1);
    uv_timer_init(&R.loop, &R.timer);
    uv_timer_start(&R.timer, rx_timer, ms_of(C.hs_timeout_s), 0);
    uv_run(&R.loop, UV_RUN_DEFAULT);
    child_fail(fd, "receiver loop ended in phase %d", R.phase);
    return 1;
}

/* ---- sender: pushes messages while the backlog is under its bound ---- */

typedef struct {
    uv_write_t req;
    uint8_t *mem;
    size_t len;
} twreq_t;

static struct {
    int mode, fd;
    uv_loop_t loop;
    tn_net_t net;
    tn_session_t *s;
    uv_tcp_t conn; /* TCP mode */
    uv_connect_t creq;
    uv_timer_t timer; /* handshake deadline, then a lifetime bound */
    uv_idle_t pump;   /* active while there is room: keeps the loop from blocking */
    uv_check_t refill;
    uv_prepare_t flush2; /* TCP mode: flush before blocking, as tn_net's flusher2 */
    bool open, pumping;
    uint64_t sent, t0, cpu0;
    uint8_t payload[65536];
    /* TCP mode batch: [messages...], written at TN_FRAME_TARGET or once per iteration */
    uint8_t *batch;
    size_t blen, queued;
} S;

static size_t tx_backlog(void)
{
    if (S.mode == MODE_SESSION) return tn_session_backlog(S.s);
    return S.queued + S.blen;
}

static void tx_report(void)
{
    report_t r;
    memset(&r, 0, sizeof r);
    r.ok = 1;
    r.msgs = S.sent;
    r.bytes = S.sent * C.size;
    r.ns = uv_hrtime() - S.t0;
    r.cpu_ns = cpu_ns() - S.cpu0;
    write_report(S.fd, &r);
    _exit(0);
}

static void tx_on_written(uv_write_t *req, int status)
{
    twreq_t *w = (twreq_t *)req;
    S.queued -= w->len;
    free(w->mem);
    free(w);
    if (status < 0) tx_report(); /* the receiver left: the measurement is over */
}

/* The session's write_owned without the crypto: try the socket first, queue the rest. */
static void tx_tcp_write_batch(void)
{
    if (S.blen == 0) return;
    uint8_t *mem = S.batch;
    size_t len = S.blen, done = 0;
    S.batch = NULL;
    S.blen = 0;
    if (S.queued == 0) {
        uv_buf_t b = uv_buf_init((char *)mem, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&S.conn, &b, 1);
        if (n > 0) done = (size_t)n;
        if (n < 0 && n != UV_EAGAIN) tx_report();
        if (done == len) {
            free(mem);
            return;
        }
    }
    twreq_t *w = malloc(sizeof *w);
    if (!w) child_fail(S.fd, "out of memory");
    w->mem = mem;
    w->len = len - done;
    uv_buf_t b = uv_buf_init((char *)mem + done, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&S.conn, &b, 1, tx_on_written)) tx_report();
    S.queued += w->len;
}

static int tx_tcp_send(void)
{
    if (!S.batch) {
        S.batch = malloc(TN_FRAME_TARGET + TN_MSG_HDR_LEN + C.size);
        if (!S.batch) return -1;
    }
    uint8_t *p = S.batch + S.blen;
    tn_put_u16(p, MSG_TYPE);
    tn_put_u32(p + 2, C.size);
    memcpy(p + TN_MSG_HDR_LEN, S.payload, C.size);
    S.blen += TN_MSG_HDR_LEN + C.size;
    if (S.blen >= TN_FRAME_TARGET) tx_tcp_write_batch();
    return 0;
}

static void tx_pump(uv_idle_t *h)
{
    while (tx_backlog() < C.backlog_max) {
        int rc = S.mode == MODE_SESSION ? tn_session_send(S.s, MSG_TYPE, S.payload, C.size)
                                        : tx_tcp_send();
        if (rc)
            child_fail(S.fd, "send failed after %llu messages: %d", (unsigned long long)S.sent, rc);
        S.sent++;
    }
    uv_idle_stop(h);
    S.pumping = false;
}

/* Runs after the iteration's I/O (write completions): resume pumping once there is room. */
static void tx_refill(uv_check_t *h)
{
    (void)h;
    if (S.mode == MODE_TCP) tx_tcp_write_batch();
    if (S.open && !S.pumping && tx_backlog() < C.backlog_max) {
        S.pumping = true;
        uv_idle_start(&S.pump, tx_pump);
    }
}

static void tx_flush2(uv_prepare_t *h)
{
    (void)h;
    tx_tcp_write_batch();
}

static void tx_timer(uv_timer_t *t)
{
    (void)t;
    if (!S.open)
        child_fail(S.fd, "%s: handshake did not complete within %.1f s", mode_name[S.mode],
                   C.hs_timeout_s);
    child_fail(S.fd, "sender: the receiver never closed the connection");
}

static void tx_opened(void)
{
    S.open = true;
    S.t0 = uv_hrtime();
    S.cpu0 = cpu_ns();
    uv_timer_start(&S.timer, tx_timer, ms_of(C.warmup_s + C.duration_s + 10), 0);
    tx_refill(&S.refill);
}

static void tx_on_open(tn_session_t *s)
{
    (void)s;
    tx_opened();
}

static void tx_on_message(tn_session_t *s, uint16_t type, const uint8_t *payload, uint32_t len)
{
    (void)s;
    (void)type;
    (void)payload;
    (void)len;
}

static void tx_on_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    (void)s;
    if (!S.open)
        child_fail(S.fd, "sender session closed before opening: %s (%s)",
                   tn_close_reason_name(reason), detail);
    if (reason == TN_CLOSE_BACKLOG) child_fail(S.fd, "sender closed on backlog: %s", detail);
    tx_report(); /* eof or reset: the receiver finished its window */
}

static void tx_on_connect(uv_connect_t *req, int status)
{
    (void)req;
    if (status < 0) child_fail(S.fd, "sender connect: %s", uv_strerror(status));
    uv_tcp_nodelay(&S.conn, 1);
    uv_tcp_keepalive(&S.conn, 1, 60);
    tx_opened();
}

static int run_sender(int mode, int fd, uint16_t port)
{
    S.mode = mode;
    S.fd = fd;
    for (size_t i = 0; i < sizeof S.payload; i++) S.payload[i] = (uint8_t)(i * 7);
    uv_loop_init(&S.loop);
    uv_idle_init(&S.loop, &S.pump);
    uv_timer_init(&S.loop, &S.timer);
    uv_timer_start(&S.timer, tx_timer, ms_of(C.hs_timeout_s), 0);
    if (mode == MODE_SESSION) {
        tn_session_cbs_t cbs = {
            .on_open = tx_on_open, .on_message = tx_on_message, .on_close = tx_on_close};
        net_setup(&S.net, &S.loop, &cbs, fd);
        tn_addr_t to;
        char text[32];
        snprintf(text, sizeof text, "127.0.0.1:%u", port);
        if (tn_addr_parse(text, &to)) child_fail(fd, "bad address %s", text);
        S.net.test_delay_ms = test_delay_ms;
        if (tn_session_dial(&S.net, &to, NULL, &S.s)) child_fail(fd, "tn_session_dial failed");
    } else {
        struct sockaddr_in sa;
        uv_ip4_addr("127.0.0.1", port, &sa);
        uv_tcp_init(&S.loop, &S.conn);
        int rc = uv_tcp_connect(&S.creq, &S.conn, (struct sockaddr *)&sa, tx_on_connect);
        if (rc) child_fail(fd, "sender connect: %s", uv_strerror(rc));
        uv_prepare_init(&S.loop, &S.flush2);
        uv_prepare_start(&S.flush2, tx_flush2);
    }
    /* Started after tn_net_init, so it runs before tn_net's flusher in the check phase. */
    uv_check_init(&S.loop, &S.refill);
    uv_check_start(&S.refill, tx_refill);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    child_fail(fd, "sender loop ended");
    return 1;
}

/* ---- parent: forks the two ends of one measurement, collects their reports ---- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Reads exactly n bytes before the deadline (monotonic ms); 0, or -1 with *why set. */
static int read_deadline(int fd, void *buf, size_t n, uint64_t deadline, const char **why)
{
    uint8_t *p = buf;
    while (n > 0) {
        uint64_t now = tn_mono_ms();
        if (now >= deadline || interrupted) {
            *why = interrupted ? "interrupted" : "timed out";
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) continue;
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            *why = "child exited without reporting";
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "stream_encrypted: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

typedef struct {
    double msg_per_s, bytes_per_s, rx_cpu, tx_cpu, msgs_per_frame;
} sample_t;

static pid_t spawn(int mode, bool receiver, int fd, int other_fd, uint16_t port)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(other_fd);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        _exit(receiver ? run_receiver(mode, fd) : run_sender(mode, fd, port));
    }
    return pid;
}

static void reap(pid_t pid, const char *who, bool must_succeed)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (must_succeed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fail("%s exited abnormally (status 0x%x)", who, st);
}

static sample_t measure(int mode)
{
    int rp[2], sp[2];
    if (pipe(rp)) fail("pipe: %s", strerror(errno));
    pid_t rx = spawn(mode, true, rp[1], rp[0], 0);
    close(rp[1]);
    uint16_t port = 0;
    const char *why = "";
    report_t rr, sr;
    if (read_deadline(rp[0], &port, sizeof port, tn_mono_ms() + 5000, &why)) {
        kill(rx, SIGKILL);
        reap(rx, "receiver", false);
        fail("%s receiver did not start listening: %s", mode_name[mode], why);
    }
    if (pipe(sp)) fail("pipe: %s", strerror(errno));
    pid_t tx = spawn(mode, false, sp[1], sp[0], port);
    close(sp[1]);
    uint64_t deadline = tn_mono_ms() + ms_of(C.hs_timeout_s + C.warmup_s + C.duration_s + 10);
    int rrc = read_deadline(rp[0], &rr, sizeof rr, deadline, &why);
    const char *rwhy = why;
    int src = read_deadline(sp[0], &sr, sizeof sr, deadline + 5000, &why);
    if (rrc) kill(rx, SIGKILL);
    if (src) kill(tx, SIGKILL);
    reap(rx, "receiver", false);
    reap(tx, "sender", false);
    close(rp[0]);
    close(sp[0]);
    if (rrc) fail("%s receiver: %s", mode_name[mode], rwhy);
    if (!rr.ok) fail("%s", rr.err);
    if (src) fail("%s sender: %s", mode_name[mode], why);
    if (!sr.ok) fail("%s", sr.err);
    /* Sanity: this is a measurement, but of a stream that must actually have flowed. */
    if (rr.msgs == 0) fail("%s: receiver counted no messages in the window", mode_name[mode]);
    if (rr.bad)
        fail("%s: %llu messages of the wrong type or size", mode_name[mode],
             (unsigned long long)rr.bad);
    if (sr.msgs < rr.total_msgs)
        fail("%s: sender sent %llu messages but the receiver counted %llu", mode_name[mode],
             (unsigned long long)sr.msgs, (unsigned long long)rr.total_msgs);
    if (rr.bytes != rr.msgs * C.size) fail("%s: byte count does not match", mode_name[mode]);
    sample_t x;
    double secs = (double)rr.ns / 1e9;
    x.msg_per_s = (double)rr.msgs / secs;
    x.bytes_per_s = (double)rr.bytes / secs;
    x.rx_cpu = (double)rr.cpu_ns / (double)rr.ns;
    x.tx_cpu = (double)sr.cpu_ns / (double)sr.ns;
    x.msgs_per_frame = rr.frames ? (double)rr.msgs / (double)rr.frames : 0;
    fprintf(stderr,
            "stream_encrypted:   %-7s %10.0f msg/s %8.1f MB/s  cpu rx %.2f tx %.2f  "
            "(sent %llu, received %llu)\n",
            mode_name[mode], x.msg_per_s, x.bytes_per_s / 1e6, x.rx_cpu, x.tx_cpu,
            (unsigned long long)sr.msgs, (unsigned long long)rr.total_msgs);
    return x;
}

/* One core sealing full batches the way the session does: the crypto limit per direction. */
static double aead_msg_per_s(void)
{
    size_t m = TN_MSG_HDR_LEN + C.size;
    size_t per_frame = (TN_FRAME_TARGET + m - 1) / m; /* sealed once the target is reached */
    size_t plen = per_frame * m;
    uint8_t *buf = calloc(1, TN_FRAME_HDR_LEN + plen + TN_TAG_LEN);
    if (!buf) fail("out of memory");
    tn_aead_t a = {.counter = 0};
    randombytes_buf(a.key, sizeof a.key);
    uint64_t frames = 0, t0 = uv_hrtime(), t;
    do {
        for (int i = 0; i < 64; i++) tn_frame_seal(&a, buf, plen);
        frames += 64;
        t = uv_hrtime();
    } while (t - t0 < 1000000000u);
    free(buf);
    double r = (double)(frames * per_frame) / ((double)(t - t0) / 1e9);
    fprintf(stderr, "stream_encrypted:   aead    %10.0f msg/s (one core, seal only)\n", r);
    return r;
}

#define MAX_REPS 32

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"warmup", required_argument, 0, 'w'},        {"duration", required_argument, 0, 'd'},
        {"reps", required_argument, 0, 'r'},          {"size", required_argument, 0, 's'},
        {"backlog", required_argument, 0, 'b'},       {"session-only", no_argument, 0, 'o'},
        {"test-delay-ms", required_argument, 0, 't'}, {0, 0, 0, 0}};
    bool session_only = false; /* for profilers: no floors and no JSON */
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'w':
            C.warmup_s = atof(optarg);
            break;
        case 'd':
            C.duration_s = atof(optarg);
            break;
        case 'r':
            C.reps = atoi(optarg);
            break;
        case 's':
            C.size = (uint32_t)atoi(optarg);
            break;
        case 'b':
            C.backlog_max = (size_t)atoll(optarg);
            break;
        case 'o':
            session_only = true;
            break;
        case 't':
            test_delay_ms = (uint64_t)atoll(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--warmup S] [--duration S] [--reps N] [--size B] "
                    "[--backlog BYTES] [--session-only] [--test-delay-ms MS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (C.reps < 1 || C.reps > MAX_REPS || C.size < 1 || C.size > sizeof S.payload ||
        C.duration_s <= 0 || C.warmup_s < 0 || C.backlog_max < 1)
        fail("bad parameters");
    if (tn_crypto_init()) fail("sodium_init failed");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Session and floors alternate within each repetition so drift on a shared machine hits
     * both alike; the median of the repetitions is reported. */
    double m[MAX_REPS], b[MAX_REPS], rc[MAX_REPS], tc[MAX_REPS], mf[MAX_REPS];
    double tm[MAX_REPS], tb[MAX_REPS], am[MAX_REPS], lo = 0, hi = 0;
    for (int i = 0; i < C.reps; i++) {
        fprintf(stderr, "stream_encrypted: repetition %d/%d (%.0f s warm-up + %.0f s each)\n",
                i + 1, C.reps, C.warmup_s, C.duration_s);
        sample_t x = measure(MODE_SESSION);
        if (session_only) continue;
        sample_t y = measure(MODE_TCP);
        am[i] = aead_msg_per_s();
        m[i] = x.msg_per_s;
        b[i] = x.bytes_per_s;
        rc[i] = x.rx_cpu;
        tc[i] = x.tx_cpu;
        mf[i] = x.msgs_per_frame;
        tm[i] = y.msg_per_s;
        tb[i] = y.bytes_per_s;
        lo = i == 0 || x.msg_per_s < lo ? x.msg_per_s : lo;
        hi = i == 0 || x.msg_per_s > hi ? x.msg_per_s : hi;
    }
    if (session_only) return 0;
    double msg = tn_bench_median(m, C.reps), tcp = tn_bench_median(tm, C.reps);
    printf("{\"params\": {\"msg_size\": %u, \"msg_header\": %d, \"msg_type\": \"0x%04x\", "
           "\"warmup_s\": %g, \"duration_s\": %g, \"repetitions\": %d, \"aggregate\": \"median\", "
           "\"frame_target\": %d, \"read_chunk\": %d, \"backlog_max\": %zu, "
           "\"transport\": \"loopback TCP, sender and receiver in 2 processes\", "
           "\"ratio\": \"msg_per_s / tcp_msg_per_s\"},\n",
           C.size, TN_MSG_HDR_LEN, MSG_TYPE, C.warmup_s, C.duration_s, C.reps, TN_FRAME_TARGET,
           TN_READ_CHUNK, C.backlog_max);
    printf(" \"figures\": {\"msg_per_s\": %.0f, \"bytes_per_s\": %.0f, \"ratio\": %.3f, "
           "\"msg_per_s_spread\": %.3f, \"rx_cpu\": %.2f, \"tx_cpu\": %.2f, "
           "\"msgs_per_frame\": %.1f},\n",
           msg, tn_bench_median(b, C.reps), msg / tcp, (hi - lo) / msg, tn_bench_median(rc, C.reps),
           tn_bench_median(tc, C.reps), tn_bench_median(mf, C.reps));
    printf(" \"floors\": {\"tcp_msg_per_s\": %.0f, \"tcp_bytes_per_s\": %.0f, "
           "\"aead_msg_per_s\": %.0f}}\n",
           tcp, tn_bench_median(tb, C.reps), tn_bench_median(am, C.reps));
    return 0;
}
