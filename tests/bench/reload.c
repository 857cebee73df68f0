/* Bench `reload_under_load` (DESIGN.md "Benchmarks", issue 4 "Bench"): a real node runs in this
 * process on its own loop while a forked peer streams 250-byte experiment messages into it at
 * full speed through the real session code; the policy is reloaded 100 times back to back
 * (each request made when the previous one completed). A 1 ms timer on the node's loop records
 * how late it fires (the loop stall), during the reloads and over an equal period without
 * them. After the stream stops and drains, every message sent must have been received and the
 * session must never have been closed. Prints one JSON object {"params", "figures", "floors"}
 * on stdout and progress on stderr (tests/bench/run.sh). */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "tn_config.h"
#include "tn_crypto.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_policy_int.h"
#include "tn_proto.h"
#include "tn_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench_util.h"

#define MSG_TYPE 0x8001 /* experiment range: the node counts and ignores it */
#define RECEIVED_METRIC "tn_messages_ignored_total{range=\"experiment\"}"
#define CLOSED_METRIC "tn_sessions_closed_total"
#define OPENED_METRIC "tn_sessions_opened_total"
#define RELOADS_MAX 100000
#define REPS_MAX 32
#define TICK_MS 1            /* the stall probe's period */
#define LONG_TICK_CPU_MS 5.0 /* loop work between two ticks worth a line on stderr */

static struct {
    int reloads; /* per repetition */
    int reps;    /* repetitions of (reloads, baseline): medians are reported */
    double warmup_s;
    uint32_t size;
    size_t backlog_max;
    double hs_timeout_s, drain_timeout_s, deadline_s;
    double tick_s; /* policy_tick_interval: score and on_tick run during the reloads */
    const char *dir;
} C = {100, 3, 1.0, 250, 4u << 20, 5.0, 10.0, 120.0, 0.25, "policies"};

/* ---- the sender: a separate process, the real session code, a backlog bound ---- */

typedef struct {
    int ok;
    char err[200];
    uint64_t sent;  /* messages handed to the session (all of them reach the socket) */
    int closed;     /* its session closed before the stop command */
    char why[120];  /* ...and why */
    uint64_t pongs; /* pings from the node it answered */
} report_t;

static struct {
    int ctl_fd, rep_fd;
    uint16_t port;
    uv_loop_t loop;
    tn_net_t net;
    tn_session_t *s;
    uv_pipe_t ctl;
    uv_timer_t timer;
    uv_idle_t pump;
    uv_check_t refill;
    bool open, pumping, stopped;
    report_t r;
    uint8_t payload[65536];
} S;

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* the parent is gone: it reports the failure */
        p += n;
        len -= (size_t)n;
    }
}

__attribute__((noreturn, format(printf, 1, 2))) static void child_fail(const char *fmt, ...)
{
    report_t r;
    memset(&r, 0, sizeof r);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.err, sizeof r.err, fmt, ap);
    va_end(ap);
    write_all(S.rep_fd, &r, sizeof r);
    _exit(1);
}

static void tx_pump(uv_idle_t *h)
{
    while (!S.stopped && S.open && tn_session_backlog(S.s) < C.backlog_max) {
        int rc = tn_session_send(S.s, MSG_TYPE, S.payload, C.size);
        if (rc) child_fail("send failed after %llu messages: %d", (unsigned long long)S.r.sent, rc);
        S.r.sent++;
    }
    uv_idle_stop(h);
    S.pumping = false;
}

/* Runs after the iteration's I/O (write completions): resume pumping once there is room. */
static void tx_refill(uv_check_t *h)
{
    (void)h;
    if (S.open && !S.stopped && !S.pumping && tn_session_backlog(S.s) < C.backlog_max) {
        S.pumping = true;
        uv_idle_start(&S.pump, tx_pump);
    }
}

static void tx_on_open(tn_session_t *s)
{
    tn_hello_t h;
    memset(&h, 0, sizeof h);
    h.version = TN_PROTO_VERSION;
    h.time_ms = tn_wall_ms();
    snprintf(h.name, sizeof h.name, "bench-sender");
    tn_buf_t *b = tn_session_batch(s, TN_MSG_HDR_LEN + 25 + TN_NAME_MAX);
    if (!b || tn_hello_encode(b, &h) != TN_OK || tn_session_sent(s) != TN_OK)
        child_fail("cannot send hello");
    S.open = true;
    uv_timer_stop(&S.timer);
    tx_refill(&S.refill);
}

