/* Benches `relay_signed` and `relay_unsigned` (DESIGN.md "Benchmarks", issue 5 "Bench"): one real
 * node runs in this process, pinned to one core; forked peers on another core use the real
 * session code. One in-peer announces a corpus of 250-byte transactions (inv) and serves the
 * node's getdata; the node takes each through its whole path (hash, dedup, signature check,
 * mempool with its store mirror, announce) to 8 out-peers that fetch every body with getdata
 * as real peers do. Figures: accepted tx/s on the node's one core in a measured window, the
 * slowest out-peer's delivery rate, CPU of both sides, wire bytes per transaction per link,
 * and light-load latency in -> node -> all outs with the in-link announced or pushed.
 * relay_signed: floor = tn_tx_verify over the same corpus on the node's core (one-core Ed25519
 * ceiling). relay_unsigned (relay_unsigned.c): the same node code with the signature check
 * compiled out; floor = bare-TCP relay of the same message bytes, 1 in -> 8 out, same cores.
 * Prints one JSON object {"params", "figures", "floors"} on stdout, progress on stderr. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity */
#endif
#include "tn_config.h"
#include "tn_crypto.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_proto.h"
#include "tn_relay.h"
#include "tn_session.h"
#include "tn_tx.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench_util.h"

#ifdef RELAY_UNSIGNED
#define BENCH "relay_unsigned"
#define CORPUS_DEFAULT 1500000
#else
#define BENCH "relay_signed"
#define CORPUS_DEFAULT 250000
#endif

#define OUT_MAX 16
#define PROBES_MAX 1000
#define REPS_MAX 16
#define ACCEPTED "tn_relay_tx_total{outcome=\"accepted\"}"
#define RECEIVED "tn_relay_tx_total{outcome=\"received\"}"
#define INVALID "tn_relay_tx_total{outcome=\"invalid\"}"
#define FULL "tn_relay_tx_total{outcome=\"mempool_full\"}"
#define DUPLICATE "tn_relay_tx_total{outcome=\"duplicate\"}"

static struct {
    double warmup_s, duration_s, drain_s, hs_timeout_s;
    int reps, outs;
    uint32_t tx_size;
    size_t corpus; /* transactions per repetition (probes included) */
    size_t window; /* announced and not yet delivered to the slowest out-peer */
    size_t backlog_max;
    int node_cpu, peer_cpu;
    int helper_cpu; /* where the node's threadpool (store) threads run in a measurement */
    int probes;
    double probe_gap_s;
    const char *policy_dir;
} C = {1.0,   3.0,      15.0, 5.0, 3, 8,   250,   CORPUS_DEFAULT,
       16384, 4u << 20, 0,    1,   1, 200, 0.005, "policies"};

/* ---- state shared with the forked peers (one writer per field) ---- */

typedef struct {
    volatile uint64_t got[OUT_MAX];        /* tx bodies each out-peer received */
    volatile uint64_t cpu_ns[OUT_MAX + 1]; /* each peer's CPU so far; [OUT_MAX]: the in-peer */
    volatile uint64_t announced, sent;     /* in-peer: ids announced, bodies sent */
    volatile int open[OUT_MAX + 1];
    volatile int failed;
    char err[256];
    /* light-load probes: when the in-peer announced/pushed probe k, when out-peer i got it */
    volatile uint64_t probe_sent[2][PROBES_MAX];
    volatile uint64_t probe_got[2][OUT_MAX][PROBES_MAX];
} shm_t;

static shm_t *SH;
static uint8_t *corpus;    /* C.corpus transactions of C.tx_size bytes, nonce = index */
static uint8_t (*ids)[32]; /* their ids */
static uint32_t *lookup;   /* open addressing on the first 8 id bytes: index + 1, 0 = empty */
static size_t lookup_mask;
static uint16_t node_port;

static uint64_t cpu_ns_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set); /* best effort: reported as asked */
}

/* The node's other threads (libuv threadpool: store batches, policy builds) onto `cpu`; the
 * loop thread (this process's main thread) stays where it is. */
static void pin_helpers(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pid_t me = getpid();
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)me);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid > 0 && tid != me) sched_setaffinity(tid, sizeof set, &set);
    }
    closedir(d);
}

/* CPU time of the loop thread (the main thread) and of all the process's other threads. */
static void thread_cpu(uint64_t *loop_ns, uint64_t *others_ns)
{
    *loop_ns = *others_ns = 0;
    pid_t me = getpid();
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)me);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)me, (int)tid);
        FILE *f = fopen(path, "r");
        unsigned long long ns = 0;
        if (f) {
            if (fscanf(f, "%llu", &ns) != 1) ns = 0;
            fclose(f);
        }
        if (tid == me)
            *loop_ns += ns;
        else
            *others_ns += ns;
    }
    closedir(d);
}

static int ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

__attribute__((noreturn, format(printf, 1, 2))) static void child_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(SH->err, sizeof SH->err, fmt, ap);
    va_end(ap);
    SH->failed = 1;
    _exit(1);
}

static int64_t corpus_index(const uint8_t id[32])
{
    size_t i = (size_t)tn_get_u64(id) & lookup_mask;
    while (lookup[i]) {
        uint32_t k = lookup[i] - 1;
        if (memcmp(ids[k], id, 32) == 0) return k;
        i = (i + 1) & lookup_mask;
    }
    return -1;
}

/* ---- the corpus: distinct nonces, one far expiry, built on every core ---- */

typedef struct {
    size_t from, to;
    uint64_t expiry;
} build_job_t;

static void *build_part(void *arg)
{
    build_job_t *j = arg;
    uint8_t pk[32], sk[64], payload[65536];
    crypto_sign_keypair(pk, sk);
    randombytes_buf(payload, sizeof payload);
    uint32_t pl = C.tx_size - TN_TX_MIN;
    tn_buf_t b;
    tn_buf_init(&b, 1u << 20);
    for (size_t i = j->from; i < j->to; i++) {
        uint8_t *p = corpus + i * C.tx_size;
#ifdef RELAY_UNSIGNED
        /* No signature is checked on this path: one signed template, the nonce patched in
         * (the id still differs per transaction; the signature no longer matches). */
        if (i == j->from) {
            b.len = 0;
            tn_tx_build(&b, sk, j->expiry, i, payload, pl);
            memcpy(p, b.p, C.tx_size);
        } else {
            memcpy(p, corpus + j->from * C.tx_size, C.tx_size);
            tn_put_u64(p + 41, i);
        }
#else
        b.len = 0;
        tn_tx_build(&b, sk, j->expiry, i, payload + (i % 64), pl);
        memcpy(p, b.p, C.tx_size);
#endif
        tn_tx_t tx;
        tn_tx_parse(p, C.tx_size, UINT32_MAX, &tx);
        memcpy(ids[i], tx.id, 32);
    }
    tn_buf_free(&b);
    return NULL;
}

