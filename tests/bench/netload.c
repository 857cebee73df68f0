/* Load generator and delivery observer for the network benches (load_20x1000, masternodes_100,
 * net_n20_signed, net_n20_unsigned; driven by tests/bench/netbench.lua, which starts the nodes
 * through the test harness). Not a bench of its own: it prints one JSON object of raw figures.
 *
 * It keeps one observer session (the real session code, one identity, from --src) with every
 * node and publishes messages at --rate for --duration seconds at nodes picked at random
 * (seeded):
 *   --mode signed   250 B signed transactions submitted with tx_submit on each node's control
 *                   socket (one persistent connection per node); a node has a transaction when
 *                   it announces it to the observer (inv), or announces a block holding it;
 *   --mode flood    250 B raw messages of a Lua-defined type (--type, an experiment that floods
 *                   with tn.broadcast, tests/bench/flood.lua) pushed by the observer to the
 *                   entry node; a node has one when its copy reaches the observer. The entry node
 *                   never echoes to its sender: delivery and latency count the other nodes.
 * Latency of a (message, node) pair: publication (request written) -> the observer hears of
 * it from that node; time-to-all: publication -> the last node. CPU: utime+stime of the pids
 * given (/proc), from the first publication to the end of the drain.
 * Progress goes to stderr once a second. Exit 0 with the JSON, 1 when it could not measure. */
#include "tn_proto.h"
#include "tn_session.h"
#include "tn_tx.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#define NODES_MAX 512
#define SENDERS 16

typedef struct {
    char name[64], addr[64], ctl_path[512];
    int pid, idx;
    tn_session_t *s;
    bool open;
    uv_pipe_t pipe;
    uv_connect_t pconn;
    bool pipe_open;
    char *rbuf;
    size_t rlen;
    uint64_t acks, naks, seen, blocks;
} node_t;

static struct {
    const char *nodes_file, *src, *mode;
    double rate, duration, drain, connect_s;
    uint32_t size;
    uint16_t type;
    uint64_t seed;
} C = {NULL, "127.0.0.1", "signed", 100, 10, 10, 20, 250, 0x8200, 1};

static node_t nodes[NODES_MAX];
static int nn, n_open;
static uv_loop_t *loop;
static tn_net_t net;
static uv_timer_t tick, progress, deadline;
static bool flood, publishing, done;
static size_t ntx, sent;
static uint8_t *corpus; /* ntx messages of C.size bytes */
static uint8_t (*ids)[32];
static uint32_t *lookup; /* open addressing on the first 8 id bytes: index + 1 */
static size_t lookup_mask;
static uint64_t *sub_ns; /* publication time of each message (uv_hrtime) */
static uint16_t *entry;  /* node each was published at */
static uint32_t *seen;   /* [msg * nn + node]: microseconds after t0 + 1; 0 = not yet */
static uint64_t t0, t_end_pub, total_seen, expected, last_seen_ns, drain_start;
static uint64_t run_id;
static uint64_t cpu0[NODES_MAX], cpu1[NODES_MAX];
static uint64_t pub_fail, closed_sessions, via_block;
static char first_nak[256];

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netload: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* utime + stime of a process, in ns (0 if it is gone). */
static uint64_t proc_cpu_ns(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    unsigned long long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
     */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* ---- the corpus ---- */

typedef struct {
    size_t from, to;
    uint64_t expiry;
} job_t;

static void *build_part(void *arg)
{
    job_t *j = arg;
    uint8_t pk[32], sk[SENDERS][64], payload[4096];
    for (int k = 0; k < SENDERS; k++) crypto_sign_keypair(pk, sk[k]);
    randombytes_buf(payload, sizeof payload);
    tn_buf_t b;
    tn_buf_init(&b, 1u << 20);
    uint32_t pl = C.size - TN_TX_MIN;
    for (size_t i = j->from; i < j->to; i++) {
        uint8_t *p = corpus + i * C.size;
        if (flood) {
            /* [run id 8][index 8][random]: the id is the BLAKE2b of the bytes, like the node's */
            memcpy(p, payload + (i % 1024), C.size);
            tn_put_u64(p, run_id);
            tn_put_u64(p + 8, i);
            crypto_generichash(ids[i], 32, p, C.size, NULL, 0);
        } else {
            b.len = 0;
            if (tn_tx_build(&b, sk[i % SENDERS], j->expiry, run_id + i, payload + (i % 1024), pl) ||
                b.len != C.size)
                fail("cannot build a transaction of %u bytes", C.size);
            memcpy(p, b.p, C.size);
            tn_tx_t tx;
            tn_tx_parse(p, C.size, UINT32_MAX, &tx);
            memcpy(ids[i], tx.id, 32);
        }
    }
    tn_buf_free(&b);
    return NULL;
}

static void build_corpus(void)
{
    corpus = malloc(ntx * C.size);
    ids = malloc(ntx * 32);
    sub_ns = calloc(ntx, sizeof *sub_ns);
    entry = calloc(ntx, sizeof *entry);
    seen = calloc(ntx * (size_t)nn, sizeof *seen);
    size_t cap = 1;
    while (cap < 2 * ntx) cap *= 2;
    lookup = calloc(cap, sizeof *lookup);
    lookup_mask = cap - 1;
    if (!corpus || !ids || !sub_ns || !entry || !seen || !lookup) fail("out of memory");
    int nt = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nt < 1) nt = 1;
    if (nt > 8) nt = 8;
    pthread_t th[8];
    job_t jobs[8];
    /* far from expiry, and later than any earlier run's: a full mempool evicts those first */
    uint64_t expiry = tn_wall_ms() / 1000 + 3 * 3600;
    for (int i = 0; i < nt; i++) {
        jobs[i].from = ntx * (size_t)i / (size_t)nt;
        jobs[i].to = ntx * (size_t)(i + 1) / (size_t)nt;
        jobs[i].expiry = expiry;
        pthread_create(&th[i], NULL, build_part, &jobs[i]);
    }
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    for (size_t k = 0; k < ntx; k++) {
        size_t i = (size_t)tn_get_u64(ids[k]) & lookup_mask;
        while (lookup[i]) i = (i + 1) & lookup_mask;
        lookup[i] = (uint32_t)k + 1;
    }
}

