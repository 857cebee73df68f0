/* Error strings, clocks and hex helpers shared by every module. */
#define _GNU_SOURCE
#include "tn_common.h"

#include <time.h>

const char *tn_strerror(int err)
{
    switch (err) {
    case TN_OK:
        return "ok";
    case TN_ENOMEM:
        return "out of memory or bound reached";
    case TN_EINVAL:
        return "malformed input";
    case TN_EAGAIN:
        return "incomplete input";
    case TN_EMAGIC:
        return "wrong network magic";
    case TN_EVERSION:
        return "incompatible protocol version";
    case TN_ECRYPTO:
        return "authentication failed";
    case TN_ETOOBIG:
        return "length above maximum";
    case TN_EALREADY:
        return "already connected or in progress";
    case TN_ESELF:
        return "connection to self";
    case TN_ENOTFOUND:
        return "not found";
    case TN_EIO:
        return "i/o error";
    case TN_ELIMIT:
        return "refused by a limit";
    default:
        return "unknown error";
    }
}

uint64_t tn_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tn_hex(char *out, const uint8_t *in, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int tn_unhex(uint8_t *out, size_t n, const char *in)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(in[2 * i]), lo = hi < 0 ? -1 : hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0) return TN_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return in[2 * n] == 0 ? TN_OK : TN_EINVAL;
}