static void build_corpus(void)
{
    corpus = malloc(C.corpus * C.tx_size);
    ids = malloc(C.corpus * 32);
    size_t cap = 1;
    while (cap < 2 * C.corpus) cap *= 2;
    lookup = calloc(cap, sizeof *lookup);
    lookup_mask = cap - 1;
    if (!corpus || !ids || !lookup) {
        fprintf(stderr, BENCH ": FAIL: out of memory for the corpus\n");
        exit(1);
    }
    int n = ncpus() < 8 ? ncpus() : 8;
    pthread_t th[8];
    build_job_t jobs[8];
    uint64_t expiry = tn_wall_ms() / 1000 + 3 * 3600; /* below tx_max_lifetime (24 h) */
    for (int i = 0; i < n; i++) {
        jobs[i].from = C.corpus * (size_t)i / (size_t)n;
        jobs[i].to = C.corpus * (size_t)(i + 1) / (size_t)n;
        jobs[i].expiry = expiry;
        pthread_create(&th[i], NULL, build_part, &jobs[i]);
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    for (size_t k = 0; k < C.corpus; k++) {
        size_t i = (size_t)tn_get_u64(ids[k]) & lookup_mask;
        while (lookup[i]) i = (i + 1) & lookup_mask;
        lookup[i] = (uint32_t)k + 1;
    }
}

/* ---- forked peers: the real session code, a distinct source IP each ---- */

static struct {
    int idx; /* 0..outs-1: out-peer; OUT_MAX: the in-peer */
    int ctl_fd;
    uv_loop_t loop;
    tn_net_t net;
    tn_session_t *s;
    uv_pipe_t ctl;
    uv_idle_t pump;
    uv_check_t refill;
    uv_timer_t timer, cpu_timer, probe_timer;
    bool open, pumping, stopped;
    size_t next, limit; /* in-peer: next index to announce; the bulk ends at limit */
    size_t base;        /* probes: 2 x C.probes transactions from here, never in the bulk */
    int probe_mode;     /* 0 none, 1 announce, 2 push */
    int probe_k;
} P;

static void send_hello(tn_session_t *s, const char *name)
{
    tn_hello_t h;
    memset(&h, 0, sizeof h);
    h.version = TN_PROTO_VERSION;
    h.time_ms = tn_wall_ms();
    snprintf(h.name, sizeof h.name, "%s", name);
    tn_buf_t *b = tn_session_batch(s, TN_MSG_HDR_LEN + 25 + TN_NAME_MAX);
    if (!b || tn_hello_encode(b, &h) != TN_OK || tn_session_sent(s) != TN_OK)
        child_fail("peer %d: cannot send hello", P.idx);
}

static uint64_t min_got(void)
{
    uint64_t m = UINT64_MAX;
    for (int i = 0; i < C.outs; i++) m = TN_MIN(m, SH->got[i]);
    return m;
}

/* Appends an inv of k ids from index `from`. */
static void send_inv(size_t from, size_t k)
{
    tn_buf_t *b = tn_session_batch(P.s, TN_MSG_HDR_LEN + 2 + k * TN_INV_ENTRY);
    size_t off;
    if (!b || tn_msg_begin(b, TN_MSG_INV, &off) != TN_OK) child_fail("in-peer: cannot batch");
    uint8_t cnt[2];
    tn_put_u16(cnt, (uint16_t)k);
    tn_buf_append(b, cnt, 2);
    for (size_t i = from; i < from + k; i++) {
        uint8_t e = TN_INV_TX;
        tn_buf_append(b, &e, 1);
        tn_buf_append(b, ids[i], 32);
    }
    tn_msg_finish(b, off);
    tn_session_sent(P.s);
}

static void in_pump(uv_idle_t *h)
{
    /* end-to-end flow control: never more than `window` ids ahead of the slowest out-peer,
     * as a sender that respects its peers' pace (the node itself has no backpressure) */
    while (P.open && !P.stopped && P.next < P.limit && tn_session_backlog(P.s) < C.backlog_max &&
           P.next - min_got() < C.window) {
        size_t k =
            TN_MIN(TN_MIN((size_t)TN_INV_MAX, P.limit - P.next), C.window - (P.next - min_got()));
        send_inv(P.next, k);
        P.next += k;
        SH->announced = P.next;
    }
    uv_idle_stop(h);
    P.pumping = false;
}

static void in_refill(uv_check_t *h)
{
    (void)h;
    if (P.open && !P.stopped && !P.pumping && P.next < P.limit) {
        P.pumping = true;
        uv_idle_start(&P.pump, in_pump);
    }
}

static void on_probe_timer(uv_timer_t *t)
{
    if (!P.open || P.probe_k >= C.probes) {
        uv_timer_stop(t);
        return;
    }
    int m = P.probe_mode - 1;
    size_t i = P.base + (size_t)m * (size_t)C.probes + (size_t)P.probe_k;
    SH->probe_sent[m][P.probe_k] = uv_hrtime();
    if (P.probe_mode == 1)
        send_inv(i, 1);
    else
        tn_session_send(P.s, TN_MSG_TX, corpus + i * C.tx_size, C.tx_size);
    tn_session_flush(P.s);
    P.probe_k++;
}

static void on_cpu_timer(uv_timer_t *t)
{
    (void)t;
    SH->cpu_ns[P.idx] = cpu_ns_self();
}

static void peer_on_open(tn_session_t *s)
{
    char name[32];
    snprintf(name, sizeof name, P.idx == OUT_MAX ? "bench-in" : "bench-out%d", P.idx);
    send_hello(s, name);
    P.open = true;
    uv_timer_stop(&P.timer);
    SH->open[P.idx] = 1;
    if (P.idx == OUT_MAX) in_refill(&P.refill);
}

static void peer_on_message(tn_session_t *s, uint16_t type, const uint8_t *p, uint32_t len)
{
    if (type == TN_MSG_PING && len == 8) {
        tn_session_send(s, TN_MSG_PONG, p, 8);
        return;
    }
    if (P.idx == OUT_MAX) { /* in-peer: serve getdata from the corpus */
        if (type != TN_MSG_GETDATA) return;
        int n = tn_inv_decode(p, len);
        for (int i = 0; i < n; i++) {
            uint8_t kind;
            const uint8_t *id;
            tn_inv_entry(p, i, &kind, &id);
            int64_t k = corpus_index(id);
            if (kind != TN_INV_TX || k < 0) child_fail("in-peer: asked for an unknown id");
            tn_session_send(s, TN_MSG_TX, corpus + (size_t)k * C.tx_size, C.tx_size);
            SH->sent++;
        }
        return;
    }
    if (type == TN_MSG_INV) { /* out-peer: fetch every transaction announced */
        int n = tn_inv_decode(p, len);
        if (n <= 0) return;
        for (int i = 0; i < n; i++)
            if (p[2 + i * TN_INV_ENTRY] != TN_INV_TX) child_fail("out-peer: a block announced");
        tn_session_send(s, TN_MSG_GETDATA, p, len); /* the same entries, asked for */
        return;
    }
    if (type == TN_MSG_TX) {
        if (len != C.tx_size) child_fail("out-peer: a transaction of %u bytes", len);
        uint64_t nonce = tn_get_u64(p + 41);
        if (nonce >= P.base && nonce < P.base + 2 * (size_t)C.probes) {
            int m = (int)((nonce - P.base) / (size_t)C.probes);
            int k = (int)((nonce - P.base) % (size_t)C.probes);
            SH->probe_got[m][P.idx][k] = uv_hrtime();
        }
        SH->got[P.idx]++;
    }
}

static void peer_on_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    (void)s;
    P.open = false;
    SH->open[P.idx] = 0;
    if (!P.stopped)
        child_fail("peer %d: session closed: %s (%s)", P.idx, tn_close_reason_name(reason), detail);
}