static int64_t index_of(const uint8_t id[32])
{
    size_t i = (size_t)tn_get_u64(id) & lookup_mask;
    while (lookup[i]) {
        uint32_t k = lookup[i] - 1;
        if (memcmp(ids[k], id, 32) == 0) return k;
        i = (i + 1) & lookup_mask;
    }
    return -1;
}

/* ---- delivery records ---- */

static void record(node_t *nd, size_t k, uint64_t now)
{
    if (k >= sent) return; /* not published by this run (a stale id) */
    if (flood && entry[k] == nd->idx) return;
    uint32_t *cell = &seen[k * (size_t)nn + (size_t)nd->idx];
    if (*cell) return;
    uint64_t us = (now - t0) / 1000 + 1;
    *cell = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    nd->seen++;
    total_seen++;
    last_seen_ns = now;
}

/* ---- the observer sessions ---- */

static void send_hello(tn_session_t *s)
{
    tn_hello_t h;
    memset(&h, 0, sizeof h);
    h.version = TN_PROTO_VERSION;
    h.time_ms = tn_wall_ms();
    snprintf(h.name, sizeof h.name, "netload");
    tn_buf_t *b = tn_session_batch(s, TN_MSG_HDR_LEN + 25 + TN_NAME_MAX);
    if (!b || tn_hello_encode(b, &h) != TN_OK || tn_session_sent(s) != TN_OK)
        fail("cannot send hello");
}

static void on_open(tn_session_t *s)
{
    node_t *nd = s->peer;
    send_hello(s);
    nd->open = true;
    n_open++;
}