static void tx_on_message(tn_session_t *s, uint16_t type, const uint8_t *payload, uint32_t len)
{
    if (type == TN_MSG_PING && len == 8) { /* stay healthy whatever the heartbeat */
        tn_session_send(s, TN_MSG_PONG, payload, 8);
        S.r.pongs++;
    }
}

static void tx_on_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    (void)s;
    if (!S.open)
        child_fail("sender session closed before opening: %s (%s)", tn_close_reason_name(reason),
                   detail);
    S.open = false;
    if (!S.stopped) {
        S.r.closed = 1;
        snprintf(S.r.why, sizeof S.r.why, "%s (%s)", tn_close_reason_name(reason), detail);
    }
}

static void tx_hs_timeout(uv_timer_t *t)
{
    (void)t;
    child_fail("handshake with the node did not complete within %.1f s", C.hs_timeout_s);
}

static void tx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char b[16];
    *buf = uv_buf_init(b, sizeof b);
}

/* Commands from the parent, one byte each: 'g' dial, 's' stop sending and report. EOF: exit. */
static void tx_ctl(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)st;
    if (nread < 0) _exit(0);
    for (ssize_t i = 0; i < nread; i++) {
        if (buf->base[i] == 'g') {
            tn_addr_t to;
            char text[32];
            snprintf(text, sizeof text, "127.0.0.1:%u", S.port);
            if (tn_addr_parse(text, &to)) child_fail("bad address %s", text);
            if (tn_session_dial(&S.net, &to, NULL, &S.s)) child_fail("tn_session_dial failed");
            uv_timer_start(&S.timer, tx_hs_timeout, (uint64_t)(C.hs_timeout_s * 1000), 0);
        } else if (buf->base[i] == 's') {
            S.stopped = true;
            S.r.ok = 1;
            write_all(S.rep_fd, &S.r, sizeof S.r);
        }
    }
}

static int run_sender(void)
{
    for (size_t i = 0; i < sizeof S.payload; i++) S.payload[i] = (uint8_t)(i * 7);
    uv_loop_init(&S.loop);
    tn_session_cbs_t cbs = {
        .on_open = tx_on_open, .on_message = tx_on_message, .on_close = tx_on_close};
    if (tn_net_init(&S.net, &S.loop, &cbs, NULL)) child_fail("tn_net_init failed");
    uint8_t pk[TN_ID_LEN];
    crypto_sign_keypair(pk, S.net.id_sk);
    memcpy(S.net.magic, "TIME", 4); /* testnet, the node's default network */
    S.net.connect_timeout_ms = (uint64_t)(C.hs_timeout_s * 1000);
    S.net.handshake_timeout_ms = (uint64_t)(C.hs_timeout_s * 1000);
    uv_idle_init(&S.loop, &S.pump);
    uv_timer_init(&S.loop, &S.timer);
    uv_pipe_init(&S.loop, &S.ctl, 0);
    if (uv_pipe_open(&S.ctl, S.ctl_fd)) child_fail("uv_pipe_open failed");
    uv_read_start((uv_stream_t *)&S.ctl, tx_alloc, tx_ctl);
    /* Started after tn_net_init, so it runs before tn_net's flusher in the check phase. */
    uv_check_init(&S.loop, &S.refill);
    uv_check_start(&S.refill, tx_refill);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    child_fail("sender loop ended");
}

/* ---- the node side: phases, the stall probe, reloads ---- */

enum { P_CONNECT, P_WARMUP, P_RELOAD, P_BASELINE, P_DRAIN, P_DONE };
static const char *const PHASE[] = {"connect", "warm-up", "reloads", "baseline", "drain", "done"};

typedef struct {
    uint64_t t0, t1;         /* hrtime */
    double recv0, recv1;     /* node's received count at the edges */
    double max_late_ms;      /* worst lateness of the 1 ms probe */
    double max_cpu_ms;       /* most CPU the loop thread used between two probe ticks */
    long nivcsw0, nivcsw1;   /* the loop thread's involuntary context switches */
    uint64_t ticks;          /* probe callbacks */
    uint64_t late_hist[200]; /* lateness in 0.1 ms buckets, the last one open */
} window_t;