static void peer_hs_timeout(uv_timer_t *t)
{
    (void)t;
    child_fail("peer %d: handshake with the node did not complete within %.1f s", P.idx,
               C.hs_timeout_s);
}

static void ctl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char b[16];
    *buf = uv_buf_init(b, sizeof b);
}

/* One byte each from the parent: 'g' dial, 's' stop the bulk, 'a'/'u' probes announced or
 * pushed. EOF: exit. */
static void on_ctl(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)st;
    if (nread < 0) {
        P.stopped = true;
        _exit(0);
    }
    for (ssize_t i = 0; i < nread; i++) {
        char c = buf->base[i];
        if (c == 'g') {
            tn_addr_t to, from;
            char text[40];
            snprintf(text, sizeof text, "127.0.0.1:%u", node_port);
            if (tn_addr_parse(text, &to)) child_fail("bad address %s", text);
            snprintf(text, sizeof text, "127.0.1.%d:0", P.idx + 1);
            if (tn_addr_parse(text, &from)) child_fail("bad address %s", text);
            if (tn_session_dial(&P.net, &to, &from, &P.s)) child_fail("tn_session_dial failed");
            uv_timer_start(&P.timer, peer_hs_timeout, (uint64_t)(C.hs_timeout_s * 1000), 0);
        } else if (c == 's') {
            P.limit = P.next; /* the bulk ends here */
        } else if (c == 'a' || c == 'u') {
            P.probe_mode = c == 'a' ? 1 : 2;
            P.probe_k = 0;
            uv_timer_start(&P.probe_timer, on_probe_timer, 1,
                           (uint64_t)(C.probe_gap_s * 1000 + 0.5));
        }
    }
}

static int run_peer(int idx, int ctl_fd)
{
    P.idx = idx;
    P.ctl_fd = ctl_fd;
    P.limit = P.base = C.corpus - 2 * (size_t)C.probes;
    pin(C.peer_cpu);
    uv_loop_init(&P.loop);
    tn_session_cbs_t cbs = {
        .on_open = peer_on_open, .on_message = peer_on_message, .on_close = peer_on_close};
    if (tn_net_init(&P.net, &P.loop, &cbs, NULL)) child_fail("tn_net_init failed");
    uint8_t pk[TN_ID_LEN];
    crypto_sign_keypair(pk, P.net.id_sk);
    memcpy(P.net.magic, "TIME", 4); /* testnet, the node's default network */
    P.net.connect_timeout_ms = (uint64_t)(C.hs_timeout_s * 1000);
    P.net.handshake_timeout_ms = (uint64_t)(C.hs_timeout_s * 1000);
    uv_idle_init(&P.loop, &P.pump);
    uv_timer_init(&P.loop, &P.timer);
    uv_timer_init(&P.loop, &P.probe_timer);
    uv_timer_init(&P.loop, &P.cpu_timer);
    uv_timer_start(&P.cpu_timer, on_cpu_timer, 20, 20);
    uv_pipe_init(&P.loop, &P.ctl, 0);
    if (uv_pipe_open(&P.ctl, ctl_fd)) child_fail("uv_pipe_open failed");
    uv_read_start((uv_stream_t *)&P.ctl, ctl_alloc, on_ctl);
    uv_check_init(&P.loop, &P.refill);
    if (idx == OUT_MAX) uv_check_start(&P.refill, in_refill);
    uv_run(&P.loop, UV_RUN_DEFAULT);
    child_fail("peer %d: loop ended", idx);
}

/* ---- the node ---- */

enum { PH_OUTS, PH_IN, PH_WARMUP, PH_WINDOW, PH_DRAIN, PH_PROBE_A, PH_PROBE_U, PH_DONE };
static const char *const PHASE[] = {"connect outs",    "connect in", "warm-up",
                                    "window",          "drain",      "probes (announced)",
                                    "probes (pushed)", "done"};

typedef struct {
    double tx_per_s, delivered_per_s, node_cpu, loop_cpu, helper_cpu, peers_cpu, secs;
    double out_link_bytes_per_tx, in_link_bytes_per_tx, out_link_msgs_per_tx;
    double delivery;
    bool exhausted;
    double lat_announce_p50_us, lat_announce_p99_us, lat_push_p50_us, lat_push_p99_us;
    double invalid, full, dups;
} sample_t;

static struct {
    uv_loop_t loop;
    tn_config_t cfg;
    tn_node_t node;
    char dir[64], pol_dir[128], log_path[160];
    FILE *log;
    pid_t kids[OUT_MAX + 1];
    int ctl[OUT_MAX + 1];
    uv_timer_t phase_timer;
    int phase;
    uint64_t phase_t0, t0, cpu0, got0[OUT_MAX], peer_cpu0, out_b0, in_b0, out_m0, loop0, helper0;
    double acc0;
    sample_t *x;
    double acc_total_at_stop;
} N;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, BENCH ": FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (SH && SH->failed) fprintf(stderr, BENCH ": peer: %s\n", SH->err);
    if (N.log_path[0]) fprintf(stderr, BENCH ": node log kept in %s\n", N.log_path);
    for (int i = 0; i <= OUT_MAX; i++)
        if (N.kids[i] > 0) kill(N.kids[i], SIGKILL);
    exit(1);
}

static uint64_t peers_cpu(void)
{
    uint64_t t = SH->cpu_ns[OUT_MAX];
    for (int i = 0; i < C.outs; i++) t += SH->cpu_ns[i];
    return t;
}

/* Peer idx dials from 127.0.1.(idx + 1): the in-peer (idx OUT_MAX) from 127.0.1.17. */
static bool is_in_peer(const tn_session_t *s)
{
    char ip[TN_ADDR_STRLEN], in[32];
    tn_addr_fmt_ip(&s->remote, ip);
    snprintf(in, sizeof in, "127.0.1.%d", OUT_MAX + 1);
    return strcmp(ip, in) == 0;
}

/* Wire bytes on the node's links: to and from the out-peers, from the in-peer. */
static void link_bytes(uint64_t *out_b, uint64_t *in_b, uint64_t *out_msgs)
{
    *out_b = *in_b = *out_msgs = 0;
    for (tn_session_t *s = N.node.sessions; s; s = s->next) {
        if (is_in_peer(s)) {
            *in_b += s->bytes_in + s->bytes_out;
        } else {
            *out_b += s->bytes_in + s->bytes_out;
            *out_msgs += s->msgs_in + s->msgs_out;
        }
    }
}

