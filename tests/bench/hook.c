/* Bench `hook_call` (DESIGN.md "Benchmarks", issue 4 "Bench"): the time of one call through
 * the real hook helper (tn_policy_score) to the default scoring policy's score(peer), with a
 * peer view of a realistic open session, next to a bare lua_pcall of an empty Lua function in
 * a plain lua_State as the floor, both measured in the same run, one call per sample, on one
 * pinned CPU. Also reported, to show where the time goes: the helper with an empty score() in
 * a sandboxed generation (the helper's own cost), and the default score() with the sandbox's
 * count hook removed (what the per-instruction budget check costs). Prints one JSON object
 * {"params", "figures", "floors"} on stdout and progress on stderr (tests/bench/run.sh). */
#define _GNU_SOURCE /* sched_setaffinity */
#include "tn_config.h"
#include "tn_log.h"
#include "tn_node.h"
#include "tn_policy_int.h"

#include <errno.h>
#include <getopt.h>
#include <lualib.h>
#include <math.h>
#include <sched.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#include "bench_util.h"
#define HAVE_TSC 1
#else
#define HAVE_TSC 0
#endif

static struct {
    long iters;  /* samples per variant */
    long warmup; /* calls per variant before sampling */
    int rounds;  /* the variants alternate in this many slices, so drift hits them alike */
    const char *dir;
    int strikes; /* other IPs in the node's strike table (tn_strikes_total scans it) */
} C = {1000000, 100000, 10, "policies", 0};

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hook_call: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ---- clock: the TSC when it is invariant (a few ns to read), else uv_hrtime ---- */

static bool use_tsc;
static double ns_per_tick = 1.0;

static inline uint64_t ticks(void)
{
#if HAVE_TSC
    if (use_tsc) {
        _mm_lfence(); /* the reads stay in program order around the timed call */
        uint64_t t = __rdtsc();
        _mm_lfence();
        return t;
    }
#endif
    return uv_hrtime();
}

static bool cpu_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        for (char *t = strtok(strchr(line, ':'), " \t\n:"); t && !found; t = strtok(NULL, " \t\n"))
            found = strcmp(t, flag) == 0;
        break;
    }
    fclose(f);
    return found;
}

static void clock_setup(void)
{
    use_tsc = HAVE_TSC && cpu_flag("constant_tsc") && cpu_flag("nonstop_tsc");
    if (!use_tsc) return;
    uint64_t n0 = uv_hrtime(), c0 = ticks(), n1, c1;
    do {
        n1 = uv_hrtime();
        c1 = ticks();
    } while (n1 - n0 < 200000000u);
    ns_per_tick = (double)(n1 - n0) / (double)(c1 - c0);
}

/* Pins the process to the last CPU it may use (away from CPU 0's interrupts where possible). */
/* ---- samples ---- */

typedef struct {
    const char *name;
    uint32_t *t; /* ticks per call, timer overhead included */
    long n;
} samples_t;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void sort_samples(samples_t *s)
{
    qsort(s->t, (size_t)s->n, sizeof *s->t, cmp_u32);
}

/* Percentile q of sorted samples in ns, minus the timer overhead (in ticks). */
static double pct_ns(const samples_t *s, double q, double overhead)
{
    long i = (long)(q * (double)(s->n - 1) + 0.5);
    double v = (double)s->t[i] - overhead;
    return (v < 0 ? 0 : v) * ns_per_tick;
}

/* One timed call per sample: the clock reads are fenced, and what they cost is measured
 * by the same loop around nothing and subtracted. */
#define SAMPLE(s, count, stmt)                                                                     \
    do {                                                                                           \
        for (long i_ = 0; i_ < (count); i_++) {                                                    \
            uint64_t t0_ = ticks();                                                                \
            stmt;                                                                                  \
            uint64_t t1_ = ticks();                                                                \
            uint64_t d_ = t1_ - t0_;                                                               \
            (s)->t[(s)->n++] = d_ > UINT32_MAX ? UINT32_MAX : (uint32_t)d_;                        \
        }                                                                                          \
    } while (0)

static volatile double sink;

/* ---- the pieces: a minimal node and host around one generation ---- */

static uv_loop_t loop;
static tn_config_t cfg;
static tn_node_t node;
static tn_net_t net;
static tn_session_t sess;
static tn_peer_t peer;