static void on_message(tn_session_t *s, uint16_t type, const uint8_t *p, uint32_t len)
{
    node_t *nd = s->peer;
    uint64_t now = uv_hrtime();
    if (type == TN_MSG_PING && len == 8) {
        tn_session_send(s, TN_MSG_PONG, p, 8);
        return;
    }
    if (type == TN_MSG_INV) {
        int n = tn_inv_decode(p, len);
        for (int i = 0; i < n; i++) {
            uint8_t kind;
            const uint8_t *id;
            tn_inv_entry(p, i, &kind, &id);
            if (kind == TN_INV_TX) {
                int64_t k = index_of(id);
                if (k >= 0) record(nd, (size_t)k, now);
            } else if (kind == TN_INV_BLOCK && !flood) {
                /* a transaction may reach a node inside a block first: fetch blocks too */
                uint8_t e[2 + TN_INV_ENTRY];
                tn_put_u16(e, 1);
                e[2] = TN_INV_BLOCK;
                memcpy(e + 3, id, 32);
                tn_session_send(s, TN_MSG_GETDATA, e, sizeof e);
            }
        }
        return;
    }
    if (type == TN_MSG_BLOCK && len >= TN_BLOCK_HDR) {
        nd->blocks++;
        uint32_t off = 0;
        tn_tx_t tx;
        while (tn_block_next_tx(p, len, &off, &tx) == 1) {
            int64_t k = index_of(tx.id);
            if (k < 0) continue;
            uint64_t before = total_seen;
            record(nd, (size_t)k, now);
            via_block += total_seen - before;
        }
        return;
    }
    if (flood && type == C.type && len == C.size && tn_get_u64(p) == run_id) {
        uint64_t k = tn_get_u64(p + 8);
        if (k < ntx) record(nd, (size_t)k, now);
    }
}

static void on_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    node_t *nd = s->peer;
    if (nd->open) n_open--;
    nd->open = false;
    nd->s = NULL;
    closed_sessions++;
    if (!done)
        fprintf(stderr, "netload: session with %s closed: %s (%s)\n", nd->name,
                tn_close_reason_name(reason), detail ? detail : "");
}

/* ---- control connections (signed mode) ---- */

static void pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    node_t *nd = h->data;
    (void)suggested;
    if (!nd->rbuf) nd->rbuf = malloc(1 << 16);
    *buf = uv_buf_init(nd->rbuf + nd->rlen, (unsigned)((1 << 16) - nd->rlen));
}

static void pipe_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    node_t *nd = st->data;
    (void)buf;
    if (nread < 0) {
        if (!done) fprintf(stderr, "netload: control connection to %s lost\n", nd->name);
        nd->pipe_open = false;
        uv_close((uv_handle_t *)st, NULL);
        return;
    }
    nd->rlen += (size_t)nread;
    char *start = nd->rbuf, *end = nd->rbuf + nd->rlen, *nl;
    while ((nl = memchr(start, '\n', (size_t)(end - start)))) {
        *nl = 0;
        if (strstr(start, "\"ok\":true"))
            nd->acks++;
        else {
            nd->naks++;
            if (!first_nak[0]) snprintf(first_nak, sizeof first_nak, "%s: %s", nd->name, start);
        }
        start = nl + 1;
    }
    nd->rlen = (size_t)(end - start);
    memmove(nd->rbuf, start, nd->rlen);
    if (nd->rlen == 1 << 16) nd->rlen = 0; /* a reply line beyond 64 KiB: not ours */
}

static void pipe_connected(uv_connect_t *req, int status)
{
    node_t *nd = req->data;
    if (status < 0) fail("cannot connect to %s: %s", nd->ctl_path, uv_strerror(status));
    nd->pipe_open = true;
    uv_read_start((uv_stream_t *)&nd->pipe, pipe_alloc, pipe_read);
}

typedef struct {
    uv_write_t req;
    char line[];
} wline_t;

static void line_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* ---- publication ---- */

static void publish(size_t k)
{
    int e = (int)(rnd() % (uint64_t)nn);
    node_t *nd = &nodes[e];
    entry[k] = (uint16_t)e;
    sub_ns[k] = uv_hrtime();
    const uint8_t *m = corpus + k * C.size;
    if (flood) {
        if (!nd->s || !nd->open || tn_session_send(nd->s, C.type, m, C.size) != TN_OK) pub_fail++;
        return;
    }
    if (!nd->pipe_open) {
        pub_fail++;
        return;
    }
    static const char pre[] = "{\"cmd\":\"tx_submit\",\"hex\":\"";
    size_t n = sizeof pre - 1 + 2 * C.size + 3;
    wline_t *w = malloc(sizeof *w + n + 1);
    memcpy(w->line, pre, sizeof pre - 1);
    tn_hex(w->line + sizeof pre - 1, m, C.size);
    memcpy(w->line + sizeof pre - 1 + 2 * C.size, "\"}\n", 4);
    uv_buf_t b = uv_buf_init(w->line, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&nd->pipe, &b, 1, line_written) != 0) {
        free(w);
        pub_fail++;
    }
}

static void print_result(void);