static int node_established(void)
{
    int k = 0;
    for (tn_session_t *s = N.node.sessions; s; s = s->next)
        if (s->state == TN_SS_OPEN && s->hello) k++;
    return k;
}

static void command(int who, char c)
{
    if (write(N.ctl[who], &c, 1) != 1) fail("cannot reach peer %d", who);
}

static void enter(int phase)
{
    N.phase = phase;
    N.phase_t0 = uv_hrtime();
    fprintf(stderr, BENCH ":   %s\n", PHASE[phase]);
}

static double secs_in_phase(void)
{
    return (double)(uv_hrtime() - N.phase_t0) / 1e9;
}

static double pct(double *v, int n, double q)
{
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, tn_bench_cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i];
}

/* Latency of probe mode m: announce/push at the in-peer -> the last out-peer has the body. */
static void probe_latency(int m, double *p50, double *p99)
{
    double v[PROBES_MAX];
    int n = 0;
    for (int k = 0; k < C.probes; k++) {
        uint64_t t0 = SH->probe_sent[m][k], t1 = 0;
        bool all = t0 != 0;
        for (int i = 0; i < C.outs && all; i++) {
            if (!SH->probe_got[m][i][k]) all = false;
            t1 = TN_MAX(t1, SH->probe_got[m][i][k]);
        }
        if (all) v[n++] = (double)(t1 - t0) / 1e3;
    }
    if (n < C.probes) fail("probes: %d of %d reached every out-peer", n, C.probes);
    *p50 = pct(v, n, 0.5);
    *p99 = pct(v, n, 0.99);
}

static bool probes_done(int m)
{
    for (int k = 0; k < C.probes; k++)
        for (int i = 0; i < C.outs; i++)
            if (!SH->probe_got[m][i][k]) return false;
    return true;
}

static void on_phase(uv_timer_t *t)
{
    (void)t;
    if (SH->failed) fail("peer: %s", SH->err);
    double acc = tn_metrics_value(ACCEPTED);
    switch (N.phase) {
    case PH_OUTS:
        if (node_established() >= C.outs) {
            command(OUT_MAX, 'g');
            enter(PH_IN);
        } else if (secs_in_phase() > C.hs_timeout_s + 1) {
            fail("%d of %d out-peers established", node_established(), C.outs);
        }
        break;
    case PH_IN:
        pin_helpers(C.helper_cpu);
        if (acc - N.acc0 > 0)
            enter(PH_WARMUP);
        else if (secs_in_phase() > C.hs_timeout_s + 1)
            fail("no transaction accepted");
        break;
    case PH_WARMUP:
        if (secs_in_phase() >= C.warmup_s) {
            N.t0 = uv_hrtime();
            N.cpu0 = cpu_ns_self();
            N.peer_cpu0 = peers_cpu();
            pin_helpers(C.helper_cpu); /* threads started since the last call too */
            thread_cpu(&N.loop0, &N.helper0);
            N.acc0 = acc;
            for (int i = 0; i < C.outs; i++) N.got0[i] = SH->got[i];
            link_bytes(&N.out_b0, &N.in_b0, &N.out_m0);
            N.x->invalid = tn_metrics_value(INVALID);
            N.x->full = tn_metrics_value(FULL);
            N.x->dups = tn_metrics_value(DUPLICATE);
            enter(PH_WINDOW);
        }
        break;
    case PH_WINDOW: {
        bool exhausted = SH->announced >= C.corpus - 2 * (size_t)C.probes;
        if (secs_in_phase() < C.duration_s && !exhausted) break;
        sample_t *x = N.x;
        double secs = (double)(uv_hrtime() - N.t0) / 1e9;
        uint64_t out_b, in_b, out_m, mg = UINT64_MAX;
        link_bytes(&out_b, &in_b, &out_m);
        for (int i = 0; i < C.outs; i++) mg = TN_MIN(mg, SH->got[i] - N.got0[i]);
        double n = acc - N.acc0;
        x->secs = secs;
        x->exhausted = exhausted;
        x->tx_per_s = n / secs;
        x->delivered_per_s = (double)mg / secs;
        x->node_cpu = (double)(cpu_ns_self() - N.cpu0) / 1e9 / secs;
        uint64_t loop_ns, helper_ns;
        thread_cpu(&loop_ns, &helper_ns);
        x->loop_cpu = (double)(loop_ns - N.loop0) / 1e9 / secs;
        x->helper_cpu = (double)(helper_ns - N.helper0) / 1e9 / secs;
        x->peers_cpu = (double)(peers_cpu() - N.peer_cpu0) / 1e9 / secs;
        x->out_link_bytes_per_tx = (double)(out_b - N.out_b0) / n / C.outs;
        x->out_link_msgs_per_tx = (double)(out_m - N.out_m0) / n / C.outs;
        x->in_link_bytes_per_tx = (double)(in_b - N.in_b0) / n;
        x->invalid = tn_metrics_value(INVALID) - x->invalid;
        x->full = tn_metrics_value(FULL) - x->full;
        x->dups = tn_metrics_value(DUPLICATE) - x->dups;
        command(OUT_MAX, 's');
        enter(PH_DRAIN);
        break;
    }
    case PH_DRAIN: {
        /* everything the node accepted reaches every out-peer */
        uint64_t mg = UINT64_MAX;
        for (int i = 0; i < C.outs; i++) mg = TN_MIN(mg, SH->got[i]);
        double total = acc - N.acc_total_at_stop;
        if (secs_in_phase() > 0.2 && (double)mg >= total && SH->sent == SH->announced) {
            N.x->delivery = (double)mg / total;
            command(OUT_MAX, 'a');
            enter(PH_PROBE_A);
        } else if (secs_in_phase() > C.drain_s) {
            N.x->delivery = (double)mg / total;
            fail("drain: the slowest out-peer has %llu of %.0f transactions after %.0f s",
                 (unsigned long long)mg, total, C.drain_s);
        }
        break;
    }
    case PH_PROBE_A:
    case PH_PROBE_U: {
        int m = N.phase == PH_PROBE_A ? 0 : 1;
        if (probes_done(m)) {
            if (m == 0) {
                command(OUT_MAX, 'u');
                enter(PH_PROBE_U);
            } else {
                probe_latency(0, &N.x->lat_announce_p50_us, &N.x->lat_announce_p99_us);
                probe_latency(1, &N.x->lat_push_p50_us, &N.x->lat_push_p99_us);
                enter(PH_DONE);
                uv_timer_stop(&N.phase_timer);
                uv_close((uv_handle_t *)&N.phase_timer, NULL);
                tn_node_stop(&N.node, "bench done");
            }
        } else if (secs_in_phase() > C.probes * C.probe_gap_s + 5) {
            fail("probes (%s) did not all arrive", m ? "pushed" : "announced");
        }
        break;
    }
    default:
        break;
    }
}

