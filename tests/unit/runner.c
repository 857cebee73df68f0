/* The unit test runner: the registry every TN_TEST adds itself to, the process-per-test
 * driver and the assertion helpers. Output contract (tests/run.sh counts it): one line per
 * test on stdout, `ok <name>` or `not ok <name>: <reason>`; test output goes to stderr.
 *
 *   unit-tests            every test, each in a child process (timeout TN_TEST_TIMEOUT s, 30)
 *   unit-tests NAME...    the named tests in this process (for gdb)
 *   unit-tests --list     the names */
#define _GNU_SOURCE
#include "tn_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REASON_MAX 1024
#define DONE_MARK '\x01' /* written by the child after the test body returned */
#define TMPFILES_MAX 64

static tn_test_t *g_tests;
static int g_ntests;
static int g_result_fd = -1; /* child: pipe to the parent; -1 when running in-process */
static const char *g_current;

void tn_test_register(tn_test_t *t)
{
    t->next = g_tests;
    g_tests = t;
    g_ntests++;
}

/* ---- failing ---- */

/* The reason goes on one line: control characters would break the runner's line format. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) *s = ' ';
}

static _Noreturn void fail_with(const char *reason)
{
    if (g_result_fd >= 0) {
        size_t n = strlen(reason);
        while (n > 0) {
            ssize_t w = write(g_result_fd, reason, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            reason += w;
            n -= (size_t)w;
        }
    } else {
        fflush(stderr);
        printf("not ok %s: %s\n", g_current, reason);
        fflush(stdout);
    }
    exit(1);
}

void tn_test_fail(const char *file, int line, const char *fmt, ...)
{
    char reason[REASON_MAX];
    int n = snprintf(reason, sizeof reason, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof reason)
        vsnprintf(reason + n, sizeof reason - (size_t)n, fmt, ap);
    va_end(ap);
    one_line(reason);
    fail_with(reason);
}

static void hex_window(char *out, size_t outlen, const uint8_t *p, size_t n, size_t from)
{
    size_t show = TN_MIN(n - from, (outlen - 8) / 2);
    tn_hex(out, p + from, show);
    if (from + show < n) strcat(out, "...");
}

void tn_test_assert_mem(const char *file, int line, const char *what, const void *a, const void *b,
                        size_t n)
{
    const uint8_t *x = a, *y = b;
    size_t i = 0;
    while (i < n && x[i] == y[i]) i++;
    if (i == n) return;
    char hx[200], hy[200];
    hex_window(hx, sizeof hx, x, n, i);
    hex_window(hy, sizeof hy, y, n, i);
    tn_test_fail(file, line, "%s failed: %zu bytes differ from offset %zu: %s vs %s", what, n, i,
                 hx, hy);
}

void tn_test_assert_hex(const char *file, int line, const char *what, const void *p, size_t n,
                        const char *hex)
{
    char *got = malloc(2 * n + 1);
    if (!got) tn_test_fail(file, line, "out of memory");
    tn_hex(got, p, n);
    if (strcmp(got, hex) == 0) {
        free(got);
        return;
    }
    /* The full value goes to stderr so a changed vector can be read off and compared. */
    fprintf(stderr, "%s:%d: %s\n  got:    %s\n  wanted: %s\n", file, line, what, got, hex);
    size_t i = 0;
    while (got[i] && got[i] == hex[i]) i++;
    char g[120], w[120];
    snprintf(g, sizeof g, "%.100s", got + i);
    snprintf(w, sizeof w, "%.100s", hex + TN_MIN(i, strlen(hex)));
    free(got);
    tn_test_fail(file, line, "%s (%zu bytes) differs from hex char %zu: %s vs %s", what, n, i, g,
                 w);
}

/* ---- helpers ---- */

static char *g_tmpfiles[TMPFILES_MAX];
static int g_ntmp;

static void remove_tmpfiles(void)
{
    for (int i = 0; i < g_ntmp; i++) {
        unlink(g_tmpfiles[i]);
        free(g_tmpfiles[i]);
    }
    g_ntmp = 0;
}

const char *tn_test_tmpfile(const char *text, const char *suffix)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    if (!suffix) suffix = "";
    snprintf(path, sizeof path, "%s/tn-unit-XXXXXX%s", dir && *dir ? dir : "/tmp", suffix);
    if (g_ntmp == TMPFILES_MAX) TN_FAIL("too many temporary files");
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) TN_FAIL("mkstemps %s: %s", path, strerror(errno));
    if (g_ntmp == 0) atexit(remove_tmpfiles);
    g_tmpfiles[g_ntmp++] = strdup(path);
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) TN_FAIL("write %s: %s", path, strerror(errno));
    close(fd);
    return g_tmpfiles[g_ntmp - 1];
}