/* A few (message, node) pairs never seen, for the log of a run that missed. */
static void report_missing(void)
{
    int shown = 0;
    uint64_t missing = 0;
    for (size_t k = 0; k < sent; k++)
        for (int i = 0; i < nn; i++) {
            if (flood && entry[k] == i) continue;
            if (seen[k * (size_t)nn + (size_t)i]) continue;
            missing++;
            if (shown++ < 5) {
                char hex[17];
                tn_hex(hex, ids[k], 8);
                fprintf(stderr,
                        "netload: never seen: message %zu (%s..., published at %s, %.3f s) "
                        "at %s\n",
                        k, hex, nodes[entry[k]].name, (double)(sub_ns[k] - t0) / 1e9,
                        nodes[i].name);
            }
        }
    if (missing) fprintf(stderr, "netload: %" PRIu64 " pairs never seen\n", missing);
}

static void finish(void)
{
    done = true;
    report_missing();
    for (int i = 0; i < nn; i++) cpu1[i] = nodes[i].pid > 0 ? proc_cpu_ns(nodes[i].pid) : 0;
    uv_timer_stop(&tick);
    uv_timer_stop(&progress);
    uv_timer_stop(&deadline);
    print_result();
    fflush(stdout);
    _exit(0);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_hrtime();
    if (publishing) {
        double due = (double)(now - t0) / 1e9 * C.rate;
        while (sent < ntx && (double)sent < due) publish(sent++);
        if (sent == ntx) {
            publishing = false;
            t_end_pub = now;
            drain_start = now;
            fprintf(stderr, "netload: published %zu in %.2f s; draining (at most %.0f s)\n", sent,
                    (double)(now - t0) / 1e9, C.drain);
        }
        return;
    }
    if (!t_end_pub) return;
    if (total_seen >= expected || (double)(now - drain_start) / 1e9 > C.drain) finish();
}

static void on_progress(uv_timer_t *t)
{
    (void)t;
    double el = (double)(uv_hrtime() - t0) / 1e9;
    uint64_t exp_now = (uint64_t)sent * (uint64_t)(flood ? nn - 1 : nn);
    fprintf(stderr,
            "netload: %5.1f s: published %zu, delivered %.4f of those (%" PRIu64
            " pairs), sessions %d/%d%s\n",
            el, sent, exp_now ? (double)total_seen / (double)exp_now : 0.0, total_seen, n_open, nn,
            pub_fail ? " (publication failures)" : "");
}

static void on_connect_deadline(uv_timer_t *t)
{
    (void)t;
    if (publishing || done || t_end_pub) return;
    fail("only %d of %d observer sessions open after %.0f s", n_open, nn, C.connect_s);
}

static void start_publishing(void)
{
    for (int i = 0; i < nn; i++) cpu0[i] = nodes[i].pid > 0 ? proc_cpu_ns(nodes[i].pid) : 0;
    t0 = uv_hrtime();
    publishing = true;
    fprintf(stderr, "netload: %d sessions open; publishing %zu messages at %.0f/s (%s)\n", n_open,
            ntx, C.rate, C.mode);
    uv_timer_start(&progress, on_progress, 1000, 1000);
    uv_timer_start(&tick, on_tick, 1, 1);
}

static void on_pause_over(uv_timer_t *t)
{
    (void)t;
    start_publishing();
}

static uv_timer_t waiter;
static void on_wait(uv_timer_t *t)
{
    bool pipes = true;
    if (!flood)
        for (int i = 0; i < nn; i++) pipes = pipes && nodes[i].pipe_open;
    if (n_open == nn && pipes) {
        uv_timer_stop(t);
        /* the nodes count the observer as established once its hello is in: a short pause */
        uv_timer_start(t, on_pause_over, 300, 0);
    }
}