static void set_str(char **field, const char *value)
{
    if (tn_bench_set_str(field, value)) fail("out of memory");
}

static pid_t fork_peer(int idx)
{
    int p[2];
    if (pipe(p)) fail("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[1]);
        for (int i = 0; i <= OUT_MAX; i++)
            if (N.ctl[i] > 0) close(N.ctl[i]);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        _exit(run_peer(idx, p[0]));
    }
    close(p[0]);
    N.ctl[idx] = p[1];
    N.kids[idx] = pid;
    return pid;
}

static void reap_peers(void)
{
    for (int i = 0; i <= OUT_MAX; i++) {
        if (N.ctl[i] > 0) close(N.ctl[i]); /* EOF: the peer exits */
        N.ctl[i] = 0;
    }
    for (int i = 0; i <= OUT_MAX; i++) {
        if (N.kids[i] <= 0) continue;
        int st;
        while (waitpid(N.kids[i], &st, 0) < 0 && errno == EINTR) {
        }
        N.kids[i] = 0;
    }
}

/* One repetition: fresh peers, a fresh node (empty dedup, mempool and store). */
static void measure(sample_t *x)
{
    memset(x, 0, sizeof *x);
    memset(SH, 0, sizeof *SH);
    if (!(node_port = tn_bench_free_port())) fail("cannot find a free port");
    memset(N.kids, 0, sizeof N.kids);
    memset(N.ctl, 0, sizeof N.ctl);
    for (int i = 0; i < C.outs; i++) fork_peer(i);
    fork_peer(OUT_MAX);

    snprintf(N.dir, sizeof N.dir, "/tmp/tn-bench-relay-XXXXXX");
    if (!mkdtemp(N.dir)) fail("mkdtemp: %s", strerror(errno));
    snprintf(N.pol_dir, sizeof N.pol_dir, "%s/policies", N.dir);
    TN_BENCH_SHELL("cp -R '%s' '%s'", C.policy_dir, N.pol_dir);
    snprintf(N.log_path, sizeof N.log_path, "%s/node.log", N.dir);
    if (!(N.log = fopen(N.log_path, "w"))) fail("cannot write %s", N.log_path);
    tn_log_init("bench-node", TN_LOG_INFO, 10, N.log);
    if (tn_config_defaults(&N.cfg)) fail("out of memory");
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", node_port);
    set_str(&N.cfg.listen, listen);
    set_str(&N.cfg.data_dir, N.dir);
    set_str(&N.cfg.policy_dir, N.pol_dir);
    set_str(&N.cfg.node_name, "bench-node");
    N.cfg.allow_local_addresses = true;
    N.cfg.min_peers = 0; /* no discovery dials */
    N.cfg.mempool_max_txs = (int64_t)C.corpus + 1000;
    N.cfg.mempool_max_bytes = (int64_t)C.corpus * (C.tx_size + 64);
    if (N.cfg.dedup_capacity < (int64_t)C.corpus * 2) N.cfg.dedup_capacity = (int64_t)C.corpus * 2;
    /* the node's own ceiling is measured, not the per-peer inventory limit (5000 ids/s) */
    N.cfg.rate_inventory.v[0] = N.cfg.rate_inventory.v[1] = 0;
    /* one inv per out-peer per loop iteration, as measured before relay_inv_interval: the
     * probes compare announce and push latency of the path itself */
    N.cfg.relay_inv_interval = 0;

    uv_loop_init(&N.loop);
    char err[512];
    N.x = x;
    N.acc0 = N.acc_total_at_stop = tn_metrics_value(ACCEPTED);
    if (tn_node_start(&N.node, &N.loop, &N.cfg, err, sizeof err)) fail("node: %s", err);
    pin_helpers(C.helper_cpu);
    uv_timer_init(&N.loop, &N.phase_timer);
    uv_timer_start(&N.phase_timer, on_phase, 5, 5);
    for (int i = 0; i < C.outs; i++) command(i, 'g');
    enter(PH_OUTS);
    uv_run(&N.loop, UV_RUN_DEFAULT);
    tn_node_free(&N.node);
    uv_run(&N.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&N.loop)) fprintf(stderr, BENCH ": loop closed with handles open\n");
    reap_peers();
    tn_config_free(&N.cfg);
    memset(&N.cfg, 0, sizeof N.cfg);
    fclose(N.log);
    TN_BENCH_SHELL("rm -rf '%s'", N.dir);
    N.log_path[0] = 0;
    fprintf(stderr,
            BENCH
            ":   %.0f tx/s accepted, %.0f tx/s to the slowest out-peer (%.2f s%s), node "
            "CPU %.2f (loop thread %.2f on core %d, other threads %.2f on core %d), peers CPU "
            "%.2f; per tx %.0f B on each out link (%.1f msgs), %.0f B on the in link; latency "
            "to all outs p50 %.0f us announced, %.0f us pushed\n",
            x->tx_per_s, x->delivered_per_s, x->secs, x->exhausted ? ", corpus exhausted" : "",
            x->node_cpu, x->loop_cpu, C.node_cpu, x->helper_cpu, C.helper_cpu, x->peers_cpu,
            x->out_link_bytes_per_tx, x->out_link_msgs_per_tx, x->in_link_bytes_per_tx,
            x->lat_announce_p50_us, x->lat_push_p50_us);
}

/* ---- floors ---- */

#ifndef RELAY_UNSIGNED
/* The one-core Ed25519 ceiling of this path: tn_tx_verify (digest + verify) over the corpus,
 * on the node's core. */
static double verify_per_s(void)
{
    uint64_t t0 = uv_hrtime(), t, n = 0;
    size_t i = 0;
    do {
        for (int k = 0; k < 256; k++, n++, i = (i + 1) % C.corpus) {
            tn_tx_t tx;
            tn_tx_parse(corpus + i * C.tx_size, C.tx_size, UINT32_MAX, &tx);
            if (tn_tx_verify(&tx) != TN_OK) fail("corpus transaction %zu does not verify", i);
        }
        t = uv_hrtime();
    } while (t - t0 < 1000000000u);
    double r = (double)n / ((double)(t - t0) / 1e9);
    fprintf(stderr, BENCH ":   floor: %.0f verify/s (tn_tx_verify, one core)\n", r);
    return r;
}
#else
/* Bare-TCP relay of the same message bytes (6-byte header + 250-byte transaction), 1 in -> 8
 * out: this process reads whole messages from one connection and copies each to 8 others
 * (batched per read, written at once), no crypto, no dedup, no announce/fetch. Feeder and
 * counters are forked onto the peers' core like the bench's peers. */
#define FRAME_MSG (TN_MSG_HDR_LEN + C.tx_size)

typedef struct {
    uv_write_t req;
    uint8_t *mem;
    size_t len;
    int who;
} wreq_t;