static struct {
    uv_loop_t loop;
    tn_config_t cfg;
    tn_node_t node;
    char data_dir[64], pol_dir[128], log_path[128];
    FILE *log;
    pid_t child;
    int ctl_fd;      /* to the sender */
    uv_pipe_t rpipe; /* from the sender */
    report_t report; /* filled by the sender's 's' answer */
    size_t rep_have;
    uv_timer_t probe, phase_timer, deadline;
    uint64_t last_tick, last_cpu;
    int long_ticks;
    int phase;
    window_t w[REPS_MAX][2]; /* per repetition: 0 reloads, 1 baseline */
    window_t *cur;
    int rep;
    /* reloads */
    int done; /* in all repetitions */
    uint64_t req_at;
    double *reload_ms;
    bool swapped;                   /* a reload completed since the last probe tick */
    double swap_late_max[REPS_MAX]; /* worst probe lateness over a tick spanning a swap */
    double swap_cpu_max[REPS_MAX];  /* ...and the most loop-thread CPU over such a tick */
    uint64_t gen0;
    double closed0, opened0;
    double closed, opened, got; /* at the end of the drain, before the node's shutdown */
    uint64_t drain_t0;
    uint64_t t_start;
} N;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "reload_under_load: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (N.log_path[0]) fprintf(stderr, "reload_under_load: node log kept in %s\n", N.log_path);
    if (N.child > 0) kill(N.child, SIGKILL);
    exit(1);
}

static double received(void)
{
    return tn_metrics_value(RECEIVED_METRIC);
}

static double ms_since(uint64_t t)
{
    return (double)(uv_hrtime() - t) / 1e6;
}

/* CPU time of the loop thread: a stall with little of it was the scheduler, not the loop. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long thread_nivcsw(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) ? 0 : ru.ru_nivcsw;
}

static void on_probe(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_hrtime(), cpu = thread_cpu_ns();
    double late = (double)(now - N.last_tick) / 1e6 - TICK_MS;
    double used = (double)(cpu - N.last_cpu) / 1e6;
    N.last_tick = now;
    N.last_cpu = cpu;
    if (late < 0) late = 0;
    window_t *w = N.cur;
    if (w) {
        w->ticks++;
        if (late > w->max_late_ms) w->max_late_ms = late;
        if (used > w->max_cpu_ms) w->max_cpu_ms = used;
        int b = (int)(late * 10);
        w->late_hist[b < 199 ? b : 199]++;
        if (used > LONG_TICK_CPU_MS && N.long_ticks++ < 20)
            fprintf(stderr,
                    "reload_under_load:   long loop tick at %.3f s (monotonic %.6f s): %.2f ms "
                    "late, %.2f ms of loop CPU%s\n",
                    ms_since(N.t_start) / 1e3, (double)now / 1e9, late, used,
                    N.swapped ? ", a swap in it" : "");
        if (N.swapped && late > N.swap_late_max[N.rep]) N.swap_late_max[N.rep] = late;
        if (N.swapped && used > N.swap_cpu_max[N.rep]) N.swap_cpu_max[N.rep] = used;
    }
    N.swapped = false;
}

static void window_open(window_t *w)
{
    memset(w, 0, sizeof *w);
    w->t0 = uv_hrtime();
    w->recv0 = received();
    w->nivcsw0 = thread_nivcsw();
    N.last_tick = w->t0;
    N.last_cpu =
        thread_cpu_ns(); /* the window's first tick is not late because of what came before */
    N.cur = w;
}

static void window_close(window_t *w)
{
    w->t1 = uv_hrtime();
    w->recv1 = received();
    w->nivcsw1 = thread_nivcsw();
    N.cur = NULL;
}

static double window_s(const window_t *w)
{
    return (double)(w->t1 - w->t0) / 1e9;
}

static double window_rate(const window_t *w)
{
    return (w->recv1 - w->recv0) / window_s(w);
}

static double window_pct(const window_t *w, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)w->ticks), have = 0;
    for (int b = 0; b < 200; b++) {
        have += w->late_hist[b];
        if (have >= want && have > 0) return (b + 1) / 10.0; /* bucket's upper edge */
    }
    return w->max_late_ms;
}

static void phase_step(uv_timer_t *t);

static void enter(int phase, uint64_t after_ms)
{
    N.phase = phase;
    fprintf(stderr, "reload_under_load: %s (%.1f s)\n", PHASE[phase], ms_since(N.t_start) / 1e3);
    uv_timer_start(&N.phase_timer, phase_step, after_ms, 0);
}