/* ---- results ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(uint32_t *v, size_t n, double q)
{
    if (n == 0) return -1;
    size_t i = (size_t)ceil(q * (double)n);
    if (i > 0) i--;
    if (i >= n) i = n - 1;
    return v[i] / 1000.0;
}

static void print_result(void)
{
    size_t pairs = 0, complete = 0, nentry = 0;
    uint32_t *lat = malloc(ntx * (size_t)nn * sizeof *lat);
    uint32_t *ent = malloc(ntx * sizeof *ent); /* at the entry node: the observer's own lag */
    uint32_t *tta = malloc(ntx * sizeof *tta);
    if (!lat || !tta || !ent) fail("out of memory");
    for (size_t k = 0; k < sent; k++) {
        uint64_t sub_us = (sub_ns[k] - t0) / 1000;
        uint32_t worst = 0;
        bool all = true;
        for (int i = 0; i < nn; i++) {
            if (flood && entry[k] == i) continue;
            uint32_t c = seen[k * (size_t)nn + (size_t)i];
            if (!c) {
                all = false;
                continue;
            }
            uint64_t at = (uint64_t)c - 1;
            uint32_t d = at > sub_us ? (uint32_t)(at - sub_us) : 0;
            lat[pairs++] = d;
            if (i == entry[k]) ent[nentry++] = d;
            if (d > worst) worst = d;
        }
        if (all) tta[complete++] = worst;
    }
    qsort(lat, pairs, sizeof *lat, cmp_u32);
    qsort(tta, complete, sizeof *tta, cmp_u32);
    qsort(ent, nentry, sizeof *ent, cmp_u32);
    double wall_pub = (double)((t_end_pub ? t_end_pub : uv_hrtime()) - t0) / 1e9;
    double wall = (double)(uv_hrtime() - t0) / 1e9;
    double cpu = 0;
    for (int i = 0; i < nn; i++)
        if (cpu1[i] > cpu0[i]) cpu += (double)(cpu1[i] - cpu0[i]) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double self_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                      ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    uint64_t acks = 0, naks = 0, blocks = 0;
    for (int i = 0; i < nn; i++) {
        acks += nodes[i].acks;
        naks += nodes[i].naks;
        blocks += nodes[i].blocks;
    }
    double delivery = expected ? (double)total_seen / (double)expected : 0;
    printf("{\"mode\":\"%s\",\"nodes\":%d,\"rate\":%.1f,\"duration_s\":%.1f,\"published\":%zu,"
           "\"publish_s\":%.3f,\"achieved_rate\":%.1f,\"publish_failures\":%" PRIu64
           ",\"acks\":%" PRIu64 ",\"naks\":%" PRIu64 ",\"delivered_pairs\":%" PRIu64
           ",\"expected_pairs\":%" PRIu64 ",\"delivery\":%.6f,\"complete\":%zu,"
           "\"lat_p50_ms\":%.3f,\"lat_p90_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f,"
           "\"entry_p50_ms\":%.3f,\"entry_p99_ms\":%.3f,\"tta_p50_ms\":%.3f,\"tta_p90_ms\":%.3f,"
           "\"tta_p99_ms\":%.3f,\"tta_max_ms\":%.3f,"
           "\"last_delivery_s\":%.3f,\"wall_s\":%.3f,\"node_cpu_s\":%.3f,\"tool_cpu_s\":%.3f,"
           "\"blocks_fetched\":%" PRIu64 ",\"via_block\":%" PRIu64 ",\"sessions_closed\":%" PRIu64
           ",\"first_nak\":\"",
           C.mode, nn, C.rate, C.duration, sent, wall_pub,
           wall_pub > 0 ? (double)sent / wall_pub : 0, pub_fail, acks, naks, total_seen, expected,
           delivery, complete, pct_ms(lat, pairs, 0.5), pct_ms(lat, pairs, 0.9),
           pct_ms(lat, pairs, 0.99), pairs ? lat[pairs - 1] / 1000.0 : -1, pct_ms(ent, nentry, 0.5),
           pct_ms(ent, nentry, 0.99), pct_ms(tta, complete, 0.5), pct_ms(tta, complete, 0.9),
           pct_ms(tta, complete, 0.99), complete ? tta[complete - 1] / 1000.0 : -1,
           last_seen_ns ? (double)(last_seen_ns - t0) / 1e9 : 0, wall, cpu, self_cpu, blocks,
           via_block, closed_sessions);
    for (const char *c = first_nak; *c; c++)
        if (*c != '"' && *c != '\\' && (unsigned char)*c >= 32) putchar(*c);
    printf("\",\"per_node_seen\":[");
    for (int i = 0; i < nn; i++) printf("%s%" PRIu64, i ? "," : "", nodes[i].seen);
    printf("]}\n");
}

/* ---- main ---- */