static struct {
    uv_loop_t loop;
    uv_tcp_t server, conn[OUT_MAX + 1];
    int accepted;
    size_t queued[OUT_MAX];
    uint8_t *batch[OUT_MAX];
    size_t blen[OUT_MAX];
    uint8_t part[65536];
    size_t plen;
    bool reading;
    uint8_t rbuf[65536];
} R;

static void tcp_relay_start_read(void);

static void tcp_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    R.queued[w->who] -= w->len;
    free(w->mem);
    free(w);
    if (status < 0) return;
    bool room = true;
    for (int i = 0; i < C.outs; i++) room = room && R.queued[i] < C.backlog_max;
    if (room && !R.reading && R.accepted == C.outs + 1) {
        R.reading = true;
        tcp_relay_start_read();
    }
}

static void tcp_write(int i, uint8_t *mem, size_t len)
{
    size_t done = 0;
    if (R.queued[i] == 0) {
        uv_buf_t b = uv_buf_init((char *)mem, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&R.conn[i], &b, 1);
        if (n > 0) done = (size_t)n;
        if (done == len) {
            free(mem);
            return;
        }
    }
    wreq_t *w = malloc(sizeof *w);
    if (!w) fail("out of memory");
    w->mem = mem;
    w->len = len - done;
    w->who = i;
    uv_buf_t b = uv_buf_init((char *)mem + done, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&R.conn[i], &b, 1, tcp_written)) fail("uv_write failed");
    R.queued[i] += w->len;
}

static void tcp_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)h;
    (void)sz;
    *buf = uv_buf_init((char *)R.rbuf, sizeof R.rbuf);
}

static void to_outs(const uint8_t *m, size_t len)
{
    for (int i = 0; i < C.outs; i++) {
        memcpy(R.batch[i] + R.blen[i], m, len);
        R.blen[i] += len;
    }
    SH->announced++;
}

/* Splits the stream at message headers; every whole message goes to every out's batch,
 * written once per read. */
static void tcp_relay_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) {
        uv_read_stop(st);
        R.reading = false;
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    for (int i = 0; i < C.outs; i++)
        if (!R.batch[i] && !(R.batch[i] = malloc(sizeof R.rbuf + sizeof R.part)))
            fail("out of memory");
    while (n > 0) {
        if (R.plen == 0 && n >= TN_MSG_HDR_LEN && n - TN_MSG_HDR_LEN >= tn_get_u32(p + 2)) {
            size_t m = TN_MSG_HDR_LEN + tn_get_u32(p + 2); /* a whole message in place */
            to_outs(p, m);
            p += m;
            n -= m;
            continue;
        }
        size_t want = R.plen < TN_MSG_HDR_LEN ? TN_MSG_HDR_LEN - R.plen
                                              : TN_MSG_HDR_LEN + tn_get_u32(R.part + 2) - R.plen;
        size_t k = TN_MIN(want, n);
        if (R.plen + k > sizeof R.part) fail("message too large");
        memcpy(R.part + R.plen, p, k);
        R.plen += k;
        p += k;
        n -= k;
        if (R.plen >= TN_MSG_HDR_LEN && R.plen == TN_MSG_HDR_LEN + tn_get_u32(R.part + 2)) {
            to_outs(R.part, R.plen);
            R.plen = 0;
        }
    }
    bool full = false;
    for (int i = 0; i < C.outs; i++) {
        if (R.blen[i])
            tcp_write(i, R.batch[i], R.blen[i]);
        else
            free(R.batch[i]);
        R.batch[i] = NULL;
        R.blen[i] = 0;
        full = full || R.queued[i] >= C.backlog_max;
    }
    if (full) {
        uv_read_stop(st);
        R.reading = false;
    }
}

static void tcp_relay_start_read(void)
{
    uv_read_start((uv_stream_t *)&R.conn[OUT_MAX], tcp_alloc, tcp_relay_read);
}

static void tcp_on_conn(uv_stream_t *server, int status)
{
    if (status < 0) fail("relay listen: %s", uv_strerror(status));
    int i = R.accepted < C.outs ? R.accepted : OUT_MAX;
    uv_tcp_init(&R.loop, &R.conn[i]);
    if (uv_accept(server, (uv_stream_t *)&R.conn[i])) fail("uv_accept failed");
    uv_tcp_nodelay(&R.conn[i], 1);
    R.accepted++;
    if (i == OUT_MAX) {
        R.reading = true;
        tcp_relay_start_read();
    }
}

/* Forked: the feeder (idx OUT_MAX) writes messages while its backlog allows; a counter
 * (idx < outs) counts whole messages. Blocking sockets: one process, one job. */
static int run_tcp_peer(int idx, int ctl_fd)
{
    pin(C.peer_cpu);
    uint8_t go[2];
    if (read(ctl_fd, go, 1) != 1) _exit(0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(node_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) child_fail("connect: %s", strerror(errno));
    if (idx == OUT_MAX) {
        size_t per = 65536 / FRAME_MSG, len = per * FRAME_MSG;
        uint8_t *buf = malloc(len);
        for (size_t k = 0; k < per; k++) {
            uint8_t *m = buf + k * FRAME_MSG;
            tn_put_u16(m, TN_MSG_TX);
            tn_put_u32(m + 2, C.tx_size);
            memcpy(m + TN_MSG_HDR_LEN, corpus + k * C.tx_size, C.tx_size);
        }
        for (;;) {
            struct pollfd pfd[2] = {{.fd = fd, .events = POLLOUT},
                                    {.fd = ctl_fd, .events = POLLIN}};
            if (poll(pfd, 2, -1) < 0 && errno != EINTR) _exit(1);
            if (pfd[1].revents) _exit(0); /* EOF from the parent */
            if (!(pfd[0].revents & POLLOUT)) continue;
            ssize_t w = write(fd, buf, len);
            if (w < 0 && errno != EINTR && errno != EAGAIN) _exit(0);
            if (w > 0 && (size_t)w < len) { /* finish the partial batch */
                size_t off = (size_t)w;
                while (off < len) {
                    ssize_t v = write(fd, buf + off, len - off);
                    if (v <= 0 && errno != EINTR) _exit(0);
                    if (v > 0) off += (size_t)v;
                }
            }
            SH->sent += per;
            SH->cpu_ns[OUT_MAX] = cpu_ns_self();
        }
    }
    uint8_t *buf = malloc(1 << 20);
    size_t need = 0; /* bytes of the current message still to skip */
    uint8_t hdr[TN_MSG_HDR_LEN];
    size_t hdr_have = 0;
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 20);
        if (r <= 0) _exit(0);
        const uint8_t *p = buf;
        size_t n = (size_t)r;
        while (n > 0) {
            if (need) {
                size_t k = TN_MIN(need, n);
                need -= k;
                p += k;
                n -= k;
                continue;
            }
            size_t k = TN_MIN(TN_MSG_HDR_LEN - hdr_have, n);
            memcpy(hdr + hdr_have, p, k);
            hdr_have += k;
            p += k;
            n -= k;
            if (hdr_have < TN_MSG_HDR_LEN) break;
            hdr_have = 0;
            need = tn_get_u32(hdr + 2);
            SH->got[idx]++;
        }
        SH->cpu_ns[idx] = cpu_ns_self();
    }
}

