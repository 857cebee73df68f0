/* Client side of the `idle_conns` bench (driven by tests/bench/netbench.lua, which starts the
 * node through the test harness): opens --conns authenticated sessions to one node from
 * --procs forked processes (the node's fd limit leaves no room for the clients in the same
 * process), each from its own source IP (--src-base.N, N = 200 + process index), each
 * session with its own Ed25519 identity (the node keeps one session per identity), paced so
 * that at most --inflight handshakes per process are open at once. Sessions send hello,
 * answer pings and stay otherwise silent.
 *
 * --active: the sessions also fetch every transaction the node announces, and process 0
 * pushes 250 B signed transactions at --tx-rate for --hold seconds (100+ active peers).
 *
 * It reads the node's VmRSS (--pid) before the first dial, when every session is open, and
 * after holding them --hold seconds, plus the kernel's TCP memory (/proc/net/sockstat), and
 * prints one JSON object on stdout; progress on stderr. Exit 1 if it could not open them. */
#include "tn_node.h"
#include "tn_proto.h"
#include "tn_session.h"
#include "tn_tx.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define PROCS_MAX 32

static struct {
    const char *target, *src_base, *ctl;
    int conns, procs, inflight, pid;
    double hold, settle, deadline, tx_rate;
    bool active;
} C = {NULL, "127.0.0.1", NULL, 10000, 4, 64, 0, 10, 2, 120, 200, false};

typedef struct {
    volatile int open[PROCS_MAX], failed[PROCS_MAX], closed[PROCS_MAX], dialing[PROCS_MAX];
    volatile uint64_t got[PROCS_MAX], pushed;
    volatile int go_hold, stop;
} shm_t;
static shm_t *SH;

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "idle: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static long node_rss_kb(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", C.pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* Pages of memory the kernel's TCP sockets hold (buffers), from /proc/net/sockstat. */
static long tcp_mem_pages(void)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    if (!f) return -1;
    char line[256];
    long inuse = 0, orphan = 0, tw = 0, alloc = 0, mem = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "TCP: inuse %ld orphan %ld tw %ld alloc %ld mem %ld", &inuse, &orphan, &tw,
                   &alloc, &mem) == 5)
            break;
    fclose(f);
    return mem;
}

/* Bytes of the kernel's per-socket slab caches (TCP sockets, their inodes, epoll entries),
 * from /proc/slabinfo (root only; -1 without it). */
static long sock_slab_bytes(void)
{
    FILE *f = fopen("/proc/slabinfo", "r");
    if (!f) return -1;
    char line[512], name[64];
    long total = 0, active, num, size;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %ld %ld %ld", name, &active, &num, &size) == 4 &&
            (!strcmp(name, "TCP") || !strcmp(name, "sock_inode_cache") ||
             !strcmp(name, "eventpoll_epi")))
            total += active * size;
    fclose(f);
    return total;
}

