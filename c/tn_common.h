/* Shared basics for the timenet core: error codes, byte-order helpers, clocks.
 * Every function in the core returns 0 or a negative TN_E* code and never exits the
 * process on a peer's or a policy's error. */
#ifndef TN_COMMON_H
#define TN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    TN_OK = 0,
    TN_ENOMEM = -1,   /* allocation failed or a documented bound was reached */
    TN_EINVAL = -2,   /* malformed input */
    TN_EAGAIN = -3,   /* need more bytes */
    TN_EMAGIC = -4,   /* wrong network magic */
    TN_EVERSION = -5, /* incompatible protocol version */
    TN_ECRYPTO = -6,  /* authentication or decryption failed */
    TN_ETOOBIG = -7,  /* a length above its hard maximum */
    TN_EALREADY = -8, /* the action is already done or in flight */
    TN_ESELF = -9,    /* connection to ourselves */
    TN_ENOTFOUND = -10,
    TN_EIO = -11,
    TN_ELIMIT = -12, /* refused by a limit (slots, per-IP, blocked) */
};

const char *tn_strerror(int err);

#define TN_NAME_MAX 64 /* node names: in hello messages and every log line */
#define TN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TN_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void tn_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void tn_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void tn_put_u64(uint8_t *p, uint64_t v)
{
    tn_put_u32(p, (uint32_t)(v >> 32));
    tn_put_u32(p + 4, (uint32_t)v);
}
static inline uint16_t tn_get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t tn_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t tn_get_u64(const uint8_t *p)
{
    return ((uint64_t)tn_get_u32(p) << 32) | tn_get_u32(p + 4);
}

/* Monotonic milliseconds and wall-clock milliseconds (UTC). */
uint64_t tn_mono_ms(void);
uint64_t tn_wall_ms(void);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void tn_hex(char *out, const uint8_t *in, size_t n);
/* Parse exactly 2n hex characters; 0 or TN_EINVAL. */
int tn_unhex(uint8_t *out, size_t n, const char *in);

#endif