static double tcp_relay_per_s(double *cpu)
{
    memset(SH, 0, sizeof *SH);
    memset(&R, 0, sizeof R);
    if (!(node_port = tn_bench_free_port())) fail("cannot find a free port");
    memset(N.kids, 0, sizeof N.kids);
    memset(N.ctl, 0, sizeof N.ctl);
    for (int idx = 0; idx <= C.outs; idx++) {
        int who = idx == C.outs ? OUT_MAX : idx, p[2];
        if (pipe(p)) fail("pipe: %s", strerror(errno));
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) fail("fork: %s", strerror(errno));
        if (pid == 0) {
            close(p[1]);
            for (int i = 0; i <= OUT_MAX; i++)
                if (N.ctl[i] > 0) close(N.ctl[i]);
            _exit(run_tcp_peer(who, p[0]));
        }
        close(p[0]);
        N.ctl[who] = p[1];
        N.kids[who] = pid;
    }
    uv_loop_init(&R.loop);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", node_port, &sa);
    uv_tcp_init(&R.loop, &R.server);
    if (uv_tcp_bind(&R.server, (struct sockaddr *)&sa, 0) ||
        uv_listen((uv_stream_t *)&R.server, 64, tcp_on_conn))
        fail("relay listen failed");
    for (int i = 0; i < C.outs; i++) command(i, 'g');
    while (R.accepted < C.outs) uv_run(&R.loop, UV_RUN_ONCE);
    command(OUT_MAX, 'g');
    uint64_t t_end = uv_hrtime() + (uint64_t)(C.warmup_s * 1e9), t0 = 0, cpu0 = 0, got0[OUT_MAX];
    int phase = 0;
    double rate = 0;
    for (;;) {
        uv_run(&R.loop, UV_RUN_NOWAIT);
        if (SH->failed) fail("tcp peer: %s", SH->err);
        uint64_t now = uv_hrtime();
        if (now < t_end) continue;
        if (phase == 0) {
            t0 = now;
            cpu0 = cpu_ns_self();
            for (int i = 0; i < C.outs; i++) got0[i] = SH->got[i];
            t_end = now + (uint64_t)(C.duration_s * 1e9);
            phase = 1;
            continue;
        }
        uint64_t mg = UINT64_MAX;
        for (int i = 0; i < C.outs; i++) mg = TN_MIN(mg, SH->got[i] - got0[i]);
        double secs = (double)(now - t0) / 1e9;
        rate = (double)mg / secs;
        *cpu = (double)(cpu_ns_self() - cpu0) / 1e9 / secs;
        break;
    }
    for (int i = 0; i <= OUT_MAX; i++)
        if (R.conn[i].type) uv_close((uv_handle_t *)&R.conn[i], NULL);
    uv_close((uv_handle_t *)&R.server, NULL);
    uv_run(&R.loop, UV_RUN_DEFAULT);
    uv_loop_close(&R.loop);
    reap_peers(); /* their sockets are closed: the counters read EOF, the feeder EPIPE */
    fprintf(stderr,
            BENCH
            ":   floor: bare TCP relay 1 -> %d: %.0f msg/s to the slowest out (relay CPU %.2f)\n",
            C.outs, rate, *cpu);
    return rate;
}
#endif

/* ---- main ---- */