static void limits_of(const tn_config_t *c, tn_policy_limits_t *lim)
{
    lim->memory_max = (size_t)c->policy_memory_max;
    lim->budget_s = c->policy_budget;
    lim->load_budget_s = c->policy_load_budget;
    lim->state_max = (size_t)c->policy_state_max;
}

static tn_policy_t *host_for(const char *dir)
{
    tn_policy_limits_t lim;
    limits_of(&cfg, &lim);
    char err[512];
    tn_policy_gen_t *g = tn_policy_gen_build(dir, &lim, &cfg, err, sizeof err);
    if (!g) fail("policy %s rejected: %s", dir, err);
    if (!tn_policy_gen_has(g, TN_HOOK_score)) fail("policy %s defines no score(peer) hook", dir);
    tn_policy_t *p = calloc(1, sizeof *p);
    if (!p) fail("out of memory");
    p->node = &node;
    p->loop = &loop;
    p->lim = lim;
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    p->gen = g;
    p->generation = 1;
    g->host = p;
    tn_policy_gen_flush_logs(g);
    return p;
}

static void host_free(tn_policy_t *p)
{
    tn_policy_gen_free(p->gen);
    free(p);
}

/* An inbound session open for an hour, answering pings, from a peer seen before. */
static void fill_peer(void)
{
    uv_update_time(&loop);
    uint64_t now = uv_now(&loop);
    net.loop = &loop;
    net.owner = &node;
    sess.net = &net;
    sess.state = TN_SS_OPEN;
    sess.outbound = false;
    if (tn_addr_parse("203.0.113.57:41822", &sess.remote)) fail("bad address");
    if (tn_addr_parse("127.0.0.1:24100", &sess.local)) fail("bad address");
    randombytes_buf(sess.their_id, sizeof sess.their_id);
    sess.opened_ms = now > 3600000 ? now - 3600000 : 1;
    sess.last_rx_ms = now;
    sess.bytes_in = 48213377;
    sess.bytes_out = 51002911;
    sess.msgs_in = 190321;
    sess.msgs_out = 201877;
    sess.frames_in = 9120;
    sess.frames_out = 9650;
    sess.hello = true;
    sess.their_flags = TN_HELLO_F_MASTERNODE;
    sess.their_port = 24100;
    sess.their_height = 1234567;
    snprintf(sess.their_name, sizeof sess.their_name, "mn-frankfurt-2");
    sess.rtt_ms = 38.25;
    sess.pings = 120;
    sess.pongs = 118;
    sess.late = 3;
    sess.missed = 2;
    sess.missed_run = 0;
    sess.score = 71.5;
    memcpy(peer.id, sess.their_id, TN_ID_LEN);
    peer.session = &sess;
    peer.addr = sess.remote;
    peer.addr.port = sess.their_port;
    peer.established = peer.ever_established = true;
    peer.sessions = 4;
    peer.disconnects = 3;
    peer.first_seen_ms = sess.opened_ms;
    peer.last_seen_ms = now;
    sess.peer = &peer;
    if (C.strikes > 0) {
        node.strikes = calloc((size_t)C.strikes, sizeof *node.strikes);
        if (!node.strikes) fail("out of memory");
        for (int i = 0; i < C.strikes; i++) {
            char ip[32];
            snprintf(ip, sizeof ip, "198.51.%d.%d", (i / 250) % 256, 1 + i % 250);
            if (tn_addr_parse_ip(ip, &node.strikes[i].ip)) fail("bad address %s", ip);
            node.strikes[i].count[TN_MIS_MESSAGE] = 1;
        }
        node.n_strikes = C.strikes;
    }
}

/* A throw-away policy directory holding one file. */
static void write_policy(char *dir, size_t dirlen, const char *text)
{
    snprintf(dir, dirlen, "/tmp/tn-bench-hook-XXXXXX");
    if (!mkdtemp(dir)) fail("mkdtemp: %s", strerror(errno));
    char path[256];
    snprintf(path, sizeof path, "%s/empty.lua", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) fail("cannot write %s", path);
}

