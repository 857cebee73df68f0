/* A growable byte buffer with a hard capacity bound: growth past `max` fails with
 * TN_ENOMEM instead of taking memory a peer asked for. `off` marks consumed bytes so a
 * reader can drop a prefix without moving memory on every message. */
#ifndef TN_BUF_H
#define TN_BUF_H

#include "tn_common.h"

typedef struct {
    uint8_t *p;
    size_t len; /* bytes held, including the consumed prefix [0, off) */
    size_t off;
    size_t cap;
    size_t max; /* hard bound on cap */
} tn_buf_t;

void tn_buf_init(tn_buf_t *b, size_t max);
void tn_buf_free(tn_buf_t *b);
/* Makes room for n more bytes; TN_ENOMEM past max. */
int tn_buf_reserve(tn_buf_t *b, size_t n);
int tn_buf_append(tn_buf_t *b, const void *p, size_t n);
static inline size_t tn_buf_avail(const tn_buf_t *b)
{
    return b->len - b->off;
}
/* Drops consumed bytes; frees the memory when nothing is left so idle peers cost nothing. */
void tn_buf_compact(tn_buf_t *b);
/* Hands the memory to the caller (who frees it) and leaves b empty. */
uint8_t *tn_buf_take(tn_buf_t *b, size_t *len);

#endif