static double median(double *v, int n)
{
    double t[REPS_MAX];
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, tn_bench_cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"warmup", required_argument, 0, 'w'},   {"duration", required_argument, 0, 'd'},
        {"reps", required_argument, 0, 'r'},     {"outs", required_argument, 0, 'o'},
        {"corpus", required_argument, 0, 'c'},   {"window", required_argument, 0, 'W'},
        {"node-cpu", required_argument, 0, 'n'}, {"peer-cpu", required_argument, 0, 'p'},
        {"probes", required_argument, 0, 'P'},   {"policy-dir", required_argument, 0, 'D'},
        {"node-only", no_argument, 0, 'N'},      {0, 0, 0, 0}};
    bool node_only = false; /* for profilers: the node measurements only, no floor, no JSON */
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
        case 'o':
            C.outs = atoi(optarg);
            break;
        case 'c':
            C.corpus = (size_t)atoll(optarg);
            break;
        case 'W':
            C.window = (size_t)atoll(optarg);
            break;
        case 'n':
            C.node_cpu = atoi(optarg);
            break;
        case 'p':
            C.peer_cpu = atoi(optarg);
            break;
        case 'P':
            C.probes = atoi(optarg);
            break;
        case 'D':
            C.policy_dir = optarg;
            break;
        case 'N':
            node_only = true;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--warmup S] [--duration S] [--reps N] [--outs N] [--corpus N] "
                    "[--window N] [--node-cpu K] [--peer-cpu K] [--probes N] [--policy-dir D] "
                    "[--node-only]\n",
                    argv[0]);
            return 2;
        }
    }
    int cores = ncpus();
    if (C.reps < 1 || C.reps > REPS_MAX || C.outs < 1 || C.outs > OUT_MAX || C.probes < 1 ||
        C.probes > PROBES_MAX || C.window < 1 || C.window > 60000 || C.duration_s <= 0 ||
        C.corpus < 10000 || C.node_cpu < 0 || C.peer_cpu < 0 || C.node_cpu >= cores ||
        C.peer_cpu >= cores)
        fail("bad parameters (%d cores online)", cores);
    if (tn_crypto_init()) fail("sodium_init failed");
    signal(SIGPIPE, SIG_IGN);
    SH = mmap(NULL, sizeof *SH, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (SH == MAP_FAILED) fail("mmap: %s", strerror(errno));

    uint64_t tb = uv_hrtime();
    build_corpus();
    fprintf(stderr, BENCH ": corpus of %zu transactions of %u bytes built in %.1f s\n", C.corpus,
            C.tx_size, (double)(uv_hrtime() - tb) / 1e9);
    pin(C.node_cpu); /* this process: the node, its threads, and the floors */

    /* Per repetition: (x) every thread of the node on its core; (y) the loop thread there and
     * its threadpool threads (SQLite batches of the store) on the peers' core; the floor. */
    sample_t x[REPS_MAX], y[REPS_MAX];
    double floor_v[REPS_MAX], floor_cpu[REPS_MAX] = {0};
    int off_core = C.peer_cpu != C.node_cpu ? C.peer_cpu : C.node_cpu;
    for (int r = 0; r < C.reps; r++) {
        fprintf(stderr,
                BENCH ": repetition %d/%d: the node (all threads) on core %d, 1 in-peer + "
                      "%d out-peers on core %d\n",
                r + 1, C.reps, C.node_cpu, C.outs, C.peer_cpu);
        C.helper_cpu = C.node_cpu;
        measure(&x[r]);
        fprintf(stderr,
                BENCH ": repetition %d/%d: the node's loop thread on core %d, its store "
                      "thread on core %d with the peers\n",
                r + 1, C.reps, C.node_cpu, off_core);
        C.helper_cpu = off_core;
        measure(&y[r]);
        if (node_only) continue;
#ifdef RELAY_UNSIGNED
        floor_v[r] = tcp_relay_per_s(&floor_cpu[r]);
#else
        floor_v[r] = verify_per_s();
#endif
    }
    if (node_only) return 0;
    enum {
        TX,
        DELIV,
        NCPU,
        PCPU,
        OUTB,
        OUTM,
        INB,
        DELY,
        LA50,
        LA99,
        LP50,
        LP99,
        TX2,
        LOOP2,
        HELP2,
        NF
    };
    double f[NF][REPS_MAX];
    double lo = 0, hi = 0, bad = 0;
    bool exhausted = false;
    for (int r = 0; r < C.reps; r++) {
        f[TX][r] = x[r].tx_per_s;
        f[DELIV][r] = x[r].delivered_per_s;
        f[NCPU][r] = x[r].node_cpu;
        f[PCPU][r] = x[r].peers_cpu;
        f[OUTB][r] = x[r].out_link_bytes_per_tx;
        f[OUTM][r] = x[r].out_link_msgs_per_tx;
        f[INB][r] = x[r].in_link_bytes_per_tx;
        f[DELY][r] = x[r].delivery;
        f[LA50][r] = x[r].lat_announce_p50_us;
        f[LA99][r] = x[r].lat_announce_p99_us;
        f[LP50][r] = x[r].lat_push_p50_us;
        f[LP99][r] = x[r].lat_push_p99_us;
        f[TX2][r] = y[r].tx_per_s;
        f[LOOP2][r] = y[r].loop_cpu;
        f[HELP2][r] = y[r].helper_cpu;
        lo = r == 0 || x[r].tx_per_s < lo ? x[r].tx_per_s : lo;
        hi = r == 0 || x[r].tx_per_s > hi ? x[r].tx_per_s : hi;
        bad += x[r].invalid + x[r].full + x[r].dups + y[r].invalid + y[r].full + y[r].dups;
        exhausted = exhausted || x[r].exhausted || y[r].exhausted;
    }
    double m[NF];
    for (int k = 0; k < NF; k++) m[k] = median(f[k], C.reps);
    double fl = median(floor_v, C.reps);
    if (bad > 0) fail("%.0f transactions invalid, refused by a full mempool or duplicated", bad);

    printf("{\"params\": {\"tx_size\": %u, \"in_peers\": 1, \"out_peers\": %d, \"corpus\": %zu, "
           "\"window\": %zu, \"warmup_s\": %g, \"duration_s\": %g, \"repetitions\": %d, "
           "\"aggregate\": \"median\", \"cores_online\": %d, \"node_core\": %d, \"peer_core\": %d, "
           "\"core_use\": \"core %d: this process = the node (tn_node_start, in-process: its "
           "loop thread, and in the main figures its threadpool threads too, which run the "
           "store's SQLite batches) and the floor; core %d: the in-peer and the %d out-peers "
           "(forked, real session code, sources 127.0.1.x); *_store_off_core figures: the "
           "node's threadpool threads moved to core %d\", ",
           C.tx_size, C.outs, C.corpus, C.window, C.warmup_s, C.duration_s, C.reps, cores,
           C.node_cpu, C.peer_cpu, C.node_cpu, C.peer_cpu, C.outs, off_core);
#ifdef RELAY_UNSIGNED
    printf("\"measures\": \"the node's transaction relay path (tn_relay.c compiled into the "
           "bench) with the Ed25519 check compiled out: hash, dedup, request bookkeeping, "
           "mempool + store mirror, announce to %d peers, serve their getdata; the node has no "
           "relay path for unsigned message types yet (experiment types are counted and "
           "dropped)\", \"floor\": \"bare TCP relay of the same 256-byte messages 1 -> %d, no "
           "crypto, no dedup, push (no announce/fetch), same cores\", "
           "\"ratio\": \"msg_per_s / tcp_relay_msg_per_s\", \"goals\": \"msg_per_s >= 100000 "
           "and ratio >= 0.33\"",
           C.outs, C.outs);
#else
    printf("\"measures\": \"the node's whole transaction path as shipped: in-peer announces "
           "(inv) and serves getdata; node: hash, dedup, Ed25519 verify, mempool + store "
           "mirror, announce to %d out-peers, serve their getdata (each fetches every body)\", "
           "\"floor\": \"tn_tx_verify over the same corpus on the node's core\", "
           "\"ratio\": \"tx_per_s / verify_per_s\", \"goal\": \"ratio >= 0.8\"",
           C.outs);
#endif
    printf(", \"probes\": %d, \"probe_gap_s\": %g, \"latency\": \"light load: from the "
           "in-peer's announce (inv) or push (tx) to the last out-peer holding the body; the "
           "node -> out links are announce-then-fetch in both\"},\n",
           C.probes, C.probe_gap_s);
    printf(" \"figures\": {\"%s\": %.0f, \"delivered_per_s\": %.0f, \"ratio\": %.3f, "
           "\"spread\": %.3f, \"node_cpu\": %.2f, \"peers_cpu\": %.2f, \"delivery\": %.4f, "
           "\"out_link_bytes_per_tx\": %.1f, \"out_link_msgs_per_tx\": %.2f, "
           "\"in_link_bytes_per_tx\": %.1f, \"latency_announced_p50_us\": %.0f, "
           "\"latency_announced_p99_us\": %.0f, \"latency_pushed_p50_us\": %.0f, "
           "\"latency_pushed_p99_us\": %.0f, \"corpus_exhausted\": %s, "
           "\"%s_store_off_core\": %.0f, \"ratio_store_off_core\": %.3f, "
           "\"loop_cpu_store_off_core\": %.2f, \"store_thread_cpu\": %.2f},\n",
#ifdef RELAY_UNSIGNED
           "msg_per_s",
#else
           "tx_per_s",
#endif
           m[TX], m[DELIV], m[TX] / fl, (hi - lo) / m[TX], m[NCPU], m[PCPU], m[DELY], m[OUTB],
           m[OUTM], m[INB], m[LA50], m[LA99], m[LP50], m[LP99], exhausted ? "true" : "false",
#ifdef RELAY_UNSIGNED
           "msg_per_s",
#else
           "tx_per_s",
#endif
           m[TX2], m[TX2] / fl, m[LOOP2], m[HELP2]);
#ifdef RELAY_UNSIGNED
    printf(" \"floors\": {\"tcp_relay_msg_per_s\": %.0f, \"tcp_relay_cpu\": %.2f}}\n", fl,
           median(floor_cpu, C.reps));
#else
    (void)floor_cpu;
    printf(" \"floors\": {\"verify_per_s\": %.0f}}\n", fl);
#endif
    return 0;
}