static void read_nodes(void)
{
    FILE *f = fopen(C.nodes_file, "r");
    if (!f) fail("cannot read %s", C.nodes_file);
    char line[1200];
    while (fgets(line, sizeof line, f)) {
        if (nn == NODES_MAX) fail("more than %d nodes", NODES_MAX);
        node_t *nd = &nodes[nn];
        if (sscanf(line, "%63s %63s %511s %d", nd->name, nd->addr, nd->ctl_path, &nd->pid) < 3)
            continue;
        nd->idx = nn++;
    }
    fclose(f);
    if (nn < 2) fail("%s lists fewer than 2 nodes", C.nodes_file);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"nodes", 1, 0, 'n'},   {"rate", 1, 0, 'r'}, {"duration", 1, 0, 'd'},
        {"drain", 1, 0, 'D'},   {"src", 1, 0, 's'},  {"mode", 1, 0, 'm'},
        {"size", 1, 0, 'z'},    {"type", 1, 0, 't'}, {"seed", 1, 0, 'S'},
        {"connect", 1, 0, 'c'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            C.nodes_file = optarg;
            break;
        case 'r':
            C.rate = atof(optarg);
            break;
        case 'd':
            C.duration = atof(optarg);
            break;
        case 'D':
            C.drain = atof(optarg);
            break;
        case 's':
            C.src = optarg;
            break;
        case 'm':
            C.mode = optarg;
            break;
        case 'z':
            C.size = (uint32_t)atoi(optarg);
            break;
        case 't':
            C.type = (uint16_t)strtoul(optarg, NULL, 0);
            break;
        case 'S':
            C.seed = strtoull(optarg, NULL, 0);
            break;
        case 'c':
            C.connect_s = atof(optarg);
            break;
        default:
            fail("usage: netload --nodes FILE [--rate R --duration S --drain S --src IP "
                 "--mode signed|flood --size B --type T --seed N]");
        }
    }
    if (!C.nodes_file) fail("--nodes FILE is required");
    if (strcmp(C.mode, "signed") && strcmp(C.mode, "flood")) fail("--mode signed|flood");
    flood = strcmp(C.mode, "flood") == 0;
    if (C.size < (flood ? 16 : TN_TX_MIN) || C.size > 4000) fail("--size out of range");
    if (sodium_init() < 0) fail("sodium_init");
    signal(SIGPIPE, SIG_IGN);
    rng_state = C.seed * 0x9E3779B97F4A7C15ull + 1;
    randombytes_buf(&run_id, sizeof run_id);
    run_id >>= 1;
    read_nodes();
    ntx = (size_t)ceil(C.rate * C.duration);
    if (ntx == 0) fail("nothing to publish");
    expected = (uint64_t)ntx * (uint64_t)(flood ? nn - 1 : nn);
    build_corpus();

    loop = uv_default_loop();
    tn_session_cbs_t cbs = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    if (tn_net_init(&net, loop, &cbs, NULL)) fail("tn_net_init");
    uint8_t pk[TN_ID_LEN];
    crypto_sign_keypair(pk, net.id_sk);
    memcpy(net.magic, "TIME", 4);
    net.connect_timeout_ms = (uint64_t)(C.connect_s * 1000);
    net.handshake_timeout_ms = (uint64_t)(C.connect_s * 1000);
    net.write_buffer_max = 256u << 20;
    char from_text[80];
    snprintf(from_text, sizeof from_text, "%s:0", C.src);
    tn_addr_t from;
    if (tn_addr_parse(from_text, &from)) fail("bad --src %s", C.src);
    for (int i = 0; i < nn; i++) {
        node_t *nd = &nodes[i];
        tn_addr_t to;
        if (tn_addr_parse(nd->addr, &to)) fail("bad address %s", nd->addr);
        if (tn_session_dial(&net, &to, &from, &nd->s)) fail("cannot dial %s", nd->addr);
        nd->s->peer = nd;
        if (!flood) {
            uv_pipe_init(loop, &nd->pipe, 0);
            nd->pipe.data = nd;
            nd->pconn.data = nd;
            uv_pipe_connect(&nd->pconn, &nd->pipe, nd->ctl_path, pipe_connected);
        }
    }
    uv_timer_init(loop, &tick);
    uv_timer_init(loop, &progress);
    uv_timer_init(loop, &deadline);
    uv_timer_init(loop, &waiter);
    uv_timer_start(&waiter, on_wait, 20, 20);
    uv_timer_start(&deadline, on_connect_deadline, (uint64_t)(C.connect_s * 1000), 0);
    uv_run(loop, UV_RUN_DEFAULT);
    fail("loop ended");
}