char *tn_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int tn_test_count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---- running ---- */

static int by_position(const void *a, const void *b)
{
    const tn_test_t *x = *(tn_test_t *const *)a, *y = *(tn_test_t *const *)b;
    int c = strcmp(x->file, y->file);
    return c ? c : x->line - y->line;
}

/* Runs the test body here; returns only on success. */
static void run_here(const tn_test_t *t)
{
    g_current = t->name;
    t->fn();
}

static int timeout_s(void)
{
    const char *e = getenv("TN_TEST_TIMEOUT");
    int v = e ? atoi(e) : 0;
    return v > 0 ? v : 30;
}

/* Forks, runs t in the child, and prints the verdict. Returns 1 when the test passed. */
static int run_forked(const tn_test_t *t)
{
    int fds[2];
    char reason[REASON_MAX + 64] = "";
    if (pipe2(fds, O_CLOEXEC) != 0) {
        printf("not ok %s: pipe: %s\n", t->name, strerror(errno));
        return 0;
    }
    fflush(stdout);
    fflush(stderr);
    int limit = timeout_s();
    pid_t pid = fork();
    if (pid < 0) {
        printf("not ok %s: fork: %s\n", t->name, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        g_result_fd = fds[1];
        dup2(STDERR_FILENO, STDOUT_FILENO); /* stdout carries only verdict lines */
        signal(SIGALRM, SIG_DFL);
        alarm((unsigned)limit);
        run_here(t);
        fflush(stdout);
        fflush(stderr);
        char done = DONE_MARK;
        if (write(g_result_fd, &done, 1) != 1) _exit(3);
        exit(0); /* atexit handlers and, under ASan, the leak check run here */
    }
    close(fds[1]);

    /* Collect the child's reason until it closes the pipe; a child that outlives its own
     * alarm (signal blocked, stuck in the kernel) is killed from here. */
    char got[REASON_MAX];
    size_t have = 0;
    bool done = false, killed = false;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ms = (long)(limit + 5) * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
                                                   (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left_ms <= 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left_ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        char buf[256];
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == DONE_MARK)
                done = true;
            else if (have < sizeof got - 1)
                got[have++] = buf[i];
        }
    }
    close(fds[0]);
    got[have] = 0;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    if (killed || (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM))
        snprintf(reason, sizeof reason, "timed out after %d s", limit);
    else if (WIFSIGNALED(status))
        snprintf(reason, sizeof reason, "killed by signal %d (%s)%s%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), have ? " after: " : "", got);
    else if (have)
        snprintf(reason, sizeof reason, "%s", got);
    else if (WEXITSTATUS(status) != 0)
        snprintf(reason, sizeof reason, "exited with status %d %s (see stderr)",
                 WEXITSTATUS(status),
                 done ? "after the test body passed: leak or sanitizer report?"
                      : "without a failed assertion: crash or sanitizer report?");
    else if (!done)
        snprintf(reason, sizeof reason, "exited before the test body finished");
    if (reason[0]) {
        one_line(reason);
        printf("not ok %s: %s\n", t->name, reason);
    } else {
        printf("ok %s\n", t->name);
    }
    fflush(stdout);
    return reason[0] == 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: unit-tests             run every test, each in its own process\n"
                 "       unit-tests NAME...     run the named tests in this process (gdb)\n"
                 "       unit-tests --list      list the test names\n");
}

int main(int argc, char **argv)
{
    tn_test_t **all = calloc((size_t)g_ntests + 1, sizeof *all);
    if (!all) return 2;
    int n = 0;
    for (tn_test_t *t = g_tests; t; t = t->next) all[n++] = t;
    qsort(all, (size_t)n, sizeof *all, by_position);

    int rc = 0;
    if (argc > 1 && (!strcmp(argv[1], "--list") || !strcmp(argv[1], "-l"))) {
        for (int i = 0; i < n; i++) printf("%s\n", all[i]->name);
    } else if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
    } else if (argc > 1) {
        for (int a = 1; a < argc; a++) {
            const tn_test_t *t = NULL;
            for (int i = 0; i < n && !t; i++)
                if (!strcmp(all[i]->name, argv[a])) t = all[i];
            if (!t) {
                fprintf(stderr, "unit-tests: no test named '%s' (see --list)\n", argv[a]);
                usage(stderr);
                rc = 2;
                break;
            }
            run_here(t); /* exits on failure */
            remove_tmpfiles();
            printf("ok %s\n", t->name);
            fflush(stdout);
        }
    } else {
        int failed = 0;
        for (int i = 0; i < n; i++) failed += !run_forked(all[i]);
        rc = failed ? 1 : 0;
    }
    free(all);
    return rc;
}