static void remove_policy(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/empty.lua", dir);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"iters", required_argument, 0, 'n'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"rounds", required_argument, 0, 'r'},
                                         {"dir", required_argument, 0, 'd'},
                                         {"strikes", required_argument, 0, 's'},
                                         {"only-score", no_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    bool only_score = false; /* for profilers: the score calls alone, no JSON */
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            C.iters = atol(optarg);
            break;
        case 'w':
            C.warmup = atol(optarg);
            break;
        case 'r':
            C.rounds = atoi(optarg);
            break;
        case 'd':
            C.dir = optarg;
            break;
        case 's':
            C.strikes = atoi(optarg);
            break;
        case 'o':
            only_score = true;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--iters N] [--warmup N] [--rounds N] [--dir POLICY_DIR] "
                    "[--strikes N] [--only-score]\n",
                    argv[0]);
            return 2;
        }
    }
    if (C.iters < 1000 || C.rounds < 1 || C.rounds > C.iters || C.warmup < 0 || C.strikes < 0 ||
        C.strikes > TN_STRIKES_MAX)
        fail("bad parameters");
    if (tn_crypto_init()) fail("sodium_init failed");
    tn_log_init("bench", TN_LOG_WARN, 60, stderr);
    if (tn_config_defaults(&cfg)) fail("out of memory");
    uv_loop_init(&loop);
    node.loop = &loop;
    node.cfg = &cfg;
    fill_peer();

    int cpu = tn_bench_pin_cpu();
    clock_setup();
    fprintf(stderr, "hook_call: pinned to CPU %d; clock %s (%.4f ns/tick)\n", cpu,
            use_tsc ? "rdtsc" : "uv_hrtime", ns_per_tick);

    /* the real policy; the same policy with the sandbox's count hook removed (a diagnostic:
     * what the per-instruction budget check costs); the helper around an empty score() */
    tn_policy_t *real = host_for(C.dir), *nohook = host_for(C.dir);
    lua_sethook(nohook->gen->L, NULL, 0, 0);
    char edir[64];
    write_policy(edir, sizeof edir, "return { score = function(peer) return 0 end }\n");
    tn_policy_t *empty = host_for(edir);
    remove_policy(edir);
    tn_policy_t *hosts[] = {real, nohook, empty};

    /* the floor: a plain state, no sandbox, no hook */
    lua_State *B = luaL_newstate();
    if (!B || luaL_dostring(B, "return function() end")) fail("cannot set up the bare state");
    int bare_ref = luaL_ref(B, LUA_REGISTRYINDEX);

    tn_peer_view_t v = {&sess, &peer, NULL, NULL};
    double score = tn_policy_score(real, &v);
    if (real->stats[TN_HOOK_score].errors)
        fail("score(peer) failed: %s", real->last_error[0] ? real->last_error : "?");
    if (tn_policy_score(nohook, &v) != score) fail("score(peer) is not a pure function");
    fprintf(stderr, "hook_call: score(peer) of the sample peer = %g\n", score);

    /* warm-up: caches, branch predictors, the generations' GC settles */
    for (long i = 0; i < C.warmup; i++) {
        for (int h = 0; h < 3; h++) sink = tn_policy_score(hosts[h], &v);
        lua_rawgeti(B, LUA_REGISTRYINDEX, bare_ref);
        if (lua_pcall(B, 0, 0, 0) != LUA_OK) fail("bare pcall failed");
    }

    enum { TIMER, BARE, EMPTY, NOHOOK, SCORE, NV };
    samples_t S[NV] = {{"timer", NULL, 0},
                       {"bare pcall", NULL, 0},
                       {"empty hook", NULL, 0},
                       {"no count hook", NULL, 0},
                       {"score hook", NULL, 0}};
    for (int k = 0; k < NV; k++)
        if (!(S[k].t = malloc(sizeof(uint32_t) * (size_t)C.iters))) fail("out of memory");
    uint64_t t_start = uv_hrtime();
    int bad = 0;
    for (int r = 0; r < C.rounds; r++) {
        long n = C.iters / C.rounds + (r < C.iters % C.rounds ? 1 : 0);
        if (only_score) {
            SAMPLE(&S[SCORE], n, sink = tn_policy_score(real, &v));
            continue;
        }
        SAMPLE(&S[TIMER], n, __asm__ volatile("" ::: "memory"));
        SAMPLE(&S[BARE], n, lua_rawgeti(B, LUA_REGISTRYINDEX, bare_ref);
               bad |= lua_pcall(B, 0, 0, 0));
        SAMPLE(&S[EMPTY], n, sink = tn_policy_score(empty, &v));
        SAMPLE(&S[NOHOOK], n, sink = tn_policy_score(nohook, &v));
        SAMPLE(&S[SCORE], n, sink = tn_policy_score(real, &v));
        fprintf(stderr, "hook_call: round %d/%d done\n", r + 1, C.rounds);
    }
    double secs = (double)(uv_hrtime() - t_start) / 1e9;
    if (bad) fail("bare pcall failed");
    for (int h = 0; h < 3; h++) {
        const tn_hook_stats_t *st = &hosts[h]->stats[TN_HOOK_score];
        if (st->errors || st->fallbacks)
            fail("score(peer) of %s: %llu errors, %llu fallbacks (%s): the C default was timed",
                 hosts[h]->dir, (unsigned long long)st->errors, (unsigned long long)st->fallbacks,
                 hosts[h]->last_error);
    }
    if (sink != sink) fail("score is NaN");
    if (only_score) return 0;

    for (int k = 0; k < NV; k++) sort_samples(&S[k]);
    double overhead = (double)S[TIMER].t[S[TIMER].n / 2]; /* ticks */
    for (int k = BARE; k < NV; k++)
        fprintf(stderr, "hook_call:   %-13s p50 %6.0f  p90 %6.0f  p99 %6.0f  p99.9 %6.0f ns\n",
                S[k].name, pct_ns(&S[k], 0.5, overhead), pct_ns(&S[k], 0.9, overhead),
                pct_ns(&S[k], 0.99, overhead), pct_ns(&S[k], 0.999, overhead));
    double med = pct_ns(&S[SCORE], 0.5, overhead), pcall = pct_ns(&S[BARE], 0.5, overhead);
    int kb = (int)(real->gen->mem.used / 1024);

    printf("{\"params\": {\"policy_dir\": \"%s\", \"hook\": \"score(peer)\", \"iterations\": %ld, "
           "\"warmup\": %ld, \"rounds\": %d, \"cpu\": %d, \"clock\": \"%s\", "
           "\"ns_per_tick\": %.5f, \"timer_overhead_ns\": %.1f, \"timer_overhead_subtracted\": "
           "true, \"peer\": \"inbound, open 1 h, masternode, rtt 38.25 ms, 118/120 pongs, 3 late, "
           "2 missed, 3 disconnects\", \"strikes_table\": %d, \"sample_score\": %.6g, "
           "\"policy_memory_kb\": %d, \"seconds\": %.2f, \"goal_median_ns\": 200, "
           "\"empty_hook\": \"the helper around score(peer) return 0 end, sandboxed\", "
           "\"no_count_hook\": \"the same policy with the sandbox's count hook removed "
           "(diagnostic only: no CPU budget)\", \"ratio\": \"median_ns / pcall_median_ns\"},\n",
           C.dir, C.iters, C.warmup, C.rounds, cpu, use_tsc ? "rdtsc (lfence)" : "uv_hrtime",
           ns_per_tick, overhead * ns_per_tick, C.strikes, score, kb, secs);
    printf(" \"figures\": {\"median_ns\": %.1f, \"p90_ns\": %.1f, "
           "\"p99_ns\": %.1f, \"p999_ns\": %.1f, \"empty_hook_median_ns\": %.1f, "
           "\"empty_hook_p99_ns\": %.1f, \"no_count_hook_median_ns\": %.1f, \"ratio\": %.2f},\n",
           med, pct_ns(&S[SCORE], 0.9, overhead), pct_ns(&S[SCORE], 0.99, overhead),
           pct_ns(&S[SCORE], 0.999, overhead), pct_ns(&S[EMPTY], 0.5, overhead),
           pct_ns(&S[EMPTY], 0.99, overhead), pct_ns(&S[NOHOOK], 0.5, overhead),
           pcall > 0 ? med / pcall : 0);
    printf(" \"floors\": {\"pcall_median_ns\": %.1f, \"pcall_p99_ns\": %.1f}}\n", pcall,
           pct_ns(&S[BARE], 0.99, overhead));

    lua_close(B);
    for (int h = 0; h < 3; h++) host_free(hosts[h]);
    for (int k = 0; k < NV; k++) free(S[k].t);
    free(node.strikes);
    uv_loop_close(&loop);
    tn_config_free(&cfg);
    return 0;
}