/* The node's established sessions, from its control socket (status verb); -1 on failure. */
static int node_sessions(void)
{
    if (!C.ctl) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", C.ctl);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    static const char req[] = "{\"cmd\":\"status\"}\n";
    char buf[8192];
    size_t have = 0;
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    ssize_t k;
    while (have < sizeof buf - 1 && (k = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
        have += (size_t)k;
        if (memchr(buf, '\n', have)) break;
    }
    close(fd);
    buf[have] = 0;
    const char *p = strstr(buf, "\"connected\":");
    return p ? atoi(p + 12) : -1;
}

static uint64_t node_cpu_ns(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", C.pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* ---- a client process ---- */

typedef struct conn {
    tn_net_t net; /* one per session: the identity is the net's */
    tn_session_t *s;
    bool open;
} conn_t;

static struct {
    int idx, n, next;
    conn_t *conns;
    uv_loop_t loop;
    uv_timer_t pace, push, watch;
    tn_addr_t to, from;
    uint8_t *txs;
    size_t ntx, sent;
    uint64_t t0;
} P;

#define TX_SIZE 250

static void send_hello(tn_session_t *s)
{
    tn_hello_t h;
    memset(&h, 0, sizeof h);
    h.version = TN_PROTO_VERSION;
    h.time_ms = tn_wall_ms();
    snprintf(h.name, sizeof h.name, "idle%d", P.idx);
    tn_buf_t *b = tn_session_batch(s, TN_MSG_HDR_LEN + 25 + TN_NAME_MAX);
    if (b && tn_hello_encode(b, &h) == TN_OK) tn_session_sent(s);
}

static void c_open(tn_session_t *s)
{
    conn_t *c = s->net->owner;
    c->open = true;
    SH->dialing[P.idx]--;
    SH->open[P.idx]++;
    send_hello(s);
}

static void c_message(tn_session_t *s, uint16_t type, const uint8_t *p, uint32_t len)
{
    if (type == TN_MSG_PING && len == 8) {
        tn_session_send(s, TN_MSG_PONG, p, 8);
        return;
    }
    if (!C.active) return;
    if (type == TN_MSG_INV) {
        int n = tn_inv_decode(p, len);
        if (n > 0 && p[2] == TN_INV_TX) tn_session_send(s, TN_MSG_GETDATA, p, len);
    } else if (type == TN_MSG_TX) {
        SH->got[P.idx]++;
    }
}

static void c_close(tn_session_t *s, tn_close_reason_t reason, const char *detail)
{
    conn_t *c = s->net->owner;
    if (c->open) {
        SH->open[P.idx]--;
        if (!SH->stop) SH->closed[P.idx]++;
    } else {
        SH->dialing[P.idx]--;
        SH->failed[P.idx]++;
        if (SH->failed[P.idx] <= 3)
            fprintf(stderr, "idle: proc %d: a dial failed: %s (%s)\n", P.idx,
                    tn_close_reason_name(reason), detail ? detail : "");
    }
    c->open = false;
    c->s = NULL;
}

static void on_pace(uv_timer_t *t)
{
    (void)t;
    tn_session_cbs_t cbs = {.on_open = c_open, .on_message = c_message, .on_close = c_close};
    while (P.next < P.n && SH->dialing[P.idx] < C.inflight) {
        conn_t *c = &P.conns[P.next++];
        if (tn_net_init(&c->net, &P.loop, &cbs, c)) fail("tn_net_init");
        uint8_t pk[TN_ID_LEN];
        crypto_sign_keypair(pk, c->net.id_sk);
        memcpy(c->net.magic, "TIME", 4);
        c->net.connect_timeout_ms = 30000;
        c->net.handshake_timeout_ms = 30000;
        SH->dialing[P.idx]++;
        if (tn_session_dial(&c->net, &P.to, &P.from, &c->s)) {
            SH->dialing[P.idx]--;
            SH->failed[P.idx]++;
        }
    }
    if (P.next == P.n) uv_timer_stop(t);
}

static void on_push(uv_timer_t *t)
{
    (void)t;
    if (!SH->go_hold) return;
    if (!P.t0) P.t0 = uv_hrtime();
    double due = (double)(uv_hrtime() - P.t0) / 1e9 * C.tx_rate;
    while (P.sent < P.ntx && (double)P.sent < due) {
        conn_t *c = &P.conns[P.sent % (size_t)P.n];
        if (c->s && c->open) tn_session_send(c->s, TN_MSG_TX, P.txs + P.sent * TX_SIZE, TX_SIZE);
        P.sent++;
        SH->pushed = P.sent;
    }
}

static void on_watch(uv_timer_t *t)
{
    (void)t;
    if (SH->stop) _exit(0);
}

static void run_client(int idx, int n)
{
    P.idx = idx;
    P.n = n;
    P.conns = calloc((size_t)n, sizeof *P.conns);
    if (!P.conns) fail("out of memory");
    char text[80];
    snprintf(text, sizeof text, "%s.%d:0", C.src_base, 200 + idx);
    if (tn_addr_parse(C.target, &P.to) || tn_addr_parse(text, &P.from))
        fail("bad address %s or %s", C.target, text);
    uv_loop_init(&P.loop);
    uv_timer_init(&P.loop, &P.pace);
    uv_timer_init(&P.loop, &P.push);
    uv_timer_init(&P.loop, &P.watch);
    uv_timer_start(&P.pace, on_pace, 1, 5);
    uv_timer_start(&P.watch, on_watch, 100, 100);
    if (C.active && idx == 0) {
        /* signed transactions: C.tx_rate per second for the hold, distinct nonces */
        /* the pushes end 2 s before the hold does: the last ones are fetched by then */
        P.ntx = (size_t)ceil(C.tx_rate * (C.hold > 4 ? C.hold - 2 : C.hold / 2));
        P.txs = malloc(P.ntx * TX_SIZE);
        uint8_t pk[32], sk[64], payload[256];
        crypto_sign_keypair(pk, sk);
        randombytes_buf(payload, sizeof payload);
        uint64_t expiry = tn_wall_ms() / 1000 + 3600, base;
        randombytes_buf(&base, sizeof base);
        tn_buf_t b;
        tn_buf_init(&b, 4096);
        for (size_t i = 0; i < P.ntx; i++) {
            b.len = 0;
            tn_tx_build(&b, sk, expiry, (base >> 1) + i, payload, TX_SIZE - TN_TX_MIN);
            memcpy(P.txs + i * TX_SIZE, b.p, TX_SIZE);
        }
        tn_buf_free(&b);
        uv_timer_start(&P.push, on_push, 1, 1);
    }
    uv_run(&P.loop, UV_RUN_DEFAULT);
    _exit(0);
}

/* ---- the parent ---- */

static int sum(volatile int *v)
{
    int s = 0;
    for (int i = 0; i < C.procs; i++) s += v[i];
    return s;
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", 1, 0, 't'},   {"conns", 1, 0, 'n'},    {"procs", 1, 0, 'p'},
        {"src-base", 1, 0, 's'}, {"inflight", 1, 0, 'i'}, {"pid", 1, 0, 'P'},
        {"hold", 1, 0, 'h'},     {"deadline", 1, 0, 'd'}, {"active", 0, 0, 'a'},
        {"tx-rate", 1, 0, 'r'},  {"ctl", 1, 0, 'c'},      {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            C.target = optarg;
            break;
        case 'n':
            C.conns = atoi(optarg);
            break;
        case 'p':
            C.procs = atoi(optarg);
            break;
        case 's':
            C.src_base = optarg;
            break;
        case 'i':
            C.inflight = atoi(optarg);
            break;
        case 'P':
            C.pid = atoi(optarg);
            break;
        case 'h':
            C.hold = atof(optarg);
            break;
        case 'd':
            C.deadline = atof(optarg);
            break;
        case 'a':
            C.active = true;
            break;
        case 'r':
            C.tx_rate = atof(optarg);
            break;
        case 'c':
            C.ctl = optarg;
            break;
        default:
            fail("usage: idle --target IP:PORT --pid PID [--conns N --procs P --src-base "
                 "127.A.B --inflight K --hold S --deadline S --active --tx-rate R]");
        }
    }
    if (!C.target || C.pid <= 0) fail("--target and --pid are required");
    if (C.procs < 1 || C.procs > PROCS_MAX || C.conns < C.procs) fail("bad --procs/--conns");
    if (sodium_init() < 0) fail("sodium_init");
    signal(SIGPIPE, SIG_IGN);
    SH = mmap(NULL, sizeof *SH, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (SH == MAP_FAILED) fail("mmap");
    memset((void *)SH, 0, sizeof *SH);

    long rss0 = node_rss_kb(), mem0 = tcp_mem_pages(), slab0 = sock_slab_bytes();
    uint64_t cpu0 = node_cpu_ns();
    if (rss0 < 0) fail("no process %d", C.pid);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    pid_t kids[PROCS_MAX];
    for (int i = 0; i < C.procs; i++) {
        int n = C.conns / C.procs + (i < C.conns % C.procs ? 1 : 0);
        kids[i] = fork();
        if (kids[i] == 0) run_client(i, n);
        if (kids[i] < 0) fail("fork");
    }
    double t0 = now_s(), last = t0, t_open = -1;
    while (now_s() - t0 < C.deadline) {
        usleep(50000);
        int open = sum(SH->open), failed = sum(SH->failed);
        if (now_s() - last >= 1) {
            last = now_s();
            fprintf(stderr, "idle: %5.1f s: %d of %d sessions open, %d failed, node RSS %ld KiB\n",
                    now_s() - t0, open, C.conns, failed, node_rss_kb());
        }
        if (open + failed >= C.conns) {
            t_open = now_s() - t0;
            break;
        }
    }
    int opened = sum(SH->open), failed = sum(SH->failed);
    fprintf(stderr, "idle: %d sessions open after %.1f s (%d failed); settling %.0f s\n", opened,
            now_s() - t0, failed, C.settle);
    usleep((useconds_t)(C.settle * 1e6));
    long rss1 = node_rss_kb(), mem1 = tcp_mem_pages(), slab1 = sock_slab_bytes();
    int at_node = node_sessions();
    uint64_t cpu1 = node_cpu_ns();
    SH->go_hold = 1;
    fprintf(stderr, "idle: holding %.0f s%s\n", C.hold,
            C.active ? " (active: transactions flow)" : "");
    double th = now_s();
    while (now_s() - th < C.hold) usleep(100000);
    long rss2 = node_rss_kb(), mem2 = tcp_mem_pages();
    int at_node_end = node_sessions();
    uint64_t cpu2 = node_cpu_ns();
    int open_end = sum(SH->open), closed = sum(SH->closed);
    uint64_t got = 0;
    for (int i = 0; i < C.procs; i++) got += SH->got[i];
    uint64_t pushed = SH->pushed;
    SH->stop = 1;
    for (int i = 0; i < C.procs; i++) waitpid(kids[i], NULL, 0);
    long page = sysconf(_SC_PAGESIZE);
    printf(
        "{\"conns\":%d,\"procs\":%d,\"opened\":%d,\"failed\":%d,\"open_s\":%.2f,"
        "\"open_at_end\":%d,\"closed_during_hold\":%d,\"hold_s\":%.1f,"
        "\"rss0_kb\":%ld,\"rss1_kb\":%ld,\"rss2_kb\":%ld,\"tcp_mem0_kb\":%ld,\"tcp_mem1_kb\":%ld,"
        "\"tcp_mem2_kb\":%ld,\"node_cpu_open_s\":%.3f,\"node_cpu_hold_s\":%.3f,"
        "\"tool_nofile_soft\":%llu,\"tool_nofile_hard\":%llu,\"active\":%s,\"pushed\":%" PRIu64
        ",\"fetched\":%" PRIu64 ",\"node_sessions_open\":%d,\"node_sessions_end\":%d,"
        "\"sock_slab_delta\":%ld,\"sizeof_session\":%zu,\"sizeof_peer\":%zu,"
        "\"sizeof_uv_tcp\":%zu,\"sizeof_uv_timer\":%zu,\"sizeof_limits\":%zu}\n",
        C.conns, C.procs, opened, failed, t_open, open_end, closed, C.hold, rss0, rss1, rss2,
        mem0 * page / 1024, mem1 * page / 1024, mem2 * page / 1024, (double)(cpu1 - cpu0) / 1e9,
        (double)(cpu2 - cpu1) / 1e9, (unsigned long long)rl.rlim_cur,
        (unsigned long long)rl.rlim_max, C.active ? "true" : "false", pushed, got, at_node,
        at_node_end, slab0 >= 0 && slab1 >= 0 ? slab1 - slab0 : -1, sizeof(tn_session_t),
        sizeof(tn_peer_t), sizeof(uv_tcp_t), sizeof(uv_timer_t), sizeof(((tn_session_t *)0)->lim));
    return opened == C.conns ? 0 : 1;
}
