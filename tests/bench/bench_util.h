/* Small helpers shared by the C benches (tests/bench/). Each returns an error instead of
 * exiting, so every bench keeps its own fail() and its own way of reporting. */
#ifndef TN_BENCH_UTIL_H
#define TN_BENCH_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP port on 127.0.0.1 that was free a moment ago (bound, read back, released), 0 if none. */
static inline uint16_t tn_bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    int bad = bind(fd, (struct sockaddr *)&sa, sizeof sa) ||
              getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return bad ? 0 : ntohs(sa.sin_port);
}

/* Replaces a heap string; -1 when out of memory (the old value is gone either way). */
static inline int tn_bench_set_str(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    return *field ? 0 : -1;
}

static inline int tn_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n > 0 values; sorts v in place. */
static inline double tn_bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, tn_bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#ifdef CPU_SETSIZE /* the bench defined _GNU_SOURCE before its first include */
/* Pins the calling process to the last CPU it may run on; that CPU, or -1. */
static inline int tn_bench_pin_cpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set)) return -1;
    int cpu = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set)) cpu = i;
    if (cpu < 0) return -1;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) ? -1 : cpu;
}
#endif

/* Runs a shell command built like printf (at most 511 bytes); its exit status, -1 if it
 * could not run or was cut. The command is written to cmd for the caller's message. */
static inline int tn_bench_shell(char cmd[512], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int tn_bench_shell(char cmd[512], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, 512, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= 512) return -1;
    return system(cmd);
}

/* For a bench that defines fail(): runs the command, or fails naming it. */
#define TN_BENCH_SHELL(...)                                                                        \
    do {                                                                                           \
        char cmd_[512];                                                                            \
        if (tn_bench_shell(cmd_, __VA_ARGS__) != 0) fail("command failed: %s", cmd_);              \
    } while (0)

#endif