static void reload_done(void *ud, bool ok, const char *msg);

static void reload_next(void)
{
    N.req_at = uv_hrtime();
    tn_policy_reload(N.node.policy, "bench", reload_done, NULL);
}

static void reload_done(void *ud, bool ok, const char *msg)
{
    (void)ud;
    if (!ok) fail("reload %d rejected: %s", N.done + 1, msg);
    N.reload_ms[N.done++] = ms_since(N.req_at);
    N.swapped = true;
    if (N.node.policy->generation != N.gen0 + (uint64_t)N.done)
        fail("reload %d done but generation %llu in force (expected %llu)", N.done,
             (unsigned long long)N.node.policy->generation,
             (unsigned long long)(N.gen0 + (uint64_t)N.done));
    int in_rep = N.done - N.rep * C.reloads;
    if (in_rep % 20 == 0)
        fprintf(stderr, "reload_under_load:   %d/%d reloads, last %.1f ms\n", in_rep, C.reloads,
                N.reload_ms[N.done - 1]);
    if (in_rep < C.reloads) {
        reload_next();
        return;
    }
    window_t *w = N.w[N.rep];
    window_close(&w[0]);
    window_open(&w[1]); /* the baseline: as long again, without reloads */
    enter(P_BASELINE, (uint64_t)((w[0].t1 - w[0].t0) / 1000000) + 1);
}

static void reloads_start(void)
{
    N.phase = P_RELOAD;
    fprintf(stderr,
            "reload_under_load: %s %d/%d (%.1f s): %d back to back, streaming at %.0f msg/s\n",
            PHASE[P_RELOAD], N.rep + 1, C.reps, ms_since(N.t_start) / 1e3, C.reloads,
            N.rep ? window_rate(&N.w[N.rep - 1][1]) : received() / (ms_since(N.t_start) / 1e3));
    window_open(&N.w[N.rep][0]);
    reload_next();
}

static void on_report(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)st;
    if (nread < 0) {
        if (N.rep_have < sizeof N.report) fail("the sender exited without reporting");
        return;
    }
    size_t k = TN_MIN((size_t)nread, sizeof N.report - N.rep_have);
    memcpy((char *)&N.report + N.rep_have, buf->base, k);
    N.rep_have += k;
    if (N.rep_have == sizeof N.report && !N.report.ok) fail("sender: %s", N.report.err);
}

static void rep_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char b[sizeof(report_t)];
    *buf = uv_buf_init(b, sizeof b);
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    fail("no result after %.0f s (phase %s, %d reloads done, %.0f messages received)", C.deadline_s,
         PHASE[N.phase], N.done, received());
}

static void finish(void)
{
    N.closed = tn_metrics_value(CLOSED_METRIC) - N.closed0;
    N.opened = tn_metrics_value(OPENED_METRIC) - N.opened0;
    N.got = received();
    enter(P_DONE, 0);
    uv_timer_stop(&N.phase_timer);
    uv_close((uv_handle_t *)&N.probe, NULL);
    uv_close((uv_handle_t *)&N.phase_timer, NULL);
    uv_close((uv_handle_t *)&N.deadline, NULL);
    uv_close((uv_handle_t *)&N.rpipe, NULL);
    tn_node_stop(&N.node, "bench done");
}

static void phase_step(uv_timer_t *t)
{
    (void)t;
    tn_node_t *n = &N.node;
    switch (N.phase) {
    case P_CONNECT:
        if (N.rep_have == sizeof N.report) fail("sender: %s", N.report.err);
        if (n->n_open >= 1 && received() > 0) {
            enter(P_WARMUP, (uint64_t)(C.warmup_s * 1000));
            return;
        }
        if (ms_since(N.t_start) > C.hs_timeout_s * 1000 + 1000)
            fail("after %.1f s: %d sessions open, %.0f messages received (handshake or stream "
                 "not working)",
                 C.hs_timeout_s + 1, n->n_open, received());
        uv_timer_start(&N.phase_timer, phase_step, 10, 0);
        return;
    case P_WARMUP:
        N.closed0 = tn_metrics_value(CLOSED_METRIC);
        N.opened0 = tn_metrics_value(OPENED_METRIC);
        N.gen0 = n->policy->generation;
        if (!n->policy->gen) fail("no policy generation in force: %s", n->policy->last_error);
        reloads_start();
        return;
    case P_BASELINE:
        window_close(&N.w[N.rep][1]);
        if (++N.rep < C.reps) {
            reloads_start();
            return;
        }
        N.drain_t0 = uv_hrtime();
        if (write(N.ctl_fd, "s", 1) != 1) fail("cannot reach the sender");
        enter(P_DRAIN, 10);
        return;
    case P_DRAIN:
        if (N.rep_have == sizeof N.report && received() >= (double)N.report.sent) {
            finish();
            return;
        }
        if (ms_since(N.drain_t0) > C.drain_timeout_s * 1000) {
            fprintf(stderr, "reload_under_load: drain timed out after %.0f s\n", C.drain_timeout_s);
            finish();
            return;
        }
        uv_timer_start(&N.phase_timer, phase_step, 10, 0);
        return;
    default:
        return;
    }
}

/* ---- set-up ---- */

static void set_str(char **field, const char *value)
{
    if (tn_bench_set_str(field, value)) fail("out of memory");
}

/* Sorts v in place. */
int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"reloads", required_argument, 0, 'n'}, {"reps", required_argument, 0, 'r'},
        {"warmup", required_argument, 0, 'w'},  {"size", required_argument, 0, 's'},
        {"backlog", required_argument, 0, 'b'}, {"tick", required_argument, 0, 't'},
        {"dir", required_argument, 0, 'd'},     {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            C.reloads = atoi(optarg);
            break;
        case 'r':
            C.reps = atoi(optarg);
            break;
        case 'w':
            C.warmup_s = atof(optarg);
            break;
        case 's':
            C.size = (uint32_t)atoi(optarg);
            break;
        case 'b':
            C.backlog_max = (size_t)atoll(optarg);
            break;
        case 't':
            C.tick_s = atof(optarg);
            break;
        case 'd':
            C.dir = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--reloads N] [--reps N] [--warmup S] [--size B] [--backlog BYTES] "
                    "[--tick S] [--dir POLICY_DIR]\n",
                    argv[0]);
            return 2;
        }
    }
    if (C.reloads < 1 || C.reloads > RELOADS_MAX || C.reps < 1 || C.reps > REPS_MAX || C.size < 1 ||
        C.size > sizeof S.payload || C.warmup_s < 0 || C.backlog_max < 1 || C.tick_s < 0.05)
        fail("bad parameters");
    if (tn_crypto_init()) fail("sodium_init failed");
    signal(SIGPIPE, SIG_IGN);

    /* A snapshot of the policy directory: edits made to the repo's copy while the bench runs
     * would trigger reloads of their own through the directory watch. */
    snprintf(N.data_dir, sizeof N.data_dir, "/tmp/tn-bench-reload-XXXXXX");
    if (!mkdtemp(N.data_dir)) fail("mkdtemp: %s", strerror(errno));
    snprintf(N.pol_dir, sizeof N.pol_dir, "%s/policies", N.data_dir);
    TN_BENCH_SHELL("cp -R '%s' '%s'", C.dir, N.pol_dir);
    snprintf(N.log_path, sizeof N.log_path, "%s/node.log", N.data_dir);

    /* The sender is forked first, before the node's loop and threadpool exist. */
    uint16_t port = tn_bench_free_port();
    if (!port) fail("cannot find a free port");
    int ctl[2], rep[2];
    if (pipe(ctl) || pipe(rep)) fail("pipe: %s", strerror(errno));
    fflush(NULL);
    N.child = fork();
    if (N.child < 0) fail("fork: %s", strerror(errno));
    if (N.child == 0) {
        close(ctl[1]);
        close(rep[0]);
        S.ctl_fd = ctl[0];
        S.rep_fd = rep[1];
        S.port = port;
        _exit(run_sender());
    }
    close(ctl[0]);
    close(rep[1]);
    N.ctl_fd = ctl[1];

    if (!(N.log = fopen(N.log_path, "w"))) fail("cannot write %s", N.log_path);
    tn_log_init("bench-node", TN_LOG_INFO, 10, N.log);
    if (tn_config_defaults(&N.cfg)) fail("out of memory");
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    set_str(&N.cfg.listen, listen);
    set_str(&N.cfg.data_dir, N.data_dir);
    set_str(&N.cfg.policy_dir, N.pol_dir);
    set_str(&N.cfg.node_name, "bench-node");
    N.cfg.policy_tick_interval = C.tick_s;
    /* the stream is one peer's experiment-type messages at full speed: the per-peer limit of
     * that class (rate_custom, 1000 per 10 s) would drop them and strike the sender; what is
     * measured is the reloads' effect on the loop, so the limit is lifted */
    N.cfg.rate_custom.v[0] = N.cfg.rate_custom.v[1] = 0;
    if (!(N.reload_ms = calloc((size_t)(C.reloads * C.reps), sizeof(double))))
        fail("out of memory");

    uv_loop_init(&N.loop);
    char err[512];
    N.t_start = uv_hrtime();
    if (tn_node_start(&N.node, &N.loop, &N.cfg, err, sizeof err)) fail("node: %s", err);
    if (!N.node.policy->gen)
        fail("the policy in %s did not load: %s", C.dir, N.node.policy->last_error);
    uv_pipe_init(&N.loop, &N.rpipe, 0);
    if (uv_pipe_open(&N.rpipe, rep[0])) fail("uv_pipe_open failed");
    uv_read_start((uv_stream_t *)&N.rpipe, rep_alloc, on_report);
    uv_timer_init(&N.loop, &N.probe);
    uv_timer_init(&N.loop, &N.phase_timer);
    uv_timer_init(&N.loop, &N.deadline);
    N.last_tick = uv_hrtime();
    N.last_cpu = thread_cpu_ns();
    uv_timer_start(&N.probe, on_probe, TICK_MS, TICK_MS);
    uv_timer_start(&N.deadline, on_deadline, (uint64_t)(C.deadline_s * 1000), 0);
    fprintf(stderr, "reload_under_load: node on %s, policy %s (snapshot of %s), log %s\n", listen,
            N.pol_dir, C.dir, N.log_path);
    if (write(N.ctl_fd, "g", 1) != 1) fail("cannot reach the sender");
    enter(P_CONNECT, 10);
    uv_run(&N.loop, UV_RUN_DEFAULT);

    /* the node has stopped: free everything, then report */
    double closed = N.closed, opened = N.opened, got = N.got;
    tn_node_free(&N.node);
    uv_run(&N.loop, UV_RUN_DEFAULT);
    close(N.ctl_fd); /* EOF: the sender exits */
    int st;
    while (waitpid(N.child, &st, 0) < 0 && errno == EINTR) {
    }
    N.child = 0;
    if (uv_loop_close(&N.loop))
        fprintf(stderr, "reload_under_load: loop closed with handles open\n");

    if (N.rep_have < sizeof N.report) fail("the sender never reported");
    int total = C.reloads * C.reps;
    if (N.done != total) fail("%d of %d reloads completed", N.done, total);
    if (got > (double)N.report.sent)
        fail("the node counted %.0f messages but the sender sent %llu", got,
             (unsigned long long)N.report.sent);
    double lost = (double)N.report.sent - got;
    if (N.report.closed)
        fprintf(stderr, "reload_under_load: sender's session closed: %s\n", N.report.why);

    /* Per repetition, then the median of the repetitions (and the worst of all stalls). */
    enum { STALL, P99, SWAP, CPU, SWAP_CPU, PRE, RATE, B_STALL, B_P99, B_CPU, B_PRE, B_RATE, NF };
    double f[NF][REPS_MAX], worst = 0, b_worst = 0, secs = 0, b_secs = 0;
    for (int r = 0; r < C.reps; r++) {
        const window_t *R = &N.w[r][0], *B = &N.w[r][1];
        if (R->recv1 - R->recv0 <= 0) fail("no messages received during reloads %d", r + 1);
        if (B->recv1 - B->recv0 <= 0) fail("no messages received during baseline %d", r + 1);
        f[STALL][r] = R->max_late_ms;
        f[P99][r] = window_pct(R, 0.99);
        f[SWAP][r] = N.swap_late_max[r];
        f[CPU][r] = R->max_cpu_ms;
        f[SWAP_CPU][r] = N.swap_cpu_max[r];
        f[PRE][r] = (double)(R->nivcsw1 - R->nivcsw0);
        f[RATE][r] = window_rate(R);
        f[B_STALL][r] = B->max_late_ms;
        f[B_P99][r] = window_pct(B, 0.99);
        f[B_CPU][r] = B->max_cpu_ms;
        f[B_PRE][r] = (double)(B->nivcsw1 - B->nivcsw0);
        f[B_RATE][r] = window_rate(B);
        worst = fmax(worst, R->max_late_ms);
        b_worst = fmax(b_worst, B->max_late_ms);
        secs += window_s(R);
        b_secs += window_s(B);
        fprintf(stderr,
                "reload_under_load: rep %d: reloads %.2f s: stall max %.2f ms (p99 %.1f, at a "
                "swap %.2f), loop CPU between ticks max %.2f ms (at a swap %.2f), %.0f "
                "preemptions, %.0f msg/s\n",
                r + 1, window_s(R), f[STALL][r], f[P99][r], f[SWAP][r], f[CPU][r], f[SWAP_CPU][r],
                f[PRE][r], f[RATE][r]);
        fprintf(stderr,
                "reload_under_load: rep %d: baseline %.2f s: stall max %.2f ms (p99 %.1f), loop "
                "CPU between ticks max %.2f ms, %.0f preemptions, %.0f msg/s\n",
                r + 1, window_s(B), f[B_STALL][r], f[B_P99][r], f[B_CPU][r], f[B_PRE][r],
                f[B_RATE][r]);
    }
    double m[NF];
    for (int k = 0; k < NF; k++) m[k] = tn_bench_median(f[k], C.reps);
    double rl_med = tn_bench_median(N.reload_ms, total), rl_max = N.reload_ms[total - 1];
    fprintf(stderr,
            "reload_under_load: reload %.1f ms median, %.1f ms max; sent %llu, received %.0f, "
            "lost %.0f; sessions closed %.0f, opened %.0f\n",
            rl_med, rl_max, (unsigned long long)N.report.sent, got, lost, closed, opened);

    printf("{\"params\": {\"reloads\": %d, \"repetitions\": %d, \"aggregate\": \"median of the "
           "repetitions' worst (stall_worst_ms: worst of all)\", \"policy_dir\": \"%s\", "
           "\"msg_size\": %u, \"msg_type\": \"0x%04x\", \"backlog_max\": %zu, \"warmup_s\": %g, "
           "\"policy_tick_interval_s\": %g, \"probe_ms\": %d, \"reload_s\": %.3f, "
           "\"baseline_s\": %.3f, \"cores\": %ld, \"node\": \"in-process (tn_node_start), "
           "sender forked, loopback TCP\", \"trigger\": \"tn_policy_reload, next on "
           "completion\", \"stall\": \"lateness of a 1 ms timer on the node's loop\", "
           "\"cpu_ms\": \"loop-thread CPU time between two probe ticks (stall minus cpu = "
           "time the loop was runnable but not running)\", \"goals\": \"stall_ms < 10, lost 0, "
           "dropped_conns 0\"},\n",
           C.reloads, C.reps, C.dir, C.size, MSG_TYPE, C.backlog_max, C.warmup_s, C.tick_s, TICK_MS,
           secs, b_secs, sysconf(_SC_NPROCESSORS_ONLN));
    printf(" \"figures\": {\"stall_ms\": %.3f, \"stall_worst_ms\": %.3f, \"stall_p99_ms\": %.1f, "
           "\"swap_stall_ms\": %.3f, \"baseline_stall_ms\": %.3f, \"baseline_stall_worst_ms\": "
           "%.3f, \"baseline_stall_p99_ms\": %.1f, \"cpu_ms\": %.3f, \"swap_cpu_ms\": %.3f, "
           "\"baseline_cpu_ms\": %.3f, \"preemptions\": %.0f, \"baseline_preemptions\": %.0f, "
           "\"lost\": %.0f, \"dropped_conns\": %.0f, \"reload_ms\": %.2f, \"reload_max_ms\": "
           "%.2f, \"msgs_per_s\": %.0f, \"baseline_msgs_per_s\": %.0f, \"sent\": %llu},\n",
           m[STALL], worst, m[P99], m[SWAP], m[B_STALL], b_worst, m[B_P99], m[CPU], m[SWAP_CPU],
           m[B_CPU], m[PRE], m[B_PRE], lost, closed, rl_med, rl_max, m[RATE], m[B_RATE],
           (unsigned long long)N.report.sent);
    printf(" \"floors\": {}}\n");
    TN_BENCH_SHELL("rm -rf '%s'", N.data_dir);
    free(N.reload_ms);
    tn_config_free(&N.cfg);
    return 0;
}
